//! Start-up recovery of the outbox: settles attempts that were in flight at a crash
//! as `unknown` (never resent), resumes a pause whose token has changed since, and
//! hands back what is still to send, oldest first.

use std::time::Duration;

use tokio::time::Instant;

use super::record::{AttemptResult, SendUpdate, State};
use super::sender::{wait_applied, Job};
use super::{Outbox, OutboxError};

/// At start: waits for the applier, settles attempts that were in flight at a crash
/// as `unknown` (never resent), and returns the rest to send, oldest first.
pub(super) async fn recover(ob: &Outbox) -> Result<(Vec<Job>, bool), OutboxError> {
    wait_applied(&ob.journal, ob.applied.clone()).await;
    let st = ob.store.clone();
    let (pending, pause) =
        crate::store::blocking(move || Ok((st.outbox_pending()?, st.outbox_pause()?))).await?;
    let mut paused = false;
    if let Some(p) = pause {
        if p.token_fingerprint == ob.upstream.token_fingerprint() {
            tracing::error!(alert = "sending paused", reason = %p.reason, "the outbox is paused");
            ob.pause.send_replace(Some(p));
            paused = true;
        } else {
            ob.update(&SendUpdate::Resumed {
                reason: "WHATSAPP_TOKEN changed".into(),
            })
            .await?;
            tracing::info!("WHATSAPP_TOKEN changed since sending paused: resuming");
        }
    }
    let mut jobs = Vec::new();
    for e in pending {
        if let Some(n) = e.in_flight() {
            let result = AttemptResult {
                error: Some(
                    "in flight when wagate stopped: Meta may or may not have it; not resent".into(),
                ),
                ..Default::default()
            };
            ob.update(&SendUpdate::Ended {
                id: e.id,
                attempt: n,
                result,
                state: State::Unknown,
            })
            .await?;
            tracing::warn!(
                id = e.id,
                attempt = n,
                "an attempt was in flight at a crash: marked unknown, not resent"
            );
            continue;
        }
        let mut job = Job::new(
            e.id,
            e.created_at_micros,
            &e.request,
            e.attempts.len() as u32,
        );
        if let Some(d) = e
            .attempts
            .last()
            .and_then(|a| Some((a.ended_at_micros?, a.result.retry_in_ms?)))
        {
            let due = d.0 + d.1 as i64 * 1000 - crate::util::clock::now_micros();
            job.not_before = Instant::now() + Duration::from_micros(due.max(0) as u64);
        }
        ob.lock().live.insert(e.id);
        jobs.push(job);
    }
    Ok((jobs, paused))
}
