//! Meta's webhook bodies: the parser, and the reshaping for forwarding.

use std::collections::HashSet;

use serde_json::Value;

use super::data_file;
use crate::events::parse::{parse_delivery, Item};
use crate::events::reshape::{events_for, meta_body};

/// Any body: an error, or items that each have their key and time, survive JSON, and
/// (messages with media) give a media job.
pub fn parse(data: &[u8]) {
    let Ok(items) = parse_delivery(data) else {
        return;
    };
    for item in &items {
        let key = item.dedup_key();
        assert_eq!(key.is_none(), matches!(item, Item::Contact { .. }));
        let _ = item.timestamp();
        let json = serde_json::to_vec(item).expect("serialisable");
        let back: Item = serde_json::from_slice(&json).expect("an item reads back");
        assert_eq!(&back, item);
        if let Item::Message { message, .. } = item {
            let _ = crate::media::job_for(message, 1_700_000_000_000_000);
        }
    }
}

/// `keep mask, body`: the body narrowed to some of its items holds those items and
/// no other message or status; each kept item becomes one event with a stable id.
pub fn reshape(data: &[u8]) {
    let Some((&mask, body)) = data.split_first() else {
        return;
    };
    let Ok(items) = parse_delivery(body) else {
        // Reshaping builds the items up to the last one kept only: a body whose later
        // item cannot be read (a lone surrogate in a message after a contact) may still
        // reshape item 0. It must not panic; the applier never records such a body.
        let _ = meta_body(body, &[0]);
        let _ = events_for(body, &[0], 1, 0);
        return;
    };
    // Bit i of the mask keeps items i, i + 8, i + 16, ...
    let keep: Vec<u32> = (0..items.len() as u32)
        .filter(|i| mask & (1 << (i % 8)) != 0)
        .collect();
    let kept: Vec<&Item> = keep.iter().map(|&i| &items[i as usize]).collect();
    let narrowed = meta_body(body, &keep).expect("the body parsed once");
    let events = events_for(body, &keep, 7, 1_700_000_000_000_000).expect("parsed once");
    let keys = |items: &[&Item]| -> HashSet<Vec<u8>> {
        items.iter().filter_map(|i| i.dedup_key()).collect()
    };
    let kept_keys = keys(&kept);
    assert_eq!(
        events.len(),
        kept.iter().filter(|i| i.dedup_key().is_some()).count()
    );
    for e in &events {
        let v: Value = serde_json::from_slice(&e.body).expect("an event is JSON");
        assert_eq!(v["type"], e.event_type);
        assert_eq!(v["data"]["id"], e.id.as_str());
    }
    let Some(narrowed) = narrowed else {
        assert!(kept.iter().all(|i| matches!(i, Item::Contact { .. })) || kept.is_empty());
        return;
    };
    let again = parse_delivery(&narrowed).expect("a narrowed body parses");
    let again_keys = keys(&again.iter().collect::<Vec<_>>());
    for item in &again {
        if matches!(item, Item::Message { .. } | Item::Status { .. }) {
            let key = item.dedup_key().expect("messages and statuses have keys");
            assert!(
                kept_keys.contains(&key),
                "narrowing kept an item not asked for"
            );
        }
    }
    for item in kept {
        if matches!(item, Item::Message { .. } | Item::Status { .. }) {
            let key = item.dedup_key().expect("messages and statuses have keys");
            assert!(again_keys.contains(&key), "narrowing lost a kept item");
        }
    }
}

/// Every payload of the conformance corpus (`tests/data/manifest.json`).
pub fn seeds() -> Vec<Vec<u8>> {
    let manifest: Value = serde_json::from_slice(&data_file("manifest.json")).unwrap_or_default();
    let cases = manifest["cases"].as_array().cloned().unwrap_or_default();
    cases
        .iter()
        .filter_map(|c| {
            c["file"]
                .as_str()
                .map(|f| data_file(&format!("payloads/{f}")))
        })
        .filter(|b| !b.is_empty())
        .collect()
}

pub fn reshape_seeds() -> Vec<Vec<u8>> {
    seeds()
        .into_iter()
        .enumerate()
        .map(|(i, b)| [&[[0xff, 0x01, 0x02, 0x05, 0xaa][i % 5]][..], &b].concat())
        .collect()
}

pub const DICT: &[&[u8]] = &[
    b"\"object\"",
    b"\"whatsapp_business_account\"",
    b"\"entry\"",
    b"\"changes\"",
    b"\"field\"",
    b"\"value\"",
    b"\"messages\"",
    b"\"statuses\"",
    b"\"contacts\"",
    b"\"errors\"",
    b"\"metadata\"",
    b"\"phone_number_id\"",
    b"\"timestamp\"",
    b"\"type\"",
    b"\"id\"",
    b"\"from\"",
    b"\"wa_id\"",
    b"\"user_id\"",
    b"\"text\"",
    b"\"body\"",
    b"\"edit\"",
    b"\"message\"",
    b"\"interactive\"",
    b"\"image\"",
    b"\"status\"",
    b"\"read\"",
    b"\"failed\"",
    b"\"context\"",
    b"\"profile\"",
    b"\"username\"",
    b"\"expiration_timestamp\"",
    b"\"conversation\"",
    b"\"pricing\"",
    b"\"account_update\"",
    b"\"user_preferences\"",
    b"\"volume_tier_info\"",
    b"\"time\"",
    b"\"253402300800\"",
    b"9223372036854775807",
    b"\"\\u0000\"",
    b"{}",
    b"[]",
    b"null",
];
