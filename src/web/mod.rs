//! The HTTP layer: composes every feature's routes in one place.

pub mod client_ip;
pub mod error;

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use crate::app::AppState;

pub fn routes(state: AppState) -> BoxedFilter<(warp::reply::Response,)> {
    let health = warp::get()
        .and(warp::path("healthz"))
        .and(warp::path::end())
        .map(|| warp::reply::with_header("ok", "content-type", "text/plain").into_response())
        .boxed();
    health
        .or(crate::webhook::routes(state.clone()))
        .unify()
        .or(crate::metrics::routes(state.clone()))
        .unify()
        .or(crate::api::routes(state.clone()))
        .unify()
        .or(crate::outbox::graph_routes(state))
        .unify()
        .recover(error::recover)
        .unify()
        .boxed()
}
