//! The receiver: signatures, the handshake, limits, and the delivery API.

use crate::support::{
    corpus, data_path, sign, test_config, TestApp, API_TOKEN, SECRET, TEN_YEARS, VERIFY_TOKEN,
};

#[tokio::test]
async fn every_corpus_payload_is_accepted_and_kept_byte_exact() {
    let app = TestApp::spawn().await;
    let cases = corpus();
    assert_eq!(cases.len(), 54);
    for (file, body, sig) in &cases {
        let resp = app.post_webhook(body.clone(), Some(sig)).await;
        assert_eq!(resp.status(), 200, "{file}");
    }
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["deliveries_accepted"], 54);
    assert_eq!(stats["deliveries_rejected"], 0);
    let list = app
        .get_json("/api/deliveries?verdict=accepted&limit=500")
        .await;
    let ids: Vec<u64> = list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 54);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    // Delivery ids follow arrival order: the oldest is the first file sent.
    for (i, (file, body, _)) in cases.iter().enumerate() {
        let id = ids[ids.len() - 1 - i];
        let raw = app
            .get(&format!("/api/deliveries/{id}/raw"))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(&raw[..], &body[..], "{file}");
    }
    app.stop().await;
}

#[tokio::test]
async fn signature_vectors_get_their_expected_verdicts() {
    let app = TestApp::spawn().await;
    let vectors: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_path("signature/vectors.json")).unwrap())
            .unwrap();
    assert_eq!(vectors["secret"], SECRET);
    for v in vectors["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let body = std::fs::read(data_path("signature").join(v["body"].as_str().unwrap())).unwrap();
        let expect_valid = v["expect"].as_str().unwrap().starts_with("valid");
        let resp = app
            .post_webhook(body, Some(v["header"].as_str().unwrap()))
            .await;
        let want = if expect_valid { 200 } else { 403 };
        assert_eq!(resp.status(), want, "vector {name}");
    }
    app.stop().await;
}

#[tokio::test]
async fn rejections_are_kept_with_their_reason() {
    let app = TestApp::spawn().await;
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec();
    assert_eq!(app.post_webhook(body.clone(), None).await.status(), 403);
    assert_eq!(
        app.post_webhook(body.clone(), Some("md5=abc"))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post_webhook(body.clone(), Some("sha256=xyz"))
            .await
            .status(),
        403
    );
    let wrong = wagate::events::signature::sign(b"another secret", &body);
    assert_eq!(
        app.post_webhook(body.clone(), Some(&wrong)).await.status(),
        403
    );
    app.wait_applied().await;

    let list = app.get_json("/api/deliveries?verdict=rejected").await;
    let verdicts: Vec<&str> = list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "mismatch",
            "malformed_header",
            "malformed_header",
            "missing_header"
        ]
    );
    let newest = &list["deliveries"][0];
    assert!(newest["reason"].as_str().unwrap().contains("none of the 1"));
    let detail = app
        .get_json(&format!("/api/deliveries/{}", newest["id"]))
        .await;
    assert_eq!(detail["body"], String::from_utf8(body).unwrap());
    assert_eq!(detail["secret_index"], serde_json::Value::Null);
    let sig_header = detail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-hub-signature-256")
        .expect("headers kept");
    assert_eq!(sig_header["value"], wrong);
    assert_eq!(
        app.get_json("/api/deliveries?verdict=accepted").await["deliveries"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["deliveries_rejected"], 4);
    app.stop().await;
}

#[tokio::test]
async fn secret_rotation_records_which_secret_matched() {
    let app = TestApp::spawn_with(|c| {
        c.app_secrets = vec![
            wagate::config::Secret::new("new-secret"),
            wagate::config::Secret::new(SECRET),
        ];
    })
    .await;
    let (_, body, sig) = corpus().remove(0);
    assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 200);
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries").await;
    let id = list["deliveries"][0]["id"].as_u64().unwrap();
    let detail = app.get_json(&format!("/api/deliveries/{id}")).await;
    assert_eq!(detail["verdict"], "accepted");
    assert_eq!(detail["secret_index"], 1);
    app.stop().await;
}

