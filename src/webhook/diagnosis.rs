//! Why a signature failed. Meta signs the exact bytes it sends; when a proxy or
//! framework rewrites the body on the way (re-encodes Unicode, unescapes `\/`,
//! pretty-prints, adds a newline, truncates), the HMAC no longer matches. This
//! module tries those rewrites in reverse and says which one explains the failure.

use serde::Serialize;

use crate::events::signature::Verifier;
use crate::journal::delivery::Verdict;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `body_rewritten`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The verdict under the secrets configured now.
    pub verdict: Verdict,
    pub secret_index: Option<u8>,
    pub findings: Vec<Finding>,
}

fn finding(code: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        code,
        message: message.into(),
    }
}

/// Re-checks a delivery with the current secrets and explains a failure.
pub fn diagnose(
    verifier: &Verifier,
    header: Option<&[u8]>,
    body: &[u8],
    declared_length: Option<u64>,
    received_length: u64,
) -> Diagnosis {
    let outcome = verifier.verify(header, body);
    let mut findings = Vec::new();
    if received_length > body.len() as u64 {
        findings.push(finding(
            "too_large",
            format!(
                "the body was {received_length} bytes, over the limit; only its first {} bytes are kept, so it cannot be verified",
                body.len()
            ),
        ));
    }
    match outcome.verdict {
        Verdict::Accepted => findings.push(finding(
            "valid_now",
            format!(
                "the signature is valid under configured secret #{} (0-based)",
                outcome.secret_index.unwrap_or(0)
            ),
        )),
        Verdict::NoSecretConfigured => findings.push(finding(
            "no_secret",
            "no app secret is configured: set META_APP_SECRET to your Meta app's secret (App settings > Basic)",
        )),
        Verdict::MissingHeader => findings.push(finding(
            "missing_header",
            "the request had no X-Hub-Signature-256 header: it did not come from Meta, or a proxy removed the header",
        )),
        Verdict::MalformedHeader => findings.push(finding(
            "malformed_header",
            format!("{}; Meta sends 'sha256=' and 64 hex digits", outcome.reason),
        )),
        Verdict::Mismatch | Verdict::TooLarge | Verdict::Truncated => {
            if let Some(declared) = declared_length {
                if declared != received_length {
                    findings.push(finding(
                        "length_mismatch",
                        format!("Content-Length said {declared} bytes but {received_length} arrived: something between Meta and wagate truncated or changed the body"),
                    ));
                }
            }
            if outcome.verdict == Verdict::Mismatch {
                match rewrite_that_matches(verifier, header, body) {
                    Some((what, index)) => findings.push(finding(
                        "body_rewritten",
                        format!("the signature matches secret #{index} if the body is {what}: something between Meta and wagate rewrote the body (a proxy, or a framework that parsed and re-serialised the JSON). Verify the raw bytes instead"),
                    )),
                    None => findings.push(finding(
                        "no_secret_matches",
                        format!("{}. Check that META_APP_SECRET is the secret of the app that sends these webhooks (App settings > Basic); after a rotation list both, new first", outcome.reason),
                    )),
                }
            }
        }
    }
    Diagnosis {
        verdict: outcome.verdict,
        secret_index: outcome.secret_index,
        findings,
    }
}

type Rewrite = fn(&[u8]) -> Option<Vec<u8>>;

/// The reverse of common rewrites, with a description of the original rewrite.
const REWRITES: &[(&str, Rewrite)] = &[
    ("stripped of a trailing newline", strip_trailing_whitespace),
    ("made compact again (it was pretty-printed)", minify),
    (
        "given back its \\uXXXX escapes (non-ASCII was decoded to UTF-8)",
        escape_non_ascii,
    ),
    (
        "given back its '\\/' escapes ('\\/' was unescaped to '/')",
        escape_slashes,
    ),
    (
        "re-encoded as Meta sends it (compact, \\uXXXX, '\\/')",
        meta_encoding,
    ),
    ("decoded from \\uXXXX escapes to UTF-8", unescape_non_ascii),
    ("unescaped from '\\/' to '/'", unescape_slashes),
];

fn rewrite_that_matches(
    verifier: &Verifier,
    header: Option<&[u8]>,
    body: &[u8],
) -> Option<(&'static str, u8)> {
    REWRITES.iter().find_map(|(what, rewrite)| {
        let candidate = rewrite(body).filter(|c| c.as_slice() != body)?;
        let o = verifier.verify(header, &candidate);
        (o.verdict == Verdict::Accepted).then(|| (*what, o.secret_index.unwrap_or(0)))
    })
}

fn strip_trailing_whitespace(b: &[u8]) -> Option<Vec<u8>> {
    Some(b.trim_ascii_end().to_vec())
}

