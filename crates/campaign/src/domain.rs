//! Pure decisions: no I/O, no wire types.

pub mod assign;
pub mod campaign;
pub mod coupon;
pub mod definition;
pub mod faq;
pub mod journey;
pub mod matching;
pub mod pressure;
pub mod referral;
pub mod review;
pub mod stats;
pub mod tenant;
