//! Monitoring logic: what the service decides about scored texts, as pure functions, no I/O. Texts are
//! scored by `socialops_scorer`; its [`Label`] and [`Score`] are what these decisions read.

pub mod crisis;
pub mod reply;
pub mod severity;
pub mod spike;
pub mod text;
pub mod watch;

pub use socialops_scorer::{Label, Score};
