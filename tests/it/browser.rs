//! The dashboard in a real browser: headless Chromium driven by playwright-core
//! (`tests/browser/dashboard.mjs`) against the real app with the corpus, a rejected
//! delivery and a stored image. Ignored by default: it needs Debian's `chromium`
//! and `npm ci` in `tests/browser` (`.ci/run` does both). Screenshots of the main
//! pages are kept in `target/browser-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::dashboard::PASSWORD;
use crate::support::fake_media::FakeMedia;
use crate::support::media::{payload, setup, wait_state};
use crate::support::{corpus, data_path, TestApp, TEN_YEARS};

/// The whole browser run (Chromium start, eleven pages, a download, the link check).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts")
}

/// The corpus, a delivery signed with a secret wagate does not know, and the
/// conformance image stored through the fake media host.
async fn app_with_data() -> (TestApp, FakeMedia) {
    let fake = FakeMedia::start().await;
    let f = fake.clone();
    let app = TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
        c.dedup_ttl = TEN_YEARS;
    })
    .await;
    // The image first: the corpus carries the same message with an old timestamp and
    // Meta's URL, which would leave the job expired.
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    wait_state(&app, "stored").await;
    for (file, body, sig) in corpus() {
        let status = app.post_webhook(body, Some(&sig)).await.status();
        assert_eq!(status, 200, "{file}");
    }
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec();
    let sig = wagate::events::signature::sign(b"a-secret-wagate-does-not-know", &body);
    assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 403);
    app.wait_applied().await;
    (app, fake)
}

#[tokio::test]
#[ignore = "needs chromium and `npm ci` in tests/browser (.ci/run)"]
async fn browser_walks_the_dashboard_in_chromium() {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first",
        dir.display()
    );
    let (app, _fake) = app_with_data().await;
    let artifacts = artifacts_dir();
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    // The run's output is an artifact too.
    let log_path = artifacts.join("browser.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .current_dir(&dir)
        .env("DASH_URL", &app.base)
        .env("DASH_PASSWORD", PASSWORD)
        .env("DASH_ARTIFACTS", &artifacts)
        .env("DASH_CONTACT", "16505551234")
        .env("DASH_TEXT", "Does it come in another color?")
        .env("DASH_DIAGNOSIS", "no_secret_matches")
        .env(
            "DASH_MEDIA_FILE",
            data_path("graph/media/media_image_2x2.png"),
        )
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("node is installed");
    // The app serves on this runtime while a blocking thread waits for node's exit.
    let pid = child.id() as libc::pid_t;
    let mut run = tokio::task::spawn_blocking(move || child.wait().expect("wait for node"));
    let status = match tokio::time::timeout(RUN_TIMEOUT, &mut run).await {
        Ok(exit) => Some(exit.unwrap()),
        Err(_) => {
            // SAFETY: a plain kill(2). The waiter has not returned, so node is not
            // reaped and the pid is still its own.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            run.await.unwrap();
            None
        }
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!("{output}");
    println!("screenshots: {}", artifacts.display());
    let status = status.unwrap_or_else(|| panic!("the browser run took over {RUN_TIMEOUT:?}"));
    assert!(
        status.success(),
        "the browser run failed ({status}): see its output above or {}",
        log_path.display()
    );
    for page in [
        "02-overview",
        "05-delivery-rejected",
        "07-conversation",
        "09-media",
    ] {
        let png = std::fs::read(artifacts.join(format!("{page}.png"))).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{page}.png is a PNG");
    }
}
