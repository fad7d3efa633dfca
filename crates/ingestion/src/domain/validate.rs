use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use socialops_proto::Timestamp;
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{AliasKind, Platform, SocialEvent};

use super::AliasHasher;

/// 2000-01-01T00:00:00Z: nothing a brand account did happened before it.
const EARLIEST_OCCURRED_AT_S: i64 = 946_684_800;
const MAX_ID_CHARS: usize = 256;
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_KEY_CHARS: usize = 128;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_clock_skew: Duration,
    pub max_text_chars: usize,
    pub max_event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clock_skew: Duration::from_secs(300),
            max_text_chars: 10_000,
            max_event_bytes: 64 * 1024,
        }
    }
}

/// Why an event was refused. The text is what the producer sees, so it names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{0}: required")]
    Missing(&'static str),
    #[error("{field}: longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{0}: contains control characters")]
    ControlCharacters(&'static str),
    #[error("event is {size} bytes encoded, more than the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("tenant_id: `{0}` must be 1-64 characters of a-z, 0-9, '-' and '_'")]
    InvalidTenant(String),
    #[error("tenant_id: `{0}` does not match the token's tenant")]
    ForeignTenant(String),
    #[error("platform: unknown or unspecified platform {0}")]
    UnknownPlatform(i32),
    #[error("occurred_at: {0}")]
    OccurredAt(String),
    #[error("payload: no event type set")]
    MissingPayload,
    #[error("{field}: must not be negative, got {value}")]
    Negative { field: &'static str, value: i64 },
    #[error("{field}: `{value}` is not an ISO 4217 currency code")]
    Currency { field: &'static str, value: String },
    #[error("attributes: more than {MAX_ATTRIBUTES} entries")]
    TooManyAttributes,
    #[error("identify.aliases[{index}]: {reason}")]
    Alias { index: usize, reason: &'static str },
}

/// Checks an event against the contract and turns it into its canonical form: `received_at` set,
/// currencies upper-cased, alias values replaced by their hashes.
#[derive(Debug, Clone)]
pub struct Validator {
    limits: Limits,
    aliases: AliasHasher,
}

impl Validator {
    pub fn new(limits: Limits, aliases: AliasHasher) -> Self {
        Self { limits, aliases }
    }

    pub fn canonicalise(
        &self,
        mut event: SocialEvent,
        now: SystemTime,
    ) -> Result<SocialEvent, Rejection> {
        let size = event.encoded_len();
        if size > self.limits.max_event_bytes {
            return Err(Rejection::TooLarge {
                size,
                max: self.limits.max_event_bytes,
            });
        }
        id("event_id", &event.event_id)?;
        tenant(&event.tenant_id)?;
        id("user_id", &event.user_id)?;
        match Platform::try_from(event.platform) {
            Ok(Platform::Unspecified) | Err(_) => {
                return Err(Rejection::UnknownPlatform(event.platform));
            }
            Ok(_) => {}
        }
        self.occurred_at(event.occurred_at.as_ref(), now)?;
        self.attributes(&event)?;
        let payload = event.payload.as_mut().ok_or(Rejection::MissingPayload)?;
        self.payload(payload)?;
        event.received_at = Some(timestamp(now));
        Ok(event)
    }

    fn occurred_at(&self, at: Option<&Timestamp>, now: SystemTime) -> Result<(), Rejection> {
        let at = at.ok_or(Rejection::Missing("occurred_at"))?;
        if !(0..1_000_000_000).contains(&at.nanos) {
            return Err(Rejection::OccurredAt(format!(
                "nanos {} out of range",
                at.nanos
            )));
        }
        if at.seconds < EARLIEST_OCCURRED_AT_S {
            return Err(Rejection::OccurredAt("before 2000-01-01T00:00:00Z".into()));
        }
        let latest = now + self.limits.max_clock_skew;
        let latest_s = latest
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if u64::try_from(at.seconds).unwrap_or(u64::MAX) > latest_s {
            return Err(Rejection::OccurredAt(format!(
                "more than {} in the future",
                humantime::format_duration(self.limits.max_clock_skew)
            )));
        }
        Ok(())
    }

    fn attributes(&self, event: &SocialEvent) -> Result<(), Rejection> {
        if event.attributes.len() > MAX_ATTRIBUTES {
            return Err(Rejection::TooManyAttributes);
        }
        for (key, value) in &event.attributes {
            if key.is_empty() {
                return Err(Rejection::Missing("attributes key"));
            }
            limit("attributes key", key, MAX_ATTRIBUTE_KEY_CHARS)?;
            if key.chars().any(char::is_control) {
                return Err(Rejection::ControlCharacters("attributes key"));
            }
            self.text("attributes value", value)?;
        }
        Ok(())
    }

    /// Free text: within the length limit, and no control character but tab and line breaks, since
    /// PostgreSQL cannot store a NUL in text or JSON.
    fn text(&self, field: &'static str, value: &str) -> Result<(), Rejection> {
        limit(field, value, self.limits.max_text_chars)?;
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(Rejection::ControlCharacters(field));
        }
        Ok(())
    }

    fn payload(&self, payload: &mut Payload) -> Result<(), Rejection> {
        match payload {
            Payload::PostPublished(p) => {
                id("post_published.post_id", &p.post_id)?;
                self.text("post_published.text", &p.text)?;
                self.text("post_published.url", &p.url)
            }
            Payload::Comment(c) => {
                id("comment.comment_id", &c.comment_id)?;
                optional_id("comment.post_id", &c.post_id)?;
                optional_id("comment.reply_to_id", &c.reply_to_id)?;
                self.text("comment.text", &c.text)
            }
            Payload::Mention(m) => {
                if m.text.trim().is_empty() {
                    return Err(Rejection::Missing("mention.text"));
                }
                optional_id("mention.mention_id", &m.mention_id)?;
                optional_id("mention.author", &m.author)?;
                self.text("mention.text", &m.text)?;
                self.text("mention.url", &m.url)
            }
            Payload::Like(l) => id("like.post_id", &l.post_id),
            Payload::Share(s) => {
                id("share.post_id", &s.post_id)?;
                optional_id("share.channel", &s.channel)
            }
            Payload::Follow(f) => optional_id("follow.account_id", &f.account_id),
            Payload::Unfollow(u) => optional_id("unfollow.account_id", &u.account_id),
            Payload::DirectMessage(d) => {
                id("direct_message.message_id", &d.message_id)?;
                optional_id("direct_message.conversation_id", &d.conversation_id)?;
                optional_id("direct_message.reply_to_id", &d.reply_to_id)?;
                self.text("direct_message.text", &d.text)
            }
            Payload::ContentImpression(c) => {
                id("content_impression.content_id", &c.content_id)?;
                optional_id("content_impression.category", &c.category)
            }
            Payload::ContentClick(c) => {
                id("content_click.content_id", &c.content_id)?;
                optional_id("content_click.category", &c.category)?;
                self.text("content_click.url", &c.url)
            }
            Payload::OrderPlaced(o) => {
                id("order_placed.order_id", &o.order_id)?;
                non_negative("order_placed.amount_cents", o.amount_cents)?;
                currency("order_placed.currency", &mut o.currency)?;
                optional_id("order_placed.coupon_code", &o.coupon_code)?;
                for item in &o.items {
                    optional_id("order_placed.items.sku", &item.sku)?;
                    optional_id("order_placed.items.category", &item.category)?;
                    non_negative("order_placed.items.unit_price_cents", item.unit_price_cents)?;
                }
                Ok(())
            }
            Payload::OrderRefunded(r) => {
                id("order_refunded.order_id", &r.order_id)?;
                non_negative("order_refunded.amount_cents", r.amount_cents)?;
                currency("order_refunded.currency", &mut r.currency)?;
                self.text("order_refunded.reason", &r.reason)
            }
            Payload::CouponRedeemed(c) => {
                id("coupon_redeemed.coupon_code", &c.coupon_code)?;
                optional_id("coupon_redeemed.order_id", &c.order_id)?;
                non_negative("coupon_redeemed.discount_cents", c.discount_cents)?;
                currency("coupon_redeemed.currency", &mut c.currency)
            }
            Payload::Referral(r) => {
                id("referral.inviter_user_id", &r.inviter_user_id)?;
                id("referral.invitee_user_id", &r.invitee_user_id)?;
                optional_id("referral.referral_code", &r.referral_code)
            }
            Payload::Identify(identify) => {
                if identify.aliases.is_empty() {
                    return Err(Rejection::Missing("identify.aliases"));
                }
                for (index, alias) in identify.aliases.iter_mut().enumerate() {
                    let reason = match AliasKind::try_from(alias.kind) {
                        Ok(AliasKind::Unspecified) | Err(_) => Some("unknown or unspecified kind"),
                        Ok(AliasKind::OpenId) if alias.platform == Platform::Unspecified as i32 => {
                            Some("an open id needs its platform")
                        }
                        _ if !alias.value.trim().is_empty() => None,
                        _ if is_hex_digest(&alias.value_hash) => None,
                        _ => Some("needs a value or a 64-character hex value_hash"),
                    };
                    if let Some(reason) = reason {
                        return Err(Rejection::Alias { index, reason });
                    }
                    if !alias.value.trim().is_empty() {
                        limit("identify.aliases.value", &alias.value, MAX_ID_CHARS)?;
                        alias.value_hash = self.aliases.hash(alias);
                    }
                    alias.value.clear();
                }
                Ok(())
            }
        }
    }
}

/// Accepts an event's tenant for a caller scoped to `token_tenant`: empty means the token's own.
pub fn scope_tenant(event: &mut SocialEvent, token_tenant: &str) -> Result<(), Rejection> {
    if event.tenant_id.is_empty() {
        event.tenant_id = token_tenant.to_owned();
    }
    if event.tenant_id != token_tenant {
        return Err(Rejection::ForeignTenant(event.tenant_id.clone()));
    }
    Ok(())
}

pub fn timestamp(at: SystemTime) -> Timestamp {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

fn tenant(value: &str) -> Result<(), Rejection> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if value.is_empty() {
        return Err(Rejection::Missing("tenant_id"));
    }
    if !valid {
        return Err(Rejection::InvalidTenant(value.chars().take(80).collect()));
    }
    Ok(())
}

fn id(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(Rejection::Missing(field));
    }
    optional_id(field, value)
}

fn optional_id(field: &'static str, value: &str) -> Result<(), Rejection> {
    limit(field, value, MAX_ID_CHARS)?;
    if value.chars().any(char::is_control) {
        return Err(Rejection::ControlCharacters(field));
    }
    Ok(())
}

fn limit(field: &'static str, value: &str, max: usize) -> Result<(), Rejection> {
    // Byte length bounds the character count from above, so most values skip the count.
    if value.len() > max && value.chars().count() > max {
        return Err(Rejection::TooLong { field, max });
    }
    Ok(())
}

fn non_negative(field: &'static str, value: i64) -> Result<(), Rejection> {
    if value < 0 {
        return Err(Rejection::Negative { field, value });
    }
    Ok(())
}

fn currency(field: &'static str, value: &mut String) -> Result<(), Rejection> {
    let code = value.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err(Rejection::Missing(field));
    }
    if iso_currency::Currency::from_code(&code).is_none() {
        return Err(Rejection::Currency {
            field,
            value: value.chars().take(16).collect(),
        });
    }
    *value = code;
    Ok(())
}

fn is_hex_digest(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use socialops_proto::events::v1::{Alias, Comment, Identify, OrderPlaced};

    fn validator() -> Validator {
        Validator::new(Limits::default(), AliasHasher::new("test-key".into()))
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_793_520_000)
    }

    fn event(payload: Payload) -> SocialEvent {
        SocialEvent {
            event_id: "e-1".into(),
            tenant_id: "acme".into(),
            platform: Platform::Weibo as i32,
            user_id: "u-1".into(),
            occurred_at: Some(Timestamp {
                seconds: 1_793_519_000,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn comment(text: &str) -> Payload {
        Payload::Comment(Comment {
            comment_id: "c-1".into(),
            text: text.into(),
            ..Default::default()
        })
    }

    fn order(amount_cents: i64, currency: &str) -> Payload {
        Payload::OrderPlaced(OrderPlaced {
            order_id: "o-1".into(),
            amount_cents,
            currency: currency.into(),
            ..Default::default()
        })
    }

    fn reject(event: SocialEvent) -> String {
        validator()
            .canonicalise(event, now())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_event_is_stamped_and_canonicalised() {
        let out = validator()
            .canonicalise(event(order(1999, "cny")), now())
            .unwrap();
        assert_eq!(out.received_at.unwrap().seconds, 1_793_520_000);
        let Some(Payload::OrderPlaced(o)) = out.payload else {
            panic!()
        };
        assert_eq!(o.currency, "CNY");
    }

    #[test]
    fn required_fields_are_named() {
        let mut e = event(comment("hi"));
        e.event_id.clear();
        assert_eq!(reject(e), "event_id: required");
        let mut e = event(comment("hi"));
        e.user_id = "  ".into();
        assert_eq!(reject(e), "user_id: required");
        let mut e = event(comment("hi"));
        e.payload = None;
        assert_eq!(reject(e), "payload: no event type set");
        let mut e = event(comment("hi"));
        e.occurred_at = None;
        assert_eq!(reject(e), "occurred_at: required");
    }

    #[test]
    fn platform_and_tenant_are_checked() {
        let mut e = event(comment("hi"));
        e.platform = 0;
        assert!(reject(e).starts_with("platform:"));
        let mut e = event(comment("hi"));
        e.platform = 99;
        assert!(reject(e).contains("99"));
        let mut e = event(comment("hi"));
        e.tenant_id = "Acme Corp".into();
        assert!(reject(e).starts_with("tenant_id:"));
    }

    #[test]
    fn occurred_at_must_be_after_2000_and_not_beyond_the_skew() {
        let mut e = event(comment("hi"));
        e.occurred_at = Some(Timestamp {
            seconds: EARLIEST_OCCURRED_AT_S - 1,
            nanos: 0,
        });
        assert_eq!(reject(e), "occurred_at: before 2000-01-01T00:00:00Z");
        let mut e = event(comment("hi"));
        e.occurred_at = Some(Timestamp {
            seconds: 1_793_520_000 + 301,
            nanos: 0,
        });
        assert_eq!(reject(e), "occurred_at: more than 5m in the future");
        let mut e = event(comment("hi"));
        e.occurred_at = Some(Timestamp {
            seconds: 1_793_520_000 + 299,
            nanos: 0,
        });
        assert!(validator().canonicalise(e, now()).is_ok());
    }

    #[test]
    fn amounts_and_currencies() {
        assert_eq!(
            reject(event(order(-1, "CNY"))),
            "order_placed.amount_cents: must not be negative, got -1"
        );
        assert_eq!(
            reject(event(order(1, "XYZ"))),
            "order_placed.currency: `XYZ` is not an ISO 4217 currency code"
        );
        assert_eq!(
            reject(event(order(1, ""))),
            "order_placed.currency: required"
        );
        assert!(
            validator()
                .canonicalise(event(order(0, "USD")), now())
                .is_ok()
        );
    }

    #[test]
    fn text_holds_no_control_character_but_tab_and_line_breaks() {
        assert_eq!(
            reject(event(comment("nul \u{0} inside"))),
            "comment.text: contains control characters"
        );
        assert_eq!(
            reject(event(comment("bell \u{7}"))),
            "comment.text: contains control characters"
        );
        assert!(
            validator()
                .canonicalise(event(comment("line one\r\n\tline two")), now())
                .is_ok()
        );
        let mut with_attribute = event(comment("fine"));
        with_attribute
            .attributes
            .insert("campaign".into(), "a\u{0}b".into());
        assert_eq!(
            reject(with_attribute),
            "attributes value: contains control characters"
        );
    }

    #[test]
    fn text_and_size_limits() {
        let long = "好".repeat(10_001);
        assert_eq!(
            reject(event(comment(&long))),
            "comment.text: longer than 10000 characters"
        );
        assert!(
            validator()
                .canonicalise(event(comment(&"好".repeat(10_000))), now())
                .is_ok()
        );
        let small = Validator::new(
            Limits {
                max_event_bytes: 100,
                ..Limits::default()
            },
            AliasHasher::new("k".into()),
        );
        let err = small
            .canonicalise(event(comment(&"a".repeat(200))), now())
            .unwrap_err();
        assert!(matches!(err, Rejection::TooLarge { max: 100, .. }), "{err}");
    }

    #[test]
    fn identify_hashes_raw_aliases_and_drops_them() {
        let identify = Payload::Identify(Identify {
            aliases: vec![
                Alias {
                    kind: AliasKind::Phone as i32,
                    value: "+86 13800138000".into(),
                    ..Default::default()
                },
                Alias {
                    kind: AliasKind::UnionId as i32,
                    value_hash: "a".repeat(64),
                    ..Default::default()
                },
            ],
        });
        let out = validator().canonicalise(event(identify), now()).unwrap();
        let Some(Payload::Identify(identify)) = out.payload else {
            panic!()
        };
        assert!(
            identify
                .aliases
                .iter()
                .all(|a| a.value.is_empty() && a.value_hash.len() == 64)
        );
        assert!(!format!("{identify:?}").contains("13800138000"));

        let open_id = Payload::Identify(Identify {
            aliases: vec![Alias {
                kind: AliasKind::OpenId as i32,
                value: "o1".into(),
                ..Default::default()
            }],
        });
        assert_eq!(
            reject(event(open_id)),
            "identify.aliases[0]: an open id needs its platform"
        );
    }

    #[test]
    fn scope_tenant_fills_and_guards() {
        let mut e = event(comment("hi"));
        e.tenant_id.clear();
        scope_tenant(&mut e, "acme").unwrap();
        assert_eq!(e.tenant_id, "acme");
        assert_eq!(
            scope_tenant(&mut event(comment("hi")), "globex")
                .unwrap_err()
                .to_string(),
            "tenant_id: `acme` does not match the token's tenant"
        );
    }
}
