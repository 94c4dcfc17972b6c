//! The journal's decoders: record framing, the delivery layout, and the JSON
//! payloads of the other record kinds with the rules that apply them.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::input::Input;
use crate::forward::record::ForwardUpdate;
use crate::journal::delivery::{Delivery, Verdict};
use crate::journal::record::{decode, encode, framed_len, Decoded, Record, FRAME_HEADER};
use crate::media::record::{MediaEntry, MediaState, MediaUpdate};
use crate::outbox::record::{OutboxEntry, SendRequest, SendUpdate};

/// Records one after another, as a segment reader walks them: each decoded record
/// re-encodes to exactly its bytes; `Incomplete` only when the header's length runs
/// past the end.
pub fn record(data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        match decode(rest) {
            Decoded::Record(r, len) => {
                assert!(len <= rest.len(), "a record longer than its input");
                let mut again = Vec::new();
                let n = encode(&mut again, r.seq, r.kind, r.unix_micros, &r.payload);
                assert_eq!(
                    (n, &again[..]),
                    (len, &rest[..len]),
                    "re-encoded record differs"
                );
                let header: [u8; FRAME_HEADER] = rest[..FRAME_HEADER].try_into().expect("8");
                assert_eq!(framed_len(&header), Some(len));
                at += len;
            }
            Decoded::Incomplete => {
                if let Ok(header) = <[u8; FRAME_HEADER]>::try_from(&rest[..rest.len().min(8)]) {
                    let need = framed_len(&header).expect("incomplete, yet a bad length");
                    assert!(
                        need > rest.len(),
                        "incomplete, yet all {need} bytes are there"
                    );
                }
                break;
            }
            Decoded::Corrupt => break,
        }
    }
}

/// Any record encodes and decodes back to itself; every cut is `Incomplete`, every
/// single bit flipped past the length is `Corrupt`.
pub fn record_roundtrip(data: &[u8]) {
    let mut inp = Input::new(data);
    let (seq, kind, unix_micros) = (inp.u64(), inp.u8(), inp.i64());
    let (cut, flip) = (usize::from(inp.u16()), inp.u16());
    let payload = inp.rest().to_vec();
    let mut buf = Vec::new();
    let n = encode(&mut buf, seq, kind, unix_micros, &payload);
    let want = Record {
        seq,
        kind,
        unix_micros,
        payload,
    };
    assert_eq!(decode(&buf), Decoded::Record(want, n));
    assert_eq!(
        decode(&buf[..cut % n]),
        Decoded::Incomplete,
        "cut at {}",
        cut % n
    );
    let i = 4 + usize::from(flip) % (n - 4);
    buf[i] ^= 1 << (flip >> 13);
    assert_eq!(decode(&buf), Decoded::Corrupt, "bit flipped in byte {i}");
}

/// A delivery record from any bytes: an error or a delivery that encodes back to a
/// record decoding to the same delivery (a version-2 record: to the same bytes).
pub fn delivery(data: &[u8]) {
    let Ok(d) = Delivery::decode(data) else {
        return;
    };
    let bytes = d.encode();
    let again = Delivery::decode(&bytes).expect("a re-encoded delivery decodes");
    assert_eq!(again, d);
    if data[0] == 2 {
        assert_eq!(
            &data[..bytes.len()],
            &bytes[..],
            "version 2 re-encodes as read"
        );
    }
    let _ = (
        d.body_truncated(),
        d.header("X-Hub-Signature-256"),
        d.verdict.as_str(),
    );
}

