//! The HTTP layer: the server, and every feature's routes composed in one place,
//! with the cross-feature reads (`api`), the dashboard and `/metrics`.

pub mod api;
mod conn;
pub mod dashboard;
pub mod health;
pub mod metrics;
pub mod server;
mod state;
pub use state::media_opener;

pub use state::WebState;

use warp::filters::BoxedFilter;
use warp::Filter;

use crate::httpkit::error;

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    health::routes(state.health_handles())
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
