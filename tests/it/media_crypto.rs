//! The encrypted media format, in the style of age's test vectors: round trips at
//! the chunk boundaries, then every kind of damage, each rejected with its error and
//! without a panic.

use std::io::{Read, Write};

use proptest::prelude::*;
use wagate::media::crypto::{
    self, encrypted_len, CryptoError, Decryptor, Encryptor, CHUNK_SIZE, TAG_LEN,
};
use wagate::media::{Keyring, MasterKey};

const C: usize = CHUNK_SIZE;
const CT: usize = C + TAG_LEN;
/// Header length for key id "k1": magic 4, version 1, id length 1, id 2, chunk size 4, salt 32.
const H: usize = 44;
const SIZES: [usize; 6] = [0, 1, C - 1, C, C + 1, 3 * C];

fn ring(id: &str, byte: u8) -> Keyring {
    Keyring::single(MasterKey::from_bytes(id, [byte; 32]).unwrap())
}

fn plaintext(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ n as u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn encrypt(ring: &Keyring, pt: &[u8]) -> Vec<u8> {
    let mut e = Encryptor::new(ring, Vec::new()).unwrap();
    e.write_all(pt).unwrap();
    e.finish().unwrap()
}

/// Decrypts chunk by chunk; also checks `verify` agrees.
fn decrypt(ring: &Keyring, ct: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let verified = crypto::verify(ring, ct);
    let mut d = match Decryptor::new(ring, ct) {
        Ok(d) => d,
        Err(e) => {
            assert!(verified.is_err());
            return Err(e);
        }
    };
    let mut out = Vec::new();
    loop {
        match d.next_chunk() {
            Ok(Some(chunk)) => out.extend_from_slice(chunk),
            Ok(None) => break,
            Err(e) => {
                assert!(verified.is_err());
                return Err(e);
            }
        }
    }
    let info = verified.expect("verify agrees with decryption");
    assert_eq!(info.size, out.len() as u64);
    Ok(out)
}

/// (offset, length) of each chunk of an encrypted `size`-byte file.
fn chunks(size: usize) -> Vec<(usize, usize)> {
    let n = size.div_ceil(C).max(1);
    (0..n)
        .map(|i| (H + i * CT, (size - (i * C).min(size)).min(C) + TAG_LEN))
        .collect()
}

fn flipped(ct: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut v = ct.to_vec();
    v[at] ^= mask;
    v
}

#[track_caller]
fn assert_corrupt(r: Result<Vec<u8>, CryptoError>, want_chunk: u64) {
    match r {
        Err(CryptoError::Corrupt { chunk }) => assert_eq!(chunk, want_chunk),
        other => panic!("expected Corrupt at chunk {want_chunk}, got {other:?}"),
    }
}

#[test]
fn round_trips_at_chunk_boundaries() {
    let k = ring("k1", 1);
    for size in SIZES {
        let pt = plaintext(size);
        let ct = encrypt(&k, &pt);
        assert_eq!(
            ct.len() as u64,
            encrypted_len(2, size as u64),
            "size {size}"
        );
        assert_eq!(&ct[..4], b"WAGM");
        assert_eq!(decrypt(&k, &ct).unwrap(), pt, "size {size}");
        let info = crypto::verify(&k, &ct[..]).unwrap();
        assert_eq!(info.key_id, "k1");
        assert_eq!(info.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&pt)));
        // Writes of any granularity produce the same chunking.
        for piece in [1usize, 7, 4096, C + 3] {
            if size > 200_000 && piece < 4096 {
                continue;
            }
            let mut e = Encryptor::new(&k, Vec::new()).unwrap();
            for part in pt.chunks(piece) {
                e.write_all(part).unwrap();
            }
            let ct2 = e.finish().unwrap();
            assert_eq!(ct2.len(), ct.len());
            assert_eq!(decrypt(&k, &ct2).unwrap(), pt);
        }
        // As an io::Read.
        let mut out = Vec::new();
        Decryptor::new(&k, &ct[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, pt);
    }
}

use sha2::Digest;

#[test]
fn same_plaintext_twice_gives_different_files() {
    let k = ring("k1", 1);
    assert_ne!(encrypt(&k, b"hello"), encrypt(&k, b"hello"));
}

