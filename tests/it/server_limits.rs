//! Connection limits (issue: no timeouts, no connection cap): a connection that
//! sends nothing, a head sent a byte at a time, and a stalled body are all closed;
//! at most `max_connections` are served at once; a body cut short or timed out is
//! kept as rejected (`truncated`) with what arrived.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{sign, TestApp};

fn short_limits(c: &mut wagate::Config) {
    c.server.header_timeout = Duration::from_millis(300);
    c.server.body_timeout = Duration::from_millis(400);
    c.server.idle_timeout = Duration::from_millis(500);
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection; what it sent first.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = TestApp::spawn_with(short_limits).await;
    let mut s = connect(&app).await;
    assert_eq!(until_closed(&mut s).await, "");
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_cut_off() {
    let app = TestApp::spawn_with(short_limits).await;
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // A slowloris: one byte every 100 ms keeps the idle timer happy, not the head's.
    let drip = async {
        for b in
            b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server read a head that took 8 s (header timeout 300 ms)");
    };
    drip.await;
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_kept_as_truncated() {
    let app = TestApp::spawn_with(short_limits).await;
    let mut s = connect(&app).await;
    let head = "POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nx-hub-signature-256: sha256=00\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(b"{\"object\":\"whatsapp_business")
        .await
        .unwrap();
    let answer = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries?verdict=rejected").await;
    let d = &list["deliveries"][0];
    assert_eq!(d["verdict"], "truncated", "{list}");
    assert_eq!(d["size"], 28);
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("WAGATE_BODY_TIMEOUT"), "{reason}");
    assert!(reason.contains("28 bytes of 1000 declared"), "{reason}");
}

#[tokio::test]
async fn a_body_cut_short_is_kept_as_truncated() {
    let app = TestApp::spawn().await;
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let mut s = connect(&app).await;
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\nx-hub-signature-256: {}\r\n\r\n",
        sign(body)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s.shutdown().await.unwrap();
    let answer = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries?verdict=rejected").await;
    let d = &list["deliveries"][0];
    assert_eq!(d["verdict"], "truncated", "{list}");
    assert_eq!(d["size"], body.len());
    assert!(d["reason"].as_str().unwrap().contains("cut short"), "{d}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = 2;
        c.server.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut held = vec![connect(&app).await, connect(&app).await];
    // Both slots are taken: a third connection is accepted by the kernel but not served.
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the cap");
    held.pop();
    let answer = until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
