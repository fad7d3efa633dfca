//! The campaign service: journeys triggered by segment, lifecycle, event and schedule entries, sends
//! decided under the tenant's pressure rules and published exactly once, content review before a
//! campaign starts, FAQ auto-replies, crisis pauses, coupons, referrals, attribution and the campaign
//! report.
//!
//! The doors are [`api`] (gRPC) and [`consume`] (Kafka); the use cases are [`react`], [`decide`],
//! [`reply`], [`pause`], [`manage`], [`explain`], [`coupons`], [`referrals`], [`attribute`],
//! [`report`] and [`sweep`], all on the [`engine::Engine`]; [`domain`] decides without I/O and
//! [`store`] remembers.

pub mod api;
pub mod attribute;
pub mod config;
pub mod consume;
pub mod coupons;
pub mod decide;
pub mod domain;
pub mod engine;
pub mod error;
pub mod explain;
pub mod manage;
pub mod pause;
pub mod react;
pub mod referrals;
pub mod reply;
pub mod report;
pub mod segments;
pub mod service;
pub mod store;
pub mod sweep;
pub mod time;

pub use config::CampaignConfig;
pub use engine::Engine;
pub use error::CampaignError;
pub use service::{Dependencies, RunningCampaign, start};
