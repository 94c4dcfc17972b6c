//! How values are written in the environment: durations (`30s`, `7d`), sizes
//! (`4MiB`), whole numbers in a range; a bad one names its variable.

use std::fmt;
use std::time::Duration;

use super::{bad, ConfigError};

/// A whole number in `range` (e.g. a concurrency), if the variable is set.
pub(super) fn count_var<N>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<N>,
    target: &mut N,
) -> Result<(), ConfigError>
where
    N: std::str::FromStr + PartialOrd + fmt::Display,
{
    if let Some(v) = get(name) {
        *target = v
            .trim()
            .parse::<N>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                bad(
                    name,
                    format!(
                        "'{v}' is not a number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })?;
    }
    Ok(())
}

pub(super) fn duration_var(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    target: &mut Duration,
) -> Result<(), ConfigError> {
    if let Some(v) = get(name) {
        *target = parse_duration(&v).map_err(|m| bad(name, m))?;
    }
    Ok(())
}

/// Parses `30s`, `15m`, `7d`, `1h30m` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration like 30s, 15m or 7d ({e})"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// Parses a byte size: `4194304`, `512KiB`, `4MiB`, `1GiB` (also `KB`/`MB`/`GB`, `K`/`M`/`G`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size like 4MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{text}': unknown unit (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{text}' is too large"))
}
