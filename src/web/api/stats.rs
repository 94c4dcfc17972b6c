//! `GET /api/stats`: counters, and how far processing has got.

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::Filter;

use super::json_or_error;
use crate::store;
use crate::web::WebState;

#[derive(Serialize)]
pub struct Stats {
    pub deliveries_accepted: u64,
    pub deliveries_rejected: u64,
    /// Last sequence number written to the journal (synced).
    pub journal_head: u64,
    /// Everything up to this sequence number has been applied.
    pub applied: u64,
    pub journal_commits: u64,
    pub uptime_seconds: u64,
    /// `building` (the startup scan runs) or `ready`: whether new items are known
    /// new without a read from the store.
    pub dedup_filter: crate::store::FilterState,
    pub dedup_filter_keys: usize,
    #[serde(flatten)]
    pub counters: std::collections::BTreeMap<String, u64>,
}

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    warp::get()
        .and(warp::path("stats"))
        .and(warp::path::end())
        .then(move || {
            let state = state.clone();
            async move { json_or_error(stats(&state).await) }
        })
        .boxed()
}

pub async fn stats(state: &WebState) -> Result<Stats, crate::httpkit::error::ApiError> {
    let heads = state.journal.heads().borrow().clone();
    let progress = *state.applied.borrow();
    let applied = progress.overall(&heads);
    let st = state.store.clone();
    let mut counters = store::blocking(move || {
        let mut out = std::collections::BTreeMap::new();
        for name in crate::store::counters::NAMES {
            out.insert(name.to_string(), st.counter(name)?);
        }
        Ok(out)
    })
    .await?;
    Ok(Stats {
        deliveries_accepted: counters.remove("deliveries_accepted").unwrap_or(0),
        deliveries_rejected: counters.remove("deliveries_rejected").unwrap_or(0),
        journal_head: heads.last_seq,
        applied,
        journal_commits: heads.commits,
        uptime_seconds: state.started.elapsed().as_secs(),
        dedup_filter: progress.dedup_filter,
        dedup_filter_keys: progress.dedup_filter_keys,
        counters,
    })
}
