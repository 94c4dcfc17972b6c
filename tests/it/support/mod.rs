//! Everything the tests share: wagate started in-process on 127.0.0.1:0 with its
//! data in a temp dir (`TestApp`), the test configuration and secrets, signing, the
//! corpus; the fakes and harnesses in the submodules; the one polling helper,
//! `eventually`. Test files hold tests only and import what they use from here.

// Each test file uses its own part of this.
#![allow(dead_code)]

pub mod bot;
pub mod child;
pub mod clamd;
pub mod dashboard;
pub mod erase;
pub mod fake_graph;
pub mod fake_media;
pub mod fake_target;
pub mod forward;
pub mod garage;
pub mod media;
pub mod nats;
pub mod pebble;
pub mod scan;
pub mod send;
pub mod tls;
pub mod tmpfs;
mod wait;

pub use wait::{eventually, stays, DEADLINE};

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;
use wagate::util::clock::Clock;
use wagate::web::WebState;
use wagate::{App, Config};

pub const SECRET: &str = "test_app_secret_do_not_use";
pub const VERIFY_TOKEN: &str = "verify-token-for-tests";
pub const API_TOKEN: &str = "api-token-for-tests-0123456789";

/// A horizon (dedup, retention) that keeps the years-old corpus inside the window.
pub const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 86400);

pub fn data_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub fn sign(body: &[u8]) -> String {
    wagate::events::signature::sign(SECRET.as_bytes(), body)
}

pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    config.app_secrets = vec![wagate::config::Secret::new(SECRET)];
    config.verify_token = Some(wagate::config::Secret::new(VERIFY_TOKEN));
    config.api_token = Some(wagate::config::Secret::new(API_TOKEN));
    // The corpus is years old: retention is tested on its own (retention.rs).
    config.raw_ttl = TEN_YEARS;
    config.event_ttl = config.raw_ttl;
    config
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: WebState,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), wagate::ServeError>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::spawn_in(dir, tweak).await
    }

    /// Starts on an existing data directory (a restart).
    pub async fn spawn_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(dir, Clock::system(), tweak).await
    }

    /// Starts on a clock the test moves by hand (`app.clock().advance(..)`): time
    /// passes only when the test says so.
    pub async fn spawn_clocked(clock: Clock, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::spawn_on(dir, clock, tweak).await
    }

    /// Starts on `dir` with `clock`.
    pub async fn spawn_on(dir: TempDir, clock: Clock, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = App::start_with_clock(config, clock)
            .await
            .expect("app starts");
        let state = app.state.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(wagate::serve(listener, app, async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            state,
            dir,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// The clock the app reads and waits on.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Graceful shutdown; hands back the data directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("served to the end");
        }
        self.dir
    }

    /// Waits for the server to stop by itself (no shutdown asked); how it ended, and
    /// the data directory for a restart.
    pub async fn exited(mut self) -> (Result<(), wagate::ServeError>, TempDir) {
        let server = self.server.take().expect("server running");
        let ended = tokio::time::timeout(DEADLINE, server)
            .await
            .expect("the server stopped by itself in time")
            .expect("server task");
        (ended, self.dir)
    }

    pub async fn post_webhook(
        &self,
        body: impl Into<Vec<u8>>,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .body(body.into());
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send().await.expect("POST /webhook")
    }

    /// POSTs `body` signed with the test secret; asserts 200.
    pub async fn deliver(&self, body: impl Into<Vec<u8>>) {
        let body = body.into();
        let sig = sign(&body);
        let resp = self.post_webhook(body, Some(&sig)).await;
        assert_eq!(resp.status(), 200, "delivery accepted");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("GET")
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }

    /// POSTs to an API path with the bearer token; the JSON answer.
    pub async fn post_json(&self, path: &str) -> serde_json::Value {
        api_json(self.client.post(format!("{}{}", self.base, path))).await
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self.get(path).await;
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.expect("JSON")
    }

    /// Waits (on the applier's progress channel, no polling) until everything
    /// journaled so far has been applied.
    pub async fn wait_applied(&self) {
        let mut applied = self.state.applied.clone();
        let target = self.state.journal.heads().borrow().clone();
        let wait = async {
            loop {
                if applied.borrow_and_update().overall(&target) >= target.last_seq {
                    return;
                }
                applied.changed().await.expect("applier alive");
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .expect("processing caught up in time");
    }
}

/// Sends `req` with the API bearer token and reads the JSON answer (for servers
/// that are child processes, where there is no `TestApp`).
pub async fn api_json(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("API request")
        .json()
        .await
        .expect("API JSON")
}

/// POSTs a small signed delivery to `{base}/webhook` with `client` (e.g. over HTTPS);
/// the status.
pub async fn post_signed_webhook(client: &reqwest::Client, base: &str) -> reqwest::StatusCode {
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec();
    client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .expect("POST /webhook")
        .status()
}

/// Every payload of the conformance corpus with its manifest signature.
pub fn corpus() -> Vec<(String, Vec<u8>, String)> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_path("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let file = c["file"].as_str().expect("file").to_string();
            let body = std::fs::read(data_path(&format!("payloads/{file}"))).expect("payload");
            let sig = c["x_hub_signature_256_with_test_secret"]
                .as_str()
                .expect("sig")
                .to_string();
            (file, body, sig)
        })
        .collect()
}
