//! Dashboard login: the admin password (only its Argon2id hash is kept in memory),
//! signed session cookies with an idle timeout, CSRF tokens, login throttling.
//!
//! A session is a cookie `sid.issued.seen.mac`: a random id, when it was issued and
//! last used (unix seconds), and an HMAC-SHA256 over the rest. The MAC key is
//! derived from `<data>/session-key` and the password, so a new password ends
//! every session. Sessions live in the cookie (they survive a restart); logging out
//! adds the id to an in-memory revocation list kept until the session would have
//! expired anyway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
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

pub const COOKIE: &str = "wagate_session";
/// A session idle this long is over (`Config::dashboard_idle` in tests).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, used or not.
const MAX_AGE_SECS: i64 = 12 * 3600;
/// Failed logins per address before it is refused, within `THROTTLE_WINDOW_SECS`.
pub const THROTTLE_FAILURES: usize = 5;
pub const THROTTLE_WINDOW_SECS: i64 = 5 * 60;
/// How long an address is refused after too many failures.
pub const THROTTLE_LOCK_SECS: i64 = 5 * 60;

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

#[derive(Default)]
struct Throttle {
    /// Failure times per address, within the window.
    failures: HashMap<IpAddr, Vec<i64>>,
    /// Refused until (unix seconds).
    locked: HashMap<IpAddr, i64>,
}

pub struct Auth {
    /// PHC string of the Argon2id hash (salted).
    password_hash: String,
    mac_key: Zeroizing<[u8; 32]>,
    idle_secs: i64,
    throttle: Mutex<Throttle>,
    /// Logged-out session ids -> when they would have expired.
    revoked: Mutex<HashMap<[u8; 16], i64>>,
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
    /// session key `<data>/session-key` (generated on first start). Blocking: the
    /// password is hashed here (Argon2id, a random salt) and then forgotten.
    pub fn open(config: &Config) -> Result<Auth, AuthError> {
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
        Ok(Auth {
            password_hash,
            mac_key,
            idle_secs: config.dashboard_idle.as_secs().max(1) as i64,
            throttle: Mutex::default(),
            revoked: Mutex::default(),
        })
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
        let revoked = self.lock_revoked().contains_key(&id);
        (fresh && !revoked).then_some(Session { id, issued })
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

    /// Logs a session out.
    pub fn revoke(&self, s: &Session, now: i64) {
        let mut revoked = self.lock_revoked();
        revoked.retain(|_, until| *until > now);
        revoked.insert(s.id, s.issued + MAX_AGE_SECS);
    }

    fn lock_revoked(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], i64>> {
        self.revoked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds to wait)` while `addr` is refused.
    pub fn throttled(&self, addr: IpAddr, now: i64) -> Result<(), i64> {
        match self.lock_throttle().locked.get(&addr) {
            Some(until) if *until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed login; the fifth within the window refuses the address.
    pub fn failed(&self, addr: IpAddr, now: i64) {
        let mut t = self.lock_throttle();
        // Bounded memory: forget what no longer counts once the map grows.
        if t.failures.len() > 10_000 {
            t.failures
                .retain(|_, v| v.iter().any(|at| now - at < THROTTLE_WINDOW_SECS));
            t.locked.retain(|_, until| *until > now);
        }
        let list = t.failures.entry(addr).or_default();
        list.retain(|at| now - at < THROTTLE_WINDOW_SECS);
        list.push(now);
        if list.len() >= THROTTLE_FAILURES {
            list.clear();
            t.locked.insert(addr, now + THROTTLE_LOCK_SECS);
            tracing::warn!(%addr, "dashboard login refused for 5 minutes after 5 failures");
        }
    }

    pub fn succeeded(&self, addr: IpAddr) {
        self.lock_throttle().failures.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(idle: u64) -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::new(dir.path());
        c.dashboard_idle = Duration::from_secs(idle);
        let a = Auth::open(&c).unwrap();
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
        let b = Auth::open(&Config::new(dir.path())).unwrap();
        assert!(b.verify_password(pw.trim()));
        assert!(
            b.check(&cookie, 1001).is_some(),
            "sessions survive a restart"
        );
        // A new password ends every session.
        let mut c = Config::new(dir.path());
        c.admin_password = Some(crate::config::Secret::new("another password"));
        let d = Auth::open(&c).unwrap();
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
        a.revoke(&s, 2600);
        assert!(a.check(&c2, 2600).is_none());
    }

    #[test]
    fn five_failures_lock_an_address_for_five_minutes() {
        let (_dir, a) = auth(1800);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..4 {
            a.failed(ip, 100 + i);
            assert!(a.throttled(ip, 100 + i).is_ok());
        }
        a.failed(ip, 104);
        assert_eq!(a.throttled(ip, 104), Err(300));
        assert!(a.throttled(other, 104).is_ok());
        assert!(a.throttled(ip, 404).is_ok());
        // Failures spread over more than the window do not add up.
        for i in 0..10 {
            a.failed(other, 1000 + i * 100);
        }
        assert!(a.throttled(other, 2000).is_ok());
    }
}
