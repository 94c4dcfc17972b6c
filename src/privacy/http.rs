//! `GET /api/contacts/{id}/export`: the archive as a streamed response. The zip is
//! written by a blocking task into a bounded channel that the response body drains,
//! so memory stays at a few chunks whatever the archive's size.

use std::io::{self, Write};

use bytes::Bytes;
use tokio::sync::mpsc;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::export::write_export;
use super::Exporter;
use crate::httpkit::error::ApiError;
use crate::httpkit::params::segment;
use crate::store;

const CHUNK: usize = 64 * 1024;

/// The routes under `/api` (the caller checks the token).
pub fn routes(x: Exporter) -> BoxedFilter<(warp::reply::Response,)> {
    warp::get()
        .and(warp::path("contacts"))
        .and(segment())
        .and(warp::path("export"))
        .and(warp::path::end())
        .then(move |id: String| {
            let x = x.clone();
            async move {
                match export_response(x, id).await {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                }
            }
        })
        .boxed()
}

/// The archive of contact `id` (contact id, wa_id or user_id) as an attachment;
/// `404` before anything is streamed when there is no such contact.
pub async fn export_response(x: Exporter, id: String) -> Result<warp::reply::Response, ApiError> {
    let st = x.store.clone();
    let contact_id = store::blocking(move || st.contact_id(&id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let name = format!("wagate-export-{}.zip", super::names::safe(&contact_id));
    tokio::task::spawn_blocking(move || {
        let mut pipe = Pipe {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = write_export(&x, &contact_id, &mut pipe).and_then(|c| {
            pipe.flush()?;
            Ok(c)
        });
        match result {
            // Counts only: the contact's id is personal data.
            Ok(c) => tracing::info!(
                messages = c.inbound + c.outbound,
                deliveries = c.deliveries,
                media = c.media,
                "contact data exported"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "contact export failed; the archive is cut short");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    let mut resp = warp::reply::stream(Chunks(rx)).into_response();
    let h = resp.headers_mut();
    let v = |s: &str| http::HeaderValue::from_str(s).expect("safe header value");
    h.insert("content-type", v("application/zip"));
    h.insert(
        "content-disposition",
        v(&format!("attachment; filename=\"{name}\"")),
    );
    h.insert("x-content-type-options", v("nosniff"));
    h.insert("cache-control", v("private, no-store"));
    Ok(resp)
}

/// A `Write` that hands 64 KiB chunks to the response body, waiting while the
/// channel is full (the client reads slowly) and failing once it is gone.
struct Pipe {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

struct Chunks(mpsc::Receiver<io::Result<Bytes>>);

impl futures_util::Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
