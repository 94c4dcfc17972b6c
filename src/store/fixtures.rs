//! Model entries for unit tests, built from their stored JSON.

use super::{DeliveryMeta, StoredMessage};

/// An accepted delivery `id`, received at `received_secs`.
pub fn delivery(id: u64, received_secs: i64) -> DeliveryMeta {
    serde_json::from_value(serde_json::json!({
        "id": id, "received_at_micros": received_secs * 1_000_000, "verdict": "accepted",
        "reason": "", "size": 1, "stored_size": 1, "peer": null, "secret_index": 0,
        "stream": "Main", "pos": {"segment": 1, "offset": 0, "len": 1}
    }))
    .unwrap()
}

/// An inbound text message `id` at `ts` from contact "1", of delivery `delivery`.
pub fn message(id: &str, ts: i64, delivery: u64) -> StoredMessage {
    serde_json::from_value(serde_json::json!({
        "id": id, "from": "1", "from_user_id": null, "username": null, "contact_id": "1",
        "timestamp": ts, "type": "text", "content": {"kind": "text", "body": "x"},
        "context": null, "referral": null, "errors": [], "raw": null,
        "direction": "inbound", "waba_id": "W", "phone_number_id": "P", "delivery_id": delivery
    }))
    .unwrap()
}
