//! The forwarding targets file (`WAGATE_FORWARD_CONFIG`).

use crate::config::{parse_targets, ForwardTarget};

/// Any text: an error, or targets that are each usable (id, http(s) URL with a host,
/// a non-empty signing key, digits for phone filters) with unique ids, whose shown
/// URL has no query and no credentials.
pub fn targets(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let existing = [ForwardTarget::new(
        "default",
        "http://127.0.0.1:9/",
        "s",
        crate::config::ForwardMode::Meta,
    )];
    let Ok(targets) = parse_targets(text, &existing) else {
        return;
    };
    let mut ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    ids.push("default");
    ids.sort_unstable();
    assert!(
        ids.windows(2).all(|w| w[0] != w[1]),
        "a target id used twice"
    );
    for t in &targets {
        assert!((1..=64).contains(&t.id.len()));
        assert!(
            !t.signing_key().is_empty(),
            "target '{}' signs with an empty key",
            t.id
        );
        let url = reqwest::Url::parse(&t.url).expect("a target's url parses");
        assert!(matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
        let shown = t.display_url();
        let again = reqwest::Url::parse(&shown).expect("the shown url parses");
        assert!(
            again.username().is_empty() && again.password().is_none(),
            "{shown}"
        );
        assert!(
            again.query().is_none() && again.fragment().is_none(),
            "{shown}"
        );
        assert!(t.phone_number_ids.iter().all(|p| !p.is_empty()));
        let _ = (
            t.claims(Some("123")),
            t.claims(None),
            t.wants_field("messages"),
        );
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    [
        r#"{"targets":[{"id":"shop","url":"https://a.example/x?k=1","secret":"whsec_c2VjcmV0","mode":"events","phone_number_ids":["123"],"fields":["messages"]}]}"#,
        r#"{"targets":[{"id":"a","url":"http://user:pw@127.0.0.1:8080/hook#f","secret":"s3cret"},{"id":"b-2_","url":"https://[::1]/","secret":" x ","mode":"meta","fields":[]}]}"#,
        r#"{"targets":[]}"#,
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect()
}

pub const DICT: &[&[u8]] = &[
    b"\"targets\"",
    b"\"id\"",
    b"\"url\"",
    b"\"secret\"",
    b"\"mode\"",
    b"\"events\"",
    b"\"meta\"",
    b"\"phone_number_ids\"",
    b"\"fields\"",
    b"\"whsec_\"",
    b"whsec_",
    b"https://",
    b"http://",
    b"@",
    b"%40",
    b":65535",
    b"[::1]",
    b"xn--",
    b"\"default\"",
];
