//! Folded text to tokens: Chinese segmentation, English words, emoji, bracket emoticons and clause
//! breaks.

use jieba_rs::Jieba;

use crate::lexicon::Lexicon;

/// The default jieba dictionary plus every Chinese lexicon term it does not know yet or knows too rarely
/// to keep whole (下头), so that slang such as 绝绝子 or 智商税 reaches the lexicon in one piece.
pub(crate) fn segmenter(lexicon: &Lexicon) -> Jieba {
    let mut jieba = Jieba::new();
    let mut missing: Vec<&str> = lexicon
        .chinese_terms()
        .filter(|term| !jieba.has_word(term) || jieba.cut(term, false).len() > 1)
        .collect();
    missing.sort_unstable();
    for term in missing {
        jieba.add_word(term, None, None);
    }
    jieba
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A Chinese word from the segmenter or a lower-case English word.
    Word(&'a str),
    /// An emoji, a bracket emoticon such as `[怒]`, or any other symbol.
    Symbol(&'a str),
    /// The end of a clause, with how many `!` and `?` closed it.
    Break { exclaims: u8, questions: u8 },
}

/// Chinese characters: the unified ideographs and extension A.
#[inline]
pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

#[inline]
fn is_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '!' | '?' | ';' | '~' | '。' | '…' | '\n' | '\r' | '｡' | '、'
    )
}

/// Splits folded text ([`fold_compatible`](crate::text::fold_compatible)) into tokens. Runs of Chinese
/// characters go through the segmenter.
pub(crate) fn tokenize<'a>(
    text: &'a str,
    segmenter: &Jieba,
    lexicon: &Lexicon,
    tokens: &mut Vec<Token<'a>>,
) {
    tokens.clear();
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut last_was_han = false;
    while let Some(c) = text[position..].chars().next() {
        let start = position;
        if is_han(c) {
            let end = scan_han(bytes, start);
            for word in segmenter.cut(&text[start..end], false) {
                tokens.push(Token::Word(word.word));
            }
            position = end;
            last_was_han = true;
            continue;
        }
        if c.is_ascii_alphanumeric() {
            let mut end = scan(text, start, |c| c.is_ascii_alphanumeric());
            while bytes.get(end) == Some(&b'\'')
                && bytes.get(end + 1).is_some_and(u8::is_ascii_alphabetic)
            {
                end = scan(text, end + 1, |c| c.is_ascii_alphanumeric());
            }
            tokens.push(Token::Word(&text[start..end]));
            position = end;
        } else if c == '[' {
            match bracket_emoticon(text, start, lexicon) {
                Some(end) => {
                    tokens.push(Token::Symbol(&text[start..end]));
                    position = end;
                }
                None => position += 1,
            }
        } else if is_break(c) {
            let end = scan(text, start, |c| is_break(c) || c == ' ');
            let run = &bytes[start..end];
            tokens.push(Token::Break {
                exclaims: count(run, b'!'),
                questions: count(run, b'?'),
            });
            position = end;
        } else if c.is_whitespace() {
            let end = scan(text, start, char::is_whitespace);
            let next_is_han = text[end..].chars().next().is_some_and(is_han);
            if last_was_han && next_is_han {
                tokens.push(Token::Break {
                    exclaims: 0,
                    questions: 0,
                });
            }
            position = end;
        } else {
            position += c.len_utf8();
            if !c.is_ascii() {
                tokens.push(Token::Symbol(&text[start..position]));
            }
        }
        last_was_han = false;
    }
}

/// The end of the run of Chinese characters at `start`. Every character `is_han` accepts is three
/// bytes long in UTF-8, so the run is decoded here three bytes at a time.
fn scan_han(bytes: &[u8], start: usize) -> usize {
    let mut at = start;
    while let Some(&[lead, second, third]) = bytes.get(at..at + 3) {
        let code = (u32::from(lead & 0x0F) << 12)
            | (u32::from(second & 0x3F) << 6)
            | u32::from(third & 0x3F);
        let han = lead & 0xF0 == 0xE0 && char::from_u32(code).is_some_and(is_han);
        if !han {
            break;
        }
        at += 3;
    }
    at
}

fn scan(text: &str, start: usize, keep: impl Fn(char) -> bool) -> usize {
    text[start..]
        .char_indices()
        .find(|&(_, c)| !keep(c))
        .map_or(text.len(), |(offset, _)| start + offset)
}

fn count(run: &[u8], wanted: u8) -> u8 {
    run.iter()
        .filter(|&&b| b == wanted)
        .count()
        .min(u8::MAX as usize) as u8
}

/// The end of a known emoticon such as `[哈哈]` starting at `start`.
fn bracket_emoticon(text: &str, start: usize, lexicon: &Lexicon) -> Option<usize> {
    const MAX_EMOTICON_BYTES: usize = 20;
    let window = &text[start + 1..];
    let close = window
        .char_indices()
        .take_while(|&(offset, c)| offset <= MAX_EMOTICON_BYTES && c != '[')
        .find(|&(_, c)| c == ']')?
        .0;
    let end = start + 1 + close + 1;
    lexicon.get(&text[start..end]).map(|_| end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::fold_compatible;

    fn words(text: &str) -> Vec<String> {
        let lexicon = Lexicon::embedded();
        let segmenter = segmenter(&lexicon);
        let normalized = fold_compatible(text);
        let mut tokens = Vec::new();
        tokenize(&normalized, &segmenter, &lexicon, &mut tokens);
        tokens
            .iter()
            .map(|token| match token {
                Token::Word(word) | Token::Symbol(word) => (*word).to_owned(),
                Token::Break {
                    exclaims,
                    questions,
                } => format!("|{exclaims}{questions}"),
            })
            .collect()
    }

    #[test]
    fn splits_mixed_text() {
        assert_eq!(
            words("Don't buy，太差了！！！[怒]👍🏻"),
            ["don't", "buy", "|00", "太", "差", "了", "|30", "[怒]", "👍"]
        );
    }

    #[test]
    fn chinese_runs_end_at_other_characters() {
        assert_eq!(
            words("好吃ok好吃。㐀好"),
            ["好吃", "ok", "好吃", "|00", "㐀", "好"]
        );
        assert_eq!(scan_han("好吃".as_bytes(), 0), 6);
        assert_eq!(scan_han("好“".as_bytes(), 0), 3);
        assert_eq!(scan_han("好".as_bytes(), 1), 1);
    }

    #[test]
    fn unknown_brackets_are_not_emoticons() {
        assert_eq!(words("[不存在]"), ["不", "存在"]);
    }

    #[test]
    fn slang_stays_whole_inside_sentences() {
        assert!(words("看完测评果断拔草").contains(&"拔草".to_owned()));
        assert!(words("姐妹们这个绝绝子").contains(&"绝绝子".to_owned()));
    }

    #[test]
    fn spaces_between_chinese_break_clauses() {
        assert_eq!(words("好 差"), ["好", "|00", "差"]);
        assert_eq!(words("very good"), ["very", "good"]);
    }
}
