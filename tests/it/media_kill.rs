//! SIGKILL in the middle of a media download: the real binary as a child process,
//! the fake media host hanging half-way through the file. After the restart the
//! half-written temp file is swept, the job runs again, the file is stored exactly
//! once, and later restarts download nothing more.

use std::time::Duration;

use crate::support::child::{start_with, wait_caught_up, Server};
use crate::support::fake_media::{png, Answer, FakeMedia, MEDIA_ID};
use crate::support::media::{files_in, payload, TOKEN};
use crate::support::{api_json, eventually, sign, stays, API_TOKEN};

fn start(dir: &std::path::Path, fake: &FakeMedia) -> Server {
    start_with(
        dir,
        &[
            ("WHATSAPP_TOKEN", TOKEN),
            ("WAGATE_GRAPH_URL", &fake.base),
            ("WAGATE_MEDIA_HOSTS", &fake.host_port()),
            ("WAGATE_MEDIA_BACKOFF_BASE", "10ms"),
            ("WAGATE_MEDIA_BACKOFF_CAP", "50ms"),
        ],
    )
}

async fn media(client: &reqwest::Client, s: &Server) -> serde_json::Value {
    api_json(client.get(format!("{}/api/media/{MEDIA_ID}", s.base))).await
}

#[tokio::test]
async fn sigkill_mid_download_then_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeMedia::start().await;
    // The first download sends half the file, then hangs far longer than the test.
    fake.script_files([Answer::Hang(Duration::from_secs(120))]);
    let client = reqwest::Client::new();
    let server = start(dir.path(), &fake);
    let body = payload(Some(&fake.file_url()), 10);
    let resp = client
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Mid-download: the request was made and the temp file exists.
    eventually("the download to start", async || fake.count("/media/") == 1).await;
    eventually("the temp file to be written", async || {
        files_in(dir.path()).iter().any(|f| f.ends_with(".tmp"))
    })
    .await;
    assert_eq!(media(&client, &server).await["state"], "pending");
    server.kill();

    let server = start(dir.path(), &fake);
    let stored = eventually("the file to be stored", async || {
        let v = media(&client, &server).await;
        if v["state"] == "stored" {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await;
    assert_eq!(fake.count("/media/"), 2, "downloaded again once");
    assert_eq!(
        files_in(dir.path()),
        vec![stored["file"].as_str().unwrap().to_string()],
        "the half-written temp file is gone"
    );
    let content = client
        .get(format!("{}/api/media/{MEDIA_ID}/content", server.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(content.as_ref(), png().as_slice());
    drop(server);

    // A third start (after another SIGKILL, from Drop: sled may have lost its last
    // writes and re-applies the journal) downloads nothing.
    let server = start(dir.path(), &fake);
    wait_caught_up(&client, &server.base).await;
    let v = media(&client, &server).await;
    assert_eq!(v["state"], "stored");
    assert_eq!(v["file"], stored["file"]);
    let stats = api_json(client.get(format!("{}/api/stats", server.base))).await;
    assert_eq!(stats["media_stored"], 1, "{stats}");
    assert_eq!(stats["media_pending"], 0, "{stats}");
    // A negative check: give a wrongly resumed job time to show itself.
    stays("no third download", async || fake.count("/media/") == 2).await;
}
