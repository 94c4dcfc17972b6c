//! wagate as a child process (the real binary): its offline commands, and the
//! server for the tests that kill it with SIGKILL or configure it from the
//! environment; reading it back over its API.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::{api_json, eventually, API_TOKEN, SECRET};

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Every line the child logged (its standard output), as it comes.
    pub log: Arc<Mutex<Vec<String>>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

/// A failing test must not leave its server running (it would hold the test
/// harness's output open).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGKILL, and reaped.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGKILL, reaped, and its whole log once the pipe is drained.
    pub fn kill_and_log(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        if let Some(t) = self.drain.take() {
            t.join().expect("log reader");
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

/// The binary, for its offline commands (`check`, `verify-signature`...), with no
/// `RUST_LOG` from the test's environment.
pub fn wagate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wagate"));
    c.env_remove("RUST_LOG");
    c
}

/// Starts the binary on `dir` with the test secrets; waits until it listens.
pub fn start(dir: &Path) -> Server {
    start_with(dir, &[])
}

/// Starts the binary on `dir` with extra environment (which wins over the defaults);
/// waits until it listens.
pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
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
    let log = Arc::new(Mutex::new(Vec::new()));
    // The log says where it listens (port 0 picks one).
    let addr = loop {
        let line = lines
            .next()
            .expect("wagate exited before listening")
            .expect("read log");
        log.lock().unwrap().push(line.clone());
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
    let kept = log.clone();
    let drain = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        base: format!("http://{addr}"),
        log,
        drain: Some(drain),
    }
}

/// Waits until everything journaled has been applied (the child is another process:
/// its stats are polled); the stats.
pub async fn wait_caught_up(client: &reqwest::Client, base: &str) -> serde_json::Value {
    eventually("processing to catch up", async || {
        let stats = api_json(client.get(format!("{base}/api/stats"))).await;
        if stats["applied"] == stats["journal_head"] {
            Ok(stats)
        } else {
            Err(stats)
        }
    })
    .await
}

/// Every accepted delivery's raw body, through the paged API.
pub async fn all_accepted_bodies(client: &reqwest::Client, base: &str) -> HashSet<Vec<u8>> {
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
