//! Forwarding across SIGKILL: the real binary is killed while it forwards; after
//! each restart every event is delivered, and none twice except the one in flight
//! at the kill (at least once).

use std::collections::HashMap;
use std::time::Duration;

use crate::crash::start_with;
use crate::fake_target::{Answer, FakeTarget, Got};
use crate::forward::{messages_body, PHONE, TARGET_SECRET};
use crate::support::sign;

fn counts(got: &[Got]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for g in got {
        for id in g.message_ids() {
            *c.entry(id).or_default() += 1;
        }
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_then_every_event_once_but_the_one_in_flight() {
    const N: usize = 120;
    let t = FakeTarget::start(TARGET_SECRET).await;
    // Slow enough answers that a kill lands mid-queue (and often mid-request).
    t.fallback(Some(Answer::status(200).delayed(Duration::from_millis(10))));
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WAGATE_FORWARD_URL", t.url.as_str()),
        ("WAGATE_FORWARD_SECRET", TARGET_SECRET),
        ("WAGATE_FORWARD_BACKOFF_BASE", "10ms"),
        ("WAGATE_FORWARD_BACKOFF_CAP", "50ms"),
    ];
    let client = reqwest::Client::new();
    let ids: Vec<String> = (0..N).map(|i| format!("wamid.FWDCRASH{i:04}")).collect();
    let mut server = start_with(dir.path(), &env);
    for id in &ids {
        let body = messages_body(PHONE, &[id]);
        let resp = client
            .post(format!("{}/webhook", server.base))
            .header("x-hub-signature-256", sign(&body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let mut kills = 0;
    for at in [N / 4, N / 2] {
        t.wait_for(at).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reap");
        kills += 1;
        server = start_with(dir.path(), &env);
    }
    let got = t
        .wait_until("every event", |got| {
            ids.iter().all(|id| counts(got).contains_key(id))
        })
        .await;
    assert!(got.iter().all(|g| g.signed));
    let c = counts(&got);
    let twice: Vec<_> = c.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= kills && twice.iter().all(|(_, n)| **n == 2),
        "only the entry in flight at each kill may come twice: {twice:?}"
    );
    // In order: the first arrival of each event follows the queue.
    let mut first: Vec<&String> = Vec::new();
    for g in &got {
        for id in g.message_ids() {
            let id = ids.iter().find(|x| **x == id).unwrap();
            if !first.contains(&id) {
                first.push(id);
            }
        }
    }
    assert_eq!(first, ids.iter().collect::<Vec<_>>(), "delivered in order");
    eprintln!(
        "forward crash test: {N} events, {kills} SIGKILLs, {} requests, {} sent twice",
        got.len(),
        twice.len()
    );
    drop(server);
}
