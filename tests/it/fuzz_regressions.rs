//! Regression tests of what fuzzing found (`src/fuzz`, `.ci/fuzz`): each input that
//! broke a parser or a rule it feeds, embedded here, through the public code path.

use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::send::{finished, send, spawn, text};

/// `retry_after`: Meta answering `Retry-After: 18446744073709551615` (seconds) wrapped
/// the sender's due time: a retry at once in a release build, a panic that stopped
/// the sender in a debug one. Now the next attempt is past any max age: given up.
#[tokio::test]
async fn retry_after_beyond_any_clock_gives_up() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::error(503, "131000_unknown.json").retry_after("18446744073709551615"),
        Reply::ok(),
    ]);
    let app = spawn(&fake, |_| {}).await;
    let id = send(&app, &text("16505551234", "one day")).await;
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "failed", "{e}");
    assert_eq!(e["attempts"].as_array().unwrap().len(), 1, "{e}");
    let reason = e["reason"].as_str().unwrap();
    assert!(reason.contains("WAGATE_SEND_MAX_AGE"), "{reason}");
    // The sender still works: the next message goes out.
    let next = send(&app, &text("16505551234", "next")).await;
    assert_eq!(finished(&app, next).await["state"], "sent");
}

/// `timestamps`, `webhook_reshape`: a time at or after year 10000 (issue 17 defect 2).
#[test]
fn time_at_year_10000_is_shown() {
    let _ = wagate::util::time::rfc3339(253_402_300_800 * 1_000_000);
    let _ = wagate::util::time::rfc3339(i64::MAX);
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"wamid.Y10K","timestamp":"253402300800","type":"text","text":{"body":"x"}}]}}]}]}"#;
    let events = wagate::events::reshape::events_for(body, &[0], 1, 0).unwrap();
    assert_eq!(events.len(), 1);
}

/// `forward_targets`: a `whsec_` secret with nothing after the prefix passed the
/// check, and the target signed with an empty HMAC key. The fuzzer's input:
#[test]
fn whsec_secret_without_a_key_is_refused() {
    let file = r#"{"targets":[{"fields":["messages"],"id":"shop","mode":"events","phone_number_ids":["123"],"secret":"whsec_","url":"https://a.example/x?k=1"}]}"#;
    let err = wagate::config::parse_targets(file, &[])
        .map(|t| t.len())
        .unwrap_err();
    assert!(err.contains("whsec_"), "{err}");
    let fine = file.replace("whsec_\"", "whsec_c2VjcmV0\"");
    let targets = wagate::config::parse_targets(&fine, &[]).unwrap();
    assert_eq!(targets[0].signing_key(), b"secret");
}

/// `webhook_parse`: an integer past `u64` (read as a float) did not survive the
/// store's JSON round trip: serde_json's default float reading is best-effort, so the
/// printed float read back one bit off. Now floats are read exactly
/// (`float_roundtrip`). The fuzzer's input:
#[test]
fn an_item_with_a_huge_number_survives_json() {
    let body = br#"{"entry":[{"id":"102290129340398","time":1751247548,"changes":[{"value":{"event":"REJECTED","message_template_id":16895569018446744073709551615,"message_template_name":"abandoned_cart","message_template_language":"en","reason":"INVALID_FORMAT","message_template_category":"MARKETING"},"field":"message_template_status_update"}]}],"object":"whatsapp_business_account"}"#;
    for item in wagate::events::parse::parse_delivery(body).unwrap() {
        let json = serde_json::to_vec(&item).unwrap();
        let back: wagate::events::parse::Item = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, item);
    }
}

/// `media_keys`: rotating a key file whose highest id is `k18446744073709551615`
/// overflowed (`k<max+1>`): a panic in a debug build; `k0` in a release one. The
/// fuzzer's input:
#[test]
fn rotation_after_the_largest_key_number() {
    let text = "k18446744073709551615 0101010101010101010101010101010101010101010101010101010101010101\nk2 0202020202020202020202020202020202020202020202020202020202020202\nprimary k2\n";
    let mut keys = wagate::media::keys::Keyring::parse(text).unwrap();
    let id = keys.rotate();
    assert_eq!(keys.primary().id(), id);
    assert_eq!(keys.ids().count(), 3, "{id} is a new key");
}