#[test]
fn flipped_header_bytes_are_rejected() {
    let k = ring("k1", 1);
    for size in SIZES {
        let ct = encrypt(&k, &plaintext(size));
        for at in 0..4 {
            assert!(matches!(
                decrypt(&k, &flipped(&ct, at, 0x01)),
                Err(CryptoError::BadMagic)
            ));
        }
        assert!(matches!(
            decrypt(&k, &flipped(&ct, 4, 0x01)),
            Err(CryptoError::UnsupportedVersion(0))
        ));
        // Key id length: another length is a different header, never a success.
        for mask in [0x01, 0x02, 0x80, 0xff] {
            let r = decrypt(&k, &flipped(&ct, 5, mask));
            assert!(
                matches!(
                    r,
                    Err(CryptoError::BadHeader(_)
                        | CryptoError::UnknownKeyId(_)
                        | CryptoError::Truncated)
                ),
                "{r:?}"
            );
        }
        // Key id: "k1" -> "j1" / "k0" (unknown), or not ASCII (malformed).
        assert!(
            matches!(decrypt(&k, &flipped(&ct, 6, 0x01)), Err(CryptoError::UnknownKeyId(id)) if id == "j1")
        );
        assert!(
            matches!(decrypt(&k, &flipped(&ct, 7, 0x01)), Err(CryptoError::UnknownKeyId(id)) if id == "k0")
        );
        assert!(matches!(
            decrypt(&k, &flipped(&ct, 7, 0x80)),
            Err(CryptoError::BadHeader("key id"))
        ));
        for at in 8..12 {
            assert!(matches!(
                decrypt(&k, &flipped(&ct, at, 0x01)),
                Err(CryptoError::BadHeader("chunk size"))
            ));
        }
        for at in 12..H {
            assert_corrupt(decrypt(&k, &flipped(&ct, at, 0x01)), 0);
        }
    }
}

#[test]
fn header_bound_as_associated_data_even_for_a_known_key_id() {
    // Two keys listed: a file under k1 whose key id is changed to k2 (same length)
    // fails authentication of its first chunk.
    let mut k = ring("k1", 1);
    k.add_primary(MasterKey::from_bytes("k2", [1; 32]).unwrap())
        .unwrap();
    let only_k1 = ring("k1", 1);
    let ct = encrypt(&only_k1, b"abc");
    let mut bad = ct.clone();
    bad[7] = b'2';
    assert_corrupt(decrypt(&k, &bad), 0);
    assert_eq!(decrypt(&k, &ct).unwrap(), b"abc");
}

#[test]
fn flipped_chunk_and_tag_bytes_are_rejected() {
    let k = ring("k1", 1);
    for size in SIZES {
        let ct = encrypt(&k, &plaintext(size));
        for (i, (off, len)) in chunks(size).into_iter().enumerate() {
            let body = len - TAG_LEN;
            let mut positions = vec![];
            if body > 0 {
                positions.extend([off, off + body / 2, off + body - 1]);
            }
            positions.extend((0..TAG_LEN).map(|t| off + body + t));
            for at in positions {
                assert_corrupt(decrypt(&k, &flipped(&ct, at, 0x01)), i as u64);
                assert_corrupt(decrypt(&k, &flipped(&ct, at, 0x80)), i as u64);
            }
        }
    }
}

#[test]
fn truncation_is_detected() {
    let k = ring("k1", 1);
    for size in SIZES {
        let ct = encrypt(&k, &plaintext(size));
        // Inside the header, or the header alone.
        for cut in [0, 3, 4, 5, 6, 8, 12, 30, H - 1, H] {
            let r = decrypt(&k, &ct[..cut]);
            assert!(
                matches!(r, Err(CryptoError::Truncated)),
                "size {size} cut {cut}: {r:?}"
            );
        }
        let cs = chunks(size);
        for (i, &(off, len)) in cs.iter().enumerate() {
            // At a chunk boundary (the stream ends after a non-final chunk).
            if i > 0 {
                assert!(matches!(
                    decrypt(&k, &ct[..off]),
                    Err(CryptoError::Truncated)
                ));
            }
            // Leaving less than a tag of the next chunk.
            assert!(matches!(
                decrypt(&k, &ct[..off + 5]),
                Err(CryptoError::Truncated)
            ));
            // Inside a chunk: indistinguishable from a damaged final chunk.
            if len > TAG_LEN {
                assert_corrupt(decrypt(&k, &ct[..off + len - 1]), i as u64);
                assert_corrupt(decrypt(&k, &ct[..off + (len / 2).max(TAG_LEN)]), i as u64);
            }
        }
    }
}

