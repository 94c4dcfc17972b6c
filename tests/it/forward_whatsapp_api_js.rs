//! Forwarding to a bot nobody here wrote, on whatsapp-api-js (npm): its own
//! node:http middleware checks each request's signature with the app secret, over
//! the body re-escaped first (every character past `~` as `\uXXXX`). It accepts a
//! body only when the body is ASCII, as Meta writes it. The conformance corpus is
//! posted twice, with two deliveries wagate must narrow (a new message next to one
//! already forwarded) holding "café 😀" and URLs. Every message must reach the bot
//! exactly once and nothing may be rejected. Needs node and `npm ci` in
//! tests/bots/whatsapp-api-js (`.ci/run` does both).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use wagate::config::{ForwardMode, ForwardTarget};
use wagate::events::model::Item;

use crate::support::bot::Bot;
use crate::support::forward::{poll_target, spawn, PHONE};
use crate::support::{corpus, eventually, sign};

const BOT_SECRET: &str = "whatsapp_api_js_bot_app_secret";

/// A Meta body written as Meta writes it, one text message per `(id, text)`.
fn texts(messages: &[(&str, &str)]) -> Vec<u8> {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(id, text)| json!({"from": "16505559876", "id": id, "timestamp": "1760000000", "text": {"body": text}, "type": "text"}))
        .collect();
    wagate::events::meta_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "José 😀"}, "wa_id": "16505559876"}],
        "messages": messages}, "field": "messages"}]}]}),
    )
}

/// Deliveries of which wagate forwards only part: rebuilt, then signed.
fn narrowed_cases() -> Vec<(String, Vec<u8>, String)> {
    let first = ("wamid.wajs.1", "café 😀 https://example.com/a/b?c=1&d=2");
    let second = ("wamid.wajs.2", "ünïcödé ☕ 👍🏽 see http://x.example/ü/");
    let third = (
        "wamid.wajs.3",
        "plain / slash, \"quotes\" and \\ and <tag> & 'apostrophe' @ %",
    );
    [
        ("first alone", texts(&[first])),
        ("first again with second", texts(&[first, second])),
        ("second again with third", texts(&[second, third])),
    ]
    .into_iter()
    .map(|(name, body)| {
        let sig = sign(&body);
        (name.to_string(), body, sig)
    })
    .collect()
}

/// Message ids of `messages` changes.
fn message_ids(cases: &[(String, Vec<u8>, String)]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (_, body, _) in cases {
        for item in wagate::events::parse::parse_delivery(body).unwrap() {
            if let Item::Message { meta, message } = item {
                if meta.field == "messages" {
                    ids.insert(message.id);
                }
            }
        }
    }
    ids
}

#[tokio::test]
#[ignore = "needs node and `npm ci` in tests/bots/whatsapp-api-js; run by .ci/run"]
async fn forwarding_to_a_real_whatsapp_api_js_bot() {
    let bot = tokio::task::spawn_blocking(|| Bot::whatsapp_api_js(BOT_SECRET))
        .await
        .unwrap();
    let mut target = ForwardTarget::new("wajs", &bot.url(), BOT_SECRET, ForwardMode::Meta);
    // whatsapp-api-js reads `value.metadata` of every change, so it answers 500 to
    // account-level fields: a bot on it takes `messages` only.
    target.fields = vec!["messages".into()];
    let app = spawn(vec![target], |_| {}).await;
    let mut cases = corpus();
    cases.extend(narrowed_cases());
    for _ in 0..2 {
        for (file, body, sig) in &cases {
            let resp = app.post_webhook(body.clone(), Some(sig)).await;
            assert_eq!(resp.status(), 200, "{file}");
        }
    }
    app.wait_applied().await;
    let expected = message_ids(&cases);
    // Until every message arrived, or the bot answered anything but 200.
    let counts = eventually("the bot got every message", async || {
        let counts = bot.counts(&app.client).await;
        let answers = counts["answers"].as_object().unwrap();
        let accepted = counts["accepted"].as_object().unwrap();
        match answers.keys().any(|k| k != "200") || accepted.len() >= expected.len() {
            true => Ok(counts),
            false => Err(counts),
        }
    })
    .await;
    eprintln!("whatsapp-api-js answers: {}", counts["answers"]);
    let answers = counts["answers"].as_object().unwrap();
    assert_eq!(
        answers.keys().collect::<Vec<_>>(),
        ["200"],
        "the SDK rejected nothing"
    );
    let t = poll_target(&app, "wajs", |t| t["queued"] == 0).await;
    assert_eq!(answers["200"], t["delivered"], "one request per entry");
    let accepted: BTreeMap<String, u64> =
        serde_json::from_value(counts["accepted"].clone()).unwrap();
    assert_eq!(accepted.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "seen more than once: {twice:?}");
    // The SDK's message handler (it hands on the first message of a body): never twice.
    let handled: BTreeMap<String, u64> =
        serde_json::from_value(counts["messages"].clone()).unwrap();
    assert!(handled.values().all(|n| *n == 1), "{handled:?}");
    assert!(handled.keys().all(|id| expected.contains(id)));
    for id in ["wamid.wajs.1", "wamid.wajs.2", "wamid.wajs.3"] {
        assert_eq!(handled.get(id), Some(&1), "{id} reached the bot's handler");
    }
    let statuses: BTreeMap<String, u64> =
        serde_json::from_value(counts["statuses"].clone()).unwrap();
    assert!(statuses.values().all(|n| *n == 1), "{statuses:?}");
    eprintln!(
        "whatsapp-api-js: {} messages each accepted once, {} handled, {} statuses",
        accepted.len(),
        handled.len(),
        statuses.len()
    );
}
