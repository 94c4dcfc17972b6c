//! The HTTP layer: composes every feature's routes in one place.

pub mod client_ip;
pub mod error;
pub mod server;
pub mod tls;

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use crate::app::AppState;

/// The connection's remote address (set by `server::run`).
pub fn peer(
) -> impl Filter<Extract = (Option<std::net::SocketAddr>,), Error = std::convert::Infallible> + Clone
{
    warp::ext::optional::<server::PeerAddr>().map(|p: Option<server::PeerAddr>| p.map(|p| p.0))
}

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
        .or(crate::outbox::graph_routes(state.clone()))
        .unify()
        .or(crate::dashboard::routes(state))
        .unify()
        .recover(error::recover)
        .unify()
        .boxed()
}
