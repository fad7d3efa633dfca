//! Coupon pools and their codes: what a pool allows, whether a code may be issued or redeemed and
//! for how much, and new codes. The store locks the pool's row (and the code's) before these are
//! asked, so what they answer holds when it is written.

use rand::{CryptoRng, RngExt};

/// Characters of a code after its prefix: Crockford's base 32 (no I, L, O or U), so a code read
/// aloud or typed from a screenshot is not mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Twelve characters: 60 random bits, so guessing one of a million issued codes takes about 10^12
/// tries.
const CODE_LENGTH: usize = 12;
const MAX_PREFIX: usize = 16;
const MAX_ID: usize = 64;

/// What a pool's owner sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub pool_id: String,
    pub name: String,
    pub code_prefix: String,
    pub value_cents: i64,
    pub currency: String,
    /// Codes ever issued; 0: no limit.
    pub max_issued: u64,
    /// Sum of discounts redeemed; 0: no limit.
    pub value_budget_cents: i64,
    /// Codes one user may be issued; at least 1.
    pub per_user_limit: u32,
    pub min_order_cents: i64,
    /// How long a code is valid once issued; 0: until the pool ends.
    pub valid_for_us: i64,
    pub ends_at_us: Option<i64>,
    /// A full refund within this long after redemption restores the code; 0: never.
    pub restore_window_us: i64,
}

/// A pool with what its budgets have spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub spec: PoolSpec,
    pub num_issued: u64,
    pub num_redeemed: u64,
    pub redeemed_value_cents: i64,
    pub created_at_us: i64,
}

/// One code as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub code: String,
    pub pool_id: String,
    pub user_id: String,
    pub issue_key: String,
    pub campaign_id: String,
    pub value_cents: i64,
    pub currency: String,
    pub issued_at_us: i64,
    pub expires_at_us: Option<i64>,
    pub redemption: Option<Redeemed>,
}

/// What a code was redeemed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub at_us: i64,
    pub order_id: String,
    /// Unknown when the redemption came from a `coupon_redeemed` event.
    pub order_amount_cents: Option<i64>,
    pub discount_cents: i64,
}

/// Why a code is not issued or not redeemed. Each says it in words for the caller and the code's
/// history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownPool(String),
    UnknownCode,
    PoolEnded,
    CountBudget { max_issued: u64 },
    UserLimit { limit: u32 },
    NotHolder,
    AlreadyRedeemed,
    Expired,
    BelowMinimum { min_order_cents: i64 },
    ValueBudget { remaining_cents: i64 },
}

impl Refusal {
    /// The budget or the user's limit is used up (as opposed to a code or order that does not fit).
    pub fn is_exhausted(&self) -> bool {
        matches!(
            self,
            Self::CountBudget { .. } | Self::UserLimit { .. } | Self::ValueBudget { .. }
        )
    }

    /// A short name for counts and the code's history.
    pub fn name(&self) -> &'static str {
        match self {
            Self::UnknownPool(_) => "unknown_pool",
            Self::UnknownCode => "unknown_code",
            Self::PoolEnded => "pool_ended",
            Self::CountBudget { .. } => "count_budget",
            Self::UserLimit { .. } => "user_limit",
            Self::NotHolder => "not_holder",
            Self::AlreadyRedeemed => "already_redeemed",
            Self::Expired => "expired",
            Self::BelowMinimum { .. } => "below_minimum",
            Self::ValueBudget { .. } => "value_budget",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownPool(pool) => write!(f, "no coupon pool {pool}"),
            Self::UnknownCode => f.write_str("no such coupon code"),
            Self::PoolEnded => f.write_str("the coupon pool has ended"),
            Self::CountBudget { max_issued } => {
                write!(
                    f,
                    "the pool's count budget is spent: {max_issued} codes issued"
                )
            }
            Self::UserLimit { limit } => {
                write!(
                    f,
                    "the user already holds {limit} code(s) from this pool, the limit"
                )
            }
            Self::NotHolder => f.write_str("the code was issued to another user"),
            Self::AlreadyRedeemed => f.write_str("the code is already redeemed for another order"),
            Self::Expired => f.write_str("the code has expired"),
            Self::BelowMinimum { min_order_cents } => write!(
                f,
                "the order is below the pool's minimum of {}",
                cents(*min_order_cents)
            ),
            Self::ValueBudget { remaining_cents } => write!(
                f,
                "the discount would exceed the pool's value budget ({} left)",
                cents(*remaining_cents)
            ),
        }
    }
}

