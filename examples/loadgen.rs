//! Load generator for wagate's webhook endpoint.
//!
//! Usage (against a wagate already listening on 127.0.0.1:8080 and started with the
//! same `META_APP_SECRET`):
//!
//! ```text
//! cargo run --release --example loadgen -- --connections 16,64,256 --duration 10
//! cargo run --release --example loadgen -- --once          # one request, print status + body
//! cargo run --release --example loadgen -- --help          # all options
//! ```
//!
//! Options: `--url` (default `http://127.0.0.1:8080/webhook`), `--secret`,
//! `--connections` (comma-separated, default `16,64,256`), `--duration` (seconds per
//! level, default 10), `--warmup` (seconds, default 1), `--size` (body bytes, default
//! 2048), `--kind` (`message`, default, or `status`), `--contacts` (distinct senders,
//! default 1), `--messages` (items per delivery, default 1), `--rate` (offered requests/s),
//! `--max-requests` (measured requests per level), `--timeout` (seconds per
//! request/connect, default 10), `--threads` (generator threads, default 1), `--once`.
//!
//! For every connection count in `--connections` it opens that many keep-alive
//! HTTP/1.1 connections and has each one send POSTs back to back (one in flight per
//! connection) for `--warmup` + `--duration` seconds. Every body is a unique, valid
//! WhatsApp Cloud API webhook (`messages` change with a text message, or with one
//! `delivered` status under `--kind status`) of about
//! `--size` bytes, with a fresh `wamid.LOADGEN<run id><conn><counter>` message id
//! and the current unix time as its timestamp, signed per request with
//! `X-Hub-Signature-256: sha256=<hex hmac-sha256(body, secret)>`. The secret comes
//! from `--secret`, else `META_APP_SECRET`, else `test_app_secret_do_not_use`.
//!
//! Only responses with status 200 count as successes; req/s is 200s per second of
//! the measured window (warmup excluded), latencies are those of the 200s. The
//! `non-2xx` column counts every response whose status is not 200, `errors` counts
//! connect/read/write failures, early closes, malformed responses and timeouts.
//! A Markdown table is printed at the end; the exit status is 0 once all levels ran
//! (2 for bad arguments, 1 if the target cannot be reached at all). With `--once`
//! the exit status is 0 only if the answer was 200.
//!
//! The HTTP client is a deliberately minimal one written over `tokio::net::TcpStream`
//! (request buffers are built once per connection and patched in place), so that
//! on a small machine the generator takes as little CPU as possible away from the
//! server it measures. It runs on one thread unless `--threads` says otherwise.
//! It is bounded in time (every request and connect has a deadline) and refuses any
//! target that is not a loopback address (127.0.0.0/8, ::1 or `localhost`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout_at, Instant};

/// `println!` that ignores a closed stdout (e.g. piped into `head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

type HmacSha256 = Hmac<Sha256>;

/// Largest response head accepted, in bytes.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted, in bytes.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Digits reserved in the message id for the connection number (unique per run).
const CONN_DIGITS: usize = 6;
/// Digits reserved in the message id for the per-connection request counter.
const COUNTER_DIGITS: usize = 10;
/// Digits of the unix timestamp (good until the year 2286).
const TS_DIGITS: usize = 10;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Load generator for wagate's WhatsApp webhook endpoint (loopback targets only)"
)]
struct Args {
    /// Webhook URL; plain http:// on 127.0.0.0/8, [::1] or localhost only.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
    url: String,

    /// App secret used to sign bodies (X-Hub-Signature-256).
    #[arg(
        long,
        env = "META_APP_SECRET",
        default_value = "test_app_secret_do_not_use",
        hide_env_values = true
    )]
    secret: String,

    /// Comma-separated list of concurrent connection counts, one level each.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    connections: Vec<usize>,

    /// Measured seconds per level.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// What each delivery carries: one inbound text `message`, or one `status`
    /// (`delivered`) of an outbound message.
    #[arg(long, value_enum, default_value_t = Kind::Message)]
    kind: Kind,

    /// Messages (or statuses) per delivery, each with its own id: fills a store
    /// faster than one per request (the first one carries the padding).
    #[arg(long, default_value_t = 1)]
    messages: usize,

    /// Distinct senders (`wa_id`s) the messages come from (or recipients of the
    /// statuses), spread over connections and requests.
    #[arg(long, default_value_t = 1)]
    contacts: u64,

    /// Request body size in bytes (padding in the text body; never below the skeleton).
    #[arg(long, default_value_t = 2048)]
    size: usize,

    /// Warmup seconds per level, not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,

    /// Stop a level after this many measured requests.
    #[arg(long)]
    max_requests: Option<u64>,

    /// Offered load in requests/s over all connections (0: as fast as answers come).
    /// With a rate, the run shows whether the server keeps up at that load.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,

    /// Per-request (and per-connect) timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,

    /// Runtime worker threads for the generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// Send exactly one request, print the status and body, and exit.
    #[arg(long)]
    once: bool,
}

