//! `wagate check`'s view of HTTPS: the certificate files, or the ACME state (the
//! stored certificate and account, the CA root, the port the CA validates on).

use crate::config::Config;
use crate::util::check::{check, Check, Level};
use crate::util::time::JsonTime;

use super::cert;
use super::files::AcmeFiles;

/// Read-only: nothing is created, nothing is sent to the CA.
pub fn run(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some((c, k)) = &config.tls {
        out.push(match crate::tls::load(c, k) {
            Ok(_) => check(
                Level::Ok,
                format!("HTTPS from {} and {}", c.display(), k.display()),
            ),
            Err(e) => check(Level::Problem, e.to_string()),
        });
    }
    let Some(acme) = &config.acme else {
        return out;
    };
    out.push(check(
        Level::Ok,
        format!(
            "ACME: certificates for {} from {} (TLS-ALPN-01)",
            acme.domains.join(", "),
            acme.directory
        ),
    ));
    if config.listen.port() != 443 {
        out.push(check(
            Level::Warning,
            format!(
                "ACME: WAGATE_LISTEN is {}: the CA validates on port 443, which must reach this port",
                config.listen
            ),
        ));
    }
    if acme.ca_root.is_some() {
        if let Err(e) = crate::upstream::acme::AcmeHttp::new(acme.ca_root.as_deref()) {
            out.push(check(Level::Problem, format!("WAGATE_ACME_CA_ROOT: {e}")));
        }
    }
    let files = AcmeFiles::new(&config.data_dir, &acme.directory);
    out.push(stored_certificate(&files, &acme.domains));
    out.push(match files.read_account() {
        Ok(Some(a)) if a.directory == acme.directory => check(Level::Ok, "ACME: account registered"),
        Ok(_) => check(
            Level::Ok,
            "ACME: no account yet; one is registered at start (you agree to the CA's terms of service)",
        ),
        Err(e) => check(Level::Problem, e.to_string()),
    });
    out
}

/// The certificate on disk: none yet, unusable, for other names, expired, or valid.
fn stored_certificate(files: &AcmeFiles, domains: &[String]) -> Check {
    let now = crate::util::clock::Clock::system().now_secs();
    let pem = match files.read_certificate() {
        Ok(None) => {
            return check(
                Level::Ok,
                "ACME: no certificate yet; one is ordered at start",
            )
        }
        Err(e) => return check(Level::Problem, e.to_string()),
        Ok(Some(pem)) => pem,
    };
    let path = files.certificate_path().display().to_string();
    match cert::load_stored(&pem, &path) {
        Err(e) => check(
            Level::Warning,
            format!("ACME: the stored certificate is unusable ({e}); a new one is ordered at start"),
        ),
        Ok((_, info)) if !info.covers_exactly(domains) => check(
            Level::Warning,
            format!(
                "ACME: the stored certificate names {}; one for the configured domains is ordered at start",
                info.names.join(", ")
            ),
        ),
        Ok((_, info)) if info.not_after <= now => check(
            Level::Warning,
            format!(
                "ACME: the stored certificate expired at {}; renewed at start",
                JsonTime::secs(info.not_after)
            ),
        ),
        Ok((_, info)) => check(
            Level::Ok,
            format!(
                "ACME: certificate valid until {}, renewal from {} (issuer {})",
                JsonTime::secs(info.not_after),
                JsonTime::secs(info.renew_at()),
                info.issuer
            ),
        ),
    }
}
