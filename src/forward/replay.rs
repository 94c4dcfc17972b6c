//! Replays: one delivery, one dead letter, or every event of a time range, queued
//! again for one target whatever it has seen. The request is resolved to explicit
//! (delivery, items) pairs and journaled (`ForwardUpdate::Replay`); the applier
//! queues them, so a replay survives a crash like everything else.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::record::{ForwardUpdate, ReplayItems};
use super::{read_body, ForwardError, Forwarder};
use crate::config::ForwardTarget;
use crate::events::parse::parse_capped;
use crate::journal::Journal;
use crate::store::Store;
use crate::util::time::secs_to_micros;

/// Deliveries one range replay may cover (a larger range: replay it in parts).
pub const MAX_RANGE_DELIVERIES: usize = 10_000;

/// `POST /api/forward/replay`: `target` and exactly one of `delivery`,
/// `dead_letter`, or `from` and `to` (unix seconds, inclusive).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub target: String,
    pub delivery: Option<u64>,
    pub dead_letter: Option<u64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ReplayAnswer {
    pub target: String,
    /// The journal sequence of the replay record (the queue entries' order).
    pub replay_id: u64,
    pub deliveries: usize,
    pub items: usize,
    /// Deliveries of the range whose raw bytes are gone (retention).
    pub skipped: usize,
}

enum What {
    Delivery(u64),
    DeadLetter(u64),
    Range(i64, i64),
}

impl Forwarder {
    pub async fn replay(&self, req: ReplayRequest) -> Result<ReplayAnswer, ForwardError> {
        let target = self.target(&req.target)?.clone();
        let what = match (req.delivery, req.dead_letter, req.from, req.to) {
            (Some(d), None, None, None) => What::Delivery(d),
            (None, Some(id), None, None) => What::DeadLetter(id),
            (None, None, Some(from), Some(to)) if from <= to => What::Range(from, to),
            _ => {
                return Err(ForwardError::BadRequest(
                    "give the target and exactly one of: delivery, dead_letter, or from and to (unix seconds, from <= to)".into(),
                ))
            }
        };
        let dead_letter = match what {
            What::DeadLetter(id) => Some(id),
            _ => None,
        };
        let (journal, store, t) = (self.journal.clone(), self.store.clone(), target.clone());
        let (entries, skipped) =
            tokio::task::spawn_blocking(move || resolve(&journal, &store, &t, what))
                .await
                .map_err(|e| crate::store::StoreError::Task(e.to_string()))??;
        if entries.is_empty() {
            return Err(ForwardError::NotFound("nothing to replay".into()));
        }
        let (deliveries, items) = (entries.len(), entries.iter().map(|e| e.items.len()).sum());
        let u = ForwardUpdate::Replay {
            target: target.id.clone(),
            entries,
            dead_letter,
        };
        let replay_id = self.journal(&u).await?;
        tracing::info!(target_id = %target.id, replay_id, deliveries, items, "forwarding replay queued");
        Ok(ReplayAnswer {
            target: target.id,
            replay_id,
            deliveries,
            items,
            skipped,
        })
    }
}

/// The (delivery, items) pairs to queue, and how many deliveries were skipped
/// (blocking).
fn resolve(
    journal: &Journal,
    store: &Store,
    target: &ForwardTarget,
    what: What,
) -> Result<(Vec<ReplayItems>, usize), ForwardError> {
    match what {
        What::Delivery(id) => {
            // One delivery asked for by id: all of it, filters or not.
            let (body, meta) = read_body(journal, store, id).map_err(ForwardError::NotFound)?;
            // The items processing applied; none past WAGATE_MAX_ITEMS.
            let items = parse_capped(&body, meta.items_applied())
                .map_err(|e| ForwardError::BadRequest(e.to_string()))?
                .items
                .iter()
                .enumerate()
                .filter(|(_, item)| item.dedup_key().is_some())
                .map(|(i, _)| i as u32)
                .collect::<Vec<_>>();
            let entries = (!items.is_empty()).then_some(ReplayItems {
                delivery: id,
                items,
            });
            Ok((entries.into_iter().collect(), 0))
        }
        What::DeadLetter(id) => {
            let d = store.dead_letter(&target.id, id)?.ok_or_else(|| {
                ForwardError::NotFound(format!("no dead letter {id} for target '{}'", target.id))
            })?;
            Ok((
                vec![ReplayItems {
                    delivery: d.delivery,
                    items: d.items,
                }],
                0,
            ))
        }
        What::Range(from, to) => {
            let from_micros = secs_to_micros(from);
            let to_micros = secs_to_micros(to).saturating_add(999_999);
            let metas = store.accepted_between(from_micros, to_micros, MAX_RANGE_DELIVERIES + 1)?;
            if metas.len() > MAX_RANGE_DELIVERIES {
                return Err(ForwardError::BadRequest(format!(
                    "more than {MAX_RANGE_DELIVERIES} deliveries in that range; replay it in parts"
                )));
            }
            // Each event once, even when Meta sent it in several deliveries.
            let mut seen = HashSet::new();
            let (mut entries, mut skipped) = (Vec::new(), 0);
            for m in metas {
                let Ok((body, meta)) = read_body(journal, store, m.id) else {
                    skipped += 1;
                    continue;
                };
                let Ok(parsed) = parse_capped(&body, meta.items_applied()) else {
                    continue;
                };
                let items: Vec<u32> = parsed
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| {
                        let meta = item.meta();
                        target.claims(meta.phone_number_id.as_deref())
                            && target.wants_field(&meta.field)
                    })
                    .filter(|(_, item)| item.dedup_key().is_some_and(|k| seen.insert(k)))
                    .map(|(i, _)| i as u32)
                    .collect();
                if !items.is_empty() {
                    entries.push(ReplayItems {
                        delivery: m.id,
                        items,
                    });
                }
            }
            Ok((entries, skipped))
        }
    }
}
