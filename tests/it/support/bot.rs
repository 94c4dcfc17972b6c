//! Bots built on SDKs nobody here wrote, as child processes: forwarding targets that
//! verify signatures their own way. A bot prints `port N` once listening on
//! 127.0.0.1 and answers `GET /counts` with what it saw.
//!
//! - pywa (PyPI): `tests/pywa/receive_behind_wagate.py`; needs python3 with pywa
//!   and flask.
//! - whatsapp-api-js (npm): `tests/bots/whatsapp-api-js/bot.mjs`; needs node and
//!   `npm ci` run in its folder.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::data_path;

/// The running bot; killed on drop.
pub struct Bot {
    child: Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bot {
    /// The pywa bot verifying signatures with `app_secret` (blocking: call it from
    /// `spawn_blocking`).
    pub fn pywa(app_secret: &str) -> Bot {
        let mut c = Command::new("python3");
        c.arg("-u")
            .arg(data_path("../pywa/receive_behind_wagate.py"))
            .arg(app_secret);
        Bot::start(c)
    }

    /// The whatsapp-api-js bot verifying signatures with `app_secret` (blocking).
    pub fn whatsapp_api_js(app_secret: &str) -> Bot {
        let mut c = Command::new("node");
        c.current_dir(data_path("../bots/whatsapp-api-js"))
            .arg("bot.mjs")
            .arg(app_secret)
            .arg("0");
        Bot::start(c)
    }

    /// Runs `c`; returns once the bot has printed its port.
    fn start(mut c: Command) -> Bot {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("run {c:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut bot = Bot { child, port: 0 };
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("the bot printed its port").unwrap();
        bot.port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the bot: {line}"));
        std::thread::spawn(move || for _ in lines {});
        bot
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `GET /counts`.
    pub async fn counts(&self, client: &reqwest::Client) -> serde_json::Value {
        client
            .get(format!("http://127.0.0.1:{}/counts", self.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
