//! Scheduled callbacks (SPEC §4): "call this customer back at T", stored in the table and backed
//! by one one-time schedule that dispatches it at T.

pub mod bulk;
pub mod dispatch;
pub mod input;
pub mod model;
pub mod outcome;
pub mod service;
pub mod store;

pub use model::{Callback, CallbackStatus};
