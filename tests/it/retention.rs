//! Retention: expired journal segments and model entries are deleted, the disk
//! space comes back, and nothing younger is touched.

use std::time::{Duration, SystemTime};

use wagate::util::clock::Clock;

use crate::support::{eventually, TestApp};

const DAY: u64 = 86400;

fn body(i: usize, ts: u64) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"2"}},"messages":[{{"id":"wamid.R{i}","from":"15550001","timestamp":"{ts}","type":"text","text":{{"body":"{}"}}}}],"statuses":[{{"id":"wamid.OUT{i}","status":"sent","timestamp":"{ts}","recipient_id":"15550001"}}]}}}}]}}]}}"#,
        "x".repeat(2000)
    )
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test]
async fn expired_segments_and_model_entries_are_deleted() {
    let tweak = |c: &mut wagate::Config| {
        c.segment_size = 64 * 1024;
        c.raw_ttl = Duration::from_secs(3600);
        c.event_ttl = Duration::from_secs(3600);
        c.dedup_ttl = Duration::from_secs(3650 * DAY);
    };
    let app = TestApp::spawn_with(tweak).await;
    let now = wagate::util::clock::now_micros() as u64 / 1_000_000;
    for i in 0..100 {
        app.deliver(body(i, now - 2 * DAY)).await;
    }
    app.wait_applied().await;
    let dir = app.stop().await;
    let journal = dir.path().join("journal");
    let before = dir_bytes(&journal);
    let segments_before = std::fs::read_dir(&journal).unwrap().count();
    assert!(segments_before >= 3, "{segments_before} segments");
    // Two days pass for the files too.
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * DAY);
    for e in std::fs::read_dir(&journal).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap();
        f.set_modified(two_days_ago).unwrap();
    }

    // The sweep runs at start.
    let app = TestApp::spawn_in(dir, tweak).await;
    app.deliver(body(1000, now)).await;
    app.wait_applied().await;
    let after = dir_bytes(&app.dir.path().join("journal"));
    assert!(after < before / 2, "journal {before} -> {after} bytes");
    let segments_after = std::fs::read_dir(app.dir.path().join("journal"))
        .unwrap()
        .count();
    assert!(segments_after <= 2, "{segments_after} segments left");

    // Old messages and statuses are gone, the new ones are there.
    let messages = app.get_json("/api/messages?limit=500").await;
    let ids: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["wamid.R1000"]);
    assert_eq!(app.get("/api/messages/wamid.OUT5").await.status(), 404);
    assert_eq!(
        app.get_json("/api/messages/wamid.OUT1000").await["current_status"],
        "sent"
    );
    // Deliveries in deleted segments are forgotten; the newest is kept.
    let deliveries = app.get_json("/api/deliveries?limit=500").await;
    let kept = deliveries["deliveries"].as_array().unwrap();
    assert!(kept.len() < 100, "{} deliveries kept", kept.len());
    for d in kept {
        let detail = app.get_json(&format!("/api/deliveries/{}", d["id"])).await;
        assert_eq!(
            detail["body_available"], true,
            "a kept delivery has its body"
        );
    }
    // The sweep's totals are in the metrics.
    let m = app.metrics().await;
    let deleted = |what: &str| deleted(&m, what);
    assert!(deleted("segments") >= 1 && deleted("bytes") > 0, "{m}");
    assert!(deleted("deliveries") >= 100 - kept.len() as u64, "{m}");
    assert!(deleted("messages") >= 1, "{m}");
    app.stop().await;
}

/// Deliveries of two messages and a status each, stamped `ts`.
fn pair_body(i: usize, ts: u64) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"2"}},"messages":[{{"id":"wamid.A{i}","from":"15550001","timestamp":"{ts}","type":"text","text":{{"body":"a"}}}},{{"id":"wamid.B{i}","from":"15550002","timestamp":"{ts}","type":"text","text":{{"body":"b"}}}}],"statuses":[{{"id":"wamid.OUT{i}","status":"sent","timestamp":"{ts}","recipient_id":"15550001"}}]}}}}]}}]}}"#
    )
}

/// A pass with more to delete than one slice (1,000 entries of each kind) runs in
/// slices between applier steps: it still deletes everything expired, segments
/// after their index entries, and nothing younger.
#[tokio::test]
async fn a_pass_larger_than_a_slice_deletes_everything_expired() {
    let ttl = Duration::from_secs(DAY);
    let app = TestApp::spawn_clocked(Clock::manual_now(), |c| {
        c.segment_size = 64 * 1024;
        (c.raw_ttl, c.event_ttl, c.dedup_ttl) = (ttl, ttl, ttl);
        c.forward.max_age = ttl;
    })
    .await;
    let now = app.clock().now_secs() as u64;
    let old: Vec<String> = (0..1200).map(|i| pair_body(i, now)).collect();
    for chunk in old.chunks(16) {
        futures_util::future::join_all(chunk.iter().map(|b| app.deliver(b.clone()))).await;
    }
    app.wait_applied().await;

    app.clock().advance(2 * ttl + Duration::from_secs(3600));
    let later = app.clock().now_secs() as u64;
    app.deliver(pair_body(5000, later)).await;
    let m = eventually("the pass to delete every expired message", async || {
        let m = app.metrics().await;
        (deleted(&m, "messages") == 2400 && deleted(&m, "statuses") == 1200)
            .then_some(m.clone())
            .ok_or(m)
    })
    .await;
    assert!(deleted(&m, "deliveries") > 1000, "{m}");
    assert!(deleted(&m, "segments") >= 2, "{m}");
    let list = app.get_json("/api/messages?limit=10").await;
    let ids: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids.iter().all(|id| id.ends_with("5000")), "{ids:?}");
    // What is still listed has its raw body: no index entry outlived its segment.
    let deliveries = app.get_json("/api/deliveries?limit=500").await;
    let kept = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(kept.len() as u64, 1201 - deleted(&m, "deliveries"), "{m}");
    for d in kept {
        let detail = app.get_json(&format!("/api/deliveries/{}", d["id"])).await;
        assert_eq!(detail["body_available"], true, "{detail}");
    }
    app.stop().await;
}

fn deleted(metrics: &str, what: &str) -> u64 {
    let prefix = format!("wagate_retention_deleted_total{{what=\"{what}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