/// Where requests go: the loopback addresses to try and what to put in the request line.
#[derive(Debug, Clone)]
struct Target {
    host_header: String,
    path: String,
    candidates: Vec<SocketAddr>,
}

fn is_allowed_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// Parses `http://host[:port][/path]`, refusing anything that is not loopback.
fn parse_target(url: &str) -> Result<Target, String> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| format!("not an absolute URL: {url:?}"))?;
    if !url[..scheme_end].eq_ignore_ascii_case("http") {
        return Err(format!(
            "only plain http:// URLs are supported, got {:?}",
            &url[..scheme_end]
        ));
    }
    let rest = &url[scheme_end + 3..];
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("");
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "URL path contains spaces or control characters: {path:?}"
        ));
    }
    if authority.is_empty() {
        return Err(format!("URL has no host: {url:?}"));
    }
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_string());
    }
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let end = r
            .find(']')
            .ok_or_else(|| format!("unterminated [ in host: {authority:?}"))?;
        let after = &r[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("bad authority: {authority:?}"))?,
            ),
        };
        (&r[..end], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port: u16 = match port {
        None => 80,
        Some(p) => match p.parse() {
            Ok(0) | Err(_) => return Err(format!("bad port: {p:?}")),
            Ok(p) => p,
        },
    };
    let ips: Vec<IpAddr> = if host.eq_ignore_ascii_case("localhost") {
        // Not resolved through DNS / /etc/hosts on purpose: localhost means loopback.
        vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
    } else {
        match host.parse::<IpAddr>() {
            Ok(ip) if is_allowed_ip(ip) => vec![ip],
            Ok(ip) => {
                return Err(format!(
                    "refusing non-loopback target {ip}: only 127.0.0.0/8, ::1 and localhost are allowed"
                ))
            }
            Err(_) => {
                return Err(format!(
                    "refusing target host {host:?}: only 127.0.0.0/8, ::1 and localhost are allowed"
                ))
            }
        }
    };
    Ok(Target {
        host_header: authority.to_string(),
        path,
        candidates: ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// Request template: built once per connection, patched in place per request.
// ---------------------------------------------------------------------------

const BODY_HEAD: &str = concat!(
    r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":"#,
    r#"{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","#,
    r#""phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Load"},"#,
    r#""wa_id":"16505551234"}],"messages":["#
);
/// The contact's number as it appears in a body.
const SENDER: &str = "16505551234";
const MSG_ITEM_START: &str = r#"{"from":"16505551234","id":"wamid.LOADGEN"#;
const BODY_AFTER_ID: &str = r#"","timestamp":""#;
const BODY_AFTER_TS: &str = r#"","text":{"body":""#;
const MSG_ITEM_END: &str = r#""},"type":"text"}"#;
const STATUS_HEAD: &str = concat!(
    r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":"#,
    r#"{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","#,
    r#""phone_number_id":"106540352242922"},"statuses":["#
);
const STATUS_ITEM_START: &str = r#"{"id":"wamid.LOADGEN"#;
const STATUS_AFTER_ID: &str = r#"","status":"delivered","timestamp":""#;
const STATUS_AFTER_TS: &str = r#"","recipient_id":"16505551234","biz_opaque_callback_data":""#;
const STATUS_ITEM_END: &str = r#""}"#;
const BODY_CLOSE: &str = r#"]},"field":"messages"}]}]}"#;
/// Digits of the item number appended (`_001`) to the ids of the second and later
/// items of one delivery (`--messages`).
const ITEM_DIGITS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Message,
    Status,
}

impl Kind {
    /// The body before the items, and each item around its id, its timestamp and
    /// the padding (the first item's text, or its callback data).
    fn parts(self) -> [&'static str; 5] {
        match self {
            Kind::Message => [
                BODY_HEAD,
                MSG_ITEM_START,
                BODY_AFTER_ID,
                BODY_AFTER_TS,
                MSG_ITEM_END,
            ],
            Kind::Status => [
                STATUS_HEAD,
                STATUS_ITEM_START,
                STATUS_AFTER_ID,
                STATUS_AFTER_TS,
                STATUS_ITEM_END,
            ],
        }
    }
}
const PADDING: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ";

#[derive(Clone)]
struct RequestTemplate {
    /// Complete request: head followed by body.
    buf: Vec<u8>,
    body_start: usize,
    sig_at: usize,
    /// Where each item's connection number, counter and timestamp are.
    items: Vec<ItemAt>,
    /// Where the sender's number is (contacts[].wa_id and messages[].from): its last
    /// `CONTACT_DIGITS` digits are the contact number.
    contact_at: Vec<usize>,
    contacts: u64,
    conn: u64,
    /// Where the first message id (`wamid.LOADGEN...`) starts.
    id_at: usize,
}

/// Offsets in a request of the digits one item's id and timestamp are made of.
#[derive(Clone, Copy)]
struct ItemAt {
    conn: usize,
    counter: usize,
    ts: usize,
}

impl ItemAt {
    fn shifted(self, by: usize) -> ItemAt {
        ItemAt {
            conn: self.conn + by,
            counter: self.counter + by,
            ts: self.ts + by,
        }
    }
}

/// Appends one item (its id numbered `n` when `n > 0`) up to where its padding goes.
fn push_item(body: &mut String, kind: Kind, run_id: &str, n: usize) -> ItemAt {
    let [_, start, after_id, after_ts, _] = kind.parts();
    body.push_str(start);
    body.push_str(run_id);
    let conn = body.len();
    body.push_str(&"0".repeat(CONN_DIGITS));
    let counter = body.len();
    body.push_str(&"0".repeat(COUNTER_DIGITS));
    if n > 0 {
        let _ = write!(body, "_{n:0width$}", width = ITEM_DIGITS);
    }
    body.push_str(after_id);
    let ts = body.len();
    body.push_str(&"0".repeat(TS_DIGITS));
    body.push_str(after_ts);
    ItemAt { conn, counter, ts }
}

const CONTACT_DIGITS: usize = 7;

fn write_digits(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

impl RequestTemplate {
    fn new(
        target: &Target,
        run_id: &str,
        size: usize,
        contacts: u64,
        kind: Kind,
        messages: usize,
    ) -> Self {
        let [head, _, _, _, item_end] = kind.parts();
        let mut body = String::with_capacity(size.max(1024));
        body.push_str(head);
        let first = push_item(&mut body, kind, run_id, 0);
        // The other items, after the first one's padding: placed once its length is known.
        let mut rest = String::from(item_end);
        let mut rest_items = Vec::new();
        for n in 1..messages.max(1) {
            rest.push(',');
            rest_items.push(push_item(&mut rest, kind, run_id, n));
            rest.push_str(item_end);
        }
        rest.push_str(BODY_CLOSE);
        let pad = size.saturating_sub(body.len() + rest.len());
        body.extend(PADDING.chars().cycle().take(pad));
        let rest_at = body.len();
        body.push_str(&rest);
        let contact_at: Vec<usize> = body
            .match_indices(SENDER)
            .map(|(i, _)| i + SENDER.len() - CONTACT_DIGITS)
            .collect();

        let mut buf = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wagate-loadgen\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             X-Hub-Signature-256: sha256=",
            target.path,
            target.host_header,
            body.len()
        );
        let sig_at = buf.len();
        buf.push_str(&"0".repeat(64));
        buf.push_str("\r\n\r\n");
        let body_start = buf.len();
        buf.push_str(&body);
        let items = std::iter::once(first.shifted(body_start))
            .chain(rest_items.iter().map(|i| i.shifted(body_start + rest_at)))
            .collect();
        RequestTemplate {
            buf: buf.into_bytes(),
            body_start,
            sig_at,
            items,
            contact_at: contact_at.iter().map(|at| body_start + at).collect(),
            contacts: contacts.clamp(1, 10u64.pow(CONTACT_DIGITS as u32)),
            conn: 0,
            id_at: body_start + head.len() + kind.parts()[1].len() - "wamid.LOADGEN".len(),
        }
    }

    fn body_len(&self) -> usize {
        self.buf.len() - self.body_start
    }

    fn set_conn(&mut self, conn: u64) {
        self.conn = conn;
        for at in self.items.iter().map(|i| i.conn) {
            write_digits(&mut self.buf[at..at + CONN_DIGITS], conn);
        }
    }

    /// Stamps counter and timestamp into the body and signs it. Allocation-free.
    fn prepare(&mut self, counter: u64, unix_secs: u64, mac: &HmacSha256) {
        for item in &self.items {
            write_digits(
                &mut self.buf[item.counter..item.counter + COUNTER_DIGITS],
                counter,
            );
            write_digits(&mut self.buf[item.ts..item.ts + TS_DIGITS], unix_secs);
        }
        if self.contacts > 1 {
            let contact = (self.conn.wrapping_mul(7919).wrapping_add(counter)) % self.contacts;
            for &at in &self.contact_at {
                write_digits(&mut self.buf[at..at + CONTACT_DIGITS], contact);
            }
        }
        let mut mac = mac.clone();
        mac.update(&self.buf[self.body_start..]);
        let tag = mac.finalize().into_bytes();
        hex::encode_to_slice(tag, &mut self.buf[self.sig_at..self.sig_at + 64])
            .expect("64 hex digits for a 32-byte tag");
    }

    fn message_id(&self) -> &str {
        let end = self.items[0].counter + COUNTER_DIGITS;
        std::str::from_utf8(&self.buf[self.id_at..end]).unwrap_or("?")
    }

    fn body(&self) -> &[u8] {
        &self.buf[self.body_start..]
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 response reader.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrKind {
    Connect,
    Write,
    Read,
    Closed,
    BadResponse,
    Timeout,
}

const ERR_KINDS: [(ErrKind, &str); 6] = [
    (ErrKind::Connect, "connect"),
    (ErrKind::Write, "write"),
    (ErrKind::Read, "read"),
    (ErrKind::Closed, "closed"),
    (ErrKind::BadResponse, "bad-response"),
    (ErrKind::Timeout, "timeout"),
];

struct Response {
    status: u16,
    /// The server will close (or closed) the connection after this response.
    close: bool,
    body: Option<Vec<u8>>,
}

/// Reads more bytes into `buf`; EOF is an error (the response is incomplete).
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ErrKind> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(8192);
    }
    match stream.read_buf(buf).await {
        Ok(0) => Err(ErrKind::Closed),
        Ok(_) => Ok(()),
        Err(_) => Err(ErrKind::Read),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

struct Head {
    status: u16,
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

fn parse_head(head: &[u8]) -> Result<Head, ErrKind> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(ErrKind::BadResponse)?;
    let mut parts = status_line.splitn(3, |&b| b == b' ');
    let version = parts.next().ok_or(ErrKind::BadResponse)?;
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(ErrKind::BadResponse),
    };
    let code = parts.next().ok_or(ErrKind::BadResponse)?;
    let status: u16 = std::str::from_utf8(code)
        .ok()
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse().ok())
        .ok_or(ErrKind::BadResponse)?;
    let mut content_length = None;
    let mut chunked = false;
    let mut close = !http11;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ErrKind::BadResponse)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let n: usize = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(ErrKind::BadResponse)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(ErrKind::BadResponse);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = has_token(value, "chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, "close") {
                close = true;
            } else if has_token(value, "keep-alive") && !http11 {
                close = false;
            }
        }
    }
    Ok(Head {
        status,
        len: head.len(),
        content_length,
        chunked,
        close,
    })
}

