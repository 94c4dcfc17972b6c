//! Several forwarding entries in flight: different contacts' entries at once, one
//! contact's entries one after the other, in order. The target holds each request
//! until the test releases it, so "in flight together" is a fact, not a timing.

use wagate::config::ForwardMode;

use crate::support::fake_target::{Answer, FakeTarget, Got};
use crate::support::forward::{
    messages_body_from, poll_target, spawn, target, PHONE, TARGET_SECRET,
};
use crate::support::stays;

fn ids(got: &[Got]) -> Vec<String> {
    got.iter().flat_map(|g| g.message_ids()).collect()
}

#[tokio::test]
async fn other_contacts_in_parallel_one_contact_in_order() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.fallback(Some(Answer::status(200).held()));
    let app = spawn(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| c.forward.concurrency = 3,
    )
    .await;
    for (from, id) in [
        ("111", "wamid.W_A1"),
        ("222", "wamid.W_B1"),
        ("333", "wamid.W_C1"),
        ("111", "wamid.W_A2"),
        ("444", "wamid.W_D1"),
    ] {
        app.deliver(messages_body_from(PHONE, from, &[id])).await;
    }
    // A1, B1 and C1 are in flight together, all three unanswered; the window is full.
    let mut first = ids(&t.wait_for(3).await);
    first.sort();
    assert_eq!(first, ["wamid.W_A1", "wamid.W_B1", "wamid.W_C1"]);
    stays("nothing more while the window is full", async || {
        t.got().len() == 3
    })
    .await;
    // B1 answered: D1 goes, although A2 is ahead of it, since A1 is still in flight.
    t.release("wamid.W_B1");
    let got = t.wait_for(4).await;
    assert_eq!(ids(&got[3..]), ["wamid.W_D1"]);
    // C1 answered too: the window has room, but A2 waits for A1's answer.
    t.release("wamid.W_C1");
    poll_target(&app, "bot", |t| t["delivered"] == 2).await;
    stays("A2 waits for A1's answer", async || t.got().len() == 4).await;
    // A1 answered: A2 goes.
    t.release("wamid.W_A1");
    let got = t.wait_for(5).await;
    assert_eq!(ids(&got[4..]), ["wamid.W_A2"]);
    for id in ["wamid.W_D1", "wamid.W_A2"] {
        t.release(id);
    }
    let v = poll_target(&app, "bot", |t| t["delivered"] == 5).await;
    assert_eq!(
        (v["queued"].as_u64(), v["attempts"].as_u64()),
        (Some(0), Some(5))
    );
}
