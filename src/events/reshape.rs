//! Reshaping a delivery for forwarding (pure, no I/O): Meta's own payload narrowed
//! to some of its items (`meta` mode), and one JSON event per item (`events` mode).
//! Items are named by their index in [`parse_delivery`](super::parse::parse_delivery)'s
//! output, which is what the applier records. Only the items up to the last one asked
//! for are built: a body of a million items costs what its first few do.

use std::borrow::Cow;
use std::collections::HashSet;

use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::messages::{odd_keys, ARRAYS};
use super::model::Item;
use super::parse::{parse_located, Loc, ParseError, Part};
use super::raw::{self, Fields};
use crate::util::time::JsonTime;

/// The items of `body` up to the last one of `keep` (none past it is built), and
/// how many the body holds.
fn located_upto(
    body: &[u8],
    keep: &HashSet<usize>,
) -> Result<(Vec<(Loc, Item)>, usize), ParseError> {
    let limit = keep.iter().max().map_or(0, |last| last + 1);
    parse_located(body, limit)
}

/// Meta's payload with only the items `keep`. When `keep` holds every item that is
/// not a contact upsert, the exact original bytes; else a rebuilt body with the same
/// envelope, holding only the kept elements (a kept message brings its change's
/// contacts along), keys in their order, written as Meta writes JSON
/// ([`meta_json`](super::meta_json)). `None` when nothing of `keep` is in the body.
/// Walks the body (never builds it whole); builds the items up to the last kept one only.
pub fn meta_body<'a>(body: &'a [u8], keep: &[u32]) -> Result<Option<Cow<'a, [u8]>>, ParseError> {
    let keep: HashSet<usize> = keep.iter().map(|&i| i as usize).collect();
    let (located, found) = located_upto(body, &keep)?;
    let kept: HashSet<Loc> = located
        .iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, (loc, _))| *loc)
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let all = found == located.len()
        && located
            .iter()
            .enumerate()
            .all(|(i, (_, item))| keep.contains(&i) || matches!(item, Item::Contact { .. }));
    if all {
        return Ok(Some(Cow::Borrowed(body)));
    }
    Ok(Some(Cow::Owned(rebuilt(body, &kept, &|_| false)?)))
}

/// An object rebuilt from raw parts, its keys in the body's order.
type Rebuilt = IndexMap<String, Box<RawValue>>;

fn owned(fields: &Fields) -> Rebuilt {
    fields
        .iter()
        .map(|(k, v)| (k.clone(), (*v).to_owned()))
        .collect()
}

/// `v` written as Meta writes JSON (the raw parts inside it verbatim).
fn boxed<T: serde::Serialize>(v: &T) -> Box<RawValue> {
    let text = String::from_utf8(super::meta_json::to_vec(v)).expect("JSON is UTF-8");
    RawValue::from_string(text).expect("JSON")
}

/// The body with only the kept parts: the envelope's other keys as they were.
/// A `contacts[]` element to leave out even beside a kept message (erasure).
pub(crate) type DropContact<'a> = dyn Fn(&RawValue) -> bool + 'a;

pub(crate) fn rebuilt(
    body: &[u8],
    kept: &HashSet<Loc>,
    drop: &DropContact<'_>,
) -> Result<Vec<u8>, ParseError> {
    let root = raw::object(raw::root(body)?)?.unwrap_or_default();
    let mut entries = Vec::new();
    if let Some(all) = root.get("entry") {
        raw::each(all, |i, entry| {
            let fields = raw::object(entry)?.unwrap_or_default();
            let mut changes = Vec::new();
            if let Some(all) = fields.get("changes") {
                raw::each(all, |j, change| {
                    let parts: HashSet<Part> = kept
                        .iter()
                        .filter(|l| l.entry == i && l.change == j)
                        .map(|l| l.part)
                        .collect();
                    if !parts.is_empty() {
                        changes.push(narrow_change(change, &parts, drop)?);
                    }
                    Ok(())
                })?;
            }
            if !changes.is_empty() {
                let mut e = owned(&fields);
                e.insert("changes".into(), boxed(&changes));
                entries.push(e);
            }
            Ok(())
        })?;
    }
    let mut out = owned(&root);
    out.insert("entry".into(), boxed(&entries));
    Ok(super::meta_json::to_vec(&out))
}