/// Reads one response from `stream`. `buf` holds bytes already received and keeps
/// whatever follows the response.
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    keep_body: bool,
) -> Result<Response, ErrKind> {
    loop {
        let mut scan_from = 0;
        let head_end = loop {
            if let Some(p) = find(buf, b"\r\n\r\n", scan_from) {
                break p + 4;
            }
            if buf.len() > MAX_HEAD {
                return Err(ErrKind::BadResponse);
            }
            scan_from = buf.len().saturating_sub(3);
            fill(stream, buf).await?;
        };
        let head = parse_head(&buf[..head_end])?;
        if (100..200).contains(&head.status) && head.status != 101 {
            buf.drain(..head_end); // interim response (e.g. 100 Continue): skip
            continue;
        }
        let mut body = keep_body.then(Vec::new);
        let mut close = head.close;
        let consumed = if head.status == 204 || head.status == 304 {
            head.len
        } else if head.chunked {
            read_chunked(stream, buf, head.len, body.as_mut()).await?
        } else if let Some(n) = head.content_length {
            if n > MAX_BODY {
                return Err(ErrKind::BadResponse);
            }
            while buf.len() < head.len + n {
                fill(stream, buf).await?;
            }
            if let Some(b) = body.as_mut() {
                b.extend_from_slice(&buf[head.len..head.len + n]);
            }
            head.len + n
        } else {
            // No framing: the body runs to EOF.
            close = true;
            loop {
                if buf.len() - head.len > MAX_BODY {
                    return Err(ErrKind::BadResponse);
                }
                match fill(stream, buf).await {
                    Ok(()) => {}
                    Err(ErrKind::Closed) => break,
                    Err(e) => return Err(e),
                }
            }
            if let Some(b) = body.as_mut() {
                b.extend_from_slice(&buf[head.len..]);
            }
            buf.len()
        };
        buf.drain(..consumed);
        return Ok(Response {
            status: head.status,
            close,
            body,
        });
    }
}

