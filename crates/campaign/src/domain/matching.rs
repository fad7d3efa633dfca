//! The spelling review terms and FAQ keywords are looked for in: [`fold`] (full and half width,
//! case, traditional and simplified characters alike), then without anything but letters and digits,
//! so that `最*好`, `第 一`, `最.佳` and `ＮＯ．１` read as `最好`, `第一`, `最佳` and `no1`.
//! [`Folded`] remembers where every character came from, so a match is reported where it was
//! written, and where clauses end: a term is not read across `，。、；：！？` (`一套，现在` does not
//! say `套现`).
//!
//! The text is folded one character at a time (a character with the combining marks that follow
//! it), never as a whole: the traditional-to-simplified tables convert some phrases as phrases,
//! and a term must fold the same alone as it does inside a text, or a text could hide it.

use std::iter;

use socialops_scorer::fold;
use unicode_normalization::IsNormalized;
use unicode_normalization::char::{
    canonical_combining_class, decompose_compatible, is_combining_mark,
};

/// A text in the matching spelling, with the way back to the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    pub text: String,
    /// One per character of `text`, in order.
    origins: Vec<Origin>,
    /// Characters in the original: where a range ending at the end of `text` ends.
    original_chars: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin {
    /// Byte offset of the character in `text`.
    at: usize,
    /// The characters of the original it was folded from, as char offsets: usually one, more
    /// where a letter and its marks became one character.
    start: usize,
    end: usize,
    /// Whether a separator was dropped between this character and the one before it.
    after_separator: bool,
    /// How many clause marks precede it.
    clause: usize,
}

/// `original` in the matching spelling: folded, and without whitespace, punctuation, symbols or
/// emoji (anything that is not a letter or a digit once folded).
pub fn fold_for_matching(original: &str) -> Folded {
    let mut folded = Folded {
        text: String::with_capacity(original.len()),
        origins: Vec::with_capacity(original.len()),
        original_chars: 0,
    };
    let mut after_separator = false;
    let mut clause = 0;
    let mut keep = |folded: &mut Folded, c: char, start: usize, end: usize| {
        if c.is_alphanumeric() {
            folded.origins.push(Origin {
                at: folded.text.len(),
                start,
                end,
                after_separator,
                clause,
            });
            folded.text.push(c);
            after_separator = false;
        } else if !is_combining_mark(c) {
            // A stray mark is dropped like a separator but does not part two words.
            after_separator = true;
            if ends_clause(c) {
                clause += 1;
            }
        }
    };

    let mut chars = original.char_indices().peekable();
    let mut start_char = 0;
    while let Some((start_byte, first)) = chars.next() {
        let mut end_byte = start_byte + first.len_utf8();
        let mut end_char = start_char + 1;
        while let Some(&(at, c)) = chars.peek() {
            if starts_unit(c) {
                break;
            }
            chars.next();
            end_byte = at + c.len_utf8();
            end_char += 1;
        }
        if end_char == start_char + 1 && first.is_ascii() {
            keep(
                &mut folded,
                first.to_ascii_lowercase(),
                start_char,
                end_char,
            );
        } else {
            for c in fold(&original[start_byte..end_byte]).chars() {
                keep(&mut folded, c, start_char, end_char);
            }
        }
        start_char = end_char;
    }
    folded.original_chars = start_char;
    folded
}

/// Sentence and clause punctuation, as it is once folded (`，` is `,`). The dot is not among them:
/// it is how `No.1` and `最.佳` are written.
fn ends_clause(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '!' | '?' | '。' | '、')
}

/// Whether `c` folds the same whatever precedes it (Unicode's "boundary before"): its decomposition
/// starts with a character that neither reorders nor composes with what is before it. A character
/// that does is folded together with the one before it.
fn starts_unit(c: char) -> bool {
    if c.is_ascii() || ('\u{4000}'..='\u{9FFF}').contains(&c) {
        return true;
    }
    let mut first = None;
    decompose_compatible(c, |d| {
        first.get_or_insert(d);
    });
    let first = first.unwrap_or(c);
    canonical_combining_class(first) == 0
        && unicode_normalization::is_nfkc_quick(iter::once(first)) != IsNormalized::Maybe
}

