//! What an erasure does to one journal record (pure): a delivery without the
//! person's items, a send to them without its recipient and content, any other
//! JSON record without a string that names them. Each new payload is padded with
//! JSON whitespace to the old length when it is shorter, so every record keeps its
//! place in its segment (positions held elsewhere stay right).

use serde_json::Value;

use crate::events::model::Item;
use crate::events::redact;
use crate::journal::delivery::Delivery;
use crate::journal::{Kind, Record};

/// A record's new payload and the items it lost.
#[derive(Debug, Default)]
pub struct Outcome {
    pub payload: Vec<u8>,
    pub removed: Vec<Item>,
    pub delivery: bool,
}

/// The record without what concerns `ids` (the person's contact id, wa_id,
/// user_id); `None` when nothing in it does.
pub fn redact_record(record: &Record, ids: &[String]) -> Option<Outcome> {
    if !ids
        .iter()
        .any(|id| memchr::memmem::find(&record.payload, id.as_bytes()).is_some())
    {
        return None;
    }
    match Kind::from_u8(record.kind)? {
        Kind::Delivery => redact_delivery(&record.payload, ids),
        Kind::MediaUpdate => None,
        _ => redact_json(&record.payload, ids).map(|payload| Outcome {
            payload,
            ..Outcome::default()
        }),
    }
}

fn redact_delivery(payload: &[u8], ids: &[String]) -> Option<Outcome> {
    let mut d = Delivery::decode(payload).ok()?;
    let old_len = d.body.len();
    let removed = match d
        .verdict
        .is_accepted()
        .then(|| redact::without(&d.body, ids))
    {
        Some(Ok(Some(r))) => {
            d.body = r.body;
            r.removed
        }
        Some(Ok(None)) if !redact::mentions(&d.body, ids) => return None,
        // Rejected, unreadable, or naming them outside any item: the body goes.
        _ => {
            d.body = b"{\"redacted\":true}".to_vec();
            Vec::new()
        }
    };
    pad(&mut d.body, old_len);
    Some(Outcome {
        payload: d.encode(),
        removed,
        delivery: true,
    })
}

/// A JSON record with every string naming `ids` replaced, and a send to them
/// without its recipient and message.
pub fn redact_json(payload: &[u8], ids: &[String]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(payload).ok()?;
    if let Some(obj) = v.as_object_mut() {
        let to_them = obj
            .get("recipient")
            .and_then(Value::as_str)
            .is_some_and(|r| ids.iter().any(|id| id == r));
        if to_them && obj.contains_key("message") {
            obj.insert("message".into(), redact::redacted_message());
        }
    }
    scrub(&mut v, ids);
    let mut out = serde_json::to_vec(&v).ok()?;
    pad(&mut out, payload.len());
    Some(out)
}

fn scrub(v: &mut Value, ids: &[String]) {
    match v {
        Value::String(s) if ids.iter().any(|id| s.contains(id.as_str())) => {
            *s = "redacted".into();
        }
        Value::Array(a) => a.iter_mut().for_each(|x| scrub(x, ids)),
        Value::Object(o) => o.values_mut().for_each(|x| scrub(x, ids)),
        _ => {}
    }
}

fn pad(bytes: &mut Vec<u8>, len: usize) {
    if bytes.len() < len {
        bytes.resize(len, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["15550001111".into()]
    }

    #[test]
    fn json_records_lose_what_names_the_person_and_keep_their_length() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"recipient":"15550001111","message":{"text":{"body":"secret"}}}"#,
                Some(r#"{"message":{"redacted":true},"recipient":"redacted"}"#),
            ),
            (
                r#"{"id":3,"body":"{\"wa_id\":\"15550001111\"}"}"#,
                Some(r#"{"body":"redacted","id":3}"#),
            ),
            (
                r#"{"recipient":"15550002222","message":{"text":{"body":"x"}}}"#,
                None,
            ),
        ];
        for (input, want) in cases {
            let rec = Record {
                seq: 1,
                kind: Kind::SendRequest as u8,
                unix_micros: 0,
                payload: input.as_bytes().to_vec(),
            };
            let got = redact_record(&rec, &ids());
            match (got, want) {
                (None, None) => {}
                (Some(o), Some(w)) => {
                    assert_eq!(o.payload.len(), input.len(), "{input}");
                    let v: Value = serde_json::from_slice(&o.payload).unwrap();
                    assert_eq!(v, serde_json::from_str::<Value>(w).unwrap(), "{input}");
                    assert!(!String::from_utf8_lossy(&o.payload).contains("secret"));
                }
                (g, w) => panic!("{input}: got {:?}, want {w:?}", g.map(|o| o.payload)),
            }
        }
    }
}