/// Decodes a chunked body starting at `pos`; returns the offset just past it.
async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut pos: usize,
    mut body: Option<&mut Vec<u8>>,
) -> Result<usize, ErrKind> {
    let mut total = 0usize;
    loop {
        let line_end = loop {
            if let Some(p) = find(buf, b"\r\n", pos) {
                break p;
            }
            if buf.len() - pos > 1024 {
                return Err(ErrKind::BadResponse);
            }
            fill(stream, buf).await?;
        };
        let size_field = buf[pos..line_end]
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = std::str::from_utf8(size_field)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(ErrKind::BadResponse)?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers, up to an empty line.
            loop {
                let end = loop {
                    if let Some(p) = find(buf, b"\r\n", pos) {
                        break p;
                    }
                    if buf.len() - pos > MAX_HEAD {
                        return Err(ErrKind::BadResponse);
                    }
                    fill(stream, buf).await?;
                };
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(pos);
                }
            }
        }
        total += size;
        if total > MAX_BODY {
            return Err(ErrKind::BadResponse);
        }
        while buf.len() < pos + size + 2 {
            fill(stream, buf).await?;
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(ErrKind::BadResponse);
        }
        if let Some(b) = body.as_deref_mut() {
            b.extend_from_slice(&buf[pos..pos + size]);
        }
        pos += size + 2;
    }
}

async fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, ErrKind> {
    match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(_)) => Err(ErrKind::Connect),
        Err(_) => Err(ErrKind::Timeout),
    }
}

async fn round_trip(
    stream: &mut TcpStream,
    req: &[u8],
    rbuf: &mut Vec<u8>,
    keep_body: bool,
) -> Result<Response, ErrKind> {
    stream.write_all(req).await.map_err(|_| ErrKind::Write)?;
    read_response(stream, rbuf, keep_body).await
}

// ---------------------------------------------------------------------------
// Load levels.
// ---------------------------------------------------------------------------

struct Shared {
    addr: SocketAddr,
    mac: HmacSha256,
    measure_start: Instant,
    measure_end: Instant,
    hard_end: Instant,
    timeout: Duration,
    cap: Option<u64>,
    issued: AtomicU64,
    /// Time between two requests of one connection, for `--rate`.
    interval: Option<Duration>,
}

#[derive(Default)]
struct ConnStats {
    sent: u64,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    errors: [u64; ERR_KINDS.len()],
    reconnects: u64,
    latencies_us: Vec<u32>,
    last_done: Option<Instant>,
}

impl ConnStats {
    fn error(&mut self, kind: ErrKind) {
        let i = ERR_KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
        self.errors[i] += 1;
    }

    fn merge(&mut self, other: ConnStats) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.reconnects += other.reconnects;
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.last_done = self.last_done.max(other.last_done);
    }
}

