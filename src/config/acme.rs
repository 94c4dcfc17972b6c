//! Automatic certificates over ACME (`WAGATE_ACME_*`), read by `config.rs`.

use std::path::PathBuf;

use super::{bad, ConfigError};

/// Let's Encrypt's production directory.
pub const DEFAULT_ACME_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The names the certificate is for (lower case, no wildcards: TLS-ALPN-01
    /// cannot prove a wildcard).
    pub domains: Vec<String>,
    /// Contact address given to the CA (expiry and policy mail).
    pub email: Option<String>,
    /// The ACME directory URL (https).
    pub directory: String,
    /// An extra PEM root trusted for the directory's HTTPS (a private or test CA).
    pub ca_root: Option<PathBuf>,
}

/// A DNS name the CA can validate: letters, digits and hyphens in dot-separated
/// labels. Bare IP addresses are refused (public CAs do not issue for them here).
fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.parse::<std::net::IpAddr>().is_err()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(super) fn read_acme(
    get: &impl Fn(&str) -> Option<String>,
    tls_files: bool,
) -> Result<Option<AcmeConfig>, ConfigError> {
    let Some(domains) = get("WAGATE_ACME_DOMAIN") else {
        for other in [
            "WAGATE_ACME_EMAIL",
            "WAGATE_ACME_DIRECTORY",
            "WAGATE_ACME_CA_ROOT",
        ] {
            if get(other).is_some() {
                return Err(bad(
                    "WAGATE_ACME_DOMAIN",
                    format!("{other} is set: name the domain(s) to turn ACME on"),
                ));
            }
        }
        return Ok(None);
    };
    if tls_files {
        return Err(bad(
            "WAGATE_ACME_DOMAIN",
            "cannot be used with WAGATE_TLS_CERT/WAGATE_TLS_KEY: choose certificate files or ACME",
        ));
    }
    let names = domain_names(&domains)?;
    let email = get("WAGATE_ACME_EMAIL").map(|e| email(&e)).transpose()?;
    let directory = match get("WAGATE_ACME_DIRECTORY") {
        Some(d) => directory(&d)?,
        None => DEFAULT_ACME_DIRECTORY.to_string(),
    };
    let ca_root = get("WAGATE_ACME_CA_ROOT").map(|p| PathBuf::from(p.trim()));
    Ok(Some(AcmeConfig {
        domains: names,
        email,
        directory,
        ca_root,
    }))
}

/// `WAGATE_ACME_DOMAIN`: comma-separated DNS names, lowercased, no wildcard, at
/// least one; duplicates dropped.
fn domain_names(domains: &str) -> Result<Vec<String>, ConfigError> {
    let mut names: Vec<String> = Vec::new();
    for d in domains.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        let d = d.trim_end_matches('.').to_string();
        if d.is_empty() {
            continue;
        }
        if d.contains('*') {
            return Err(bad(
                "WAGATE_ACME_DOMAIN",
                format!("'{d}': wildcards cannot be validated over TLS-ALPN-01"),
            ));
        }
        if !valid_domain(&d) {
            return Err(bad(
                "WAGATE_ACME_DOMAIN",
                format!("'{d}' is not a DNS name like hooks.example.com"),
            ));
        }
        if !names.contains(&d) {
            names.push(d);
        }
    }
    if names.is_empty() {
        return Err(bad("WAGATE_ACME_DOMAIN", "names no domain"));
    }
    Ok(names)
}

/// `WAGATE_ACME_EMAIL`, with or without `mailto:`.
fn email(e: &str) -> Result<String, ConfigError> {
    let e = e.trim().trim_start_matches("mailto:").to_string();
    let ok = e.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && host.contains('.') && !e.contains(char::is_whitespace)
    });
    if !ok {
        return Err(bad(
            "WAGATE_ACME_EMAIL",
            format!("'{e}' is not an e-mail address"),
        ));
    }
    Ok(e)
}

/// `WAGATE_ACME_DIRECTORY`: an https URL with a host.
fn directory(d: &str) -> Result<String, ConfigError> {
    let d = d.trim().to_string();
    let host = d.strip_prefix("https://").map(|r| r.split('/').next());
    if !matches!(host, Some(Some(h)) if !h.is_empty()) || d.contains(char::is_whitespace) {
        return Err(bad(
            "WAGATE_ACME_DIRECTORY",
            format!("'{d}' is not an https URL (ACME directories are HTTPS)"),
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use super::*;

    #[test]
    fn acme_settings() {
        assert_eq!(cfg(&[]).unwrap().acme, None);
        let c = cfg(&[
            (
                "WAGATE_ACME_DOMAIN",
                "Hooks.Example.com, www.example.com,hooks.example.com",
            ),
            ("WAGATE_ACME_EMAIL", "ops@example.com"),
        ])
        .unwrap();
        let a = c.acme.unwrap();
        assert_eq!(a.domains, ["hooks.example.com", "www.example.com"]);
        assert_eq!(a.email.as_deref(), Some("ops@example.com"));
        assert_eq!(a.directory, DEFAULT_ACME_DIRECTORY);
        for (pairs, name) in [
            (
                &[("WAGATE_ACME_EMAIL", "ops@example.com")][..],
                "WAGATE_ACME_DOMAIN",
            ),
            (
                &[
                    ("WAGATE_ACME_DOMAIN", "a.example.com"),
                    ("WAGATE_TLS_CERT", "c.pem"),
                    ("WAGATE_TLS_KEY", "k.pem"),
                ][..],
                "WAGATE_ACME_DOMAIN",
            ),
            (
                &[("WAGATE_ACME_DOMAIN", "*.example.com")][..],
                "WAGATE_ACME_DOMAIN",
            ),
            (
                &[("WAGATE_ACME_DOMAIN", "127.0.0.1")][..],
                "WAGATE_ACME_DOMAIN",
            ),
            (
                &[("WAGATE_ACME_DOMAIN", "a_b.example")][..],
                "WAGATE_ACME_DOMAIN",
            ),
            (
                &[
                    ("WAGATE_ACME_DOMAIN", "a.example.com"),
                    ("WAGATE_ACME_EMAIL", "nobody"),
                ][..],
                "WAGATE_ACME_EMAIL",
            ),
            (
                &[
                    ("WAGATE_ACME_DOMAIN", "a.example.com"),
                    ("WAGATE_ACME_DIRECTORY", "http://ca.example/dir"),
                ][..],
                "WAGATE_ACME_DIRECTORY",
            ),
        ] {
            assert_eq!(cfg(pairs).unwrap_err().name, name, "{pairs:?}");
        }
    }
}
