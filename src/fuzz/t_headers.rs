//! Header values from outside: `X-Hub-Signature-256`, `X-Forwarded-For` (with the
//! trusted-proxy ranges), and `Retry-After` with the decisions it feeds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::input::Input;
use super::{data_file, data_files};
use crate::config::Secret;
use crate::events::signature::{sign, Verifier};
use crate::forward::decide as forward;
use crate::httpkit::client_ip::{client_addr, client_ip};
use crate::journal::delivery::Verdict;
use crate::media::decide as media;
use crate::outbox::decide as outbox;
use crate::upstream::{parse_retry_after, CallError, Class};
use crate::util::backoff::Backoff;
use crate::util::cidr::Cidr;
use crate::webhook::diagnosis::diagnose;

const SECRETS: [&str; 2] = ["test_app_secret_do_not_use", "second"];

/// `header \n body`: accepted only with the body's own HMAC under a configured
/// secret, and that secret's index; the right signature is always accepted. The
/// diagnosis of a failure (which tries rewrites of the body) agrees with the verdict.
pub fn signature(data: &[u8]) {
    let mut inp = Input::new(data);
    let header = inp.until(b'\n');
    let body = inp.rest();
    let secrets = SECRETS.map(Secret::new);
    let v = Verifier::new(&secrets);
    let out = v.verify(Some(header), body);
    if out.verdict == Verdict::Accepted {
        let i = usize::from(
            out.secret_index
                .expect("an accepted delivery names its secret"),
        );
        let given = header
            .strip_prefix(b"sha256=")
            .expect("accepted: has the prefix");
        let want = sign(SECRETS[i].as_bytes(), body);
        assert_eq!(
            hex::decode(given.trim_ascii()).ok(),
            hex::decode(&want["sha256=".len()..]).ok(),
            "accepted a signature that is not the body's"
        );
    } else {
        assert!(out.secret_index.is_none() && !out.reason.is_empty());
    }
    let len = body.len() as u64;
    let d = diagnose(
        &v,
        Some(header),
        body,
        Some(len ^ u64::from(header.len() as u8 & 1)),
        len,
    );
    assert_eq!((d.verdict, d.secret_index), (out.verdict, out.secret_index));
    if d.findings.iter().any(|f| f.code == "body_rewritten") {
        assert_eq!(out.verdict, Verdict::Mismatch);
    }
    let good = sign(SECRETS[1].as_bytes(), body);
    assert_eq!(v.verify(Some(good.as_bytes()), body).secret_index, Some(1));
    let mut longer = body.to_vec();
    longer.push(b'\n');
    assert_eq!(
        v.verify(Some(good.as_bytes()), &longer).verdict,
        Verdict::Mismatch
    );
}

/// The signature vectors of `tests/data/signature`: `header \n body`.
pub fn signature_seeds() -> Vec<Vec<u8>> {
    let vectors: Value =
        serde_json::from_slice(&data_file("signature/vectors.json")).unwrap_or_default();
    let list = vectors["vectors"].as_array().cloned().unwrap_or_default();
    list.iter()
        .filter_map(|v| {
            let body = data_file(&format!("signature/{}", v["body"].as_str()?));
            let mut out = v["header"].as_str()?.as_bytes().to_vec();
            out.push(b'\n');
            out.extend(body);
            Some(out)
        })
        .collect()
}

pub const SIGNATURE_DICT: &[&[u8]] = &[b"sha256=", b"SHA256=", b" ", b"\t", b"0", b"f", b"\n"];

