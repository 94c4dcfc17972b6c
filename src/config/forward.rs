//! Forwarding settings (`WAGATE_FORWARD_*` and the targets file), read by `config.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{bad, count_var, duration_var, ConfigError, Secret};

/// How a target receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    /// Meta's payload shape, signed with `X-Hub-Signature-256`.
    Meta,
    /// One JSON event per item, Standard Webhooks headers.
    Events,
}

impl ForwardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMode::Meta => "meta",
            ForwardMode::Events => "events",
        }
    }
}

/// How a target is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// An HTTP POST to `url`, signed under `secret`.
    Http,
    /// A JetStream publish on the bus (`WAGATE_NATS_*`, see [`super::NatsConfig`]).
    Nats,
}

/// One place events are forwarded to.
#[derive(Debug, Clone)]
pub struct ForwardTarget {
    /// `[A-Za-z0-9_-]`, 1-64 characters; `default` for the one from the environment.
    pub id: String,
    pub url: String,
    pub secret: Secret,
    pub mode: ForwardMode,
    /// Only items of these phone numbers; empty: every item.
    pub phone_number_ids: Vec<String>,
    /// Only items of these change fields (`messages`, `account_update`, ...); empty: all.
    pub fields: Vec<String>,
    pub transport: Transport,
}

impl ForwardTarget {
    pub fn new(id: &str, url: &str, secret: &str, mode: ForwardMode) -> ForwardTarget {
        ForwardTarget {
            id: id.into(),
            url: url.into(),
            secret: Secret::new(secret),
            mode,
            phone_number_ids: Vec::new(),
            fields: Vec::new(),
            transport: Transport::Http,
        }
    }

    /// Whether items of this phone number id are this target's. An item without
    /// one (most account events) belongs to targets without a phone filter.
    pub fn claims(&self, phone_number_id: Option<&str>) -> bool {
        self.phone_number_ids.is_empty()
            || phone_number_id.is_some_and(|p| self.phone_number_ids.iter().any(|x| x == p))
    }

    pub fn wants_field(&self, field: &str) -> bool {
        self.fields.is_empty() || self.fields.iter().any(|f| f == field)
    }

    /// The HMAC key: a Standard Webhooks secret `whsec_<base64>` is decoded; any
    /// other secret is used as its bytes (Meta's app secrets are plain strings).
    pub fn signing_key(&self) -> Vec<u8> {
        use base64::Engine;
        let s = self.secret.expose();
        s.strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_else(|| s.as_bytes().to_vec())
    }

