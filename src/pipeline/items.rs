//! Applies the items of one accepted delivery: per-item dedup (atomic with the
//! item, since both go into the same commit), stale replays, the model.
//!
//! "Now" is the delivery's receive time, not the clock, so re-applying the journal
//! gives the same answers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::seen::SeenFilter;
use crate::events::coex::SOURCE_HISTORY;
use crate::events::identity::Fresh;
use crate::events::model::{ContactInfo, InboundMessage, Item, ItemMeta, MessageContent};
use crate::events::parse::{parse_capped, status_rank};
use crate::store::Counters;
use crate::store::{
    Changes, ContactRecord, Store, StoreError, StoredEvent, StoredMessage, StoredStatus,
};

/// One step's reads and changes that sled cannot show yet.
#[derive(Default)]
struct Layer {
    seen: HashSet<Vec<u8>>,
    /// Contact, and what of it needs writing.
    contacts: HashMap<String, (ContactRecord, ContactWrite)>,
}

/// State read and changed by steps whose writes are not in sled yet: the step being
/// prepared, and the one being committed (the applier prepares step k+1 while step
/// k commits). A contact is written at most once per step, and only when it changed.
#[derive(Default)]
pub struct Overlay {
    current: Layer,
    committing: Layer,
    /// Contacts as committed, so a returning contact costs no read from sled (the
    /// applier is the only writer of contacts). Bounded: emptied when full.
    committed_contacts: HashMap<String, ContactRecord>,
}

/// What a step must write of a contact: nothing when only its messages changed (the
/// service window comes from the newest message, not from the contact record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ContactWrite {
    Nothing,
    Record,
    /// The record and its alias keys (wa_id, user_id).
    WithAliases,
}

/// Committed contacts kept in memory at most.
const COMMITTED_CONTACTS: usize = 50_000;

impl Overlay {
    /// Adds the current step's changed contacts to `changes`.
    pub fn write(&self, changes: &mut Changes) {
        for (c, write) in self.current.contacts.values() {
            if *write != ContactWrite::Nothing {
                changes.put_contact(c, *write == ContactWrite::WithAliases);
            }
        }
    }

    /// The current step goes to be committed; a new one starts.
    pub fn hand_off(&mut self) {
        self.committing = std::mem::take(&mut self.current);
    }

    /// The step handed off is in sled now.
    pub fn committed(&mut self) {
        let step = std::mem::take(&mut self.committing);
        if self.committed_contacts.len() + step.contacts.len() > COMMITTED_CONTACTS {
            self.committed_contacts.clear();
        }
        self.committed_contacts
            .extend(step.contacts.into_iter().map(|(id, (c, _))| (id, c)));
    }

    /// After a failed commit: nothing in memory may be trusted over sled.
    pub fn clear(&mut self) {
        self.current = Layer::default();
        self.committing = Layer::default();
        self.committed_contacts.clear();
    }

    fn seen(&self, key: &[u8]) -> bool {
        self.current.seen.contains(key) || self.committing.seen.contains(key)
    }

    fn contact(&self, id: &str) -> Option<&ContactRecord> {
        self.current
            .contacts
            .get(id)
            .or_else(|| self.committing.contacts.get(id))
            .map(|(c, _)| c)
            .or_else(|| self.committed_contacts.get(id))
    }
}

pub struct Delivered<'a> {
    pub id: u64,
    pub received_at_micros: i64,
    pub body: &'a [u8],
}

pub struct Applier<'a> {
    pub store: &'a Store,
    pub overlay: &'a mut Overlay,
    /// Media jobs created by media messages.
    pub media: &'a mut crate::media::apply::Pending,
    pub changes: &'a mut Changes,
    pub counters: &'a mut Counters,
    pub dedup_ttl: Duration,
    /// Items applied per delivery at most (`WAGATE_MAX_ITEMS`): the rest are counted,
    /// never built, and stay in the journal's raw copy.
    pub max_items: usize,
    /// Recent dedup keys: spares the read from sled for an item surely new.
    pub seen: &'a mut SeenFilter,
    /// Erased items: a retry of one is not applied again.
    pub erasures: Option<&'a crate::privacy::Erasures>,
}

/// What processing found in a delivery, for its index entry.
pub struct Outcome {
    /// Items found in the delivery (all of them, applied or not).
    pub items: Option<u32>,
    /// Items past `max_items`, not applied.
    pub skipped: u32,
    pub parse_error: Option<String>,
    /// The items applied for the first time (not duplicates, not stale): what
    /// forwarding targets have not seen yet.
    pub fresh: Vec<Fresh>,
}

