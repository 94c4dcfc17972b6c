//! Fuzz targets: one per parser of bytes from outside (Meta's webhooks and answers,
//! headers, journal files, media files, the targets file, timestamps), each a
//! `fn(&[u8])` that must not panic and checks the parser's own invariants (round
//! trips, bounds, agreement between two readings). Built only with the `fuzzing`
//! feature; `examples/fuzz.rs` runs them with structured-random mutations of a seed
//! corpus (`driver`), and `docs/testing.md` says how.

pub mod driver;
mod input;
pub mod mutate;
mod t_config;
mod t_headers;
mod t_journal;
mod t_media;
mod t_time;
mod t_webhook;

use std::path::PathBuf;

pub use mutate::Shape;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// What it feeds and what it checks, in a few words.
    pub what: &'static str,
    pub run: fn(&[u8]),
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub shape: Shape,
    /// Tokens the mutations insert (keys, prefixes, edge values).
    pub dict: &'static [&'static [u8]],
    /// Longest input tried.
    pub max_len: usize,
}

const KIB: usize = 1024;

pub static TARGETS: &[Target] = &[
    Target {
        name: "webhook_parse",
        what: "webhook body -> items: keys, times, JSON round trip, media jobs",
        run: t_webhook::parse,
        seeds: t_webhook::seeds,
        shape: Shape::Json,
        dict: t_webhook::DICT,
        max_len: 256 * KIB,
    },
    Target {
        name: "webhook_reshape",
        what: "webhook body narrowed to some items (meta mode) and turned into events",
        run: t_webhook::reshape,
        seeds: t_webhook::reshape_seeds,
        shape: Shape::Json,
        dict: t_webhook::DICT,
        max_len: 256 * KIB,
    },
    Target {
        name: "journal_record",
        what: "record framing: decoded records re-encode to their bytes",
        run: t_journal::record,
        seeds: t_journal::record_seeds,
        shape: Shape::Bytes,
        dict: &[],
        max_len: 64 * KIB,
    },
    Target {
        name: "journal_record_roundtrip",
        what: "any record round-trips; cuts are incomplete, bit flips corrupt",
        run: t_journal::record_roundtrip,
        seeds: t_journal::roundtrip_seeds,
        shape: Shape::Bytes,
        dict: &[],
        max_len: 16 * KIB,
    },
    Target {
        name: "journal_delivery",
        what: "delivery layout: what decodes re-encodes to itself",
        run: t_journal::delivery,
        seeds: t_journal::delivery_seeds,
        shape: Shape::Bytes,
        dict: &[],
        max_len: 64 * KIB,
    },
    Target {
        name: "journal_delivery_roundtrip",
        what: "any delivery round-trips (absent-value sentinels read as None)",
        run: t_journal::delivery_roundtrip,
        seeds: t_journal::roundtrip_seeds,
        shape: Shape::Bytes,
        dict: &[],
        max_len: 16 * KIB,
    },
    Target {
        name: "journal_payloads",
        what: "send/media/forward payloads round-trip; updates applied twice = once",
        run: t_journal::payloads,
        seeds: t_journal::payload_seeds,
        shape: Shape::Json,
        dict: t_journal::PAYLOAD_DICT,
        max_len: 64 * KIB,
    },
    Target {
        name: "media_decrypt",
        what: "encrypted media file: verify and stream agree; only real plaintext authenticates",
        run: t_media::decrypt,
        seeds: t_media::seeds,
        shape: Shape::Bytes,
        dict: t_media::DICT,
        max_len: 160 * KIB,
    },
    Target {
        name: "media_keys",
        what: "key file: parse, print, parse again; rotation",
        run: t_media::keys,
        seeds: t_media::key_seeds,
        shape: Shape::Text,
        dict: t_media::KEY_DICT,
        max_len: 4 * KIB,
    },
    Target {
        name: "signature",
        what: "X-Hub-Signature-256: accepted only with the body's HMAC; diagnosis",
        run: t_headers::signature,
        seeds: t_headers::signature_seeds,
        shape: Shape::Text,
        dict: t_headers::SIGNATURE_DICT,
        max_len: 64 * KIB,
    },
    Target {
        name: "forwarded_for",
        what: "X-Forwarded-For with trusted proxy ranges; ranges print back",
        run: t_headers::forwarded_for,
        seeds: t_headers::forwarded_for_seeds,
        shape: Shape::Text,
        dict: t_headers::FORWARDED_DICT,
        max_len: 4 * KIB,
    },
    Target {
        name: "retry_after",
        what: "Retry-After -> send, forward and media waits stay in their bounds",
        run: t_headers::retry_after,
        seeds: t_headers::retry_after_seeds,
        shape: Shape::Text,
        dict: t_headers::RETRY_AFTER_DICT,
        max_len: KIB,
    },
    Target {
        name: "graph_answer",
        what: "Graph answers: error object, class, media lookup",
        run: t_headers::graph_answer,
        seeds: t_headers::graph_seeds,
        shape: Shape::Json,
        dict: t_headers::GRAPH_DICT,
        max_len: 64 * KIB,
    },
    Target {
        name: "forward_targets",
        what: "targets file: every target usable, ids unique, shown URL clean",
        run: t_config::targets,
        seeds: t_config::seeds,
        shape: Shape::Json,
        dict: t_config::DICT,
        max_len: 16 * KIB,
    },
    Target {
        name: "timestamps",
        what: "times shown (RFC 3339, dashboard) and read (days, times, durations, sizes)",
        run: t_time::timestamps,
        seeds: t_time::seeds,
        shape: Shape::Text,
        dict: t_time::DICT,
        max_len: KIB,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// `tests/data/<rel>` of this checkout (empty when missing: a seed less).
fn data_file(rel: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(rel)).unwrap_or_default()
}

/// Every file of `tests/data/<rel>/`, by name.
fn data_files(rel: &str) -> Vec<Vec<u8>> {
    let Ok(dir) = std::fs::read_dir(data_dir().join(rel)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}