fn cents(value: i64) -> String {
    format!("{}.{:02}", value / 100, (value % 100).abs())
}

impl PoolSpec {
    /// Every problem with the spec, in one message naming the fields.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.pool_id.is_empty()
            || self.pool_id.len() > MAX_ID
            || !self
                .pool_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(format!("id: 1 to {MAX_ID} of A-Z a-z 0-9 _ -"));
        }
        if self.code_prefix.len() > MAX_PREFIX
            || !self
                .code_prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            problems.push(format!("code_prefix: up to {MAX_PREFIX} of A-Z 0-9 -"));
        }
        if self.value_cents <= 0 {
            problems.push("value_cents: must be positive".to_owned());
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push("currency: an ISO 4217 code such as CNY".to_owned());
        }
        if self.value_budget_cents < 0 {
            problems.push("value_budget_cents: 0 (no limit) or positive".to_owned());
        }
        if self.value_budget_cents > 0 && self.value_budget_cents < self.value_cents {
            problems.push("value_budget_cents: smaller than one code's value".to_owned());
        }
        if self.min_order_cents < 0 {
            problems.push("min_order_cents: 0 or positive".to_owned());
        }
        if self.valid_for_us < 0 || self.restore_window_us < 0 {
            problems.push("valid_for_seconds, restore_window_seconds: 0 or positive".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("coupon pool: {}", problems.join("; ")))
        }
    }

    /// When a code issued at `issued_at_us` stops being valid.
    pub fn expiry(&self, issued_at_us: i64) -> Option<i64> {
        let valid_for =
            (self.valid_for_us > 0).then(|| issued_at_us.saturating_add(self.valid_for_us));
        match (valid_for, self.ends_at_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether the pool may issue one more code to a user who holds `held` codes from it.
pub fn check_issue(pool: &Pool, held: u64, now_us: i64) -> Result<(), Refusal> {
    let spec = &pool.spec;
    if spec.ends_at_us.is_some_and(|end| now_us >= end) {
        return Err(Refusal::PoolEnded);
    }
    if spec.max_issued > 0 && pool.num_issued >= spec.max_issued {
        return Err(Refusal::CountBudget {
            max_issued: spec.max_issued,
        });
    }
    if held >= u64::from(spec.per_user_limit.max(1)) {
        return Err(Refusal::UserLimit {
            limit: spec.per_user_limit.max(1),
        });
    }
    Ok(())
}

/// A redemption asked for: by whom (unknown for an event without a user), for which order and how
/// much it was (unknown for a `coupon_redeemed` event), and the discount the shop applied if it says.
#[derive(Debug, Clone)]
pub struct RedeemRequest<'a> {
    pub user_id: Option<&'a str>,
    pub order_id: &'a str,
    pub order_amount_cents: Option<i64>,
    pub applied_cents: Option<i64>,
    pub at_us: i64,
}

/// What redeeming `coupon` for the request comes to: the discount, or that it was already redeemed
/// for this same order (`Ok(None)`), or why not.
pub fn check_redeem(
    coupon: &Coupon,
    pool: &Pool,
    request: &RedeemRequest<'_>,
) -> Result<Option<i64>, Refusal> {
    if let Some(done) = &coupon.redemption {
        return if done.order_id == request.order_id {
            Ok(None)
        } else {
            Err(Refusal::AlreadyRedeemed)
        };
    }
    if request.user_id.is_some_and(|user| user != coupon.user_id) {
        return Err(Refusal::NotHolder);
    }
    if coupon.expires_at_us.is_some_and(|end| request.at_us >= end) {
        return Err(Refusal::Expired);
    }
    if let Some(amount) = request.order_amount_cents
        && amount < pool.spec.min_order_cents
    {
        return Err(Refusal::BelowMinimum {
            min_order_cents: pool.spec.min_order_cents,
        });
    }
    let mut discount = coupon.value_cents;
    if let Some(applied) = request.applied_cents.filter(|&c| c > 0) {
        discount = discount.min(applied);
    }
    if let Some(amount) = request.order_amount_cents {
        discount = discount.min(amount.max(0));
    }
    let budget = pool.spec.value_budget_cents;
    if budget > 0 && pool.redeemed_value_cents.saturating_add(discount) > budget {
        return Err(Refusal::ValueBudget {
            remaining_cents: (budget - pool.redeemed_value_cents).max(0),
        });
    }
    Ok(Some(discount))
}

/// Whether a refund of `refunded_cents` (0: the whole order) at `at_us` makes the redeemed code
/// usable again: the pool restores within its window, and the refund is of the whole order.
pub fn restores(coupon: &Coupon, pool: &Pool, refunded_cents: i64, at_us: i64) -> bool {
    let Some(done) = &coupon.redemption else {
        return false;
    };
    let window = pool.spec.restore_window_us;
    let whole = refunded_cents <= 0 || done.order_amount_cents.is_none_or(|a| refunded_cents >= a);
    window > 0 && at_us >= done.at_us && at_us - done.at_us <= window && whole
}

/// A new code: the pool's prefix and twelve characters from a cryptographically secure `rng` (the
/// thread's generator is one).
pub fn new_code(prefix: &str, rng: &mut impl CryptoRng) -> String {
    let mut code = String::with_capacity(prefix.len() + CODE_LENGTH);
    code.push_str(prefix);
    for _ in 0..CODE_LENGTH {
        code.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool {
            spec: PoolSpec {
                pool_id: "WINBACK10".into(),
                name: "Win-back 10".into(),
                code_prefix: "WB-".into(),
                value_cents: 1_000,
                currency: "CNY".into(),
                max_issued: 2,
                value_budget_cents: 1_500,
                per_user_limit: 1,
                min_order_cents: 5_000,
                valid_for_us: 1_000,
                ends_at_us: Some(10_000),
                restore_window_us: 500,
            },
            num_issued: 0,
            num_redeemed: 0,
            redeemed_value_cents: 0,
            created_at_us: 0,
        }
    }

    fn coupon() -> Coupon {
        Coupon {
            code: "WB-0123456789AB".into(),
            pool_id: "WINBACK10".into(),
            user_id: "u1".into(),
            issue_key: "api:1".into(),
            campaign_id: String::new(),
            value_cents: 1_000,
            currency: "CNY".into(),
            issued_at_us: 100,
            expires_at_us: pool().spec.expiry(100),
            redemption: None,
        }
    }

    fn order(order_id: &str, amount: i64, at_us: i64) -> RedeemRequest<'_> {
        RedeemRequest {
            user_id: Some("u1"),
            order_id,
            order_amount_cents: Some(amount),
            applied_cents: None,
            at_us,
        }
    }

    #[test]
    fn expiry_is_the_earlier_of_validity_and_pool_end() {
        let mut spec = pool().spec;
        assert_eq!(spec.expiry(100), Some(1_100));
        assert_eq!(spec.expiry(9_500), Some(10_000));
        spec.valid_for_us = 0;
        assert_eq!(spec.expiry(100), Some(10_000));
        spec.ends_at_us = None;
        assert_eq!(spec.expiry(100), None);
    }

    #[test]
    fn issuing_stops_at_the_count_budget_the_user_limit_and_the_pool_end() {
        let mut pool = pool();
        assert_eq!(check_issue(&pool, 0, 0), Ok(()));
        assert_eq!(
            check_issue(&pool, 1, 0),
            Err(Refusal::UserLimit { limit: 1 })
        );
        pool.num_issued = 2;
        assert_eq!(
            check_issue(&pool, 0, 0),
            Err(Refusal::CountBudget { max_issued: 2 })
        );
        pool.num_issued = 0;
        assert_eq!(check_issue(&pool, 0, 10_000), Err(Refusal::PoolEnded));
    }

    #[test]
    fn a_redemption_takes_at_most_the_order_and_fits_the_value_budget() {
        let mut pool = pool();
        let coupon = coupon();
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o1", 6_000, 200)),
            Ok(Some(1_000))
        );
        pool.spec.min_order_cents = 0;
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o1", 600, 200)),
            Ok(Some(600))
        );
        pool.redeemed_value_cents = 1_000;
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o1", 6_000, 200)),
            Err(Refusal::ValueBudget {
                remaining_cents: 500
            })
        );
        let applied = RedeemRequest {
            applied_cents: Some(400),
            order_amount_cents: None,
            ..order("o1", 0, 200)
        };
        assert_eq!(check_redeem(&coupon, &pool, &applied), Ok(Some(400)));
    }

    #[test]
    fn a_code_is_redeemed_once_by_its_holder_before_it_expires() {
        let pool = pool();
        let mut coupon = coupon();
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o1", 4_000, 200)),
            Err(Refusal::BelowMinimum {
                min_order_cents: 5_000
            })
        );
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o1", 6_000, 1_100)),
            Err(Refusal::Expired)
        );
        let stranger = RedeemRequest {
            user_id: Some("u2"),
            ..order("o1", 6_000, 200)
        };
        assert_eq!(
            check_redeem(&coupon, &pool, &stranger),
            Err(Refusal::NotHolder)
        );
        coupon.redemption = Some(Redeemed {
            at_us: 200,
            order_id: "o1".into(),
            order_amount_cents: Some(6_000),
            discount_cents: 1_000,
        });
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o1", 6_000, 300)),
            Ok(None)
        );
        assert_eq!(
            check_redeem(&coupon, &pool, &order("o2", 6_000, 300)),
            Err(Refusal::AlreadyRedeemed)
        );
    }

    #[test]
    fn a_whole_refund_within_the_window_restores_the_code() {
        let pool = pool();
        let mut coupon = coupon();
        coupon.redemption = Some(Redeemed {
            at_us: 200,
            order_id: "o1".into(),
            order_amount_cents: Some(6_000),
            discount_cents: 1_000,
        });
        assert!(restores(&coupon, &pool, 0, 700));
        assert!(restores(&coupon, &pool, 6_000, 700));
        assert!(!restores(&coupon, &pool, 3_000, 700), "a partial refund");
        assert!(!restores(&coupon, &pool, 0, 701), "after the window");
        let mut never = pool.clone();
        never.spec.restore_window_us = 0;
        assert!(!restores(&coupon, &never, 0, 300));
    }

    #[test]
    fn codes_carry_the_prefix_and_twelve_unambiguous_characters() {
        let mut rng = rand::rng();
        let codes: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_code("WB-", &mut rng)).collect();
        assert_eq!(codes.len(), 10_000);
        for code in &codes {
            let tail = code.strip_prefix("WB-").unwrap();
            assert_eq!(tail.len(), CODE_LENGTH);
            assert!(tail.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        }
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let mut spec = pool().spec;
        assert_eq!(spec.validate(), Ok(()));
        spec.pool_id = "bad id".into();
        spec.currency = "yuan".into();
        spec.value_cents = 0;
        let problems = spec.validate().unwrap_err();
        assert!(problems.contains("id:"), "{problems}");
        assert!(problems.contains("currency:"), "{problems}");
        assert!(problems.contains("value_cents:"), "{problems}");
    }
}
