//! Media files in a bucket (`WAGATE_MEDIA_STORE`): S3 (or any S3-compatible server),
//! Google Cloud Storage or Azure Blob Storage, through the `object_store` crate.
//!
//! This is the one module besides `upstream/` that makes outbound HTTP: the
//! `object_store` client speaks each cloud's API (request signing, multipart
//! uploads, retries) and is kept here, behind [`super::files::MediaFiles`], which
//! stays the only code that names media files. What goes up is the encrypted file
//! (`crypto/`'s format, encrypted here first): the bucket only ever sees ciphertext.
//!
//! The calls are blocking (the file store runs on blocking threads): each drives
//! the async client on the runtime it was opened in (or a small runtime of its
//! own when opened outside one, as `wagate check` does).
//!
//! - An upload is streamed: up to [`PART_SIZE`] is buffered, a smaller file goes up
//!   in one `PUT`, a larger one as a multipart upload with at most
//!   [`PARTS_IN_FLIGHT`] parts in flight, so memory stays flat whatever the size.
//!   An object exists under its name only once the upload completed; a failed
//!   upload is aborted (a crash leaves an incomplete multipart upload, invisible
//!   to reads and lists: a bucket lifecycle rule clears those).
//! - A read is a streamed `GET`.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, RetryConfig};
use tokio::io::AsyncWriteExt;
use tokio::runtime::{Handle, Runtime};

use crate::config::{MediaStoreConfig, StoreKind};

/// Bytes buffered before a multipart upload starts, and the size of each part.
pub const PART_SIZE: usize = 5 << 20;
/// Parts uploading at once (memory per upload: about `PART_SIZE * (PARTS_IN_FLIGHT + 1)`).
pub const PARTS_IN_FLIGHT: usize = 2;

/// A bucket and prefix.
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    rt: Handle,
    /// The runtime of our own, when opened outside one (kept alive here).
    _own: Option<Arc<Runtime>>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("url", &self.url).finish()
    }
}

/// An object store error, said as "what failed: why".
#[derive(Debug, thiserror::Error)]
#[error("media store {url}: {what} failed: {source}")]
pub struct ObjectError {
    pub url: String,
    pub what: &'static str,
    pub source: io::Error,
}

fn to_io(e: object_store::Error) -> io::Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The cloud's variables (`prefix*`) from the environment, then `options`, applied
/// by `apply` (unknown names are skipped: `object_store` would refuse them).
fn settings(prefix: &str, options: &[(String, crate::config::Secret)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![
        // Defaults, before the environment: a connection attempt gives up after
        // 10 s; a request (a part, or a streamed read to a slow client) after an hour.
        ("connect_timeout".into(), "10s".into()),
        ("timeout".into(), "3600s".into()),
    ];
    for (k, v) in std::env::vars() {
        if k.starts_with(prefix) {
            out.push((k.to_ascii_lowercase(), v));
        }
    }
    out.extend(
        options
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string())),
    );
    out
}

fn build(cfg: &MediaStoreConfig) -> object_store::Result<Arc<dyn ObjectStore>> {
    // A request that fails for a reason worth retrying is retried a few times
    // within 30 s; the media job's own backoff does the rest.
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    Ok(match cfg.kind {
        StoreKind::S3 => {
            let mut b = object_store::aws::AmazonS3Builder::new();
            for (k, v) in settings("AWS_", &cfg.options) {
                if let Ok(key) = k.parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.with_bucket_name(&cfg.bucket).with_retry(retry).build()?)
        }
        StoreKind::Gcs => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new();
            for (k, v) in settings("GOOGLE_", &cfg.options) {
                if let Ok(key) = k.parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.with_bucket_name(&cfg.bucket).with_retry(retry).build()?)
        }
        StoreKind::Azure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::new();
            for (k, v) in settings("AZURE_", &cfg.options) {
                if let Ok(key) = k.parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(
                b.with_container_name(&cfg.bucket)
                    .with_retry(retry)
                    .build()?,
            )
        }
    })
}

impl Objects {
    /// Builds the client (no request is made: see [`Objects::probe`]).
    pub fn open(cfg: &MediaStoreConfig) -> Result<Objects, ObjectError> {
        let url = cfg.url();
        let store = build(cfg).map_err(|e| ObjectError {
            url: url.clone(),
            what: "configuration",
            source: to_io(e),
        })?;
        Objects::with_store(store, url, &cfg.prefix)
    }

