//! Coexistence (the WhatsApp Business app and the Cloud API on one number) and
//! calls, read from Meta's JSON: message echoes, history messages, the app's
//! contacts (`smb_app_state_sync`), call events. Pure and lenient, like `read.rs`.

use serde_json::{Map, Value};

use super::model::*;
use super::read::{api_errors, as_string, as_ts, first_id, inbound_message, str_at};

/// `source` of a message the business typed in the WhatsApp Business app.
pub const SOURCE_BUSINESS_APP: &str = "business_app";
/// `source` of a message of the coexistence history backfill.
pub const SOURCE_HISTORY: &str = "history";

/// Digits only: `+1 555-0100` and `15550100` name one number.
fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn same_number(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.map(digits), b.map(digits)) {
        (Some(a), Some(b)) => !a.is_empty() && a == b,
        _ => false,
    }
}

/// An element of `message_echoes[]`: a message the business sent from the app, an
/// outbound message of its recipient.
pub(super) fn echo(m: &Map<String, Value>) -> Option<InboundMessage> {
    let mut msg = inbound_message(m, &[])?;
    msg.source = Some(SOURCE_BUSINESS_APP.into());
    msg.outbound = true;
    msg.contact_id = first_id(&msg.to, &msg.to_user_id);
    Some(msg)
}

/// A message of a history thread (`thread` is the thread's id, the user's number):
/// outbound when sent by the business (`business` is its display number).
pub(super) fn history_message(
    m: &Map<String, Value>,
    thread: Option<&str>,
    business: Option<&str>,
    chunk: HistoryChunk,
) -> Option<InboundMessage> {
    let mut msg = inbound_message(m, &[])?;
    msg.source = Some(SOURCE_HISTORY.into());
    msg.history_chunk = Some(chunk);
    msg.history_status = m.get("history_context").and_then(|c| str_at(c, "status"));
    let from = msg.from.as_deref();
    msg.outbound = same_number(from, business)
        || (thread.is_some() && from.is_some() && !same_number(from, thread) && msg.to.is_some());
    let user = match msg.outbound {
        true => first_id(&msg.to, &msg.to_user_id),
        false => msg.contact_id.clone(),
    };
    msg.contact_id = match thread {
        Some(t) => t.to_string(),
        None => user,
    };
    Some(msg)
}

/// A chunk's `history[].metadata`.
pub(super) fn history_chunk(md: &Value) -> HistoryChunk {
    let n = |k: &str| md.get(k).and_then(as_ts);
    HistoryChunk {
        phase: n("phase"),
        chunk_order: n("chunk_order"),
        progress: n("progress"),
    }
}

/// A history message's `history_context.status` as a delivery status (what its
/// current status is); `None` for one that is not a delivery status.
pub fn history_status(status: &str) -> Option<&'static str> {
    Some(match status.to_ascii_uppercase().as_str() {
        "PENDING" | "SERVER_ACK" | "SENT" => "sent",
        "DELIVERED" | "DELIVERY_ACK" => "delivered",
        "READ" => "read",
        "PLAYED" => "played",
        "ERROR" | "FAILED" => "failed",
        _ => return None,
    })
}

/// What a `history` account event (one chunk, as `history.rs` builds it) says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkInfo {
    pub phase: Option<i64>,
    pub chunk_order: Option<i64>,
    pub progress: Option<i64>,
    pub threads: u64,
    pub messages: u64,
    pub error_code: Option<i64>,
    pub error: Option<String>,
}

/// The chunk a `history` event stands for; `None` for an event that is not a
/// chunk (a history message that could not be read).
pub fn chunk_info(value: &Value) -> Option<ChunkInfo> {
    let h = value.get("history")?.get(0)?;
    if h.get("threads").is_some() {
        return None;
    }
    let c = history_chunk(h.get("metadata").unwrap_or(&Value::Null));
    let error = h
        .get("errors")
        .and_then(|e| e.get(0))
        .map(super::read::api_error);
    let count = |k: &str| h.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(ChunkInfo {
        phase: c.phase,
        chunk_order: c.chunk_order,
        progress: c.progress,
        threads: count("threads_count"),
        messages: count("messages_count"),
        error_code: error.as_ref().map(|e| e.code.unwrap_or(0)),
        error: error.and_then(|e| e.details.or(e.title).or(e.message)),
    })
}

/// An element of a `calls` change's `calls[]` (`statuses: false`) or `statuses[]`
/// (`statuses: true`); `business` is the business's display number. The SDP of
/// `session` is not read.
pub(super) fn call_event(
    c: &Map<String, Value>,
    statuses: bool,
    business: Option<&str>,
) -> Option<CallEvent> {
    let g = |k: &str| c.get(k).and_then(as_string);
    let (event, status) = match statuses {
        true => ("status".to_string(), g("status")),
        false => (g("event")?, g("status")),
    };
    let (from, to) = (g("from"), g("to"));
    let direction = g("direction");
    let user = if statuses {
        g("recipient_id").or(g("recipient_user_id")).or(to.clone())
    } else if direction.as_deref() == Some("BUSINESS_INITIATED")
        || (direction.is_none() && same_number(from.as_deref(), business))
    {
        to.clone().or(g("to_user_id"))
    } else {
        from.clone().or(g("from_user_id"))
    };
    Some(CallEvent {
        id: g("id")?,
        event,
        status,
        timestamp: c.get("timestamp").and_then(as_ts).unwrap_or(0),
        timestamp_out_of_range: false,
        timestamp_raw: None,
        direction,
        contact_id: first_id(&user, &None),
        from,
        to,
        start_time: c.get("start_time").and_then(as_ts),
        end_time: c.get("end_time").and_then(as_ts),
        duration: c.get("duration").and_then(as_ts),
        biz_opaque_callback_data: g("biz_opaque_callback_data"),
        errors: api_errors(c.get("errors")),
    })
}

