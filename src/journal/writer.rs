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
    /// Close the active segments (after what is queued before it), so that all
    /// written so far is in sealed segments; answered once the new ones exist.
    Seal(oneshot::Sender<()>),
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
    streams: [StreamState; 2],
    next_seq: u64,
    heads: watch::Sender<Heads>,
    fsync_latency: &crate::util::histogram::Histogram,
    batch_bytes: usize,
) {
    let mut w = Batcher {
        streams,
        bufs: [Vec::new(), Vec::new()],
        waiters: Vec::new(),
        next_seq,
    };
    while let Some(first) = rx.blocking_recv() {
        let pending = gather(&mut rx, first, batch_bytes);
        w.rotate_full_segments();
        let started = Instant::now();
        let first_seq = w.next_seq;
        let (batch_last, shutdown, seals) = w.encode(pending);
        let synced = Instant::now();
        let result = commit(&mut w.streams, &mut w.bufs);
        // One large record must not keep its buffer for good.
        for buf in &mut w.bufs {
            buf.shrink_to(batch_bytes);
        }
        fsync_latency.observe_micros(synced.elapsed().as_micros() as u64);
        match result {
            Ok(()) => w.committed(batch_last, &heads, started),
            Err(e) => w.refused(&e, first_seq),
        }
        if !seals.is_empty() {
            w.seal();
            for done in seals {
                let _ = done.send(());
            }
        }
        if let Some(done) = shutdown {
            refuse_the_rest(&mut rx);
            let _ = done.send(());
            return;
        }
    }
}

type Encoded = (
    [Option<u64>; 2],
    Option<oneshot::Sender<()>>,
    Vec<oneshot::Sender<()>>,
);

type Waiter = (oneshot::Sender<Result<Appended, JournalError>>, Appended);

/// The writer thread's state between batches.
struct Batcher {
    streams: [StreamState; 2],
    bufs: [Vec<u8>; 2],
    waiters: Vec<Waiter>,
    next_seq: u64,
}

/// The first message and whatever else is already queued, up to one batch.
fn gather(rx: &mut mpsc::Receiver<Msg>, first: Msg, batch_bytes: usize) -> Vec<Msg> {
    let mut pending = vec![first];
    let mut bytes = 0usize;
    while pending.len() < MAX_BATCH_RECORDS && bytes < batch_bytes {
        let Ok(msg) = rx.try_recv() else { break };
        if let Msg::Append { payload, .. } = &msg {
            bytes += payload.len();
        }
        pending.push(msg);
    }
    pending
}

/// After a shutdown: every append still queued is answered "closed".
fn refuse_the_rest(rx: &mut mpsc::Receiver<Msg>) {
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Append { reply, .. } = msg {
            let _ = reply.send(Err(JournalError::Closed));
        }
    }
}

impl Batcher {
    fn rotate_full_segments(&mut self) {
        for (i, s) in self.streams.iter_mut().enumerate() {
            if s.len >= s.segment_size {
                if let Err(e) = s.rotate(self.next_seq) {
                    tracing::error!(stream = i, error = %e, "could not start a new journal segment");
                }
            }
        }
    }

    /// Starts a new segment in every stream whose active one holds records.
    fn seal(&mut self) {
        for (i, s) in self.streams.iter_mut().enumerate() {
            if s.len > segment::HEADER_LEN {
                if let Err(e) = s.rotate(self.next_seq) {
                    tracing::error!(stream = i, error = %e, "could not start a new journal segment");
                }
            }
        }
    }

    /// Encodes the batch into the streams' buffers; the last sequence number per
    /// stream, the shutdown request if one came, and the seal requests.
    fn encode(&mut self, pending: Vec<Msg>) -> Encoded {
        let mut shutdown = None;
        let mut seals = Vec::new();
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
                    let seq = self.next_seq;
                    let offset = self.streams[idx].len + self.bufs[idx].len() as u64;
                    let len = record::encode(&mut self.bufs[idx], seq, kind, unix_micros, &payload);
                    let pos = RecordPos {
                        segment: self.streams[idx].id,
                        offset,
                        len: len as u32,
                    };
                    batch_last[idx] = Some(seq);
                    self.waiters.push((reply, Appended { seq, stream, pos }));
                    self.next_seq += 1;
                }
                Msg::Shutdown(done) => shutdown = Some(done),
                Msg::Seal(done) => seals.push(done),
            }
        }
        (batch_last, shutdown, seals)
    }

    /// The batch is on disk: publish the heads, then answer its waiters.
    fn committed(
        &mut self,
        batch_last: [Option<u64>; 2],
        heads: &watch::Sender<Heads>,
        started: Instant,
    ) {
        for (s, last) in self.streams.iter_mut().zip(batch_last) {
            if let Some(seq) = last {
                s.last_seq = seq;
            }
            s.enforce_budget();
        }
        let (streams, next_seq) = (&self.streams, self.next_seq);
        heads.send_modify(|h| {
            h.last_seq = next_seq - 1;
            h.main = streams[0].last_seq;
            h.quarantine = streams[1].last_seq;
            h.quarantine_oldest_segment = streams[1].oldest();
            h.commits += 1;
            h.last_commit_micros = started.elapsed().as_micros() as u64;
        });
        for (reply, appended) in self.waiters.drain(..) {
            let _ = reply.send(Ok(appended));
        }
    }

    /// The batch failed (cut back by `commit`): its sequence numbers are reused.
    fn refused(&mut self, e: &std::io::Error, first_seq: u64) {
        tracing::error!(error = %e, "journal write failed; the batch was refused");
        self.next_seq = first_seq;
        for (reply, _) in self.waiters.drain(..) {
            let _ = reply.send(Err(JournalError::Write(e.to_string())));
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