/// Any delivery survives encode and decode, except that the layout's "absent" values
/// (secret index 255, `u64::MAX` lengths and ids, an empty peer) read back as `None`.
pub fn delivery_roundtrip(data: &[u8]) {
    let mut inp = Input::new(data);
    let d = Delivery {
        peer: inp.option(Input::string),
        verdict: Verdict::from_u8(inp.u8() % 7).expect("0..7 are verdicts"),
        reason: inp.string(),
        secret_index: inp.option(Input::u8),
        declared_length: inp.option(Input::u64),
        received_length: inp.u64(),
        headers: (0..inp.u8() % 8)
            .map(|_| (inp.string(), inp.bytes().to_vec()))
            .collect(),
        reverified_from: inp.option(Input::u64),
        body: inp.rest().to_vec(),
    };
    let back = Delivery::decode(&d.encode()).expect("an encoded delivery decodes");
    let want = Delivery {
        peer: d.peer.clone().filter(|p| !p.is_empty()),
        secret_index: d.secret_index.filter(|&i| i != u8::MAX),
        declared_length: d.declared_length.filter(|&n| n != u64::MAX),
        reverified_from: d.reverified_from.filter(|&n| n != u64::MAX),
        ..d
    };
    assert_eq!(back, want);
}

/// The other record kinds' payloads: whatever decodes re-encodes to the same value,
/// and applying an update twice in a row is applying it once (the appliers' rule,
/// since a crash replays records).
pub fn payloads(data: &[u8]) {
    round_trip::<SendRequest>(data);
    round_trip::<ForwardUpdate>(data);
    let send: Vec<SendUpdate> = list(data);
    let media: Vec<MediaUpdate> = list(data);
    let mut entry = outbox_entry();
    for (i, u) in send.iter().enumerate() {
        entry.apply(u, i as i64);
        let once = entry.clone();
        entry.apply(u, i as i64);
        assert_eq!(entry, once, "send update applied twice: {u:?}");
    }
    let mut entry = media_entry();
    for (i, u) in media.iter().enumerate() {
        entry.apply(u, i as i64 * 1000, i64::MAX - 5);
        let once = entry.clone();
        entry.apply(u, i as i64 * 1000, i64::MAX - 5);
        assert_eq!(entry, once, "media update applied twice: {u:?}");
    }
}

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let bytes = serde_json::to_vec(&v).expect("serialisable");
    let again: T = serde_json::from_slice(&bytes).expect("a re-encoded payload decodes");
    assert_eq!(again, v);
    Some(v)
}

/// One payload, or a JSON array of them (for sequences of updates).
fn list<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) -> Vec<T> {
    if let Some(one) = round_trip::<T>(data) {
        return vec![one];
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(data) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|v| round_trip::<T>(&serde_json::to_vec(v).unwrap_or_default()))
        .collect()
}

fn outbox_entry() -> OutboxEntry {
    let request = SendRequest {
        idempotency_key: None,
        phone_number_id: "1".into(),
        recipient: "2".into(),
        message: json!({"type": "text", "text": {"body": "x"}}),
        force: false,
        graph_compatible: false,
    };
    OutboxEntry::new(1, 0, request)
}

fn media_entry() -> MediaEntry {
    MediaEntry {
        media_id: "m1".into(),
        message_id: "wamid.1".into(),
        media_type: "image".into(),
        mime_type: None,
        declared_size: None,
        declared_sha256: None,
        webhook_url: None,
        filename: None,
        created_at_micros: 0,
        id_expires_at_micros: i64::MAX,
        state: MediaState::Pending,
        attempts: 0,
        last_error: None,
        stored_at_micros: None,
        expires_at_micros: None,
        file: None,
        size: None,
        sha256: None,
        key_id: None,
        scan: None,
        finished_at_micros: None,
        deleted_at_micros: None,
    }
}

/// Seeds: records and deliveries as wagate writes them, and every payload kind.
pub fn record_seeds() -> Vec<Vec<u8>> {
    let mut two = Vec::new();
    encode(&mut two, 1, 1, 1_700_000_000_000_000, &delivery_seed());
    encode(
        &mut two,
        2,
        3,
        1_700_000_000_000_001,
        br#"{"update":"started","id":1,"attempt":1}"#,
    );
    let mut empty = Vec::new();
    encode(&mut empty, u64::MAX, 0, -1, b"");
    vec![two, empty]
}

