use super::ast::{CmpOp, TimeUnit};
use super::error::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// A word: a keyword, a field (`count.comment` is one word) or an enum value.
    Word(String),
    Int(i64),
    Duration(u32, TimeUnit),
    Str(String),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// A character no token starts with; the parser reports it where it knows what it expected.
    Unknown(char),
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// How an error message names this token.
    pub fn describe(&self, src: &str) -> String {
        match self.tok {
            Tok::Eof => "the end of the rule".to_owned(),
            Tok::Unknown(c) => format!("`{c}`"),
            _ => {
                let text = &src[self.start..self.end];
                match text.char_indices().nth(40) {
                    Some((cut, _)) => format!("`{}…`", &text[..cut]),
                    None => format!("`{text}`"),
                }
            }
        }
    }

    pub fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let rest = &src[start..];
        let (tok, len) = if is_word_start(c) {
            let len = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
            (Tok::Word(rest[..len].to_owned()), len)
        } else if c.is_ascii_digit()
            || (c == '-' && rest[1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            number(src, start)?
        } else if c == '"' {
            string(src, start)?
        } else {
            let two = rest.get(..2);
            match (c, two) {
                (_, Some("!=")) => (Tok::Op(CmpOp::Ne), 2),
                (_, Some("<=")) => (Tok::Op(CmpOp::Le), 2),
                (_, Some(">=")) => (Tok::Op(CmpOp::Ge), 2),
                ('=', _) => (Tok::Op(CmpOp::Eq), 1),
                ('<', _) => (Tok::Op(CmpOp::Lt), 1),
                ('>', _) => (Tok::Op(CmpOp::Gt), 1),
                ('(', _) => (Tok::LParen, 1),
                (')', _) => (Tok::RParen, 1),
                ('[', _) => (Tok::LBracket, 1),
                (']', _) => (Tok::RBracket, 1),
                (',', _) => (Tok::Comma, 1),
                _ => (Tok::Unknown(c), c.len_utf8()),
            }
        };
        let end = start + len;
        tokens.push(Token { tok, start, end });
        while chars.next_if(|&(i, _)| i < end).is_some() {}
    }
    tokens.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(tokens)
}

/// `-?[0-9]+` and, glued to it, an optional unit: `42`, `-7`, `30d`.
fn number(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let rest = &src[start..];
    let sign_len = usize::from(rest.starts_with('-'));
    let digits_len = rest[sign_len..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len() - sign_len);
    let number_len = sign_len + digits_len;
    let suffix_len = rest[number_len..]
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(rest.len() - number_len);
    let len = number_len + suffix_len;
    let text = &rest[..len];
    if suffix_len == 0 {
        return match rest[..number_len].parse::<i64>() {
            Ok(n) => Ok((Tok::Int(n), len)),
            Err(_) => Err(ParseError::new(
                src,
                start,
                format!("number `{text}` is too large"),
            )),
        };
    }
    let unit = match &rest[number_len..len] {
        "h" => Some(TimeUnit::Hours),
        "d" => Some(TimeUnit::Days),
        "w" => Some(TimeUnit::Weeks),
        _ => None,
    };
    match (unit, sign_len, rest[..number_len].parse::<u32>()) {
        (Some(unit), 0, Ok(amount)) => Ok((Tok::Duration(amount, unit), len)),
        (Some(_), 0, Err(_)) => Err(ParseError::new(
            src,
            start,
            format!("duration `{text}` is too long"),
        )),
        (Some(_), _, _) => Err(ParseError::new(
            src,
            start,
            format!("duration `{text}` is negative; `within` and `before` count back from now"),
        )),
        (None, _, _) => Err(ParseError::new(
            src,
            start,
            format!(
                "expected a number such as `42` or a duration such as `30d` (units h, d, w), found `{text}`"
            ),
        )),
    }
}

/// A double-quoted string; `\"` and `\\` are its only escapes.
fn string(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let mut value = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(value), i + 2)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => value.push(e),
                Some((j, e)) => {
                    return Err(ParseError::new(
                        src,
                        start + 1 + j - 1,
                        format!(
                            "unknown escape `\\{e}` in a string; only `\\\"` and `\\\\` are escapes"
                        ),
                    ));
                }
                None => break,
            },
            _ => value.push(c),
        }
    }
    Err(ParseError::new(
        src,
        start,
        "this string is never closed: expected a closing `\"`".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_every_token_kind() {
        assert_eq!(
            toks(r#"count.comment>=-3 ( ) [ , ] != <= < > = 30d 12h 2w "a\"b\\c" ~"#),
            [
                Tok::Word("count.comment".into()),
                Tok::Op(CmpOp::Ge),
                Tok::Int(-3),
                Tok::LParen,
                Tok::RParen,
                Tok::LBracket,
                Tok::Comma,
                Tok::RBracket,
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Le),
                Tok::Op(CmpOp::Lt),
                Tok::Op(CmpOp::Gt),
                Tok::Op(CmpOp::Eq),
                Tok::Duration(30, TimeUnit::Days),
                Tok::Duration(12, TimeUnit::Hours),
                Tok::Duration(2, TimeUnit::Weeks),
                Tok::Str("a\"b\\c".into()),
                Tok::Unknown('~'),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn spans_are_byte_offsets() {
        let tokens = lex("has tag \"敏感肌\" and").unwrap();
        let spans: Vec<(usize, usize)> = tokens.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(spans, [(0, 3), (4, 7), (8, 19), (20, 23), (23, 23)]);
        assert_eq!(tokens[2].describe("has tag \"敏感肌\" and"), "`\"敏感肌\"`");
    }

    #[test]
    fn bad_numbers_strings_and_escapes() {
        let err = |src: &str| lex(src).unwrap_err();
        assert_eq!(err("r = 99999999999999999999").offset, 4);
        assert!(err("x within 30y").message.contains("units h, d, w"));
        assert!(err("x within -3d").message.contains("negative"));
        assert!(err("x within 9999999999d").message.contains("too long"));
        let e = err("has tag \"abc");
        assert_eq!(e.offset, 8);
        assert!(e.message.contains("never closed"));
        let e = err(r#"has tag "a\nb""#);
        assert_eq!(e.offset, 10);
        assert!(e.message.contains("unknown escape `\\n`"));
        assert!(err("has tag \"a\\").message.contains("never closed"));
    }
}
