//! Recursive descent over the tokens, type-checking each condition as it is read.
//!
//! ```text
//! rule      = or
//! or        = and { "or" and }
//! and       = not { "and" not }
//! not       = "not" not | primary
//! primary   = "(" or ")" | condition
//! condition = "has" "tag" STRING | "has" "platform" (WORD | STRING)
//!           | time_field ("within" | "before") DURATION
//!           | field op value | field "in" "[" value { "," value } "]"
//! ```

use super::ast::{Ago, Condition, Field, FieldKind, Rule, TimeField, TimeRelation, Value};
use super::error::ParseError;
use super::lexer::{Tok, Token, lex};
use crate::domain::lifecycle::Stage;
use crate::domain::profile::{EVENT_TYPES, PLATFORMS};
use crate::domain::rfm::ValueTier;

/// Most conditions in one rule; keeps evaluation cheap and the tree shallow.
pub const MAX_CONDITIONS: usize = 256;
/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "has", "tag", "platform", "within", "before", "true", "false",
];

/// Parses and type-checks a segment rule. The syntax is described in the crate documentation.
pub fn parse(src: &str) -> Result<Rule, ParseError> {
    let tokens = lex(src)?;
    let mut parser = Parser {
        src,
        tokens,
        pos: 0,
        num_conditions: 0,
    };
    if parser.peek().tok == Tok::Eof {
        return Err(parser.expected("a condition such as `stage = loyal`"));
    }
    let rule = parser.or(0)?;
    if parser.peek().tok != Tok::Eof {
        return Err(parser.expected("`and`, `or` or the end of the rule"));
    }
    Ok(rule)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    num_conditions: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn bump(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn previous_text(&self) -> &str {
        let previous = &self.tokens[self.pos.saturating_sub(1)];
        &self.src[previous.start..previous.end]
    }

    fn error_at(&self, offset: usize, message: String) -> ParseError {
        ParseError::new(self.src, offset, message)
    }

    /// "expected X, found Y" at the next token.
    fn expected(&self, what: &str) -> ParseError {
        let token = self.peek();
        self.error_at(
            token.start,
            format!("expected {what}, found {}", token.describe(self.src)),
        )
    }

    /// "expected X after `previous token`, found Y" at the next token.
    fn expected_after(&self, what: &str) -> ParseError {
        self.expected(&format!("{what} after `{}`", self.previous_text()))
    }

    fn or(&mut self, depth: usize) -> Result<Rule, ParseError> {
        let mut rule = self.and(depth)?;
        while self.peek().is_keyword("or") {
            self.bump();
            rule = rule.or(self.and(depth)?);
        }
        Ok(rule)
    }

    fn and(&mut self, depth: usize) -> Result<Rule, ParseError> {
        let mut rule = self.not(depth)?;
        while self.peek().is_keyword("and") {
            self.bump();
            rule = rule.and(self.not(depth)?);
        }
        Ok(rule)
    }

    fn not(&mut self, depth: usize) -> Result<Rule, ParseError> {
        if self.peek().is_keyword("not") {
            let token = self.bump();
            self.check_depth(&token, depth)?;
            return Ok(!self.not(depth + 1)?);
        }
        self.primary(depth)
    }

    fn check_depth(&self, token: &Token, depth: usize) -> Result<(), ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.error_at(
                token.start,
                format!("the rule nests more than {MAX_DEPTH} levels of parentheses and `not`"),
            ));
        }
        Ok(())
    }

    fn primary(&mut self, depth: usize) -> Result<Rule, ParseError> {
        if self.peek().tok == Tok::LParen {
            let open = self.bump();
            self.check_depth(&open, depth)?;
            let rule = self.or(depth + 1)?;
            if self.peek().tok != Tok::RParen {
                return Err(self.expected(&format!(
                    "`and`, `or` or `)` to close the `(` at {}",
                    open.start
                )));
            }
            self.bump();
            return Ok(rule);
        }
        let start = self.peek().start;
        self.num_conditions += 1;
        if self.num_conditions > MAX_CONDITIONS {
            return Err(self.error_at(
                start,
                format!("a rule has at most {MAX_CONDITIONS} conditions"),
            ));
        }
        Ok(Rule::Condition(self.condition()?))
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let token = self.peek().clone();
        let name = match &token.tok {
            Tok::Word(word) if word.eq_ignore_ascii_case("has") => {
                self.bump();
                return self.has();
            }
            Tok::Word(word) if !KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) => {
                word.clone()
            }
            _ => {
                return Err(self.expected(
                    "a condition (a field such as `stage`, `has tag \"…\"`, `not` or `(`)",
                ));
            }
        };
        self.bump();
        if let Some(field) = TimeField::from_name(&name) {
            return self.time(field);
        }
        let field = self.field(&name, token.start)?;
        if self.peek().is_keyword("in") {
            self.bump();
            return self.list(field);
        }
        let op = match self.peek().tok {
            Tok::Op(op) => op,
            _ => {
                let what = if field.kind() == FieldKind::Score || field.kind() == FieldKind::Integer
                {
                    "a comparison operator (=, !=, <, <=, >, >=) or `in`"
                } else {
                    "`=`, `!=` or `in`"
                };
                return Err(self.expected_after(what));
            }
        };
        if op.is_ordering() && !matches!(field.kind(), FieldKind::Score | FieldKind::Integer) {
            return Err(self.error_at(
                self.peek().start,
                format!("`{field}` can only be compared with `=`, `!=` or `in`, not `{op}`"),
            ));
        }
        self.bump();
        let value = self.value(&field)?;
        Ok(Condition::Compare { field, op, value })
    }

    fn field(&self, name: &str, start: usize) -> Result<Field, ParseError> {
        if let Some((_, field)) = Field::NAMED.iter().find(|(n, _)| *n == name) {
            return Ok(field.clone());
        }
        if let Some(event_type) = name.strip_prefix("count.") {
            if EVENT_TYPES.contains(&event_type) {
                return Ok(Field::Count(event_type.to_owned()));
            }
            return Err(self.error_at(
                start + "count.".len(),
                format!(
                    "unknown event type `{event_type}`; expected one of {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if name == "count" {
            return Err(self.error_at(
                start,
                "expected `count.<event type>`, such as `count.comment`".to_owned(),
            ));
        }
        let fields: Vec<&str> = Field::NAMED
            .iter()
            .map(|(n, _)| *n)
            .chain(["count.<event type>"])
            .chain(TimeField::ALL.iter().map(|t| t.as_str()))
            .collect();
        Err(self.error_at(
            start,
            format!(
                "unknown field `{name}`; expected one of {}, or `has tag`, `has platform`",
                fields.join(", ")
            ),
        ))
    }

    fn time(&mut self, field: TimeField) -> Result<Condition, ParseError> {
        let relation = if self.peek().is_keyword("within") {
            TimeRelation::Within
        } else if self.peek().is_keyword("before") {
            TimeRelation::Before
        } else {
            return Err(self.expected_after("`within` or `before`"));
        };
        self.bump();
        let Tok::Duration(amount, unit) = self.peek().tok else {
            return Err(self.expected_after("a duration such as `30d`, `12h` or `2w`"));
        };
        self.bump();
        Ok(Condition::Time {
            field,
            relation,
            ago: Ago { amount, unit },
        })
    }

    fn has(&mut self) -> Result<Condition, ParseError> {
        if self.peek().is_keyword("tag") {
            self.bump();
            let token = self.peek().clone();
            return match token.tok {
                Tok::Str(tag) if tag.is_empty() => {
                    Err(self.error_at(token.start, "a tag cannot be empty".to_owned()))
                }
                Tok::Str(tag) => {
                    self.bump();
                    Ok(Condition::HasTag(tag))
                }
                _ => Err(self.expected_after("a quoted tag such as \"need:sensitive-skin\"")),
            };
        }
        if self.peek().is_keyword("platform") {
            self.bump();
            let token = self.peek().clone();
            let (Tok::Word(name) | Tok::Str(name)) = token.tok else {
                return Err(self.expected_after(&format!("a platform ({})", PLATFORMS.join(", "))));
            };
            if !PLATFORMS.contains(&name.as_str()) {
                return Err(self.error_at(
                    token.start,
                    format!(
                        "unknown platform `{name}`; expected one of {}",
                        PLATFORMS.join(", ")
                    ),
                ));
            }
            self.bump();
            return Ok(Condition::HasPlatform(name));
        }
        Err(self.expected_after("`tag` or `platform`"))
    }

    fn list(&mut self, field: Field) -> Result<Condition, ParseError> {
        if self.peek().tok != Tok::LBracket {
            return Err(self.expected_after("`[`"));
        }
        self.bump();
        let mut values = vec![self.value(&field)?];
        loop {
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                    values.push(self.value(&field)?);
                }
                Tok::RBracket => {
                    self.bump();
                    return Ok(Condition::In { field, values });
                }
                _ => return Err(self.expected_after("`,` or `]`")),
            }
        }
    }

    /// A literal of the type `field` takes.
    fn value(&mut self, field: &Field) -> Result<Value, ParseError> {
        let token = self.peek().clone();
        let value = match (field.kind(), &token.tok) {
            (FieldKind::Stage, Tok::Word(w)) => Stage::from_name(w).map(Value::Stage),
            (FieldKind::Tier, Tok::Word(w)) => ValueTier::from_name(w).map(Value::Tier),
            (FieldKind::Score, Tok::Int(n)) => (1..=5).contains(n).then_some(Value::Int(*n)),
            (FieldKind::Integer, Tok::Int(n)) => Some(Value::Int(*n)),
            (FieldKind::Bool, Tok::Word(w)) if w.eq_ignore_ascii_case("true") => {
                Some(Value::Bool(true))
            }
            (FieldKind::Bool, Tok::Word(w)) if w.eq_ignore_ascii_case("false") => {
                Some(Value::Bool(false))
            }
            _ => None,
        };
        let Some(value) = value else {
            let what = match field.kind() {
                FieldKind::Stage => {
                    format!("a stage ({})", Stage::ALL.map(Stage::as_str).join(", "))
                }
                FieldKind::Tier => format!(
                    "a value tier ({})",
                    ValueTier::ALL.map(ValueTier::as_str).join(", ")
                ),
                FieldKind::Score => format!("a score from 1 to 5 for `{field}`"),
                FieldKind::Integer => format!("a whole number for `{field}`"),
                FieldKind::Bool => format!("`true` or `false` for `{field}`"),
            };
            return Err(self.expected_after(&what));
        };
        self.bump();
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::ast::{CmpOp, TimeUnit};

    fn cond(src: &str) -> Condition {
        match parse(src) {
            Ok(Rule::Condition(c)) => c,
            other => panic!("{src}: {other:?}"),
        }
    }

    fn err(src: &str) -> ParseError {
        parse(src).expect_err(src)
    }

    #[test]
    fn comparisons_of_every_field_kind() {
        assert_eq!(
            cond("stage = loyal"),
            Condition::Compare {
                field: Field::Stage,
                op: CmpOp::Eq,
                value: Value::Stage(Stage::Loyal),
            }
        );
        assert_eq!(
            cond("tier != low_value"),
            Condition::Compare {
                field: Field::Tier,
                op: CmpOp::Ne,
                value: Value::Tier(ValueTier::LowValue),
            }
        );
        for (src, field) in [
            ("r >= 4", Field::Recency),
            ("f >= 4", Field::Frequency),
            ("m >= 4", Field::Monetary),
        ] {
            assert_eq!(
                cond(src),
                Condition::Compare {
                    field,
                    op: CmpOp::Ge,
                    value: Value::Int(4),
                }
            );
        }
        assert_eq!(
            cond("count.comment > 3"),
            Condition::Compare {
                field: Field::Count("comment".into()),
                op: CmpOp::Gt,
                value: Value::Int(3),
            }
        );
        assert_eq!(
            cond("orders_total_cents <= 100000"),
            Condition::Compare {
                field: Field::OrdersTotalCents,
                op: CmpOp::Le,
                value: Value::Int(100_000),
            }
        );
        assert_eq!(
            cond("refunded_cents < -1"),
            Condition::Compare {
                field: Field::RefundedCents,
                op: CmpOp::Lt,
                value: Value::Int(-1),
            }
        );
        assert_eq!(
            cond("following = TRUE"),
            Condition::Compare {
                field: Field::Following,
                op: CmpOp::Eq,
                value: Value::Bool(true),
            }
        );
        assert_eq!(
            cond("orders_count=2"),
            Condition::Compare {
                field: Field::OrdersCount,
                op: CmpOp::Eq,
                value: Value::Int(2),
            }
        );
    }

    #[test]
    fn in_lists() {
        assert_eq!(
            cond("stage in [new, active]"),
            Condition::In {
                field: Field::Stage,
                values: vec![Value::Stage(Stage::New), Value::Stage(Stage::Active)],
            }
        );
        assert_eq!(
            cond("r IN [5]"),
            Condition::In {
                field: Field::Recency,
                values: vec![Value::Int(5)],
            }
        );
    }

    #[test]
    fn relative_times() {
        assert_eq!(
            cond("last_order_at within 30d"),
            Condition::Time {
                field: TimeField::LastOrderAt,
                relation: TimeRelation::Within,
                ago: Ago {
                    amount: 30,
                    unit: TimeUnit::Days,
                },
            }
        );
        assert_eq!(
            cond("first_seen_at before 2w"),
            Condition::Time {
                field: TimeField::FirstSeenAt,
                relation: TimeRelation::Before,
                ago: Ago {
                    amount: 2,
                    unit: TimeUnit::Weeks,
                },
            }
        );
        for field in TimeField::ALL {
            assert!(parse(&format!("{field} within 12h")).is_ok());
        }
    }

    #[test]
    fn tags_and_platforms() {
        assert_eq!(
            cond(r#"has tag "need:sensitive-skin""#),
            Condition::HasTag("need:sensitive-skin".into())
        );
        assert_eq!(
            cond(r#"HAS TAG "say \"hi\"""#),
            Condition::HasTag("say \"hi\"".into())
        );
        assert_eq!(
            cond("has platform douyin"),
            Condition::HasPlatform("douyin".into())
        );
        assert_eq!(
            cond(r#"has platform "weibo""#),
            Condition::HasPlatform("weibo".into())
        );
    }

    #[test]
    fn precedence_not_then_and_then_or() {
        let a = || Rule::from(cond("r = 1"));
        let b = || Rule::from(cond("r = 2"));
        let c = || Rule::from(cond("r = 3"));
        assert_eq!(
            parse("r = 1 or r = 2 and r = 3").unwrap(),
            a().or(b().and(c()))
        );
        assert_eq!(
            parse("r = 1 and r = 2 or r = 3").unwrap(),
            a().and(b()).or(c())
        );
        assert_eq!(parse("not r = 1 and r = 2").unwrap(), (!a()).and(b()));
        assert_eq!(parse("not (r = 1 and r = 2)").unwrap(), !a().and(b()));
        assert_eq!(
            parse("(r = 1 or r = 2) and r = 3").unwrap(),
            a().or(b()).and(c())
        );
        assert_eq!(
            parse("r = 1 and r = 2 and r = 3").unwrap(),
            a().and(b()).and(c())
        );
        assert_eq!(parse("not not r = 1").unwrap(), !!a());
        assert_eq!(parse("((r = 1))").unwrap(), a());
        assert_eq!(
            parse(" R = 1 ").map_err(|e| e.offset),
            Err(1),
            "fields are lower case"
        );
    }

    #[test]
    fn multi_line_rules() {
        let src = "stage in [active, loyal]\n  AND has tag \"need:sensitive-skin\"\n  AND NOT last_order_at within 30d";
        assert!(parse(src).is_ok());
        let e = err("stage = new\nand r ~ 3");
        assert_eq!((e.offset, e.line, e.column), (18, 2, 7));
    }

    #[test]
    fn the_error_names_position_and_what_was_expected() {
        let e = err("r >= 4 and stage ~ loyal");
        assert_eq!(e.offset, 17);
        assert_eq!(
            e.to_string(),
            "at 17 (line 1, column 18): expected `=`, `!=` or `in` after `stage`, found `~`"
        );
        let e = err("count.comment 3");
        assert_eq!(
            e.message,
            "expected a comparison operator (=, !=, <, <=, >, >=) or `in` after `count.comment`, found `3`"
        );
    }

    #[test]
    fn type_errors_name_the_valid_values() {
        let e = err("stage = 5");
        assert_eq!(e.offset, 8);
        assert_eq!(
            e.message,
            "expected a stage (potential, new, active, loyal, churned) after `=`, found `5`"
        );
        let e = err("tier in [high_value, vip]");
        assert_eq!(e.offset, 21);
        assert!(e.message.contains("potential_high_value"), "{e}");
        let e = err("stage > new");
        assert_eq!(e.offset, 6);
        assert_eq!(
            e.message,
            "`stage` can only be compared with `=`, `!=` or `in`, not `>`"
        );
        assert!(err("r = 6").message.contains("a score from 1 to 5 for `r`"));
        assert!(err("r = 0").message.contains("a score from 1 to 5"));
        assert!(err("orders_count = new").message.contains("a whole number"));
        assert!(err("following = 1").message.contains("`true` or `false`"));
        assert!(
            err("last_order_at = 3")
                .message
                .contains("`within` or `before`")
        );
        assert!(
            err("last_order_at within 30")
                .message
                .contains("a duration such as `30d`")
        );
    }

    #[test]
    fn unknown_names() {
        let e = err("count.commment > 1");
        assert_eq!(e.offset, 6);
        assert!(
            e.message
                .starts_with("unknown event type `commment`; expected one of")
        );
        assert!(err("count > 1").message.contains("count.<event type>"));
        let e = err("score >= 4");
        assert_eq!(e.offset, 0);
        assert!(
            e.message
                .starts_with("unknown field `score`; expected one of stage, tier, r")
        );
        let e = err("has platform tiktok");
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("wechat"));
        assert!(
            err("has colour \"red\"")
                .message
                .contains("`tag` or `platform` after `has`")
        );
        assert!(err("has tag need").message.contains("a quoted tag"));
        assert_eq!(err("has tag \"\"").message, "a tag cannot be empty");
    }

    #[test]
    fn structural_errors() {
        assert_eq!(
            err("").message,
            "expected a condition such as `stage = loyal`, found the end of the rule"
        );
        assert_eq!(
            err("r = 1 and").message,
            "expected a condition (a field such as `stage`, `has tag \"…\"`, `not` or `(`), found the end of the rule"
        );
        assert_eq!(
            err("r = 1 r = 2").message,
            "expected `and`, `or` or the end of the rule, found `r`"
        );
        let e = err("(r = 1 or r = 2");
        assert_eq!(e.offset, 15);
        assert!(e.message.contains("`)` to close the `(` at 0"));
        assert!(err("r = 1)").message.contains("found `)`"));
        assert!(err("and = 1").message.contains("expected a condition"));
        assert!(
            err("stage in new")
                .message
                .contains("expected `[` after `in`")
        );
        assert!(
            err("stage in [new active]")
                .message
                .contains("`,` or `]` after `new`")
        );
        assert!(err("stage in []").message.contains("a stage"));
    }

    #[test]
    fn limits_on_size_and_depth() {
        let deep = format!("{}r = 1{}", "(".repeat(40), ")".repeat(40));
        assert!(err(&deep).message.contains("nests more than 32"));
        let nots = format!("{}r = 1", "not ".repeat(40));
        assert!(err(&nots).message.contains("nests more than 32"));
        let ok = format!("{}r = 1{}", "(".repeat(31), ")".repeat(31));
        assert!(parse(&ok).is_ok());
        let wide = vec!["r = 1"; MAX_CONDITIONS + 1].join(" or ");
        assert!(err(&wide).message.contains("at most 256 conditions"));
        assert!(parse(&vec!["r = 1"; MAX_CONDITIONS].join(" or ")).is_ok());
    }
}
