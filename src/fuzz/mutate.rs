//! Mutations of one input, from a seeded generator: byte-level (bit flips, interesting
//! integers, inserts, deletes, duplicates, splices, truncation, dictionary tokens) and
//! JSON-aware (values swapped for edge cases, deep nesting, huge numbers, long strings,
//! unicode escapes, duplicate keys).

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

/// What an input is, so the mutations that keep it interesting are chosen more often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Binary: only byte-level mutations.
    Bytes,
    /// Text (headers, values): byte-level plus dictionary tokens.
    Text,
    /// JSON: half the mutations parse it and change values or the text's tokens.
    Json,
}

/// Integers where parsers break: edges of every width, both byte orders.
const INTERESTING: [u64; 16] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Numbers a JSON reader of timestamps, ids and sizes can get wrong.
const NUMBERS: [&str; 24] = [
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1e999",
    "-1e999",
    "1.5e300",
    "1e-400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "253402300799",
    "253402300800",
    "4102444800",
    "1760659300",
    "1760659300000",
    "2147483648",
    "1e20",
    "-253402300800",
];

/// Escapes and characters that text handling gets wrong.
const ESCAPES: [&str; 10] = [
    "\\u0000",
    "\\ud800",
    "\\udfff",
    "\\ud83d\\ude00",
    "\\uffff",
    "\\u202e",
    "\\\"",
    "\\\\",
    "\\n",
    "%2F%3D",
];

/// Applies one random mutation to `data`, keeping it at most `max_len` bytes.
/// `pool` holds other inputs to splice from; `dict` the target's tokens.
pub fn mutate(
    rng: &mut StdRng,
    data: &mut Vec<u8>,
    shape: Shape,
    pool: &[Vec<u8>],
    dict: &[&[u8]],
    max_len: usize,
) {
    if shape == Shape::Json && rng.gen_bool(0.5) {
        if rng.gen_bool(0.5) {
            json_value(rng, data, dict);
        } else {
            json_text(rng, data, dict);
        }
    } else {
        bytes(rng, data, pool, dict);
    }
    data.truncate(max_len);
}

fn pos(rng: &mut StdRng, len: usize) -> usize {
    rng.gen_range(0..=len)
}

/// One byte-level mutation.
pub fn bytes(rng: &mut StdRng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[&[u8]]) {
    let len = data.len();
    match rng.gen_range(0..12) {
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            data[i] = rng.gen();
        }
        2 if len > 0 => {
            // An interesting integer of 1, 2, 4 or 8 bytes, either order.
            let width = [1, 2, 4, 8][rng.gen_range(0..4)];
            let v = INTERESTING[rng.gen_range(0..INTERESTING.len())];
            let b = if rng.gen() {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let i = rng.gen_range(0..len);
            let n = width.min(len - i);
            data[i..i + n].copy_from_slice(&b[..n]);
        }
        3 => {
            let n = rng.gen_range(1..=16);
            let at = pos(rng, len);
            let fill: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            data.splice(at..at, fill);
        }
        4 if len > 0 => {
            let at = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - at).min(64));
            data.drain(at..at + n);
        }
        5 if len > 0 => {
            // Duplicate a range in place (repetition, long runs).
            let at = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - at).min(256));
            let copy = data[at..at + n].to_vec();
            let times = if rng.gen_bool(0.1) { 64 } else { 1 };
            for _ in 0..times {
                data.splice(at..at, copy.iter().copied());
            }
        }
        6 if !pool.is_empty() => {
            // Splice: our head, another input's tail.
            let other = &pool[rng.gen_range(0..pool.len())];
            let cut = pos(rng, len);
            let from = pos(rng, other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        7 if len > 0 => data.truncate(rng.gen_range(0..len)),
        8 | 9 if !dict.is_empty() => {
            let token = dict[rng.gen_range(0..dict.len())];
            let at = pos(rng, len);
            if rng.gen_bool(0.5) || at == len {
                data.splice(at..at, token.iter().copied());
            } else {
                let end = (at + token.len()).min(len);
                data.splice(at..end, token.iter().copied());
            }
        }
        10 if len > 1 => {
            let (a, b) = (rng.gen_range(0..len), rng.gen_range(0..len));
            data.swap(a, b);
        }
        _ => {
            let at = pos(rng, len);
            let b = [b'0', b'9', b' ', b',', b'"', b'\\', b'\0', 0xff, 0xc3][rng.gen_range(0..9)];
            data.insert(at, b);
        }
    }
}

/// A JSON edge case to put in place of a value.
fn edge_value(rng: &mut StdRng, dict: &[&[u8]]) -> Value {
    let number = NUMBERS[rng.gen_range(0..NUMBERS.len())];
    match rng.gen_range(0..14) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        // Parsed, so `1e999` (not a finite f64) falls back to a string of it.
        2 | 3 => serde_json::from_str(number).unwrap_or_else(|_| json!(number)),
        4 | 5 => json!(number),
        6 => json!(""),
        7 => json!("x".repeat(if rng.gen_bool(0.2) { 100_000 } else { 300 })),
        8 => json!([]),
        9 => json!({}),
        10 => json!([{"id": "1", "type": "text", "timestamp": "1"}]),
        11 => nested(rng.gen_range(1..=140)),
        12 if !dict.is_empty() => {
            let t = dict[rng.gen_range(0..dict.len())];
            json!(String::from_utf8_lossy(t).trim_matches('"'))
        }
        _ => json!("é\u{0}\u{202e}😀"),
    }
}

