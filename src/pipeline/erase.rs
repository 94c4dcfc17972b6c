//! Erasure, carried out by the applier between two steps (so nothing else writes
//! derived state meanwhile; webhooks keep being journaled and answered):
//! 1. the person's ids read from the state (contact id, wa_id, user_id),
//!    their media files listed;
//! 2. the journal's active segments sealed, then every sealed segment holding their
//!    records rewritten (`privacy::redact`: deliveries without their items, sends to
//!    them without recipient and content); the erased items' dedup keys kept as
//!    keyed hashes (`privacy::Erasures`) so a retry is not applied again;
//! 3. the state rebuilt from the rewritten journal into a fresh directory by a second
//!    applier, then swapped in (`Store::swap_in`, `store::set_current`) and the old
//!    directory deleted: sled keeps old values in its files, so nothing of the old
//!    one is kept;
//! 4. their media files deleted, the erasure recorded as done.
//!
//! A crash at any point leaves the request file: the whole erasure runs again at the
//! next start (each part is idempotent; a half-built directory is removed at open).

use std::collections::HashSet;
use std::sync::Arc;

use super::{Applier, Options, Pending};
use crate::events::model::{Item, MessageContent};
use crate::journal::Stream;
use crate::media::MediaFiles;
use crate::privacy::{redact, EraseCounts, Erasures, Request};
use crate::store::{Store, StoreError};

/// What the applier needs to carry out erasures.
pub struct EraseContext {
    pub erasures: Erasures,
    pub media: Arc<MediaFiles>,
    /// The features' applier sides, new, for the rebuilding applier.
    pub pending: Box<dyn Fn() -> Pending + Send + Sync>,
}

/// Indexes of `items` not to apply: erased items (by the keyed hash of their dedup
/// key) and the `contacts[]` entries of their senders that came with them.
pub fn erased_in(items: &[Item], erasures: &Erasures) -> HashSet<usize> {
    let mut skip = HashSet::new();
    // The common case, nobody ever erased: no keyed hash per item.
    if erasures.none_erased() {
        return skip;
    }
    let (mut gone, mut kept) = (HashSet::new(), HashSet::new());
    for (i, item) in items.iter().enumerate() {
        let Some(key) = item.dedup_key() else {
            continue;
        };
        let sender = match item {
            Item::Message { message, .. } => message.from.clone().or(message.from_user_id.clone()),
            _ => None,
        };
        if erasures.is_erased(&key) {
            skip.insert(i);
            gone.extend(sender);
        } else {
            kept.extend(sender);
        }
    }
    for (i, item) in items.iter().enumerate() {
        if let Item::Contact { contact, .. } = item {
            if gone.contains(&contact.contact_id) && !kept.contains(&contact.contact_id) {
                skip.insert(i);
            }
        }
    }
    skip
}

