//! A delivery's body without one person's items (erasure), pure: every item that
//! is theirs (their messages, the statuses of messages sent to them, their
//! `contacts[]` entries, account events that name them) left out, the other items
//! kept in the envelope as [`reshape`](super::reshape) narrows a body, and the result
//! marked `"redacted": true` (Meta's signature no longer covers it).

use std::collections::HashSet;

use serde_json::value::RawValue;

use super::model::Item;
use super::parse::{parse_located, Loc, ParseError};

/// What an erasure puts in place of a send's message: nothing left to send.
pub fn redacted_message() -> serde_json::Value {
    serde_json::json!({"redacted": true})
}

/// Whether `message` is one an erasure replaced ([`redacted_message`]).
pub fn is_redacted_message(message: &serde_json::Value) -> bool {
    message.get("redacted") == Some(&serde_json::Value::Bool(true))
}

/// What a redaction removed and the body that is left.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub body: Vec<u8>,
    /// The items left out (their dedup keys are what a retry would bring back).
    pub removed: Vec<Item>,
}

/// Whether `item` concerns one of `ids` (wa_id, user_id).
pub fn item_is_theirs(item: &Item, ids: &[String]) -> bool {
    let any = |v: &[&Option<String>]| {
        v.iter()
            .any(|o| o.as_ref().is_some_and(|s| ids.contains(s)))
    };
    match item {
        Item::Message { message, .. } => any(&[
            &message.from,
            &message.from_user_id,
            &message.to,
            &message.to_user_id,
        ]),
        Item::Status { status, .. } => any(&[&status.recipient_id, &status.recipient_user_id]),
        Item::Contact { contact, .. } => any(&[&contact.wa_id, &contact.user_id]),
        Item::Change { event, .. } => mentions(event.value.to_string().as_bytes(), ids),
        Item::Call { call, .. } => ids.contains(&call.contact_id) || any(&[&call.from, &call.to]),
    }
}

/// Whether `bytes` hold one of `ids` as a JSON string.
pub fn mentions(bytes: &[u8], ids: &[String]) -> bool {
    ids.iter().any(|id| {
        let quoted = format!("\"{id}\"");
        memchr::memmem::find(bytes, quoted.as_bytes()).is_some()
    })
}

type Located = Vec<(Loc, Item)>;

/// `body` without the items of `ids`; `None` when none of its items is theirs.
pub fn without(body: &[u8], ids: &[String]) -> Result<Option<Redacted>, ParseError> {
    let (located, _) = parse_located(body, usize::MAX)?;
    let (theirs, kept): (Located, Located) = located
        .into_iter()
        .partition(|(_, item)| item_is_theirs(item, ids));
    if theirs.is_empty() {
        return Ok(None);
    }
    let kept: HashSet<Loc> = kept.iter().map(|(loc, _)| *loc).collect();
    let drop = |el: &RawValue| mentions(el.get().as_bytes(), ids);
    let rebuilt = super::reshape::rebuilt(body, &kept, &drop)?;
    Ok(Some(Redacted {
        body: marked(rebuilt),
        removed: theirs.into_iter().map(|(_, item)| item).collect(),
    }))
}

/// `{"redacted":true,` put first in the object `body`.
fn marked(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 18);
    out.extend_from_slice(b"{\"redacted\":true");
    let rest = &body[1..];
    if rest.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Ann"},"wa_id":"111111"},{"profile":{"name":"Bob"},"wa_id":"222222"}],"messages":[{"from":"111111","id":"wamid.a","timestamp":"1749416390","type":"text","text":{"body":"ann says"}},{"from":"222222","id":"wamid.b","timestamp":"1749416391","type":"text","text":{"body":"bob says"}}]}}]}]}"#;
    const STATUSES: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.o1","status":"read","timestamp":"1760659301","recipient_id":"111111"},{"id":"wamid.o2","status":"sent","timestamp":"1760659302","recipient_id":"222222"}]}}]}]}"#;

    /// (body, erased id, items removed, what must stay, what must go)
    type Case<'a> = (&'a str, &'a str, usize, &'a [&'a str], &'a [&'a str]);

    #[test]
    fn only_the_persons_items_leave_a_body() {
        let cases: &[Case] = &[
            (
                MIXED,
                "111111",
                2,
                &["bob says", "Bob", "222222"],
                &["ann says", "Ann", "111111"],
            ),
            (
                MIXED,
                "222222",
                2,
                &["ann says", "Ann"],
                &["bob says", "Bob", "222222"],
            ),
            (
                STATUSES,
                "111111",
                1,
                &["wamid.o2", "222222"],
                &["wamid.o1", "111111"],
            ),
        ];
        for (body, id, removed, stay, go) in cases {
            let r = without(body.as_bytes(), &[id.to_string()])
                .unwrap()
                .expect("theirs");
            let text = String::from_utf8(r.body.clone()).unwrap();
            assert_eq!(r.removed.len(), *removed, "{text}");
            assert!(text.starts_with("{\"redacted\":true,"), "{text}");
            for s in *stay {
                assert!(text.contains(s), "{s} kept in {text}");
            }
            for g in *go {
                assert!(!text.contains(g), "{g} gone from {text}");
            }
        }
        assert!(without(MIXED.as_bytes(), &["333333".into()])
            .unwrap()
            .is_none());
    }
}
