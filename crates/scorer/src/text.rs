//! Folding: the one spelling in which texts are read, so that every variant of a word is one word.
//!
//! [`fold`] is what watchlist terms and the texts they are looked for in are compared in: Unicode
//! compatibility folding (NFKC: full-width `ＡＢＣ１２３` is `ABC123`, `①` is `1`, the ideographic
//! space is a space), lower case, curly apostrophes straight, emoji presentation selectors, joiners
//! and skin tones dropped (`👍🏻` is `👍`), and traditional characters to simplified ones (`質量問題`
//! is `质量问题`, by character_converter's tables).
//!
//! The scorer reads texts through every step but the last ([`fold_compatible`]): the conversion costs
//! more than segmenting a review-length text (scoring with it ran at 0.16 of jieba-rs `cut`'s rate
//! against 0.35–0.38 without, on a loaded machine) and gained no accuracy on the evaluation sets. Its
//! tables also turn some common simplified characters into rarer ones (`什么` into `什幺`, `宁` into
//! `㝉`), which does no harm where both sides of a comparison are folded alike, as terms and texts are.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// The spelling watchlist terms and texts are compared in: NFKC (`ＡＢＣ１２３` is `ABC123`), lower
/// case, straight apostrophes, no emoji presentation selectors, joiners or skin tones (the spelling the
/// scorer reads), then traditional characters to simplified ones (`質量問題` is `质量问题`).
pub fn fold(text: &str) -> Cow<'_, str> {
    let compatible = fold_compatible(text);
    match character_converter::traditional_to_simplified(&compatible) {
        Cow::Owned(simplified) => Cow::Owned(simplified),
        Cow::Borrowed(_) => compatible,
    }
}

/// NFKC, lower case, straight apostrophes, no emoji presentation selectors, joiners or skin tones:
/// the spelling the scorer and its word lists are in.
pub(crate) fn fold_compatible(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&byte| !unchanged(byte)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut unchanged_from = 0;
    let mut at = first;
    while let Some(&byte) = bytes.get(at) {
        if unchanged(byte) {
            at += 1;
            continue;
        }
        out.push_str(&text[unchanged_from..at]);
        if byte.is_ascii_uppercase() {
            out.push(char::from(byte.to_ascii_lowercase()));
            at += 1;
            unchanged_from = at;
            continue;
        }
        // Everything up to the next stable character goes through NFKC, from the character before it
        // when that is ASCII: a letter composes with the marks that follow it (`e` and U+0301 are `é`).
        let start = if at > 0 && bytes[at - 1].is_ascii() {
            out.pop();
            at - 1
        } else {
            at
        };
        let end = bytes[at + 1..]
            .iter()
            .position(|&byte| starts_stable(byte))
            .map_or(bytes.len(), |offset| at + 1 + offset);
        out.extend(
            text[start..end]
                .nfkc()
                .flat_map(char::to_lowercase)
                .filter_map(fold_symbol),
        );
        at = end;
        unchanged_from = end;
    }
    out.push_str(&text[unchanged_from..]);
    Cow::Owned(out)
}

/// Whether every step leaves this byte as it is, whatever surrounds it: ASCII other than capitals, the
/// lead byte of U+4000–U+9FFF (CJK ideographs and the Yijing hexagrams: no compatibility mapping, no
/// case, never combined with a neighbour), and continuation bytes of a character that got here.
#[inline]
fn unchanged(byte: u8) -> bool {
    (byte.is_ascii() && !byte.is_ascii_uppercase()) || matches!(byte, 0x80..=0xBF | 0xE4..=0xE9)
}

/// Whether a character starting with this byte is a boundary NFKC never reaches across: ASCII and
/// U+4000–U+9FFF are starters that compose with nothing before them.
#[inline]
fn starts_stable(byte: u8) -> bool {
    byte.is_ascii() || matches!(byte, 0xE4..=0xE9)
}

/// Apostrophes to one, emoji presentation selectors, joiners and skin tones away.
fn fold_symbol(c: char) -> Option<char> {
    match c {
        '\u{2018}' | '\u{2019}' => Some('\''),
        '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' | '\u{1F3FB}'..='\u{1F3FF}' => None,
        c => Some(c),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition the fast path keeps: every step over the whole text.
    fn fold_compatible_everywhere(text: &str) -> String {
        text.nfkc()
            .flat_map(char::to_lowercase)
            .filter_map(fold_symbol)
            .collect()
    }

    #[test]
    fn traditional_and_full_width_fold_to_simplified_and_half_width() {
        assert_eq!(fold("質量問題，ＡＢＣ１２３！"), fold("质量问题,abc123!"));
        assert_eq!(fold("質量問題，ＡＢＣ１２３！"), "质量问题,abc123!");
        assert_eq!(fold("虛假宣傳"), "虚假宣传");
        assert_eq!(fold("Ｃｉｃａ精華"), "cica精华");
        assert_eq!(fold("食品安全"), "食品安全");
        assert!(matches!(fold("食品安全 ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn compatibility_case_and_emoji_modifiers() {
        assert_eq!(fold_compatible("ＧＯＯＤ！Don’t"), "good!don't");
        assert_eq!(fold_compatible("好👍🏻\u{3000}ＯＫ了❤️"), "好👍 ok了❤");
        assert_eq!(fold_compatible("“AB”‘c’—①Ｚ"), "“ab”'c'—1z");
        assert_eq!(fold_compatible("CAFE\u{301} Ünïcode"), "café ünïcode");
        assert_eq!(fold_compatible("㊣品 ﬁne ㎏"), "正品 fine kg");
        assert_eq!(fold_compatible("質量"), "質量", "script is kept");
        assert!(matches!(fold_compatible("质量不错 ok"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn the_fast_path_folds_as_every_step_would(text in "(?s).{0,24}") {
            prop_assert_eq!(fold_compatible(&text), fold_compatible_everywhere(&text));
        }

        #[test]
        fn mixed_scripts_and_marks_fold_as_every_step_would(
            text in "[aAeEzZ好质質量，。！ＡＢ１①\u{301}\u{308}\u{327}\u{1100}\u{1161}\u{11A8}\u{AC00}ﬁ㎏👍🏻\u{FE0F}\u{200D}’ ]{0,16}"
        ) {
            prop_assert_eq!(fold_compatible(&text), fold_compatible_everywhere(&text));
        }
    }
}