/// One change with only the kept parts (a whole change as it was).
fn narrow_change(
    change: &RawValue,
    parts: &HashSet<Part>,
    drop: &DropContact<'_>,
) -> Result<Box<RawValue>, ParseError> {
    let fields = raw::object(change)?.unwrap_or_default();
    let value = match fields.get("value") {
        Some(v) if !parts.contains(&Part::Whole) => raw::object(v)?,
        _ => None,
    };
    // A history chunk goes whole (its messages are nested in threads).
    let history = |p: &Part| matches!(p, Part::History(_) | Part::HistoryMessage(..));
    let Some(value) = value.filter(|_| !parts.iter().any(history)) else {
        return Ok(change.to_owned());
    };
    let mut c = owned(&fields);
    c.insert(
        "value".into(),
        boxed(&narrow_messages(&value, parts, drop)?),
    );
    Ok(boxed(&c))
}

/// A `messages` change value with only the kept parts, its keys in their order.
fn narrow_messages(
    v: &Fields,
    parts: &HashSet<Part>,
    drop: &DropContact<'_>,
) -> Result<Rebuilt, ParseError> {
    let odd = odd_keys(v);
    let any_message = parts
        .iter()
        .any(|p| matches!(p, Part::Message(_) | Part::Echo(_) | Part::Call(_)));
    let mut out = Rebuilt::new();
    for (key, x) in v {
        let key = key.as_str();
        let kept = if odd.contains(&key) {
            parts.contains(&Part::Odd).then(|| (*x).to_owned())
        } else if !ARRAYS.contains(&key) {
            Some((*x).to_owned()) // messaging_product, metadata
        } else {
            let mut kept: Vec<&RawValue> = Vec::new();
            raw::each(x, |k, el| {
                let keep = match key {
                    "contacts" => {
                        (parts.contains(&Part::Contact(k)) || (any_message && raw::is_object(el)))
                            && !drop(el)
                    }
                    "messages" => parts.contains(&Part::Message(k)),
                    "message_echoes" => parts.contains(&Part::Echo(k)),
                    "calls" => parts.contains(&Part::Call(k)),
                    "statuses" => parts.contains(&Part::Status(k)),
                    _ => parts.contains(&Part::Error(k)),
                };
                if keep {
                    kept.push(el);
                }
                Ok(())
            })?;
            (!kept.is_empty()).then(|| boxed(&kept))
        };
        if let Some(x) = kept {
            out.insert(key.into(), x);
        }
    }
    Ok(out)
}

/// One `events`-mode event: its stable id (the same on every retry and replay), its
/// type and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardEvent {
    pub id: String,
    pub event_type: &'static str,
    pub body: Vec<u8>,
    /// The item's change field and phone number id (a bus target's subject).
    pub field: String,
    pub phone_number_id: Option<String>,
}

