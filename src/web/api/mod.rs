//! `/api`: JSON for operators and the business's tools, behind the bearer token.
//! The reads that span features live here; each feature brings its own routes.

pub(crate) mod calls;
pub(crate) mod deliveries;
pub(crate) mod messages;
pub mod stats;

use warp::filters::BoxedFilter;
use warp::Filter;

use crate::httpkit::authorized;
pub(crate) use crate::httpkit::json_or_error;
use crate::web::WebState;

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    let api = warp::path("api").and(authorized(state.api_token.clone()));
    api.and(
        deliveries::routes(state.clone())
            .or(messages::routes(state.clone()))
            .unify()
            .or(stats::routes(state.clone()))
            .unify()
            .or(calls::routes(state.store.clone()))
            .unify()
            .or(crate::media::routes(
                state.store.clone(),
                state.media.clone(),
            ))
            .unify()
            .or(crate::outbox::api_routes(state.outbox_handles()))
            .unify()
            .or(crate::forward::routes(state.forward_handles()))
            .unify()
            .or(crate::privacy::routes(state.exporter()))
            .unify()
            .or(crate::privacy::erase_routes(state.erase_handles()))
            .unify(),
    )
    .boxed()
}
