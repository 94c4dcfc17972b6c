//! The encrypted media file store: the conformance PNG round trip, refusals that
//! leave nothing behind, sweeping, and the keys App::start creates.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wagate::media::{FileError, KeyStore, MediaFiles};

use crate::support::{data_path, test_config, TestApp};

fn files_in(dir: &Path) -> MediaFiles {
    let keys = KeyStore::open(&dir.join("media-keys"), true).unwrap();
    MediaFiles::open(&dir.join("media"), Arc::new(keys)).unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn png() -> (Vec<u8>, [u8; 32]) {
    let bytes = std::fs::read(data_path("graph/media/media_image_2x2.png")).unwrap();
    let lookup: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_path("graph/media_get_response.json")).unwrap())
            .unwrap();
    let mut sha = [0u8; 32];
    hex::decode_to_slice(lookup["sha256"].as_str().unwrap(), &mut sha).unwrap();
    assert_eq!(bytes.len() as u64, lookup["file_size"].as_u64().unwrap());
    (bytes, sha)
}

#[test]
fn conformance_png_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let files = files_in(tmp.path());
    let (bytes, sha) = png();
    let stored = files.store(&bytes[..], Some(sha), 5 << 20).unwrap();
    assert_eq!(
        (stored.size, stored.sha256, stored.key_id.as_str()),
        (73, sha, "k1")
    );
    assert_eq!(listing(files.dir()), std::slice::from_ref(&stored.name));
    let on_disk = std::fs::read(files.dir().join(&stored.name)).unwrap();
    assert!(
        !on_disk.windows(4).any(|w| w == b"IHDR"),
        "stored encrypted"
    );
    let mode = std::fs::metadata(files.dir().join(&stored.name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut reader = files.open_verified(&stored.name).unwrap();
    assert_eq!((reader.info.size, reader.info.sha256), (73, sha));
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, bytes);
    assert!(files.delete(&stored.name).unwrap());
    assert!(listing(files.dir()).is_empty());
    assert!(matches!(
        files.open_verified(&stored.name),
        Err(FileError::NotFound(_))
    ));
}

#[test]
fn digest_mismatch_and_oversize_leave_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let files = files_in(tmp.path());
    let (bytes, mut sha) = png();
    sha[0] ^= 1;
    assert!(matches!(
        files.store(&bytes[..], Some(sha), 5 << 20),
        Err(FileError::DigestMismatch { .. })
    ));
    assert!(listing(files.dir()).is_empty());
    // Cut at the cap: exactly the cap is fine, one more byte is refused, and a huge
    // source is read no further than the cap + 1.
    assert!(matches!(
        files.store(&bytes[..], None, 72),
        Err(FileError::TooLarge { limit: 72 })
    ));
    assert!(listing(files.dir()).is_empty());
    let mut endless = std::io::repeat(0).take(u64::MAX);
    assert!(matches!(
        files.store(&mut endless, None, 300_000),
        Err(FileError::TooLarge { .. })
    ));
    assert_eq!(u64::MAX - endless.limit(), 300_001);
    assert!(listing(files.dir()).is_empty());
    let ok = files.store(&bytes[..], None, 73).unwrap();
    assert_eq!(listing(files.dir()), [ok.name]);
}

#[test]
fn a_damaged_file_serves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let files = files_in(tmp.path());
    let stored = files.store(&vec![5u8; 200_000][..], None, 1 << 20).unwrap();
    let path = files.dir().join(&stored.name);
    let mut ct = std::fs::read(&path).unwrap();
    let last = ct.len() - 1;
    ct[last] ^= 1;
    std::fs::write(&path, &ct).unwrap();
    assert!(matches!(
        files.open_verified(&stored.name),
        Err(FileError::Crypto(_))
    ));
}

#[test]
fn sweep_removes_temp_and_orphans_and_keeps_known() {
    let tmp = tempfile::tempdir().unwrap();
    let files = files_in(tmp.path());
    let a = files.store(&b"a"[..], None, 10).unwrap().name;
    let b = files.store(&b"b"[..], None, 10).unwrap().name;
    let orphan = files.store(&b"c"[..], None, 10).unwrap().name;
    let temp = format!("{}.tmp", "ab".repeat(16));
    std::fs::write(files.dir().join(&temp), b"half").unwrap();
    std::fs::write(files.dir().join("not-ours.txt"), b"x").unwrap();
    let known = |n: &str| n == a || n == b;

    // Too young for a timer sweep: left for later.
    let r = files
        .sweep_temp_and_orphans(known, Duration::from_secs(3600))
        .unwrap();
    assert_eq!((r.skipped_recent, r.kept), (2, 2));
    assert!(r.temp_removed.is_empty() && r.orphans_removed.is_empty());

    // At start (min_age zero): both go.
    let r = files.sweep_temp_and_orphans(known, Duration::ZERO).unwrap();
    assert_eq!(r.temp_removed, [temp]);
    assert_eq!(r.orphans_removed, [orphan]);
    assert_eq!(r.kept, 2);
    assert_eq!(r.ignored, ["not-ours.txt"]);
    let mut want = vec![a.clone(), b.clone(), "not-ours.txt".to_string()];
    want.sort();
    assert_eq!(listing(files.dir()), want);
    assert!(files.open_verified(&a).is_ok());
}

#[test]
fn rotation_through_the_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let files = files_in(tmp.path());
    let old = files.store(&b"old"[..], None, 10).unwrap();
    assert_eq!(files.keys().rotate().unwrap(), "k2");
    let new = files.store(&b"new"[..], None, 10).unwrap();
    assert_eq!((old.key_id.as_str(), new.key_id.as_str()), ("k1", "k2"));
    // After a restart (the key file read again) both still open.
    let again = files_in(tmp.path());
    assert_eq!(again.verify(&old.name).unwrap().key_id, "k1");
    assert_eq!(again.verify(&new.name).unwrap().key_id, "k2");
}

#[tokio::test]
async fn app_start_creates_private_keys_or_uses_the_named_file() {
    let app = TestApp::spawn().await;
    let key_file = app.dir.path().join("media-keys");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(app.dir.path().join("media").is_dir());
    let text = std::fs::read_to_string(&key_file).unwrap();
    let key_hex = text
        .lines()
        .find_map(|l| l.strip_prefix("k1 "))
        .expect("a k1 line");
    assert_eq!(key_hex.len(), 64);
    assert!(!format!("{:?}", app.state.media).contains(key_hex));
    let dir = app.stop().await;

    // An operator-named key file must exist.
    let elsewhere = tempfile::tempdir().unwrap();
    let named = elsewhere.path().join("keys");
    let missing = named.clone();
    let err = wagate::App::start({
        let mut c = test_config(dir.path());
        c.media_key_file = Some(missing);
        c
    })
    .await
    .err()
    .expect("missing key file refused");
    assert!(err.to_string().contains("keys"), "{err}");
    std::fs::copy(&key_file, &named).unwrap();
    let app = TestApp::spawn_in(dir, |c| c.media_key_file = Some(named.clone())).await;
    assert_eq!(app.state.media.keys().path(), named);
    app.stop().await;
}
