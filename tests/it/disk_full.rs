//! A full disk, for real: the data directory on a small tmpfs (mounting needs root,
//! so the test is `#[ignore]`d and `.ci/run` runs it). Filled to the last byte,
//! wagate answers 503 (Meta retries), never 200 for what it could not write; once
//! space is back it accepts again by itself; after a restart every delivery that
//! got a 200 is there, byte for byte. When the store (sled) fails on the full disk,
//! processing resumes once space is back, or wagate exits 75 and a restart applies
//! what was left.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::child::{self, all_accepted_bodies};
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

/// What became of a wagate whose store failed while the disk was full, once space
/// is back.
enum Outcome {
    /// Processing resumed by itself.
    Resumed,
    /// It exited, with this code.
    Exited(Option<i32>),
}

/// The child's exit code if it has exited.
fn exited(server: &mut child::Server) -> Option<Outcome> {
    let status = server.child.try_wait().expect("wait on wagate")?;
    Some(Outcome::Exited(status.code()))
}

async fn post(client: &reqwest::Client, base: &str, b: &[u8]) -> Option<u16> {
    let r = client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sign(b))
        .body(b.to_vec())
        .send()
        .await;
    r.ok().map(|r| r.status().as_u16())
}

/// Whether everything journaled is applied (false while the child cannot answer).
async fn caught_up(client: &reqwest::Client, base: &str) -> bool {
    let stats = client
        .get(format!("{base}/api/stats"))
        .bearer_auth(crate::support::API_TOKEN)
        .send()
        .await;
    let Ok(stats) = stats else { return false };
    let stats: serde_json::Value = stats.json().await.unwrap_or_default();
    stats["applied"] == stats["journal_head"] && !stats["applied"].is_null()
}

#[tokio::test]
#[ignore = "mounts a tmpfs: needs root (.ci/run runs it)"]
async fn full_disk_store_failures_resume_or_exit_75_and_a_restart_recovers() {
    let fs = Tmpfs::mount("48m");
    let data = tempfile::tempdir_in(fs.path()).unwrap();
    let env = [
        ("WAGATE_SEGMENT_SIZE", "1MiB"),
        ("WAGATE_STUCK_AFTER", "2s"),
        ("WAGATE_MIN_FREE", "4MiB"),
    ];
    let mut server = child::start_with(data.path(), &env);
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    for n in 0..20 {
        let b = body(n);
        assert_eq!(post(&client, &server.base, &b).await, Some(200));
        accepted.push(b);
    }
    child::wait_caught_up(&client, &server.base).await;

    // Full, several times over: a little room is made, and the journal (taking
    // deliveries) and the store (applying them) race for it until both fail.
    let reserves: Vec<PathBuf> = (0..6)
        .map(|i| {
            let path = fs.path().join(format!("reserve{i}"));
            std::fs::write(&path, vec![0u8; 512 << 10]).unwrap();
            path
        })
        .collect();
    let filler = fill(fs.path());
    let mut n = 20;
    for reserve in &reserves {
        std::fs::remove_file(reserve).unwrap();
        let mut refused = 0;
        while refused < 5 && n < 20_000 {
            let b = body(n);
            n += 1;
            match post(&client, &server.base, &b).await {
                Some(200) => accepted.push(b),
                Some(503) => refused += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!(refused, 5, "a full disk never gave a 503");
    }
    let failures = client
        .get(format!("{}/metrics", server.base))
        .bearer_auth(crate::support::API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures = failures
        .lines()
        .find(|l| l.starts_with("wagate_apply_failures_total "))
        .unwrap_or("wagate_apply_failures_total ?")
        .to_string();
    eprintln!(
        "full disk: {} deliveries accepted, {failures}",
        accepted.len()
    );

    // Space comes back: a new delivery is taken, and then either processing resumes
    // by itself or wagate gives up with 75 (never stays up and stuck).
    std::fs::remove_file(&filler).unwrap();
    let base = server.base.clone();
    let outcome = eventually("wagate to take a delivery or exit", async || {
        if let Some(o) = exited(&mut server) {
            return Ok(o);
        }
        let b = body(n);
        n += 1;
        match post(&client, &base, &b).await {
            Some(200) => {
                accepted.push(b);
                Ok(Outcome::Resumed)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let outcome = match outcome {
        Outcome::Resumed => {
            eventually("processing to resume or wagate to exit", async || {
                if let Some(o) = exited(&mut server) {
                    return Some(o);
                }
                caught_up(&client, &base).await.then_some(Outcome::Resumed)
            })
            .await
        }
        exited => exited,
    };
    let server = match outcome {
        Outcome::Resumed => {
            eprintln!("full disk: processing resumed by itself");
            server
        }
        Outcome::Exited(code) => {
            assert_eq!(
                code,
                Some(75),
                "wagate exits 75 (EX_TEMPFAIL) for a restart"
            );
            eprintln!("full disk: wagate exited 75; restarting it");
            drop(server);
            child::start_with(data.path(), &env)
        }
    };
    // Every delivery that got a 200 is there and applied.
    child::wait_caught_up(&client, &server.base).await;
    let stored = all_accepted_bodies(&client, &server.base).await;
    for b in &accepted {
        assert!(stored.contains(b), "a delivery answered 200 is missing");
    }
    let health = client.get(format!("{}/healthz", server.base)).send().await;
    assert_eq!(health.unwrap().status(), 200);
}
