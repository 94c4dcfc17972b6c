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
//!   the four that is not an array, yield one more `Change` with the whole verbatim value (past
//!   1 MiB: only the keys not read, next to `messaging_product` and `metadata`). A value with
//!   nothing else (only `messaging_product`/`metadata`, or empty arrays) yields nothing.
//! * Every other `field` becomes one `Change` with the verbatim value.
//! * The body is walked, never built whole (`raw.rs`): each entry, change and element is read on
//!   its own, so [`parse_capped`] costs memory for the items it builds, not for the body's shape.
//!   A million `{}` messages are counted, the first `max` built. One item's JSON over 1 MiB is
//!   not built either: it stands as `{"wagate_omitted": {"bytes", "sha256"}}` (whole in the raw
//!   delivery), since its tree could take a hundred times its size.

use serde_json::value::RawValue;
use serde_json::Value;

pub use super::identity::{canonical_json, status_rank, status_supersedes};
use super::messages::Change;
pub use super::model::*;
use super::raw::{self, Fields};
use super::read::{as_string, as_ts, str_at};

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

/// What one walk over a body found: the first items (as many as asked for at most)
/// and how many items the body holds in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub items: Vec<Item>,
    pub found: usize,
}

impl Parsed {
    /// Items of the body past the ones built.
    pub fn skipped(&self) -> usize {
        self.found - self.items.len()
    }
}

/// Parse one webhook POST body into all its items, in body order. For a body from
/// outside, prefer [`parse_capped`]: memory grows with the items built.
pub fn parse_delivery(body: &[u8]) -> Result<Vec<Item>, ParseError> {
    Ok(parse_capped(body, usize::MAX)?.items)
}

/// [`parse_delivery`] building `max` items at most; the rest are counted (and the
/// whole body checked) but never built, so memory is bounded by `max` whatever the
/// body holds.
pub fn parse_capped(body: &[u8], max: usize) -> Result<Parsed, ParseError> {
    let mut items = Vec::new();
    let found = visit(body, max, &mut |_, item| items.push(item))?;
    Ok(Parsed { items, found })
}

/// [`parse_capped`] with each item's location; and how many items the body holds.
pub fn parse_located(body: &[u8], max: usize) -> Result<(Vec<(Loc, Item)>, usize), ParseError> {
    let mut items = Vec::new();
    let found = visit(body, max, &mut |loc, item| items.push((loc, item)))?;
    Ok((items, found))
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
    /// `message_echoes[k]`.
    Echo(usize),
    /// `calls[k]`.
    Call(usize),
    /// `history[h]` of a `history` change: the chunk itself.
    History(usize),
    /// `history[h].threads[t].messages[m]`.
    HistoryMessage(usize, usize, usize),
    /// The keys of a `messages` change this parser does not read.
    Odd,
}

/// Where the walk puts what it finds: the first `limit` items are built and handed
/// on; the rest are only counted.
pub(super) struct Sink<'f> {
    limit: usize,
    found: usize,
    f: &'f mut dyn FnMut(Loc, Item),
}

impl Sink<'_> {
    /// Whether the next item will be built.
    pub(super) fn wants(&self) -> bool {
        self.found < self.limit
    }

    /// One more item at `loc`: built (by `build`) and handed on while wanted.
    pub(super) fn offer(
        &mut self,
        loc: Loc,
        build: impl FnOnce() -> Result<Item, ParseError>,
    ) -> Result<(), ParseError> {
        if self.wants() {
            let item = build()?;
            (self.f)(loc, item);
        }
        self.found += 1;
        Ok(())
    }
}

fn shape(what: String) -> ParseError {
    ParseError::NotMetaShape(what)
}

