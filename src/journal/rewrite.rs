//! Rewriting sealed segments (erasure): a segment holding records to change is
//! copied record by record into a temporary file, each changed record re-encoded
//! with its sequence number, kind and time, the copy fsynced and renamed over the
//! original, and the directory synced. The active segment is never rewritten: the
//! writer keeps appending to it meanwhile (see `Journal::seal`).

use std::fs;
use std::io::Write;
use std::path::Path;

use super::record::{self, Record};
use super::segment::{self, ReadOutcome, SegmentReader};
use super::{Journal, JournalError, Stream};
use crate::util::fs::{make_private, private_options};

/// What a rewrite did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub segments: u64,
    pub records: u64,
}

/// The new payload of a record, or `None` to keep it as it is.
pub type Change<'a> = dyn FnMut(&Record) -> Option<Vec<u8>> + 'a;

impl Journal {
    /// Closes the active segments: everything written before this call is then in
    /// sealed segments. Blocking; call it off the async threads.
    pub fn seal_blocking(&self) -> Result<(), JournalError> {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.tx
            .blocking_send(super::writer::Msg::Seal(done))
            .map_err(|_| JournalError::Closed)?;
        rx.blocking_recv().map_err(|_| JournalError::Closed)
    }

    /// Rewrites every sealed segment of `stream` where `change` replaces at least
    /// one record (blocking I/O).
    pub fn rewrite_sealed(
        &self,
        stream: Stream,
        change: &mut Change<'_>,
    ) -> Result<Rewritten, JournalError> {
        let dir = self.dir(stream);
        let mut all = segment::list(&dir)?;
        all.pop(); // the active segment
        let mut done = Rewritten::default();
        for (id, _) in all {
            let n = rewrite_one(&dir, id, change)?;
            if n > 0 {
                done.segments += 1;
                done.records += n;
            }
        }
        Ok(done)
    }
}

/// Rewrites segment `id` when a record changes; how many did.
fn rewrite_one(dir: &Path, id: u64, change: &mut Change<'_>) -> Result<u64, JournalError> {
    let mut reader = SegmentReader::open(dir, id, segment::HEADER_LEN)?;
    let mut records = Vec::new();
    let mut changed = 0u64;
    loop {
        match reader.next_record()? {
            ReadOutcome::Record(mut r) => {
                if let Some(payload) = change(&r) {
                    r.payload = payload;
                    changed += 1;
                }
                records.push(r);
            }
            ReadOutcome::End => break,
            ReadOutcome::Corrupt => {
                return Err(JournalError::Corrupt(format!(
                    "{}: segment {id} offset {}",
                    dir.display(),
                    reader.offset()
                )))
            }
        }
    }
    if changed == 0 {
        return Ok(0);
    }
    let tmp = dir.join(format!("{id:020}.seg.rewrite"));
    let mut file = private_options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)?;
    make_private(&file)?;
    let mut buf = Vec::with_capacity(1 << 20);
    buf.extend_from_slice(segment::MAGIC);
    buf.extend_from_slice(&segment::VERSION.to_le_bytes());
    for r in &records {
        record::encode(&mut buf, r.seq, r.kind, r.unix_micros, &r.payload);
        if buf.len() >= 1 << 20 {
            file.write_all(&buf)?;
            buf.clear();
        }
    }
    file.write_all(&buf)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, segment::path_for(dir, id))?;
    segment::sync_dir(dir)?;
    Ok(changed)
}

/// Removes a rewrite a crash left unfinished (the original is still in place).
pub(super) fn remove_unfinished(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(".seg.rewrite") {
            let _ = fs::remove_file(e.path());
        }
    }
}