async fn worker(
    shared: Arc<Shared>,
    mut tpl: RequestTemplate,
    mut stream: Option<TcpStream>,
) -> ConnStats {
    let mut st = ConnStats::default();
    let mut rbuf: Vec<u8> = Vec::with_capacity(8192);
    let mut counter: u64 = 0;
    let mut next_send = Instant::now();
    loop {
        if let Some(interval) = shared.interval {
            next_send += interval;
            if next_send > Instant::now() {
                tokio::time::sleep_until(next_send).await;
            }
        }
        let now = Instant::now();
        if now >= shared.measure_end {
            break;
        }
        if stream.is_none() {
            let deadline = (now + shared.timeout).min(shared.hard_end);
            match connect(shared.addr, deadline).await {
                Ok(s) => {
                    if now >= shared.measure_start {
                        st.reconnects += 1;
                    }
                    rbuf.clear();
                    stream = Some(s);
                }
                Err(e) => {
                    if now >= shared.measure_start {
                        st.error(e);
                    }
                    sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        let start = Instant::now();
        let measured = start >= shared.measure_start;
        if measured {
            if let Some(cap) = shared.cap {
                if shared.issued.fetch_add(1, Ordering::Relaxed) >= cap {
                    break;
                }
            }
        }
        counter += 1;
        tpl.prepare(counter, unix_now(), &shared.mac);
        let deadline = (start + shared.timeout).min(shared.hard_end);
        let result = timeout_at(deadline, round_trip(s, &tpl.buf, &mut rbuf, false)).await;
        let end = Instant::now();
        if measured {
            st.sent += 1;
        }
        match result {
            Ok(Ok(resp)) => {
                if measured {
                    if resp.status == 200 {
                        st.ok += 1;
                        let us = end.duration_since(start).as_micros();
                        st.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    } else {
                        *st.statuses.entry(resp.status).or_default() += 1;
                    }
                    st.last_done = Some(end);
                }
                if resp.close {
                    stream = None;
                }
            }
            Ok(Err(e)) => {
                if measured {
                    st.error(e);
                }
                stream = None;
            }
            Err(_) => {
                if measured {
                    st.error(ErrKind::Timeout);
                }
                stream = None;
            }
        }
    }
    st
}

struct LevelReport {
    connections: usize,
    stats: ConnStats,
    window_secs: f64,
    rps: f64,
    p50: u32,
    p90: u32,
    p99: u32,
    max: u32,
}

impl LevelReport {
    fn non_200(&self) -> u64 {
        self.stats.statuses.values().sum()
    }

    fn errors(&self) -> u64 {
        self.stats.errors.iter().sum()
    }
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

#[allow(clippy::too_many_arguments)]
async fn run_level(
    args: &Args,
    target: &Target,
    addr: SocketAddr,
    mac: &HmacSha256,
    run_id: &str,
    connections: usize,
    first_conn_id: u64,
) -> LevelReport {
    let timeout = Duration::from_secs_f64(args.timeout);
    // Open all connections up front (connect errors are retried by the workers).
    let mut streams = Vec::with_capacity(connections);
    let connect_deadline = Instant::now() + timeout;
    let mut connect_failures = 0u64;
    for _ in 0..connections {
        match connect(addr, connect_deadline).await {
            Ok(s) => streams.push(Some(s)),
            Err(_) => {
                connect_failures += 1;
                streams.push(None);
            }
        }
    }
    if connect_failures > 0 {
        eprintln!("  warning: {connect_failures} of {connections} initial connects failed; retrying during the run");
    }
    let measure_start = Instant::now() + Duration::from_secs_f64(args.warmup);
    let measure_end = measure_start + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        addr,
        mac: mac.clone(),
        measure_start,
        measure_end,
        hard_end: measure_end + timeout,
        timeout,
        cap: args.max_requests,
        issued: AtomicU64::new(0),
        interval: (args.rate > 0.0)
            .then(|| Duration::from_secs_f64(connections as f64 / args.rate)),
    });
    let base = RequestTemplate::new(
        target,
        run_id,
        args.size,
        args.contacts,
        args.kind,
        args.messages,
    );
    let mut handles = Vec::with_capacity(connections);
    for (i, stream) in streams.into_iter().enumerate() {
        let mut tpl = base.clone();
        tpl.set_conn(first_conn_id + i as u64);
        handles.push(tokio::spawn(worker(shared.clone(), tpl, stream)));
    }
    let mut total = ConnStats::default();
    for h in handles {
        match h.await {
            Ok(st) => total.merge(st),
            Err(e) => eprintln!("  warning: a connection task failed: {e}"),
        }
    }
    total.latencies_us.sort_unstable();
    // The window is the configured duration, unless --max-requests ended the level
    // early: then it runs up to the last measured response.
    let cap_hit = args
        .max_requests
        .is_some_and(|cap| shared.issued.load(Ordering::Relaxed) >= cap);
    let window_secs = match total.last_done {
        Some(t) if cap_hit && t > measure_start => t.duration_since(measure_start).as_secs_f64(),
        _ => args.duration,
    };
    let lat = &total.latencies_us;
    LevelReport {
        connections,
        rps: total.ok as f64 / window_secs,
        window_secs,
        p50: percentile(lat, 0.50),
        p90: percentile(lat, 0.90),
        p99: percentile(lat, 0.99),
        max: lat.last().copied().unwrap_or(0),
        stats: total,
    }
}

fn summary_line(r: &LevelReport) -> String {
    let mut s = format!(
        "[{:>4} conns] {:>8.0} req/s | p50 {:.3} p90 {:.3} p99 {:.3} max {:.3} ms | sent {} ok {} non-200 {}",
        r.connections,
        r.rps,
        ms(r.p50),
        ms(r.p90),
        ms(r.p99),
        ms(r.max),
        r.stats.sent,
        r.stats.ok,
        r.non_200()
    );
    if !r.stats.statuses.is_empty() {
        let parts: Vec<String> = r
            .stats
            .statuses
            .iter()
            .map(|(code, n)| format!("{code}:{n}"))
            .collect();
        let _ = write!(s, " ({})", parts.join(", "));
    }
    let _ = write!(s, " errors {}", r.errors());
    if r.errors() > 0 {
        let parts: Vec<String> = ERR_KINDS
            .iter()
            .zip(r.stats.errors)
            .filter(|(_, n)| *n > 0)
            .map(|((_, name), n)| format!("{name}:{n}"))
            .collect();
        let _ = write!(s, " ({})", parts.join(", "));
    }
    let _ = write!(
        s,
        " | reconnects {} | window {:.2}s",
        r.stats.reconnects, r.window_secs
    );
    s
}

/// Finds the first candidate address that accepts a connection.
async fn pick_addr(target: &Target, timeout: Duration) -> Result<SocketAddr, String> {
    let mut last = String::new();
    for &addr in &target.candidates {
        match timeout_at(Instant::now() + timeout, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(addr),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: connect timed out"),
        }
    }
    Err(last)
}

async fn run_once(
    target: &Target,
    addr: SocketAddr,
    mac: &HmacSha256,
    run_id: &str,
    args: &Args,
) -> ExitCode {
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut tpl = RequestTemplate::new(
        target,
        run_id,
        args.size,
        args.contacts,
        args.kind,
        args.messages,
    );
    tpl.set_conn(0);
    tpl.prepare(1, unix_now(), mac);
    say!(
        "POST http://{}{} ({} byte body, message id {})",
        target.host_header,
        target.path,
        tpl.body_len(),
        tpl.message_id()
    );
    let deadline = Instant::now() + timeout;
    let mut stream = match connect(addr, deadline).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen: connect to {addr} failed: {e:?}");
            return ExitCode::from(1);
        }
    };
    let mut rbuf = Vec::new();
    match timeout_at(deadline, round_trip(&mut stream, &tpl.buf, &mut rbuf, true)).await {
        Ok(Ok(resp)) => {
            say!("status: {}", resp.status);
            let body = resp.body.unwrap_or_default();
            say!("body: {}", String::from_utf8_lossy(&body));
            if std::env::var_os("LOADGEN_PRINT_REQUEST").is_some() {
                say!("request body: {}", String::from_utf8_lossy(tpl.body()));
            }
            if resp.status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(Err(e)) => {
            eprintln!("loadgen: request failed: {e:?}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("loadgen: request timed out");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args, target: Target) -> ExitCode {
    let timeout = Duration::from_secs_f64(args.timeout);
    let addr = match pick_addr(&target, timeout).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: cannot connect to {}: {e}", args.url);
            return ExitCode::from(1);
        }
    };
    let mac = HmacSha256::new_from_slice(args.secret.as_bytes()).expect("HMAC accepts any key");
    let run_id = format!("{:016X}", rand::random::<u64>());
    if args.once {
        return run_once(&target, addr, &mac, &run_id, &args).await;
    }
    let body_len = RequestTemplate::new(
        &target,
        &run_id,
        args.size,
        args.contacts,
        args.kind,
        args.messages,
    )
    .body_len();
    say!(
        "loadgen: POST http://{}{} via {addr}, body {body_len} bytes, warmup {}s + {}s per level, levels {:?}, run id {run_id}",
        target.host_header, target.path, args.warmup, args.duration, args.connections
    );
    if let Some(cap) = args.max_requests {
        say!("loadgen: at most {cap} measured requests per level");
    }
    let mut reports = Vec::new();
    let mut next_conn_id = 0u64;
    for (i, &n) in args.connections.iter().enumerate() {
        if i > 0 {
            sleep(Duration::from_millis(250)).await; // let the server settle
        }
        let r = run_level(&args, &target, addr, &mac, &run_id, n, next_conn_id).await;
        next_conn_id += n as u64;
        say!("{}", summary_line(&r));
        reports.push(r);
    }
    say!("");
    say!("| connections | req/s | p50 ms | p99 ms | max ms | non-2xx | errors |");
    say!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        say!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {} |",
            r.connections,
            r.rps,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.non_200(),
            r.errors()
        );
    }
    ExitCode::SUCCESS
}

