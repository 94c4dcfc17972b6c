//! Streams a media file through the file store into a bucket and back
//! (`WAGATE_MEDIA_STORE` and the cloud's variables from the environment), printing
//! throughput and how much resident memory grew. Bounded: one file of [MB] (default
//! 100), then it is deleted. `scripts/media-store-bench` runs it against a
//! single-node Garage on 127.0.0.1.
//!
//! ```sh
//! WAGATE_MEDIA_STORE=s3://wagate/bench AWS_ENDPOINT_URL=http://127.0.0.1:3900 \
//!   AWS_ALLOW_HTTP=true AWS_REGION=garage AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
//!   cargo run --release --example media_store_bench [-- MB]
//! ```

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use wagate::config::MediaStoreConfig;
use wagate::media::objects::Objects;
use wagate::media::{KeyStore, MediaFiles};

/// `VmHWM` (peak) in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
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
    let url = std::env::var("WAGATE_MEDIA_STORE").expect("set WAGATE_MEDIA_STORE");
    let store = MediaStoreConfig::parse(&url).expect("WAGATE_MEDIA_STORE");
    let dir = std::env::temp_dir().join(format!("wagate-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let keys = KeyStore::open(&dir.join("media-keys"), true).expect("keys");
    let objects = Objects::open(&store).expect("store");
    objects.probe().expect("probe");
    let files = MediaFiles::in_bucket(&dir, objects, Arc::new(keys));
    let hwm0 = peak_kib();

    let t = Instant::now();
    let stored = files
        .store(Pattern { left: len, x: 1 }, None, len)
        .expect("store");
    let up_s = t.elapsed().as_secs_f64();
    let hwm1 = peak_kib();

    let t = Instant::now();
    let mut reader = files.open_verified(&stored.name).expect("verify");
    let verify_s = t.elapsed().as_secs_f64();
    let mut sink = Sink(0);
    std::io::copy(&mut reader, &mut sink).expect("decrypt");
    let total_s = t.elapsed().as_secs_f64();
    assert_eq!(sink.0, len);
    let hwm2 = peak_kib();
    files.delete(&stored.name).expect("delete");
    let _ = std::fs::remove_dir_all(&dir);

    let mbf = len as f64 / 1e6;
    println!("plaintext: {mb} MB to {url}");
    println!(
        "upload (hash + encrypt + multipart PUT): {:.0} MB/s ({up_s:.2} s)",
        mbf / up_s
    );
    println!(
        "read back: verify pass (GET) {:.0} MB/s, verify + decrypt-and-stream (two GETs) {:.0} MB/s ({total_s:.2} s)",
        mbf / verify_s,
        mbf / total_s
    );
    println!(
        "memory: VmHWM {hwm0} -> {hwm1} -> {hwm2} KiB, peak growth {:.1} MiB",
        hwm2.saturating_sub(hwm0) as f64 / 1024.0
    );
}
