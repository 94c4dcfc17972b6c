//! A `history` change (the coexistence backfill), one element at a time: each
//! `history[]` chunk is an account event of its own (its phase, chunk order and
//! progress, its counts, or the error of a declined share), followed by the
//! messages of its threads. One chunk may hold thousands of messages: each is
//! built only while the walk still wants items.

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::change::change_item;
use super::coex::{history_chunk, history_message};
use super::messages::{at, Change};
use super::model::{HistoryChunk, Item};
use super::parse::{ParseError, Part};
use super::raw::{self, Fields};

impl Change<'_, '_> {
    /// The items of a `history` change whose value is `value` (`fields` when it is
    /// an object).
    pub(super) fn history(
        &mut self,
        value: &RawValue,
        fields: Option<&Fields>,
    ) -> Result<(), ParseError> {
        let Some(arr) = fields.and_then(|v| v.get("history").copied()) else {
            return self.whole(value);
        };
        if !raw::is_array(arr) {
            return self.whole(value);
        }
        let mut base = Map::new();
        if self.sink.wants() {
            for k in ["messaging_product", "metadata"] {
                if let Some(x) = fields.and_then(|v| raw::field(v, k).transpose()) {
                    base.insert(k.to_string(), x?);
                }
            }
        }
        raw::each(arr, |h, chunk| self.chunk(h, chunk, &base))?;
        Ok(())
    }

    /// `history[h]`: its event, then its threads' messages.
    fn chunk(
        &mut self,
        h: usize,
        chunk: &RawValue,
        base: &Map<String, Value>,
    ) -> Result<(), ParseError> {
        let fields = raw::object(chunk)?.unwrap_or_default();
        let threads = fields.get("threads").copied().filter(|r| raw::is_array(r));
        let (meta, t) = (&self.meta, self.entry_time);
        let mut info = HistoryChunk {
            phase: None,
            chunk_order: None,
            progress: None,
        };
        self.sink.offer(at(self.place, Part::History(h)), || {
            let mut summary = Map::new();
            for (k, v) in &fields {
                if k != "threads" {
                    summary.insert(k.clone(), raw::item_value(v)?);
                }
            }
            let (n_threads, n_messages) = match threads {
                Some(th) => count(th)?,
                None => (0, 0),
            };
            summary.insert("threads_count".into(), json!(n_threads));
            summary.insert("messages_count".into(), json!(n_messages));
            let mut value = base.clone();
            value.insert("history".into(), Value::Array(vec![Value::Object(summary)]));
            Ok(change_item(meta, Value::Object(value), t))
        })?;
        if self.sink.wants() {
            info = history_chunk(&raw::value(chunk_metadata(&fields))?);
        }
        let Some(threads) = threads else {
            return Ok(());
        };
        let business = self.meta.display_phone_number.clone();
        raw::each(threads, |ti, thread| {
            let tf = raw::object(thread)?.unwrap_or_default();
            let Some(messages) = tf.get("messages").copied() else {
                return Ok(());
            };
            let thread_id = match self.sink.wants() {
                true => raw::field(&tf, "id")?.as_ref().and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }),
                false => None,
            };
            raw::each(messages, |mi, m| {
                let (meta, t) = (&self.meta, self.entry_time);
                let part = Part::HistoryMessage(h, ti, mi);
                self.sink.offer(at(self.place, part), || {
                    let el = raw::item_value(m)?;
                    let read = el.as_object().and_then(|o| {
                        history_message(o, thread_id.as_deref(), business.as_deref(), info)
                    });
                    Ok(match read {
                        Some(message) => Item::Message {
                            meta: meta.clone(),
                            message,
                        },
                        None => {
                            let v = json!({"history": [{"threads": [{"id": thread_id, "messages": [el]}]}]});
                            change_item(meta, v, t)
                        }
                    })
                })
            })?;
            Ok(())
        })?;
        Ok(())
    }
}

/// `{"metadata": ...}` of a chunk's fields, as raw JSON.
fn chunk_metadata<'a>(fields: &Fields<'a>) -> &'a RawValue {
    fields
        .get("metadata")
        .copied()
        .unwrap_or_else(|| raw::null())
}

/// Threads and messages in a chunk's `threads` (counted, not built).
fn count(threads: &RawValue) -> Result<(usize, usize), ParseError> {
    let (mut n_threads, mut n_messages) = (0, 0);
    raw::each(threads, |_, thread| {
        n_threads += 1;
        let tf = raw::object(thread)?.unwrap_or_default();
        if let Some(m) = tf.get("messages") {
            raw::each(m, |_, _| {
                n_messages += 1;
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok((n_threads, n_messages))
}
