//! Tasks that must not vanish: a panic is caught and turned into an error that
//! says what happened, and a long-running task that dies is noticed and run again.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

/// What a panic said (its message when it is a string).
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with no message".into()
    }
}

/// Runs `fut`; a panic inside it becomes `Err` with its message.
pub async fn catch<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(p.as_ref()))
}

/// Runs the task `make` builds until one run ends without panicking. After each
/// panic `crashed` hears how many runs have failed and why; it waits as long as it
/// wants before the next run, and answers `false` to give up.
pub async fn supervise<F, C>(mut make: impl FnMut() -> F, mut crashed: impl FnMut(u32, String) -> C)
where
    F: Future<Output = ()> + Send + 'static,
    C: Future<Output = bool>,
{
    let mut failures = 0u32;
    loop {
        match tokio::spawn(make()).await {
            Ok(()) => return,
            Err(e) if e.is_cancelled() => return,
            Err(e) => {
                failures = failures.saturating_add(1);
                let why = panic_message(e.into_panic().as_ref());
                if !crashed(failures, why).await {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(catch(async { 7 }).await, Ok(7));
        let got = catch(async { panic!("formatting {} failed", 253_402_300_800i64) }).await;
        assert_eq!(got, Err("formatting 253402300800 failed".to_string()));
        let got: Result<(), _> = catch(async { std::panic::panic_any(42u8) }).await;
        assert_eq!(got, Err("a panic with no message".to_string()));
    }

    #[tokio::test]
    async fn a_task_that_dies_is_run_again_until_it_ends() {
        let runs = Arc::new(AtomicU32::new(0));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (r, h) = (runs.clone(), heard.clone());
        supervise(
            move || {
                let r = r.clone();
                async move {
                    if r.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("worker died");
                    }
                }
            },
            move |n, why| {
                h.lock().unwrap().push((n, why));
                async { true }
            },
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let heard = heard.lock().unwrap().clone();
        assert_eq!(
            heard,
            [(1, "worker died".into()), (2, "worker died".into())]
        );
    }

    #[tokio::test]
    async fn supervision_stops_when_told() {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        supervise(
            move || {
                r.fetch_add(1, Ordering::SeqCst);
                async { panic!("always") }
            },
            |_, _| async { false },
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
