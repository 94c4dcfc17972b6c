//! Request parameters, parsed in one way everywhere: the query string, JSON
//! bodies and path segments. A bad one is answered `400` with a message naming
//! the parameter and what it accepts, never "no such endpoint".

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use warp::{Filter, Rejection};

use super::error::ApiError;

/// The query string parsed into `T` (no query string: `T` from nothing).
pub fn query<T>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Send + 'static,
{
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move { parse_query(&raw).map_err(warp::reject::custom) })
}

/// Parses a query string, naming the parameter that does not fit.
pub fn parse_query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::BadRequest(match path.as_str() {
            "." | "?" => format!("invalid query: {}", e.inner()),
            name => format!("query parameter `{name}`: {}", e.inner()),
        })
    })
}

/// A JSON body of at most `limit` bytes parsed into `T`.
pub fn json_body<T>(limit: u64) -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Send + 'static,
{
    warp::body::content_length_limit(limit)
        .and(warp::body::bytes())
        .and_then(|body: Bytes| async move { parse_json(&body).map_err(warp::reject::custom) })
}

/// Parses a JSON body, naming the field that does not fit.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::BadRequest(match path.as_str() {
            "." => format!("invalid JSON body: {}", e.inner()),
            field => format!("invalid JSON body: `{field}`: {}", e.inner()),
        })
    })
}

/// The request body if it is at most `max` bytes, `Ok(None)` if it is larger
/// (read no further, whether or not a `Content-Length` was sent), `Err` if it
/// could not be read.
pub fn capped_body(
    max: usize,
) -> impl Filter<Extract = (Result<Option<Bytes>, ApiError>,), Error = Rejection> + Clone {
    warp::body::stream().then(move |body| read_capped(body, max))
}

async fn read_capped<S, B>(body: S, max: usize) -> Result<Option<Bytes>, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if out.len() + chunk.remaining() > max {
            return Ok(None);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(Some(Bytes::from(out)))
}

/// One path segment, percent-decoded (a wamid ends in `=` and may hold `/`).
pub fn segment() -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::path::param::<String>()
        .and_then(|raw: String| async move { decode_segment(&raw).map_err(warp::reject::custom) })
}

/// `text` percent-encoded as one path segment (every byte but ASCII letters and
/// digits escaped), for links the API and the dashboard hand out.
pub fn encode_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Decodes `%XX` escapes; a segment that is not UTF-8 once decoded is refused.
pub fn decode_segment(raw: &str) -> Result<String, ApiError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::BadRequest("a path segment is not valid UTF-8 once decoded".into()))
}

/// How many items a page holds: `limit`, from 1 to 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub usize);

impl Limit {
    pub const MAX: usize = 500;

    /// The limit asked for, or `default`.
    pub fn or(limit: Option<Limit>, default: usize) -> usize {
        limit.map_or(default, |l| l.0)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim().parse::<usize>() {
            Ok(n) if (1..=Limit::MAX).contains(&n) => Ok(Limit(n)),
            _ => Err(serde::de::Error::custom(format!(
                "'{text}' is not a whole number from 1 to {}",
                Limit::MAX
            ))),
        }
    }
}

/// A position in a list (`before`): a whole number from a previous page's
/// `next_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position(pub u64);

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.trim().parse::<u64>().map(Position).map_err(|_| {
            serde::de::Error::custom(format!(
                "'{text}' is not a position (a whole number from a page's next_before)"
            ))
        })
    }
}

/// A position in a time-ordered list (`before`): `<unix seconds>` or
/// `<unix seconds>_<id>`, as a page's `next_before` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let secs = text.split_once('_').map_or(text.as_str(), |(s, _)| s);
        match secs.parse::<u64>() {
            Ok(_) => Ok(Cursor(text)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "'{text}' is not a cursor (unix seconds, optionally '_' and an id, from a page's next_before)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Q {
        limit: Option<Limit>,
        before: Option<Position>,
    }

    #[test]
    fn a_bad_parameter_is_named_with_what_it_accepts() {
        for (raw, name, accepts) in [
            ("limit=-1", "`limit`", "from 1 to 500"),
            ("limit=0", "`limit`", "from 1 to 500"),
            ("limit=501", "`limit`", "from 1 to 500"),
            ("before=-5", "`before`", "a position"),
            ("before=zz", "`before`", "a position"),
            ("before=99999999999999999999999", "`before`", "a position"),
        ] {
            let e = parse_query::<Q>(raw).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(accepts), "{raw}: {e}");
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct M {
            before: Option<Cursor>,
        }
        assert!(parse_query::<M>("before=1760659300_wamid.X").is_ok());
        assert!(parse_query::<M>("before=1760659300").is_ok());
        for raw in ["before=abc", "before=-5_x"] {
            let e = parse_query::<M>(raw).unwrap_err().to_string();
            assert!(
                e.contains("`before`") && e.contains("not a cursor"),
                "{raw}: {e}"
            );
        }
        let e = parse_query::<Q>("limit=x").unwrap_err().to_string();
        assert!(e.contains("`limit`") && e.contains("from 1 to 500"), "{e}");
    }

    #[test]
    fn good_parameters_and_none() {
        let q: Q = parse_query("limit=10&before=7").unwrap();
        assert_eq!((q.limit, q.before), (Some(Limit(10)), Some(Position(7))));
        let q: Q = parse_query("").unwrap();
        assert_eq!((q.limit, q.before), (None, None));
    }

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(
            decode_segment("wamid.HBgL%2Bab%2Fcd%3D%3D").unwrap(),
            "wamid.HBgL+ab/cd=="
        );
        assert_eq!(decode_segment("plain").unwrap(), "plain");
        assert!(decode_segment("%FF").is_err());
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct B {
            from: i64,
        }
        let e = parse_json::<B>(br#"{"from": 1e999}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid JSON body"), "{e}");
        let e = parse_json::<B>(br#"{"from": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`from`"), "{e}");
    }
}
