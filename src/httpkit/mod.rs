//! What every feature's HTTP routes share: the error type and its one mapping to
//! HTTP, the bearer-token check, JSON answers, the peer and client address.

pub mod client_ip;
pub mod error;
pub mod params;

use subtle::ConstantTimeEq;
use warp::{Filter, Rejection, Reply};

use crate::config::Secret;
use error::ApiError;

/// The connection's remote address, put on each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The connection's remote address (set by the server for every request).
pub fn peer(
) -> impl Filter<Extract = (Option<std::net::SocketAddr>,), Error = std::convert::Infallible> + Clone
{
    warp::ext::optional::<PeerAddr>().map(|p: Option<PeerAddr>| p.map(|p| p.0))
}

/// Passes when the request carries `Authorization: Bearer <token>`.
pub fn authorized(token: Secret) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |value: Option<String>| {
            let ok = bearer_matches(value.as_deref(), &token);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(warp::reject::custom(ApiError::Unauthorized))
                }
            }
        })
        .untuple_one()
}

/// Whether an `Authorization` header value is `Bearer <token>` (constant time).
pub fn bearer_matches(header: Option<&str>, token: &Secret) -> bool {
    let given = header.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    bool::from(given.trim().as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Reply with JSON, or with the error's response.
pub fn json_or_error<T: serde::Serialize>(result: Result<T, ApiError>) -> warp::reply::Response {
    match result {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A request body that did not arrive within `WAGATE_BODY_TIMEOUT` (the server
/// cuts it with this error; routes tell it apart from a client that went away).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether a body-reading error is [`BodyTimedOut`], however deeply wrapped.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}
