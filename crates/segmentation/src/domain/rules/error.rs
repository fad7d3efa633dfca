/// A rule that does not parse or does not type-check: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {offset} (line {line}, column {column}): {message}")]
pub struct ParseError {
    /// Byte offset into the rule text.
    pub offset: usize,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(super) fn new(src: &str, offset: usize, message: String) -> Self {
        let before = &src[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            offset,
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "stage = new\nand has tag \"敏感\" ~";
        let offset = src.find('~').unwrap();
        let e = ParseError::new(src, offset, "boom".into());
        assert_eq!((e.line, e.column), (2, 18));
        assert_eq!(
            e.to_string(),
            format!("at {offset} (line 2, column 18): boom")
        );
    }
}
