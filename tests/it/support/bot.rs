//! A pywa bot (`tests/pywa/receive_behind_wagate.py`) as a child process: a
//! forwarding target nobody here wrote. Needs python3 with pywa and flask.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::data_path;

/// The running bot; killed on drop.
pub struct PywaBot {
    child: Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl Drop for PywaBot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PywaBot {
    /// Starts the bot verifying signatures with `app_secret`; returns once it has
    /// printed its port (blocking: call it from `spawn_blocking`).
    pub fn start(app_secret: &str) -> PywaBot {
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(data_path("../pywa/receive_behind_wagate.py"))
            .arg(app_secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3");
        let stdout = child.stdout.take().unwrap();
        let mut bot = PywaBot { child, port: 0 };
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("the bot printed its port").unwrap();
        bot.port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the bot: {line}"));
        std::thread::spawn(move || for _ in lines {});
        bot
    }
}
