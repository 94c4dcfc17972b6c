//! Forwarding across SIGKILL: the real binary is killed while it forwards (several
//! entries in flight, outcomes journaled in the background); after each restart
//! every event is delivered, in order per contact, and none twice except the
//! entries whose outcome was not yet synced at a kill: at most
//! `WAGATE_FORWARD_CONCURRENCY + MAX_UNSYNCED` per kill.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::child::start_with;
use crate::support::fake_target::{Answer, FakeTarget, Got};
use crate::support::forward::{messages_body_from, PHONE, TARGET_SECRET};
use crate::support::sign;

const CONTACTS: usize = 3;
const CONCURRENCY: usize = 4;

fn counts(got: &[Got]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for g in got {
        for id in g.message_ids() {
            *c.entry(id).or_default() += 1;
        }
    }
    c
}

fn contact(i: usize) -> String {
    format!("1650555{:04}", i % CONTACTS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_then_every_event_in_order_per_contact() {
    const N: usize = 150;
    let t = FakeTarget::start(TARGET_SECRET).await;
    // Slow enough answers that a kill lands mid-queue (and often mid-request).
    t.fallback(Some(Answer::status(200).delayed(Duration::from_millis(10))));
    let dir = tempfile::tempdir().unwrap();
    let concurrency = CONCURRENCY.to_string();
    let env = [
        ("WAGATE_FORWARD_URL", t.url.as_str()),
        ("WAGATE_FORWARD_SECRET", TARGET_SECRET),
        ("WAGATE_FORWARD_BACKOFF_BASE", "10ms"),
        ("WAGATE_FORWARD_BACKOFF_CAP", "50ms"),
        ("WAGATE_FORWARD_CONCURRENCY", concurrency.as_str()),
    ];
    let client = reqwest::Client::new();
    let ids: Vec<String> = (0..N).map(|i| format!("wamid.FWDCRASH{i:04}")).collect();
    let mut server = start_with(dir.path(), &env);
    for (i, id) in ids.iter().enumerate() {
        let body = messages_body_from(PHONE, &contact(i), &[id]);
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
        server.kill();
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
    let again: Vec<_> = c.iter().filter(|(_, n)| **n > 1).collect();
    let bound = kills * (CONCURRENCY + wagate::forward::MAX_UNSYNCED);
    assert!(
        again.len() <= bound && again.iter().all(|(_, n)| **n <= 1 + kills),
        "only entries whose outcome was not synced at a kill may come again (at most {bound}): {again:?}"
    );
    // In order per contact: the first arrivals of each contact's events follow the queue.
    for k in 0..CONTACTS {
        let theirs: Vec<&String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % CONTACTS == k)
            .map(|(_, id)| id)
            .collect();
        let mut first: Vec<&String> = Vec::new();
        for g in &got {
            for id in g.message_ids() {
                if let Some(id) = theirs.iter().find(|x| ***x == id) {
                    if !first.contains(id) {
                        first.push(id);
                    }
                }
            }
        }
        assert_eq!(first, theirs, "contact {k}'s events in order");
    }
    eprintln!(
        "forward crash test: {N} events, {kills} SIGKILLs, {} requests, {} sent again (bound {bound})",
        got.len(),
        again.len()
    );
    drop(server);
}
