//! What makes an item the same item (its dedup key, with the canonical JSON it
//! hashes), and the order of delivery statuses (a status never goes backwards).
//! Pure: no I/O.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::Item;

impl Item {
    /// Key under which this item is deduplicated; `None` for contacts (they are upserts).
    ///
    /// Message: `m\0<id>`; Status: `s\0<id>\0<status>`; Call: `k\0<call id>\0<event>\0<status>`; Change: `c\0` + lowercase hex SHA-256
    /// of `waba_id \0 field \0 canonical_json(value)`: the same event on a second WABA is a
    /// new item, the same event re-sent inside another body is not.
    pub fn dedup_key(&self) -> Option<Vec<u8>> {
        let join = |parts: &[&[u8]]| parts.join(&0u8);
        match self {
            Item::Message { message, .. } => Some(message_key(message.id.as_bytes())),
            Item::Status { status, .. } => Some(join(&[
                b"s",
                status.id.as_bytes(),
                status.status.as_bytes(),
            ])),
            Item::Contact { .. } => None,
            // One per (call id, event, status).
            Item::Call { call, .. } => Some(join(&[
                b"k",
                call.id.as_bytes(),
                call.event.as_bytes(),
                call.status.as_deref().unwrap_or("").as_bytes(),
            ])),
            Item::Change { meta, event } => {
                // Field and value (as the issue asks), scoped to the WABA: the same
                // event re-sent by Meta inside another body is one item.
                let mut h = Sha256::new();
                h.update(join(&[
                    meta.waba_id.as_bytes(),
                    event.field.as_bytes(),
                    b"",
                ]));
                h.update(canonical_json(&event.value));
                Some(join(&[b"c", hex::encode(h.finalize()).as_bytes()]))
            }
        }
    }
}

/// `serde_json::to_vec` of `v` with every object's keys sorted bytewise, whatever the
/// `preserve_order` feature of serde_json says.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut kv: Vec<_> = m.iter().collect();
                kv.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, x)) in kv.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).unwrap_or_default());
                    out.push(b':');
                    write(x, out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(x, out);
                }
                out.push(b']');
            }
            scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

/// Order of the delivery statuses; 0 for unknown ones.
pub fn status_rank(status: &str) -> u8 {
    match status.to_ascii_lowercase().as_str() {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        "failed" => 5,
        _ => 0,
    }
}

/// Whether `new` should replace `current` as a message's status: statuses never downgrade,
/// `failed` replaces anything and is replaced by nothing, unknown statuses never replace a known
/// one (but fill an empty slot), and gaps are fine (`read` without `delivered`).
pub fn status_supersedes(current: Option<&str>, new: &str) -> bool {
    let Some(current) = current else { return true };
    let (cur, new) = (status_rank(current), status_rank(new));
    cur != 5 && new > cur
}

/// The dedup key of the message with id `wamid`.
pub fn message_key(wamid: &[u8]) -> Vec<u8> {
    [b"m".as_slice(), wamid].join(&0u8)
}

/// A new item: its index in the parsed delivery and what targets route on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fresh {
    pub index: u32,
    pub phone_number_id: Option<String>,
    pub field: String,
}
