//! Dashboard login: the admin password (only its Argon2id hash is kept in memory),
//! signed session cookies with an idle timeout, CSRF tokens, login throttling.
//!
//! A session is a cookie `sid.issued.seen.mac`: a random id, when it was issued and
//! last used (unix seconds), and an HMAC-SHA256 over the rest. The MAC key is
//! derived from `<data>/session-key` and the password, so a new password ends
//! every session. Sessions live in the cookie (they survive a restart); logging out
//! adds the id to a list kept in `<data>/dashboard-logouts` until the session would
//! have expired anyway (`logouts.rs`). Login throttling is `throttle.rs`'s.

mod logouts;
pub mod throttle;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::Config;
use logouts::Logouts;
pub use throttle::Refused;
use throttle::Throttle;

pub const COOKIE: &str = "wagate_session";
/// A session idle this long is over (`Config::dashboard_idle` in tests).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, used or not.
const MAX_AGE_SECS: i64 = 12 * 3600;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot use {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot hash the admin password: {0}")]
    Hash(String),
}

/// A valid session (from its cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    id: [u8; 16],
    issued: i64,
}

pub struct Auth {
    /// PHC string of the Argon2id hash (salted).
    password_hash: String,
    mac_key: Zeroizing<[u8; 32]>,
    idle_secs: i64,
    throttle: Throttle,
    /// Logged-out sessions, until they would have expired.
    logouts: Logouts,
}

/// What a login attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    WrongPassword,
    Refused(Refused),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(***)")
    }
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a private file, or creates it with `make()` (mode 0600, atomically).
/// Returns the content and whether it was created.
fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> String,
) -> Result<(Zeroizing<String>, bool), AuthError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok((Zeroizing::new(text.trim().to_string()), false))
        }
        Ok(_) => {} // empty: make a new one
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_err(path)(e)),
    }
    let value = Zeroizing::new(make());
    crate::util::fs::write_private_atomic(path, value.as_bytes()).map_err(file_err(path))?;
    Ok((value, true))
}

fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

