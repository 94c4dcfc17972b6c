//! Meta-shaped webhook bodies made to order (text messages, an image message whose
//! file the fake media host serves, delivery statuses), signed; the items a body
//! carries; the bytes of a media file, derived from its id.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{unix_now, PHONE_ID, SECRET};

/// `X-Hub-Signature-256` for `body` under the drivers' app secret.
pub fn sign(body: &[u8]) -> String {
    wagate::events::signature::sign(SECRET.as_bytes(), body)
}

fn envelope(value: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}))
    .expect("JSON")
}

fn metadata() -> Value {
    json!({"display_phone_number": "15550783881", "phone_number_id": PHONE_ID})
}

/// The wa_id of contact number `n`.
pub fn contact(n: u64) -> String {
    format!("1650555{:04}", n % 10_000)
}

/// One delivery with a text message per id, from `from`.
pub fn texts(from: &str, ids: &[String], pad: usize) -> Vec<u8> {
    let ts = unix_now().to_string();
    let text = "x".repeat(pad);
    let messages: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"from": from, "id": id, "timestamp": ts, "type": "text",
            "text": {"body": format!("{id} {text}")}})
        })
        .collect();
    envelope(
        json!({"messaging_product": "whatsapp", "metadata": metadata(),
        "contacts": [{"profile": {"name": "Proof"}, "wa_id": from}], "messages": messages}),
    )
}

/// One image message whose file is `media_host/media/<media_id>`, with its digest.
pub fn image(from: &str, id: &str, media_id: &str, media_host: &str) -> Vec<u8> {
    let digest =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(media_bytes(media_id)));
    let image = json!({"caption": "proof", "mime_type": "image/jpeg", "sha256": digest,
        "id": media_id, "url": format!("{media_host}/media/{media_id}")});
    envelope(
        json!({"messaging_product": "whatsapp", "metadata": metadata(),
        "contacts": [{"profile": {"name": "Proof"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": unix_now().to_string(),
            "type": "image", "image": image}]}),
    )
}

/// One `delivered` status of (outbound) message `id`.
pub fn status(id: &str, recipient: &str) -> Vec<u8> {
    envelope(
        json!({"messaging_product": "whatsapp", "metadata": metadata(),
        "statuses": [{"id": id, "status": "delivered", "timestamp": unix_now().to_string(),
            "recipient_id": recipient}]}),
    )
}

/// A send request for `POST /api/messages`: a text whose body is `key`.
pub fn send(to: &str, key: &str) -> Value {
    json!({"to": to, "type": "text", "text": {"body": key}, "force": true})
}

/// The items of a Meta body as dedup keys: `m:<id>` per message, `s:<id>:<status>`
/// per status (what wagate deduplicates on).
pub fn item_keys(body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut out = Vec::new();
    for e in v["entry"].as_array().into_iter().flatten() {
        for c in e["changes"].as_array().into_iter().flatten() {
            let value = &c["value"];
            for m in value["messages"].as_array().into_iter().flatten() {
                out.push(format!("m:{}", m["id"].as_str().unwrap_or("")));
            }
            for s in value["statuses"].as_array().into_iter().flatten() {
                let (id, st) = (
                    s["id"].as_str().unwrap_or(""),
                    s["status"].as_str().unwrap_or(""),
                );
                out.push(format!("s:{id}:{st}"));
            }
        }
    }
    out
}

/// The media ids of the image messages in a Meta body.
pub fn media_ids(body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut out = Vec::new();
    for e in v["entry"].as_array().into_iter().flatten() {
        for c in e["changes"].as_array().into_iter().flatten() {
            for m in c["value"]["messages"].as_array().into_iter().flatten() {
                if let Some(id) = m["image"]["id"].as_str() {
                    out.push(id.to_string());
                }
            }
        }
    }
    out
}

/// The file behind a media id: 2 to 34 KiB of bytes that follow from the id alone.
pub fn media_bytes(media_id: &str) -> Vec<u8> {
    let mut x = media_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let len = 2048 + (x % 32768) as usize;
    let mut out = Vec::with_capacity(len + 8);
    out.extend_from_slice(&[0xff, 0xd8, 0xff, 0xe0]);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// SHA-256 of `b` (deliveries are compared by digest: byte-exact, less memory).
pub fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}
