//! The data directory's permissions and start errors (issue 17, defect 7): a data
//! directory open to other users is made private, everything wagate writes in it
//! is 0600 (directories 0700) whatever was there before, and a start that cannot
//! use part of it says which path and why.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{test_config, TestApp};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Every file and directory under `dir`, with its mode.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let is_dir = p.is_dir();
        out.push((p.clone(), is_dir, mode(&p)));
        if is_dir {
            walk(&p, out);
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test]
async fn an_open_data_dir_is_made_private_and_what_is_written_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    // As an operator might leave it: 0777, with a world-readable journal directory.
    chmod(dir.path(), 0o777);
    std::fs::create_dir(dir.path().join("journal")).unwrap();
    chmod(&dir.path().join("journal"), 0o755);
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    let app = TestApp::spawn_in(dir, |_| {}).await;
    let body = std::fs::read(crate::support::data_path("payloads/msg_text.json")).unwrap();
    app.deliver(body).await;
    app.wait_applied().await;
    let dir = app.stop().await;

    assert_eq!(mode(dir.path()), 0o700, "the data directory");
    // In-process the test's umask applies to sled's own files: the binary's
    // umask 0077 is checked below; here its directory.
    assert_private(dir.path(), &["notes.txt"], true);
}

/// Every directory under `dir` is 0700 and every file 0600 (but `skip`, not
/// wagate's; and, when `sled_by_umask`, sled's own files in `state/`, whose mode the umask sets).
fn assert_private(dir: &Path, skip: &[&str], sled_by_umask: bool) {
    let mut all = Vec::new();
    walk(dir, &mut all);
    let segments = all
        .iter()
        .filter(|(p, _, _)| p.extension().is_some_and(|e| e == "seg"))
        .count();
    assert!(segments >= 2, "journal and quarantine: {all:?}");
    for (path, is_dir, m) in &all {
        let in_state = path.starts_with(dir.join("state")) && path != &dir.join("state");
        if skip.iter().any(|s| path.ends_with(s)) || (sled_by_umask && in_state && !is_dir) {
            continue;
        }
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{} is {m:o}", path.display());
    }
}

#[tokio::test]
async fn the_binary_writes_only_private_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o755);
    let server = crate::support::child::start(&dir);
    let client = reqwest::Client::new();
    let body = std::fs::read(crate::support::data_path("payloads/msg_text.json")).unwrap();
    let resp = client
        .post(format!("{}/webhook", server.base))
        .header("x-hub-signature-256", crate::support::sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    crate::support::child::wait_caught_up(&client, &server.base).await;
    server.kill();
    assert_eq!(mode(&dir), 0o700, "the data directory");
    // sled's files too: the binary's umask is 0077.
    assert_private(&dir, &[], false);
}

/// Starts wagate on `config` and hands back its start error.
async fn start_error(config: wagate::Config) -> String {
    match wagate::App::start(config).await {
        Ok(app) => {
            app.shutdown().await;
            panic!("wagate started");
        }
        Err(e) => e.to_string(),
    }
}

/// Makes `path` (a directory wagate uses) unusable: unreadable and unwritable, or,
/// as root (who ignores permissions), a regular file where a directory must be.
fn spoil(path: &Path) {
    if running_as_root() {
        std::fs::write(path, b"not a directory").unwrap();
    } else {
        std::fs::create_dir(path).unwrap();
        chmod(path, 0o000);
    }
}

#[tokio::test]
async fn an_unusable_state_or_journal_dir_is_named() {
    for sub in ["state", "journal"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(sub);
        spoil(&path);
        let err = start_error(test_config(dir.path())).await;
        if !running_as_root() {
            chmod(&path, 0o700);
        }
        assert!(
            err.contains(&path.display().to_string()),
            "{sub}: the error names {}: {err}",
            path.display()
        );
    }
}

#[tokio::test]
async fn an_unusable_data_dir_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = if running_as_root() {
        // Its parent is a regular file.
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        tmp.path().join("file/data")
    } else {
        let d = tmp.path().join("data");
        std::fs::create_dir(&d).unwrap();
        chmod(&d, 0o000);
        d
    };
    let err = start_error(test_config(&data)).await;
    if !running_as_root() {
        chmod(&data, 0o700);
    }
    assert!(err.contains("data directory"), "{err}");
    assert!(err.contains(&data.display().to_string()), "{err}");
}
