//! The binary's offline tools and its configuration errors.

use crate::support::child::wagate;
use crate::support::{data_path, test_config, SECRET};

#[test]
fn verify_signature_explains_and_exits_by_verdict() {
    let header = "sha256=07db608d18eb05e07539f2626cb8f80a3fe1675627eb50ca6fe80fecbc932163";
    let ok = wagate()
        .env("META_APP_SECRET", SECRET)
        .args(["verify-signature", "--header", header])
        .arg(data_path("payloads/msg_text_unicode_real_capture.json"))
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("verdict: accepted"));

    let pretty = wagate()
        .env("META_APP_SECRET", SECRET)
        .args(["verify-signature", "--header", header])
        .arg(data_path("signature/reserialized_pretty.json"))
        .output()
        .unwrap();
    assert_eq!(pretty.status.code(), Some(1));
    let out = String::from_utf8_lossy(&pretty.stdout);
    assert!(
        out.contains("body_rewritten") && out.contains("pretty-printed"),
        "{out}"
    );
}

#[test]
fn a_bad_setting_exits_2_naming_the_variable() {
    let out = wagate().env("WAGATE_DEDUP_TTL", "soon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WAGATE_DEDUP_TTL"));
}

#[test]
fn check_passes_on_a_fresh_directory_and_explains_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let ok = wagate()
        .env("META_APP_SECRET", SECRET)
        .env("WAGATE_DATA_DIR", dir.path().join("data"))
        .arg("check")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let bad = wagate()
        .env("WAGATE_DATA_DIR", "/nonexistent/wagate/data")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("problem: neither"));
    let low = wagate()
        .env("WAGATE_DATA_DIR", dir.path())
        .env("WAGATE_MIN_FREE", "100000GiB")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(low.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&low.stdout).contains("below WAGATE_MIN_FREE"));
}

#[tokio::test]
async fn rotate_media_key_adds_a_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let app = wagate::App::start(test_config(dir.path())).await.unwrap();
    app.shutdown().await;
    let out = wagate()
        .env("WAGATE_DATA_DIR", dir.path())
        .arg("rotate-media-key")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = std::fs::read_to_string(dir.path().join("media-keys")).unwrap();
    assert!(keys.lines().any(|l| l == "primary k2"), "{keys}");
    assert!(keys.lines().any(|l| l.starts_with("k1 ")), "old key kept");
}
