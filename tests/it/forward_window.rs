//! Several forwarding entries in flight: different contacts' entries at once, one
//! contact's entries one after the other, in order.

use std::time::Duration;

use wagate::config::ForwardMode;

use crate::support::fake_target::{Answer, FakeTarget};
use crate::support::forward::{
    messages_body_from, poll_target, spawn, target, PHONE, TARGET_SECRET,
};

#[tokio::test]
async fn other_contacts_in_parallel_one_contact_in_order() {
    const SLOW: Duration = Duration::from_millis(600);
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.fallback(Some(Answer::status(200).delayed(SLOW)));
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
    let got = t.wait_for(5).await;
    let ids: Vec<String> = got.iter().flat_map(|g| g.message_ids()).collect();
    let at = |id: &str| got[ids.iter().position(|x| x == id).unwrap()].at;
    // A1, B1 and C1 were in flight together (a serial worker would space them by SLOW).
    let mut first: Vec<&str> = ids[..3].iter().map(String::as_str).collect();
    first.sort();
    assert_eq!(first, ["wamid.W_A1", "wamid.W_B1", "wamid.W_C1"], "{ids:?}");
    assert!(
        at("wamid.W_C1").max(at("wamid.W_B1")) - at("wamid.W_A1") < SLOW,
        "three in flight at once: {ids:?}"
    );
    // A2 waited for A1's answer; D1 (behind A2 in the queue) did not wait for A2.
    assert!(at("wamid.W_A2") - at("wamid.W_A1") >= SLOW, "A2 after A1");
    assert!(
        at("wamid.W_D1") < at("wamid.W_A2") + SLOW,
        "D1 not held behind another contact"
    );
    let v = poll_target(&app, "bot", |t| t["delivered"] == 5).await;
    assert_eq!(
        (v["queued"].as_u64(), v["attempts"].as_u64()),
        (Some(0), Some(5))
    );
}