/// `trusted ranges \n peer (selector, address, port) X-Forwarded-For`: the client is
/// the peer unless the peer is trusted; then an untrusted address of the header, or
/// the peer. Every range prints back to itself.
pub fn forwarded_for(data: &[u8]) {
    let mut inp = Input::new(data);
    let ranges = String::from_utf8_lossy(inp.until(b'\n')).into_owned();
    let trusted: Vec<Cidr> = ranges.split(',').filter_map(|s| s.parse().ok()).collect();
    for c in &trusted {
        assert_eq!(
            c.to_string().parse::<Cidr>(),
            Ok(*c),
            "{c} does not read back"
        );
    }
    let ip = match inp.u8() % 3 {
        0 => IpAddr::V4(Ipv4Addr::from(inp.u32())),
        1 => IpAddr::V6(Ipv6Addr::from(
            u128::from(inp.u64()) << 64 | u128::from(inp.u64()),
        )),
        // The IPv4-mapped form a dual-stack listener reports.
        _ => IpAddr::V6(Ipv4Addr::from(inp.u32()).to_ipv6_mapped()),
    };
    let peer = SocketAddr::new(ip, inp.u16());
    let header = String::from_utf8_lossy(inp.rest()).into_owned();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let got = client_ip(peer, Some(&header), &trusted);
    if !is_trusted(peer.ip()) {
        assert_eq!(got, peer.ip(), "believed a header from an untrusted peer");
    } else if got != peer.ip() {
        assert!(!is_trusted(got), "a trusted proxy taken for the client");
        let listed = header.split(',').any(|s| s.trim().parse() == Ok(got));
        assert!(listed, "{got} is not in the header");
    }
    let addr = client_addr(Some(peer), Some(&header), &trusted).expect("a peer");
    assert!(addr.starts_with(&got.to_string()) || addr == peer.to_string());
}

pub fn forwarded_for_seeds() -> Vec<Vec<u8>> {
    let mut a = b"127.0.0.1,10.0.0.0/8,::1\n\x00\x7f\x00\x00\x01\x88\x13".to_vec();
    a.extend_from_slice(b"198.51.100.7, 10.1.1.1");
    let mut b = b"::ffff:0:0/96,fe80::/10\n\x01".to_vec();
    b.extend_from_slice(&[
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x50, 0,
    ]);
    b.extend_from_slice(b"2001:db8::1,  fe80::2 ,junk,,");
    let mut c = b"0.0.0.0/0\n\x02\x0a\x00\x00\x01\x00\x01".to_vec();
    c.extend_from_slice(b"1.2.3.4");
    vec![a, b, c]
}

pub const FORWARDED_DICT: &[&[u8]] = &[
    b",",
    b"/",
    b"/0",
    b"/32",
    b"/33",
    b"/128",
    b"::",
    b"::ffff:",
    b"[::1]",
    b"127.0.0.1",
    b"10.0.0.0/8",
    b"%eth0",
    b" ",
    b"unknown",
];

/// `now (u32 s), attempt, jitter, status, value`: `Retry-After` read as seconds or an
/// HTTP date, then every decision it feeds keeps its bounds.
pub fn retry_after(data: &[u8]) {
    let mut inp = Input::new(data);
    let now_secs = u64::from(inp.u32());
    let attempt = u32::from(inp.u8()) + 1;
    let jitter = f64::from(inp.u8()) / 255.0;
    let status = 400 + u16::from(inp.u8()) % 200;
    let value = String::from_utf8_lossy(inp.rest()).into_owned();
    let now = UNIX_EPOCH + Duration::from_secs(now_secs);
    let after = parse_retry_after(&value, now);
    if let Ok(secs) = value.trim().parse::<u64>() {
        assert_eq!(after, Some(Duration::from_secs(secs)));
    }
    let now_micros = (now_secs * 1_000_000) as i64;
    send_decision(after, attempt, jitter, now_micros);
    forward_decision(after, status, attempt, jitter, now_micros);
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let retry = media::next_retry(status != 400, after, false, attempt, &backoff, jitter);
    assert!(after.is_none_or(|a| retry.delay == a));
}

/// The sender's decision: a message queued again is due within its max age.
fn send_decision(after: Option<Duration>, attempt: u32, jitter: f64, now: i64) {
    let limits = outbox::Limits {
        max_attempts: 10,
        max_age: Duration::from_secs(86_400),
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
    };
    let created = now - 1_000_000;
    for class in [Class::Retry, Class::RetryAll, Class::PairRateLimit] {
        let outcome = outbox::Outcome::Answered {
            class,
            retry_after: after,
        };
        let d = outbox::next(&outcome, attempt, &limits, created, now, jitter);
        if let Some(wait) = d.retry_in {
            let due = i128::from(now) + wait.as_micros() as i128;
            let last = i128::from(created) + limits.max_age.as_micros() as i128;
            assert!(due < last, "queued again past the max age: {d:?}");
        }
        if let Some(g) = d.gave_up {
            let _ = g.reason(limits.max_age, "error");
        }
    }
    let no_answer = outbox::Outcome::NoAnswer(CallError::NotSent("refused".into()));
    let _ = outbox::next(&no_answer, attempt, &limits, created, now, jitter);
}

