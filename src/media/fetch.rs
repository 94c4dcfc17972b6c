//! One download attempt: a URL (the webhook's, or a fresh one from the lookup), the
//! download streamed through a bounded channel into [`MediaFiles::store`] on a
//! blocking thread (never the whole file in memory), then the malware scan. What an
//! error means for the job is `decide.rs`'s.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

use std::sync::atomic::Ordering::Relaxed;

use super::decide::{self, Outcome, Stored};
use super::files::{FileError, MediaFiles, StoredFile};
use super::record::{type_cap, MediaEntry, MediaState};
use super::scan::{ScanError, Scanner, Verdict};
use super::MediaStats;
use crate::config::MediaConfig;
use crate::upstream::media::{Downloaded, FetchError, MediaInfo};
use crate::upstream::Upstream;
use crate::util::clock::Clock;

/// Chunks in flight between the download and the store (each at most a few tens of KiB).
const CHANNEL_CHUNKS: usize = 8;

/// Reads chunks from the download. The end is an explicit empty chunk: a channel
/// closed without it (the attempt was abandoned) or an early end (fewer bytes than
/// the expected length) is an error, so a cut download is never stored.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    expected_len: Option<u64>,
    got: u64,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) if !b.is_empty() => self.current = b,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "download abandoned",
                    ))
                }
                Some(Ok(_)) => {
                    self.ended = true;
                    if let Some(n) = self.expected_len.filter(|n| self.got < *n) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("download ended after {} of {n} bytes", self.got),
                        ));
                    }
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        self.got += n as u64;
        Ok(n)
    }
}

pub struct Fetcher {
    pub upstream: Upstream,
    pub files: Arc<MediaFiles>,
    pub config: MediaConfig,
    /// Longest wait for the next chunk.
    pub idle: Duration,
    /// Downloads wait while the media directory's filesystem has less free space.
    pub min_free: u64,
    pub stats: Arc<MediaStats>,
    /// Media id expiry, TTLs and retry backoff count on it.
    pub clock: Clock,
}

impl Fetcher {
    /// One attempt. `url`: the webhook's URL on the first attempt, else `None` (look
    /// up a fresh one).
    pub async fn attempt(&self, entry: &MediaEntry, url: Option<String>) -> Outcome {
        let of_fetch_error = |e| {
            let now = self.clock.now_micros();
            decide::of_fetch_error(e, now, entry.id_expires_at_micros)
        };
        let info = match url {
            Some(url) => MediaInfo {
                url,
                mime_type: entry.mime_type.clone(),
                sha256: None,
                file_size: None,
            },
            None => match self.upstream.media_lookup(&entry.media_id).await {
                Ok(info) => info,
                Err(e) => return of_fetch_error(e),
            },
        };
        let (dl, stored) = self.download(entry, &info).await;
        let dl = match dl {
            Ok(d) => d,
            Err(e) => return of_fetch_error(e),
        };
        match stored {
            Ok(file) => {
                self.stats.bytes_stored.fetch_add(file.size, Relaxed);
                let mime_type = entry
                    .mime_type
                    .clone()
                    .or(info.mime_type)
                    .or(dl.content_type);
                self.scan(file, mime_type).await
            }
            Err(e) => decide::of_store_error(e, &entry.media_type),
        }
    }

    /// Streams `info.url` into the file store, within the entry's limits: what the
    /// download and the store each came to.
    async fn download(
        &self,
        entry: &MediaEntry,
        info: &MediaInfo,
    ) -> (
        Result<Downloaded, FetchError>,
        Result<StoredFile, FileError>,
    ) {
        let cap = type_cap(&entry.media_type);
        let declared = [entry.declared_size, info.file_size];
        let limit = declared.iter().flatten().fold(cap, |l, d| l.min(*d));
        let expected_len = entry.declared_size.or(info.file_size).filter(|n| *n <= cap);
        let expected_sha = entry.declared_digest().or(info.sha256);
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let reader = ChannelReader {
            rx,
            current: Bytes::new(),
            expected_len,
            got: 0,
            ended: false,
        };
        let files = self.files.clone();
        let store = tokio::task::spawn_blocking(move || files.store(reader, expected_sha, limit));
        let (hosts, timeout) = (&self.config.hosts, self.config.timeout);
        let dl = self
            .upstream
            .media_download(&info.url, hosts, limit, timeout, self.idle, &tx)
            .await;
        let end = match &dl {
            Ok(_) => Ok(Bytes::new()),
            // Whatever arrived must not be stored.
            Err(_) => Err(io::Error::other("download failed")),
        };
        let _ = tx.send(end).await;
        drop(tx);
        let stored = store
            .await
            .unwrap_or_else(|e| Err(FileError::Source(io::Error::other(e.to_string()))));
        (dl, stored)
    }
}

impl Fetcher {
    /// Scans a stored file (when `WAGATE_CLAMD` is set). Clean: stored. Infected: the
    /// file is removed at once and the job quarantined. The scan could not run
    /// (clamd down, a timeout, too large for it): kept unscanned, never served, and
    /// scanned again later (fail closed).
    async fn scan(&self, file: StoredFile, mime_type: Option<String>) -> Outcome {
        if self.config.clamd.is_none() {
            return Outcome::Stored(Stored {
                file,
                mime_type,
                scan: None,
                unscanned: None,
            });
        }
        match self.scan_file(&file.name).await {
            Ok(Verdict::Clean) => Outcome::Stored(Stored {
                file,
                mime_type,
                scan: Some(CLEAN.into()),
                unscanned: None,
            }),
            Ok(Verdict::Infected(name)) => {
                self.remove(file.name).await;
                Outcome::Final {
                    state: MediaState::Quarantined,
                    reason: infected(&name),
                    sha256: Some(hex::encode(file.sha256)),
                }
            }
            Err(e) => Outcome::Stored(Stored {
                file,
                mime_type,
                scan: None,
                unscanned: Some(format!("waiting for a malware scan: {e}")),
            }),
        }
    }

    /// Streams the verified plaintext of a stored file to clamd.
    pub async fn scan_file(&self, name: &str) -> Result<Verdict, ScanError> {
        let Some(addr) = self.config.clamd.clone() else {
            return Err(ScanError::NotConfigured);
        };
        let scanner = Scanner {
            addr,
            timeout: self.config.clamd_timeout,
        };
        let (files, name) = (self.files.clone(), name.to_string());
        let verdict = tokio::task::spawn_blocking(move || {
            let mut reader = files
                .open_verified(&name)
                .map_err(|e| ScanError::Source(io::Error::other(e.to_string())))?;
            scanner.scan(&mut reader)
        })
        .await
        .unwrap_or_else(|e| Err(ScanError::Source(io::Error::other(e.to_string()))));
        let slot = match &verdict {
            Ok(Verdict::Clean) => 0,
            Ok(Verdict::Infected(_)) => 1,
            Err(_) => 2,
        };
        self.stats.scans[slot].fetch_add(1, Relaxed);
        verdict
    }

    /// Removes a file that must never be served (its entry no longer names it, so
    /// if this fails the orphan sweep removes it).
    pub async fn remove(&self, name: String) {
        let files = self.files.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || files.delete(&name)).await {
            tracing::error!(error = %e, "cannot remove an infected media file; the sweep retries");
        }
    }
}

/// The verdict kept for a file clamd found clean.
pub const CLEAN: &str = "clean (clamd)";

pub fn infected(signature: &str) -> String {
    format!("malware found by clamd: {signature}")
}