impl Auth {
    /// The password from `WAGATE_ADMIN_PASSWORD`, else `<data>/admin-password`
    /// (generated on first start; its path is logged, never its value), and the
    /// session key `<data>/session-key` (generated on first start), and the logouts
    /// still in force at `now`. Blocking: the password is hashed here (Argon2id, a
    /// random salt) and then forgotten.
    pub fn open(config: &Config, now: i64) -> Result<Auth, AuthError> {
        let dir = &config.data_dir;
        let password = match &config.admin_password {
            Some(p) => Zeroizing::new(p.expose().to_string()),
            None => {
                let path = dir.join("admin-password");
                let (pw, created) = load_or_create(&path, || random_hex(12))?;
                if created {
                    tracing::info!(path = %path.display(), "generated the dashboard password (WAGATE_ADMIN_PASSWORD is not set)");
                } else {
                    tracing::info!(path = %path.display(), "dashboard password read from file");
                }
                pw
            }
        };
        let key_path = dir.join("session-key");
        let (key_hex, _) = load_or_create(&key_path, || random_hex(32))?;
        let file_key = Zeroizing::new(hex::decode(key_hex.as_str()).unwrap_or_default());
        if file_key.len() < 32 {
            return Err(file_err(&key_path)(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "expected 64 hex digits",
            )));
        }
        let salt = SaltString::generate(&mut OsRng);
        let password_hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AuthError::Hash(e.to_string()))?
            .to_string();
        let mut mac = HmacSha256::new_from_slice(&file_key).expect("any key length");
        mac.update(b"wagate dashboard session v1\0");
        mac.update(password.as_bytes());
        let mut mac_key = Zeroizing::new([0u8; 32]);
        mac_key.copy_from_slice(&mac.finalize().into_bytes());
        let logouts_path = dir.join("dashboard-logouts");
        let logouts = Logouts::load(&logouts_path, now).map_err(file_err(&logouts_path))?;
        Ok(Auth {
            password_hash,
            mac_key,
            idle_secs: config.dashboard_idle.as_secs().max(1) as i64,
            throttle: Throttle::default(),
            logouts,
        })
    }

    /// One login attempt from `addr`: reserved in the throttle first (it counts as
    /// a failure unless the password is right), then checked on a blocking thread
    /// while holding one of the few check slots. Refused without a check while the
    /// address is locked out or every slot is busy.
    pub async fn login(
        self: &std::sync::Arc<Self>,
        addr: IpAddr,
        given: String,
        now: i64,
    ) -> Login {
        let mut attempt = match self.throttle.reserve(addr, now) {
            Ok(a) => a,
            Err(r) => return Login::Refused(r),
        };
        let (me, permit) = (self.clone(), attempt.permit.take());
        let given = Zeroizing::new(given);
        let ok = tokio::task::spawn_blocking(move || {
            // The slot is held until Argon2 is done, even if the request is dropped.
            let _permit = permit;
            me.verify_password(&given)
        })
        .await
        .unwrap_or(false);
        if !ok {
            return Login::WrongPassword;
        }
        attempt.succeeded();
        Login::Ok
    }

    /// `wagate_dashboard_login_*` series for `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        let t = &self.throttle;
        crate::util::prom::counter(
            out,
            "wagate_dashboard_login_checks_total",
            "Dashboard passwords checked (Argon2id) since start.",
            t.checked.load(Relaxed),
        );
        crate::util::prom::labeled(
            out,
            "wagate_dashboard_login_refused_total",
            "counter",
            "Dashboard logins refused without a check: address locked out, or every check busy.",
            "reason",
            [
                ("locked", t.refused_locked.load(Relaxed)),
                ("busy", t.refused_busy.load(Relaxed)),
            ],
        );
    }

    /// Checks a password against the hash (slow on purpose: run it off the async
    /// threads).
    pub fn verify_password(&self, given: &str) -> bool {
        let Ok(hash) = PasswordHash::new(&self.password_hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(given.as_bytes(), &hash)
            .is_ok()
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(self.mac_key.as_ref()).expect("any key length");
        for p in parts {
            mac.update(p);
            mac.update(b"\0");
        }
        mac.finalize().into_bytes().into()
    }

    fn cookie_value(&self, id: &[u8; 16], issued: i64, seen: i64) -> String {
        let body = format!("{}.{issued}.{seen}", hex::encode(id));
        let tag = self.mac(&[b"cookie", body.as_bytes()]);
        format!("{body}.{}", hex::encode(tag))
    }

    /// A new session after a successful login: its cookie value.
    pub fn issue(&self, now: i64) -> String {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        self.cookie_value(&id, now, now)
    }

    /// The session in a cookie value, if it is authentic, not idle for too long, not
    /// too old and not logged out.
    pub fn check(&self, value: &str, now: i64) -> Option<Session> {
        let (body, tag) = value.rsplit_once('.')?;
        let tag = hex::decode(tag).ok()?;
        let expected = self.mac(&[b"cookie", body.as_bytes()]);
        if !bool::from(expected.as_slice().ct_eq(&tag)) {
            return None;
        }
        let mut parts = body.split('.');
        let id: [u8; 16] = hex::decode(parts.next()?).ok()?.try_into().ok()?;
        let issued: i64 = parts.next()?.parse().ok()?;
        let seen: i64 = parts.next()?.parse().ok()?;
        let fresh = now >= seen - 60 && now - seen < self.idle_secs && now - issued < MAX_AGE_SECS;
        (fresh && !self.logouts.contains(&id)).then_some(Session { id, issued })
    }

    /// The cookie value for a session used at `now` (sliding idle timeout).
    pub fn refresh(&self, s: &Session, now: i64) -> String {
        self.cookie_value(&s.id, s.issued, now)
    }

    /// The `Set-Cookie` header value carrying `value` (empty: delete the cookie).
    pub fn set_cookie(&self, value: &str, secure: bool) -> String {
        let max_age = if value.is_empty() { 0 } else { self.idle_secs };
        format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
            if secure { "; Secure" } else { "" }
        )
    }

    /// The CSRF token of a session (put in every form that changes anything).
    pub fn csrf(&self, s: &Session) -> String {
        hex::encode(&self.mac(&[b"csrf", &s.id])[..20])
    }

    pub fn check_csrf(&self, s: &Session, given: Option<&str>) -> bool {
        let expected = self.csrf(s);
        given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
    }

    /// Logs a session out, for good: the list is written to the data directory
    /// (blocking). Out in memory even if that write fails (the error says so).
    pub fn revoke(&self, s: &Session, now: i64) -> Result<(), AuthError> {
        self.logouts
            .add(&s.id, s.issued + MAX_AGE_SECS, now)
            .map_err(file_err(self.logouts.path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(idle: u64) -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::new(dir.path());
        c.dashboard_idle = Duration::from_secs(idle);
        let a = Auth::open(&c, 0).unwrap();
        (dir, a)
    }

    #[test]
    fn generated_password_file_is_private_and_works() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, a) = auth(1800);
        let path = dir.path().join("admin-password");
        let pw = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(a.verify_password(pw.trim()));
        assert!(!a.verify_password("wrong"));
        assert!(!a.password_hash.contains(pw.trim()));
        // A restart reads the same password and key: old cookies stay valid.
        let cookie = a.issue(1000);
        let b = Auth::open(&Config::new(dir.path()), 1001).unwrap();
        assert!(b.verify_password(pw.trim()));
        assert!(
            b.check(&cookie, 1001).is_some(),
            "sessions survive a restart"
        );
        // A new password ends every session.
        let mut c = Config::new(dir.path());
        c.admin_password = Some(crate::config::Secret::new("another password"));
        let d = Auth::open(&c, 1001).unwrap();
        assert!(d.check(&cookie, 1001).is_none());
        assert!(d.verify_password("another password"));
    }

    #[test]
    fn sessions_expire_when_idle_and_can_be_revoked() {
        let (_dir, a) = auth(1800);
        let c = a.issue(1000);
        let s = a.check(&c, 1000 + 1799).expect("fresh");
        assert!(a.check(&c, 1000 + 1800).is_none(), "idle 30 min: over");
        // Using it slides the timeout.
        let c2 = a.refresh(&s, 2500);
        assert!(a.check(&c2, 2500 + 1799).is_some());
        assert!(
            a.check(&c2, 1000 + MAX_AGE_SECS).is_none(),
            "absolute limit"
        );
        // Tampering breaks the MAC.
        let forged = c2.replacen(".2500.", ".9999.", 1);
        assert!(a.check(&forged, 2600).is_none());
        assert!(a.check("junk", 2600).is_none());
        assert!(a.check_csrf(&s, Some(&a.csrf(&s))));
        assert!(!a.check_csrf(&s, Some("00")));
        assert!(!a.check_csrf(&s, None));
        a.revoke(&s, 2600).unwrap();
        assert!(a.check(&c2, 2600).is_none());
    }

    #[test]
    fn a_logout_survives_a_restart() {
        let (dir, a) = auth(1800);
        let cookie = a.issue(1000);
        let s = a.check(&cookie, 1000).unwrap();
        a.revoke(&s, 1001).unwrap();
        let mut c = Config::new(dir.path());
        c.dashboard_idle = Duration::from_secs(1800);
        let b = Auth::open(&c, 1002).unwrap();
        assert!(b.check(&cookie, 1002).is_none(), "still logged out");
        assert!(b.check(&b.issue(1002), 1002).is_some(), "others are not");
    }
}
