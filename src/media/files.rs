//! The encrypted media file store: `<data>/media/` (the default), or a bucket
//! (`WAGATE_MEDIA_STORE`, through [`super::objects`]). Both are behind one API,
//! [`MediaFiles`]; what differs is where the ciphertext goes.
//!
//! Names are server-generated (32 random hex digits). A file is written to
//! `<name>.tmp` (mode 0600), fsynced, renamed to `<name>`, and the directory
//! fsynced: nothing partly written is ever visible under a final name. Any error
//! (source, size cap, digest, disk full) removes the temporary file. Plaintext
//! is only released by [`MediaFiles::open_verified`], after the whole file has been
//! authenticated. The file format itself belongs to [`super::crypto`].
//!
//! In a bucket, the object `<prefix>/<name>` exists only once its (streamed,
//! possibly multipart) upload completed; a failed upload is aborted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::crypto::{self, CryptoError, DecryptedInfo, Encryptor, VerifiedReader, CHUNK_SIZE};
use super::keys::KeyStore;
use super::objects::{ObjectError, Objects};

/// A file now stored under its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub name: String,
    /// Plaintext length.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("sha256 mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("reading the media source failed: {0}")]
    Source(io::Error),
    #[error("not a media file name: '{0}'")]
    BadName(String),
    #[error("no media file named {0}")]
    NotFound(String),
    #[error(transparent)]
    Crypto(CryptoError),
    #[error("media store I/O at {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Store(#[from] ObjectError),
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a sweep did (names, for the log and for tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub temp_removed: Vec<String>,
    pub orphans_removed: Vec<String>,
    /// Files the caller knows about, left alone.
    pub kept: usize,
    /// Temporary or orphan files younger than `min_age`, left for a later sweep.
    pub skipped_recent: usize,
    /// Entries that are not ours (other names, directories), left alone.
    pub ignored: Vec<String>,
    /// Removals that failed (logged).
    pub errors: usize,
}

/// Is `name` one this store generates?
pub fn valid_name(name: &str) -> bool {
    name.len() == 32
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn new_name() -> String {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the temporary file unless disarmed (errors, early returns, panics).
struct TempGuard<'a>(Option<&'a Path>);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a media temp file");
                }
            }
        }
    }
}

/// The file under a temporary name; in unit tests it can fail like a full disk.
struct DiskWriter {
    file: File,
    #[cfg(test)]
    budget: Option<u64>,
}

impl Write for DiskWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(budget) = self.budget.as_mut() {
            if (data.len() as u64) > *budget {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            *budget -= data.len() as u64;
        }
        self.file.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Where the encrypted files are.
#[derive(Debug)]
enum Backend {
    /// In `dir`.
    Local,
    /// In a bucket.
    Objects(Objects),
}

/// The media store and the keys its files are encrypted under.
#[derive(Debug)]
pub struct MediaFiles {
    /// The media directory (local), or the data directory (bucket): where free
    /// space is measured.
    dir: PathBuf,
    keys: Arc<KeyStore>,
    backend: Backend,
    #[cfg(test)]
    disk_budget: Option<u64>,
}

impl MediaFiles {
    /// Opens (creating, or making, mode 0700) the directory `dir`.
    pub fn open(dir: &Path, keys: Arc<KeyStore>) -> Result<MediaFiles, FileError> {
        crate::util::fs::private_dir(dir).map_err(io_at(dir))?;
        Ok(MediaFiles {
            dir: dir.to_path_buf(),
            keys,
            backend: Backend::Local,
            #[cfg(test)]
            disk_budget: None,
        })
    }

    /// Files in a bucket; `data_dir` is only where free space is measured.
    pub fn in_bucket(data_dir: &Path, objects: Objects, keys: Arc<KeyStore>) -> MediaFiles {
        MediaFiles {
            dir: data_dir.to_path_buf(),
            keys,
            backend: Backend::Objects(objects),
            #[cfg(test)]
            disk_budget: None,
        }
    }

    /// The local directory the downloads need free space in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bucket, when files are kept in one.
    pub fn objects(&self) -> Option<&Objects> {
        match &self.backend {
            Backend::Objects(o) => Some(o),
            Backend::Local => None,
        }
    }

    /// Where files are kept, for people: the directory or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Local => self.dir.display().to_string(),
            Backend::Objects(o) => o.url().to_string(),
        }
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, FileError> {
        if !valid_name(name) {
            return Err(FileError::BadName(name.chars().take(64).collect()));
        }
        Ok(self.dir.join(name))
    }

    /// Streams `source` (plaintext) into a new encrypted file under the primary key,
    /// computing its size and SHA-256 on the way. More than `max_len` bytes: `TooLarge`
    /// (reading stops at `max_len + 1`); a digest other than `expected_sha256`:
    /// `DigestMismatch`. On any error no file remains. Blocking: run it in
    /// `spawn_blocking`.
    pub fn store(
        &self,
        source: impl Read,
        expected_sha256: Option<[u8; 32]>,
        max_len: u64,
    ) -> Result<StoredFile, FileError> {
        let name = new_name();
        let (size, sha256, key_id) = match &self.backend {
            Backend::Local => self.store_local(&name, source, expected_sha256, max_len)?,
            Backend::Objects(objects) => {
                let upload = objects.upload(&name);
                let failed = |e| FileError::from(objects_err(objects, "upload", e));
                let (upload, done) =
                    self.encrypt(source, upload, expected_sha256, max_len, &failed)?;
                // Dropped on an error above: the upload is aborted.
                upload.finish().map_err(failed)?;
                done
            }
        };
        Ok(StoredFile {
            name,
            size,
            sha256,
            key_id,
        })
    }

