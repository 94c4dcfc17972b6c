//! `POST /api/contacts/{id}/erase` (`202 {erasure_id, state}`) and
//! `GET /api/erasures/{id}` (the erasure's state and counts).

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::{Erasure, Erasures, Requester};
use crate::httpkit::error::ApiError;
use crate::httpkit::params::segment;
use crate::store::{self, Store};
use crate::util::clock::Clock;

/// What the erasure routes use.
#[derive(Clone)]
pub struct EraseHandles {
    pub erasures: Erasures,
    pub store: Store,
    pub clock: Clock,
}

/// The routes under `/api` (the caller checks the token).
pub fn erase_routes(h: EraseHandles) -> BoxedFilter<(warp::reply::Response,)> {
    let h2 = h.clone();
    let post = warp::post()
        .and(warp::path("contacts"))
        .and(segment())
        .and(warp::path("erase"))
        .and(warp::path::end())
        .then(move |id: String| {
            let h = h.clone();
            async move {
                match request_erasure(&h, id, Requester::Api).await {
                    Ok(e) => warp::reply::with_status(warp::reply::json(&e), StatusCode::ACCEPTED)
                        .into_response(),
                    Err(e) => e.into_response(),
                }
            }
        });
    let get = warp::get()
        .and(warp::path("erasures"))
        .and(segment())
        .and(warp::path::end())
        .then(move |id: String| {
            let h = h2.clone();
            async move {
                let e = h.erasures.clone();
                let found = tokio::task::spawn_blocking(move || e.status(&id)).await;
                match found {
                    Ok(Ok(Some(e))) => warp::reply::json(&e).into_response(),
                    Ok(Ok(None)) => ApiError::NotFound.into_response(),
                    Ok(Err(e)) => ApiError::Internal(e.to_string()).into_response(),
                    Err(e) => ApiError::Internal(e.to_string()).into_response(),
                }
            }
        });
    post.or(get).unify().boxed()
}

/// Records an erasure of contact `id` (contact id, wa_id or user_id); `404` when
/// there is no such contact. The applier carries it out.
pub async fn request_erasure(
    h: &EraseHandles,
    id: String,
    by: Requester,
) -> Result<Erasure, ApiError> {
    let st = h.store.clone();
    let contact_id = store::blocking(move || st.contact_id(&id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let (e, now) = (
        h.erasures.clone(),
        crate::util::time::rfc3339(h.clock.now_micros()),
    );
    let erasure = tokio::task::spawn_blocking(move || e.request(&contact_id, by, now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(erasure = %erasure.erasure_id, by = ?by, "erasure requested");
    Ok(erasure)
}
