//! How values are written in the environment: durations (`30s`, `7d`), sizes
//! (`4MiB`), whole numbers in a range; a bad one names its variable. Durations and
//! sizes print back the same way (`format_duration`, `format_size`), so what the
//! dashboard shows can be pasted back into the environment.

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

/// Duration units, largest first, in nanoseconds. Weeks, months and years are left
/// out: months and years are not whole days in humantime, and people write `7d`.
const DURATION_UNITS: [(&str, u128); 7] = [
    ("d", 86_400 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A duration as people write it, in the largest unit that divides it exactly:
/// `3650d`, `36h`, `90m` (not `1h30m`), `1500ms`. `parse_duration` reads it back.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let nanos = d.as_nanos();
    if nanos <= u128::from(u64::MAX) || d.subsec_nanos() == 0 {
        return in_largest_unit(nanos);
    }
    // Over ~584 years with a sub-second part: humantime counts sub-second units
    // in u64 nanoseconds, so write the seconds and the rest apart (`…s500ms`).
    let whole = u128::from(d.as_secs()) * NANOS_PER_SEC;
    format!(
        "{}{}",
        in_largest_unit(whole),
        in_largest_unit(u128::from(d.subsec_nanos()))
    )
}

fn in_largest_unit(nanos: u128) -> String {
    let (unit, size) = DURATION_UNITS
        .iter()
        .find(|(_, size)| nanos.is_multiple_of(*size))
        .copied()
        .unwrap_or(("ns", 1));
    format!("{}{unit}", nanos / size)
}

/// A byte size as people write it, in the largest binary unit that divides it
/// exactly: `4MiB`, `1GiB`, `1536KiB`, else bytes (`1000B`). `parse_size` reads it back.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match UNITS
        .iter()
        .find(|(_, size)| bytes != 0 && bytes.is_multiple_of(*size))
    {
        Some((unit, size)) => format!("{}{unit}", bytes / size),
        None => format!("{bytes}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: u64 = 86_400;

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        for (d, text) in [
            (s(3650 * DAY), "3650d"),
            (s(30 * DAY), "30d"),
            (s(7 * DAY), "7d"),
            (s(36 * 3600), "36h"),
            (s(3600), "1h"),
            (s(90 * 60), "90m"),
            (s(30), "30s"),
            (s(61), "61s"),
            (ms(500), "500ms"),
            (ms(1500), "1500ms"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::new(DAY, 1), "86400000000001ns"),
            (Duration::ZERO, "0s"),
            (Duration::new(u64::MAX, 0), "18446744073709551615s"),
            (
                Duration::new(365_000_000 * DAY, 500_000_000),
                "365000000d500ms",
            ),
        ] {
            assert_eq!(format_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn what_people_write_prints_back_the_same() {
        for text in ["3650d", "30d", "7d", "1h", "90m", "30s", "500ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(parse_duration("1h30m").unwrap()), "90m");
        assert_eq!(format_duration(parse_duration("2w").unwrap()), "14d");
        for text in ["4MiB", "16MiB", "1GiB", "512KiB", "1000B"] {
            assert_eq!(format_size(parse_size(text).unwrap()), text);
        }
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        for (bytes, text) in [
            (5 << 20, "5MiB"),
            (16 << 20, "16MiB"),
            (1 << 30, "1GiB"),
            (1 << 40, "1024GiB"),
            (512 << 10, "512KiB"),
            (1536 << 10, "1536KiB"),
            (1000, "1000B"),
            (1, "1B"),
            (0, "0B"),
            (u64::MAX, "18446744073709551615B"),
        ] {
            assert_eq!(format_size(bytes), text, "{bytes}");
        }
    }

    proptest! {
        #[test]
        fn durations_round_trip(
            secs in any::<u64>(),
            unit in prop::sample::select(vec![1, 60, 3600, DAY]),
            nanos in prop::option::of(1u32..1_000_000_000),
        ) {
            // Whole days, hours, minutes or seconds, with or without a sub-second part.
            let d = Duration::new(secs / unit * unit, nanos.unwrap_or(0));
            prop_assume!(!d.is_zero());
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn short_durations_round_trip(nanos in 1u64..(1 << 50)) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn sizes_round_trip(bytes in any::<u64>(), shift in 0u32..40) {
            let bytes = bytes >> shift << shift;
            prop_assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
    }
}
