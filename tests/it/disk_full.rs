//! A full disk, for real: the data directory on a small tmpfs (mounting needs root,
//! so the test is `#[ignore]`d and `.ci/run` runs it). Filled to the last byte,
//! wagate answers 503 (Meta retries), never 200 for what it could not write; once
//! space is back it accepts again by itself; after a restart every delivery that
//! got a 200 is there, byte for byte.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::child::all_accepted_bodies;
use crate::support::tmpfs::Tmpfs;
use crate::support::{eventually, sign, TestApp};

/// Writes a filler file until the filesystem is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    loop {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    // The last bytes too: a page at a time, then byte by byte.
    for size in [4096, 1] {
        while f.write_all(&block[..size]).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

fn body(n: usize) -> Vec<u8> {
    format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"1\",\"changes\":[{{\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"}},\"messages\":[{{\"from\":\"16505551234\",\"id\":\"wamid.DISKFULL{n}\",\"timestamp\":\"{}\",\"text\":{{\"body\":\"{}\"}},\"type\":\"text\"}}]}},\"field\":\"messages\"}}]}}]}}",
        wagate::util::clock::now_micros() / 1_000_000,
        "x".repeat(2000)
    )
    .into_bytes()
}

#[tokio::test]
#[ignore = "mounts a tmpfs: needs root (.ci/run runs it)"]
async fn full_disk_answers_503_never_200_and_recovers() {
    let fs = Tmpfs::mount("48m");
    let data = tempfile::tempdir_in(fs.path()).unwrap();
    let app = TestApp::spawn_in(data, |c| c.segment_size = 1 << 20).await;
    let mut accepted = Vec::new();
    for n in 0..20 {
        let b = body(n);
        let r = app.post_webhook(b.clone(), Some(&sign(&b))).await;
        assert_eq!(r.status(), 200);
        accepted.push(b);
    }
    app.wait_applied().await;
    let filler = fill(fs.path());

    // Full: until the journal needs a byte it does not have, deliveries may still
    // fit in what its segment already has; after that, 503 and only 503.
    let mut refused = 0;
    for n in 20..2000 {
        let b = body(n);
        let r = app.post_webhook(b.clone(), Some(&sign(&b))).await;
        match r.status().as_u16() {
            200 => accepted.push(b),
            503 => {
                refused += 1;
                if refused == 20 {
                    break;
                }
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(refused, 20, "a full disk never gave a 503");
    eprintln!(
        "disk full: {} accepted before the first 503s, then {refused} refused",
        accepted.len() - 20
    );
    let m = app.metrics().await;
    assert!(m.contains("\nwagate_disk_low 1\n"), "{m}");
    let failures = m
        .lines()
        .find_map(|l| l.strip_prefix("wagate_journal_failures_total "))
        .unwrap();
    assert!(failures.parse::<u64>().unwrap() >= 20, "{failures}");

    // Space comes back: accepted again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    let mut n = 5000;
    let b = eventually("a delivery accepted again", async || {
        let b = body(n);
        n += 1;
        let r = app.post_webhook(b.clone(), Some(&sign(&b))).await;
        (r.status() == 200).then_some(b).ok_or(r.status())
    })
    .await;
    accepted.push(b);
    for _ in 0..10 {
        let b = body(n);
        n += 1;
        let r = app.post_webhook(b.clone(), Some(&sign(&b))).await;
        assert_eq!(r.status(), 200, "accepted again once space is back");
        accepted.push(b);
    }

    // After a restart every 200 is there, byte for byte.
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |c| c.segment_size = 1 << 20).await;
    app.wait_applied().await;
    let stored = all_accepted_bodies(&app.client, &app.base).await;
    for b in &accepted {
        assert!(stored.contains(b), "a delivery answered 200 is missing");
    }
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["applied"], stats["journal_head"], "{stats}");
    app.stop().await;
}
