//! Media download: `GET /{version}/{media-id}` (the lookup, for a fresh URL) and the
//! streaming download of that URL, both with the bearer token and wagate's
//! User-Agent. The token only goes to the Graph URL and to media hosts on the
//! allow-list (`WAGATE_MEDIA_HOSTS`), over https (plain http only to a loopback
//! address, for tests). Redirects are followed by hand, and only to allowed hosts.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{call_error, classify, Class, GraphError, Upstream};
use crate::config::MediaHost;

/// Redirect hops followed at most.
const MAX_REDIRECTS: usize = 5;

/// What `GET /{media-id}` answered.
#[derive(Debug, Clone, Default)]
pub struct MediaInfo {
    pub url: String,
    pub mime_type: Option<String>,
    /// Hex in the lookup; decoded.
    pub sha256: Option<[u8; 32]>,
    /// An integer, or (some variants) a string of digits.
    pub file_size: Option<u64>,
}

impl MediaInfo {
    pub fn from_body(body: &Value) -> Option<MediaInfo> {
        let url = body.get("url")?.as_str()?.to_string();
        let sha256 = body
            .get("sha256")
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|v| v.try_into().ok());
        let file_size = match body.get("file_size") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Some(MediaInfo {
            url,
            mime_type: body
                .get("mime_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            sha256,
            file_size,
        })
    }
}

/// Why a media id is refused (the id is shown escaped, so it cannot forge a log line).
pub fn invalid_media_id(id: &str) -> String {
    let shown: String = id.chars().take(64).flat_map(char::escape_default).collect();
    format!(
        "media id '{shown}' is not one of Meta's (1 to {MAX_MEDIA_ID_LEN} digits): never looked up"
    )
}

/// Why a lookup or a download did not give a file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("WHATSAPP_TOKEN is not configured")]
    NoToken,
    /// Meta no longer knows the media id (code 100): give up.
    #[error("media id not found: {0}")]
    Gone(String),
    /// Will not be fixed by retrying (a refused URL or redirect, a permanent error).
    #[error("{0}")]
    Permanent(String),
    /// Larger than allowed (known from `Content-Length`).
    #[error("larger than the limit of {limit} bytes (Content-Length {length})")]
    TooLarge { limit: u64, length: u64 },
    /// Try again: with a fresh URL, after `after` (or the backoff) when `backoff`.
    #[error("{reason}")]
    Retry {
        reason: String,
        backoff: bool,
        after: Option<Duration>,
    },
}

fn retry(reason: impl Into<String>, backoff: bool) -> FetchError {
    FetchError::Retry {
        reason: reason.into(),
        backoff,
        after: None,
    }
}

/// Longest media id accepted (Meta's are 15 to 17 digits today).
pub const MAX_MEDIA_ID_LEN: usize = 32;

