//! Segment files: `<dir>/<first seq, 20 digits>.seg`, an 8-byte header
//! (`WGJL` + u32 version) and then framed records.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{self, Decoded, Record, FRAME_HEADER};
use crate::util::fs::{make_private, private_options};

pub const MAGIC: &[u8; 4] = b"WGJL";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 8;

pub fn path_for(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Segment ids (first sequence numbers) in `dir`, oldest first, with their sizes.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(id) = stem.parse::<u64>() {
            out.push((id, entry.metadata()?.len()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a new, empty segment (mode 0600) and makes it durable (file and
/// directory entry).
pub fn create(dir: &Path, id: u64) -> io::Result<File> {
    let path = path_for(dir, id);
    let mut file = private_options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    make_private(&file)?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    file.write_all(&header)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

/// What the start-up scan of the newest segment found.
#[derive(Debug)]
pub struct Recovered {
    pub file: File,
    /// Length of the valid prefix; the file has been truncated to it.
    pub len: u64,
    pub last_seq: Option<u64>,
    /// Bytes cut off the end (a torn write).
    pub truncated: u64,
}

/// Opens the newest segment for appending: checks its header, scans every record, and
/// truncates a torn tail so that the next append starts at a record boundary.
pub fn recover(dir: &Path, id: u64) -> io::Result<Recovered> {
    let path = path_for(dir, id);
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    // Appended to from now on: private even if an older version made it 0644.
    make_private(&file)?;
    let size = file.metadata()?.len();
    if size < HEADER_LEN {
        // Crashed while creating it: nothing in it was ever acknowledged.
        drop(file);
        let file = create(dir, id)?;
        return Ok(Recovered {
            file,
            len: HEADER_LEN,
            last_seq: None,
            truncated: size,
        });
    }
    check_header(&file, &path)?;
    let mut reader = SegmentReader::new(file.try_clone()?, id, HEADER_LEN);
    let mut last_seq = None;
    while let ReadOutcome::Record(r) = reader.next_record()? {
        last_seq = Some(r.seq);
    }
    let len = reader.offset();
    let truncated = size - len;
    if truncated > 0 {
        file.set_len(len)?;
        file.sync_all()?;
    }
    Ok(Recovered {
        file,
        len,
        last_seq,
        truncated,
    })
}

fn check_header(file: &File, path: &Path) -> io::Result<()> {
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut header, 0)?;
    if &header[0..4] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a wagate journal segment", path.display()),
        ));
    }
    let version = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: unsupported segment version {version}", path.display()),
        ));
    }
    Ok(())
}

/// Reads one record at `offset` of segment `id` (for the raw-body API).
pub fn read_at(dir: &Path, id: u64, offset: u64) -> io::Result<Record> {
    let file = File::open(path_for(dir, id))?;
    let mut header = [0u8; FRAME_HEADER];
    file.read_exact_at(&mut header, offset)?;
    let len = record::framed_len(&header)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad record length"))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    match record::decode(&buf) {
        Decoded::Record(r, _) => Ok(r),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record failed its checksum",
        )),
    }
}

pub enum ReadOutcome {
    Record(Record),
    /// No complete record at the current offset (yet).
    End,
    Corrupt,
}

/// Sequential reader over one segment with positional reads, so that an incomplete
/// record at the end can be retried later without losing its place.
pub struct SegmentReader {
    file: File,
    id: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Index in `buf` of the next record.
    pos: usize,
}

const READ_CHUNK: usize = 1 << 20;

impl SegmentReader {
    pub fn new(file: File, id: u64, offset: u64) -> Self {
        SegmentReader {
            file,
            id,
            buf: Vec::new(),
            buf_start: offset,
            pos: 0,
        }
    }

    pub fn open(dir: &Path, id: u64, offset: u64) -> io::Result<Self> {
        Ok(Self::new(File::open(path_for(dir, id))?, id, offset))
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Offset of the next record to be read.
    pub fn offset(&self) -> u64 {
        self.buf_start + self.pos as u64
    }

    pub fn next_record(&mut self) -> io::Result<ReadOutcome> {
        loop {
            match record::decode(&self.buf[self.pos..]) {
                Decoded::Record(r, len) => {
                    self.pos += len;
                    return Ok(ReadOutcome::Record(r));
                }
                Decoded::Corrupt => return Ok(ReadOutcome::Corrupt),
                Decoded::Incomplete => {
                    if !self.fill()? {
                        return Ok(ReadOutcome::End);
                    }
                }
            }
        }
    }

    /// Reads more bytes after what is buffered; false when the file has no more.
    fn fill(&mut self) -> io::Result<bool> {
        self.buf.drain(..self.pos);
        self.buf_start += self.pos as u64;
        self.pos = 0;
        let have = self.buf.len();
        let want = READ_CHUNK.max(have * 2);
        self.buf.resize(have + want, 0);
        let n = self
            .file
            .read_at(&mut self.buf[have..], self.buf_start + have as u64)?;
        self.buf.truncate(have + n);
        Ok(n > 0)
    }
}
