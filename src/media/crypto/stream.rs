//! Streaming encryption and decryption, one 64 KiB chunk at a time (the STREAM
//! construction described in the parent module).

use std::io::{self, Read, Write};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::RngCore;

use super::{
    encode_header, file_cipher, nonce, read_full, read_header, CryptoError, CHUNK_SIZE, CT_CHUNK,
    SALT_LEN, TAG_LEN,
};
use crate::media::keys::Keyring;

/// Streaming encryption: buffers at most one chunk; a chunk is sealed as non-final
/// only once more data arrives, so [`Encryptor::finish`] can mark the last one.
/// Dropping it without `finish` leaves a file that decrypts as `Truncated`.
pub struct Encryptor<W: Write> {
    out: W,
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    buf: Vec<u8>,
    counter: u64,
    key_id: String,
    plaintext_len: u64,
    failed: bool,
}

impl<W: Write> Encryptor<W> {
    /// Starts a file under the keyring's primary key (fresh random salt) and writes
    /// the header to `out`.
    pub fn new(keyring: &Keyring, out: W) -> Result<Self, CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self::start(keyring, out, salt)
    }

    /// [`Encryptor::new`] with a given salt, for reproducible test files only: a
    /// salt must never repeat under one key.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn with_salt(keyring: &Keyring, out: W, salt: [u8; SALT_LEN]) -> Result<Self, CryptoError> {
        Self::start(keyring, out, salt)
    }

    fn start(keyring: &Keyring, mut out: W, salt: [u8; SALT_LEN]) -> Result<Self, CryptoError> {
        let master = keyring.primary();
        let aad = encode_header(master.id(), &salt);
        out.write_all(&aad)?;
        Ok(Encryptor {
            out,
            cipher: file_cipher(master, &salt),
            aad,
            buf: Vec::with_capacity(CT_CHUNK),
            counter: 0,
            key_id: master.id().to_string(),
            plaintext_len: 0,
            failed: false,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Plaintext bytes written so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(self.counter, last);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), &self.aad, &mut self.buf)
            .map_err(|_| io::Error::other("AES-GCM refused a chunk"))?;
        self.buf.extend_from_slice(&tag);
        let result = self.out.write_all(&self.buf);
        self.buf.clear();
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("too many chunks"))?;
        result
    }

    /// Seals the final chunk and flushes; returns the writer.
    pub fn finish(mut self) -> Result<W, CryptoError> {
        if self.failed {
            return Err(io::Error::other("encryptor failed earlier").into());
        }
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("encryptor failed earlier"));
        }
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.len() == CHUNK_SIZE {
                if let Err(e) = self.seal(false) {
                    self.failed = true;
                    return Err(e);
                }
            }
            let take = rest.len().min(CHUNK_SIZE - self.buf.len());
            let (now, later) = rest.split_at(take);
            self.buf.extend_from_slice(now);
            rest = later;
        }
        self.plaintext_len += data.len() as u64;
        Ok(data.len())
    }

    /// Flushes the underlying writer (buffered plaintext stays until the chunk fills
    /// or `finish`).
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Streaming decryption, one authenticated chunk at a time (one chunk of memory).
/// Each chunk released is authentic, but only reaching the end proves the file is
/// whole: to serve, use [`open_verified`].
pub struct Decryptor<R: Read> {
    inp: R,
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    key_id: String,
    counter: u64,
    buf: Vec<u8>,
    peeked: Option<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> Decryptor<R> {
    /// Reads and checks the header and finds its key.
    pub fn new(keyring: &Keyring, mut inp: R) -> Result<Self, CryptoError> {
        let header = read_header(&mut inp)?;
        let master = keyring
            .get(&header.key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(header.key_id.clone()))?;
        Ok(Decryptor {
            cipher: file_cipher(master, &header.salt),
            inp,
            aad: header.bytes,
            key_id: header.key_id,
            counter: 0,
            buf: Vec::with_capacity(CT_CHUNK),
            peeked: None,
            pos: 0,
            done: false,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn open(&self, buf: &mut [u8], last: bool) -> bool {
        let Some(split) = buf.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let (ct, tag) = buf.split_at_mut(split);
        let tag = Tag::clone_from_slice(tag);
        let n = nonce(self.counter, last);
        // aes-gcm checks the tag before decrypting: on failure `ct` is untouched, so a
        // second try with the other flag sees the ciphertext (tests pin this).
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), &self.aad, ct, &tag)
            .is_ok()
    }

    /// The next authenticated plaintext chunk, or `None` after the final one.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, CryptoError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(CT_CHUNK, 0);
        let mut n = 0;
        if let Some(b) = self.peeked.take() {
            buf[0] = b;
            n = 1;
        }
        n += read_full(&mut self.inp, &mut buf[n..])?;
        let mut more = false;
        if n == CT_CHUNK {
            let mut one = [0u8; 1];
            if read_full(&mut self.inp, &mut one)? == 1 {
                self.peeked = Some(one[0]);
                more = true;
            }
        }
        buf.truncate(n);
        let chunk = self.counter;
        let result = if n < TAG_LEN {
            // Nothing (or less than a tag) after a non-final chunk: cut short.
            Err(CryptoError::Truncated)
        } else if more {
            if self.open(&mut buf, false) {
                Ok(())
            } else if self.open(&mut buf, true) {
                Err(CryptoError::TrailingData)
            } else {
                Err(CryptoError::Corrupt { chunk })
            }
        } else if n == TAG_LEN && chunk > 0 {
            // An empty final chunk after data is never written.
            Err(CryptoError::Corrupt { chunk })
        } else if self.open(&mut buf, true) {
            self.done = true;
            Ok(())
        } else if n == CT_CHUNK && self.open(&mut buf, false) {
            // A valid non-final chunk at the end: the file was cut on a boundary.
            Err(CryptoError::Truncated)
        } else {
            Err(CryptoError::Corrupt { chunk })
        };
        if let Err(e) = result {
            self.done = true;
            self.buf = buf;
            self.buf.clear();
            return Err(e);
        }
        self.counter += 1;
        buf.truncate(n - TAG_LEN);
        self.buf = buf;
        self.pos = self.buf.len();
        Ok(Some(&self.buf))
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.next_chunk() {
                Ok(Some(_)) => self.pos = 0,
                Ok(None) => return Ok(0),
                Err(CryptoError::Io(e)) => return Err(e),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
        let avail = self.buf.get(self.pos..).unwrap_or_default();
        let k = avail.len().min(out.len());
        out[..k].copy_from_slice(&avail[..k]);
        self.pos += k;
        Ok(k)
    }
}
