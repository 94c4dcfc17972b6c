//! The group-commit writer: one thread owns the active segments. Handlers queue
//! records; the thread takes everything waiting, writes it, calls `fdatasync` once
//! per touched stream and only then answers every waiter.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use super::{record, segment, Appended, Heads, JournalError, RecordPos, Stream};

pub(super) enum Msg {
    Append {
        stream: Stream,
        kind: u8,
        unix_micros: i64,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<Appended, JournalError>>,
    },
    Shutdown(oneshot::Sender<()>),
}

pub(super) struct StreamState {
    pub dir: PathBuf,
    pub file: File,
    pub id: u64,
    pub len: u64,
    pub segment_size: u64,
    /// Every segment, oldest first, with its size (the active one last).
    pub segments: VecDeque<(u64, u64)>,
    /// Oldest segments are deleted once the total passes this (quarantine only).
    pub max_total: Option<u64>,
    pub last_seq: u64,
}

impl StreamState {
    fn rotate(&mut self, id: u64) -> std::io::Result<()> {
        self.file = segment::create(&self.dir, id)?;
        self.id = id;
        self.len = segment::HEADER_LEN;
        self.segments.push_back((id, self.len));
        Ok(())
    }

    fn enforce_budget(&mut self) {
        let Some(max) = self.max_total else { return };
        let mut total: u64 = self.segments.iter().map(|s| s.1).sum();
        while total > max && self.segments.len() > 1 {
            let (id, size) = self.segments.pop_front().expect("len > 1");
            match std::fs::remove_file(segment::path_for(&self.dir, id)) {
                Ok(()) => tracing::info!(
                    segment = id,
                    bytes = size,
                    "quarantine full: dropped oldest segment"
                ),
                Err(e) => {
                    tracing::warn!(segment = id, error = %e, "could not drop quarantine segment")
                }
            }
            total -= size;
        }
    }

    fn oldest(&self) -> u64 {
        self.segments.front().map(|s| s.0).unwrap_or(self.id)
    }
}

/// Upper bound on the records of one group commit, so that one huge burst cannot
/// delay everyone (its bytes are bounded by `batch_bytes`).
const MAX_BATCH_RECORDS: usize = 4096;

pub(super) fn run(
    mut rx: mpsc::Receiver<Msg>,
    mut streams: [StreamState; 2],
    mut next_seq: u64,
    heads: watch::Sender<Heads>,
    fsync_latency: &crate::util::histogram::Histogram,
    batch_bytes: usize,
) {
    let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut waiters: Vec<(oneshot::Sender<Result<Appended, JournalError>>, Appended)> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut shutdown = None;
        let mut pending = vec![first];
        let mut bytes = 0usize;
        while pending.len() < MAX_BATCH_RECORDS && bytes < batch_bytes {
            match rx.try_recv() {
                Ok(msg) => {
                    if let Msg::Append { payload, .. } = &msg {
                        bytes += payload.len();
                    }
                    pending.push(msg);
                }
                Err(_) => break,
            }
        }

        for (i, s) in streams.iter_mut().enumerate() {
            if s.len >= s.segment_size {
                if let Err(e) = s.rotate(next_seq) {
                    tracing::error!(stream = i, error = %e, "could not start a new journal segment");
                }
            }
        }

        let started = Instant::now();
        let first_seq = next_seq;
        let mut batch_last: [Option<u64>; 2] = [None, None];
        for msg in pending {
            match msg {
                Msg::Append {
                    stream,
                    kind,
                    unix_micros,
                    payload,
                    reply,
                } => {
                    let idx = stream as usize;
                    let s = &streams[idx];
                    let offset = s.len + bufs[idx].len() as u64;
                    let len = record::encode(&mut bufs[idx], next_seq, kind, unix_micros, &payload);
                    let pos = RecordPos {
                        segment: s.id,
                        offset,
                        len: len as u32,
                    };
                    batch_last[idx] = Some(next_seq);
                    waiters.push((
                        reply,
                        Appended {
                            seq: next_seq,
                            stream,
                            pos,
                        },
                    ));
                    next_seq += 1;
                }
                Msg::Shutdown(done) => shutdown = Some(done),
            }
        }

        let synced = Instant::now();
        let result = commit(&mut streams, &mut bufs);
        // One large record must not keep its buffer for good.
        for buf in &mut bufs {
            buf.shrink_to(batch_bytes);
        }
        fsync_latency.observe_micros(synced.elapsed().as_micros() as u64);
        match result {
            Ok(()) => {
                for (s, last) in streams.iter_mut().zip(batch_last) {
                    if let Some(seq) = last {
                        s.last_seq = seq;
                    }
                    s.enforce_budget();
                }
                heads.send_modify(|h| {
                    h.last_seq = next_seq - 1;
                    h.main = streams[0].last_seq;
                    h.quarantine = streams[1].last_seq;
                    h.quarantine_oldest_segment = streams[1].oldest();
                    h.commits += 1;
                    h.last_commit_micros = started.elapsed().as_micros() as u64;
                });
                for (reply, appended) in waiters.drain(..) {
                    let _ = reply.send(Ok(appended));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "journal write failed; the batch was refused");
                next_seq = first_seq;
                for (reply, _) in waiters.drain(..) {
                    let _ = reply.send(Err(JournalError::Write(e.to_string())));
                }
            }
        }
        if let Some(done) = shutdown {
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                if let Msg::Append { reply, .. } = msg {
                    let _ = reply.send(Err(JournalError::Closed));
                }
            }
            let _ = done.send(());
            return;
        }
    }
}

/// Writes each stream's buffer and syncs it. On failure every stream is cut back to
/// where it was, so a failed batch leaves no partial record behind.
fn commit(streams: &mut [StreamState; 2], bufs: &mut [Vec<u8>; 2]) -> std::io::Result<()> {
    let mut result = Ok(());
    for (s, buf) in streams.iter_mut().zip(bufs.iter()) {
        if buf.is_empty() {
            continue;
        }
        // Positional writes: the append point is `len`, whatever the file cursor says.
        if let Err(e) = s
            .file
            .write_all_at(buf, s.len)
            .and_then(|_| s.file.sync_data())
        {
            result = Err(e);
            break;
        }
    }
    if let Err(e) = result {
        for s in streams.iter_mut() {
            let _ = s.file.set_len(s.len);
            let _ = s.file.sync_data();
        }
        for buf in bufs.iter_mut() {
            buf.clear();
        }
        return Err(e);
    }
    for (s, buf) in streams.iter_mut().zip(bufs.iter_mut()) {
        if buf.is_empty() {
            continue;
        }
        s.len += buf.len() as u64;
        if let Some(last) = s.segments.back_mut() {
            last.1 = s.len;
        }
        buf.clear();
    }
    Ok(())
}
