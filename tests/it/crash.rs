//! Crash test: a real child process is killed with SIGKILL while signed POSTs are in
//! flight; after a restart, every delivery that got a 200 is there, byte for byte.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::child::{all_accepted_bodies, start, wait_caught_up};
use crate::support::{eventually, sign};

fn body(run: u32, worker: usize, n: usize) -> Vec<u8> {
    format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"102290129340398\",\"changes\":[{{\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"}},\"messages\":[{{\"from\":\"16505551234\",\"id\":\"wamid.CRASH{run}x{worker}x{n}\",\"timestamp\":\"{}\",\"text\":{{\"body\":\"crash test\"}},\"type\":\"text\"}}]}},\"field\":\"messages\"}}]}}]}}",
        wagate::util::clock::now_micros() / 1_000_000
    )
    .into_bytes()
}

/// One round: load, SIGKILL once `kill_after` deliveries were acknowledged (with
/// more in flight), restart, check. Returns how many deliveries were acknowledged.
async fn crash_round(dir: &std::path::Path, run: u32, kill_after: usize) -> usize {
    let server = start(dir);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..16 {
        let (client, base, acked) = (client.clone(), server.base.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            for n in 0.. {
                let body = body(run, w, n);
                let sig = sign(&body);
                let resp = client
                    .post(format!("{base}/webhook"))
                    .header("x-hub-signature-256", sig)
                    .body(body.clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(body),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    eventually(
        &format!("{kill_after} acknowledged deliveries"),
        async || acked.lock().unwrap().len() >= kill_after,
    )
    .await;
    server.kill();
    for w in workers {
        w.await.expect("worker");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    let server = start(dir);
    let stats = wait_caught_up(&client, &server.base).await;
    // Each body carries one unique message: every item is counted exactly once, even
    // those journaled but not yet applied (or not yet answered) at the kill.
    assert_eq!(stats["items_duplicate"], 0, "{stats}");
    assert_eq!(stats["messages"], stats["deliveries_accepted"], "{stats}");
    let kept = all_accepted_bodies(&client, &server.base).await;
    let missing = acked.iter().filter(|b| !kept.contains(*b)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged deliveries were lost",
        acked.len()
    );
    server.kill();
    acked.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for (run, kill_after) in [(1, 200), (2, 300), (3, 100)] {
        total += crash_round(dir.path(), run, kill_after).await;
    }
    eprintln!("crash test: {total} acknowledged deliveries survived 3 SIGKILLs");
}
