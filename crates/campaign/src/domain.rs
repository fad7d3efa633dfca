//! Pure decisions: no I/O, no wire types.

pub mod assign;
pub mod campaign;
pub mod faq;
pub mod flow;
pub mod matching;
pub mod pressure;
pub mod review;
pub mod spec;
pub mod tenant;

pub use flow as journey;
pub use spec as definition;
