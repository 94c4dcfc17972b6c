//! `GET /healthz`: `200 ok` while wagate gets on; `503` with a JSON reason when
//! processing is stuck (failing, or behind with no progress, for longer than
//! `WAGATE_STUCK_AFTER`). Webhooks are still taken then (the journal does not need
//! the applier), but what they bring is not processed: a monitor should page.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use crate::journal::Journal;
use crate::pipeline::running::{stuck, ApplyHealth};
use crate::store::Applied;
use crate::util::clock::Clock;

/// What `/healthz` looks at.
#[derive(Clone)]
pub struct Handles {
    pub health: Arc<ApplyHealth>,
    pub journal: Arc<Journal>,
    pub applied: watch::Receiver<Applied>,
    pub clock: Clock,
    pub stuck_after: Duration,
}

impl Handles {
    /// Why processing is stuck, or `None`.
    pub fn stuck(&self) -> Option<String> {
        let heads = self.journal.heads().borrow().clone();
        let applied = self.applied.borrow().overall(&heads);
        let lag = heads.last_seq.saturating_sub(applied);
        let state = self.health.snapshot();
        stuck(&state, self.clock.mono_micros(), lag, self.stuck_after)
    }
}

pub fn routes(h: Handles) -> BoxedFilter<(warp::reply::Response,)> {
    warp::get()
        .and(warp::path("healthz"))
        .and(warp::path::end())
        .map(move || match h.stuck() {
            None => warp::reply::with_header("ok", "content-type", "text/plain").into_response(),
            Some(reason) => warp::reply::with_status(
                warp::reply::json(&serde_json::json!({"status": "stuck", "reason": reason})),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .into_response(),
        })
        .boxed()
}
