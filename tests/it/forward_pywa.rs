//! Forwarding to a client nobody here wrote: a pywa bot (PyPI) in meta mode with
//! its `app_secret` set, so it verifies every signature. The conformance corpus is
//! posted to wagate twice; pywa must accept every request (signature verified),
//! its handlers must see every message exactly once, and it must reject nothing. Needs python3 with pywa and flask (`.ci/run` installs them).

use std::collections::{BTreeMap, BTreeSet};

use wagate::config::{ForwardMode, ForwardTarget};
use wagate::events::model::Item;

use crate::support::bot::Bot;
use crate::support::corpus;
use crate::support::forward::{poll_target, spawn};

const BOT_SECRET: &str = "pywa_bot_app_secret";

#[tokio::test]
#[ignore = "needs python3 with pywa and flask; run by .ci/run"]
async fn forwarding_to_a_real_pywa_bot() {
    let bot = tokio::task::spawn_blocking(|| Bot::pywa(BOT_SECRET))
        .await
        .unwrap();
    let url = bot.url();
    let app = spawn(
        vec![ForwardTarget::new(
            "pywa",
            &url,
            BOT_SECRET,
            ForwardMode::Meta,
        )],
        |_| {},
    )
    .await;
    let cases = corpus();
    for _ in 0..2 {
        for (file, body, sig) in &cases {
            let resp = app.post_webhook(body.clone(), Some(sig)).await;
            assert_eq!(resp.status(), 200, "{file}");
        }
    }
    app.wait_applied().await;
    let t = poll_target(&app, "pywa", |t| t["queued"] == 0).await;
    eprintln!("pywa target: {t}");
    let counts = bot.counts(&app.client).await;
    eprintln!("pywa counts: {counts}");
    let answers = counts["answers"].as_object().unwrap();
    assert_eq!(
        answers.keys().collect::<Vec<_>>(),
        ["200"],
        "pywa rejected nothing"
    );
    assert_eq!(answers["200"], t["delivered"], "one request per entry");
    let mut expected = BTreeSet::new();
    for (_, body, _) in &cases {
        for item in wagate::events::parse::parse_delivery(body).unwrap() {
            if let Item::Message { message, .. } = item {
                expected.insert(message.id);
            }
        }
    }
    // Every update pywa accepted, typed or not: each corpus message exactly once.
    let raw: BTreeMap<String, u64> =
        serde_json::from_value(counts["raw_messages"].clone()).unwrap();
    assert_eq!(raw.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let twice: Vec<_> = raw.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "seen more than once: {twice:?}");
    // pywa's typed message handlers: never twice. (pywa 4.5 types only payloads
    // whose contacts carry `user_id`; older shapes reach the raw handler only.)
    let handled: BTreeMap<String, u64> =
        serde_json::from_value(counts["messages"].clone()).unwrap();
    let twice: Vec<_> = handled.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert!(handled.keys().all(|id| expected.contains(id)));
    assert!(!handled.is_empty(), "pywa typed no message at all");
    eprintln!(
        "pywa: {} corpus messages each seen once; {} typed by its message handlers",
        expected.len(),
        handled.len()
    );
    let statuses: BTreeMap<String, u64> =
        serde_json::from_value(counts["statuses"].clone()).unwrap();
    assert!(statuses.values().all(|n| *n == 1), "{statuses:?}");
}