    /// The URL without its query or credentials (for the API and logs).
    pub fn display_url(&self) -> String {
        if self.transport == Transport::Nats {
            return super::NatsConfig::new(&self.url).display_url();
        }
        match reqwest::Url::parse(&self.url) {
            Ok(u) => {
                format!(
                    "{}://{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or(""),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                ) + u.path()
            }
            Err(_) => "(invalid)".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub targets: Vec<ForwardTarget>,
    /// Whole-request time limit of one attempt.
    pub timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A target failing without a success for this long is paused: then only
    /// probed every `probe_every` until an attempt succeeds.
    pub pause_after: Duration,
    pub probe_every: Duration,
    /// An event not delivered this long after it was received goes to the dead letters.
    pub max_age: Duration,
    /// An entry that failed this many times while other contacts' entries did not
    /// (a poisoned entry) goes to the dead letters; its contact's next entries go on.
    pub max_attempts: u32,
    /// Entries in flight at once per target (never two of the same contact).
    pub concurrency: usize,
    /// The bus (`WAGATE_NATS_URL`), when set: its target is `nats` in `targets`.
    pub nats: Option<super::NatsConfig>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            targets: Vec::new(),
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            pause_after: Duration::from_secs(600),
            probe_every: Duration::from_secs(300),
            max_age: Duration::from_secs(3 * 86400),
            max_attempts: 15,
            concurrency: 4,
            nats: None,
        }
    }
}

/// The targets file (`WAGATE_FORWARD_CONFIG`, default `<data>/forward.json`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    targets: Vec<FileTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    id: String,
    url: String,
    secret: String,
    #[serde(default)]
    mode: Option<ForwardMode>,
    #[serde(default)]
    phone_number_ids: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

const FILE_VAR: &str = "WAGATE_FORWARD_CONFIG";

pub(super) fn read_forward(
    get: &impl Fn(&str) -> Option<String>,
    data_dir: &Path,
    f: &mut ForwardConfig,
) -> Result<(), ConfigError> {
    duration_var(get, "WAGATE_FORWARD_TIMEOUT", &mut f.timeout)?;
    duration_var(get, "WAGATE_FORWARD_BACKOFF_BASE", &mut f.backoff_base)?;
    duration_var(get, "WAGATE_FORWARD_BACKOFF_CAP", &mut f.backoff_cap)?;
    if f.backoff_cap < f.backoff_base {
        return Err(bad(
            "WAGATE_FORWARD_BACKOFF_CAP",
            "must not be shorter than WAGATE_FORWARD_BACKOFF_BASE",
        ));
    }
    duration_var(get, "WAGATE_FORWARD_PAUSE_AFTER", &mut f.pause_after)?;
    duration_var(get, "WAGATE_FORWARD_PROBE_EVERY", &mut f.probe_every)?;
    duration_var(get, "WAGATE_FORWARD_MAX_AGE", &mut f.max_age)?;
    count_var(
        get,
        "WAGATE_FORWARD_MAX_ATTEMPTS",
        1..=1_000_000,
        &mut f.max_attempts,
    )?;
    count_var(
        get,
        "WAGATE_FORWARD_CONCURRENCY",
        1..=64,
        &mut f.concurrency,
    )?;
    let mode = match get("WAGATE_FORWARD_MODE").as_deref().map(str::trim) {
        None | Some("meta") => ForwardMode::Meta,
        Some("events") => ForwardMode::Events,
        Some(other) => {
            return Err(bad(
                "WAGATE_FORWARD_MODE",
                format!("'{other}' is not meta or events"),
            ))
        }
    };
    match (get("WAGATE_FORWARD_URL"), get("WAGATE_FORWARD_SECRET")) {
        (Some(url), Some(secret)) => {
            let t = ForwardTarget::new("default", url.trim(), secret.trim(), mode);
            validate(&t).map_err(|m| bad("WAGATE_FORWARD_URL", m))?;
            f.targets.push(t);
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(bad(
                "WAGATE_FORWARD_SECRET",
                "WAGATE_FORWARD_URL is set: set the secret the target verifies too",
            ))
        }
        (None, Some(_)) => {
            return Err(bad(
                "WAGATE_FORWARD_URL",
                "WAGATE_FORWARD_SECRET is set: set the target URL too",
            ))
        }
    }
    super::nats::read_nats(get, f)?;
    let (path, required) = match get(FILE_VAR) {
        Some(p) => (PathBuf::from(p.trim()), true),
        None => (data_dir.join("forward.json"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(()),
        Err(e) if required => return Err(bad(FILE_VAR, format!("{}: {e}", path.display()))),
        // Not asked for: the data directory itself is what cannot be used.
        Err(e) => {
            return Err(bad(
                "WAGATE_DATA_DIR",
                format!(
                    "cannot read {}: {e} (wagate's user must be able to read and write the data directory {})",
                    path.display(),
                    data_dir.display()
                ),
            ))
        }
    };
    let targets = parse_targets(&text, &f.targets)
        .map_err(|m| bad(FILE_VAR, format!("{}: {m}", path.display())))?;
    f.targets.extend(targets);
    Ok(())
}

/// The targets file's text: its targets, each valid, with ids unique among
/// themselves and `existing` (the one from the environment).
pub fn parse_targets(text: &str, existing: &[ForwardTarget]) -> Result<Vec<ForwardTarget>, String> {
    let file: TargetsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out: Vec<ForwardTarget> = Vec::new();
    for t in file.targets {
        let target = ForwardTarget {
            mode: t.mode.unwrap_or(ForwardMode::Meta),
            phone_number_ids: t.phone_number_ids,
            fields: t.fields,
            ..ForwardTarget::new(&t.id, t.url.trim(), t.secret.trim(), ForwardMode::Meta)
        };
        validate(&target).map_err(|m| format!("target '{}': {m}", t.id))?;
        if existing.iter().chain(&out).any(|x| x.id == target.id) {
            return Err(format!("target id '{}' is used twice", t.id));
        }
        out.push(target);
    }
    Ok(out)
}

fn validate(t: &ForwardTarget) -> Result<(), String> {
    let id_ok = (1..=64).contains(&t.id.len())
        && t.id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err("id must be 1-64 characters of A-Z a-z 0-9 _ -".into());
    }
    match reqwest::Url::parse(&t.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => return Err("url is not an http(s) URL".into()),
    }
    if t.secret.expose().is_empty() {
        return Err("the secret is empty".into());
    }
    if let Some(b) = t.secret.expose().strip_prefix("whsec_") {
        use base64::Engine;
        // An empty key would let anyone sign (found by fuzzing: `whsec_` alone).
        if !base64::engine::general_purpose::STANDARD
            .decode(b)
            .is_ok_and(|key| !key.is_empty())
        {
            return Err(
                "a whsec_ secret must be base64 of at least one byte after the prefix".into(),
            );
        }
    }
    if t.phone_number_ids
        .iter()
        .any(|p| !p.bytes().all(|b| b.is_ascii_digit()) || p.is_empty())
    {
        return Err("phone_number_ids must be digits".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)], dir: &Path) -> Result<ForwardConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut f = ForwardConfig::default();
        read_forward(&|k: &str| map.get(k).cloned(), dir, &mut f).map(|_| f)
    }