/// Test hook for the crash tests: `WAGATE_TEST_ERASE_CRASH=<point>` ends the
/// process there at once, as `kill -9` would (no destructor, no flush).
fn crash_point(point: &str) {
    if std::env::var("WAGATE_TEST_ERASE_CRASH").is_ok_and(|p| p == point) {
        std::process::abort();
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Task(format!("erasure: {e}"))
}

impl Applier {
    /// Carries out every erasure requested, if one was (blocking).
    pub(super) fn run_erasures(&mut self) -> Result<(), StoreError> {
        let Some(ctx) = self.options.erase.clone() else {
            return Ok(());
        };
        if !ctx.erasures.take_requested() {
            return Ok(());
        }
        let pending = match ctx.erasures.pending() {
            Ok(p) => p,
            Err(e) => {
                ctx.erasures.request_again();
                return Err(err(e));
            }
        };
        for req in pending {
            if let Err(e) = self.erase(&ctx, req) {
                ctx.erasures.request_again();
                return Err(e);
            }
        }
        Ok(())
    }

    fn erase(&mut self, ctx: &EraseContext, req: Request) -> Result<(), StoreError> {
        let started = self.clock.mono_micros();
        self.finish_in_flight()?;
        let mut counts = EraseCounts::default();
        let contact = self.store.contact(&req.contact_id)?;
        let mut ids: Vec<String> = vec![req.contact_id.clone()];
        if let Some(c) = &contact {
            // Not the username: it comes only with their items (which go), and a
            // short one would match other people's words.
            ids.extend([&c.wa_id, &c.user_id].into_iter().flatten().cloned());
        }
        ids.sort();
        ids.dedup();
        ids.retain(|id| id.len() >= 3);
        let media = self.media_of(&req.contact_id, &mut counts)?;
        self.journal.seal_blocking().map_err(err)?;
        let mut keys = Vec::new();
        for stream in Stream::ALL {
            let done = self
                .journal
                .rewrite_sealed(stream, &mut |r| {
                    let o = redact::redact_record(r, &ids)?;
                    counts.items_removed += o.removed.len() as u64;
                    counts.deliveries_redacted += u64::from(o.delivery);
                    keys.extend(o.removed.iter().filter_map(Item::dedup_key));
                    Some(o.payload)
                })
                .map_err(err)?;
            counts.records_redacted += done.records;
            counts.segments_rewritten += done.segments;
        }
        ctx.erasures.remember_erased(&keys).map_err(err)?;
        crash_point("rewritten");
        self.rebuild_and_swap(ctx)?;
        crash_point("swapped");
        for file in media {
            if ctx.media.delete(&file).map_err(err)? {
                counts.media_files_deleted += 1;
            }
        }
        counts.duration_ms = ((self.clock.mono_micros() - started) / 1000).max(0) as u64;
        tracing::info!(erasure = %req.erasure.erasure_id, deliveries = counts.deliveries_redacted,
            items = counts.items_removed, ms = counts.duration_ms, "contact erased");
        let now = crate::util::time::rfc3339(self.clock.now_micros());
        ctx.erasures.finish(req.erasure, counts, now).map_err(err)
    }

    /// The stored media files of the contact's messages; counts their messages.
    fn media_of(&self, contact: &str, counts: &mut EraseCounts) -> Result<Vec<String>, StoreError> {
        let mut files = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .store
                .messages(Some(contact), None, before.as_deref(), 500)?;
            for m in &page.messages {
                counts.messages_before += 1;
                if let MessageContent::Media { id: Some(mid), .. } = &m.message.content {
                    if let Some(e) = self.store.media_entry(mid)? {
                        files.extend(e.live_file().map(str::to_string));
                    }
                }
            }
            match page.next_before {
                Some(b) if !page.messages.is_empty() => before = Some(b),
                _ => return Ok(files),
            }
        }
    }

    /// Rebuilds the state from the journal into a new directory, puts it in place
    /// of the current one, and deletes the old one.
    fn rebuild_and_swap(&mut self, ctx: &EraseContext) -> Result<(), StoreError> {
        let data = self.options.data_dir.clone();
        let name = crate::store::new_state_name();
        let fresh = Store::open(&data.join(&name))?;
        let options = Options {
            dedup_ttl: self.options.dedup_ttl,
            dedup_keys: self.options.dedup_keys,
            max_items: self.options.max_items,
            step: self.options.step,
            stuck_after: self.options.stuck_after,
            data_dir: data.clone(),
            min_free: self.options.min_free,
            retention: self.options.retention.clone(),
            health: self.options.health.clone(),
            erase: self.options.erase.clone(),
        };
        let (mut rebuilt, _) = Applier::new(
            self.journal.clone(),
            fresh.clone(),
            options,
            (ctx.pending)(),
            self.clock.clone(),
        )?;
        let heads = self.journal.heads().borrow().clone();
        while rebuilt.step(&heads)? {}
        rebuilt.finish_in_flight()?;
        fresh.flush()?;
        crate::store::set_current(&data, &name).map_err(err)?;
        let old = self.store.swap_in(&fresh)?;
        drop(fresh);
        self.adopt(rebuilt);
        crate::store::remove_state_dir(&old).map_err(err)
    }

    /// Takes over what `rebuilt` derived (its readers, counters, pending sides).
    fn adopt(&mut self, rebuilt: Applier) {
        self.readers = rebuilt.readers;
        self.counters = rebuilt.counters;
        self.overlay = rebuilt.overlay;
        self.outbox = rebuilt.outbox;
        self.media = rebuilt.media;
        self.forward = rebuilt.forward;
        self.seen = rebuilt.seen;
        self.seen_scan = None;
        self.expiry_from = None;
        self.start_seen_scan();
        let (main, quarantine) = (self.readers[0].cursor(), self.readers[1].cursor());
        for (stream, cursor) in [(Stream::Main, main), (Stream::Quarantine, quarantine)] {
            if let Some(c) = cursor {
                self.publish(stream, c);
            }
        }
    }
}
