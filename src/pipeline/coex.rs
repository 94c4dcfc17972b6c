//! The applier's side of coexistence and calls: the app's contacts
//! (`smb_app_state_sync`), the history backfill's chunks and messages, call events.

use super::items::{Applier, Delivered};
use crate::events::coex::{chunk_info, history_status, saved_contacts, SOURCE_HISTORY};
use crate::events::model::{AccountEvent, CallEvent, InboundMessage, ItemMeta, StatusUpdate};
use crate::events::parse::status_rank;
use crate::store::{HistoryChunkRecord, StoreError, StoredStatus};

impl Applier<'_> {
    /// What an account event changes besides being kept: the app's contacts, the
    /// history's progress.
    pub(super) fn account_event(
        &mut self,
        d: &Delivered,
        meta: &ItemMeta,
        event: &AccountEvent,
    ) -> Result<(), StoreError> {
        match event.field.as_str() {
            "smb_app_state_sync" => self.app_contacts(event),
            "history" => {
                if let Some(c) = chunk_info(&event.value) {
                    let record = HistoryChunkRecord {
                        phase: c.phase,
                        chunk_order: c.chunk_order,
                        progress: c.progress,
                        threads: c.threads,
                        messages: c.messages,
                        error_code: c.error_code,
                        error: c.error,
                        received_at: d.received_at_micros / 1_000_000,
                    };
                    self.changes.put_history_chunk(phone(meta), &record);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Contacts added, edited or removed in the WhatsApp Business app: the name the
    /// business saved, apart from the profile name; an older change is not applied.
    fn app_contacts(&mut self, event: &AccountEvent) -> Result<(), StoreError> {
        for s in saved_contacts(&event.value) {
            let mut c = self.contact(&s.phone_number)?;
            if s.timestamp.is_some() && s.timestamp < c.saved_at {
                continue;
            }
            c.wa_id = c.wa_id.or_else(|| Some(s.phone_number.clone()));
            c.saved_at = s.timestamp.or(c.saved_at);
            c.saved_removed = s.action == "remove";
            c.saved_name = match c.saved_removed {
                true => None,
                false => s.full_name.or(s.first_name).or(c.saved_name),
            };
            self.save_contact(c);
        }
        Ok(())
    }

    /// A history message: its history status as its current status, and counted as
    /// imported for its phone number.
    pub(super) fn history_message(&mut self, d: &Delivered, meta: &ItemMeta, m: &InboundMessage) {
        if m.source.as_deref() != Some(SOURCE_HISTORY) {
            return;
        }
        self.changes.put_history_message(phone(meta), &m.id);
        let Some(status) = m.history_status.as_deref().and_then(history_status) else {
            return;
        };
        let stored = StoredStatus {
            status: StatusUpdate {
                id: m.id.clone(),
                status: status.into(),
                timestamp: m.timestamp,
                timestamp_out_of_range: false,
                timestamp_raw: None,
                recipient_id: m.outbound.then(|| m.contact_id.clone()),
                recipient_user_id: None,
                pricing: None,
                conversation: None,
                errors: Vec::new(),
                biz_opaque_callback_data: None,
                raw: serde_json::Value::Null,
            },
            phone_number_id: meta.phone_number_id.clone(),
            delivery_id: d.id,
        };
        self.changes.put_status(&stored, status_rank(status));
    }

    /// One call event, kept once per (call id, event, status); its contact known.
    pub(super) fn call(&mut self, call: CallEvent) -> Result<(), StoreError> {
        let mut c = self.contact(&call.contact_id)?;
        let digits = call.contact_id.bytes().all(|b| b.is_ascii_digit());
        if c.wa_id.is_none() && digits {
            c.wa_id = Some(call.contact_id.clone());
        }
        self.save_contact(c);
        self.changes.put_call_event(&call);
        self.counters.add("calls", 1);
        Ok(())
    }
}

fn phone(meta: &ItemMeta) -> &str {
    meta.phone_number_id.as_deref().unwrap_or("unknown")
}