/// `[[[...]]]` `depth` deep (serde_json refuses more than 128).
fn nested(depth: usize) -> Value {
    let mut v = json!([]);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

/// Parses `data` as JSON and changes one value somewhere inside; text that is not
/// JSON gets a text-level mutation instead.
fn json_value(rng: &mut StdRng, data: &mut Vec<u8>, dict: &[&[u8]]) {
    let Ok(mut v) = serde_json::from_slice::<Value>(data) else {
        return json_text(rng, data, dict);
    };
    change(rng, &mut v, dict, 0);
    *data = serde_json::to_vec(&v).unwrap_or_default();
}

fn change(rng: &mut StdRng, v: &mut Value, dict: &[&[u8]], depth: usize) {
    let descend = depth < 16 && rng.gen_bool(0.75);
    match v {
        Value::Object(m) if !m.is_empty() && descend => {
            let k = m
                .keys()
                .nth(rng.gen_range(0..m.len()))
                .cloned()
                .unwrap_or_default();
            match rng.gen_range(0..8) {
                0 => drop(m.remove(&k)),
                1 => {
                    let key = dict_key(rng, dict).unwrap_or_else(|| format!("{k}_"));
                    m.insert(key, edge_value(rng, dict));
                }
                2 => {
                    if let Some(x) = m.get_mut(&k) {
                        *x = edge_value(rng, dict);
                    }
                }
                _ => {
                    if let Some(x) = m.get_mut(&k) {
                        change(rng, x, dict, depth + 1);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() && descend => {
            let i = rng.gen_range(0..a.len());
            match rng.gen_range(0..8) {
                0 => drop(a.remove(i)),
                1 => {
                    // Many copies of one element (batches, huge arrays).
                    let n = if rng.gen_bool(0.1) { 2_000 } else { 2 };
                    let x = a[i].clone();
                    a.extend(std::iter::repeat_n(x, n));
                }
                2 => a[i] = edge_value(rng, dict),
                _ => change(rng, &mut a[i], dict, depth + 1),
            }
        }
        Value::String(s) if rng.gen_bool(0.3) => s.push_str(&s.clone()),
        _ => *v = edge_value(rng, dict),
    }
}

fn dict_key(rng: &mut StdRng, dict: &[&[u8]]) -> Option<String> {
    let t = dict.get(rng.gen_range(0..dict.len().max(1)))?;
    Some(String::from_utf8_lossy(t).trim_matches('"').to_string())
}

/// A text-level JSON mutation, for what a parsed value cannot hold: duplicate
/// keys, lone surrogates, numbers beyond f64, nesting past the parser's limit.
fn json_text(rng: &mut StdRng, data: &mut Vec<u8>, dict: &[&[u8]]) {
    let len = data.len();
    let find = |b: u8, from: usize| {
        data[from.min(len)..]
            .iter()
            .position(|&c| c == b)
            .map(|i| i + from)
    };
    let start = pos(rng, len);
    match rng.gen_range(0..5) {
        0 => {
            // Duplicate key: `"k":"v",` copied from the text right after a `{`.
            if let (Some(open), Some(key)) = (find(b'{', start), find(b'"', start)) {
                let end = find(b',', key).unwrap_or(len).min(key + 200);
                let pair: Vec<u8> = data[key..end].to_vec();
                data.splice(open + 1..open + 1, pair.into_iter().chain([b',']));
            }
        }
        1 => {
            // A number where a number is.
            let num = NUMBERS[rng.gen_range(0..NUMBERS.len())].as_bytes();
            if let Some(i) = (start..len).find(|&i| data[i].is_ascii_digit()) {
                let mut j = i;
                while j < len && (data[j].is_ascii_digit() || b".eE+-".contains(&data[j])) {
                    j += 1;
                }
                data.splice(i..j, num.iter().copied());
            }
        }
        2 => {
            // An escape inside a string.
            if let Some(q) = find(b'"', start) {
                let e = ESCAPES[rng.gen_range(0..ESCAPES.len())].as_bytes();
                data.splice(q + 1..q + 1, e.iter().copied());
            }
        }
        3 => {
            let depth = [10, 127, 128, 129, 5_000][rng.gen_range(0..5)];
            let (open, close) = if rng.gen() {
                (b'[', b']')
            } else {
                (b'{', b'}')
            };
            if open == b'[' {
                let body = std::mem::take(data);
                data.extend(std::iter::repeat_n(open, depth));
                data.extend(body);
                data.extend(std::iter::repeat_n(close, depth));
            } else {
                data.splice(start..start, b"{\"a\":".repeat(depth));
            }
        }
        _ => bytes(rng, data, &[], dict),
    }
}
