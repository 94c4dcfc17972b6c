//! One poisoned entry does not stop a target. The target answers 500 to every body
//! about contact A, and contact B's messages still go through while A's keep
//! failing. A's entries keep their order. A's entry is dead-lettered after
//! `WAGATE_FORWARD_MAX_ATTEMPTS` failures, and once the target is fixed a replay of
//! that dead letter delivers it. A target that fails everything is still paused,
//! and none of its entries is dead-lettered for it. Time runs on a manual clock:
//! backoffs pass when the test moves it.

use std::time::Duration;

use serde_json::{json, Value};
use wagate::config::ForwardMode;
use wagate::util::clock::Clock;

use crate::support::eventually;
use crate::support::fake_target::{Answer, FakeTarget, Got};
use crate::support::forward::{
    messages_body_from, poll_target, replay, spawn_clocked, target, PHONE, TARGET_SECRET,
};
use crate::support::stays;

const A: &str = "16505550001";
const B: &str = "16505550002";

/// The requests for message `id`, and their answers.
fn answers(got: &[Got], id: &str) -> Vec<u16> {
    got.iter()
        .filter(|g| g.message_ids().iter().any(|m| m == id))
        .map(|g| g.status)
        .collect()
}

fn delivered(got: &[Got], id: &str) -> bool {
    answers(got, id).contains(&200)
}

/// Where message `id` was first answered `status` in what the target got.
fn first(got: &[Got], id: &str, status: u16) -> Option<usize> {
    got.iter()
        .position(|g| g.status == status && g.message_ids().iter().any(|m| m == id))
}

#[tokio::test]
async fn a_poisoned_contact_holds_up_only_itself_until_dead_lettered() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    let about_a = format!("\"from\":\"{A}\"");
    t.answer_bodies_with(Some((
        &about_a,
        Answer::status(500).body("boom: cannot handle A"),
    )));
    let app = spawn_clocked(
        Clock::manual_now(),
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| {
            c.forward.max_attempts = 3;
            // Never a zero wait by chance: a retry waits for the clock.
            c.forward.backoff_base = Duration::from_secs(1);
            c.forward.backoff_cap = Duration::from_secs(60);
        },
    )
    .await;
    app.deliver(messages_body_from(PHONE, A, &["wamid.A1"]))
        .await;
    t.wait_until("A1 refused", |got| !answers(got, "wamid.A1").is_empty())
        .await;
    app.deliver(messages_body_from(PHONE, A, &["wamid.A2"]))
        .await;
    app.deliver(messages_body_from(PHONE, B, &["wamid.B1"]))
        .await;
    // B1 goes around A1 with the clock standing still; A2 waits behind A1.
    t.wait_until("B1 delivered", |got| delivered(got, "wamid.B1"))
        .await;
    stays("A2 waits behind A1", async || {
        answers(&t.got(), "wamid.A2").is_empty()
    })
    .await;
    // A1 fails on, each time after its own backoff, until its third failure; the
    // clock stands still from then on.
    eventually("A1 failed 3 times", async || {
        let n = answers(&t.got(), "wamid.A1").len();
        if n < 3 {
            app.clock().advance(Duration::from_secs(1));
        }
        n >= 3
    })
    .await;
    let dead = eventually("A1 dead-lettered", async || {
        let d = app.get_json("/api/forward/dead_letters?target=bot").await;
        match d["dead_letters"][0].is_object() {
            true => Ok(d["dead_letters"][0].clone()),
            false => Err(d),
        }
    })
    .await;
    let got = t.got();
    assert_eq!(answers(&got, "wamid.A1"), [500, 500, 500], "{dead}");
    assert_eq!(dead["attempts"], 3);
    let error = dead["error"].as_str().unwrap();
    for part in [
        "3 times",
        "WAGATE_FORWARD_MAX_ATTEMPTS",
        "HTTP 500",
        "boom: cannot handle A",
    ] {
        assert!(error.contains(part), "{part}: {error}");
    }
    // A's next entry goes on (and fails too); B's later messages still go through.
    t.wait_until("A2 tried", |got| !answers(got, "wamid.A2").is_empty())
        .await;
    app.deliver(messages_body_from(PHONE, B, &["wamid.B2"]))
        .await;
    t.wait_until("B2 delivered", |got| delivered(got, "wamid.B2"))
        .await;
    // Fixed: A2 is delivered after its backoff, then the replayed A1, in queue order.
    t.answer_bodies_with(None);
    let id = dead["id"].as_u64().unwrap();
    let r = replay(&app, json!({"target": "bot", "dead_letter": id})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let got = eventually("A2 and the replayed A1 delivered", async || {
        app.clock().advance(Duration::from_secs(1));
        let got = t.got();
        match delivered(&got, "wamid.A2") && delivered(&got, "wamid.A1") {
            true => Ok(got),
            false => Err(format!("{} requests", got.len())),
        }
    })
    .await;
    assert!(first(&got, "wamid.A2", 200) < first(&got, "wamid.A1", 200));
    let v = poll_target(&app, "bot", |t| t["queued"] == 0).await;
    assert_eq!(
        (v["delivered"].clone(), v["dead_lettered"].clone()),
        (json!(4), json!(1))
    );
    assert!(got.iter().all(|g| g.signed));
}

#[tokio::test]
async fn a_target_failing_everything_is_paused_and_dead_letters_nothing() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.fallback(Some(Answer::status(502)));
    let app = spawn_clocked(
        Clock::manual_now(),
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| {
            c.forward.max_attempts = 2;
            c.forward.pause_after = Duration::from_secs(60);
            c.forward.probe_every = Duration::from_secs(30);
        },
    )
    .await;
    app.deliver(messages_body_from(PHONE, A, &["wamid.A1"]))
        .await;
    app.deliver(messages_body_from(PHONE, B, &["wamid.B1"]))
        .await;
    // Both refused once, the clock standing still: then the target fails everything.
    t.wait_until("A1 and B1 refused", |got| {
        !answers(got, "wamid.A1").is_empty() && !answers(got, "wamid.B1").is_empty()
    })
    .await;
    let v: Value = eventually("the target paused", async || {
        app.clock().advance(Duration::from_secs(5));
        let all = app.get_json("/api/forward/targets").await;
        let t = all["targets"][0].clone();
        match t["state"] == "paused" {
            true => Ok(t),
            false => Err(t),
        }
    })
    .await;
    assert_eq!(v["dead_lettered"], 0, "{v}");
    // Probed on, past the max attempts, and still nothing is dead-lettered.
    eventually("A1 and B1 probed past the max attempts", async || {
        app.clock().advance(Duration::from_secs(5));
        let got = t.got();
        answers(&got, "wamid.A1").len() > 3 && answers(&got, "wamid.B1").len() > 3
    })
    .await;
    let v = poll_target(&app, "bot", |t| t["state"] == "paused").await;
    assert_eq!(
        (v["queued"].clone(), v["dead_lettered"].clone()),
        (json!(2), json!(0))
    );
    t.fallback(None);
    eventually("both delivered after a probe", async || {
        app.clock().advance(Duration::from_secs(5));
        let got = t.got();
        delivered(&got, "wamid.A1") && delivered(&got, "wamid.B1")
    })
    .await;
    let v = poll_target(&app, "bot", |t| t["queued"] == 0).await;
    assert_eq!(
        (v["delivered"].clone(), v["dead_lettered"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(v["state"], "active");
}
