//! `GET /api/media/{media-id}` (metadata) and `GET /api/media/{media-id}/content`
//! (the decrypted bytes, only once the whole file has been authenticated, as an
//! attachment that browsers will not sniff or run).

use std::io::Read;

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use std::sync::Arc;

use super::record::{MediaEntry, MediaState};
use super::MediaFiles;
use crate::httpkit::error::ApiError;
use crate::httpkit::json_or_error;
use crate::httpkit::params::{encode_segment, segment};
use crate::store::{self, Store};
use crate::util::time::JsonTime;

/// What the API shows of a media job.
#[derive(Debug, Serialize)]
pub struct MediaView {
    pub media_id: String,
    pub message_id: String,
    pub media_type: String,
    pub mime_type: Option<String>,
    pub state: MediaState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub declared_size: Option<u64>,
    pub size: Option<u64>,
    /// SHA-256 of the stored (or, when quarantined, the received) bytes, hex.
    pub sha256: Option<String>,
    pub key_id: Option<String>,
    /// The malware scan's verdict, when scanning is on.
    pub scan: Option<String>,
    pub file: Option<String>,
    pub filename: Option<String>,
    pub created_at: JsonTime,
    pub stored_at: Option<JsonTime>,
    pub expires_at: Option<JsonTime>,
    pub deleted_at: Option<JsonTime>,
    /// `/api/media/{id}/content` while the file is stored.
    pub content: Option<String>,
}

impl MediaView {
    pub fn of(e: MediaEntry) -> MediaView {
        let content = (e.state == MediaState::Stored)
            .then(|| format!("/api/media/{}/content", encode_segment(&e.media_id)));
        MediaView {
            content,
            created_at: JsonTime::micros(e.created_at_micros),
            stored_at: e.stored_at_micros.map(JsonTime::micros),
            expires_at: e.expires_at_micros.map(JsonTime::micros),
            deleted_at: e.deleted_at_micros.map(JsonTime::micros),
            media_id: e.media_id,
            message_id: e.message_id,
            media_type: e.media_type,
            mime_type: e.mime_type,
            state: e.state,
            attempts: e.attempts,
            last_error: e.last_error,
            declared_size: e.declared_size,
            size: e.size,
            sha256: e.sha256,
            key_id: e.key_id,
            scan: e.scan,
            file: e.file,
            filename: e.filename,
        }
    }
}

/// The routes under `/api` (the caller checks the token): they read media jobs
/// from the store and stored files through `files`.
pub fn routes(store: Store, files: Arc<MediaFiles>) -> BoxedFilter<(warp::reply::Response,)> {
    let st = store.clone();
    let meta = warp::get()
        .and(warp::path("media"))
        .and(segment())
        .and(warp::path::end())
        .then(move |id: String| {
            let st = st.clone();
            async move {
                let r = store::blocking(move || st.media_entry(&id)).await;
                json_or_error(match r {
                    Ok(Some(e)) => Ok(MediaView::of(e)),
                    Ok(None) => Err(ApiError::NotFound),
                    Err(e) => Err(e.into()),
                })
            }
        });
    let content = warp::get()
        .and(warp::path("media"))
        .and(segment())
        .and(warp::path("content"))
        .and(warp::path::end())
        .then(move |id: String| {
            let (store, files) = (store.clone(), files.clone());
            async move {
                match content(&store, files, id).await {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                }
            }
        });
    meta.or(content).unify().boxed()
}

/// A MIME type safe to put in a header (`type/subtype`, token characters).
fn safe_mime(m: Option<&str>) -> &str {
    let ok = |m: &&str| {
        let mut parts = m.split('/');
        let token = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if token(a) && token(b))
    };
    m.filter(ok).unwrap_or("application/octet-stream")
}

/// The decrypted bytes of a stored media file, streamed once it is authenticated.
pub async fn content(
    store: &Store,
    files: Arc<MediaFiles>,
    id: String,
) -> Result<warp::reply::Response, ApiError> {
    let st = store.clone();
    let key = id.clone();
    let entry = store::blocking(move || st.media_entry(&key))
        .await?
        .ok_or(ApiError::NotFound)?;
    let Some(file) = entry.servable_file().map(str::to_string) else {
        return Err(ApiError::Conflict(format!(
            "media {} is {}, not stored",
            entry.media_id,
            entry.state.as_str()
        )));
    };
    // The whole file is authenticated first (a damaged file serves nothing); then a
    // second pass decrypts and streams it, 64 KiB at a time, re-authenticating each
    // chunk: memory stays at a few chunks whatever the file's size.
    let reader = tokio::task::spawn_blocking(move || files.open_verified(&file))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| {
            tracing::error!(media_id = %id, error = %e, "stored media file failed verification; nothing served");
            ApiError::Internal(format!("media file failed verification: {e}"))
        })?;
    let size = reader.info.size;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        loop {
            let mut chunk = vec![0u8; 64 * 1024];
            match reader.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.blocking_send(Ok(chunk.into())).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let name: String = entry
        .filename
        .as_deref()
        .unwrap_or(&entry.media_id)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(100)
        .collect();
    let name = if name.is_empty() {
        "media".into()
    } else {
        name
    };
    let mut resp = warp::reply::stream(ChunkStream(rx)).into_response();
    let h = resp.headers_mut();
    let v = |s: &str| http::HeaderValue::from_str(s).expect("safe header value");
    h.insert("content-type", v(safe_mime(entry.mime_type.as_deref())));
    h.insert(
        "content-disposition",
        v(&format!("attachment; filename=\"{name}\"")),
    );
    h.insert("x-content-type-options", v("nosniff"));
    h.insert("content-security-policy", v("sandbox"));
    h.insert("cache-control", v("private, no-store"));
    h.insert("content-length", v(&size.to_string()));
    Ok(resp)
}

/// The plaintext chunks of a verified file, as a response body.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl futures_util::Stream for ChunkStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