    #[test]
    fn env_target_and_file_targets() {
        let dir = tempfile::tempdir().unwrap();
        let f = read(
            &[
                ("WAGATE_FORWARD_URL", "http://127.0.0.1:9/hook"),
                ("WAGATE_FORWARD_SECRET", "s3cret"),
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(f.targets.len(), 1);
        assert_eq!(f.targets[0].mode, ForwardMode::Meta);
        assert_eq!(f.max_attempts, 15);
        let f = read(&[("WAGATE_FORWARD_MAX_ATTEMPTS", "3")], dir.path()).unwrap();
        assert_eq!(f.max_attempts, 3);
        assert!(!format!("{f:?}").contains("s3cret"));
        std::fs::write(
            dir.path().join("forward.json"),
            r#"{"targets":[{"id":"shop","url":"https://a.example/x?k=1","secret":"whsec_c2VjcmV0","mode":"events","phone_number_ids":["123"],"fields":["messages"]}]}"#,
        )
        .unwrap();
        let f = read(&[], dir.path()).unwrap();
        let t = &f.targets[0];
        assert_eq!((t.id.as_str(), t.mode), ("shop", ForwardMode::Events));
        assert_eq!(t.signing_key(), b"secret");
        assert_eq!(t.display_url(), "https://a.example/x");
        assert!(t.claims(Some("123")) && !t.claims(Some("124")) && !t.claims(None));
        assert!(t.wants_field("messages") && !t.wants_field("account_update"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        for (pairs, name) in [
            (
                vec![("WAGATE_FORWARD_URL", "http://x/")],
                "WAGATE_FORWARD_SECRET",
            ),
            (
                vec![
                    ("WAGATE_FORWARD_URL", "ftp://x/"),
                    ("WAGATE_FORWARD_SECRET", "s"),
                ],
                "WAGATE_FORWARD_URL",
            ),
            (vec![("WAGATE_FORWARD_MODE", "json")], "WAGATE_FORWARD_MODE"),
            (
                vec![("WAGATE_FORWARD_MAX_AGE", "x")],
                "WAGATE_FORWARD_MAX_AGE",
            ),
            (
                vec![("WAGATE_FORWARD_MAX_ATTEMPTS", "0")],
                "WAGATE_FORWARD_MAX_ATTEMPTS",
            ),
            (
                vec![("WAGATE_FORWARD_CONFIG", "/nonexistent/f.json")],
                FILE_VAR,
            ),
        ] {
            assert_eq!(read(&pairs, dir.path()).unwrap_err().name, name);
        }
        std::fs::write(
            dir.path().join("forward.json"),
            r#"{"targets":[{"id":"a b","url":"http://x/","secret":"s"}]}"#,
        )
        .unwrap();
        assert_eq!(read(&[], dir.path()).unwrap_err().name, FILE_VAR);
    }

    #[test]
    fn an_unusable_data_dir_is_named_not_the_unset_variable() {
        // A data directory wagate cannot read (here: its parent is a file; as
        // another user: a root-owned 0700 directory) is the cause to report.
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let data = tmp.path().join("file/data");
        let err = read(&[], &data).unwrap_err();
        assert_eq!(err.name, "WAGATE_DATA_DIR");
        assert!(err.message.contains(&data.display().to_string()), "{err}");
    }
}