    /// `store` into `<dir>/<name>.tmp`, fsynced, renamed, the directory fsynced.
    fn store_local(
        &self,
        name: &str,
        source: impl Read,
        expected_sha256: Option<[u8; 32]>,
        max_len: u64,
    ) -> Result<Encrypted, FileError> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_at(&tmp))?;
        let mut guard = TempGuard(Some(&tmp));
        let disk = DiskWriter {
            file,
            #[cfg(test)]
            budget: self.disk_budget,
        };
        let (disk, done) = self.encrypt(source, disk, expected_sha256, max_len, &io_at(&tmp))?;
        disk.file.sync_all().map_err(io_at(&tmp))?;
        drop(disk);
        let path = self.dir.join(name);
        std::fs::rename(&tmp, &path).map_err(io_at(&path))?;
        guard.0 = None;
        if let Err(e) = sync_dir(&self.dir) {
            // Not known to be durable: do not hand out a name that may vanish.
            let _ = std::fs::remove_file(&path);
            return Err(io_at(&self.dir)(e));
        }
        Ok(done)
    }

    /// Reads `source`, encrypts it into `out` and checks its length and digest:
    /// `out` back, with the plaintext's size, SHA-256 and the key id.
    fn encrypt<W: Write>(
        &self,
        mut source: impl Read,
        out: W,
        expected_sha256: Option<[u8; 32]>,
        max_len: u64,
        out_err: &dyn Fn(io::Error) -> FileError,
    ) -> Result<(W, Encrypted), FileError> {
        let crypto_err = |e| match e {
            CryptoError::Io(e) => out_err(e),
            e => FileError::Crypto(e),
        };
        let mut enc = Encryptor::new(&self.keys.current(), out).map_err(crypto_err)?;
        let key_id = enc.key_id().to_string();
        let (mut size, mut hash) = (0u64, Sha256::new());
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            let want = (max_len - size).saturating_add(1).min(buf.len() as u64) as usize;
            let n = match source.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FileError::Source(e)),
            };
            size += n as u64;
            if size > max_len {
                return Err(FileError::TooLarge { limit: max_len });
            }
            hash.update(&buf[..n]);
            enc.write_all(&buf[..n]).map_err(out_err)?;
        }
        let sha256: [u8; 32] = hash.finalize().into();
        if let Some(expected) = expected_sha256 {
            if expected != sha256 {
                return Err(FileError::DigestMismatch {
                    expected: hex::encode(expected),
                    actual: hex::encode(sha256),
                });
            }
        }
        let out = enc.finish().map_err(crypto_err)?;
        Ok((out, (size, sha256, key_id)))
    }

    /// Authenticates the whole file, then returns a reader of its plaintext (and its
    /// size and digest). A bad file returns an error and no plaintext.
    pub fn open_verified(&self, name: &str) -> Result<VerifiedReader, FileError> {
        let keyring = self.keys.current();
        let (opened, at) = match &self.backend {
            Backend::Local => {
                let path = self.path_of(name)?;
                (crypto::open_verified(&path, &keyring), Some(path))
            }
            Backend::Objects(objects) => {
                if !valid_name(name) {
                    return Err(FileError::BadName(name.chars().take(64).collect()));
                }
                let open = || Ok(Box::new(objects.read(name)?) as crypto::Source);
                (crypto::open_verified_with(&keyring, open), None)
            }
        };
        opened.map_err(|e| match (e, &at, &self.backend) {
            (CryptoError::Io(e), _, _) if e.kind() == io::ErrorKind::NotFound => {
                FileError::NotFound(name.to_string())
            }
            (CryptoError::Io(e), Some(path), _) => io_at(path)(e),
            (CryptoError::Io(e), None, Backend::Objects(o)) => objects_err(o, "read", e).into(),
            (e, _, _) => FileError::Crypto(e),
        })
    }

    /// Authenticates the whole file without releasing plaintext.
    pub fn verify(&self, name: &str) -> Result<DecryptedInfo, FileError> {
        Ok(self.open_verified(name)?.info)
    }

    /// Removes a stored file; `Ok(false)` if it was not there.
    pub fn delete(&self, name: &str) -> Result<bool, FileError> {
        let path = self.path_of(name)?;
        if let Backend::Objects(objects) = &self.backend {
            return Ok(objects.delete(name)?);
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_at(&path)(e)),
        }
        sync_dir(&self.dir).map_err(io_at(&self.dir))?;
        Ok(true)
    }
}

/// Plaintext size, SHA-256 and key id of a file just encrypted.
type Encrypted = (u64, [u8; 32], String);

fn objects_err(objects: &Objects, what: &'static str, source: io::Error) -> ObjectError {
    ObjectError {
        url: objects.url().to_string(),
        what,
        source,
    }
}

#[path = "files_sweep.rs"]
mod sweep;

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
