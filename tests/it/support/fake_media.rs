//! A fake Graph media API and media host on 127.0.0.1:0, raw HTTP/1.1 so that a
//! test can cut a body half-way, redirect, or hang. `GET /{version}/{media-id}`
//! answers the lookup (a URL back to this server); `GET /media/file...` serves the
//! file. Both follow a script, then their default; every request is recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::data_path;

#[derive(Debug, Clone)]
pub enum Answer {
    /// Lookup: 200 with the lookup JSON; file: 200 with the file.
    Ok,
    Status(u16),
    /// Announces the whole length, sends half, closes.
    Half,
    /// Sends these bytes with no `Content-Length` (close-delimited).
    Unsized(Vec<u8>),
    Redirect(String),
    /// Sends headers and half the body, then waits this long before closing.
    Hang(Duration),
}

#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
}

pub struct Inner {
    pub file: Vec<u8>,
    pub lookup_sha_hex: String,
    pub lookup_size: Option<u64>,
    pub lookups: VecDeque<Answer>,
    pub files: VecDeque<Answer>,
    pub requests: Vec<Req>,
}

#[derive(Clone)]
pub struct FakeMedia {
    pub base: String,
    pub inner: Arc<Mutex<Inner>>,
}

pub const MEDIA_ID: &str = "1003383421387256";

pub fn png() -> Vec<u8> {
    std::fs::read(data_path("graph/media/media_image_2x2.png")).expect("png")
}

impl FakeMedia {
    pub async fn start() -> FakeMedia {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let lookup: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data_path("graph/media_get_response.json")).expect("lookup"),
        )
        .expect("json");
        let inner = Arc::new(Mutex::new(Inner {
            file: png(),
            lookup_sha_hex: lookup["sha256"].as_str().expect("sha").to_string(),
            lookup_size: lookup["file_size"].as_u64(),
            lookups: VecDeque::new(),
            files: VecDeque::new(),
            requests: Vec::new(),
        }));
        let fake = FakeMedia { base, inner };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let f = f.clone();
                tokio::spawn(async move {
                    let _ = f.serve(conn).await;
                });
            }
        });
        fake
    }

    /// `127.0.0.1:<port>`: the `WAGATE_MEDIA_HOSTS` entry that allows this server
    /// (a bare host allows the scheme's default port only).
    pub fn host_port(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    pub fn file_url(&self) -> String {
        format!("{}/media/file?mid={MEDIA_ID}&source=webhook", self.base)
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    pub fn script_files(&self, a: impl IntoIterator<Item = Answer>) {
        self.lock().files.extend(a);
    }

    pub fn script_lookups(&self, a: impl IntoIterator<Item = Answer>) {
        self.lock().lookups.extend(a);
    }

    pub fn requests(&self) -> Vec<Req> {
        self.lock().requests.clone()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    async fn serve(&self, mut conn: TcpStream) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let path = text.split(' ').nth(1).unwrap_or("").to_string();
        let header = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let req = Req {
            path: path.clone(),
            authorization: header("authorization"),
            user_agent: header("user-agent"),
        };
        let is_file = path.starts_with("/media/");
        let (answer, file, body) = {
            let mut g = self.lock();
            g.requests.push(req);
            let answer = if is_file {
                g.files.pop_front()
            } else {
                g.lookups.pop_front()
            };
            let mut lookup = serde_json::json!({"url": format!("{}/media/file?mid={MEDIA_ID}&ext=1", self.base),
                "mime_type": "image/png", "sha256": g.lookup_sha_hex, "id": MEDIA_ID, "messaging_product": "whatsapp"});
            if let Some(n) = g.lookup_size {
                lookup["file_size"] = n.into();
            }
            (
                answer.unwrap_or(Answer::Ok),
                g.file.clone(),
                serde_json::to_vec(&lookup).unwrap(),
            )
        };
        let (ctype, body) = if is_file {
            ("image/png", file)
        } else {
            ("application/json", body)
        };
        let mut out = Vec::new();
        match answer {
            Answer::Ok => {
                out.extend(format!("HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).bytes());
                out.extend(&body);
            }
            Answer::Status(s) => {
                out.extend(
                    format!("HTTP/1.1 {s} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .bytes(),
                );
            }
            Answer::Half | Answer::Hang(_) => {
                out.extend(format!("HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).bytes());
                out.extend(&body[..body.len() / 2]);
            }
            Answer::Unsized(ref b) => {
                out.extend(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\nconnection: close\r\n\r\n"
                    )
                    .bytes(),
                );
                conn.write_all(&out).await?;
                for chunk in b.chunks(64 * 1024) {
                    conn.write_all(chunk).await?;
                }
                return conn.shutdown().await;
            }
            Answer::Redirect(ref to) => {
                out.extend(format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").bytes());
            }
        }
        conn.write_all(&out).await?;
        if let Answer::Hang(d) = answer {
            tokio::time::sleep(d).await;
        }
        conn.shutdown().await
    }
}
