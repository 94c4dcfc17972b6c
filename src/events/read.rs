//! Reading each object of the model from Meta's JSON (used by `parse.rs`):
//! lenient, since Meta adds fields and a missing one must not drop an item.

use serde_json::{Map, Value};

use super::model::*;

pub(super) fn contact_info(c: &Map<String, Value>) -> ContactInfo {
    let profile = c.get("profile");
    let wa_id = c.get("wa_id").and_then(as_string);
    let user_id = c.get("user_id").and_then(as_string);
    ContactInfo {
        contact_id: first_id(&wa_id, &user_id),
        username: profile.and_then(|p| str_at(p, "username")),
        profile_name: profile.and_then(|p| str_at(p, "name")),
        wa_id,
        user_id,
    }
}

pub(super) fn inbound_message(
    m: &Map<String, Value>,
    contacts: &[Value],
) -> Option<InboundMessage> {
    let id = m.get("id").and_then(as_string)?;
    let from = m.get("from").and_then(as_string);
    let from_user_id = m.get("from_user_id").and_then(as_string);
    let msg_type = m.get("type").and_then(as_string);
    let is = |c: &Value, k: &str, id: &Option<String>| {
        id.is_some() && c.get(k).and_then(Value::as_str) == id.as_deref()
    };
    let matches = |c: &&Value| is(c, "wa_id", &from) || is(c, "user_id", &from_user_id);
    let username = ["username", "from_username"]
        .iter()
        .find_map(|k| m.get(*k).and_then(as_string))
        .or_else(|| {
            contacts
                .iter()
                .find(matches)
                .and_then(|c| c.get("profile"))
                .and_then(|p| str_at(p, "username"))
        });
    Some(InboundMessage {
        contact_id: first_id(&from, &from_user_id),
        timestamp: m.get("timestamp").and_then(as_ts).unwrap_or(0),
        timestamp_out_of_range: false,
        timestamp_raw: None,
        content: content(msg_type.as_deref().unwrap_or(""), m, 0),
        msg_type: msg_type.unwrap_or_else(|| "unknown".into()),
        context: m
            .get("context")
            .and_then(Value::as_object)
            .map(|c| MessageContext {
                from: c.get("from").and_then(as_string),
                id: c.get("id").and_then(as_string),
                forwarded: c.get("forwarded").and_then(Value::as_bool),
                frequently_forwarded: c.get("frequently_forwarded").and_then(Value::as_bool),
                referred_product: c.get("referred_product").cloned(),
            }),
        referral: m.get("referral").cloned(),
        errors: api_errors(m.get("errors")),
        raw: Value::Object(m.clone()),
        source: None,
        outbound: false,
        to: m.get("to").and_then(as_string),
        to_user_id: m.get("to_user_id").and_then(as_string),
        history_status: None,
        history_chunk: None,
        id,
        from,
        from_user_id,
        username,
    })
}

pub(super) fn content(msg_type: &str, m: &Map<String, Value>, depth: u8) -> MessageContent {
    use MessageContent as C;
    let o = m.get(msg_type).filter(|o| o.is_object());
    match msg_type {
        "unsupported" | "unknown" => {
            let unsupported_type = o.and_then(|o| str_at(o, "type"));
            return C::Unsupported { unsupported_type };
        }
        // The only type whose payload is an array, not an object.
        "contacts" => {
            let contacts = m.get("contacts").cloned().unwrap_or(Value::Null);
            return C::Contacts { contacts };
        }
        _ => {}
    }
    let Some(o) = o else { return C::Unknown {} };
    let g = |k: &str| str_at(o, k);
    match msg_type {
        "text" => C::Text {
            body: g("body").unwrap_or_default(),
        },
        "image" | "audio" | "video" | "document" | "sticker" => media(msg_type, o),
        "location" => C::Location {
            latitude: o.get("latitude").and_then(as_f64),
            longitude: o.get("longitude").and_then(as_f64),
            name: g("name"),
            address: g("address"),
            url: g("url"),
        },
        "interactive" => interactive(o),
        "button" => C::Button {
            payload: g("payload"),
            text: g("text"),
        },
        "reaction" => C::Reaction {
            message_id: g("message_id"),
            emoji: g("emoji").filter(|e| !e.is_empty()),
        },
        "order" => C::Order {
            catalog_id: g("catalog_id"),
            text: g("text"),
            product_items: o.get("product_items").cloned().unwrap_or(Value::Null),
        },
        "system" => C::System {
            body: g("body"),
            system_type: g("type"),
            wa_id: g("wa_id"),
            new_wa_id: g("new_wa_id"),
            identity: g("identity"),
            customer: g("customer"),
        },
        "edit" => edit(o, depth),
        "revoke" => C::Revoke {
            original_message_id: g("original_message_id"),
        },
        _ => C::Unknown {},
    }
}

