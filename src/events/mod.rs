//! Events: Meta's webhook payloads parsed into items (`parse`, `model`) and applied
//! to the message, status, contact and account-event model (`apply`); `reshape`
//! narrows a payload to some items, or turns items into events, for forwarding;
//! `seen` remembers recent dedup keys so a new item needs no read from sled.

pub mod apply;
pub mod identity;
pub mod model;
pub mod parse;
pub mod reshape;
pub mod seen;
