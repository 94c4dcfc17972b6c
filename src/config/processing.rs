//! How the applier processes the journal (`WAGATE_MAX_ITEMS`, `WAGATE_STUCK_AFTER`,
//! `WAGATE_PROCESSING_NICE`), read by `config/mod.rs`: what one delivery may cost,
//! when processing that makes no progress counts as stuck, and how it shares the CPU.

use std::time::Duration;

use super::{bad, count_var, duration_var, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingConfig {
    /// Items of one delivery applied at most; the rest stay in its raw copy, and the
    /// delivery is flagged (`items_skipped`).
    pub max_items: usize,
    /// Failing, or behind without progress, for this long: `/healthz` answers 503;
    /// a store that stays broken once the disk has room again ends the process
    /// (exit 75) for systemd to restart it.
    pub stuck_after: Duration,
    /// Nice value of the processing threads (the applier and its committer; 0 to
    /// 19, 0: as the rest): when the CPU is short, acknowledging webhooks goes first.
    pub nice: i32,
}

pub const DEFAULT_MAX_ITEMS: usize = 10_000;

impl Default for ProcessingConfig {
    fn default() -> Self {
        ProcessingConfig {
            max_items: DEFAULT_MAX_ITEMS,
            stuck_after: Duration::from_secs(30),
            nice: 10,
        }
    }
}

pub(super) fn read_processing(
    get: &impl Fn(&str) -> Option<String>,
    c: &mut ProcessingConfig,
) -> Result<(), ConfigError> {
    count_var(get, "WAGATE_MAX_ITEMS", 1..=1_000_000, &mut c.max_items)?;
    duration_var(get, "WAGATE_STUCK_AFTER", &mut c.stuck_after)?;
    count_var(get, "WAGATE_PROCESSING_NICE", 0..=19, &mut c.nice)?;
    if c.stuck_after < Duration::from_secs(1) {
        return Err(bad("WAGATE_STUCK_AFTER", "must be at least 1s"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ProcessingConfig, ConfigError> {
        let get = |n: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let mut c = ProcessingConfig::default();
        read_processing(&get, &mut c).map(|()| c)
    }

    #[test]
    fn defaults_and_overrides() {
        let c = read(&[]).unwrap();
        assert_eq!(
            (c.max_items, c.stuck_after),
            (10_000, Duration::from_secs(30))
        );
        assert_eq!(c.nice, 10);
        let c = read(&[
            ("WAGATE_MAX_ITEMS", "100"),
            ("WAGATE_STUCK_AFTER", "2m"),
            ("WAGATE_PROCESSING_NICE", "0"),
        ])
        .unwrap();
        assert_eq!(
            (c.max_items, c.stuck_after, c.nice),
            (100, Duration::from_secs(120), 0)
        );
    }

    #[test]
    fn nonsense_is_refused_with_its_name() {
        for (name, v) in [
            ("WAGATE_MAX_ITEMS", "0"),
            ("WAGATE_MAX_ITEMS", "-5"),
            ("WAGATE_MAX_ITEMS", "many"),
            ("WAGATE_STUCK_AFTER", "500ms"),
            ("WAGATE_STUCK_AFTER", "soon"),
            ("WAGATE_PROCESSING_NICE", "20"),
            ("WAGATE_PROCESSING_NICE", "-5"),
        ] {
            assert_eq!(read(&[(name, v)]).unwrap_err().name, name);
        }
    }
}
