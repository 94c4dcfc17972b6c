//! Meta's webhook formats, pure (no I/O): payloads walked one element at a time
//! (`raw`) and parsed into items (`parse`, `messages`, `change`, `model`), an item's
//! dedup key and the order of statuses (`identity`), a payload narrowed to some
//! items or items turned into events for forwarding (`reshape`), an item's own time
//! judged against its receive time (`when`), the `X-Hub-Signature-256` signature
//! (`signature`), and JSON written as Meta writes it (`meta_json`).

pub mod calls;
mod change;
pub mod coex;
mod history;
pub mod identity;
mod messages;
pub mod meta_json;
pub mod model;
pub mod parse;
mod raw;
mod read;
pub mod redact;
pub mod reshape;
pub mod signature;
mod when;
