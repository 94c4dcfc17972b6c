//! Encrypts then decrypts (verified, two passes) a 100 MB stream through the media
//! file store, printing throughput and how much resident memory grew.
//!
//! ```sh
//! cargo run --release --example media_crypto_bench [-- MB]
//! ```

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use wagate::media::{KeyStore, MediaFiles};

/// `VmHWM` (peak) and `VmRSS` (now) in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A plaintext source that never holds more than one read's worth.
struct Pattern {
    left: u64,
    x: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.x = self.x.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (self.x >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let len = mb * 1_000_000;
    let dir = tempfile_dir();
    let keys = KeyStore::open(&dir.join("media-keys"), true).expect("keys");
    let files = MediaFiles::open(&dir.join("media"), Arc::new(keys)).expect("media dir");
    let (hwm0, rss0) = rss_kib();

    let t = Instant::now();
    let stored = files
        .store(Pattern { left: len, x: 1 }, None, len)
        .expect("store");
    let enc_s = t.elapsed().as_secs_f64();
    let (hwm1, _) = rss_kib();

    let t = Instant::now();
    let mut reader = files.open_verified(&stored.name).expect("verify");
    let verify_s = t.elapsed().as_secs_f64();
    let mut sink = Sink(0);
    std::io::copy(&mut reader, &mut sink).expect("decrypt");
    let total_s = t.elapsed().as_secs_f64();
    assert_eq!(sink.0, len);
    let (hwm2, rss2) = rss_kib();

    let mbf = len as f64 / 1e6;
    println!("plaintext: {mb} MB, stored as {} (+fsync)", stored.name);
    println!(
        "encrypt+hash+write+fsync: {:.0} MB/s ({enc_s:.2} s)",
        mbf / enc_s
    );
    println!(
        "decrypt: verify pass {:.0} MB/s, verify+stream (two passes) {:.0} MB/s ({total_s:.2} s)",
        mbf / verify_s,
        mbf / total_s
    );
    println!(
        "memory: VmHWM {hwm0} -> {hwm1} -> {hwm2} KiB, peak growth {} KiB ({:.2} MiB); VmRSS {rss0} -> {rss2} KiB",
        hwm2.saturating_sub(hwm0),
        hwm2.saturating_sub(hwm0) as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        hwm2.saturating_sub(hwm0) < 16 * 1024,
        "resident memory grew by 16 MiB or more"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wagate-media-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
