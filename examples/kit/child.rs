//! The real wagate binary as a child process: started with the drivers' environment
//! (optionally pinned to CPUs with `taskset`), its log appended to a file, the
//! address it listens on read from that log; stopped with SIGKILL or SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Res;

pub struct Wagate {
    child: Child,
    pub pid: u32,
    addr: Option<oneshot::Receiver<String>>,
    /// `http://127.0.0.1:<port>` once listening.
    pub base: String,
}

/// A server must never outlive its driver.
impl Drop for Wagate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` (with `args`) under `env`, appending its output to `log` under a
/// header naming `generation`. `cpus`: run it under `taskset -c <cpus>`.
pub fn spawn(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    log: &Path,
    generation: u64,
    cpus: Option<&str>,
) -> Res<Wagate> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let _ = writeln!(file, "=== process {generation} ===");
    let stderr = file.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = match cpus {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.arg("-c").arg(c).arg(program);
            t
        }
        None => Command::new(program),
    };
    let mut child = cmd
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
            if let Some(addr) = listening_addr(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    Ok(Wagate {
        child,
        pid,
        addr: Some(rx),
        base: String::new(),
    })
}

/// The address in a `wagate listening addr=...` log line (or `listening addr=...`
/// from the drivers' own servers).
fn listening_addr(line: &str) -> Option<String> {
    let rest = line.split("listening").nth(1)?;
    let addr = rest.split("addr=").nth(1)?.split_whitespace().next()?;
    Some(addr.to_string())
}

impl Wagate {
    /// Waits until the process says where it listens; its base URL.
    pub async fn listening(&mut self, limit: Duration) -> Res<String> {
        let rx = self.addr.take().ok_or("already listening")?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(addr)) => {
                self.base = format!("http://{addr}");
                Ok(self.base.clone())
            }
            Ok(Err(_)) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(format!("wagate exited before listening ({status})"))
            }
            Err(_) => Err(format!("wagate not listening within {limit:?}")),
        }
    }

    /// Has it said where it listens yet? (Consumes the address: for a process about
    /// to be killed.)
    pub fn said_listening(&mut self) -> bool {
        self.addr.as_mut().is_some_and(|rx| rx.try_recv().is_ok())
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, reaped.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `limit` for a clean exit (SIGKILL after that);
    /// whether it exited by itself with status 0.
    pub async fn term(mut self, limit: Duration) -> bool {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}
