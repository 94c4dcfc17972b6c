//! Automatic certificates over ACME (`WAGATE_ACME_*`), validated with TLS-ALPN-01
//! on wagate's own HTTPS port. At start the stored certificate (if any) is served at
//! once; a background task orders one when there is none, when it no longer names
//! the configured domains, or when a renewal is due, and swaps it in atomically
//! (open connections keep theirs). A failed order is retried with backoff while
//! the old certificate stays in service.
//!
//! The protocol is instant-acme's; its HTTP goes through `upstream::acme`.

pub mod cert;
pub mod check;
pub mod files;
mod issue;
pub mod metrics;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::util::backoff::{jitter, Backoff};
use crate::util::clock::Clock;
use crate::util::time::JsonTime;
use tokio::sync::watch;

use crate::config::AcmeConfig;
use crate::tls::TlsConfig;
use crate::upstream::acme::{AcmeHttp, AcmeHttpError};
use cert::CertInfo;
use files::AcmeFiles;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("ACME order: {0}")]
    Order(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("ACME files: {0}")]
    Files(String),
    #[error(transparent)]
    Http(#[from] AcmeHttpError),
}

/// First retry after a failed order; doubled per failure up to the cap. Generous on
/// purpose: Let's Encrypt allows 5 failed validations per name per hour.
const RETRY_BASE: Duration = Duration::from_secs(5 * 60);
const RETRY_CAP: Duration = Duration::from_secs(12 * 3600);

/// What the renewal task is doing, for logs, `wagate check` and tests.
#[derive(Debug, Clone, Default)]
pub struct AcmeStatus {
    /// The certificate being served.
    pub certificate: Option<CertInfo>,
    /// Unix seconds of the next order (renewal or retry).
    pub next_order_at: Option<i64>,
    /// Orders started by this process.
    pub orders: u64,
    /// Certificates issued to this process.
    pub issued: u64,
    /// Consecutive failed orders and the last error.
    pub failures: u32,
    pub last_error: Option<String>,
}

