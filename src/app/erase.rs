//! `wagate erase-contact ID`: the erasure run from the command line, while wagate
//! is stopped (a running wagate holds the state's lock: use the API then). The app
//! is started on the data directory without serving HTTP, the request recorded
//! (requested by `cli`), and the command returns once the applier has carried it
//! out, with the erasure's record.

use std::time::Duration;

use super::{App, StartError};
use crate::config::Config;
use crate::privacy::{request_erasure, EraseState, Erasure, Requester};

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("no such contact")]
    NotFound,
    #[error("{0}")]
    Failed(String),
}

/// Erases contact `id` (contact id, wa_id or user_id) and waits until it is done.
pub async fn erase_offline(config: Config, id: String) -> Result<Erasure, EraseError> {
    let app = App::start(config).await?;
    let result = run(&app, id).await;
    app.shutdown().await;
    result
}

async fn run(app: &App, id: String) -> Result<Erasure, EraseError> {
    let h = app.state.erase_handles();
    let erasure = request_erasure(&h, id, Requester::Cli)
        .await
        .map_err(|e| match e {
            crate::httpkit::error::ApiError::NotFound => EraseError::NotFound,
            e => EraseError::Failed(e.to_string()),
        })?;
    loop {
        let (e, id) = (h.erasures.clone(), erasure.erasure_id.clone());
        let status = tokio::task::spawn_blocking(move || e.status(&id))
            .await
            .map_err(|e| EraseError::Failed(e.to_string()))?
            .map_err(|e| EraseError::Failed(e.to_string()))?;
        if let Some(s) = status.filter(|s| s.state == EraseState::Done) {
            return Ok(s);
        }
        let health = app.state.apply_health.snapshot();
        if health.consecutive_failures >= 5 {
            let why = health.last_error.unwrap_or_default();
            return Err(EraseError::Failed(format!(
                "processing keeps failing: {why}"
            )));
        }
        // A command-line wait on real time (no test reads it).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
