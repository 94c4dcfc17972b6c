//! Events: Meta's webhook payloads parsed into items (`parse`, `model`) and applied
//! to the message, status, contact and account-event model (`apply`).

pub mod apply;
pub mod model;
pub mod parse;