fn media(media_type: &str, o: &Value) -> MessageContent {
    let g = |k: &str| str_at(o, k);
    MessageContent::Media {
        media_type: media_type.to_string(),
        id: g("id"),
        mime_type: g("mime_type"),
        sha256: g("sha256"),
        caption: g("caption"),
        filename: g("filename"),
        url: g("url"),
        voice: o.get("voice").and_then(Value::as_bool),
        animated: o.get("animated").and_then(Value::as_bool),
        file_size: o.get("file_size").and_then(Value::as_u64),
    }
}

/// A reply to buttons, a list or a flow; or a reply to a call permission request.
fn interactive(o: &Value) -> MessageContent {
    let reply_type = str_at(o, "type");
    let r = reply_type
        .as_deref()
        .and_then(|t| o.get(t))
        .unwrap_or(&Value::Null);
    let rg = |k: &str| str_at(r, k);
    if reply_type.as_deref() == Some("call_permission_reply") {
        return MessageContent::CallPermissionReply {
            response: rg("response"),
            is_permanent: r.get("is_permanent").and_then(Value::as_bool),
            expiration_timestamp: r.get("expiration_timestamp").and_then(as_ts),
            response_source: rg("response_source"),
        };
    }
    MessageContent::Interactive {
        id: rg("id"),
        title: rg("title"),
        description: rg("description"),
        response_json: rg("response_json"),
        body: rg("body"),
        reply_type,
    }
}

/// An edit: the edited message's content, read one level deep only.
fn edit(o: &Value, depth: u8) -> MessageContent {
    let inner = o.get("message").and_then(Value::as_object);
    let edited_type = inner.and_then(|i| i.get("type")).and_then(as_string);
    let content = match (inner, &edited_type) {
        (Some(i), Some(t)) if depth == 0 => content(t, i, depth + 1),
        _ => MessageContent::Unknown {},
    };
    MessageContent::Edit {
        original_message_id: str_at(o, "original_message_id"),
        edited_type,
        content: Box::new(content),
    }
}

pub(super) fn status_update(s: &Map<String, Value>) -> Option<StatusUpdate> {
    let g = |k: &str| s.get(k).and_then(as_string);
    Some(StatusUpdate {
        id: g("id")?,
        status: g("status")?,
        timestamp: s.get("timestamp").and_then(as_ts).unwrap_or(0),
        timestamp_out_of_range: false,
        timestamp_raw: None,
        recipient_id: g("recipient_id"),
        recipient_user_id: g("recipient_user_id"),
        pricing: s.get("pricing").filter(|p| p.is_object()).map(|p| Pricing {
            billable: p.get("billable").and_then(Value::as_bool),
            pricing_model: str_at(p, "pricing_model"),
            category: str_at(p, "category"),
            pricing_type: str_at(p, "type"),
        }),
        conversation: s
            .get("conversation")
            .filter(|c| c.is_object())
            .map(|c| Conversation {
                id: str_at(c, "id"),
                origin_type: c.get("origin").and_then(|o| str_at(o, "type")),
                expiration_timestamp: c.get("expiration_timestamp").and_then(as_ts),
            }),
        errors: api_errors(s.get("errors")),
        biz_opaque_callback_data: g("biz_opaque_callback_data"),
        raw: Value::Object(s.clone()),
    })
}

pub(super) fn first_id(a: &Option<String>, b: &Option<String>) -> String {
    a.as_ref()
        .or(b.as_ref())
        .map_or_else(|| "unknown".into(), Clone::clone)
}

pub(super) fn api_errors(v: Option<&Value>) -> Vec<ApiError> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(api_error)
        .collect()
}

pub(super) fn api_error(e: &Value) -> ApiError {
    ApiError {
        code: e.get("code").and_then(as_ts),
        title: str_at(e, "title"),
        message: str_at(e, "message"),
        details: e.get("error_data").and_then(|d| str_at(d, "details")),
        href: str_at(e, "href"),
    }
}

pub(super) fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(as_string)
}

/// Unix seconds (or any integer) from a string ("1760659300") or a number.
pub(super) fn as_ts(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok().or_else(|| saturated(s.trim())),
        // Saturating cast for floats and integers beyond i64.
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// An integer too large for `i64`, saturated (as a JSON number beyond it is).
fn saturated(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    integer.then_some(if negative { i64::MIN } else { i64::MAX })
}

pub(super) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}
