//! The event bus (`WAGATE_NATS_*`): a forwarding target whose transport is a NATS
//! JetStream publish. Read by `forward.rs`, which adds the target `nats`.

use std::path::PathBuf;
use std::time::Duration;

use super::forward::{ForwardConfig, ForwardMode, ForwardTarget, Transport};
use super::{bad, duration_var, ConfigError};

/// The id of the bus target (in the API, the dashboard and the metrics).
pub const NATS_TARGET: &str = "nats";

#[derive(Debug, Clone, PartialEq)]
pub struct NatsConfig {
    /// `nats://host:4222` (or `tls://`), several separated by commas; user and
    /// password or a token may be in the URL.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed), if the server wants one.
    pub creds: Option<PathBuf>,
    /// Subjects are `<prefix>.<field>.<phone_number_id>`.
    pub subject_prefix: String,
    /// The stream that stores them (created if missing).
    pub stream: String,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a second publish of it.
    pub duplicate_window: Duration,
}

impl NatsConfig {
    pub fn new(url: &str) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            creds: None,
            subject_prefix: "wagate".into(),
            stream: "WAGATE".into(),
            duplicate_window: Duration::from_secs(3600),
        }
    }

    /// The subject of an item: `<prefix>.<field>.<phone_number_id>`, each part one
    /// subject token (`none` when the item has no phone number id; any character
    /// but `A-Z a-z 0-9 _ -` becomes `_`, so a payload can never add a token or a
    /// wildcard).
    pub fn subject(&self, field: &str, phone_number_id: Option<&str>) -> String {
        format!(
            "{}.{}.{}",
            self.subject_prefix,
            token(field),
            token(phone_number_id.unwrap_or(""))
        )
    }

    /// The subjects the stream takes: `<prefix>.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// The servers without credentials (for the API, the dashboard and logs).
    pub fn display_url(&self) -> String {
        self.url
            .split(',')
            .map(|u| {
                let u = u.trim();
                match u.split_once("://") {
                    Some((scheme, rest)) => {
                        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                        format!("{scheme}://{host}")
                    }
                    None => "(invalid)".into(),
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn token(s: &str) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `WAGATE_NATS_*`: when `WAGATE_NATS_URL` is set, the bus target `nats` (events
/// mode) is added to `f.targets`.
pub(super) fn read_nats(
    get: &impl Fn(&str) -> Option<String>,
    f: &mut ForwardConfig,
) -> Result<(), ConfigError> {
    let Some(url) = get("WAGATE_NATS_URL").map(|u| u.trim().to_string()) else {
        for name in [
            "WAGATE_NATS_CREDS",
            "WAGATE_NATS_SUBJECT_PREFIX",
            "WAGATE_NATS_STREAM",
            "WAGATE_NATS_DUPLICATE_WINDOW",
        ] {
            if get(name).is_some() {
                return Err(bad(name, "set WAGATE_NATS_URL too (the bus is off)"));
            }
        }
        return Ok(());
    };
    let servers_ok = !url.is_empty()
        && url.split(',').all(|u| {
            let u = u.trim();
            ["nats://", "tls://"].iter().any(|s| {
                u.strip_prefix(s)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
            })
        });
    if !servers_ok {
        return Err(bad(
            "WAGATE_NATS_URL",
            "must be nats://host:port or tls://host:port (several separated by commas)",
        ));
    }
    let mut n = NatsConfig::new(&url);
    n.creds = get("WAGATE_NATS_CREDS").map(|p| PathBuf::from(p.trim()));
    if let Some(p) = get("WAGATE_NATS_SUBJECT_PREFIX") {
        let p = p.trim();
        if !p.split('.').all(is_name) {
            return Err(bad(
                "WAGATE_NATS_SUBJECT_PREFIX",
                format!("'{p}' must be tokens of A-Z a-z 0-9 _ - separated by dots"),
            ));
        }
        n.subject_prefix = p.into();
    }
    if let Some(s) = get("WAGATE_NATS_STREAM") {
        if !is_name(s.trim()) {
            return Err(bad(
                "WAGATE_NATS_STREAM",
                format!("'{s}' must be 1-64 characters of A-Z a-z 0-9 _ -"),
            ));
        }
        n.stream = s.trim().into();
    }
    duration_var(get, "WAGATE_NATS_DUPLICATE_WINDOW", &mut n.duplicate_window)?;
    f.targets.push(ForwardTarget {
        transport: Transport::Nats,
        ..ForwardTarget::new(NATS_TARGET, &url, "", ForwardMode::Events)
    });
    f.nats = Some(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ForwardConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut f = ForwardConfig::default();
        read_nats(&|k: &str| map.get(k).cloned(), &mut f).map(|_| f)
    }

    #[test]
    fn unset_is_off_and_set_adds_the_bus_target() {
        let f = read(&[]).unwrap();
        assert!(f.nats.is_none() && f.targets.is_empty());
        let f = read(&[("WAGATE_NATS_URL", "nats://u:pw@127.0.0.1:4222")]).unwrap();
        let n = f.nats.as_ref().unwrap();
        assert_eq!(n.stream, "WAGATE");
        assert_eq!(n.subject_prefix, "wagate");
        assert_eq!(n.duplicate_window, Duration::from_secs(3600));
        let t = &f.targets[0];
        assert_eq!((t.id.as_str(), t.mode), (NATS_TARGET, ForwardMode::Events));
        assert_eq!(t.transport, Transport::Nats);
        assert_eq!(t.display_url(), "nats://127.0.0.1:4222");
        assert!(t.claims(None) && t.wants_field("account_update"));
        let f = read(&[
            ("WAGATE_NATS_URL", "nats://a:4222, tls://b:4443"),
            ("WAGATE_NATS_SUBJECT_PREFIX", "acme.wa"),
            ("WAGATE_NATS_STREAM", "ACME_WA"),
            ("WAGATE_NATS_DUPLICATE_WINDOW", "2h"),
        ])
        .unwrap();
        let n = f.nats.unwrap();
        assert_eq!(n.stream_subjects(), "acme.wa.>");
        assert_eq!(n.duplicate_window, Duration::from_secs(7200));
        assert_eq!(n.display_url(), "nats://a:4222,tls://b:4443");
    }

    #[test]
    fn subjects_are_three_safe_tokens() {
        let n = NatsConfig::new("nats://x:1");
        for (field, phone, subject) in [
            (
                "messages",
                Some("106540352242922"),
                "wagate.messages.106540352242922",
            ),
            ("account_update", None, "wagate.account_update.none"),
            ("messages", Some(""), "wagate.messages.none"),
            ("a.b", Some("1 2"), "wagate.a_b.1_2"),
            ("messages", Some("*"), "wagate.messages._"),
            ("x>", Some("9.>"), "wagate.x_.9__"),
        ] {
            assert_eq!(n.subject(field, phone), subject, "{field} {phone:?}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, name) in [
            (
                vec![("WAGATE_NATS_URL", "http://x:4222")],
                "WAGATE_NATS_URL",
            ),
            (vec![("WAGATE_NATS_URL", "")], "WAGATE_NATS_URL"),
            (vec![("WAGATE_NATS_URL", "nats://")], "WAGATE_NATS_URL"),
            (
                vec![
                    ("WAGATE_NATS_URL", "nats://x:1"),
                    ("WAGATE_NATS_SUBJECT_PREFIX", "a.>"),
                ],
                "WAGATE_NATS_SUBJECT_PREFIX",
            ),
            (
                vec![
                    ("WAGATE_NATS_URL", "nats://x:1"),
                    ("WAGATE_NATS_SUBJECT_PREFIX", "a..b"),
                ],
                "WAGATE_NATS_SUBJECT_PREFIX",
            ),
            (
                vec![
                    ("WAGATE_NATS_URL", "nats://x:1"),
                    ("WAGATE_NATS_STREAM", "A.B"),
                ],
                "WAGATE_NATS_STREAM",
            ),
            (
                vec![
                    ("WAGATE_NATS_URL", "nats://x:1"),
                    ("WAGATE_NATS_DUPLICATE_WINDOW", "soon"),
                ],
                "WAGATE_NATS_DUPLICATE_WINDOW",
            ),
            (vec![("WAGATE_NATS_STREAM", "S")], "WAGATE_NATS_STREAM"),
        ] {
            assert_eq!(read(&pairs).unwrap_err().name, name, "{pairs:?}");
        }
    }
}