    /// Objects kept in `store` under `prefix` (`url` names them in messages).
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        url: String,
        prefix: &str,
    ) -> Result<Objects, ObjectError> {
        let (rt, own) = match Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("wagate-media-store")
                    .enable_all()
                    .build()
                    .map_err(|source| ObjectError {
                        url: url.clone(),
                        what: "starting its runtime",
                        source,
                    })?;
                (rt.handle().clone(), Some(Arc::new(rt)))
            }
        };
        Ok(Objects {
            store,
            prefix: ObjectPath::from(prefix),
            url,
            rt,
            _own: own,
        })
    }

    /// `s3://bucket/prefix` (for messages).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.child(name)
    }

    fn err(&self, what: &'static str) -> impl Fn(io::Error) -> ObjectError + '_ {
        move |source| ObjectError {
            url: self.url.clone(),
            what,
            source,
        }
    }

    /// A streamed upload to `name`; nothing is visible under `name` before
    /// [`Upload::finish`] returns.
    pub fn upload(&self, name: &str) -> Upload {
        let writer = BufWriter::with_capacity(self.store.clone(), self.path(name), PART_SIZE)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        Upload {
            writer: Some(writer),
            rt: self.rt.clone(),
        }
    }

    /// A streamed read of `name` (`NotFound` when there is none).
    pub fn read(&self, name: &str) -> io::Result<ObjectReader> {
        let path = self.path(name);
        let store = self.store.clone();
        let stream = self
            .rt
            .block_on(async move { store.get(&path).await })
            .map_err(to_io)?
            .into_stream();
        Ok(ObjectReader {
            stream,
            current: Bytes::new(),
            rt: self.rt.clone(),
        })
    }

    /// Deletes `name`. `Ok(false)` only when the store says it was not there (S3
    /// and most stores answer a DELETE the same either way).
    pub fn delete(&self, name: &str) -> Result<bool, ObjectError> {
        let (store, path) = (self.store.clone(), self.path(name));
        match self.rt.block_on(async move { store.delete(&path).await }) {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("delete")(to_io(e))),
        }
    }

    /// Every object directly under the prefix: its name and when it was written.
    pub fn list(&self) -> Result<Vec<(String, SystemTime)>, ObjectError> {
        let (store, prefix) = (self.store.clone(), self.prefix.clone());
        let listed = self.rt.block_on(async move {
            let mut out = Vec::new();
            let mut stream = store.list(Some(&prefix));
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                let Some(rel) = meta.location.prefix_match(&prefix) else {
                    continue;
                };
                let parts: Vec<_> = rel.collect();
                if let [name] = parts.as_slice() {
                    out.push((
                        name.as_ref().to_string(),
                        SystemTime::from(meta.last_modified),
                    ));
                }
            }
            Ok::<_, object_store::Error>(out)
        });
        listed.map_err(|e| self.err("list")(to_io(e)))
    }

    /// Writes, reads back and deletes a probe object (for `wagate check`): which
    /// step failed, if one did.
    pub fn probe(&self) -> Result<(), ObjectError> {
        let name = format!(".wagate-check-{}", std::process::id());
        let body = b"wagate check probe".to_vec();
        let (store, path) = (self.store.clone(), self.path(&name));
        self.rt
            .block_on(async { store.put(&path, body.clone().into()).await })
            .map_err(|e| self.err("writing a probe object")(to_io(e)))?;
        let got = self
            .rt
            .block_on(async { store.get(&path).await?.bytes().await })
            .map_err(|e| self.err("reading the probe object back")(to_io(e)))?;
        if got.as_ref() != body.as_slice() {
            let e = io::Error::other("the probe object read back differs");
            return Err(self.err("reading the probe object back")(e));
        }
        self.rt
            .block_on(async { store.delete(&path).await })
            .map_err(|e| self.err("deleting the probe object")(to_io(e)))
    }
}

/// A streamed upload (blocking [`Write`]). Dropped without [`Upload::finish`]: the
/// multipart upload, if one started, is aborted.
pub struct Upload {
    writer: Option<BufWriter>,
    rt: Handle,
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("upload already ended"))?;
        self.rt.block_on(w.write_all(data))?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Upload {
    /// Completes the upload: the object now exists.
    pub fn finish(mut self) -> io::Result<()> {
        let mut w = self.writer.take().expect("finished once");
        self.rt.block_on(w.shutdown())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = self.rt.block_on(w.abort()) {
                tracing::warn!(error = %e, "cannot abort a media upload (a bucket lifecycle rule clears it)");
            }
        }
    }
}

/// A streamed read of one object (blocking [`Read`]).
pub struct ObjectReader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
    rt: Handle,
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(to_io(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
