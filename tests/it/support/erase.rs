//! Erasure requests for tests: `POST /api/contacts/{id}/erase` on a server by its
//! base URL (in-process or a child), and its record once `done`.

use serde_json::Value;

use super::{api_json, eventually, API_TOKEN};

/// Asks for the erasure of `contact` (202 expected); the erasure id.
pub async fn request(client: &reqwest::Client, base: &str, contact: &str) -> String {
    let resp = client
        .post(format!("{base}/api/contacts/{contact}/erase"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("POST erase");
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.expect("JSON");
    v["erasure_id"].as_str().expect("erasure_id").to_string()
}

/// Waits for erasure `id` to be `done`; its record.
pub async fn wait_done(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let path = format!("{base}/api/erasures/{id}");
    eventually("the erasure is done", async || {
        let e = api_json(client.get(&path)).await;
        if e["state"] == "done" {
            Ok(e)
        } else {
            Err(e)
        }
    })
    .await
}

/// Erases `contact` and waits until it is done; the erasure's record.
pub async fn erase(client: &reqwest::Client, base: &str, contact: &str) -> Value {
    let id = request(client, base, contact).await;
    wait_done(client, base, &id).await
}
