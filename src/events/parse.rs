//! Pure parsing of a WhatsApp Cloud API webhook POST body into [`Item`]s.
//!
//! * Envelope strict, content lenient. The body must be a JSON object with
//!   `object == "whatsapp_business_account"` and `entry` an array of objects, each with an `id`
//!   and a `changes` array of objects that carry a string `field` and a `value`; anything else is
//!   [`ParseError::NotMetaShape`]. Inside a change nothing is an error: what cannot be read is
//!   kept as an [`Item::Change`] carrying the verbatim JSON.
//! * Every `entry[] x changes[] x contacts[]/messages[]/statuses[]/errors[]` is visited, in that
//!   order within one change (contacts first so the upsert lands before the messages using it).
//! * A `messages` change yields one item per array element; each `errors[]` element, and each
//!   element that cannot be read (no string `id`, status without `status`), becomes a `Change`
//!   whose value is the change value narrowed to that one element. Keys other than
//!   `messaging_product`, `metadata` and the four arrays (shapes Meta may add later), or one of
//!   the four that is not an array, yield one more `Change` with the whole verbatim value. A
//!   value with nothing else (only `messaging_product`/`metadata`, or empty arrays) yields nothing.
//! * Every other `field` becomes one `Change` with the verbatim value.

use serde_json::{Map, Value};

pub use super::identity::{canonical_json, status_rank, status_supersedes};
pub use super::model::*;
use super::read::{
    api_error, as_string, as_ts, contact_info, inbound_message, status_update, str_at,
};

const WABA_OBJECT: &str = "whatsapp_business_account";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The body is not valid JSON.
    NotJson(String),
    /// Valid JSON, but not a WhatsApp Business Account webhook envelope.
    NotMetaShape(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NotJson(e) => write!(f, "webhook body is not JSON: {e}"),
            ParseError::NotMetaShape(e) => write!(
                f,
                "webhook body is not a WhatsApp Business Account delivery: {e}"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse one webhook POST body into its items, in body order.
pub fn parse_delivery(body: &[u8]) -> Result<Vec<Item>, ParseError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    Ok(parse_located(&root)?.into_iter().map(|(_, i)| i).collect())
}

/// Where in the body an item was found: `entry[entry].changes[change]`, and which
/// part of that change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    pub entry: usize,
    pub change: usize,
    pub part: Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The whole change (every field but `messages`, or a `messages` value that is
    /// not an object).
    Whole,
    Contact(usize),
    Message(usize),
    Status(usize),
    Error(usize),
    /// The keys of a `messages` change this parser does not read.
    Odd,
}

/// [`parse_delivery`] on an already parsed body, with each item's location.
pub fn parse_located(root: &Value) -> Result<Vec<(Loc, Item)>, ParseError> {
    let shape = |what: String| ParseError::NotMetaShape(what);
    let root = root
        .as_object()
        .ok_or_else(|| shape("body is not a JSON object".into()))?;
    match root.get("object").and_then(Value::as_str) {
        Some(WABA_OBJECT) => {}
        Some(_) => return Err(shape(format!("`object` is not \"{WABA_OBJECT}\""))),
        None => return Err(shape("`object` missing or not a string".into())),
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("`entry` missing or not an array".into()))?;
    let mut items = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let waba_id = entry
            .get("id")
            .and_then(as_string)
            .ok_or_else(|| shape(format!("entry[{i}].id missing")))?;
        let entry_time = entry.get("time").and_then(as_ts);
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .ok_or_else(|| shape(format!("entry[{i}].changes missing or not an array")))?;
        for (j, change) in changes.iter().enumerate() {
            let field = change
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("entry[{i}].changes[{j}].field missing")))?;
            let value = change
                .get("value")
                .ok_or_else(|| shape(format!("entry[{i}].changes[{j}].value missing")))?;
            let md = value.get("metadata");
            let meta = ItemMeta {
                waba_id: waba_id.clone(),
                field: field.to_string(),
                phone_number_id: md.and_then(|m| str_at(m, "phone_number_id")),
                display_phone_number: md
                    .and_then(|m| str_at(m, "display_phone_number"))
                    .or_else(|| str_at(value, "display_phone_number")),
            };
            let at = |part| Loc {
                entry: i,
                change: j,
                part,
            };
            if field == "messages" {
                messages_change(&meta, value, entry_time, &mut |p, item| {
                    items.push((at(p), item))
                });
            } else {
                items.push((
                    at(Part::Whole),
                    change_item(&meta, value.clone(), entry_time),
                ));
            }
        }
    }
    Ok(items)
}

