//! The applier's in-memory dedup filter answers as the store would: built from the
//! store at start, it knows every item stored before a restart.

use serde_json::Value;
use wagate::store::FilterState;

use crate::support::{corpus, TestApp, DEADLINE, TEN_YEARS};

/// Waits on the applier's progress channel (no polling) for the filter to be built.
async fn filter_ready(app: &TestApp) -> usize {
    let mut applied = app.state.applied.clone();
    let wait = async {
        loop {
            let a = *applied.borrow_and_update();
            if a.dedup_filter != FilterState::Building {
                return a;
            }
            applied.changed().await.expect("applier alive");
        }
    };
    let a = tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("dedup filter built in time");
    assert_eq!(a.dedup_filter, FilterState::Ready);
    a.dedup_filter_keys
}

fn count(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {stats}"))
}

#[tokio::test]
async fn after_a_restart_every_stored_item_is_still_a_duplicate() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    let corpus = corpus();
    for (_, body, _) in &corpus {
        app.deliver(body.clone()).await;
    }
    app.wait_applied().await;
    let first = app.get_json("/api/stats").await;
    assert_eq!(first["dedup_filter"], "ready");
    let new = count(&first, "items_new");
    assert!(new > 50, "the corpus gave {new} new items");
    assert_eq!(count(&first, "dedup_filter_keys"), new);
    let model = app.state.store.model_snapshot().unwrap();

    let app = TestApp::spawn_in(app.stop().await, |c| c.dedup_ttl = TEN_YEARS).await;
    // Only a built filter skips reads: this is what puts it to the test.
    let keys = filter_ready(&app).await;
    assert_eq!(keys as u64, new, "the scan found every stored item");
    for (_, body, _) in &corpus {
        app.deliver(body.clone()).await;
    }
    app.wait_applied().await;
    let second = app.get_json("/api/stats").await;
    assert_eq!(
        count(&second, "items_new"),
        new,
        "nothing new the second time"
    );
    assert_eq!(
        count(&second, "items_duplicate"),
        count(&first, "items_duplicate") + new + count(&first, "items_duplicate"),
    );
    assert_eq!(count(&second, "items_stale"), 0);
    for name in ["messages", "statuses", "events"] {
        assert_eq!(count(&second, name), count(&first, name), "{name}");
    }
    assert_eq!(app.state.store.model_snapshot().unwrap(), model);
    let metrics = app.metrics().await;
    assert!(metrics.contains("wagate_dedup_filter_ready 1"), "{metrics}");
    app.stop().await;
}
