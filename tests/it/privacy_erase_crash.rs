//! An erasure interrupted by a crash (the real binary, ended at once at a point of
//! the erasure, as `kill -9` would) completes after a restart, and nothing of the
//! person is left in any file; webhooks are answered during an erasure.

use crate::support::child::{self, wait_caught_up};
use crate::support::erase;
use crate::support::scan::find_anywhere;
use crate::support::{data_path, sign, API_TOKEN};

const A: &str = "16505551234";
const A_NAME: &str = "Sheena Nelson";
const A_TEXT: &str = "Does it come in another color?";
/// The corpus is years old: keep it inside the dedup window.
const TTLS: [(&str, &str); 2] = [("WAGATE_DEDUP_TTL", "3650d"), ("WAGATE_EVENT_TTL", "3650d")];

async fn deliver(client: &reqwest::Client, base: &str, body: Vec<u8>) -> reqwest::StatusCode {
    client
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .expect("POST /webhook")
        .status()
}

async fn crash_then_complete(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WAGATE_TEST_ERASE_CRASH", point), TTLS[0], TTLS[1]];
    let mut server = child::start_with(dir.path(), &env);
    let client = reqwest::Client::new();
    let text = std::fs::read(data_path("payloads/msg_text.json")).unwrap();
    let statuses =
        std::fs::read(data_path("payloads/batch_one_change_three_statuses.json")).unwrap();
    assert_eq!(deliver(&client, &server.base, text).await, 200);
    assert_eq!(deliver(&client, &server.base, statuses).await, 200);
    wait_caught_up(&client, &server.base).await;
    let id = erase::request(&client, &server.base, A).await;
    // The hook ends the process in the middle of the erasure.
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        drop(server);
        s
    })
    .await
    .unwrap();
    assert!(!status.success(), "ended by the crash hook: {status:?}");

    let server = child::start_with(dir.path(), &TTLS);
    erase::wait_done(&client, &server.base, &id).await;
    let contact = client
        .get(format!("{}/api/contacts/{A}", server.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(contact.status(), 404);
    server.kill();
    let left = find_anywhere(dir.path(), &[A, A_NAME, A_TEXT]);
    assert!(left.is_empty(), "{left:#?}");
}

#[tokio::test]
async fn an_erasure_cut_after_the_journal_rewrite_completes_after_restart() {
    crash_then_complete("rewritten").await;
}

#[tokio::test]
async fn an_erasure_cut_after_the_state_swap_completes_after_restart() {
    crash_then_complete("swapped").await;
}