fn messages_change(
    meta: &ItemMeta,
    value: &Value,
    entry_time: Option<i64>,
    push: &mut impl FnMut(Part, Item),
) {
    let Some(v) = value.as_object() else {
        push(Part::Whole, change_item(meta, value.clone(), entry_time));
        return;
    };
    let (contacts, messages, statuses, errors, odd) = messages_parts(v);
    let fallback = |key: &str, el: &Value| change_item(meta, narrowed(v, key, el), entry_time);
    for (k, c) in contacts.iter().enumerate() {
        match c.as_object() {
            Some(c) => push(
                Part::Contact(k),
                Item::Contact {
                    meta: meta.clone(),
                    contact: contact_info(c),
                },
            ),
            None => push(Part::Contact(k), fallback("contacts", c)),
        }
    }
    for (k, m) in messages.iter().enumerate() {
        match m.as_object().and_then(|m| inbound_message(m, contacts)) {
            Some(message) => push(
                Part::Message(k),
                Item::Message {
                    meta: meta.clone(),
                    message,
                },
            ),
            None => push(Part::Message(k), fallback("messages", m)),
        }
    }
    for (k, s) in statuses.iter().enumerate() {
        match s.as_object().and_then(status_update) {
            Some(status) => push(
                Part::Status(k),
                Item::Status {
                    meta: meta.clone(),
                    status,
                },
            ),
            None => push(Part::Status(k), fallback("statuses", s)),
        }
    }
    for (k, e) in errors.iter().enumerate() {
        push(Part::Error(k), fallback("errors", e));
    }
    if !odd.is_empty() {
        let mut item = change_item(meta, value.clone(), entry_time);
        if let Item::Change { event, .. } = &mut item {
            let keys = odd.join(", ");
            event.summary = Some(truncate(
                format!("messages change, keys not read: {keys}"),
                200,
            ));
        }
        push(Part::Odd, item);
    }
}

/// The keys a `messages` change value is read by.
const MESSAGES_KEYS: [&str; 6] = [
    "messaging_product",
    "metadata",
    "contacts",
    "messages",
    "statuses",
    "errors",
];

type Parts<'a> = (
    &'a [Value],
    &'a [Value],
    &'a [Value],
    &'a [Value],
    Vec<&'a str>,
);

/// contacts[], messages[], statuses[], errors[] of a `messages` change value, and
/// the keys not read (unknown ones, or one of the four that is not an array).
pub(super) fn messages_parts(v: &Map<String, Value>) -> Parts<'_> {
    // Keys this parser does not read, or reads but found in an unexpected shape.
    let mut odd: Vec<&str> = v
        .keys()
        .map(String::as_str)
        .filter(|k| !MESSAGES_KEYS.contains(k))
        .collect();
    let mut arr = |key: &'static str| match v.get(key) {
        None => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            odd.push(key);
            &[][..]
        }
    };
    let (c, m, s, e) = (
        arr("contacts"),
        arr("messages"),
        arr("statuses"),
        arr("errors"),
    );
    (c, m, s, e, odd)
}

/// The change value reduced to `messaging_product`, `metadata` and `key: [el]`.
fn narrowed(v: &Map<String, Value>, key: &str, el: &Value) -> Value {
    let mut out = Map::new();
    for k in ["messaging_product", "metadata"] {
        if let Some(x) = v.get(k) {
            out.insert(k.to_string(), x.clone());
        }
    }
    out.insert(key.to_string(), Value::Array(vec![el.clone()]));
    Value::Object(out)
}

