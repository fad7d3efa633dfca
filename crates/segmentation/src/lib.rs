//! The segmentation service: one profile per user per brand, RFM scores and value tiers, lifecycle
//! stages, tags, and rule-based segments whose membership changes are announced to the other
//! services.
//!
//! Flow: [`consume`] (canonical events, erasure requests), [`sweep`] (the clock),
//! [`update::rebuild`] (segment memberships after a rule is written) and [`api`] (gRPC)
//! → [`update::Updater`] → [`domain`] decides → [`store`] remembers and enqueues → the bus's outbox
//! relay publishes on `socialops.profiles.v1`.
//!
//! Membership is decided in two places that mean the same thing: [`domain::rules::evaluate`] for
//! the profiles an update touches, and [`store::predicate`] (the rule as a SQL condition) for
//! previews and for finding, in one scan, the profiles whose membership a new rule or the clock
//! changed; the store conformance tests hold the two to the same answers on both backends.
//!
//! # Segment rules
//!
//! A segment is a rule over profile fields, parsed once by [`domain::rules::parse`] (which also
//! type-checks it) and evaluated per profile by [`domain::rules::evaluate`] at a given time.
//!
//! ```text
//! stage in [active, loyal] and has tag "need:sensitive-skin"
//! tier = high_value or (r >= 4 and m >= 4)
//! count.comment >= 3 and not last_order_at within 30d
//! has platform douyin and following = true and first_seen_at before 90d
//! orders_total_cents >= 100000 and refunded_cents = 0
//! ```
//!
//! Conditions:
//!
//! | condition | meaning |
//! |---|---|
//! | `stage = loyal`, `stage != churned`, `stage in [new, active]` | lifecycle stage: `potential`, `new`, `active`, `loyal`, `churned` |
//! | `tier = high_value`, `tier in [..]` | value tier: `high_value`, `potential_high_value`, `regular`, `low_value`, `unscored` |
//! | `r >= 4`, `f = 1`, `m in [4, 5]` | RFM scores, 1 to 5 |
//! | `count.comment > 3` | events of one type: `comment`, `like`, `share`, `follow`, `content_click`, `order_placed`, … |
//! | `orders_count >= 2`, `orders_total_cents >= 100000`, `refunded_cents > 0` | lifetime orders and amounts in cents |
//! | `following = true` | follows the brand's account |
//! | `last_order_at within 30d` | at or after 30 days before now |
//! | `first_seen_at before 90d` | more than 90 days before now |
//! | `has tag "need:sensitive-skin"` | the profile has this tag |
//! | `has platform douyin` | the user was seen on this platform: `wechat`, `weibo`, `douyin`, `xiaohongshu`, `bilibili`, `zhihu`, `other` |
//!
//! - Comparisons are `=`, `!=`, `<`, `<=`, `>`, `>=`; `in [a, b, …]` is true when the field equals
//!   any listed value. Stages, tiers and `following` take only `=`, `!=` and `in`.
//! - Time fields are `first_seen_at`, `last_seen_at`, `last_interaction_at`, `first_order_at` and
//!   `last_order_at`; durations are whole hours, days or weeks: `12h`, `30d`, `2w`.
//! - Combine with `and`, `or`, `not` and parentheses; `not` binds tightest, then `and`, then `or`.
//!   Keywords are case-insensitive (`AND` is `and`); field names and values are lower case.
//! - Strings are double-quoted, with `\"` and `\\` as the only escapes.
//! - A profile without a value (no RFM score before the first order, no last order) fails every
//!   comparison on it, so `not r >= 4` includes users who never ordered.
//! - Limits: 256 conditions, and parentheses and `not` nested at most 32 deep.
//!
//! A rule that does not parse or type-check is rejected with its byte offset, line and column, and
//! what was expected there:
//!
//! ```text
//! stage ~ loyal   →  at 6 (line 1, column 7): expected `=`, `!=` or `in` after `stage`, found `~`
//! stage = 5       →  at 8 (line 1, column 9): expected a stage (potential, new, active, loyal, churned) after `=`, found `5`
//! ```

pub mod api;
pub mod config;
pub mod consume;
pub mod domain;
pub mod error;
pub mod service;
pub mod store;
pub mod sweep;
pub mod update;

pub use config::{SegmentationConfig, TenantSettings};
pub use error::SegmentationError;
pub use service::{Dependencies, RunningSegmentation, start};
pub use socialops_storage::clock::{Clock, ManualClock, SystemClock};