#[tokio::test]
async fn without_a_secret_every_post_is_kept_as_rejected() {
    let app = TestApp::spawn_with(|c| c.app_secrets.clear()).await;
    let (_, body, sig) = corpus().remove(0);
    assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 403);
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries?verdict=rejected").await;
    assert_eq!(list["deliveries"][0]["verdict"], "no_secret_configured");
    assert!(list["deliveries"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("no app secret configured"));
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_its_start_is_kept() {
    let app = TestApp::spawn_with(|c| c.max_body = 100 * 1024).await;
    let body = vec![b'x'; 300 * 1024];
    let sig = sign(&body);
    assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 413);
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries?verdict=rejected").await;
    let d = &list["deliveries"][0];
    assert_eq!(d["verdict"], "too_large");
    assert_eq!(d["size"], 300 * 1024);
    let raw = app
        .get(&format!("/api/deliveries/{}/raw", d["id"]))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(raw.len(), 64 * 1024);
    // Just under the limit is fine.
    let ok = vec![b' '; 100 * 1024];
    let sig = sign(&ok);
    assert_eq!(app.post_webhook(ok, Some(&sig)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn handshake_right_and_wrong() {
    let app = TestApp::spawn().await;
    let url = |mode: &str, token: &str| {
        format!(
            "{}/webhook?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444%20%C3%A9",
            app.base
        )
    };
    let ok = app
        .client
        .get(url("subscribe", VERIFY_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(ok.text().await.unwrap(), "1158201444 é");
    for (mode, token) in [
        ("subscribe", "wrong"),
        ("unsubscribe", VERIFY_TOKEN),
        ("subscribe", ""),
    ] {
        let resp = app.client.get(url(mode, token)).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{mode} {token}");
    }
    let bare = app
        .client
        .get(format!("{}/webhook", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    let handshakes = app.state.store.handshakes(10).unwrap();
    assert_eq!(handshakes.len(), 5);
    assert_eq!(handshakes.iter().filter(|h| h.accepted).count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_api_needs_the_bearer_token_and_paginates() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(format!("{}/api/stats", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .client
        .get(format!("{}/api/deliveries", app.base))
        .bearer_auth(format!("{API_TOKEN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    for i in 0..7 {
        app.deliver(format!("{{\"n\":{i}}}")).await;
    }
    app.wait_applied().await;
    let mut seen = Vec::new();
    let mut path = "/api/deliveries?limit=3".to_string();
    loop {
        let page = app.get_json(&path).await;
        for d in page["deliveries"].as_array().unwrap() {
            seen.push(d["id"].as_u64().unwrap());
        }
        match page["next_before"].as_u64() {
            Some(b) => path = format!("/api/deliveries?limit=3&before={b}"),
            None => break,
        }
    }
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(app.get("/api/deliveries?verdict=maybe").await.status(), 400);
    assert_eq!(app.get("/api/deliveries/999").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn deliveries_survive_a_graceful_restart() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        app.deliver(format!("{{\"restart\":{i}}}")).await;
    }
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |_| {}).await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["deliveries_accepted"], 20);
    app.deliver("{\"after\":1}").await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["journal_head"], 21);
    assert_eq!(stats["deliveries_accepted"], 21);
    app.stop().await;
}

#[tokio::test]
async fn state_is_rebuilt_from_the_journal_when_sled_is_moved_aside() {
    let app = TestApp::spawn().await;
    for (_, body, sig) in corpus().into_iter().take(10) {
        assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 200);
    }
    assert_eq!(
        app.post_webhook("junk", Some("sha256=00")).await.status(),
        403
    );
    app.wait_applied().await;
    let before = app.get_json("/api/deliveries?limit=100").await;
    let dir = app.stop().await;
    std::fs::rename(dir.path().join("state"), dir.path().join("state.broken")).unwrap();
    let app = TestApp::spawn_in(dir, |_| {}).await;
    app.wait_applied().await;
    assert_eq!(app.get_json("/api/deliveries?limit=100").await, before);
    let stats = app.get_json("/api/stats").await;
    assert_eq!(
        (
            stats["deliveries_accepted"].as_u64(),
            stats["deliveries_rejected"].as_u64()
        ),
        (Some(10), Some(1))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_junk_stays_within_the_quarantine_budget() {
    const BUDGET: u64 = 256 * 1024;
    let app = TestApp::spawn_with(|c| c.quarantine_max = BUDGET).await;
    for i in 0..40 {
        let junk = format!("{i:04}").repeat(5 * 1024); // 20 KiB
        assert_eq!(
            app.post_webhook(junk, Some("sha256=00")).await.status(),
            403
        );
    }
    app.wait_applied().await;
    let on_disk: u64 = std::fs::read_dir(app.dir.path().join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        on_disk <= BUDGET + 64 * 1024,
        "quarantine holds {on_disk} bytes"
    );
    let list = app
        .get_json("/api/deliveries?verdict=rejected&limit=500")
        .await;
    let kept = list["deliveries"].as_array().unwrap();
    assert!(kept.len() < 40 && kept.len() >= 8, "{} kept", kept.len());
    // The newest are kept and still readable; the oldest are gone.
    let newest = kept[0]["id"].as_u64().unwrap();
    let raw = app
        .get(&format!("/api/deliveries/{newest}/raw"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(raw.starts_with(b"0039"));
    assert_eq!(app.get("/api/deliveries/1").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_torn_journal_tail_is_cut_off_at_start() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.deliver(format!("{{\"torn\":{i}}}")).await;
    }
    let dir = app.stop().await;
    let segment = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good_len = std::fs::metadata(&segment).unwrap().len();
    // A crash in the middle of a write: a frame header promising more than is there.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    drop(f);
    let app = TestApp::spawn_in(dir, |_| {}).await;
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);
    app.deliver("{\"after\":true}").await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["deliveries_accepted"], 6);
    let raw = app
        .get("/api/deliveries/6/raw")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&raw[..], b"{\"after\":true}");
    app.stop().await;
}

#[tokio::test]
async fn reverify_accepts_rejected_deliveries_once_the_secret_is_fixed() {
    let app = TestApp::spawn_with(|c| {
        c.app_secrets = vec![wagate::config::Secret::new("a wrong secret")];
        c.dedup_ttl = TEN_YEARS;
    })
    .await;
    let (_, body, sig) = corpus().remove(0);
    assert_eq!(
        app.post_webhook(body.clone(), Some(&sig)).await.status(),
        403
    );
    assert_eq!(
        app.post_webhook("junk", Some("sha256=00")).await.status(),
        403
    );
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, |c| c.dedup_ttl = TEN_YEARS).await;
    app.wait_applied().await;
    let first = app.post_json("/api/deliveries/reverify").await;
    assert_eq!(first["accepted"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["still_rejected"], 1);
    let copy = first["accepted"][0]["id"].as_u64().unwrap();
    app.wait_applied().await;
    let raw = app
        .get(&format!("/api/deliveries/{copy}/raw"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&raw[..], &body[..]);
    let stats = app.get_json("/api/stats").await;
    assert_eq!(
        (
            stats["deliveries_accepted"].as_u64(),
            stats["messages"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let original = app.get_json("/api/deliveries/1").await;
    assert_eq!(original["reverified_as"], copy);
    let second = app.post_json("/api/deliveries/reverify").await;
    assert_eq!(second["accepted"].as_array().unwrap().len(), 0, "{second}");
    app.stop().await;
}

#[tokio::test]
async fn a_new_data_directory_is_private() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let app = wagate::App::start(test_config(&data)).await.unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&data).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    app.shutdown().await;
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    for trusted in [false, true] {
        let app = TestApp::spawn_with(|c| {
            if trusted {
                c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            }
        })
        .await;
        let body = b"{}".to_vec();
        let resp = app
            .client
            .post(format!("{}/webhook", app.base))
            .header("x-hub-signature-256", sign(&body))
            .header("x-forwarded-for", "198.51.100.7")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        app.wait_applied().await;
        let d = app.get_json("/api/deliveries/1").await;
        let peer = d["peer"].as_str().unwrap();
        assert_eq!(
            peer.starts_with("198.51.100.7 (via 127.0.0.1:"),
            trusted,
            "{peer}"
        );
        app.stop().await;
    }
}