/// Walks the body, one entry, change and element at a time: hands the first `limit`
/// items to `f` with their location, in body order; returns how many it holds. The
/// envelope is checked to the end whatever `limit` is, so the answer (an error or a
/// count) does not depend on it.
pub fn visit(body: &[u8], limit: usize, f: &mut dyn FnMut(Loc, Item)) -> Result<usize, ParseError> {
    let root =
        raw::object(raw::root(body)?)?.ok_or_else(|| shape("body is not a JSON object".into()))?;
    match raw::field(&root, "object")?
        .as_ref()
        .and_then(Value::as_str)
    {
        Some(WABA_OBJECT) => {}
        Some(_) => return Err(shape(format!("`object` is not \"{WABA_OBJECT}\""))),
        None => return Err(shape("`object` missing or not a string".into())),
    }
    let entries = root
        .get("entry")
        .filter(|r| raw::is_array(r))
        .ok_or_else(|| shape("`entry` missing or not an array".into()))?;
    let mut sink = Sink { limit, found: 0, f };
    raw::each(entries, |i, entry| visit_entry(i, entry, &mut sink))?;
    Ok(sink.found)
}

fn visit_entry(i: usize, entry: &RawValue, sink: &mut Sink) -> Result<(), ParseError> {
    let fields = raw::object(entry)?.unwrap_or_default();
    let waba_id = raw::field(&fields, "id")?
        .as_ref()
        .and_then(as_string)
        .ok_or_else(|| shape(format!("entry[{i}].id missing")))?;
    let entry_time = raw::field(&fields, "time")?.as_ref().and_then(as_ts);
    let changes = fields
        .get("changes")
        .filter(|r| raw::is_array(r))
        .ok_or_else(|| shape(format!("entry[{i}].changes missing or not an array")))?;
    raw::each(changes, |j, change| {
        let fields = raw::object(change)?.unwrap_or_default();
        let field = raw::field(&fields, "field")?
            .and_then(|f| f.as_str().map(str::to_string))
            .ok_or_else(|| shape(format!("entry[{i}].changes[{j}].field missing")))?;
        let value = fields
            .get("value")
            .copied()
            .ok_or_else(|| shape(format!("entry[{i}].changes[{j}].value missing")))?;
        let is_messages = matches!(field.as_str(), "messages" | "smb_message_echoes" | "calls");
        let is_history = field == "history";
        // Past the limit only the items of a `messages` change need counting.
        let value_fields = match sink.wants() || is_messages || is_history {
            true => raw::object(value)?,
            false => None,
        };
        let mut change = Change {
            meta: item_meta(&waba_id, field, value_fields.as_ref(), sink)?,
            entry_time,
            place: (i, j),
            sink: &mut *sink,
        };
        match (is_messages, is_history) {
            (true, _) => change.messages(value, value_fields.as_ref()),
            (_, true) => change.history(value, value_fields.as_ref()),
            _ => change.whole(value),
        }
    })?;
    Ok(())
}

/// Where the items of a change come from (left empty past the limit: not used).
fn item_meta(
    waba_id: &str,
    field: String,
    value: Option<&Fields>,
    sink: &Sink,
) -> Result<ItemMeta, ParseError> {
    let mut meta = ItemMeta {
        waba_id: waba_id.to_string(),
        field,
        phone_number_id: None,
        display_phone_number: None,
    };
    if let Some(v) = value.filter(|_| sink.wants()) {
        let md = raw::field(v, "metadata")?;
        meta.phone_number_id = md.as_ref().and_then(|m| str_at(m, "phone_number_id"));
        meta.display_phone_number =
            match md.as_ref().and_then(|m| str_at(m, "display_phone_number")) {
                Some(n) => Some(n),
                None => raw::field(v, "display_phone_number")?
                    .as_ref()
                    .and_then(as_string),
            };
    }
    Ok(meta)
}

impl Item {
    /// Unix seconds of the item itself: the wire `timestamp` of a message or status, the event
    /// time of a change; `None` when absent (and always for contacts).
    pub fn timestamp(&self) -> Option<i64> {
        match self {
            Item::Message { message, .. } => message.raw.get("timestamp").and_then(as_ts),
            Item::Status { status, .. } => status.raw.get("timestamp").and_then(as_ts),
            Item::Change { event, .. } => event.timestamp,
            Item::Call { call, .. } => Some(call.timestamp).filter(|t| *t != 0),
            Item::Contact { .. } => None,
        }
    }
}
