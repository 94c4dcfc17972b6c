//! Media download end to end: a real wagate, the fake media API and host
//! (`support/fake_media.rs`), the conformance PNG and its webhook.

use std::time::Duration;

use crate::support::fake_media::{png, Answer, FakeMedia, MEDIA_ID};
use crate::support::media::{files_in, payload, setup, spawn, wait_state};
use crate::support::{eventually, stays, TestApp};
use wagate::util::clock::Clock;

const WAMID: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBBNAA=";

#[tokio::test]
async fn round_trip_with_the_conformance_png() {
    let fake = FakeMedia::start().await;
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["size"], 73);
    assert_eq!(
        v["sha256"],
        "d96aec5ea00346cbbcfa770fe11ba8c584c8ad093cadf72a755ff8a325560871"
    );
    assert_eq!(v["mime_type"], "image/png");
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["message_id"], WAMID);
    // The webhook's URL was used: no lookup. Token and User-Agent were sent.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0].authorization.as_deref(),
        Some("Bearer media-token-for-tests")
    );
    assert!(reqs[0]
        .user_agent
        .as_deref()
        .unwrap()
        .starts_with("wagate/"));
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png());
    let m = app.get_json(&format!("/api/messages/{WAMID}")).await;
    assert_eq!(m["media"]["state"], "stored");
    // Only ciphertext on disk.
    let files = files_in(app.dir.path());
    assert_eq!(files.len(), 1);
    let on_disk = std::fs::read(app.dir.path().join("media").join(&files[0])).unwrap();
    assert!(!on_disk.windows(4).any(|w| w == b"IHDR"));
    app.stop().await;
}

#[tokio::test]
async fn lookup_when_the_webhook_has_no_url_and_rebuild_keeps_it() {
    let fake = FakeMedia::start().await;
    let app = spawn(&fake).await;
    app.deliver(payload(None, 10)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["size"], 73);
    assert_eq!(fake.count("/v23.0/"), 1);
    assert_eq!(fake.count("/media/"), 1);
    // sled rebuilt from the journal: the stored file is still known.
    let dir = app.stop().await;
    std::fs::rename(dir.path().join("state"), dir.path().join("state.broken")).unwrap();
    let f = fake.clone();
    let app = TestApp::spawn_in(dir, move |c| setup(c, &f)).await;
    app.wait_applied().await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["file"].as_str().unwrap(), files_in(app.dir.path())[0]);
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png());
    assert_eq!(fake.count("/media/"), 1, "not downloaded again");
    app.stop().await;
}

#[tokio::test]
async fn expired_url_then_a_fresh_one_works() {
    let fake = FakeMedia::start().await;
    fake.script_files([Answer::Status(404)]);
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["attempts"], 2);
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert!(paths[0].contains("source=webhook"), "{paths:?}");
    assert!(
        paths[1].starts_with(&format!("/v23.0/{MEDIA_ID}")),
        "{paths:?}"
    );
    assert!(paths[2].starts_with("/media/file") && !paths[2].contains("source=webhook"));
    app.stop().await;
}

#[tokio::test]
async fn too_many_requests_then_success() {
    let fake = FakeMedia::start().await;
    fake.script_files([Answer::Status(429), Answer::Status(503)]);
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["attempts"], 3);
    assert_eq!(fake.count("/media/"), 3);
    app.stop().await;
}

#[tokio::test]
async fn sha256_mismatch_is_quarantined_and_never_served() {
    let fake = FakeMedia::start().await;
    fake.lock().file[60] ^= 1;
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "quarantined").await;
    assert!(v["last_error"].as_str().unwrap().contains("sha256"), "{v}");
    assert!(v["content"].is_null());
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 409);
    assert!(files_in(app.dir.path()).is_empty());
    assert_eq!(fake.count("/media/"), 1, "not retried");
    app.stop().await;
}

