//! Walking a body without building its tree: objects as their fields' raw JSON,
//! arrays one element at a time ([`each`]), and a value parsed into a [`Value`] only
//! when it is wanted. Everything borrows from the body: a delivery of a million
//! elements costs one element at a time, not a million [`Value`]s.

use std::fmt;

use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::Digest;

use super::parse::ParseError;

/// An object's fields, by name, as raw JSON, in the body's order (a rebuilt body
/// keeps Meta's key order). A repeated name keeps its last value (as [`Value`] does).
pub(crate) type Fields<'a> = indexmap::IndexMap<String, &'a RawValue>;

pub(crate) fn not_json(e: serde_json::Error) -> ParseError {
    ParseError::NotJson(e.to_string())
}

/// The whole body as raw JSON (syntax and UTF-8 checked, nothing built).
pub(crate) fn root(body: &[u8]) -> Result<&RawValue, ParseError> {
    serde_json::from_slice(body).map_err(not_json)
}

pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

pub(crate) fn is_array(raw: &RawValue) -> bool {
    raw.get().starts_with('[')
}

/// The fields of an object; `None` when `raw` is not an object.
pub(crate) fn object(raw: &RawValue) -> Result<Option<Fields<'_>>, ParseError> {
    if !is_object(raw) {
        return Ok(None);
    }
    serde_json::from_str(raw.get()).map(Some).map_err(not_json)
}

/// `raw` parsed into a [`Value`] (for one item, never for the whole body).
pub(crate) fn value(raw: &RawValue) -> Result<Value, ParseError> {
    serde_json::from_str(raw.get()).map_err(not_json)
}

/// An item's JSON larger than this is not built (its tree can take a hundred times
/// its size): it stands as an [`omitted`] marker, and stays whole in the raw delivery.
pub(crate) const ITEM_MAX: usize = 1 << 20;

/// The key of the marker that stands for an item's JSON too large to build.
pub(crate) const OMITTED: &str = "wagate_omitted";

/// [`value`], or past [`ITEM_MAX`] the marker `{"wagate_omitted": {"bytes", "sha256"}}`
/// (the digest keeps two different large values apart for dedup).
pub(crate) fn item_value(raw: &RawValue) -> Result<Value, ParseError> {
    let text = raw.get();
    if text.len() <= ITEM_MAX {
        return value(raw);
    }
    let digest = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    Ok(serde_json::json!({OMITTED: {"bytes": text.len(), "sha256": digest}}))
}

/// JSON `null`, as raw JSON.
pub(crate) fn null() -> &'static RawValue {
    serde_json::from_str("null").expect("JSON")
}

/// The field `key` as a [`Value`], if present.
pub(crate) fn field(fields: &Fields, key: &str) -> Result<Option<Value>, ParseError> {
    fields.get(key).map(|r| value(r)).transpose()
}

/// Calls `f` with each element of the array `raw` (with its index), in order, one at a
/// time. Returns `false` (calling nothing) when `raw` is not an array. The first
/// error of `f` stops the walk and is returned.
pub(crate) fn each<'a>(
    raw: &'a RawValue,
    mut f: impl FnMut(usize, &'a RawValue) -> Result<(), ParseError>,
) -> Result<bool, ParseError> {
    if !is_array(raw) {
        return Ok(false);
    }
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let walked = de.deserialize_seq(Each {
        f: &mut f,
        failed: &mut failed,
    });
    if let Some(e) = failed {
        return Err(e);
    }
    walked.map_err(not_json)?;
    Ok(true)
}

struct Each<'f, F> {
    f: &'f mut F,
    failed: &'f mut Option<ParseError>,
}

impl<'de, F> Visitor<'de> for Each<'_, F>
where
    F: FnMut(usize, &'de RawValue) -> Result<(), ParseError>,
{
    type Value = ();

    fn expecting(&self, out: &mut fmt::Formatter) -> fmt::Result {
        out.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(el) = seq.next_element::<&'de RawValue>()? {
            if let Err(e) = (self.f)(i, el) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn arrays_one_element_at_a_time() {
        let mut seen = Vec::new();
        let r = raw(r#" [1, {"a": [2]}, "x"] "#);
        assert!(each(r, |i, el| {
            seen.push((i, el.get().to_string()));
            Ok(())
        })
        .unwrap());
        assert_eq!(
            seen,
            [
                (0, "1".into()),
                (1, r#"{"a": [2]}"#.into()),
                (2, "\"x\"".into())
            ]
        );
        assert!(!each(raw("{}"), |_, _| Ok(())).unwrap());
        let stop = each(raw("[1,2,3]"), |i, _| match i {
            1 => Err(ParseError::NotMetaShape("two".into())),
            _ => Ok(()),
        });
        assert_eq!(stop, Err(ParseError::NotMetaShape("two".into())));
    }

    #[test]
    fn an_item_too_large_to_build_stands_as_a_marker() {
        let small = raw(r#"{"a": [1, 2]}"#);
        assert_eq!(item_value(small).unwrap(), serde_json::json!({"a": [1, 2]}));
        let text = format!("[{}0]", "0,".repeat(ITEM_MAX / 2));
        let large: &RawValue = serde_json::from_str(&text).unwrap();
        let v = item_value(large).unwrap();
        assert_eq!(v[OMITTED]["bytes"], text.len());
        assert_eq!(v[OMITTED]["sha256"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn objects_keep_the_last_of_a_repeated_name() {
        let f = object(raw(r#"{"a": 1, "b": [], "a": 2}"#))
            .unwrap()
            .unwrap();
        assert_eq!(field(&f, "a").unwrap(), Some(Value::from(2)));
        assert_eq!(f["b"].get(), "[]");
        assert!(object(raw("[1]")).unwrap().is_none());
        assert!(root(b"{\"a\":").is_err());
        assert!(root(b"\xff").is_err());
    }
}
