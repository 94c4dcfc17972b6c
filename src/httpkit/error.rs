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

/// Turns every rejection into a JSON error with the right status. Routes are
/// tried in turn, so a rejection carries what each route said: a parameter one
/// route could not read outranks "not this path" or "not this method" from the
/// others, and "no such endpoint" is left for when no route took the path.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Rejection> {
    if let Some(e) = rejection.find::<ApiError>() {
        return Ok(error_response(e));
    }
    let (status, message) = classify(&rejection);
    if status == StatusCode::BAD_REQUEST && message == "bad request" {
        tracing::debug!(?rejection, "unhandled rejection");
    }
    let body = ErrorBody {
        error: status.canonical_reason().unwrap_or("error"),
        message,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}

fn classify(rejection: &Rejection) -> (StatusCode, String) {
    use warp::reject::{InvalidHeader, InvalidQuery, LengthRequired, MissingHeader};
    use warp::reject::{MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType};
    if rejection.find::<PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "payload too large".into())
    } else if rejection.find::<LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "a Content-Length is required".into(),
        )
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))
    } else if let Some(e) = rejection.find::<InvalidQuery>() {
        (StatusCode::BAD_REQUEST, format!("invalid query: {e}"))
    } else if rejection.find::<UnsupportedMediaType>().is_some() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type".into(),
        )
    } else if let Some(e) = rejection.find::<InvalidHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if let Some(e) = rejection.find::<MissingHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if rejection.is_not_found() || rejection.find::<MethodNotAllowed>().is_some() {
        // warp reports "method not allowed" when any route's method filter rejected,
        // even for a path no route has (GET /favicon.ico): the honest answer is 404.
        (
            StatusCode::NOT_FOUND,
            "no such endpoint (for this method)".into(),
        )
    } else {
        (StatusCode::BAD_REQUEST, "bad request".into())
    }
}