#[tokio::test]
async fn oversize_is_cut_at_the_cap() {
    let fake = FakeMedia::start().await;
    // No size anywhere: only the image cap (5 MB) limits it; 8 MB, no Content-Length.
    fake.lock().lookup_size = None;
    fake.script_files([Answer::Unsized(vec![7u8; 8 << 20])]);
    let app = spawn(&fake).await;
    app.deliver(payload(None, 10)).await;
    let v = wait_state(&app, "failed").await;
    assert!(
        v["last_error"].as_str().unwrap().contains("too large"),
        "{v}"
    );
    assert!(v["last_error"]
        .as_str()
        .unwrap()
        .contains(&(5u64 << 20).to_string()));
    assert!(files_in(app.dir.path()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn larger_than_declared_is_refused() {
    let fake = FakeMedia::start().await;
    fake.lock().file.extend_from_slice(&[0u8; 100]);
    let app = spawn(&fake).await;
    app.deliver(payload(None, 10)).await;
    let v = wait_state(&app, "failed").await;
    assert!(v["last_error"].as_str().unwrap().contains("73"), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_download_cut_half_way_is_retried_and_nothing_is_served() {
    let fake = FakeMedia::start().await;
    fake.script_files([Answer::Half, Answer::Half]);
    fake.lock().lookup_size = None;
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["attempts"], 3);
    assert_eq!(fake.count("/media/"), 3);
    assert_eq!(files_in(app.dir.path()).len(), 1, "no temp file left");
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png());
    app.stop().await;
}

#[tokio::test]
async fn redirect_to_another_host_is_refused() {
    let fake = FakeMedia::start().await;
    // localhost is not on the list (only 127.0.0.1 is): the token must not go there.
    let port = fake.base.rsplit(':').next().unwrap().to_string();
    fake.script_files([Answer::Redirect(format!(
        "http://localhost:{port}/media/file?evil=1"
    ))]);
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "failed").await;
    assert!(
        v["last_error"]
            .as_str()
            .unwrap()
            .contains("WAGATE_MEDIA_HOSTS"),
        "{v}"
    );
    assert!(!fake.requests().iter().any(|r| r.path.contains("evil")));
    app.stop().await;
}

#[tokio::test]
async fn webhook_url_off_the_list_is_never_called() {
    let fake = FakeMedia::start().await;
    let app = spawn(&fake).await;
    // The real lookaside host is not allowed in this test: refused without a call.
    app.deliver(payload(Some("https://lookaside.example.net/x"), 10))
        .await;
    let v = wait_state(&app, "failed").await;
    assert!(v["last_error"]
        .as_str()
        .unwrap()
        .contains("not in WAGATE_MEDIA_HOSTS"));
    assert!(fake.requests().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn media_id_past_its_lifetime_is_expired() {
    let fake = FakeMedia::start().await;
    let f = fake.clone();
    let app = TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.dedup_ttl = Duration::from_secs(9 * 86400);
    })
    .await;
    app.deliver(payload(Some(&fake.file_url()), 8 * 86400))
        .await;
    wait_state(&app, "expired").await;
    assert!(fake.requests().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn restart_mid_download_completes_once() {
    let fake = FakeMedia::start().await;
    fake.script_files([Answer::Hang(Duration::from_secs(30))]);
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    // Mid-download: the file was requested and its first half written.
    eventually("the download to start", async || fake.count("/media/") > 0).await;
    eventually("the temp file to be written", async || {
        files_in(app.dir.path()).iter().any(|f| f.ends_with(".tmp"))
    })
    .await;
    let v = app.get_json(&format!("/api/media/{MEDIA_ID}")).await;
    assert_eq!(v["state"], "pending");
    let dir = app.stop().await;
    let f = fake.clone();
    let app = TestApp::spawn_in(dir, move |c| setup(c, &f)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(fake.count("/media/"), 2);
    assert_eq!(
        files_in(app.dir.path()),
        vec![v["file"].as_str().unwrap().to_string()]
    );
    // A third start does nothing more.
    let dir = app.stop().await;
    let f = fake.clone();
    let app = TestApp::spawn_in(dir, move |c| setup(c, &f)).await;
    app.wait_applied().await;
    stays("no third download", async || fake.count("/media/") == 2).await;
    wait_state(&app, "stored").await;
    app.stop().await;
}

#[tokio::test]
async fn ttl_sweep_deletes_the_file_and_marks_it_deleted() {
    let fake = FakeMedia::start().await;
    let f = fake.clone();
    let app = TestApp::spawn_clocked(Clock::manual_now(), move |c| {
        setup(c, &f);
        c.media.ttl = Duration::from_secs(86400);
        c.media.sweep_every = Duration::from_secs(3600);
    })
    .await;
    // An orphan and a temp file from an earlier life are swept at start of the next.
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    wait_state(&app, "stored").await;
    stays("kept while the clock stands still", async || {
        app.get_json(&format!("/api/media/{MEDIA_ID}")).await["state"] == "stored"
    })
    .await;
    // A day and a sweep interval later, the sweep deletes it.
    app.clock().advance(Duration::from_secs(86400 + 3600));
    let v = wait_state(&app, "deleted").await;
    assert!(v["deleted_at"].is_string());
    assert!(files_in(app.dir.path()).is_empty());
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 409);
    let dir = app.stop().await;
    std::fs::write(
        dir.path()
            .join("media")
            .join(format!("{}.tmp", "a".repeat(32))),
        b"x",
    )
    .unwrap();
    std::fs::write(dir.path().join("media").join("b".repeat(32)), b"x").unwrap();
    let f = fake.clone();
    let app = TestApp::spawn_in(dir, move |c| setup(c, &f)).await;
    eventually("the start sweep to remove them", async || {
        let left = files_in(app.dir.path());
        left.is_empty()
            .then_some(())
            .ok_or_else(|| format!("{left:?}"))
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_damaged_stored_file_serves_nothing() {
    let fake = FakeMedia::start().await;
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    let path = app
        .dir
        .path()
        .join("media")
        .join(v["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 500);
    let body = resp.bytes().await.unwrap();
    assert!(!body.windows(4).any(|w| w == b"IHDR"), "no plaintext");
    app.stop().await;
}
