//! The HTTP layer: the server, and every feature's routes composed in one place,
//! with the cross-feature reads (`api`), the dashboard and `/metrics`.

pub mod api;
mod conn;
pub mod dashboard;
pub mod metrics;
pub mod server;
mod state;
pub use state::media_opener;

pub use state::WebState;

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use crate::httpkit::error;

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    let health = warp::get()
        .and(warp::path("healthz"))
        .and(warp::path::end())
        .map(|| warp::reply::with_header("ok", "content-type", "text/plain").into_response())
        .boxed();
    health
        .or(crate::webhook::routes(state.webhook.clone()))
        .unify()
        .or(metrics::routes(state.clone()))
        .unify()
        .or(api::routes(state.clone()))
        .unify()
        .or(crate::outbox::graph_routes(
            state.outbox_handles(),
            state.api_token.clone(),
        ))
        .unify()
        .or(dashboard::routes(state))
        .unify()
        .recover(error::recover)
        .unify()
        .boxed()
}