impl Folded {
    /// Where a range of `text` (byte offsets, as `str` methods and Aho-Corasick report it) was
    /// written in the original, as char offsets `(start, end)`: from the first character it came
    /// from to the last, with any separators between them.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.origins.partition_point(|o| o.at < start);
        let begin = self
            .origins
            .get(first)
            .map_or(self.original_chars, |o| o.start);
        if end <= start {
            return (begin, begin);
        }
        let last = self.origins.partition_point(|o| o.at < end);
        let finish = last
            .checked_sub(1)
            .and_then(|last| self.origins.get(last))
            .map_or(begin, |o| o.end);
        (begin, finish.max(begin))
    }

    /// Whether a range of `text` (byte offsets) was written within one clause: no clause mark
    /// (`，。、；：！？`) lies between its first and last characters.
    pub fn within_one_clause(&self, start: usize, end: usize) -> bool {
        let first = self.origins.partition_point(|o| o.at < start);
        let last = self.origins.partition_point(|o| o.at < end);
        match (
            self.origins.get(first),
            last.checked_sub(1).and_then(|i| self.origins.get(i)),
        ) {
            (Some(first), Some(last)) => first.clause == last.clause,
            _ => true,
        }
    }

    /// Whether byte offset `at` of `text` lies between two words: anywhere but between two ASCII
    /// letters or digits that were written together. ASCII terms are matched as whole words (`no1`
    /// is not in `casino1`), while `no 1` and `No.1` still read as `no1`.
    pub fn separates_words(&self, at: usize) -> bool {
        let index = self.origins.partition_point(|o| o.at < at);
        let (Some(before), Some(after)) = (
            index.checked_sub(1).and_then(|i| self.origins.get(i)),
            self.origins.get(index),
        ) else {
            return true;
        };
        let ascii_alphanumeric = |o: &Origin| {
            self.text[o.at..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        };
        after.after_separator || !ascii_alphanumeric(before) || !ascii_alphanumeric(after)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chars(text: &str, span: (usize, usize)) -> String {
        text.chars().skip(span.0).take(span.1 - span.0).collect()
    }

    #[test]
    fn separators_width_case_and_script_fold_away() {
        for (written, folded) in [
            ("最*好", "最好"),
            ("第 一", "第一"),
            ("最.佳", "最佳"),
            ("極品", "极品"),
            ("ＮＯ．１", "no1"),
            ("No.1", "no1"),
            ("唯-一_的|选/择\\~", "唯一的选择"),
            ("最·好•的", "最好的"),
            ("顶👍级❤️", "顶级"),
            ("全\u{3000}网\n最\t低，价！", "全网最低价"),
            ("國家級", "国家级"),
            ("①②", "12"),
            ("㎏", "kg"),
            ("CAFE\u{301}", "café"),
            ("", ""),
        ] {
            assert_eq!(fold_for_matching(written).text, folded, "{written}");
        }
    }

    #[test]
    fn spans_point_at_the_original() {
        let original = "今天👍最 * 好的ＮＯ．１！";
        let folded = fold_for_matching(original);
        assert_eq!(folded.text, "今天最好的no1");

        let at = folded.text.find("最好").unwrap();
        let span = folded.original_span(at, at + "最好".len());
        assert_eq!(span, (3, 8));
        assert_eq!(chars(original, span), "最 * 好");

        let at = folded.text.find("no1").unwrap();
        let span = folded.original_span(at, at + 3);
        assert_eq!(chars(original, span), "ＮＯ．１");

        assert_eq!(folded.original_span(0, 0), (0, 0));
        let end = folded.text.len();
        assert_eq!(folded.original_span(end, end), (14, 14));
    }

    #[test]
    fn a_letter_and_its_marks_map_back_together() {
        let original = "xe\u{301}\u{323}y";
        let folded = fold_for_matching(original);
        assert_eq!(folded.text.chars().count(), 3);
        let e = folded.text.char_indices().nth(1).unwrap();
        let span = folded.original_span(e.0, e.0 + e.1.len_utf8());
        assert_eq!(span, (1, 4));
    }

    #[test]
    fn ascii_words_are_parted_by_separators_not_by_folding() {
        let folded = fold_for_matching("casino1 no.1 ＮＯ1");
        assert_eq!(folded.text, "casino1no1no1");
        assert!(!folded.separates_words(4), "inside casino1");
        assert!(folded.separates_words(7), "the space after casino1");
        assert!(folded.separates_words(9), "the dot in no.1");
        assert!(
            !folded.separates_words(11),
            "full-width letters written together"
        );
        assert!(folded.separates_words(0) && folded.separates_words(folded.text.len()));
        let mixed = fold_for_matching("第no1");
        assert!(mixed.separates_words("第".len()));
    }

    #[test]
    fn clause_marks_part_what_they_separate() {
        let folded = fold_for_matching("买了一套，现在。最*好！第 一");
        assert_eq!(folded.text, "买了一套现在最好第一");
        let range = |word: &str| {
            let at = folded.text.find(word).unwrap();
            (at, at + word.len())
        };
        for (word, within) in [
            ("套现", false),
            ("最好", true),
            ("第一", true),
            ("好第", false),
        ] {
            let (start, end) = range(word);
            assert_eq!(folded.within_one_clause(start, end), within, "{word}");
        }
        assert!(folded.within_one_clause(0, 0));
    }

    proptest! {
        /// Folding a character at a time comes to the same as folding the whole text, where the
        /// script tables convert these characters alike alone and in phrases.
        #[test]
        fn folds_as_the_whole_text_would(
            text in "[aAeEzZ好质量極最佳，。！ＡＢ１①\u{301}\u{308}\u{327}\u{1100}\u{1161}\u{11A8}\u{AC00}ﬁ㎏👍🏻\u{FE0F}\u{200D}’ *.]{0,16}"
        ) {
            let expected: String = fold(&text)
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect();
            prop_assert_eq!(fold_for_matching(&text).text, expected);
        }

        /// Every range of the folded text maps back to a piece of the original that folds to a text
        /// containing it, and spans never run backwards or past the end.
        #[test]
        fn spans_cover_what_was_matched(
            text in "[aAeE好極質最，。 Ａ１①\u{301}\u{323}\u{1100}\u{1161}\u{11A8}\u{AC00}ﬁ㎏İ👍🏻\u{FE0F}*.]{0,16}",
            a in 0usize..20,
            b in 0usize..20,
        ) {
            let folded = fold_for_matching(&text);
            let boundaries: Vec<usize> = folded
                .text
                .char_indices()
                .map(|(at, _)| at)
                .chain(iter::once(folded.text.len()))
                .collect();
            let (a, b) = (a.min(boundaries.len() - 1), b.min(boundaries.len() - 1));
            let (start, end) = (boundaries[a.min(b)], boundaries[a.max(b)]);
            let span = folded.original_span(start, end);
            prop_assert!(span.0 <= span.1 && span.1 <= text.chars().count());
            let piece = fold_for_matching(&chars(&text, span));
            prop_assert!(piece.text.contains(&folded.text[start..end]));
        }
    }
}
