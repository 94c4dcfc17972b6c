//! Data model of one parsed webhook delivery.
//!
//! Everything here is plain data: `parse.rs` builds it from a POST body, the store keeps it as
//! JSON and the read API returns it. Field names are the snake_case names of the API; every
//! field the Cloud API does not guarantee is an `Option`, and the verbatim JSON is kept in `raw`
//! (messages, statuses) or `value` (account events) so that nothing Meta sends is ever dropped.

use super::parse::{as_f64, as_string, as_ts, str_at};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where an item came from: the `entry[]` and `changes[]` it was found in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemMeta {
    /// `entry[].id`: the WhatsApp Business Account id.
    pub waba_id: String,
    /// `changes[].field`.
    pub field: String,
    /// `value.metadata.phone_number_id` (messages/statuses/errors, user_preferences).
    pub phone_number_id: Option<String>,
    /// `value.metadata.display_phone_number`, else `value.display_phone_number`.
    pub display_phone_number: Option<String>,
}

/// One unit of work found in a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Item {
    Message {
        meta: ItemMeta,
        message: InboundMessage,
    },
    Status {
        meta: ItemMeta,
        status: StatusUpdate,
    },
    /// From `value.contacts[]`: an upsert of what we know about a user (not deduplicated).
    Contact {
        meta: ItemMeta,
        contact: ContactInfo,
    },
    /// Every non-`messages` change, each `value.errors[]` entry of a `messages` change, and
    /// whatever part of a `messages` change could not be read as a message/status/contact.
    Change { meta: ItemMeta, event: AccountEvent },
}

