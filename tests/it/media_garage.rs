//! Media in object storage (`WAGATE_MEDIA_STORE=s3://...`) against a real
//! S3-compatible server, Garage (`support/garage.rs`), started by each test on free
//! ports. `#[ignore]`: run by `.ci/run` (`cargo test --test it garage -- --ignored`).

use std::time::Duration;

use sha2::{Digest, Sha256};
use wagate::util::clock::Clock;

use crate::support::child::start_with;
use crate::support::fake_media::{png, FakeMedia, MEDIA_ID};
use crate::support::garage::Garage;
use crate::support::media::{payload, setup, wait_state};
use crate::support::{api_json, eventually, stays, TestApp};

/// The objects under `prefix` (a blocking client call, off the test's runtime).
async fn objects(g: &Garage, prefix: &str) -> Vec<String> {
    let store = g.store(prefix);
    tokio::task::spawn_blocking(move || {
        let o = wagate::media::objects::Objects::open(&store).unwrap();
        o.list().unwrap().into_iter().map(|(n, _)| n).collect()
    })
    .await
    .unwrap()
}

/// The raw bytes of one object.
async fn object_bytes(g: &Garage, prefix: &str, name: &str) -> Vec<u8> {
    let (store, name) = (g.store(prefix), name.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let o = wagate::media::objects::Objects::open(&store).unwrap();
        let mut out = Vec::new();
        o.read(&name).unwrap().read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs garage (cargo install garage); run by .ci/run"]
async fn garage_round_trip_of_the_conformance_png() {
    let g = Garage::start().await;
    let fake = FakeMedia::start().await;
    let (f, store) = (fake.clone(), g.store("round-trip"));
    let app = TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.media.store = Some(store);
    })
    .await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    assert_eq!(v["size"], 73);
    assert_eq!(
        v["sha256"],
        "d96aec5ea00346cbbcfa770fe11ba8c584c8ad093cadf72a755ff8a325560871"
    );
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png());
    // In the bucket, under its name, ciphertext only; nothing on the local disk.
    let names = objects(&g, "round-trip").await;
    assert_eq!(names, vec![v["file"].as_str().unwrap().to_string()]);
    let raw = object_bytes(&g, "round-trip", &names[0]).await;
    assert!(raw.starts_with(b"WAGM"), "wagate's encrypted format");
    assert!(!raw.windows(4).any(|w| w == b"IHDR"), "no plaintext");
    assert!(!app.dir.path().join("media").exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs garage (cargo install garage); run by .ci/run"]
async fn garage_expired_ttl_deletes_the_object() {
    let g = Garage::start().await;
    let fake = FakeMedia::start().await;
    let (f, store) = (fake.clone(), g.store("ttl"));
    let app = TestApp::spawn_clocked(Clock::manual_now(), move |c| {
        setup(c, &f);
        c.media.store = Some(store);
        c.media.ttl = Duration::from_secs(86400);
        c.media.sweep_every = Duration::from_secs(3600);
    })
    .await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    wait_state(&app, "stored").await;
    assert_eq!(objects(&g, "ttl").await.len(), 1);
    app.clock().advance(Duration::from_secs(86400 + 3600));
    let v = wait_state(&app, "deleted").await;
    assert!(v["deleted_at"].is_string());
    eventually("the object to be deleted", async || {
        objects(&g, "ttl").await.is_empty()
    })
    .await;
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs garage (cargo install garage); run by .ci/run"]
async fn garage_refusing_writes_keeps_the_job_retrying_with_a_clear_error() {
    let g = Garage::start().await;
    let fake = FakeMedia::start().await;
    let secret = "0".repeat(64);
    let (f, store) = (
        fake.clone(),
        g.store_with_key("refused", "GK000000000000000000000000", &secret),
    );
    let app = TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.media.store = Some(store);
    })
    .await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    app.wait_applied().await;
    let v = eventually("a few failed attempts", async || {
        let v = app.get_json(&format!("/api/media/{MEDIA_ID}")).await;
        (v["attempts"].as_u64().unwrap_or(0) >= 3)
            .then_some(v.clone())
            .ok_or(v)
    })
    .await;
    assert_eq!(v["state"], "pending", "{v}");
    let error = v["last_error"].as_str().unwrap();
    assert!(
        error.contains("media store s3://wagate/refused: upload failed"),
        "{error}"
    );
    assert!(error.contains("403"), "{error}");
    assert!(objects(&g, "refused").await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs garage (cargo install garage); run by .ci/run"]
async fn garage_orphan_left_between_upload_and_record_is_swept_at_restart() {
    let g = Garage::start().await;
    let fake = FakeMedia::start().await;
    let (f, store) = (fake.clone(), g.store("orphan"));
    let tweak = move |c: &mut wagate::Config| {
        setup(c, &f);
        c.media.store = Some(store.clone());
    };
    let app = TestApp::spawn_with(tweak.clone()).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "stored").await;
    let known = v["file"].as_str().unwrap().to_string();
    let dir = app.stop().await;
    // What a crash after the upload and before its journal record leaves: a
    // complete object, encrypted with this instance's keys, that no entry names.
    let mut config = crate::support::test_config(dir.path());
    tweak(&mut config);
    let orphan = tokio::task::spawn_blocking(move || {
        let files = wagate::media::open(&config).unwrap();
        files.store(&png()[..], None, 1 << 20).unwrap().name
    })
    .await
    .unwrap();
    let mut both = objects(&g, "orphan").await;
    both.sort();
    let mut want = vec![known.clone(), orphan];
    want.sort();
    assert_eq!(both, want);
    let app = TestApp::spawn_in(dir, tweak).await;
    eventually("the start sweep to remove the orphan", async || {
        let left = objects(&g, "orphan").await;
        (left == vec![known.clone()])
            .then_some(())
            .ok_or(format!("{left:?}"))
    })
    .await;
    let resp = app.get(&format!("/api/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png());
    app.stop().await;
}

/// The process's peak resident memory (`VmHWM`), bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The conformance webhook as a document (whose cap, 100 MB, allows 50 MB), with
/// no URL (the lookup gives it, with the file's size and digest).
fn document_payload() -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&payload(None, 10)).unwrap();
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    let mut doc = m["image"].take();
    doc.as_object_mut().unwrap().remove("sha256");
    doc["mime_type"] = "application/octet-stream".into();
    doc["filename"] = "big.bin".into();
    m.as_object_mut().unwrap().remove("image");
    m["type"] = "document".into();
    m["document"] = doc;
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs garage (cargo install garage); run by .ci/run"]
async fn garage_50_mb_goes_up_and_down_with_flat_memory() {
    const SIZE: usize = 50 << 20;
    let g = Garage::start().await;
    let fake = FakeMedia::start().await;
    let file: Vec<u8> = (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let sha = hex::encode(Sha256::digest(&file));
    {
        let mut inner = fake.lock();
        inner.lookup_sha_hex = sha.clone();
        inner.lookup_size = Some(SIZE as u64);
        inner.file = file;
    }
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = g
        .env(&g.key_id, &g.secret)
        .into_iter()
        .chain([
            ("WAGATE_MEDIA_STORE".into(), "s3://wagate/big".into()),
            ("WHATSAPP_TOKEN".into(), crate::support::media::TOKEN.into()),
            ("WAGATE_GRAPH_URL".into(), fake.base.clone()),
            ("WAGATE_MEDIA_HOSTS".into(), fake.host_port()),
        ])
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = start_with(dir.path(), &env);
    let pid = server.child.id();
    let client = reqwest::Client::new();
    let before = peak_rss(pid);
    let body = document_payload();
    let resp = client
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", crate::support::sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let media = |c: &reqwest::Client| {
        c.get(format!("{}/api/media/{MEDIA_ID}", server.base))
            .bearer_auth(crate::support::API_TOKEN)
    };
    let v = eventually("the 50 MB file to be stored", async || {
        let v = api_json(media(&client)).await;
        (v["state"] == "stored").then_some(v.clone()).ok_or(v)
    })
    .await;
    assert_eq!(v["size"], SIZE as u64);
    assert_eq!(v["sha256"], sha.as_str());
    let after_upload = peak_rss(pid);
    // Read back through the API, streamed and hashed here as it comes.
    let mut resp = client
        .get(format!("{}/api/media/{MEDIA_ID}/content", server.base))
        .bearer_auth(crate::support::API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (mut hash, mut got) = (Sha256::new(), 0usize);
    while let Some(chunk) = resp.chunk().await.unwrap() {
        got += chunk.len();
        hash.update(&chunk);
    }
    assert_eq!(got, SIZE);
    assert_eq!(hex::encode(hash.finalize()), sha);
    let after_read = peak_rss(pid);
    let grew = after_read.saturating_sub(before);
    println!(
        "peak RSS: {} MiB at start, {} MiB after the upload, {} MiB after the read back",
        before >> 20,
        after_upload >> 20,
        after_read >> 20
    );
    // Holding the file whole would take 50 MiB at least (more, encrypted): the
    // streamed path holds a few parts.
    assert!(grew < 32 << 20, "peak RSS grew by {} MiB", grew >> 20);
    stays("the job stays stored", async || {
        api_json(media(&client)).await["state"] == "stored"
    })
    .await;
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs garage (cargo install garage); run by .ci/run"]
async fn garage_check_probes_the_store_and_names_what_failed() {
    let g = Garage::start().await;
    let dir = tempfile::tempdir().unwrap();
    let check = |key_id: &str, secret: &str| {
        crate::support::child::wagate()
            .env("META_APP_SECRET", crate::support::SECRET)
            .env("WAGATE_DATA_DIR", dir.path())
            .env("WAGATE_MEDIA_STORE", "s3://wagate/check")
            .envs(g.env(key_id, secret))
            .arg("check")
            .output()
            .unwrap()
    };
    let ok = check(&g.key_id, &g.secret);
    let said = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{said}");
    assert!(
        said.contains(
            "media store s3://wagate/check: a probe object was written, read back and deleted"
        ),
        "{said}"
    );
    assert!(objects(&g, "check").await.is_empty(), "probe deleted");
    let bad = check("GK000000000000000000000000", &"0".repeat(64));
    let said = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "WAGATE_MEDIA_STORE: media store s3://wagate/check: writing a probe object failed"
        ),
        "{said}"
    );
}
