//! The journal of record: append-only segment files, group commit, torn-tail
//! recovery. Only this module writes segment files.
//!
//! Two streams share one sequence space and one writer thread: `main` holds accepted
//! deliveries (kept until retention), `quarantine` holds rejected ones in a bounded
//! budget (oldest segments dropped first) so junk can never fill the disk.

pub mod delivery;
pub(crate) mod record;
mod rewrite;
mod segment;
mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

pub use record::{Kind, Record};
pub use rewrite::Rewritten;
use segment::{ReadOutcome, SegmentReader};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Stream {
    Main = 0,
    Quarantine = 1,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::Main, Stream::Quarantine];
    fn dir_name(self) -> &'static str {
        match self {
            Stream::Main => "journal",
            Stream::Quarantine => "quarantine",
        }
    }
}

/// Where a record lives: segment id (its first sequence number) and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPos {
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub seq: u64,
    pub stream: Stream,
    pub pos: RecordPos,
}

/// What has been made durable so far. Published after every group commit.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    /// Last sequence number written and synced, over both streams.
    pub last_seq: u64,
    /// Last synced sequence number in each stream (0: none yet).
    pub main: u64,
    pub quarantine: u64,
    /// Quarantine records in segments older than this have been dropped.
    pub quarantine_oldest_segment: u64,
    pub commits: u64,
    pub last_commit_micros: u64,
}

