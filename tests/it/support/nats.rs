//! Debian's `nats-server` with JetStream as a child process (the bus tests): on a
//! free 127.0.0.1 port with its store in a temp dir; stopped and started again on
//! the same port and store; a reader of the stream that counts messages by
//! `Nats-Msg-Id`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tempfile::TempDir;

use super::eventually;
use super::pebble::free_port;

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    /// The JetStream store (`-sd`), kept across a restart.
    pub store: TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn binary() -> PathBuf {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("nats-server is not installed: apt-get install nats-server (or run .ci/run)")
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        let mut s = NatsServer {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
        };
        s.run().await;
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and store; waits until JetStream answers.
    pub async fn run(&mut self) {
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let url = self.url();
        eventually("nats-server with JetStream to answer", async || {
            let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
            client
                .request("$JS.API.INFO", "".into())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
    }

    /// SIGKILL, and reaped.
    pub fn stop_now(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every message of `stream`, read with a durable pull consumer (acked), counted by
/// `Nats-Msg-Id`, with the subjects they came on.
pub async fn read_all(url: &str, stream: &str) -> (BTreeMap<String, u32>, BTreeMap<String, u32>) {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let mut s = js.get_stream(stream).await.unwrap();
    let total = s.info().await.unwrap().state.messages;
    let name = format!("reader{}", rand::random::<u32>());
    let c = s
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let (mut ids, mut subjects) = (BTreeMap::new(), BTreeMap::new());
    let mut read = 0;
    let mut messages = c.messages().await.unwrap();
    while read < total {
        let m = messages.next().await.unwrap().unwrap();
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        *ids.entry(id).or_default() += 1;
        *subjects.entry(m.subject.to_string()).or_default() += 1;
        m.ack().await.unwrap();
        read += 1;
    }
    (ids, subjects)
}
