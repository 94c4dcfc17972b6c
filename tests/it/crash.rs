//! Crash test: a real child process is killed with SIGKILL while signed POSTs are in
//! flight; after a restart, every delivery that got a 200 is there, byte for byte.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{api_json, sign, API_TOKEN, SECRET};

pub struct Server {
    pub child: Child,
    pub base: String,
}

/// A failing test must not leave its server running (it would hold the test
/// harness's output open).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Server {
    start_with(dir, &[])
}

/// Starts the binary on `dir` with extra environment (which wins over the defaults);
/// waits until it listens.
pub fn start_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env("WAGATE_DATA_DIR", dir)
        .env("WAGATE_LISTEN", "127.0.0.1:0")
        .env("META_APP_SECRET", SECRET)
        .env("WAGATE_API_TOKEN", API_TOKEN)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn wagate");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("wagate exited before listening")
            .expect("read log");
        if let Some(rest) = line.split("wagate listening").nth(1) {
            let addr = rest
                .split("addr=")
                .nth(1)
                .and_then(|a| a.split_whitespace().next())
                .expect("addr in log")
                .to_string();
            break addr;
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

pub(crate) async fn wait_caught_up(client: &reqwest::Client, base: &str) -> serde_json::Value {
    for _ in 0..600 {
        let stats = api_json(client.get(format!("{base}/api/stats"))).await;
        if stats["applied"] == stats["journal_head"] {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("processing did not catch up after restart");
}

pub(crate) async fn all_accepted_bodies(client: &reqwest::Client, base: &str) -> HashSet<Vec<u8>> {
    let mut bodies = HashSet::new();
    let mut before = String::new();
    loop {
        let page = api_json(client.get(format!(
            "{base}/api/deliveries?verdict=accepted&limit=500{before}"
        )))
        .await;
        for d in page["deliveries"].as_array().unwrap() {
            let raw = client
                .get(format!("{base}/api/deliveries/{}/raw", d["id"]))
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert!(bodies.insert(raw.to_vec()), "a delivery is listed twice");
        }
        match page["next_before"].as_u64() {
            Some(b) => before = format!("&before={b}"),
            None => return bodies,
        }
    }
}

fn body(run: u32, worker: usize, n: usize) -> Vec<u8> {
    format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"102290129340398\",\"changes\":[{{\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"}},\"messages\":[{{\"from\":\"16505551234\",\"id\":\"wamid.CRASH{run}x{worker}x{n}\",\"timestamp\":\"{}\",\"text\":{{\"body\":\"crash test\"}},\"type\":\"text\"}}]}},\"field\":\"messages\"}}]}}]}}",
        wagate::util::clock::now_micros() / 1_000_000
    )
    .into_bytes()
}

/// One round: load, SIGKILL after `kill_after`, restart, check. Returns how many
/// deliveries were acknowledged.
pub async fn crash_round(dir: &std::path::Path, run: u32, kill_after: Duration) -> usize {
    let mut server = start(dir);
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
    tokio::time::sleep(kill_after).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");
    for w in workers {
        w.await.expect("worker");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    let mut server = start(dir);
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
    server.child.kill().ok();
    server.child.wait().ok();
    acked.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for (run, ms) in [(1, 300), (2, 450), (3, 150)] {
        total += crash_round(dir.path(), run, Duration::from_millis(ms)).await;
    }
    eprintln!("crash test: {total} acknowledged deliveries survived 3 SIGKILLs");
    assert!(total > 0, "no delivery was acknowledged at all");
}