pub fn roundtrip_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0; 40],
        (0..=255).collect(),
        b"seed: a record of some bytes".to_vec(),
    ]
}

fn delivery_seed() -> Vec<u8> {
    Delivery {
        peer: Some("203.0.113.9 (via 127.0.0.1:5000)".into()),
        verdict: Verdict::Accepted,
        reason: String::new(),
        secret_index: Some(0),
        declared_length: Some(24),
        received_length: 24,
        headers: vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("x-hub-signature-256".into(), b"sha256=00ff".to_vec()),
        ],
        body: br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec(),
        reverified_from: Some(7),
    }
    .encode()
}

pub fn delivery_seeds() -> Vec<Vec<u8>> {
    let v2 = delivery_seed();
    // Version 1: no `reverified_from`.
    let mut v1 = v2[..v2.len() - 8].to_vec();
    v1[0] = 1;
    vec![v2, v1]
}

pub fn payload_seeds() -> Vec<Vec<u8>> {
    let texts = [
        r#"{"idempotency_key":"k1","phone_number_id":"123","recipient":"491","message":{"messaging_product":"whatsapp","to":"491","type":"text","text":{"body":"hi"}},"force":false,"graph_compatible":true}"#,
        r#"[{"update":"started","id":1,"attempt":1},{"update":"ended","id":1,"attempt":1,"result":{"http_status":429,"error_code":130429,"error":"rate","class":"retry_all","body":{"error":{"code":130429}},"wamid":null,"retry_in_ms":1000},"state":"queued"},{"update":"started","id":1,"attempt":2},{"update":"ended","id":1,"attempt":2,"result":{"http_status":200,"wamid":"wamid.X","body":{"messages":[{"id":"wamid.X"}]}},"state":"sent"},{"update":"settled","id":1,"state":"failed","reason":"gave up"},{"update":"paused","reason":"190","token_fingerprint":"ab12"},{"update":"resumed","reason":"ok"}]"#,
        r#"[{"update":"attempt","media_id":"m1","attempt":1,"error":"HTTP 500","retry_in_ms":2000},{"update":"stored","media_id":"m1","attempt":2,"file":"f1.wagm","size":10,"sha256":"00","key_id":"k1","mime_type":"image/png","unscanned":"clamd down"},{"update":"scanned","media_id":"m1","file":"f1.wagm","scan":"clean"},{"update":"failed","media_id":"m1","attempt":3,"state":"quarantined","reason":"infected","sha256":"11"},{"update":"deleted","media_id":"m1","file":"f1.wagm","reason":"ttl"}]"#,
        r#"{"update":"delivered","target":"shop","order":5,"delivery":9,"attempts":2}"#,
        r#"{"update":"dead_lettered","target":"shop","order":5,"delivery":9,"attempts":20,"error":"HTTP 500"}"#,
        r#"{"update":"replay","target":"shop","entries":[{"delivery":9,"items":[0,1,4294967295]}],"dead_letter":3}"#,
        r#"{"update":"disabled","target":"shop","reason":"410"}"#,
    ];
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

pub const PAYLOAD_DICT: &[&[u8]] = &[
    b"\"update\"",
    b"\"started\"",
    b"\"ended\"",
    b"\"settled\"",
    b"\"stored\"",
    b"\"scanned\"",
    b"\"failed\"",
    b"\"deleted\"",
    b"\"attempt\"",
    b"\"replay\"",
    b"\"state\"",
    b"\"queued\"",
    b"\"sending\"",
    b"\"sent\"",
    b"\"unknown\"",
    b"\"pending\"",
    b"\"unscanned\"",
    b"\"expired\"",
    b"\"quarantined\"",
    b"\"retry_all\"",
    b"\"items\"",
    b"4294967296",
    b"-1",
];
