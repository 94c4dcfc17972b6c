//! Media ids and hosts as an attacker would shape them (issue 17, defect 4): an id
//! never reaches the Graph API as another path or a query (the bearer token goes
//! with every lookup), and the media host allow-list matches the port too.

use serde_json::Value;

use crate::support::fake_media::{Answer, FakeMedia, MEDIA_ID};
use crate::support::media::{payload, spawn, wait_state};
use crate::support::TestApp;
use crate::support::{eventually, stays};

const EVIL_IDS: &[&str] = &[
    "../../me",
    "9/../../../oauth/access_token",
    "123?fields=access_token&x=",
];

/// The conformance image webhook with no URL (so a lookup is needed), its media id
/// and message id replaced.
fn with_media_id(media_id: &str, wamid: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&payload(None, 10)).unwrap();
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    m["image"]["id"] = media_id.into();
    m["id"] = wamid.into();
    serde_json::to_vec(&v).unwrap()
}

/// `/api/media/{id}` with the id encoded as one path segment.
fn media_path(id: &str) -> String {
    let id = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    format!("/api/media/{id}")
}

/// The media job of `id` once it is final (not pending).
async fn final_job(app: &TestApp, id: &str) -> Value {
    let path = media_path(id);
    eventually(&format!("the media job {id:?} to end"), async || {
        let resp = app.get(&path).await;
        if resp.status() != 200 {
            return Err(format!("no media entry ({})", resp.status()));
        }
        let v: Value = resp.json().await.unwrap();
        match v["state"].as_str() {
            Some("pending") | Some("unscanned") => Err(v.to_string()),
            _ => Ok(v),
        }
    })
    .await
}

#[tokio::test]
async fn evil_media_ids_never_reach_the_graph_api() {
    let fake = FakeMedia::start().await;
    let app = spawn(&fake).await;
    for (i, id) in EVIL_IDS.iter().enumerate() {
        app.deliver(with_media_id(id, &format!("wamid.evil{i}")))
            .await;
    }
    let mut jobs = Vec::new();
    for id in EVIL_IDS {
        jobs.push((id, final_job(&app, id).await));
    }
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.is_empty(), "the Graph API got {paths:?}");
    // A good id in the same run: the fake does record the lookups it gets.
    app.deliver(payload(None, 10)).await;
    wait_state(&app, "stored").await;
    let lookup = format!("/v23.0/{MEDIA_ID}");
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_eq!(paths[0], lookup);
    assert!(paths[1].starts_with("/media/file?"), "{paths:?}");
    for (id, v) in jobs {
        assert_eq!(v["state"], "failed", "{id}: {v}");
        let error = v["last_error"].as_str().unwrap();
        assert!(error.contains("is not one of Meta's"), "{id}: {v}");
        assert_eq!(v["content"], Value::Null, "{v}");
    }
    app.stop().await;
}

#[tokio::test]
async fn redirect_to_an_allowed_host_on_another_port_is_refused() {
    let fake = FakeMedia::start().await;
    let other = FakeMedia::start().await;
    // Same address, another port: only `fake`'s host:port is on the list.
    fake.script_files([Answer::Redirect(format!("{}?evil=1", other.file_url()))]);
    let app = spawn(&fake).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    let v = wait_state(&app, "failed").await;
    let error = v["last_error"].as_str().unwrap();
    assert!(error.contains("WAGATE_MEDIA_HOSTS"), "{v}");
    assert!(
        error.contains(&other.host_port()),
        "names host and port: {v}"
    );
    assert_eq!(fake.count("/media/"), 1, "the allowed port was used");
    // The job is over: nothing reaches the other port later either.
    stays("no request on the other port", async || {
        other.requests().is_empty()
    })
    .await;
    app.stop().await;
}
