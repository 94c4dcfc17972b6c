//! Media set up for tests: wagate downloading from the fake media API and host,
//! the conformance image webhook made to order, a job's state over the API, the
//! files in the media directory.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use wagate::config::Secret;
use wagate::Config;

use super::fake_media::{FakeMedia, MEDIA_ID};
use super::{data_path, eventually, TestApp};

pub const TOKEN: &str = "media-token-for-tests";

/// Points `c` at `fake` (allowed host, token) with small retry delays.
pub fn setup(c: &mut Config, fake: &FakeMedia) {
    c.graph.url = fake.base.clone();
    c.graph.token = Some(Secret::new(TOKEN));
    c.media.hosts = vec![fake.host_port()];
    c.media.backoff_base = Duration::from_millis(10);
    c.media.backoff_cap = Duration::from_millis(50);
    c.graph.timeout = Duration::from_secs(5);
}

/// wagate downloading from `fake`.
pub async fn spawn(fake: &FakeMedia) -> TestApp {
    let f = fake.clone();
    TestApp::spawn_with(move |c| setup(c, &f)).await
}

/// The conformance webhook, its time set to `age_secs` ago, its URL pointed at the
/// fake (or removed, so that the lookup gives it).
pub fn payload(url: Option<&str>, age_secs: i64) -> Vec<u8> {
    let raw = std::fs::read(data_path("payloads/msg_image_roundtrip.json")).unwrap();
    let mut v: Value = serde_json::from_slice(&raw).unwrap();
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    let now = wagate::util::clock::now_micros() / 1_000_000;
    m["timestamp"] = (now - age_secs).to_string().into();
    match url {
        Some(u) => m["image"]["url"] = u.into(),
        None => {
            m["image"].as_object_mut().unwrap().remove("url");
        }
    }
    serde_json::to_vec(&v).unwrap()
}

/// Polls the media job's metadata until it is in `want`; the metadata.
pub async fn wait_state(app: &TestApp, want: &str) -> Value {
    eventually(&format!("the media job to be {want}"), async || {
        let resp = app.get(&format!("/api/media/{MEDIA_ID}")).await;
        if resp.status() != 200 {
            return Err(format!("no media entry ({})", resp.status()));
        }
        let v: Value = resp.json().await.unwrap();
        if v["state"] == want {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await
}

/// The names of the files in the media directory of data directory `app_dir`.
pub fn files_in(app_dir: &Path) -> Vec<String> {
    std::fs::read_dir(app_dir.join("media"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