/// The running ACME certificate manager; dropping it stops the renewal task.
pub struct Acme {
    status: watch::Receiver<AcmeStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Acme {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Orders that failed are retried after this, doubling up to `RETRY_CAP`.
const RETRY: Backoff = Backoff {
    base: RETRY_BASE,
    cap: RETRY_CAP,
};

impl Acme {
    /// Serves the stored certificate through `tls` (before returning, so the first
    /// handshake has it), then starts the renewal task. Call it once the listener is
    /// bound: the CA's validation connects to it. Must run inside a tokio runtime.
    pub fn start(
        config: AcmeConfig,
        data_dir: &Path,
        tls: Arc<TlsConfig>,
        clock: Clock,
    ) -> Result<Acme, AcmeError> {
        let http = AcmeHttp::new(config.ca_root.as_deref())?;
        let files = AcmeFiles::new(data_dir, &config.directory);
        let current = load_stored(&files, &config, &tls);
        let (status_tx, status) = watch::channel(AcmeStatus {
            certificate: current.clone(),
            ..AcmeStatus::default()
        });
        let renewal = Renewal {
            config,
            files,
            http,
            tls,
            status: status_tx,
            clock,
        };
        let task = tokio::spawn(renewal.run(current));
        Ok(Acme { status, task })
    }

    pub fn status(&self) -> watch::Receiver<AcmeStatus> {
        self.status.clone()
    }
}

/// The stored certificate, served if it is usable; `None` if an order is needed now.
fn load_stored(files: &AcmeFiles, config: &AcmeConfig, tls: &TlsConfig) -> Option<CertInfo> {
    let pem = match files.read_certificate() {
        Ok(Some(pem)) => pem,
        Ok(None) => {
            tracing::info!(domains = ?config.domains, "ACME: no stored certificate; ordering one");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "ACME: ordering a new certificate");
            return None;
        }
    };
    let path = files.certificate_path().display().to_string();
    match cert::load_stored(&pem, &path) {
        Ok((certified, info)) => {
            // Served even when it is due or names other domains: better than nothing
            // until the new one arrives.
            tls.set_certificate(certified);
            if !info.covers_exactly(&config.domains) {
                tracing::info!(stored = ?info.names, configured = ?config.domains, "ACME: the stored certificate names other domains; ordering one");
                return None;
            }
            tracing::info!(domains = ?info.names, not_after = %JsonTime::secs(info.not_after), renew_at = %JsonTime::secs(info.renew_at()), "ACME: serving the stored certificate");
            Some(info)
        }
        Err(e) => {
            tracing::warn!(error = %e, "ACME: the stored certificate is unusable; ordering one");
            None
        }
    }
}

struct Renewal {
    config: AcmeConfig,
    files: AcmeFiles,
    http: AcmeHttp,
    tls: Arc<TlsConfig>,
    status: watch::Sender<AcmeStatus>,
    /// Renewal dates and retries count on it.
    clock: Clock,
}

impl Renewal {
    async fn run(self, mut current: Option<CertInfo>) {
        let mut retry_at: Option<i64> = None;
        loop {
            let due = retry_at
                .or_else(|| current.as_ref().map(CertInfo::renew_at))
                .unwrap_or_else(|| self.clock.now_secs());
            self.status.send_modify(|s| s.next_order_at = Some(due));
            sleep_until(&self.clock, due).await;
            self.status.send_modify(|s| s.orders += 1);
            tracing::info!(domains = ?self.config.domains, directory = %self.config.directory, "ACME: ordering a certificate");
            match self.order().await {
                Ok(info) => {
                    tracing::info!(domains = ?info.names, issuer = %info.issuer, not_after = %JsonTime::secs(info.not_after), renew_at = %JsonTime::secs(info.renew_at()), "ACME: certificate issued and in service");
                    retry_at = None;
                    self.status.send_modify(|s| {
                        s.certificate = Some(info.clone());
                        s.issued += 1;
                        s.failures = 0;
                        s.last_error = None;
                    });
                    current = Some(info);
                }
                Err(e) => {
                    let failures = self.status.borrow().failures + 1;
                    let wait = RETRY.at_least_half(failures, jitter());
                    tracing::error!(error = %e, failures, retry_in = %humantime::format_duration(wait), "ACME: order failed; the certificate in service stays");
                    retry_at = Some(self.clock.now_secs() + wait.as_secs() as i64);
                    self.status.send_modify(|s| {
                        s.failures = failures;
                        s.last_error = Some(e.to_string());
                    });
                }
            }
        }
    }

    /// One order; on success the certificate is stored, then served.
    async fn order(&self) -> Result<CertInfo, AcmeError> {
        let issued = issue::issue(&self.config, &self.http, &self.files, &self.tls).await?;
        let mut pem = issued.key_pem.clone();
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&issued.chain_pem);
        let (certified, info) = cert::load_stored(pem.as_bytes(), "the issued certificate")?;
        if !info.covers_exactly(&self.config.domains) {
            return Err(AcmeError::Certificate(format!(
                "the CA issued a certificate for {:?}, not {:?}",
                info.names, self.config.domains
            )));
        }
        let files = self.files.clone();
        blocking(move || files.write_certificate(&issued.key_pem, &issued.chain_pem)).await?;
        self.tls.set_certificate(certified);
        Ok(info)
    }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AcmeError> + Send + 'static,
) -> Result<T, AcmeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AcmeError::Files(e.to_string()))?
}

/// Waits for a wall-clock time, rechecking at least hourly (suspend, clock steps).
async fn sleep_until(clock: &Clock, unix: i64) {
    loop {
        let left = unix - clock.now_secs();
        if left <= 0 {
            return;
        }
        clock
            .sleep(Duration::from_secs(left.min(3600) as u64))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_at_least_half_and_grow_to_the_cap() {
        assert_eq!(RETRY.at_least_half(1, 0.0), RETRY_BASE / 2);
        assert_eq!(RETRY.at_least_half(3, 1.0), RETRY_BASE * 4);
        assert_eq!(RETRY.at_least_half(40, 0.0), RETRY_CAP / 2);
    }
}
