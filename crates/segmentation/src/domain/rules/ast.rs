use std::fmt;

use crate::domain::DAY_US;
use crate::domain::lifecycle::Stage;
use crate::domain::rfm::ValueTier;

/// A parsed, type-checked segment rule. `Display` prints it back in the rule syntax, with the
/// parentheses it needs plus those around an `and` inside an `or`; parsing that text gives the same
/// rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
    Not(Box<Rule>),
    Condition(Condition),
}

impl Rule {
    pub fn and(self, other: Rule) -> Rule {
        Rule::And(Box::new(self), Box::new(other))
    }

    pub fn or(self, other: Rule) -> Rule {
        Rule::Or(Box::new(self), Box::new(other))
    }

    /// Whether membership can change by the clock alone (the rule has a `within` or `before`), so
    /// the time sweep has to re-evaluate it.
    pub fn is_time_dependent(&self) -> bool {
        match self {
            Rule::And(a, b) | Rule::Or(a, b) => a.is_time_dependent() || b.is_time_dependent(),
            Rule::Not(a) => a.is_time_dependent(),
            Rule::Condition(c) => matches!(c, Condition::Time { .. }),
        }
    }

    /// Binding strength, for printing only the parentheses that are needed.
    fn precedence(&self) -> u8 {
        match self {
            Rule::Or(..) => 1,
            Rule::And(..) => 2,
            Rule::Not(_) => 3,
            Rule::Condition(_) => 4,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, min_precedence: u8) -> fmt::Result {
        if self.precedence() < min_precedence {
            f.write_str("(")?;
            self.write(f, 0)?;
            return f.write_str(")");
        }
        // `and` and `or` associate to the left, so a right operand of the same kind needs brackets.
        // An `and` inside an `or` gets them too: not needed, but nobody has to recall precedence.
        let or_operand = |rule: &Rule, min: u8| match rule {
            Rule::And(..) => 3,
            _ => min,
        };
        match self {
            Rule::Or(a, b) => {
                a.write(f, or_operand(a, 1))?;
                f.write_str(" or ")?;
                b.write(f, or_operand(b, 2))
            }
            Rule::And(a, b) => {
                a.write(f, 2)?;
                f.write_str(" and ")?;
                b.write(f, 3)
            }
            Rule::Not(a) => {
                f.write_str("not ")?;
                a.write(f, 3)
            }
            Rule::Condition(c) => fmt::Display::fmt(c, f),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

impl std::ops::Not for Rule {
    type Output = Rule;

    fn not(self) -> Rule {
        Rule::Not(Box::new(self))
    }
}

impl From<Condition> for Rule {
    fn from(condition: Condition) -> Self {
        Rule::Condition(condition)
    }
}

/// One test against one profile field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `r >= 4`, `stage = loyal`, `following = true`
    Compare {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    /// `stage in [new, active]`: equal to any of the values.
    In { field: Field, values: Vec<Value> },
    /// `last_order_at within 30d`, `first_seen_at before 90d`
    Time {
        field: TimeField,
        relation: TimeRelation,
        ago: Ago,
    },
    /// `has tag "need:sensitive-skin"`
    HasTag(String),
    /// `has platform douyin`
    HasPlatform(String),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
            Condition::In { field, values } => {
                write!(f, "{field} in [")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    fmt::Display::fmt(value, f)?;
                }
                f.write_str("]")
            }
            Condition::Time {
                field,
                relation,
                ago,
            } => write!(f, "{field} {relation} {ago}"),
            Condition::HasTag(tag) => {
                f.write_str("has tag ")?;
                write_quoted(f, tag)
            }
            Condition::HasPlatform(platform) => write!(f, "has platform {platform}"),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// A profile field that is compared with `=`, `<`, `in` and the like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Stage,
    Tier,
    /// RFM scores, 1..=5; a profile that never ordered has none, and every comparison with a missing
    /// score is false.
    Recency,
    Frequency,
    Monetary,
    /// Events of one type (`count.comment`).
    Count(String),
    OrdersCount,
    OrdersTotalCents,
    RefundedCents,
    Following,
}

/// What values a field takes, which decides the operators and literals it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Stage,
    Tier,
    Score,
    Integer,
    Bool,
}

impl Field {
    /// Fields by name, except `count.<event type>`.
    pub const NAMED: &'static [(&'static str, Field)] = &[
        ("stage", Field::Stage),
        ("tier", Field::Tier),
        ("r", Field::Recency),
        ("f", Field::Frequency),
        ("m", Field::Monetary),
        ("orders_count", Field::OrdersCount),
        ("orders_total_cents", Field::OrdersTotalCents),
        ("refunded_cents", Field::RefundedCents),
        ("following", Field::Following),
    ];

    pub fn kind(&self) -> FieldKind {
        match self {
            Field::Stage => FieldKind::Stage,
            Field::Tier => FieldKind::Tier,
            Field::Recency | Field::Frequency | Field::Monetary => FieldKind::Score,
            Field::Count(_)
            | Field::OrdersCount
            | Field::OrdersTotalCents
            | Field::RefundedCents => FieldKind::Integer,
            Field::Following => FieldKind::Bool,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Field::Count(event_type) = self {
            return write!(f, "count.{event_type}");
        }
        let name = Field::NAMED
            .iter()
            .find(|(_, field)| field == self)
            .map_or("?", |(name, _)| name);
        f.write_str(name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether the operator needs ordered values (numbers), as opposed to equality only.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A literal on the right of a comparison, of the type its field takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Stage(Stage),
    Tier(ValueTier),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => fmt::Display::fmt(n, f),
            Value::Stage(stage) => fmt::Display::fmt(stage, f),
            Value::Tier(tier) => fmt::Display::fmt(tier, f),
            Value::Bool(b) => fmt::Display::fmt(b, f),
        }
    }
}

/// A profile timestamp that relative times apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    FirstSeenAt,
    LastSeenAt,
    LastInteractionAt,
    FirstOrderAt,
    LastOrderAt,
}

impl TimeField {
    pub const ALL: [TimeField; 5] = [
        TimeField::FirstSeenAt,
        TimeField::LastSeenAt,
        TimeField::LastInteractionAt,
        TimeField::FirstOrderAt,
        TimeField::LastOrderAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TimeField::FirstSeenAt => "first_seen_at",
            TimeField::LastSeenAt => "last_seen_at",
            TimeField::LastInteractionAt => "last_interaction_at",
            TimeField::FirstOrderAt => "first_order_at",
            TimeField::LastOrderAt => "last_order_at",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for TimeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRelation {
    /// At or after `now - ago`.
    Within,
    /// Strictly before `now - ago`: longer ago than that.
    Before,
}

impl fmt::Display for TimeRelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeRelation::Within => "within",
            TimeRelation::Before => "before",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Hours,
    Days,
    Weeks,
}

impl TimeUnit {
    pub fn micros(self) -> i64 {
        match self {
            TimeUnit::Hours => DAY_US / 24,
            TimeUnit::Days => DAY_US,
            TimeUnit::Weeks => 7 * DAY_US,
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Hours => "h",
            TimeUnit::Days => "d",
            TimeUnit::Weeks => "w",
        }
    }
}

/// A span of time back from now, as written (`30d` stays `30d`, not `720h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ago {
    pub amount: u32,
    pub unit: TimeUnit,
}

impl Ago {
    pub fn micros(self) -> i64 {
        i64::from(self.amount).saturating_mul(self.unit.micros())
    }
}

impl fmt::Display for Ago {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}