fn change_item(meta: &ItemMeta, value: Value, entry_time: Option<i64>) -> Item {
    let event = AccountEvent {
        field: meta.field.clone(),
        timestamp: change_time(&value).or(entry_time),
        timestamp_out_of_range: false,
        timestamp_raw: None,
        summary: summarize(&meta.field, &value).map(|s| truncate(s, 200)),
        value,
    };
    Item::Change {
        meta: meta.clone(),
        event,
    }
}

fn change_time(v: &Value) -> Option<i64> {
    v.get("timestamp")
        .and_then(as_ts)
        .or_else(|| {
            v.get("volume_tier_info")
                .and_then(|t| t.get("tier_update_time"))
                .and_then(as_ts)
        })
        .or_else(|| {
            v.get("user_preferences")
                .and_then(|p| p.get(0))
                .and_then(|p| p.get("timestamp"))
                .and_then(as_ts)
        })
}

fn summarize(field: &str, v: &Value) -> Option<String> {
    let g = |k: &str| str_at(v, k);
    let d = |k: &str| g(k).unwrap_or_default();
    let before = |k: &str| g(k).map(|x| x + " ").unwrap_or_default();
    let tpl = format!("template '{}'", d("message_template_name"));
    let event = g("event");
    Some(match field {
        "message_template_status_update" => match g("reason").filter(|r| r != "NONE") {
            Some(r) => format!("{tpl} {} ({r})", event?),
            None => format!("{tpl} {}", event?),
        },
        "message_template_quality_update" => {
            let new = g("new_quality_score")?;
            format!("{tpl} quality {}-> {new}", before("previous_quality_score"))
        }
        "template_category_update" => {
            let new = g("new_category")?;
            format!("{tpl} category {}-> {new}", before("previous_category"))
        }
        "phone_number_quality_update" => {
            let limit = g("max_daily_conversations_per_business").or_else(|| g("current_limit"));
            let limit = limit.map(|l| format!(" (limit {l})")).unwrap_or_default();
            format!("phone {} {}{limit}", d("display_phone_number"), event?)
        }
        "account_update" => {
            let detail = if let Some(t) = v.get("volume_tier_info") {
                let cat = str_at(t, "pricing_category").unwrap_or_default();
                str_at(t, "tier").map(|tier| format!("tier {tier} {cat}"))
            } else if let Some(Value::Array(r)) = v.get("restriction_info") {
                let types: Vec<_> = r
                    .iter()
                    .filter_map(|x| str_at(x, "restriction_type"))
                    .collect();
                Some(types.join(", "))
            } else {
                v.get("ban_info").and_then(|b| str_at(b, "waba_ban_state"))
            };
            let detail = detail
                .map(|x| format!(": {}", x.trim_end()))
                .unwrap_or_default();
            format!("account {}{detail}", event?)
        }
        "user_preferences" => {
            let p = v.get("user_preferences")?.get(0)?;
            let who = str_at(p, "wa_id")
                .or_else(|| str_at(p, "user_id"))
                .unwrap_or_default();
            let category = str_at(p, "category").unwrap_or_default();
            format!("user {who} {category}: {}", str_at(p, "value")?)
        }
        "messages" => match v.get("errors").and_then(|e| e.get(0)).map(api_error) {
            Some(e) => {
                let text = e.title.or(e.message).unwrap_or_default();
                format!("error {}: {text}", e.code.unwrap_or(0))
            }
            None => match ["messages", "statuses", "contacts"]
                .iter()
                .find(|k| v.get(**k).is_some())
            {
                Some(k) => format!("unreadable {k}[] element"),
                None => "messages change not read by this parser".into(),
            },
        },
        _ => format!("{field} {}", event?),
    })
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A non-empty string, or a number as its decimal text (ids sometimes arrive as numbers).
impl Item {
    /// Unix seconds of the item itself: the wire `timestamp` of a message or status, the event
    /// time of a change; `None` when absent (and always for contacts).
    pub fn timestamp(&self) -> Option<i64> {
        match self {
            Item::Message { message, .. } => message.raw.get("timestamp").and_then(as_ts),
            Item::Status { status, .. } => status.raw.get("timestamp").and_then(as_ts),
            Item::Change { event, .. } => event.timestamp,
            Item::Contact { .. } => None,
        }
    }
}
