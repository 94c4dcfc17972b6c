//! Start-up recovery of the outbox: settles attempts that were in flight at a crash
//! as `unknown` (never resent), resumes a pause whose token has changed since, and
//! hands back what is still to send, oldest first.

use std::time::Duration;

use super::job::Job;
use super::record::{AttemptResult, OutboxEntry, Pause, SendUpdate, State};
use super::{Outbox, OutboxError};
use crate::util::clock::Clock;

/// At start: waits for the applier, settles attempts that were in flight at a crash
/// as `unknown` (never resent), and returns the rest to send, oldest first, and
/// whether sending stays paused.
pub(super) async fn recover(ob: &Outbox) -> Result<(Vec<Job>, bool), OutboxError> {
    ob.wait_applied().await;
    let st = ob.store.clone();
    let (pending, pause) =
        crate::store::blocking(move || Ok((st.outbox_pending()?, st.outbox_pause()?))).await?;
    let paused = match pause {
        Some(p) => still_paused(ob, p).await?,
        None => false,
    };
    let mut jobs = Vec::new();
    for e in pending {
        if let Some(n) = e.in_flight() {
            settle_in_flight(ob, e.id, n).await?;
            continue;
        }
        ob.lock().live.insert(e.id);
        jobs.push(job_of(&e, &ob.clock));
    }
    Ok((jobs, paused))
}

/// A pause stays while the token is the one Meta refused; a new token resumes.
async fn still_paused(ob: &Outbox, p: Pause) -> Result<bool, OutboxError> {
    if p.token_fingerprint == ob.upstream.token_fingerprint() {
        tracing::error!(alert = "sending paused", reason = %p.reason, "the outbox is paused");
        ob.pause.send_replace(Some(p));
        return Ok(true);
    }
    ob.update(&SendUpdate::Resumed {
        reason: "WHATSAPP_TOKEN changed".into(),
    })
    .await?;
    tracing::info!("WHATSAPP_TOKEN changed since sending paused: resuming");
    Ok(false)
}

/// Attempt `n` of message `id` started and never ended: Meta may have it.
async fn settle_in_flight(ob: &Outbox, id: u64, n: u32) -> Result<(), OutboxError> {
    let result = AttemptResult {
        error: Some(
            "in flight when wagate stopped: Meta may or may not have it; not resent".into(),
        ),
        ..Default::default()
    };
    ob.update(&SendUpdate::Ended {
        id,
        attempt: n,
        result,
        state: State::Unknown,
    })
    .await?;
    tracing::warn!(
        id,
        attempt = n,
        "an attempt was in flight at a crash: marked unknown, not resent"
    );
    Ok(())
}

/// The job of a pending entry, due when its last attempt's backoff ends.
fn job_of(e: &OutboxEntry, clock: &Clock) -> Job {
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
        let wait = i64::try_from(d.1).unwrap_or(i64::MAX).saturating_mul(1000);
        let due = d.0.saturating_add(wait).saturating_sub(clock.now_micros());
        job.not_before = clock.deadline(Duration::from_micros(due.max(0) as u64));
    }
    job
}
