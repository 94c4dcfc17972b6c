//! POSTing an event to a forwarding target: the shared client (no redirects,
//! `User-Agent: wagate/<version>`), a short per-request timeout, the answer's status
//! and `Retry-After`. The body of the answer is read only a little (for the error
//! shown by the API), never whole.

use std::time::Duration;

use super::Upstream;

/// What the target answered.
#[derive(Debug, Clone)]
pub struct TargetAnswer {
    pub status: u16,
    /// `Retry-After` (seconds or HTTP date) as a delay from now.
    pub retry_after: Option<Duration>,
    /// The start of the answer's body (up to 200 bytes, lossy UTF-8).
    pub body_start: String,
}

const BODY_SHOWN: usize = 200;

impl Upstream {
    /// POSTs `body` as JSON to `url` with `headers`. `Err` when no answer came
    /// (connection refused, timeout, broken answer): the text says why.
    pub async fn post_to_target(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<TargetAnswer, String> {
        let mut req = self
            .http()
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let mut resp = req.send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let retry_after = self.retry_after(resp.headers());
        let mut start = Vec::new();
        while start.len() < BODY_SHOWN {
            match resp.chunk().await {
                Ok(Some(c)) => start.extend_from_slice(&c),
                // The status is what counts; a body cut short does not change it.
                Ok(None) | Err(_) => break,
            }
        }
        start.truncate(BODY_SHOWN);
        Ok(TargetAnswer {
            status,
            retry_after,
            body_start: String::from_utf8_lossy(&start).into_owned(),
        })
    }
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {}", e.without_url())
    } else {
        e.without_url().to_string()
    }
}