impl Item {
    /// Where the item came from (every kind has it).
    pub fn meta(&self) -> &ItemMeta {
        match self {
            Item::Message { meta, .. }
            | Item::Status { meta, .. }
            | Item::Contact { meta, .. }
            | Item::Change { meta, .. } => meta,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The inbound wamid.
    pub id: String,
    /// Sender's phone number (`from`, a wa_id); may be missing for username users (2026+).
    pub from: Option<String>,
    /// Sender's business-scoped user id (`from_user_id`, BSUID).
    pub from_user_id: Option<String>,
    /// `username` on the message if present, else `profile.username` of the matching contact.
    pub username: Option<String>,
    /// `from`, else `from_user_id`, else "unknown".
    pub contact_id: String,
    /// Unix seconds (0 if missing or unreadable; `Item::timestamp` then says `None`).
    pub timestamp: i64,
    #[serde(rename = "type")]
    pub msg_type: String,
    pub content: MessageContent,
    pub context: Option<MessageContext>,
    pub referral: Option<Value>,
    pub errors: Vec<ApiError>,
    /// The verbatim message object.
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    /// image, audio, video, document, sticker.
    Media {
        media_type: String,
        id: Option<String>,
        mime_type: Option<String>,
        /// As sent: base64 of the SHA-256 of the file.
        sha256: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
        /// Webhook media URL (sent since late 2025, expires; see `ext=` in it).
        url: Option<String>,
        voice: Option<bool>,
        animated: Option<bool>,
        file_size: Option<u64>,
    },
    Location {
        latitude: Option<f64>,
        longitude: Option<f64>,
        name: Option<String>,
        address: Option<String>,
        url: Option<String>,
    },
    Interactive {
        /// `interactive.type`: button_reply, list_reply, nfm_reply, ...
        reply_type: Option<String>,
        id: Option<String>,
        title: Option<String>,
        description: Option<String>,
        /// nfm_reply (Flows): a JSON document inside a string, kept as sent.
        response_json: Option<String>,
        body: Option<String>,
    },
    /// Quick-reply button of a template.
    Button {
        payload: Option<String>,
        text: Option<String>,
    },
    Reaction {
        /// The message reacted to.
        message_id: Option<String>,
        /// `None` when the reaction was removed (Meta sends `""`, or omits it).
        emoji: Option<String>,
    },
    Contacts {
        contacts: Value,
    },
    Order {
        catalog_id: Option<String>,
        text: Option<String>,
        product_items: Value,
    },
    System {
        body: Option<String>,
        /// `system.type`, e.g. user_changed_number.
        system_type: Option<String>,
        wa_id: Option<String>,
        new_wa_id: Option<String>,
        identity: Option<String>,
        customer: Option<String>,
    },
    /// The user edited an earlier message: `content` is the new content.
    Edit {
        original_message_id: Option<String>,
        /// `edit.message.type`.
        edited_type: Option<String>,
        content: Box<MessageContent>,
    },
    /// The user deleted ("deleted for everyone") an earlier message.
    Revoke {
        original_message_id: Option<String>,
    },
    /// `type: unsupported`; the reason is in `InboundMessage::errors` (131051, 131060, ...).
    Unsupported {
        /// `unsupported.type`, e.g. "edit", "media_placeholder".
        unsupported_type: Option<String>,
    },
    /// A type this parser does not know, or a known type without its object: see `raw`.
    Unknown {},
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageContext {
    /// Who sent the replied-to message (our display number for replies to us).
    pub from: Option<String>,
    /// The replied-to message id.
    pub id: Option<String>,
    pub forwarded: Option<bool>,
    pub frequently_forwarded: Option<bool>,
    pub referred_product: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The outbound wamid this status is about.
    pub id: String,
    pub status: String,
    /// Unix seconds (0 if missing or unreadable; `Item::timestamp` then says `None`).
    pub timestamp: i64,
    pub recipient_id: Option<String>,
    pub recipient_user_id: Option<String>,
    pub pricing: Option<Pricing>,
    pub conversation: Option<Conversation>,
    pub errors: Vec<ApiError>,
    pub biz_opaque_callback_data: Option<String>,
    /// The verbatim status object.
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    pub billable: Option<bool>,
    pub pricing_model: Option<String>,
    pub category: Option<String>,
    #[serde(rename = "type")]
    pub pricing_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Option<String>,
    /// `conversation.origin.type`.
    pub origin_type: Option<String>,
    pub expiration_timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactInfo {
    pub wa_id: Option<String>,
    /// BSUID (`contacts[].user_id`).
    pub user_id: Option<String>,
    /// `contacts[].profile.username`.
    pub username: Option<String>,
    /// `contacts[].profile.name`.
    pub profile_name: Option<String>,
    /// `wa_id`, else `user_id`, else "unknown" (same rule as `InboundMessage::contact_id`).
    pub contact_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// The change's `field`.
    pub field: String,
    /// `value.timestamp`, else an event-specific time, else `entry[].time`.
    pub timestamp: Option<i64>,
    /// The change's verbatim `value` (for a `messages` change: narrowed to the one part).
    pub value: Value,
    /// A short human line, best effort.
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
    pub href: Option<String>,
}

// ---- Reading each object from its JSON (used by parse.rs) ----

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
        "image" | "audio" | "video" | "document" | "sticker" => C::Media {
            media_type: msg_type.to_string(),
            id: g("id"),
            mime_type: g("mime_type"),
            sha256: g("sha256"),
            caption: g("caption"),
            filename: g("filename"),
            url: g("url"),
            voice: o.get("voice").and_then(Value::as_bool),
            animated: o.get("animated").and_then(Value::as_bool),
            file_size: o.get("file_size").and_then(Value::as_u64),
        },
        "location" => C::Location {
            latitude: o.get("latitude").and_then(as_f64),
            longitude: o.get("longitude").and_then(as_f64),
            name: g("name"),
            address: g("address"),
            url: g("url"),
        },
        "interactive" => {
            let reply_type = g("type");
            let r = reply_type
                .as_deref()
                .and_then(|t| o.get(t))
                .unwrap_or(&Value::Null);
            let rg = |k: &str| str_at(r, k);
            C::Interactive {
                id: rg("id"),
                title: rg("title"),
                description: rg("description"),
                response_json: rg("response_json"),
                body: rg("body"),
                reply_type,
            }
        }
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
        "edit" => {
            let inner = o.get("message").and_then(Value::as_object);
            let edited_type = inner.and_then(|i| i.get("type")).and_then(as_string);
            let content = match (inner, &edited_type) {
                (Some(i), Some(t)) if depth == 0 => content(t, i, depth + 1),
                _ => C::Unknown {},
            };
            C::Edit {
                original_message_id: g("original_message_id"),
                edited_type,
                content: Box::new(content),
            }
        }
        "revoke" => C::Revoke {
            original_message_id: g("original_message_id"),
        },
        _ => C::Unknown {},
    }
}

pub(super) fn status_update(s: &Map<String, Value>) -> Option<StatusUpdate> {
    let g = |k: &str| s.get(k).and_then(as_string);
    Some(StatusUpdate {
        id: g("id")?,
        status: g("status")?,
        timestamp: s.get("timestamp").and_then(as_ts).unwrap_or(0),
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

fn first_id(a: &Option<String>, b: &Option<String>) -> String {
    a.as_ref()
        .or(b.as_ref())
        .map_or_else(|| "unknown".into(), Clone::clone)
}

fn api_errors(v: Option<&Value>) -> Vec<ApiError> {
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
