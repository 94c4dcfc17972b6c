//! Timestamps written for people and machines.

/// RFC 3339 with microseconds, UTC (`2026-12-02T05:42:50.123456Z`).
pub fn rfc3339(micros: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros.max(0) as u64);
    humantime::format_rfc3339_micros(t).to_string()
}