/// Removes whitespace outside strings, keeping key order and every byte inside strings.
fn minify(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut in_string = false;
    let mut escaped = false;
    for &c in b {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    Some(out)
}

/// Every non-ASCII character as lowercase `\uXXXX` (UTF-16 surrogate pairs above
/// the BMP), as Meta encodes bodies.
fn escape_non_ascii(b: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(b).ok()?;
    let mut out = String::with_capacity(b.len() + 16);
    let mut units = [0u16; 2];
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            for u in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    Some(out.into_bytes())
}

/// `/` as `\/` inside strings. Outside strings JSON has no `/`.
fn escape_slashes(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len() + 16);
    let mut prev_backslash = false;
    for &c in b {
        if c == b'/' && !prev_backslash {
            out.extend_from_slice(b"\\/");
        } else {
            out.push(c);
        }
        prev_backslash = c == b'\\' && !prev_backslash;
    }
    Some(out)
}

fn unescape_slashes(b: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(b).ok()?;
    Some(text.replace("\\/", "/").into_bytes())
}

fn meta_encoding(b: &[u8]) -> Option<Vec<u8>> {
    let compact = minify(b.trim_ascii_end())?;
    escape_slashes(&escape_non_ascii(&unescape_slashes(&compact)?)?)
}

/// `\uXXXX` escapes of non-ASCII code points (and surrogate pairs) decoded to UTF-8.
fn unescape_non_ascii(b: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(b).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\\u") {
        // An escaped backslash before "u" is not an escape.
        let backslashes = rest[..i].bytes().rev().take_while(|&c| c == b'\\').count();
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 2..i + 6);
        let unit = hex.and_then(|h| u16::from_str_radix(h, 16).ok());
        match unit {
            Some(u) if backslashes % 2 == 0 && u >= 0x80 => {
                if (0xd800..0xdc00).contains(&u) {
                    let low = rest
                        .get(i + 6..i + 12)
                        .filter(|s| s.starts_with("\\u"))
                        .and_then(|s| u16::from_str_radix(&s[2..], 16).ok());
                    match low.and_then(|l| char::decode_utf16([u, l]).next()?.ok()) {
                        Some(ch) => {
                            out.push(ch);
                            rest = &rest[i + 12..];
                            continue;
                        }
                        None => return None,
                    }
                }
                out.push(char::from_u32(u as u32)?);
                rest = &rest[i + 6..];
            }
            _ => {
                out.push_str("\\u");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::events::signature::sign;

    const ORIGINAL: &str = r#"{"a":"caf\u00e9 \ud83d\ude2e","u":"https:\/\/x.y\/z","n":1}"#;

    fn codes(d: &Diagnosis) -> Vec<&'static str> {
        d.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn each_rewrite_is_recognised() {
        let v = Verifier::new(&[Secret::new("s")]);
        let sig = sign(b"s", ORIGINAL.as_bytes());
        let pretty = "{\n  \"a\": \"caf\\u00e9 \\ud83d\\ude2e\",\n  \"u\": \"https:\\/\\/x.y\\/z\",\n  \"n\": 1\n}";
        let rewritten = [
            format!("{ORIGINAL}\n"),
            pretty.to_string(),
            ORIGINAL
                .replace("\\u00e9", "é")
                .replace("\\ud83d\\ude2e", "😮"),
            ORIGINAL.replace("\\/", "/"),
            r#"{"a":"café 😮","u":"https://x.y/z","n":1}"#.to_string(),
        ];
        for body in rewritten {
            let d = diagnose(
                &v,
                Some(sig.as_bytes()),
                body.as_bytes(),
                Some(body.len() as u64),
                body.len() as u64,
            );
            assert_eq!(codes(&d), ["body_rewritten"], "{body}");
        }
        let d = diagnose(
            &v,
            Some(sig.as_bytes()),
            ORIGINAL.as_bytes(),
            None,
            ORIGINAL.len() as u64,
        );
        assert_eq!(codes(&d), ["valid_now"]);
        let other = r#"{"b":2}"#;
        let d = diagnose(
            &v,
            Some(sig.as_bytes()),
            other.as_bytes(),
            Some(99),
            other.len() as u64,
        );
        assert_eq!(codes(&d), ["length_mismatch", "no_secret_matches"]);
        let d = diagnose(&v, None, other.as_bytes(), None, 7);
        assert_eq!(codes(&d), ["missing_header"]);
    }

    #[test]
    fn rewrites_never_panic_on_odd_input() {
        for input in [
            &b"\\u"[..],
            b"\\ud83d",
            b"\\ud83d\\u0041",
            b"\"\\\\u00e9\"",
            b"\xff\xfe",
            b"\\uzzzz",
        ] {
            for (_, rewrite) in REWRITES {
                let _ = rewrite(input);
            }
        }
        assert_eq!(
            unescape_non_ascii(b"\"\\\\u00e9\"").unwrap(),
            b"\"\\\\u00e9\""
        );
    }
}
