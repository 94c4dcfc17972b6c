//! `Retry-After` (RFC 9110 §10.2.3), the one parser every outbound call uses: Meta's
//! answers (sending, media lookup and download) and forwarding targets'.

use std::time::{Duration, SystemTime};

/// `Retry-After`: delay-seconds or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An answer's `Retry-After` as a delay from `now` (none when absent or unreadable).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |secs: u64| httpdate::fmt_http_date(now + Duration::from_secs(secs));
        let before = httpdate::fmt_http_date(now - Duration::from_secs(60));
        // (case, value, delay)
        #[rustfmt::skip]
        let rows = [
            ("seconds",          "3".to_string(),              Some(Duration::from_secs(3))),
            ("zero",             "0".to_string(),              Some(Duration::ZERO)),
            ("spaces around",    " 120 ".to_string(),          Some(Duration::from_secs(120))),
            ("HTTP date",        at(7),                        Some(Duration::from_secs(7))),
            ("HTTP date passed", before,                       Some(Duration::ZERO)),
            ("negative",         "-1".to_string(),             None),
            ("fraction",         "1.5".to_string(),            None),
            ("words",            "soon".to_string(),           None),
            ("empty",            String::new(),                None),
        ];
        for (case, value, want) in rows {
            assert_eq!(parse_retry_after(&value, now), want, "{case}");
        }
    }

    #[test]
    fn header() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h, SystemTime::now()), None);
        h.insert(reqwest::header::RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_secs(5))
        );
        h.insert(reqwest::header::RETRY_AFTER, "later".parse().unwrap());
        assert_eq!(retry_after(&h, SystemTime::now()), None);
    }
}