/// The contacts of a `smb_app_state_sync` value (`state_sync[]` elements of type
/// `contact` with a phone number).
pub fn saved_contacts(value: &Value) -> Vec<SavedContact> {
    let Some(Value::Array(all)) = value.get("state_sync") else {
        return Vec::new();
    };
    all.iter()
        .filter(|s| str_at(s, "type").is_none_or(|t| t == "contact"))
        .filter_map(|s| {
            let c = s.get("contact")?;
            Some(SavedContact {
                phone_number: str_at(c, "phone_number")?,
                action: str_at(s, "action").unwrap_or_else(|| "add".into()),
                full_name: str_at(c, "full_name"),
                first_name: str_at(c, "first_name"),
                timestamp: s
                    .get("metadata")
                    .and_then(|m| m.get("timestamp"))
                    .and_then(as_ts),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_statuses_map_to_delivery_statuses() {
        for (sent, want) in [
            ("READ", Some("read")),
            ("read", Some("read")),
            ("DELIVERED", Some("delivered")),
            ("SENT", Some("sent")),
            ("PENDING", Some("sent")),
            ("PLAYED", Some("played")),
            ("ERROR", Some("failed")),
            ("", None),
            ("SOMETHING_NEW", None),
        ] {
            assert_eq!(history_status(sent), want, "{sent}");
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn echoes_are_outbound_to_their_recipient() {
        let e = echo(&obj(json!({"from": "15550100", "to": "447700900001",
            "id": "wamid.E", "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}})))
        .unwrap();
        assert!(e.outbound);
        assert_eq!(e.contact_id, "447700900001");
        assert_eq!(e.source.as_deref(), Some("business_app"));
    }

    #[test]
    fn history_messages_belong_to_their_thread() {
        let chunk = HistoryChunk {
            phase: Some(0),
            chunk_order: Some(1),
            progress: Some(10),
        };
        let m = |from: &str| {
            obj(
                json!({"from": from, "to": "447700900001", "id": "wamid.H", "timestamp": "1",
                "type": "text", "text": {"body": "x"}, "history_context": {"status": "READ"}}),
            )
        };
        for (from, business, outbound) in [
            ("+1 555 0100", Some("15550100"), true),
            ("447700900001", Some("15550100"), false),
            ("15550100", None, true),
        ] {
            let h = history_message(&m(from), Some("447700900001"), business, chunk).unwrap();
            assert_eq!(h.outbound, outbound, "{from}");
            assert_eq!(h.contact_id, "447700900001");
            assert_eq!(h.history_status.as_deref(), Some("READ"));
        }
    }

    #[test]
    fn calls_name_the_user_side_and_never_keep_the_sdp() {
        let connect = json!({"id": "wacid.1", "from": "447700900001", "to": "15550100",
            "event": "connect", "timestamp": "10", "direction": "USER_INITIATED",
            "session": {"sdp_type": "offer", "sdp": "v=0"}});
        let c = call_event(&obj(connect), false, Some("15550100")).unwrap();
        assert_eq!(
            (c.contact_id.as_str(), c.event.as_str()),
            ("447700900001", "connect")
        );
        assert!(!serde_json::to_string(&c).unwrap().contains("v=0"));
        let out = json!({"id": "wacid.2", "from": "15550100", "to": "447700900001",
            "event": "terminate", "timestamp": "20", "direction": "BUSINESS_INITIATED",
            "status": "COMPLETED", "duration": 33});
        let c = call_event(&obj(out), false, None).unwrap();
        assert_eq!(c.contact_id, "447700900001");
        assert_eq!(c.duration, Some(33));
        let st = json!({"id": "wacid.2", "type": "call", "status": "RINGING",
            "timestamp": "15", "recipient_id": "447700900001"});
        let c = call_event(&obj(st), true, None).unwrap();
        assert_eq!(
            (c.event.as_str(), c.status.as_deref()),
            ("status", Some("RINGING"))
        );
        assert_eq!(c.contact_id, "447700900001");
    }

    #[test]
    fn app_contacts_are_read_with_their_action() {
        let v = json!({"state_sync": [
            {"type": "contact", "contact": {"full_name": "Ann Lee", "first_name": "Ann",
             "phone_number": "447700900001"}, "action": "add", "metadata": {"timestamp": "5"}},
            {"type": "contact", "contact": {"phone_number": "447700900002"}, "action": "remove"},
            {"type": "contact", "contact": {"full_name": "no number"}}]});
        let s = saved_contacts(&v);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].full_name.as_deref(), Some("Ann Lee"));
        assert_eq!(s[0].timestamp, Some(5));
        assert_eq!(s[1].action, "remove");
    }
}
