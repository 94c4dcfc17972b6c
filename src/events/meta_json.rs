//! JSON written the way Meta writes its webhook bodies, for bodies wagate rebuilds
//! (a `meta`-mode delivery narrowed to its new items): compact, keys in the order
//! they were read (serde_json's `preserve_order`), and strings escaped as Meta
//! escapes them (the bytes of `tests/data/payloads`, real captures among them):
//!
//! - every non-ASCII character as `\uXXXX` with lowercase hex, astral characters
//!   (emoji) as a UTF-16 surrogate pair: `café 😀` is `caf\u00e9 \ud83d\ude00`;
//! - `/` as `\/`;
//! - `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t` as such, other control characters as
//!   `\u00XX` (lowercase; serde_json's default escapes, which are Meta's too);
//! - DEL (0x7f) as `\u007f`: SDKs that re-escape the body before checking its
//!   signature (whatsapp-api-js escapes everything past `~`) then see the same bytes;
//! - everything else literal (`&`, `?`, `=` are literal in real captures; `<`, `>`,
//!   `'`, `@`, `%` are not known to be escaped by Meta, so they stay literal).
//!
//! So a rebuilt body passes a verifier over the raw bytes (it is what is signed)
//! and a verifier over a re-escaped body (nothing is left to escape), and a body
//! that Meta wrote compactly re-serializes to its exact bytes.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// serde_json's compact output (the `Formatter` defaults) with Meta's string escapes.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetaFormatter;

impl Formatter for MetaFormatter {
    /// `fragment` is a run of characters serde_json itself leaves unescaped (no
    /// `"`, `\` or control characters below 0x20; those go to `write_char_escape`).
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && c != '/' && c != '\x7f' {
                continue;
            }
            writer.write_all(&bytes[start..i])?;
            if c == '/' {
                writer.write_all(b"\\/")?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{u:04x}")?;
                }
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }
}

/// `value` as Meta would write it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, MetaFormatter);
    value.serialize(&mut ser).expect("serialisable");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn strings_are_escaped_as_meta_escapes_them() {
        // (case, string, JSON written)
        #[rustfmt::skip]
        let rows = [
            ("ascii",                 "hello",              r#""hello""#),
            ("latin-1",               "café",               r#""caf\u00e9""#),
            ("emoji: surrogate pair", "😀",                 r#""\ud83d\ude00""#),
            ("hebrew",                "ו",                  r#""\u05d5""#),
            ("BMP above 0x0fff",      "€",                  r#""\u20ac""#),
            ("slash",                 "https://a.b/c",      r#""https:\/\/a.b\/c""#),
            ("quote and backslash",   "a\"b\\c",            r#""a\"b\\c""#),
            ("short escapes",         "\n\r\t\u{8}\u{c}",   r#""\n\r\t\b\f""#),
            ("other control",         "\u{1}\u{1f}",        r#""\u0001\u001f""#),
            ("DEL",                   "\u{7f}",             r#""\u007f""#),
            ("left literal",          "&?=<>'@%",           r#""&?=<>'@%""#),
            ("mixed",                 "café 😀 /x",         r#""caf\u00e9 \ud83d\ude00 \/x""#),
            ("empty",                 "",                   r#""""#),
        ];
        for (case, s, want) in rows {
            let got = String::from_utf8(to_vec(s)).unwrap();
            assert_eq!(got, want, "{case}");
            let back: String = serde_json::from_str(&got).unwrap();
            assert_eq!(back, s, "{case}: reads back");
        }
    }

    #[test]
    fn keys_keep_their_order_and_output_is_compact() {
        let v: Value =
            serde_json::from_str(r#"{ "z": 1, "a": [1.5, -2, true, null], "m/": {"é": "x"} }"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"z":1,"a":[1.5,-2,true,null],"m\/":{"\u00e9":"x"}}"#
        );
        assert_eq!(to_vec(&json!(37.4611978)), b"37.4611978");
    }

    /// Every conformance body (Meta's bytes: compact, escaped) parsed and written
    /// again is byte for byte what Meta sent.
    #[test]
    fn conformance_bodies_reserialize_to_their_exact_bytes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/payloads");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            let again = to_vec(&v);
            assert!(
                again == body,
                "{}:\n  meta: {}\n  ours: {}",
                path.display(),
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&again)
            );
            n += 1;
        }
        assert!(n >= 50, "only {n} bodies in {}", dir.display());
    }
}