/// Forwarding's wait: at most an hour for `Retry-After`, never past the entry's age.
fn forward_decision(after: Option<Duration>, status: u16, attempt: u32, jitter: f64, now: i64) {
    let answer = Ok(crate::upstream::forward::TargetAnswer {
        status,
        retry_after: after,
        body_start: String::new(),
    });
    let forward::Answer::Failed { retry_after, .. } = forward::judge(&answer) else {
        return;
    };
    let limits = forward::Limits {
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        pause_after: Duration::from_secs(600),
        probe_every: Duration::from_secs(300),
        max_attempts: 15,
    };
    let streak = forward::Streak {
        failures: attempt,
        since_micros: now - 5_000_000,
        paused: attempt.is_multiple_of(2),
        others_failed: attempt.is_multiple_of(3),
    };
    let entry = forward::Entry {
        failures: attempt % 20,
        give_up_at_micros: now + 7_200_000_000,
    };
    let r = forward::after_failure(&streak, &entry, retry_after, now, &limits, jitter);
    assert!(r.delay <= forward::MAX_RETRY_AFTER.max(limits.probe_every));
}

pub fn retry_after_seeds() -> Vec<Vec<u8>> {
    let head = |v: &str| {
        let mut out = vec![0x40, 0x4e, 0xe0, 0x68, 1, 128, 29];
        out.extend_from_slice(v.as_bytes());
        out
    };
    [
        "3",
        " 120 ",
        "0",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Wed, 02 Dec 2026 10:16:08 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "-1",
        "1.5",
        "18446744073709551615",
    ]
    .iter()
    .map(|v| head(v))
    .collect()
}

pub const RETRY_AFTER_DICT: &[&[u8]] = &[
    b"GMT",
    b"Sun, ",
    b"Dec ",
    b"9999",
    b"1970",
    b"18446744073709551615",
    b"9223372036854",
    b"00:00:00",
    b"23:59:60",
    b" 29 Feb 2100 ",
];

/// Meta's answers: any body, read as JSON (or kept as a string, as the client does).
pub fn graph_answer(data: &[u8]) {
    let mut inp = Input::new(data);
    let status = inp.u16() % 600;
    let bytes = inp.rest();
    let body = serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
    let error = crate::upstream::GraphError::from_body(&body);
    if let Some(e) = &error {
        let _ = e.summary();
        let json = serde_json::to_vec(e).expect("serialisable");
        assert_eq!(
            serde_json::from_slice::<crate::upstream::GraphError>(&json)
                .ok()
                .as_ref(),
            Some(e)
        );
    }
    let class = crate::upstream::classify(status, error.as_ref());
    if (200..300).contains(&status) {
        assert_eq!(class, Class::Accepted);
    }
    if let Some(info) = crate::upstream::media::MediaInfo::from_body(&body) {
        assert_eq!(Some(info.url.as_str()), body["url"].as_str());
    }
}

pub fn graph_seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = data_files("graph/errors")
        .into_iter()
        .map(|b| [&[0x90, 0x01][..], &b].concat())
        .collect();
    for f in [
        "graph/media_get_response.json",
        "graph/send_message_response_text.json",
    ] {
        out.push([&[200, 0][..], &data_file(f)].concat());
    }
    out
}

pub const GRAPH_DICT: &[&[u8]] = &[
    b"\"error\"",
    b"\"code\"",
    b"\"error_subcode\"",
    b"\"error_data\"",
    b"\"details\"",
    b"\"is_transient\"",
    b"\"fbtrace_id\"",
    b"\"url\"",
    b"\"sha256\"",
    b"\"file_size\"",
    b"130429",
    b"131056",
    b"190",
];
