//! The event bus against a real `nats-server -js` (Debian's package; `.ci/run`
//! installs it): two wagate processes (the real binary), each with its own data
//! dir, publishing to one stream. The conformance corpus posted to both (Meta's
//! retry landing on the other instance) is in the stream exactly once; then
//! nats-server is killed mid-stream and started again on its port and store, and
//! nothing is missing or doubled.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::child::{start_with, wait_caught_up, Server};
use crate::support::forward::messages_body_from;
use crate::support::nats::{read_all, NatsServer};
use crate::support::{api_json, corpus, eventually, sign};

/// The `Nats-Msg-Id` of every event the corpus holds (each item's stable event id).
fn corpus_event_ids(cases: &[(String, Vec<u8>, String)]) -> BTreeSet<String> {
    let all: Vec<u32> = (0..100_000).collect();
    cases
        .iter()
        .filter_map(|(_, body, _)| wagate::events::reshape::events_for(body, &all, 0, 0).ok())
        .flatten()
        .map(|ev| ev.id)
        .collect()
}

fn wagate(dir: &std::path::Path, nats: &str) -> Server {
    start_with(
        dir,
        &[
            ("WAGATE_NATS_URL", nats),
            ("WAGATE_FORWARD_TIMEOUT", "2s"),
            ("WAGATE_FORWARD_BACKOFF_BASE", "20ms"),
            ("WAGATE_FORWARD_BACKOFF_CAP", "300ms"),
            // The corpus is years old: kept, and not taken for stale replays.
            ("WAGATE_DEDUP_TTL", "3650d"),
            ("WAGATE_EVENT_TTL", "3650d"),
            ("WAGATE_RAW_TTL", "3650d"),
        ],
    )
}

async fn post(client: &reqwest::Client, s: &Server, body: &[u8], sig: &str) {
    let resp = client
        .post(format!("{}/webhook", s.base))
        .header("x-hub-signature-256", sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Waits until the instance's bus target has nothing queued; its state.
/// The bus target as `/api/forward/targets` shows it.
async fn bus_target(client: &reqwest::Client, s: &Server) -> serde_json::Value {
    let all = api_json(client.get(format!("{}/api/forward/targets", s.base))).await;
    all["targets"][0].clone()
}

async fn drained(client: &reqwest::Client, s: &Server) -> serde_json::Value {
    wait_caught_up(client, &s.base).await;
    eventually("the bus target to drain", async || {
        let t = bus_target(client, s).await;
        if t["id"] == "nats" && t["queued"] == 0 {
            Ok(t)
        } else {
            Err(t)
        }
    })
    .await
}

fn doubled(ids: &BTreeMap<String, u32>) -> Vec<(&String, &u32)> {
    ids.iter().filter(|(_, n)| **n != 1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (Debian package); run by .ci/run"]
async fn nats_two_instances_one_stream_each_item_once_across_a_server_kill() {
    let mut nats = NatsServer::start().await;
    let url = nats.url();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (w1, w2) = (wagate(d1.path(), &url), wagate(d2.path(), &url));
    let client = reqwest::Client::new();

    // The corpus to instance 1, then again to instance 2.
    let cases = corpus();
    for w in [&w1, &w2] {
        for (_, body, sig) in &cases {
            post(&client, w, body, sig).await;
        }
    }
    let (t1, t2) = (drained(&client, &w1).await, drained(&client, &w2).await);
    let expected = corpus_event_ids(&cases);
    let (ids, subjects) = read_all(&url, "WAGATE").await;
    assert_eq!(
        doubled(&ids),
        Vec::<(&String, &u32)>::new(),
        "each item once"
    );
    let got: BTreeSet<String> = ids.keys().cloned().collect();
    assert_eq!(got, expected, "every corpus event, nothing else");
    assert!(
        subjects.keys().all(|s| s.starts_with("wagate.")),
        "{subjects:?}"
    );
    assert!(
        t2["duplicates"].as_u64().unwrap() > 0,
        "instance 2's were duplicates: {t2}"
    );
    eprintln!(
        "nats: corpus {} events once in the stream; instance 1 {t1}, instance 2 {t2}; subjects {subjects:?}",
        expected.len()
    );

    // New deliveries to both instances; the server is killed (SIGKILL) while they
    // come in and are published, and started again on the same port and store.
    const N: usize = 300;
    let wamids: Vec<String> = (0..N).map(|i| format!("wamid.NATSKILL{i:04}")).collect();
    for (i, id) in wamids.iter().enumerate() {
        if i == N / 3 {
            nats.stop_now();
        }
        if i == 2 * N / 3 {
            // Started again only once the outage was felt (a publish failed), however
            // far behind processing runs (it yields the CPU to the webhooks).
            eventually("a publish to fail while the server is down", async || {
                let failures = |t: serde_json::Value| t["failures"].as_u64().unwrap_or(0);
                let (a, b) = (
                    bus_target(&client, &w1).await,
                    bus_target(&client, &w2).await,
                );
                failures(a) + failures(b) > 0
            })
            .await;
            nats.run().await;
        }
        let body = messages_body_from("106540352242922", &format!("1650555{:04}", i % 7), &[id]);
        let sig = sign(&body);
        post(&client, &w1, &body, &sig).await;
        post(&client, &w2, &body, &sig).await;
    }
    let (t1, t2) = (drained(&client, &w1).await, drained(&client, &w2).await);
    let (ids, _) = read_all(&url, "WAGATE").await;
    assert_eq!(
        doubled(&ids),
        Vec::<(&String, &u32)>::new(),
        "each item once"
    );
    assert_eq!(ids.len(), expected.len() + N, "nothing missing");
    assert!(expected.iter().all(|id| ids.contains_key(id)));
    let failures = t1["failures"].as_u64().unwrap() + t2["failures"].as_u64().unwrap();
    assert!(failures > 0, "the outage was felt: {t1} {t2}");
    eprintln!(
        "nats after a server kill: {} messages, each once; instance 1 {t1}, instance 2 {t2}",
        ids.len()
    );
}
