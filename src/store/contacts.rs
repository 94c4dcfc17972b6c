//! Contacts: the record (ids and a fallback name) and its alias keys. What changes
//! with every message (the last inbound time, the profile name) is read from the
//! contact's newest message instead, so a message writes no contact.

use serde::{Deserialize, Serialize};

use super::model::{decode, json, prefixed};
use super::{Changes, Store, StoreError, T};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ContactRecord {
    pub contact_id: String,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// The name in the contact's newest message (see `Store::contact`); stored only
    /// as a fallback for a contact with no message.
    pub profile_name: Option<String>,
    /// Unix seconds of the newest inbound message: derived from the stored messages
    /// when read (see `Store::contact`), not kept in the record.
    pub last_inbound_at: Option<i64>,
    /// The name the business saved the contact under in the WhatsApp Business app
    /// (`smb_app_state_sync`), kept apart from the profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_name: Option<String>,
    /// When the app's contact was last changed (its `metadata.timestamp`): an older
    /// change is not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_at: Option<i64>,
    /// Removed from the app's contacts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saved_removed: bool,
}

/// Meta's customer service window: free-form messages may be sent for 24 hours
/// after the contact's last inbound message.
pub const SERVICE_WINDOW_SECS: i64 = 24 * 3600;

impl ContactRecord {
    /// When the customer service window closes (unix seconds), if one was ever
    /// opened. The one place the 24-hour rule is written.
    pub fn window_closes_at(&self) -> Option<i64> {
        self.last_inbound_at
            .map(|t| t.saturating_add(SERVICE_WINDOW_SECS))
    }

    /// Whether free-form messages may be sent at `now_secs`.
    pub fn window_open(&self, now_secs: i64) -> bool {
        self.window_closes_at().is_some_and(|c| now_secs < c)
    }
}

impl Changes {
    pub fn put_contact(&mut self, c: &ContactRecord, with_aliases: bool) {
        self.put(T::Contacts, c.contact_id.as_bytes(), json(c));
        if with_aliases {
            // One key per (alias, contact): when two contacts claim one user_id the
            // lookup picks the smallest contact id, whatever order they arrived in.
            for alias in [&c.wa_id, &c.user_id].into_iter().flatten() {
                self.put(
                    T::ContactAlias,
                    prefixed(alias, c.contact_id.as_bytes()),
                    [],
                );
            }
        }
    }
}

impl Store {
    /// The stored record of exactly `contact_id` (no alias, nothing derived): what
    /// the applier merges into, so that its result never depends on which other
    /// contacts happen to be committed already.
    pub fn contact_record(&self, contact_id: &str) -> Result<Option<ContactRecord>, StoreError> {
        self.tree(T::Contacts)
            .get(contact_id)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The contact id that `id` (a contact id, wa_id or user_id) names: no record
    /// decoded, nothing derived. For filters that only need the id.
    pub fn contact_id(&self, id: &str) -> Result<Option<String>, StoreError> {
        if self.tree(T::Contacts).contains_key(id)? {
            return Ok(Some(id.to_string()));
        }
        // Alias keys are `alias \0 contact id`: the smallest contact id wins.
        match self
            .tree(T::ContactAlias)
            .scan_prefix(prefixed(id, b""))
            .next()
        {
            Some(kv) => Ok(Some(
                String::from_utf8_lossy(&kv?.0[id.len() + 1..]).into_owned(),
            )),
            None => Ok(None),
        }
    }

    /// By contact id, wa_id or user_id. `last_inbound_at` and the profile name come
    /// from the contact's newest stored message, so a message from a known contact
    /// writes no contact record.
    pub fn contact(&self, id: &str) -> Result<Option<ContactRecord>, StoreError> {
        let Some(contact_id) = self.contact_id(id)? else {
            return Ok(None);
        };
        let Some(mut c) = self.contact_record(&contact_id)? else {
            return Ok(None);
        };
        let prefix = prefixed(&c.contact_id, b"");
        // The newest message that opens the window (echoes and history do not).
        let mut newest = None;
        for kv in self.tree(T::MessagesByContact).scan_prefix(&prefix).rev() {
            let (k, v) = kv?;
            if v.as_ref() != super::model::NO_WINDOW {
                newest = Some(k);
                break;
            }
        }
        c.last_inbound_at = None;
        if let Some(k) = newest {
            let suffix = &k[prefix.len()..];
            c.last_inbound_at = super::from_be(suffix).map(|ts| ts as i64);
            let wamid = String::from_utf8_lossy(&suffix[8.min(suffix.len())..]);
            if let Some(name) = self.message(&wamid)?.and_then(|m| m.profile_name) {
                c.profile_name = Some(name);
            }
        }
        Ok(Some(c))
    }
}