impl Heads {
    pub fn of(&self, stream: Stream) -> u64 {
        match stream {
            Stream::Main => self.main,
            Stream::Quarantine => self.quarantine,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot open the journal in {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("journal write failed: {0}")]
    Write(String),
    #[error("the journal is shut down")]
    Closed,
    #[error("journal record is damaged: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct JournalOptions {
    pub dir: PathBuf,
    pub segment_size: u64,
    pub quarantine_max: u64,
    /// Records waiting for the writer at most; further appends wait for a place.
    pub queue: usize,
    /// Bytes one group commit gathers at most (a single record may be larger).
    pub batch_bytes: usize,
}

pub struct Journal {
    fsync_latency: Arc<crate::util::histogram::Histogram>,
    tx: mpsc::Sender<writer::Msg>,
    heads: watch::Receiver<Heads>,
    root: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Opens one stream's directory (created, or made, mode 0700): its newest segment
/// recovered for appending, or a first segment.
fn open_stream(
    dir: &Path,
    stream: Stream,
    opts: &JournalOptions,
) -> std::io::Result<writer::StreamState> {
    crate::util::fs::private_dir(dir)?;
    rewrite::remove_unfinished(dir);
    let dir = dir.to_path_buf();
    let (segment_size, max_total) = match stream {
        Stream::Main => (opts.segment_size, None),
        Stream::Quarantine => (
            (opts.quarantine_max / 8).clamp(64 << 10, opts.segment_size),
            Some(opts.quarantine_max),
        ),
    };
    let mut segments: VecDeque<(u64, u64)> = segment::list(&dir)?.into();
    let Some(&(id, _)) = segments.back() else {
        return Ok(writer::StreamState {
            file: segment::create(&dir, 1)?,
            dir,
            id: 1,
            len: segment::HEADER_LEN,
            segment_size,
            segments: VecDeque::from([(1, segment::HEADER_LEN)]),
            max_total,
            last_seq: 0,
        });
    };
    let rec = segment::recover(&dir, id)?;
    if rec.truncated > 0 {
        tracing::warn!(stream = ?stream, segment = id, bytes = rec.truncated,
            "cut a torn record off the journal tail (never acknowledged)");
    }
    segments.back_mut().expect("non-empty").1 = rec.len;
    // The last record of an older segment bounds the sequence too, when the newest
    // segment is still empty (its id bounds what came before).
    let tail_seq = rec.last_seq.unwrap_or(id.saturating_sub(1));
    Ok(writer::StreamState {
        dir,
        file: rec.file,
        id,
        len: rec.len,
        segment_size,
        segments,
        max_total,
        last_seq: tail_seq,
    })
}

impl Journal {
    /// Opens (or creates) the journal under `opts.dir`, truncating torn tails, and starts
    /// the writer thread.
    pub fn open(opts: &JournalOptions) -> Result<Journal, JournalError> {
        let mut states = Vec::new();
        let mut last_seq = 0u64;
        for stream in Stream::ALL {
            let dir = opts.dir.join(stream.dir_name());
            let state = open_stream(&dir, stream, opts).map_err(|source| JournalError::Open {
                path: dir.display().to_string(),
                source,
            })?;
            last_seq = last_seq.max(state.last_seq);
            states.push(state);
        }
        let [main, quarantine]: [writer::StreamState; 2] =
            states.try_into().map_err(|_| JournalError::Closed)?;
        let initial = Heads {
            last_seq,
            main: main.last_seq,
            quarantine: quarantine.last_seq,
            quarantine_oldest_segment: quarantine.segments.front().map(|s| s.0).unwrap_or(1),
            commits: 0,
            last_commit_micros: 0,
        };
        let (heads_tx, heads_rx) = watch::channel(initial);
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let fsync_latency = Arc::new(crate::util::histogram::Histogram::latency());
        let histogram = fsync_latency.clone();
        let batch_bytes = opts.batch_bytes;
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                writer::run(
                    rx,
                    [main, quarantine],
                    last_seq + 1,
                    heads_tx,
                    &histogram,
                    batch_bytes,
                )
            })?;
        Ok(Journal {
            fsync_latency,
            tx,
            heads: heads_rx,
            root: opts.dir.clone(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Appends a record and returns once it is on disk (fdatasync'ed).
    pub async fn append(
        &self,
        stream: Stream,
        kind: Kind,
        unix_micros: i64,
        payload: Vec<u8>,
    ) -> Result<Appended, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(writer::Msg::Append {
                stream,
                kind: kind as u8,
                unix_micros,
                payload,
                reply,
            })
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Duration of each group commit (write + fdatasync).
    pub fn fsync_latency(&self) -> &crate::util::histogram::Histogram {
        &self.fsync_latency
    }

    pub fn heads(&self) -> watch::Receiver<Heads> {
        self.heads.clone()
    }

    pub fn dir(&self, stream: Stream) -> PathBuf {
        self.root.join(stream.dir_name())
    }

    /// Every segment of `stream`, oldest first; the last one is being written to
    /// (blocking I/O).
    pub fn segments(&self, stream: Stream) -> Result<Vec<SegmentInfo>, JournalError> {
        let dir = self.dir(stream);
        let all = segment::list(&dir)?;
        let mut out = Vec::with_capacity(all.len());
        for (id, bytes) in all {
            let modified = std::fs::metadata(segment::path_for(&dir, id))?.modified()?;
            out.push(SegmentInfo {
                id,
                bytes,
                modified,
            });
        }
        Ok(out)
    }

    /// Deletes a closed segment (retention). The newest segment is never deleted.
    pub fn delete_segment(&self, stream: Stream, id: u64) -> Result<(), JournalError> {
        let dir = self.dir(stream);
        let newest = segment::list(&dir)?.last().map(|s| s.0);
        if newest == Some(id) {
            return Err(JournalError::Corrupt(format!(
                "segment {id} is still being written"
            )));
        }
        std::fs::remove_file(segment::path_for(&dir, id))?;
        segment::sync_dir(&dir)?;
        Ok(())
    }

    /// Reads the record at `pos` (blocking I/O).
    pub fn read_at(&self, stream: Stream, pos: RecordPos) -> Result<Record, JournalError> {
        Ok(segment::read_at(
            &self.dir(stream),
            pos.segment,
            pos.offset,
        )?)
    }

    /// A sequential reader of `stream`, starting after `cursor` (or at the beginning).
    pub fn reader(&self, stream: Stream, cursor: Option<Cursor>) -> StreamReader {
        StreamReader {
            dir: self.dir(stream),
            stream,
            cursor,
            current: None,
        }
    }

    /// Writes what is queued, syncs, and stops the writer thread. Later appends fail.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(writer::Msg::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// The sequence number its first record has (or would have).
    pub id: u64,
    pub bytes: u64,
    /// When it was last written: no record in it is newer.
    pub modified: std::time::SystemTime,
}

/// A reader's place in a stream: after the record `last_seq`, which ended at
/// `offset` in `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
    pub last_seq: u64,
}

/// Reads a stream in order, up to what the writer has synced. Blocking I/O.
pub struct StreamReader {
    dir: PathBuf,
    stream: Stream,
    cursor: Option<Cursor>,
    current: Option<SegmentReader>,
}

impl StreamReader {
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }

    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// The next synced record and where it is, or `None` when the reader has caught up.
    pub fn next(&mut self, heads: &Heads) -> Result<Option<(Record, RecordPos)>, JournalError> {
        let head = heads.of(self.stream);
        if self.cursor.map(|c| c.last_seq).unwrap_or(0) >= head {
            return Ok(None);
        }
        loop {
            if self.current.is_none() {
                self.current = Some(self.open_current()?);
            }
            let reader = self.current.as_mut().expect("just set");
            let offset = reader.offset();
            match reader.next_record()? {
                ReadOutcome::Record(r) => {
                    let pos = RecordPos {
                        segment: reader.id(),
                        offset,
                        len: (reader.offset() - offset) as u32,
                    };
                    self.cursor = Some(Cursor {
                        segment: reader.id(),
                        offset: reader.offset(),
                        last_seq: r.seq,
                    });
                    return Ok(Some((r, pos)));
                }
                ReadOutcome::Corrupt => {
                    return Err(JournalError::Corrupt(format!(
                        "{}: segment {} offset {offset}",
                        self.dir.display(),
                        reader.id()
                    )))
                }
                ReadOutcome::End => {
                    // The head is further on, so it is in a newer segment.
                    let current = reader.id();
                    let next = segment::list(&self.dir)?
                        .into_iter()
                        .map(|s| s.0)
                        .find(|&id| id > current);
                    match next {
                        Some(id) => {
                            self.current =
                                Some(SegmentReader::open(&self.dir, id, segment::HEADER_LEN)?);
                        }
                        None => return Ok(None),
                    }
                }
            }
        }
    }

    fn open_current(&self) -> Result<SegmentReader, JournalError> {
        let segments = segment::list(&self.dir)?;
        if let Some(c) = self.cursor {
            if segments.iter().any(|s| s.0 == c.segment) {
                return Ok(SegmentReader::open(&self.dir, c.segment, c.offset)?);
            }
            // Its segment was dropped (quarantine budget): continue at the next one.
            if let Some(&(id, _)) = segments.iter().find(|s| s.0 > c.segment) {
                return Ok(SegmentReader::open(&self.dir, id, segment::HEADER_LEN)?);
            }
        }
        let first = segments
            .first()
            .map(|s| s.0)
            .ok_or_else(|| JournalError::Corrupt(format!("{}: no segments", self.dir.display())))?;
        Ok(SegmentReader::open(&self.dir, first, segment::HEADER_LEN)?)
    }
}

pub fn exists(dir: &Path) -> bool {
    dir.join(Stream::Main.dir_name()).exists()
}
