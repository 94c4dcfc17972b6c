//! `/api`: JSON reads for operators and the business's tools, behind the bearer
//! token. Each feature adds its routes here.

pub(crate) mod deliveries;
pub(crate) mod messages;
pub mod stats;

use subtle::ConstantTimeEq;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

pub(crate) use deliveries::rfc3339;
pub use messages::SERVICE_WINDOW_SECS;

use crate::app::AppState;
use crate::web::error::ApiError;

pub fn routes(state: AppState) -> BoxedFilter<(warp::reply::Response,)> {
    let api = warp::path("api").and(authorized(state.clone()));
    api.and(
        deliveries::routes(state.clone())
            .or(messages::routes(state.clone()))
            .unify()
            .or(stats::routes(state.clone()))
            .unify()
            .or(crate::media::routes(state.clone()))
            .unify()
            .or(crate::outbox::api_routes(state.clone()))
            .unify()
            .or(crate::forward::routes(state))
            .unify(),
    )
    .boxed()
}

/// Passes when the request carries `Authorization: Bearer <api token>`.
pub(crate) fn authorized(state: AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |value: Option<String>| {
            let expected = state.api_token.clone();
            async move {
                let given = value
                    .as_deref()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                if bool::from(given.trim().as_bytes().ct_eq(expected.expose().as_bytes())) {
                    Ok(())
                } else {
                    Err(warp::reject::custom(ApiError::Unauthorized))
                }
            }
        })
        .untuple_one()
}

/// Reply with JSON, or with the error's response.
pub(crate) fn json_or_error<T: serde::Serialize>(
    result: Result<T, ApiError>,
) -> warp::reply::Response {
    match result {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(e) => e.into_response(),
    }
}
