//! One journal record into the step's changes: a delivery through event processing
//! and forwarding, any other kind to the part of the app it belongs to.

use super::Applier;
use crate::journal::delivery::Delivery;
use crate::journal::{Kind, Record, RecordPos, Stream};
use crate::pipeline::items::{self as events, Delivered};
use crate::store::{Changes, DeliveryMeta, StoreError};

impl Applier {
    /// Applies one record; returns how many items it applied (for the step's bound).
    pub(super) fn apply_record(
        &mut self,
        stream: Stream,
        record: &Record,
        pos: RecordPos,
        changes: &mut Changes,
    ) -> Result<usize, StoreError> {
        match Kind::from_u8(record.kind) {
            Some(Kind::Delivery) => {}
            Some(Kind::MediaUpdate) => return self.media.apply(&self.store, record).map(|()| 1),
            Some(Kind::ForwardUpdate) => {
                return self.forward.apply(&self.store, record).map(|()| 1)
            }
            Some(kind) => return self.outbox.apply(&self.store, kind, record).map(|()| 1),
            None => {
                tracing::warn!(
                    seq = record.seq,
                    kind = record.kind,
                    "skipping a journal record of unknown kind"
                );
                return Ok(0);
            }
        }
        let delivery = match Delivery::decode(&record.payload) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(seq = record.seq, error = %e, "journal record could not be decoded");
                self.counters.add("journal_undecodable", 1);
                return Ok(0);
            }
        };
        let mut meta = meta_of(stream, record, pos, &delivery);
        if let Some(original) = delivery.reverified_from {
            if let Some(mut rejected) = self.store.delivery(original)? {
                rejected.reverified_as = Some(record.seq);
                changes.put_delivery(&rejected);
            }
        }
        self.counters
            .add_day(record.unix_micros, delivery.verdict.is_accepted());
        let applied = if delivery.verdict.is_accepted() {
            self.counters.add("deliveries_accepted", 1);
            self.apply_items(record, &delivery, &mut meta, changes)?
        } else {
            self.counters.add("deliveries_rejected", 1);
            0
        };
        changes.put_delivery(&meta);
        Ok(applied)
    }

    /// An accepted delivery's items through event processing, the new ones queued
    /// for forwarding; how many were applied.
    fn apply_items(
        &mut self,
        record: &Record,
        delivery: &Delivery,
        meta: &mut DeliveryMeta,
        changes: &mut Changes,
    ) -> Result<usize, StoreError> {
        let outcome = events::Applier {
            store: &self.store,
            overlay: &mut self.overlay,
            media: &mut self.media,
            changes,
            counters: &mut self.counters,
            dedup_ttl: self.options.dedup_ttl,
            max_items: self.options.max_items,
            seen: &mut self.seen,
            erasures: self.options.erase.as_ref().map(|e| &e.erasures),
        }
        .apply(&Delivered {
            id: record.seq,
            received_at_micros: record.unix_micros,
            body: &delivery.body,
        })?;
        meta.items = outcome.items;
        meta.parse_error = outcome.parse_error;
        if outcome.skipped > 0 {
            self.counters
                .add("items_skipped", u64::from(outcome.skipped));
            meta.items_skipped = Some(outcome.skipped);
            tracing::warn!(
                delivery = record.seq,
                items = outcome.items.unwrap_or(0),
                skipped = outcome.skipped,
                "a delivery holds more items than WAGATE_MAX_ITEMS: the rest are not applied (kept in the raw delivery)"
            );
        }
        let unrouted =
            self.forward
                .enqueue(&self.store, record.seq, record.unix_micros, &outcome.fresh)?;
        if unrouted > 0 {
            self.counters.add("forward_unrouted", unrouted);
        }
        Ok(outcome.items.unwrap_or(0).saturating_sub(outcome.skipped) as usize)
    }
}

/// What is kept of a delivery beside its raw copy (items filled in when applied).
fn meta_of(stream: Stream, record: &Record, pos: RecordPos, delivery: &Delivery) -> DeliveryMeta {
    DeliveryMeta {
        id: record.seq,
        received_at_micros: record.unix_micros,
        verdict: delivery.verdict,
        reason: delivery.reason.clone(),
        size: delivery.received_length,
        stored_size: delivery.body.len() as u64,
        peer: delivery.peer.clone(),
        secret_index: delivery.secret_index,
        stream,
        pos,
        items: None,
        items_skipped: None,
        parse_error: None,
        reverified_as: None,
        reverified_from: delivery.reverified_from,
    }
}