#[test]
fn reordered_missing_doubled_chunks_are_rejected() {
    let k = ring("k1", 1);
    let size = 3 * C;
    let ct = encrypt(&k, &plaintext(size));
    let cs = chunks(size);
    let part = |i: usize| &ct[cs[i].0..cs[i].0 + cs[i].1];
    let header = &ct[..H];

    // Chunks 0 and 1 swapped.
    let swapped = [header, part(1), part(0), part(2)].concat();
    assert_corrupt(decrypt(&k, &swapped), 0);
    // Final chunk missing: a stream cut that lands on a boundary, where the last
    // chunk present is a valid non-final one.
    let missing = [header, part(0), part(1)].concat();
    assert!(matches!(decrypt(&k, &missing), Err(CryptoError::Truncated)));
    // A middle chunk missing.
    let gap = [header, part(0), part(2)].concat();
    assert_corrupt(decrypt(&k, &gap), 1);
    // Final (full-size) chunk doubled.
    let doubled = [header, part(0), part(1), part(2), part(2)].concat();
    assert!(matches!(
        decrypt(&k, &doubled),
        Err(CryptoError::TrailingData)
    ));
    // A non-final chunk repeated.
    let repeated = [header, part(0), part(0), part(1), part(2)].concat();
    assert_corrupt(decrypt(&k, &repeated), 1);
    // Final short chunk doubled: it reads as one longer final chunk that fails.
    let size = C + 1;
    let ct = encrypt(&k, &plaintext(size));
    let cs = chunks(size);
    let last = &ct[cs[1].0..];
    let doubled = [&ct[..], last].concat();
    assert_corrupt(decrypt(&k, &doubled), 1);
    // A chunk from another file (same key, other salt) spliced in.
    let other = encrypt(&k, &plaintext(3 * C));
    let spliced = [&ct[..cs[1].0], &other[H + CT..H + 2 * CT]].concat();
    assert_corrupt(decrypt(&k, &spliced), 1);
}

#[test]
fn trailing_data_is_rejected() {
    let k = ring("k1", 1);
    for size in SIZES {
        let ct = encrypt(&k, &plaintext(size));
        for garbage in [&[0u8][..], b"garbage", &[0xAA; 100][..]] {
            let bad = [&ct[..], garbage].concat();
            let r = decrypt(&k, &bad);
            if size % C == 0 && size > 0 {
                // After a full final chunk the extra bytes are seen as data past the end.
                assert!(matches!(r, Err(CryptoError::TrailingData)), "{size}: {r:?}");
            } else {
                // After a short final chunk they lengthen it, and it fails.
                let last = chunks(size).len() as u64 - 1;
                assert_corrupt(r, last);
            }
        }
    }
}

#[test]
fn wrong_and_unknown_keys_are_rejected() {
    let k = ring("k1", 1);
    let same_id_other_bytes = ring("k1", 2);
    let other_id = ring("k7", 1);
    for size in SIZES {
        let ct = encrypt(&k, &plaintext(size));
        assert_corrupt(decrypt(&same_id_other_bytes, &ct), 0);
        assert!(
            matches!(decrypt(&other_id, &ct), Err(CryptoError::UnknownKeyId(id)) if id == "k1")
        );
    }
}

#[test]
fn junk_input_is_rejected_without_panic() {
    let k = ring("k1", 1);
    assert!(matches!(decrypt(&k, b""), Err(CryptoError::Truncated)));
    assert!(matches!(decrypt(&k, b"WAG"), Err(CryptoError::Truncated)));
    assert!(matches!(
        decrypt(&k, b"XAGM\x01"),
        Err(CryptoError::BadMagic)
    ));
    assert!(matches!(
        decrypt(&k, b"\x89PNG\r\n\x1a\n"),
        Err(CryptoError::BadMagic)
    ));
    assert!(matches!(
        decrypt(&k, b"WAGM\x02\x02k1"),
        Err(CryptoError::UnsupportedVersion(2))
    ));
    assert!(matches!(
        decrypt(&k, b"WAGM\x01\x00"),
        Err(CryptoError::BadHeader(_))
    ));
    assert!(matches!(
        decrypt(&k, b"WAGM\x01\x21"),
        Err(CryptoError::BadHeader(_))
    ));
    for n in 0..200 {
        let _ = decrypt(&k, &plaintext(n));
    }
}

