//! The encrypted media file format. This is the only code that knows it.
//!
//! ```text
//! header  "WAGM" | version u8 (1) | key id length u8 | key id (ASCII) | chunk size u32 BE | salt [32]
//! chunks  AES-256-GCM(plaintext chunk) || tag [16], ...
//! ```
//!
//! - Per-file key: HKDF-SHA256(ikm = master key, salt = header salt,
//!   info = `"wagate media v1"` || key id).
//! - STREAM construction (as in age): nonce = 11-byte big-endian chunk counter ||
//!   last-chunk flag (`0x01` for the final chunk, else `0x00`).
//! - Every non-final chunk holds exactly 64 KiB of plaintext; the final chunk holds
//!   1..=64 KiB, or 0 bytes only when the whole file is empty.
//! - The whole header is the associated data of every chunk: a changed header, salt
//!   or key id fails the first chunk.
//!
//! Decryption authenticates chunk by chunk with bounded buffers (one chunk); callers
//! that serve plaintext use [`open_verified`] / [`decrypt_verified`], which
//! authenticate the whole file before releasing a byte.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::keys::{valid_key_id, Keyring, MasterKey, MAX_KEY_ID_LEN};

mod stream;

pub use stream::{Decryptor, Encryptor};

pub const MAGIC: [u8; 4] = *b"WAGM";
pub const VERSION: u8 = 1;
/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
pub const TAG_LEN: usize = 16;
pub const SALT_LEN: usize = 32;
const CT_CHUNK: usize = CHUNK_SIZE + TAG_LEN;
const HKDF_INFO: &[u8] = b"wagate media v1";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("not a wagate media file (bad magic)")]
    BadMagic,
    #[error("unsupported media file version {0}")]
    UnsupportedVersion(u8),
    #[error("malformed media file header: {0}")]
    BadHeader(&'static str),
    #[error("media file is under unknown key id '{0}'")]
    UnknownKeyId(String),
    #[error("media file is truncated")]
    Truncated,
    #[error("media file failed authentication at chunk {chunk}")]
    Corrupt { chunk: u64 },
    #[error("media file has data after its final chunk")]
    TrailingData,
    #[error("media file I/O: {0}")]
    Io(#[from] io::Error),
}

/// What a full authenticated pass over a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedInfo {
    /// Plaintext length.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    pub key_id: String,
}

/// Encrypted length of a `plaintext_len`-byte file under a key id of `key_id_len` bytes.
pub fn encrypted_len(key_id_len: usize, plaintext_len: u64) -> u64 {
    let chunks = plaintext_len.div_ceil(CHUNK_SIZE as u64).max(1);
    header_len(key_id_len) as u64 + plaintext_len + chunks * TAG_LEN as u64
}

fn header_len(key_id_len: usize) -> usize {
    4 + 1 + 1 + key_id_len + 4 + SALT_LEN
}

fn encode_header(key_id: &str, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut h = Vec::with_capacity(header_len(key_id.len()));
    h.extend_from_slice(&MAGIC);
    h.push(VERSION);
    h.push(key_id.len() as u8);
    h.extend_from_slice(key_id.as_bytes());
    h.extend_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
    h.extend_from_slice(salt);
    h
}

fn file_cipher(master: &MasterKey, salt: &[u8; SALT_LEN]) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(salt), master.expose());
    let mut info = HKDF_INFO.to_vec();
    info.extend_from_slice(master.id().as_bytes());
    let mut okm = [0u8; 32];
    hk.expand(&info, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let cipher = Aes256Gcm::new(&okm.into());
    okm.zeroize();
    cipher
}

fn nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Parsed header.
struct Header {
    key_id: String,
    salt: [u8; SALT_LEN],
    bytes: Vec<u8>,
}

