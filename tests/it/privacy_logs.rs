//! No phone number, name or message text in the log at `info` (the default level):
//! the real binary, as deployed, over the whole conformance corpus (accepted and
//! rejected), with the reads and the export that touch each contact.

use serde_json::Value;

use crate::support::child::{start_with, wait_caught_up};
use crate::support::{corpus, API_TOKEN};

/// Keys whose string values are personal data in Meta's payloads.
const PERSONAL: &[&str] = &[
    "wa_id",
    "from",
    "recipient_id",
    "user_id",
    "from_user_id",
    "recipient_user_id",
    "username",
    "name",
    "body",
    "caption",
    "address",
    "phone",
    "email",
    "formatted_name",
    "first_name",
    "last_name",
];

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::String(s) if PERSONAL.contains(&k.as_str()) && s.len() >= 4 => {
                        out.push(s.clone())
                    }
                    _ => collect(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// The personal strings of every payload's `value`s (the business's own phone
/// number is not among them: it sits in `metadata`, under other keys).
fn personal_strings(bodies: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::new();
    for b in bodies {
        let v: Value = serde_json::from_slice(b).unwrap();
        for e in v["entry"].as_array().into_iter().flatten() {
            for c in e["changes"].as_array().into_iter().flatten() {
                collect(&c["value"], &mut out);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn info_log_holds_no_phone_number_name_or_text() {
    let dir = tempfile::tempdir().unwrap();
    // The corpus is years old: kept, and not taken for stale replays.
    let ttl = [
        ("WAGATE_DEDUP_TTL", "3650d"),
        ("WAGATE_EVENT_TTL", "3650d"),
        ("WAGATE_RAW_TTL", "3650d"),
    ];
    let server = start_with(dir.path(), &ttl);
    let client = reqwest::Client::new();
    let cases = corpus();
    for (_, body, sig) in &cases {
        for sig in [sig.as_str(), "sha256=00"] {
            let resp = client
                .post(format!("{}/webhook", server.base))
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sig)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            // Accepted `200`; a bad signature is kept as rejected (and refused).
            assert!(
                resp.status() == 200 || sig == "sha256=00",
                "{}",
                resp.status()
            );
        }
    }
    wait_caught_up(&client, &server.base).await;
    let bodies: Vec<Vec<u8>> = cases.into_iter().map(|(_, b, _)| b).collect();
    let needles = personal_strings(&bodies);
    assert!(needles.iter().any(|n| n == "16505551234"), "{needles:?}");
    // Reads that name a contact: by wa_id, and the export.
    for path in [
        "/api/contacts/16505551234",
        "/api/messages?contact=16505551234",
        "/api/contacts/16505551234/export",
        "/api/contacts/15550000000/export",
    ] {
        let resp = client
            .get(format!("{}{path}", server.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        resp.bytes().await.unwrap();
    }
    let log = server.kill_and_log();
    let exported = log.iter().find(|l| l.contains("contact data exported"));
    assert!(
        exported.is_some_and(|l| !l.contains("messages=0")),
        "the export found the contact's messages: {log:?}"
    );
    assert!(log.len() > 3, "{log:?}");
    for line in &log {
        for n in &needles {
            // Meta's `\uXXXX` escapes too: the log must not hold either form.
            let escaped = serde_json::to_string(n).unwrap();
            assert!(
                !line.contains(n.as_str()) && !line.contains(escaped.trim_matches('"')),
                "the log holds {n:?}: {line}"
            );
        }
    }
}
