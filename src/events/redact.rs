//! A delivery's body without one person's items (erasure), pure: every item that
//! is theirs (their messages, the statuses of messages sent to them, their
//! `contacts[]` entries, account events that name them) left out, the other items
//! kept in the envelope as [`reshape`](super::reshape) narrows a body, and the result
//! marked `"redacted": true` (Meta's signature no longer covers it).

use std::collections::HashSet;

use serde_json::value::RawValue;

use super::model::Item;
use super::parse::{parse_located, Loc, ParseError};

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
        Item::Message { message, .. } => any(&[&message.from, &message.from_user_id]),
        Item::Status { status, .. } => any(&[&status.recipient_id, &status.recipient_user_id]),
        Item::Contact { contact, .. } => any(&[&contact.wa_id, &contact.user_id]),
        Item::Change { event, .. } => mentions(event.value.to_string().as_bytes(), ids),
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
