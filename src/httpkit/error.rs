//! The one mapping from errors to HTTP. Details go to the log; the client gets a
//! short, clear message (never a stack or a secret).

use http::StatusCode;
use serde::Serialize;
use warp::{Rejection, Reply};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("storage unavailable")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(String),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

pub fn error_response(err: &ApiError) -> warp::reply::Response {
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(error = ?err, "request failed");
    }
    let body = ErrorBody {
        error: status.canonical_reason().unwrap_or("error"),
        message: err.to_string(),
    };
    let mut resp = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert("www-authenticate", http::HeaderValue::from_static("Bearer"));
    }
    resp
}

impl Reply for ApiError {
    fn into_response(self) -> warp::reply::Response {
        error_response(&self)
    }
}

/// Turns every rejection into a JSON error with the right status.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Rejection> {
    if let Some(e) = rejection.find::<ApiError>() {
        return Ok(error_response(e));
    }
    // warp reports "method not allowed" when any route's method filter rejected,
    // even for a path no route has (GET /favicon.ico): the honest answer is 404.
    let (status, message) = if rejection.is_not_found()
        || rejection.find::<warp::reject::MethodNotAllowed>().is_some()
    {
        (
            StatusCode::NOT_FOUND,
            "no such endpoint (for this method)".to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, format!("invalid query: {e}"))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large".to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))
    } else {
        tracing::debug!(?rejection, "unhandled rejection");
        (StatusCode::BAD_REQUEST, "bad request".to_string())
    };
    let body = ErrorBody {
        error: status.canonical_reason().unwrap_or("error"),
        message,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}
