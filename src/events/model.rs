//! Data model of one parsed webhook delivery.
//!
//! Everything here is plain data: `parse.rs` builds it from a POST body, the store keeps it as
//! JSON and the read API returns it. Field names are the snake_case names of the API; every
//! field the Cloud API does not guarantee is an `Option`, and the verbatim JSON is kept in `raw`
//! (messages, statuses) or `value` (account events) so that nothing Meta sends is ever dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
// Short-lived parse results (a `Vec` per delivery, most of them messages): boxing
// the message would cost an allocation per item and save nothing.
#[allow(clippy::large_enum_variant)]
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
    /// One event of a call (`calls` field: `connect`, `terminate`, or a call status).
    Call { meta: ItemMeta, call: CallEvent },
}

impl Item {
    /// Where the item came from (every kind has it).
    pub fn meta(&self) -> &ItemMeta {
        match self {
            Item::Message { meta, .. }
            | Item::Status { meta, .. }
            | Item::Contact { meta, .. }
            | Item::Change { meta, .. }
            | Item::Call { meta, .. } => meta,
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
    /// Set when the wire time was out of range (before 1970, from year 10000 on, or
    /// more than a day after the delivery was received; see `util::time::ItemTime`):
    /// `timestamp` is then the receive time and `timestamp_raw` the time sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamp_out_of_range: bool,
    /// The wire time, kept raw, when it was out of range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_raw: Option<i64>,
    #[serde(rename = "type")]
    pub msg_type: String,
    pub content: MessageContent,
    pub context: Option<MessageContext>,
    pub referral: Option<Value>,
    pub errors: Vec<ApiError>,
    /// The verbatim message object.
    pub raw: Value,
    /// Where a message not received through the Cloud API came from: `business_app`
    /// (an echo of a message typed in the WhatsApp Business app) or `history` (the
    /// coexistence backfill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Sent by the business (an echo, a history message from the business):
    /// `contact_id` is then the recipient, `to`/`to_user_id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outbound: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user_id: Option<String>,
    /// A history message's `history_context.status`, as sent (e.g. `READ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_status: Option<String>,
    /// A history message's chunk: `metadata.phase` and `chunk_order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_chunk: Option<HistoryChunk>,
}

/// Where a history message came from: `history[].metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistoryChunk {
    pub phase: Option<i64>,
    pub chunk_order: Option<i64>,
    pub progress: Option<i64>,
}

/// One call event, as the `calls` field sends it (`calls[]` or `statuses[]`); the
/// SDP of `session` is never kept here (only in the raw delivery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// The call id (`wacid...`).
    pub id: String,
    /// `connect`, `terminate`, or `status` (an element of `statuses[]`).
    pub event: String,
    /// `terminate`: COMPLETED / FAILED; `status`: RINGING / ACCEPTED / REJECTED.
    pub status: Option<String>,
    /// Unix seconds (0 if missing).
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamp_out_of_range: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_raw: Option<i64>,
    /// USER_INITIATED or BUSINESS_INITIATED.
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The user's side of the call: the caller of a user-initiated call, else the callee.
    pub contact_id: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Seconds, on `terminate`.
    pub duration: Option<i64>,
    pub biz_opaque_callback_data: Option<String>,
    pub errors: Vec<ApiError>,
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
    /// `interactive.call_permission_reply`: the user's answer to a call permission request.
    CallPermissionReply {
        /// `accept` or `reject`.
        response: Option<String>,
        is_permanent: Option<bool>,
        /// Unix seconds the permission lasts until.
        expiration_timestamp: Option<i64>,
        /// `user_action` or `automatic`.
        response_source: Option<String>,
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
    /// Set when the wire time was out of range (before 1970, from year 10000 on, or
    /// more than a day after the delivery was received; see `util::time::ItemTime`):
    /// `timestamp` is then the receive time and `timestamp_raw` the time sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamp_out_of_range: bool,
    /// The wire time, kept raw, when it was out of range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_raw: Option<i64>,
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

/// A contact of the WhatsApp Business app (`smb_app_state_sync`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedContact {
    /// The contact's phone number (`contact.phone_number`).
    pub phone_number: String,
    /// `add` (added or edited) or `remove`.
    pub action: String,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    /// `metadata.timestamp`: a change older than the one applied is ignored.
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// The change's `field`.
    pub field: String,
    /// `value.timestamp`, else an event-specific time, else `entry[].time`.
    pub timestamp: Option<i64>,
    /// Set when the wire time was out of range (before 1970, from year 10000 on, or
    /// more than a day after the delivery was received; see `util::time::ItemTime`):
    /// `timestamp` is then the receive time and `timestamp_raw` the time sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamp_out_of_range: bool,
    /// The wire time, kept raw, when it was out of range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_raw: Option<i64>,
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