impl Applier<'_> {
    pub fn apply(&mut self, d: &Delivered) -> Result<Outcome, StoreError> {
        let parsed = match parse_capped(d.body, self.max_items) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.counters.add("unparseable", 1);
                return Ok(Outcome {
                    items: None,
                    skipped: 0,
                    parse_error: Some(e.to_string()),
                    fresh: Vec::new(),
                });
            }
        };
        let count = u32::try_from(parsed.found).unwrap_or(u32::MAX);
        let skipped = u32::try_from(parsed.skipped()).unwrap_or(u32::MAX);
        let items = parsed.items;
        // Each message keeps the profile name its sender had in this delivery: the
        // contact's name is then its newest message's, whatever the arrival order.
        let names: HashMap<String, String> = items
            .iter()
            .filter_map(|item| match item {
                Item::Contact { contact, .. } => {
                    Some((contact.contact_id.clone(), contact.profile_name.clone()?))
                }
                _ => None,
            })
            .collect();
        let mut fresh = Vec::new();
        let erased = match self.erasures {
            Some(e) => super::erase::erased_in(&items, e),
            None => HashSet::new(),
        };
        for (index, item) in items.into_iter().enumerate() {
            if erased.contains(&index) {
                self.counters.add("items_erased", 1);
                continue;
            }
            let route = (!matches!(item, Item::Contact { .. })).then(|| {
                let meta = item.meta();
                (meta.phone_number_id.clone(), meta.field.clone())
            });
            if self.apply_item(d, item, &names)? {
                if let Some((phone_number_id, field)) = route {
                    fresh.push(Fresh {
                        index: index as u32,
                        phone_number_id,
                        field,
                    });
                }
            }
        }
        Ok(Outcome {
            items: Some(count),
            skipped,
            parse_error: None,
            fresh,
        })
    }

    /// Applies one item; whether it was new.
    fn apply_item(
        &mut self,
        d: &Delivered,
        item: Item,
        names: &HashMap<String, String>,
    ) -> Result<bool, StoreError> {
        if let Item::Contact { contact, .. } = &item {
            self.merge_contact(contact)?;
            return Ok(false);
        }
        let Some(key) = item.dedup_key() else {
            return Ok(false);
        };
        let now_secs = d.received_at_micros / 1_000_000;
        // Only a time in range is believed: an item claiming year 9999 (or before 1970)
        // is deduplicated, placed and expired by its receive time.
        let item_secs = item.time(now_secs).own();
        if !self.is_new(&item, &key, item_secs, now_secs)? {
            return Ok(false);
        }
        self.seen
            .insert(&key, item_secs.unwrap_or(now_secs), now_secs);
        self.overlay.current.seen.insert(key.clone());
        if !matches!(item, Item::Message { .. }) {
            self.changes.remember_item(&key, d.received_at_micros);
        }
        self.counters.add("items_new", 1);
        let mut item = item;
        item.settle_time(now_secs);
        self.store_item(d, item, &key, names)?;
        Ok(true)
    }

    /// A `contacts[]` entry: merged into the contact's record.
    fn merge_contact(&mut self, contact: &ContactInfo) -> Result<(), StoreError> {
        let mut c = self.contact(&contact.contact_id)?;
        c.wa_id = contact.wa_id.clone().or(c.wa_id);
        c.user_id = contact.user_id.clone().or(c.user_id);
        c.username = contact.username.clone().or(c.username);
        // The stored name is only a fallback for a contact with no message (the
        // newest message's name wins on reading); the larger of two names keeps
        // it independent of arrival order.
        if contact.profile_name > c.profile_name {
            c.profile_name = contact.profile_name.clone();
        }
        self.save_contact(c);
        Ok(())
    }

    /// Neither seen before (the filter, this step, the store) nor a stale replay;
    /// counts the item as duplicate or stale otherwise.
    fn is_new(
        &mut self,
        item: &Item,
        key: &[u8],
        item_secs: Option<i64>,
        now_secs: i64,
    ) -> Result<bool, StoreError> {
        // Only an item with a time of its own can be placed in the filter's window
        // (a stored message outlives it); any other is looked up.
        let surely_new = item_secs.is_some_and(|t| self.seen.surely_absent(key, t));
        // A stored message is its own dedup key: one write less per message.
        let seen = self.overlay.seen(key)
            || (!surely_new
                && match item {
                    Item::Message { message, .. } => self.store.message_exists(&message.id)?,
                    _ => self.store.item_seen(key)?,
                });
        if seen {
            self.counters.add("items_duplicate", 1);
            return Ok(false);
        }
        // History messages are old by design: never stale (the wamid still dedups).
        let history = matches!(item, Item::Message { message, .. }
            if message.source.as_deref() == Some(SOURCE_HISTORY));
        let horizon = now_secs.saturating_sub(self.dedup_ttl.as_secs().min(i64::MAX as u64) as i64);
        if !history && item_secs.is_some_and(|ts| ts < horizon) {
            // Older than the dedup horizon: a replay we can no longer tell from new.
            self.counters.add("items_stale", 1);
            return Ok(false);
        }
        Ok(true)
    }

    /// A new item into the model.
    fn store_item(
        &mut self,
        d: &Delivered,
        item: Item,
        key: &[u8],
        names: &HashMap<String, String>,
    ) -> Result<(), StoreError> {
        match item {
            Item::Message { meta, message } => {
                let name = names.get(&message.contact_id).cloned();
                self.message(d, meta, message, name)?
            }
            Item::Status { meta, status } => {
                // The current status is derived from the timeline when read.
                let rank = status_rank(&status.status);
                let stored = StoredStatus {
                    status,
                    phone_number_id: meta.phone_number_id,
                    delivery_id: d.id,
                };
                self.changes.put_status(&stored, rank);
                self.counters.add("statuses", 1);
            }
            Item::Call { call, .. } => self.call(call)?,
            Item::Change { meta, event } => {
                self.account_event(d, &meta, &event)?;
                // Without a time of its own (value.errors[]), an event is as old as
                // its delivery (settled above): that keeps its place and its
                // retention deterministic.
                let stored = StoredEvent {
                    event,
                    waba_id: meta.waba_id,
                    phone_number_id: meta.phone_number_id,
                    delivery_id: d.id,
                };
                self.changes.put_event(&stored, &key[2..]);
                self.counters.add("events", 1);
            }
            Item::Contact { .. } => {}
        }
        Ok(())
    }

    fn message(
        &mut self,
        d: &Delivered,
        meta: ItemMeta,
        mut message: InboundMessage,
        profile_name: Option<String>,
    ) -> Result<(), StoreError> {
        // The verbatim object stays in the journal (the API reads it from there); sled
        // keeps the parsed content, unless the type is one the parser does not know.
        if !matches!(
            message.content,
            MessageContent::Unknown { .. } | MessageContent::Unsupported { .. }
        ) {
            message.raw = serde_json::Value::Null;
        }
        let mut c = self.contact(&message.contact_id)?;
        if message.outbound {
            // Sent by the business (an echo, history): `from` is the business.
            c.wa_id = message.to.clone().or(c.wa_id);
            c.user_id = message.to_user_id.clone().or(c.user_id);
        } else {
            c.wa_id = message.from.clone().or(c.wa_id);
            c.user_id = message.from_user_id.clone().or(c.user_id);
            c.username = message.username.clone().or(c.username);
        }
        self.save_contact(c);
        self.history_message(d, &meta, &message);
        if let Some(job) = crate::media::job_for(&message, d.received_at_micros) {
            self.media.create(self.store, job)?;
        }
        let direction = if message.outbound {
            "outbound"
        } else {
            "inbound"
        };
        self.changes.put_message(&StoredMessage {
            message,
            direction: direction.into(),
            waba_id: meta.waba_id,
            phone_number_id: meta.phone_number_id,
            delivery_id: d.id,
            profile_name,
        });
        self.counters.add("messages", 1);
        Ok(())
    }

    pub(super) fn contact(&mut self, id: &str) -> Result<ContactRecord, StoreError> {
        if let Some((c, _)) = self.overlay.current.contacts.get(id) {
            return Ok(c.clone());
        }
        let known = match self.overlay.contact(id) {
            Some(c) => Some(c.clone()),
            None => self.store.contact_record(id)?,
        };
        let c = known
            .map(|c| ContactRecord {
                // Derived from the stored messages when read, never kept.
                last_inbound_at: None,
                ..c
            })
            .unwrap_or_else(|| ContactRecord {
                contact_id: id.to_string(),
                ..Default::default()
            });
        self.overlay
            .current
            .contacts
            .insert(id.to_string(), (c.clone(), ContactWrite::Nothing));
        Ok(c)
    }

    /// Records `c` for this step; it is written only if it changed.
    pub(super) fn save_contact(&mut self, c: ContactRecord) {
        let entry = self
            .overlay
            .current
            .contacts
            .entry(c.contact_id.clone())
            .or_insert_with(|| (ContactRecord::default(), ContactWrite::WithAliases));
        let write = if entry.0.wa_id != c.wa_id || entry.0.user_id != c.user_id {
            ContactWrite::WithAliases
        } else if entry.0 != c {
            ContactWrite::Record
        } else {
            ContactWrite::Nothing
        };
        entry.1 = entry.1.max(write);
        entry.0 = c;
    }
}