fn read_header(r: &mut impl Read) -> Result<Header, CryptoError> {
    let mut fixed = [0u8; 6];
    let n = read_full(r, &mut fixed)?;
    let seen = n.min(4);
    if fixed[..seen] != MAGIC[..seen] {
        return Err(CryptoError::BadMagic);
    }
    if n < fixed.len() {
        return Err(CryptoError::Truncated);
    }
    if fixed[4] != VERSION {
        return Err(CryptoError::UnsupportedVersion(fixed[4]));
    }
    let id_len = usize::from(fixed[5]);
    if id_len == 0 || id_len > MAX_KEY_ID_LEN {
        return Err(CryptoError::BadHeader("key id length"));
    }
    let mut rest = vec![0u8; id_len + 4 + SALT_LEN];
    if read_full(r, &mut rest)? < rest.len() {
        return Err(CryptoError::Truncated);
    }
    let (id, rest_tail) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id)
        .ok()
        .filter(|s| valid_key_id(s))
        .ok_or(CryptoError::BadHeader("key id"))?
        .to_string();
    let (size, salt_bytes) = rest_tail.split_at(4);
    let mut size4 = [0u8; 4];
    size4.copy_from_slice(size);
    if u32::from_be_bytes(size4) as usize != CHUNK_SIZE {
        return Err(CryptoError::BadHeader("chunk size"));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(salt_bytes);
    let mut bytes = fixed.to_vec();
    bytes.extend_from_slice(&rest);
    Ok(Header {
        key_id,
        salt,
        bytes,
    })
}

/// Authenticates the whole stream without releasing plaintext; returns size and digest.
pub fn verify(keyring: &Keyring, inp: impl Read) -> Result<DecryptedInfo, CryptoError> {
    let mut d = Decryptor::new(keyring, inp)?;
    let (mut size, mut hash) = (0u64, Sha256::new());
    while let Some(chunk) = d.next_chunk()? {
        size += chunk.len() as u64;
        hash.update(chunk);
    }
    Ok(DecryptedInfo {
        size,
        sha256: hash.finalize().into(),
        key_id: d.key_id().to_string(),
    })
}

/// A byte source read twice: once to authenticate, once to stream.
pub type Source = Box<dyn Read + Send>;

/// A file whose every chunk has been authenticated: reading it decrypts again (each
/// chunk is re-authenticated as it is read) from a second read of the same source.
pub struct VerifiedReader {
    pub info: DecryptedInfo,
    reader: Decryptor<Source>,
}

impl Read for VerifiedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.reader.read(out)
    }
}

/// Two passes over one local file: the first authenticates everything (no plaintext
/// out), the second is handed back for streaming. A bad file yields an error and no
/// plaintext at all.
pub fn open_verified(path: &Path, keyring: &Keyring) -> Result<VerifiedReader, CryptoError> {
    let mut file = File::open(path)?;
    let info = verify(keyring, &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    let reader = Decryptor::new(keyring, Box::new(file) as Source)?;
    Ok(VerifiedReader { info, reader })
}

/// [`open_verified`] over any source that can be opened twice (an object in a
/// bucket: two streamed GETs). Should it change between the two reads, the second
/// fails (each chunk is authenticated, and a cut is seen at the end).
pub fn open_verified_with(
    keyring: &Keyring,
    mut open: impl FnMut() -> io::Result<Source>,
) -> Result<VerifiedReader, CryptoError> {
    let info = verify(keyring, open()?)?;
    let reader = Decryptor::new(keyring, open()?)?;
    Ok(VerifiedReader { info, reader })
}

/// Authenticates the whole file, then writes its plaintext to `out`. `out` receives
/// nothing unless the first pass succeeded; should the file change between the two
/// passes the second fails (each chunk is authenticated) and the digests are compared.
pub fn decrypt_verified(
    path: &Path,
    keyring: &Keyring,
    out: &mut impl Write,
) -> Result<DecryptedInfo, CryptoError> {
    let mut verified = open_verified(path, keyring)?;
    let mut hash = Sha256::new();
    while let Some(chunk) = verified.reader.next_chunk()? {
        hash.update(chunk);
        out.write_all(chunk)?;
    }
    if <[u8; 32]>::from(hash.finalize()) != verified.info.sha256 {
        return Err(CryptoError::Corrupt { chunk: 0 });
    }
    Ok(verified.info)
}