fn validate(args: &Args) -> Result<(), String> {
    if args.connections.is_empty() || args.connections.contains(&0) {
        return Err("--connections needs one or more counts, each at least 1".into());
    }
    let total: usize = args.connections.iter().sum();
    if total >= 10usize.pow(CONN_DIGITS as u32) {
        return Err(format!(
            "--connections: at most {} connections in total per run",
            10usize.pow(CONN_DIGITS as u32) - 1
        ));
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err("--duration must be > 0 and at most 86400 seconds".into());
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0 && args.warmup <= 3_600.0) {
        return Err("--warmup must be between 0 and 3600 seconds".into());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3_600.0) {
        return Err("--timeout must be > 0 and at most 3600 seconds".into());
    }
    if args.max_requests == Some(0) {
        return Err("--max-requests must be at least 1".into());
    }
    if !(1..=999).contains(&args.messages) {
        return Err("--messages must be from 1 to 999".into());
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if args.size > MAX_BODY {
        return Err(format!("--size must be at most {MAX_BODY} bytes"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let target = match parse_target(&args.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = validate(&args) {
        eprintln!("loadgen: {e}");
        return ExitCode::from(2);
    }
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    match rt {
        Ok(rt) => rt.block_on(run(args, target)),
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(parse_target("http://127.0.0.1:8080/webhook").is_ok());
        assert!(parse_target("http://127.1.2.3/").is_ok());
        assert!(parse_target("http://[::1]:9000/x?y=1").is_ok());
        assert!(parse_target("http://LOCALHOST:8080").is_ok());
        assert!(parse_target("http://10.0.0.1:8080/").is_err());
        assert!(parse_target("http://example.com/").is_err());
        assert!(parse_target("http://[::2]:80/").is_err());
        assert!(parse_target("http://[::ffff:8.8.8.8]/").is_err());
        assert!(parse_target("https://127.0.0.1/").is_err());
        assert!(parse_target("http://user@127.0.0.1/").is_err());
        assert!(parse_target("http://127.0.0.1:0/").is_err());
        let t = parse_target("http://[::1]:9000").unwrap();
        assert_eq!(t.path, "/");
        assert_eq!(t.host_header, "[::1]:9000");
    }

    #[test]
    fn template_size_and_signature() {
        let t = parse_target("http://127.0.0.1:8080/webhook").unwrap();
        let mac = HmacSha256::new_from_slice(b"k").unwrap();
        let mut tpl = RequestTemplate::new(&t, "0123456789ABCDEF", 2048, 1, Kind::Message, 1);
        assert_eq!(tpl.body_len(), 2048);
        tpl.set_conn(42);
        tpl.prepare(7, 1_700_000_000, &mac);
        assert_eq!(
            tpl.message_id(),
            "wamid.LOADGEN0123456789ABCDEF0000420000000007"
        );
        let body = std::str::from_utf8(tpl.body()).unwrap();
        assert!(body.contains(r#""timestamp":"1700000000""#));
        let mut m = HmacSha256::new_from_slice(b"k").unwrap();
        m.update(tpl.body());
        let sig = hex::encode(m.finalize().into_bytes());
        let head = std::str::from_utf8(&tpl.buf[..tpl.body_start]).unwrap();
        assert!(head.contains(&format!("X-Hub-Signature-256: sha256={sig}\r\n")));
        assert!(head.contains("Content-Length: 2048\r\n"));
        // Smaller than the skeleton: no padding, still well-formed.
        let small = RequestTemplate::new(&t, "0123456789ABCDEF", 10, 1, Kind::Message, 1);
        assert!(small.body_len() > 10 && small.body().ends_with(b"}]}]}"));
    }

    #[test]
    fn contacts_vary_the_sender_in_both_places() {
        let t = parse_target("http://127.0.0.1:8080/webhook").unwrap();
        let mac = HmacSha256::new_from_slice(b"k").unwrap();
        let mut tpl = RequestTemplate::new(&t, "0123456789ABCDEF", 1024, 1000, Kind::Message, 1);
        tpl.set_conn(3);
        let mut senders = std::collections::HashSet::new();
        for counter in 0..2000 {
            tpl.prepare(counter, 1_700_000_000, &mac);
            let v: serde_json::Value = serde_json::from_slice(tpl.body()).unwrap();
            let value = &v["entry"][0]["changes"][0]["value"];
            let wa_id = value["contacts"][0]["wa_id"].as_str().unwrap().to_string();
            assert_eq!(value["messages"][0]["from"].as_str().unwrap(), wa_id);
            assert!(wa_id.starts_with("1650"));
            senders.insert(wa_id);
        }
        assert_eq!(senders.len(), 1000);
    }

    #[test]
    fn status_bodies_are_one_signed_status() {
        let t = parse_target("http://127.0.0.1:8080/webhook").unwrap();
        let mac = HmacSha256::new_from_slice(b"k").unwrap();
        let mut tpl = RequestTemplate::new(&t, "0123456789ABCDEF", 700, 50, Kind::Status, 1);
        assert_eq!(tpl.body_len(), 700);
        tpl.set_conn(1);
        tpl.prepare(9, 1_700_000_000, &mac);
        let v: serde_json::Value = serde_json::from_slice(tpl.body()).unwrap();
        let st = &v["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(st["id"], tpl.message_id());
        assert_eq!(st["status"], "delivered");
        assert_eq!(st["timestamp"], "1700000000");
        assert!(st["recipient_id"].as_str().unwrap().starts_with("1650"));
    }

    #[test]
    fn several_messages_per_delivery_each_have_their_own_id() {
        let t = parse_target("http://127.0.0.1:8080/webhook").unwrap();
        let mac = HmacSha256::new_from_slice(b"k").unwrap();
        for kind in [Kind::Message, Kind::Status] {
            let mut tpl = RequestTemplate::new(&t, "0123456789ABCDEF", 3000, 20, kind, 10);
            assert_eq!(tpl.body_len(), 3000);
            tpl.set_conn(5);
            let mut ids = std::collections::HashSet::new();
            for counter in [1, 2] {
                tpl.prepare(counter, 1_700_000_000, &mac);
                let v: serde_json::Value = serde_json::from_slice(tpl.body()).unwrap();
                let value = &v["entry"][0]["changes"][0]["value"];
                let field = if kind == Kind::Message {
                    "messages"
                } else {
                    "statuses"
                };
                let items = value[field].as_array().unwrap();
                assert_eq!(items.len(), 10);
                for item in items {
                    assert_eq!(item["timestamp"], "1700000000");
                    assert!(ids.insert(item["id"].as_str().unwrap().to_string()));
                }
            }
            assert_eq!(ids.len(), 20);
            assert_eq!(
                tpl.message_id(),
                "wamid.LOADGEN0123456789ABCDEF0000050000000002"
            );
        }
    }

    #[test]
    fn head_parsing() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!((h.status, h.content_length, h.close), (200, Some(2), false));
        let h = parse_head(b"HTTP/1.1 503 x\r\nconnection: Close\r\n\r\n").unwrap();
        assert!(h.close);
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert!(h.close);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert!(h.chunked);
        assert!(parse_head(b"FOO 200\r\n\r\n").is_err());
    }
}
