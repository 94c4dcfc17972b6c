//! The media decryptor and the key file: a tampered file is an error, never a panic
//! and never plaintext that is not what was encrypted.

use std::io::{Read, Write};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::media::crypto::{self, Decryptor, Encryptor, CHUNK_SIZE};
use crate::media::keys::{Keyring, MasterKey};

/// Two keys: `old` and the primary `k1`.
fn keyring() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut kr = Keyring::single(MasterKey::from_bytes("old", [2; 32]).expect("valid id"));
        kr.add_primary(MasterKey::from_bytes("k1", [1; 32]).expect("valid id"))
            .expect("new id");
        kr
    })
}

/// The plaintext of every seed file: its length (8 bytes LE), then bytes that depend
/// on their position. A cut, a dropped or a moved chunk cannot match it.
pub fn plaintext(n: usize) -> Vec<u8> {
    let len = (n as u64).to_le_bytes();
    (0..n)
        .map(|i| match len.get(i) {
            Some(b) => *b,
            None => ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8,
        })
        .collect()
}

/// Any file: verification and streaming agree; what authenticates is one of the
/// plaintexts that were encrypted, with its size and digest.
pub fn decrypt(data: &[u8]) {
    let keys = keyring();
    let verified = crypto::verify(keys, data);
    let mut streamed = Vec::new();
    let read = Decryptor::new(keys, data).map(|mut d| d.read_to_end(&mut streamed));
    match verified {
        Ok(info) => {
            assert!(matches!(read, Ok(Ok(_))), "verified, yet streaming failed");
            assert_eq!(info.size, streamed.len() as u64);
            assert_eq!(info.sha256, <[u8; 32]>::from(Sha256::digest(&streamed)));
            assert!(
                streamed == plaintext(streamed.len()),
                "a file authenticated to plaintext that was never encrypted"
            );
        }
        Err(e) => assert!(
            !matches!(read, Ok(Ok(_))),
            "verify failed ({e}), yet streaming read the whole file"
        ),
    }
}

fn encrypt(keys: &Keyring, salt: u8, n: usize) -> Vec<u8> {
    let mut e = Encryptor::with_salt(keys, Vec::new(), [salt; 32]).expect("in memory");
    e.write_all(&plaintext(n)).expect("in memory");
    e.finish().expect("in memory")
}

/// Files of 0, 1, 7 and 100 bytes, one and a bit chunks, and one under the old key.
pub fn seeds() -> Vec<Vec<u8>> {
    let keys = keyring();
    let mut out: Vec<Vec<u8>> = [0, 1, 7, 100, CHUNK_SIZE, CHUNK_SIZE + 1]
        .iter()
        .enumerate()
        .map(|(i, &n)| encrypt(keys, i as u8, n))
        .collect();
    let old = Keyring::single(MasterKey::from_bytes("old", [2; 32]).expect("valid id"));
    out.push(encrypt(&old, 9, 50));
    out
}

pub const DICT: &[&[u8]] = &[
    b"WAGM",
    b"WAGM\x01\x02k1",
    b"WAGM\x01\x03old",
    b"\x00\x01\x00\x00",
];

/// The key file: what parses prints back to the same keyring, and rotating it works.
pub fn keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut kr) = Keyring::parse(text) else {
        return;
    };
    let printed = kr.to_text();
    let again = Keyring::parse(&printed).expect("a printed keyring parses");
    assert_eq!(again.to_text(), printed);
    assert_eq!(again.primary().id(), kr.primary().id());
    let id = kr.rotate();
    assert_eq!(kr.primary().id(), id);
}

pub fn key_seeds() -> Vec<Vec<u8>> {
    let text = "# wagate media master keys\nk1 0101010101010101010101010101010101010101010101010101010101010101\nk2 0202020202020202020202020202020202020202020202020202020202020202\nprimary k2\n";
    vec![text.as_bytes().to_vec()]
}

pub const KEY_DICT: &[&[u8]] = &[
    b"primary ",
    b"k18446744073709551615",
    b"k9",
    b"\n",
    b"#",
    b" ",
];