#[test]
fn a_reader_error_is_io_and_an_unfinished_file_is_truncated() {
    let k = ring("k1", 1);
    let mut e = Encryptor::new(&k, Vec::new()).unwrap();
    e.write_all(&plaintext(2 * C + 10)).unwrap();
    e.flush().unwrap();
    // Dropped without finish(): what reached the writer so far.
    let partial = {
        let mut v = Vec::new();
        let mut e2 = Encryptor::new(&k, &mut v).unwrap();
        e2.write_all(&plaintext(2 * C + 10)).unwrap();
        drop(e2);
        v
    };
    assert!(matches!(decrypt(&k, &partial), Err(CryptoError::Truncated)));
    // Read on a damaged stream reports InvalidData after the good chunks.
    let ct = encrypt(&k, &plaintext(2 * C));
    let bad = flipped(&ct, ct.len() - 1, 1);
    let mut out = Vec::new();
    let err = Decryptor::new(&k, &bad[..])
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(out.len(), C, "only the authenticated first chunk came out");
}

#[test]
fn decrypt_verified_serves_nothing_from_a_bad_file() {
    let k = ring("k1", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let pt = plaintext(3 * C);
    let ct = encrypt(&k, &pt);
    std::fs::write(&path, &ct).unwrap();
    let mut out = Vec::new();
    let info = crypto::decrypt_verified(&path, &k, &mut out).unwrap();
    assert_eq!((out, info.size), (pt, 3 * C as u64));
    for bad in [flipped(&ct, ct.len() - 1, 1), ct[..ct.len() - CT].to_vec()] {
        std::fs::write(&path, &bad).unwrap();
        let mut out = Vec::new();
        assert!(crypto::decrypt_verified(&path, &k, &mut out).is_err());
        assert!(out.is_empty(), "a bad file serves zero bytes");
        assert!(crypto::open_verified(&path, &k).is_err());
    }
}

#[test]
fn rotation_keeps_old_files_readable_and_new_files_use_the_new_key() {
    let mut k = ring("k1", 1);
    let old_ring = k.clone();
    let old = encrypt(&k, b"before rotation");
    assert_eq!(k.rotate(), "k2");
    assert_eq!(k.primary().id(), "k2");
    let new = encrypt(&k, b"after rotation");
    assert_eq!(crypto::verify(&k, &old[..]).unwrap().key_id, "k1");
    assert_eq!(crypto::verify(&k, &new[..]).unwrap().key_id, "k2");
    assert_eq!(decrypt(&k, &old).unwrap(), b"before rotation");
    assert_eq!(decrypt(&k, &new).unwrap(), b"after rotation");
    assert!(matches!(decrypt(&old_ring, &new), Err(CryptoError::UnknownKeyId(id)) if id == "k2"));
    // Through the text file format too.
    let reread = Keyring::parse(&k.to_text()).unwrap();
    assert_eq!(decrypt(&reread, &old).unwrap(), b"before rotation");
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(p, m)| Mutation::Flip(p, m)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        any::<usize>().prop_map(Mutation::Remove),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
    ]
}

fn apply(v: &mut Vec<u8>, m: &Mutation) {
    let len = v.len().max(1);
    match m {
        Mutation::Flip(p, mask) if !v.is_empty() => v[p % len] ^= mask,
        Mutation::Set(p, b) if !v.is_empty() => v[p % len] = *b,
        Mutation::Truncate(p) => v.truncate(p % len),
        Mutation::Insert(p, b) => v.insert(p % (v.len() + 1), *b),
        Mutation::Remove(p) if !v.is_empty() => {
            v.remove(p % len);
        }
        Mutation::Append(bytes) => v.extend_from_slice(bytes),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any mutation of a valid file never panics, and never decrypts to anything:
    /// a changed file is rejected, an unchanged one gives back the original.
    #[test]
    fn mutated_files_never_decrypt_to_something_else(
        size in prop_oneof![Just(0usize), Just(1), Just(C - 1), Just(C), Just(C + 1), 0usize..(2 * C + 100)],
        muts in proptest::collection::vec(mutation(), 1..4),
        // Mutations aimed at the interesting region: header and chunk edges.
        near_edge in any::<bool>(),
    ) {
        let k = ring("k1", 1);
        let pt = plaintext(size);
        let ct = encrypt(&k, &pt);
        let mut bad = ct.clone();
        for m in &muts {
            let m = match (near_edge, m) {
                (true, Mutation::Flip(p, b)) => Mutation::Flip(p % (H + 20) + (p % 3) * CT, *b),
                _ => m.clone(),
            };
            apply(&mut bad, &m);
        }
        match decrypt(&k, &bad) {
            Ok(out) => {
                prop_assert_eq!(&bad, &ct, "a changed file decrypted");
                prop_assert_eq!(out, pt);
            }
            Err(_) => prop_assert_ne!(&bad, &ct),
        }
    }
}
