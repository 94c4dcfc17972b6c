//! The Prometheus text format (version 0.0.4), written by hand: each feature adds
//! its own series to one page at scrape time.

use std::fmt::Write;

/// One counter without labels.
pub fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

/// One gauge without labels.
pub fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// One series per label value: `name{label="value"} v`.
pub fn labeled<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value, v) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {v}");
    }
}
