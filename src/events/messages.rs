//! A `messages` change (and the `smb_message_echoes` and `calls` changes, shaped
//! alike): its contacts, messages, echoes, calls, statuses and errors, one element
//! at a time. Each element is parsed on its own, and only while the walk still
//! wants items; past that, elements are counted, never built.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::change::{change_item, truncate};
use super::coex::{call_event, echo};
use super::model::{Item, ItemMeta};
use super::parse::{Loc, ParseError, Part, Sink};
use super::raw::{self, Fields};
use super::read::{contact_info, inbound_message, status_update};

/// The keys a `messages` change value is read by.
const MESSAGES_KEYS: [&str; 8] = [
    "messaging_product",
    "metadata",
    "contacts",
    "messages",
    "message_echoes",
    "calls",
    "statuses",
    "errors",
];

/// The arrays of a `messages`, `smb_message_echoes` or `calls` change, in the order
/// they are visited (contacts first, so the upsert lands before the messages using it).
pub(crate) const ARRAYS: [&str; 6] = [
    "contacts",
    "messages",
    "message_echoes",
    "calls",
    "statuses",
    "errors",
];

/// One of the four arrays, when present as an array.
pub(crate) fn array<'a>(v: &Fields<'a>, key: &str) -> Option<&'a RawValue> {
    v.get(key).copied().filter(|r| raw::is_array(r))
}

/// The keys of a `messages` change value this parser does not read: unknown ones,
/// then any of the four arrays that is not an array.
pub(crate) fn odd_keys<'v>(v: &'v Fields) -> Vec<&'v str> {
    let mut odd: Vec<&str> = v
        .keys()
        .map(String::as_str)
        .filter(|k| !MESSAGES_KEYS.contains(k))
        .collect();
    for key in ARRAYS {
        if let Some((k, r)) = v.get_key_value(key) {
            if !raw::is_array(r) {
                odd.push(k);
            }
        }
    }
    odd
}

/// Where the items of one change go.
pub(crate) struct Change<'s, 'f> {
    pub meta: ItemMeta,
    pub entry_time: Option<i64>,
    /// `entry[]` and `changes[]` indexes.
    pub place: (usize, usize),
    pub sink: &'s mut Sink<'f>,
}

pub(super) fn at((entry, change): (usize, usize), part: Part) -> Loc {
    Loc {
        entry,
        change,
        part,
    }
}

impl Change<'_, '_> {
    /// The items of a `messages` change whose value is `value` (`fields` when it is
    /// an object).
    pub(super) fn messages(
        &mut self,
        value: &RawValue,
        fields: Option<&Fields>,
    ) -> Result<(), ParseError> {
        let Some(v) = fields else {
            return self.whole(value);
        };
        // `messaging_product` and `metadata`: what every narrowed value keeps.
        let mut base = Map::new();
        if self.sink.wants() {
            for k in ["messaging_product", "metadata"] {
                if let Some(x) = raw::field(v, k)? {
                    base.insert(k.to_string(), x);
                }
            }
        }
        let mut contacts = Vec::new();
        for key in ARRAYS {
            let Some(arr) = array(v, key) else { continue };
            raw::each(arr, |k, el| {
                let (meta, t) = (&self.meta, self.entry_time);
                self.sink.offer(at(self.place, part(key, k)), || {
                    let el = raw::item_value(el)?;
                    Ok(match element(meta, key, &el, &contacts) {
                        Some(item) => {
                            if key == "contacts" {
                                contacts.push(el);
                            }
                            item
                        }
                        None => change_item(meta, narrowed(&base, key, el), t),
                    })
                })
            })?;
        }
        let odd = odd_keys(v);
        if !odd.is_empty() {
            let (meta, t) = (&self.meta, self.entry_time);
            self.sink.offer(at(self.place, Part::Odd), || {
                let value = if value.get().len() <= raw::ITEM_MAX {
                    // Past it, only the keys not read: the rest are items of their own.
                    raw::value(value)?
                } else {
                    let mut out = base.clone();
                    for k in &odd {
                        out.insert(k.to_string(), raw::item_value(v[*k])?);
                    }
                    Value::Object(out)
                };
                let mut item = change_item(meta, value, t);
                if let Item::Change { event, .. } = &mut item {
                    let keys = odd.join(", ");
                    let summary = format!("messages change, keys not read: {keys}");
                    event.summary = Some(truncate(summary, 200));
                }
                Ok(item)
            })?;
        }
        Ok(())
    }

    /// The whole change as one event.
    pub(super) fn whole(&mut self, value: &RawValue) -> Result<(), ParseError> {
        let (meta, t) = (&self.meta, self.entry_time);
        self.sink.offer(at(self.place, Part::Whole), || {
            Ok(change_item(meta, raw::item_value(value)?, t))
        })
    }
}

fn part(key: &str, k: usize) -> Part {
    match key {
        "contacts" => Part::Contact(k),
        "messages" => Part::Message(k),
        "message_echoes" => Part::Echo(k),
        "calls" => Part::Call(k),
        "statuses" => Part::Status(k),
        _ => Part::Error(k),
    }
}

/// The element `el` of the array `key` as the item it is; `None` when it cannot be
/// read as one (an `errors[]` element never is).
fn element(meta: &ItemMeta, key: &str, el: &Value, contacts: &[Value]) -> Option<Item> {
    let o = el.as_object()?;
    let meta = meta.clone();
    match key {
        "contacts" => Some(Item::Contact {
            meta,
            contact: contact_info(o),
        }),
        "messages" => Some(Item::Message {
            meta,
            message: inbound_message(o, contacts)?,
        }),
        "message_echoes" => Some(Item::Message {
            meta,
            message: echo(o)?,
        }),
        "calls" | "statuses" if key == "calls" || meta.field == "calls" => {
            let business = meta.display_phone_number.clone();
            Some(Item::Call {
                call: call_event(o, key == "statuses", business.as_deref())?,
                meta,
            })
        }
        "statuses" => Some(Item::Status {
            meta,
            status: status_update(o)?,
        }),
        _ => None,
    }
}

/// The change value reduced to `messaging_product`, `metadata` and `key: [el]`.
fn narrowed(base: &Map<String, Value>, key: &str, el: Value) -> Value {
    let mut out = base.clone();
    out.insert(key.to_string(), Value::Array(vec![el]));
    Value::Object(out)
}