/// The events for the items `keep` of a delivery, in body order. Contact upserts are
/// not events of their own: a message carries its sender's contact.
pub fn events_for(
    body: &[u8],
    keep: &[u32],
    delivery_id: u64,
    received_at_micros: i64,
) -> Result<Vec<ForwardEvent>, ParseError> {
    let keep: HashSet<usize> = keep.iter().map(|&i| i as usize).collect();
    let (located, _) = located_upto(body, &keep)?;
    let received_secs = received_at_micros.div_euclid(1_000_000);
    let mut out = Vec::new();
    for (i, (loc, item)) in located.iter().enumerate() {
        if !keep.contains(&i) {
            continue;
        }
        let Some(key) = item.dedup_key() else {
            continue;
        };
        let id = format!("evt_{}", &hex::encode(Sha256::digest(&key))[..32]);
        // Out of range, the item's time is kept raw and marked; it goes by the receive time.
        let judged = item.time(received_secs);
        let mut item = item.clone();
        item.settle_time(received_secs);
        let (event_type, meta, name, object) = match &item {
            Item::Message { meta, message } => {
                ("whatsapp.message", meta, "message", json!(message))
            }
            Item::Status { meta, status } => ("whatsapp.status", meta, "status", json!(status)),
            Item::Change { meta, event } => ("whatsapp.event", meta, "event", json!(event)),
            Item::Call { meta, call } => ("whatsapp.call", meta, "call", json!(call)),
            Item::Contact { .. } => continue,
        };
        let mut data = json!({
            "id": id,
            "delivery_id": delivery_id,
            "received_at": JsonTime::secs(received_secs),
            "waba_id": meta.waba_id,
            "field": meta.field,
            "phone_number_id": meta.phone_number_id,
            "display_phone_number": meta.display_phone_number,
        });
        data[name] = object;
        if let Item::Message { message, .. } = &item {
            let contact = located.iter().find_map(|(l, it)| match it {
                Item::Contact { contact, .. }
                    if (l.entry, l.change) == (loc.entry, loc.change)
                        && contact.contact_id == message.contact_id =>
                {
                    Some(json!(contact))
                }
                _ => None,
            });
            data["contact"] = contact.unwrap_or(Value::Null);
        }
        let at = judged.or_received(received_secs);
        let mut event = json!({"type": event_type, "timestamp": JsonTime::secs(at), "data": data});
        if let Some(raw) = judged.out_of_range() {
            event["timestamp_out_of_range"] = json!(true);
            event["timestamp_raw"] = json!(raw);
        }
        out.push(ForwardEvent {
            id,
            event_type,
            body: serde_json::to_vec(&event).expect("serialisable"),
            field: meta.field.clone(),
            phone_number_id: meta.phone_number_id.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::parse::parse_delivery;

    const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P1"},"contacts":[{"wa_id":"111","profile":{"name":"Ann"}}],"messages":[{"from":"111","id":"wamid.A","timestamp":"1700000000","type":"text","text":{"body":"a"}},{"from":"111","id":"wamid.B","timestamp":"1700000001","type":"text","text":{"body":"b"}}]}},{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P2"},"statuses":[{"id":"wamid.S","status":"sent","timestamp":"1700000002","recipient_id":"222"}]}}]}]}"#;

    #[test]
    fn all_new_items_forward_the_original_bytes() {
        // Items: contact, message A, message B, status S.
        let body = BODY.as_bytes();
        assert!(matches!(
            meta_body(body, &[1, 2, 3]).unwrap(),
            Some(Cow::Borrowed(b)) if b == body
        ));
        assert!(meta_body(body, &[]).unwrap().is_none());
    }

    #[test]
    fn narrowed_body_keeps_only_the_kept_items() {
        let body = BODY.as_bytes();
        let narrowed = meta_body(body, &[2]).unwrap().unwrap();
        let items = parse_delivery(&narrowed).unwrap();
        assert_eq!(items.len(), 2, "{}", String::from_utf8_lossy(&narrowed));
        assert!(
            matches!(&items[0], Item::Contact { contact, .. } if contact.profile_name.as_deref() == Some("Ann"))
        );
        assert!(matches!(&items[1], Item::Message { message, .. } if message.id == "wamid.B"));
        let only_status = meta_body(body, &[3]).unwrap().unwrap();
        let items = parse_delivery(&only_status).unwrap();
        assert_eq!(items.len(), 1);
        assert!(matches!(&items[0], Item::Status { status, .. } if status.id == "wamid.S"));
        let v: Value = serde_json::from_slice(&only_status).unwrap();
        assert_eq!(v["entry"][0]["changes"].as_array().unwrap().len(), 1);
        assert_eq!(v["entry"][0]["id"], "W1");
    }

    /// A narrowed body is what Meta would have sent with only those items: keys in
    /// their order (`statuses` before `contacts` here), compact, Meta's escapes.
    #[test]
    fn narrowed_body_is_written_as_meta_writes_it() {
        let body = r#"{"entry":[{"changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P1"},"statuses":[{"id":"wamid.S","status":"read","timestamp":"1","recipient_id":"111"}],"contacts":[{"profile":{"name":"Ren\u00e9"},"wa_id":"111"}],"messages":[{"from":"111","id":"wamid.A","timestamp":"2","text":{"body":"old"},"type":"text"},{"from":"111","id":"wamid.B","timestamp":"3","text":{"body":"caf\u00e9 \ud83d\ude00 https:\/\/example.com\/a?b=1&c=2"},"type":"text"}]},"field":"messages"}],"id":"W1"}],"object":"whatsapp_business_account"}"#;
        // Items: contact, message A, message B, status S.
        let narrowed = meta_body(body.as_bytes(), &[2]).unwrap().unwrap();
        let want = r#"{"entry":[{"changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P1"},"contacts":[{"profile":{"name":"Ren\u00e9"},"wa_id":"111"}],"messages":[{"from":"111","id":"wamid.B","timestamp":"3","text":{"body":"caf\u00e9 \ud83d\ude00 https:\/\/example.com\/a?b=1&c=2"},"type":"text"}]},"field":"messages"}],"id":"W1"}],"object":"whatsapp_business_account"}"#;
        assert_eq!(String::from_utf8_lossy(&narrowed), want);
        let status_and_b = meta_body(body.as_bytes(), &[2, 3]).unwrap().unwrap();
        assert!(String::from_utf8_lossy(&status_and_b).starts_with(
            r#"{"entry":[{"changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P1"},"statuses":[{"id":"wamid.S","status":"read","timestamp":"1","recipient_id":"111"}],"contacts":"#
        ));
    }

    #[test]
    fn events_carry_stable_ids_and_the_contact() {
        let body = BODY.as_bytes();
        let ev = events_for(body, &[0, 1, 3], 7, 1_700_000_100_000_000).unwrap();
        assert_eq!(ev.len(), 2, "the contact is not an event of its own");
        assert_eq!(ev[0].event_type, "whatsapp.message");
        let v: Value = serde_json::from_slice(&ev[0].body).unwrap();
        assert_eq!(v["type"], "whatsapp.message");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["data"]["message"]["id"], "wamid.A");
        assert_eq!(v["data"]["contact"]["profile_name"], "Ann");
        assert_eq!(v["data"]["phone_number_id"], "P1");
        assert_eq!(v["data"]["delivery_id"], 7);
        assert_eq!(v["data"]["id"], ev[0].id);
        let again = events_for(body, &[1], 9, 0).unwrap();
        assert_eq!(again[0].id, ev[0].id, "the id depends on the item only");
        assert_eq!(ev[1].event_type, "whatsapp.status");
    }

    #[test]
    fn an_out_of_range_time_is_kept_raw_and_the_event_goes_by_the_receive_time() {
        for raw in [253_402_300_800, i64::MAX, -1, 1_700_000_100 + 86_401] {
            let body = BODY.replace("1700000002", &raw.to_string());
            let ev = events_for(body.as_bytes(), &[3], 7, 1_700_000_100_000_000).unwrap();
            let v: Value = serde_json::from_slice(&ev[0].body).unwrap();
            assert_eq!(v["timestamp"], "2023-11-14T22:15:00Z", "{raw}");
            assert_eq!(v["timestamp_out_of_range"], true);
            assert_eq!(v["timestamp_raw"], raw);
            assert_eq!(v["data"]["status"]["timestamp"], 1_700_000_100);
            assert_eq!(v["data"]["status"]["timestamp_raw"], raw);
        }
        let ev = events_for(BODY.as_bytes(), &[3], 7, 1_700_000_100_000_000).unwrap();
        let v: Value = serde_json::from_slice(&ev[0].body).unwrap();
        assert_eq!(v["timestamp"], "2023-11-14T22:13:22Z");
        assert!(v.get("timestamp_out_of_range").is_none(), "{v}");
        assert!(v["data"]["status"].get("timestamp_raw").is_none(), "{v}");
    }
}