/// Whether `id` looks like one of Meta's media ids: digits only, 1 to
/// [`MAX_MEDIA_ID_LEN`] of them. Anything else is never looked up.
pub fn valid_media_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_MEDIA_ID_LEN && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the token may be sent to `url`: https (or http to a loopback address)
/// to a host and port on the allow-list (see [`MediaHost`]).
pub fn media_url_allowed(url: &reqwest::Url, hosts: &[String]) -> Result<(), String> {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let listed = hosts
        .iter()
        .filter_map(|h| MediaHost::parse(h).ok())
        .any(|h| h.allows(bare, url.port()));
    if !listed {
        let shown = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        return Err(format!(
            "refused media host '{shown}': not in WAGATE_MEDIA_HOSTS"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        s => Err(format!("refused a {s}: media URL (https only)")),
    }
}

impl Upstream {
    /// `GET /{version}/{media-id}` with the bearer token: a fresh download URL.
    pub async fn media_lookup(&self, media_id: &str) -> Result<MediaInfo, FetchError> {
        let token = self.graph.token.as_ref().ok_or(FetchError::NoToken)?;
        if !valid_media_id(media_id) {
            return Err(FetchError::Permanent(invalid_media_id(media_id)));
        }
        let url = self
            .graph_url(&[media_id])
            .map_err(|e| FetchError::Permanent(format!("media lookup: {e}")))?;
        let resp = self
            .http
            .get(url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| retry(format!("media lookup: {}", call_error(e)), true))?;
        let status = resp.status().as_u16();
        let after = self.retry_after(resp.headers());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| retry(format!("media lookup: reading the answer: {e}"), true))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error = GraphError::from_body(&body);
        let what = |e: &Option<GraphError>| {
            e.as_ref().map_or_else(
                || format!("HTTP {status}"),
                |e| format!("HTTP {status}: {}", e.summary()),
            )
        };
        match classify(status, error.as_ref()) {
            Class::Accepted => MediaInfo::from_body(&body)
                .ok_or_else(|| retry("media lookup: answer without a url", true)),
            _ if error.as_ref().and_then(|e| e.code) == Some(100) => {
                Err(FetchError::Gone(what(&error)))
            }
            Class::Permanent => Err(FetchError::Permanent(format!(
                "media lookup: {}",
                what(&error)
            ))),
            // Token errors, throughput, 5xx: later.
            _ => Err(FetchError::Retry {
                reason: format!("media lookup: {}", what(&error)),
                backoff: true,
                after,
            }),
        }
    }

    /// Downloads `url` into `sink` (non-empty chunks as they arrive; the receiver bounds the
    /// memory in use), following redirects to allowed hosts only. Refuses a
    /// `Content-Length` over `limit`. Returns the `Content-Type`, the
    /// `Content-Length` and the bytes sent. `idle`: longest wait for the next chunk.
    pub async fn media_download(
        &self,
        url: &str,
        hosts: &[String],
        limit: u64,
        timeout: Duration,
        idle: Duration,
        sink: &mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<Downloaded, FetchError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let resp = self.follow(url, hosts, deadline, timeout).await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            // The body of a failed download is not documented: never parse it.
            let backoff = status == 429 || status >= 500;
            return Err(FetchError::Retry {
                reason: format!("media download: HTTP {status}"),
                backoff,
                after: self.retry_after(resp.headers()).filter(|_| backoff),
            });
        }
        let content_length = resp.content_length();
        if let Some(length) = content_length.filter(|l| *l > limit) {
            return Err(FetchError::TooLarge { limit, length });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let sent = stream_body(resp, sink, limit, deadline, idle).await?;
        Ok(Downloaded {
            content_type,
            content_length,
            sent,
        })
    }

    /// GETs `url` with the token, following redirects to allowed hosts only; the
    /// first answer that is not a redirect.
    async fn follow(
        &self,
        url: &str,
        hosts: &[String],
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<reqwest::Response, FetchError> {
        let token = self.graph.token.as_ref().ok_or(FetchError::NoToken)?;
        let mut url = reqwest::Url::parse(url)
            .map_err(|e| FetchError::Permanent(format!("bad media URL: {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            media_url_allowed(&url, hosts).map_err(FetchError::Permanent)?;
            let r = tokio::time::timeout_at(
                deadline,
                self.http
                    .get(url.clone())
                    .bearer_auth(token.expose())
                    .timeout(timeout)
                    .send(),
            )
            .await
            .map_err(|_| retry("media download timed out", false))?
            .map_err(|e| retry(format!("media download: {}", call_error(e)), true))?;
            if !r.status().is_redirection() {
                return Ok(r);
            }
            url = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| FetchError::Permanent("redirect without a Location".into()))?;
        }
        Err(FetchError::Permanent("too many redirects".into()))
    }
}

#[derive(Debug, Clone)]
pub struct Downloaded {
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub sent: u64,
}

/// Hands the body to `sink` chunk by chunk, within the deadline and with no gap
/// longer than `idle`; stops past `limit` or when the sink stops reading (it reports
/// why). A failure is sent to the sink too, so the store drops what it has.
async fn stream_body(
    mut resp: reqwest::Response,
    sink: &mpsc::Sender<io::Result<Bytes>>,
    limit: u64,
    deadline: tokio::time::Instant,
    idle: Duration,
) -> Result<u64, FetchError> {
    let mut sent = 0u64;
    loop {
        let next = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + idle),
            resp.chunk(),
        );
        let chunk = match next.await {
            Err(_) => {
                let _ = sink
                    .send(Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
                    .await;
                return Err(retry("media download timed out mid-body", false));
            }
            Ok(Err(e)) => {
                let msg = format!("media download broke after {sent} bytes: {e}");
                let _ = sink.send(Err(io::Error::other(msg.clone()))).await;
                return Err(retry(msg, true));
            }
            Ok(Ok(None)) => return Ok(sent),
            Ok(Ok(Some(c))) => c,
        };
        if chunk.is_empty() {
            continue;
        }
        sent += chunk.len() as u64;
        if sink.send(Ok(chunk)).await.is_err() || sent > limit {
            return Ok(sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let hosts = vec![
            "lookaside.fbsbx.com".to_string(),
            ".example.org".to_string(),
            "127.0.0.1:9".to_string(),
            "not a host".to_string(),
        ];
        let ok = |u: &str| media_url_allowed(&reqwest::Url::parse(u).unwrap(), &hosts).is_ok();
        assert!(ok("https://lookaside.fbsbx.com/x?mid=1"));
        assert!(!ok("http://lookaside.fbsbx.com/x"));
        assert!(!ok("https://lookaside.fbsbx.com.evil.com/x"));
        assert!(!ok("https://evil.com/lookaside.fbsbx.com"));
        assert!(ok("https://a.example.org/"));
        assert!(ok("https://example.org/"));
        assert!(!ok("https://badexample.org/"));
        assert!(ok("http://127.0.0.1:9/x"));
        assert!(!ok("http://127.0.0.1:10/x"), "another port");
        assert!(!ok("http://127.0.0.1/x"), "the default port is not :9");
        assert!(
            !ok("https://lookaside.fbsbx.com:8443/x"),
            "not the default port"
        );
        assert!(
            ok("https://lookaside.fbsbx.com:443/x"),
            "the default port, spelled out"
        );
        assert!(!ok("http://127.0.0.2:9/x"));
        assert!(!ok("ftp://lookaside.fbsbx.com/x"));
        let err = media_url_allowed(
            &reqwest::Url::parse("http://127.0.0.1:10/").unwrap(),
            &hosts,
        );
        assert!(err.unwrap_err().contains("'127.0.0.1:10'"));
    }

    #[test]
    fn media_ids_are_digits() {
        for ok in ["1", "1003383421387256", &"9".repeat(MAX_MEDIA_ID_LEN)] {
            assert!(valid_media_id(ok), "{ok}");
        }
        for bad in [
            "",
            "../../me",
            "9/../../../oauth/access_token",
            "123?fields=access_token&x=",
            "12 3",
            "１２３",
            "-1",
            "1%2F2",
            &"9".repeat(MAX_MEDIA_ID_LEN + 1),
        ] {
            assert!(!valid_media_id(bad), "{bad}");
        }
        assert!(invalid_media_id("a\nb\u{1b}").contains("a\\nb"));
    }

    #[test]
    fn lookup_body_shapes() {
        let body = serde_json::from_str::<Value>(
            r#"{"url":"https:\/\/lookaside.fbsbx.com\/x","mime_type":"image\/png","sha256":"d96aec5ea00346cbbcfa770fe11ba8c584c8ad093cadf72a755ff8a325560871","file_size":"73","id":"1"}"#,
        )
        .unwrap();
        let info = MediaInfo::from_body(&body).unwrap();
        assert_eq!(info.file_size, Some(73));
        assert_eq!(info.mime_type.as_deref(), Some("image/png"));
        assert_eq!(info.sha256.unwrap()[0], 0xd9);
    }
}
