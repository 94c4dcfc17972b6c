//! clamd for the scanning tests: a scripted fake on a Unix socket, and Debian's
//! real clamd (child process) with one signature, EICAR's.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use wagate::media::scan::{ClamdAddr, Scanner};

use super::fake_media::FakeMedia;
use super::media::setup;
use super::{eventually, TestApp};

/// The EICAR anti-malware test file (harmless by design).
pub const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A scripted clamd: answers `INSTREAM` from a script (then `stream: OK`), or
/// closes without an answer for `None`; records every stream it was sent.
#[derive(Clone)]
pub struct FakeClamd {
    pub path: PathBuf,
    pub script: Arc<Mutex<VecDeque<Option<&'static str>>>>,
    pub streams: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeClamd {
    /// A fake in a new temp dir (kept alive by the caller), with `script` queued.
    pub fn with_script(
        script: impl IntoIterator<Item = Option<&'static str>>,
    ) -> (tempfile::TempDir, FakeClamd) {
        let dir = tempfile::tempdir().unwrap();
        let clamd = FakeClamd::start(dir.path());
        clamd.script.lock().unwrap().extend(script);
        (dir, clamd)
    }

    pub fn start(dir: &Path) -> FakeClamd {
        let path = dir.join("clamd.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let fake = FakeClamd {
            path,
            script: Arc::default(),
            streams: Arc::default(),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut cmd = [0u8; 10];
                if conn.read_exact(&mut cmd).await.is_err() || &cmd != b"zINSTREAM\0" {
                    continue;
                }
                let mut data = Vec::new();
                while let Ok(n) = conn.read_u32().await {
                    if n == 0 {
                        break;
                    }
                    let mut chunk = vec![0u8; n as usize];
                    if conn.read_exact(&mut chunk).await.is_err() {
                        break;
                    }
                    data.extend_from_slice(&chunk);
                }
                f.streams.lock().unwrap().push(data);
                let answer = f
                    .script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Some("stream: OK"));
                if let Some(a) = answer {
                    let _ = conn.write_all(format!("{a}\0").as_bytes()).await;
                }
            }
        });
        fake
    }
}

/// Debian's clamd as a child process, on a socket in a directory of the caller's,
/// with one signature: EICAR's MD5. Killed on drop.
pub struct RealClamd {
    child: std::process::Child,
    pub sock: PathBuf,
}

impl Drop for RealClamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealClamd {
    /// Starts clamd in `dir`; returns once it answers PING.
    pub async fn start(dir: &Path) -> RealClamd {
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        // ClamAV's hash signature format: MD5 (EICAR's well-known one), size, name.
        std::fs::write(
            db.join("eicar.hdb"),
            format!("{EICAR_MD5}:{}:Eicar-Test-Signature\n", EICAR.len()),
        )
        .unwrap();
        let sock = dir.join("clamd.sock");
        let conf = dir.join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nLocalSocket {}\nDatabaseDirectory {}\nLogFile {}\n",
                sock.display(),
                db.display(),
                dir.join("clamd.log").display()
            ),
        )
        .unwrap();
        let clamd = ["/usr/sbin/clamd", "/usr/bin/clamd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("clamd is not installed (apt-get install clamav-daemon)");
        let child = std::process::Command::new(clamd)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start clamd");
        let clamd = RealClamd { child, sock };
        let scanner = Scanner {
            addr: ClamdAddr::Unix(clamd.sock.clone()),
            timeout: Duration::from_secs(5),
        };
        // Loading one signature takes well under a second.
        eventually("clamd to answer PING", async || scanner.ping()).await;
        clamd
    }
}

/// wagate downloading from `fake` and scanning with the clamd on `sock`.
pub async fn spawn_scanning(fake: &FakeMedia, sock: &Path) -> TestApp {
    let (f, sock) = (fake.clone(), sock.to_path_buf());
    TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.media.clamd = Some(ClamdAddr::Unix(sock));
        c.media.clamd_timeout = Duration::from_secs(5);
    })
    .await
}
