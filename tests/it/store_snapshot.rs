//! A SIGKILL while sled writes a snapshot leaves `state/snap.<lsn>.generating`
//! behind: half a file whose name sorts after the last complete snapshot. sled 0.34
//! takes the last name as the snapshot, finds its checksum wrong and refuses to open
//! ("Read corrupted data"), so wagate could never start again (found by the kill
//! campaign, `scripts/kill-campaign`). The unfinished file must be set aside and the
//! store opened from the complete snapshot and sled's log.

use crate::support::child::{start, wait_caught_up};
use crate::support::forward::messages_body;
use crate::support::{api_json, sign, TestApp};

/// Plants what a kill in the middle of sled's snapshot write leaves: the first half
/// of the newest complete snapshot (or a few junk bytes) under a later LSN.
fn plant_unfinished_snapshot(state: &std::path::Path) {
    let mut snaps: Vec<_> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .collect();
    snaps.sort();
    let half = match snaps.last() {
        Some(p) => {
            let b = std::fs::read(p).unwrap();
            b[..b.len() / 2].to_vec()
        }
        None => vec![0x5a; 64],
    };
    std::fs::write(state.join("snap.7FFFFFFFFFFFFFFF.generating"), half).unwrap();
}

#[tokio::test]
async fn an_unfinished_sled_snapshot_does_not_stop_the_next_start() {
    let app = TestApp::spawn().await;
    let body = messages_body("106540352242922", &["wamid.SNAPSHOT1"]);
    app.deliver(body.clone()).await;
    app.wait_applied().await;
    let dir = app.stop().await;
    plant_unfinished_snapshot(&dir.path().join("state"));

    // The real binary: before the fix it exited with "storage error: Read corrupted data".
    let server = start(dir.path());
    let client = reqwest::Client::new();
    let stats = wait_caught_up(&client, &server.base).await;
    assert_eq!(stats["messages"], 1, "{stats}");
    let m = api_json(client.get(format!("{}/api/messages/wamid.SNAPSHOT1", server.base))).await;
    assert_eq!(m["id"], "wamid.SNAPSHOT1", "{m}");
    let resp = client
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(server);
    assert!(
        !dir.path()
            .join("state/snap.7FFFFFFFFFFFFFFF.generating")
            .exists(),
        "the unfinished snapshot is set aside"
    );
}
