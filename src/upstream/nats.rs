//! The event bus: publishing to NATS JetStream with the official `async-nats`
//! client. One client, connected on the first publish (a server that is down at
//! start is tried again at the next attempt) and then kept: it reconnects by
//! itself. Before the first publish, and again after any failed one, the stream is
//! looked up, created if missing, and judged ([`judge_stream`]): a stream that
//! exists with other settings is never altered, the publish is refused naming
//! what differs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream, Context};

use crate::config::NatsConfig;

/// What JetStream answered to one publish: the stream has stored the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub sequence: u64,
    /// The stream already held a message of this `Nats-Msg-Id` (within its
    /// duplicate window): this one was dropped, the first one counts.
    pub duplicate: bool,
}

/// The settings of an existing stream that wagate relies on.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFacts {
    pub subjects: Vec<String>,
    pub duplicate_window: Duration,
}

/// Whether an existing stream can be used as it is: it must take `<prefix>.>` (or
/// everything, `>`) and drop duplicates over the configured window; anything else
/// (retention, limits, storage, replicas) is the operator's choice and left alone.
/// `Err` names what differs and how to resolve it.
pub fn judge_stream(facts: &StreamFacts, want: &NatsConfig) -> Result<(), String> {
    let subjects = want.stream_subjects();
    let mut wrong = Vec::new();
    if !facts.subjects.iter().any(|s| *s == subjects || s == ">") {
        wrong.push(format!(
            "its subjects are {:?}, not including '{subjects}'",
            facts.subjects
        ));
    }
    if facts.duplicate_window != want.duplicate_window {
        wrong.push(format!(
            "its duplicate window is {}, WAGATE_NATS_DUPLICATE_WINDOW is {}",
            humantime::format_duration(facts.duplicate_window),
            humantime::format_duration(want.duplicate_window)
        ));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "stream {} exists with other settings ({}); wagate does not change it: \
         edit the stream, or set WAGATE_NATS_STREAM, WAGATE_NATS_SUBJECT_PREFIX or \
         WAGATE_NATS_DUPLICATE_WINDOW to match",
        want.stream,
        wrong.join("; ")
    ))
}

/// The bus: its settings and, once connected, its JetStream context.
pub struct Bus {
    config: NatsConfig,
    context: tokio::sync::Mutex<Option<Context>>,
    /// The stream was found (or made) and judged usable since the last failure.
    stream_ok: AtomicBool,
}

impl Bus {
    pub fn new(config: NatsConfig) -> Bus {
        Bus {
            config,
            context: tokio::sync::Mutex::new(None),
            stream_ok: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// Publishes `body` on `subject` with `Nats-Msg-Id: msg_id`; `Ok` only once
    /// JetStream's `PubAck` came (the stream stored it, or had it already). `Err`
    /// says why not; the whole call is bounded by `timeout`.
    pub async fn publish(
        &self,
        subject: String,
        msg_id: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Published, String> {
        let result =
            tokio::time::timeout(timeout, self.publish_now(subject, msg_id, body, timeout))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no PubAck within {}",
                        humantime::format_duration(timeout)
                    ))
                });
        if result.is_err() {
            self.stream_ok.store(false, Ordering::Relaxed);
        }
        result
    }

    async fn publish_now(
        &self,
        subject: String,
        msg_id: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Published, String> {
        let js = self.context(timeout).await?;
        if !self.stream_ok.load(Ordering::Relaxed) {
            self.ensure_stream(&js).await?;
            self.stream_ok.store(true, Ordering::Relaxed);
        }
        let msg = jetstream::message::PublishMessage::build()
            .message_id(msg_id)
            .payload(body.into());
        let ack = js
            .send_publish(subject, msg)
            .await
            .map_err(|e| format!("publish failed: {e}"))?
            .await
            .map_err(|e| match e.kind() {
                PublishErrorKind::TimedOut => "no PubAck (timed out)".to_string(),
                _ => format!("no PubAck: {e}"),
            })?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// The JetStream context, connecting the first time.
    async fn context(&self, timeout: Duration) -> Result<Context, String> {
        let mut slot = self.context.lock().await;
        if let Some(js) = &*slot {
            return Ok(js.clone());
        }
        let mut opts = async_nats::ConnectOptions::new()
            .name(crate::upstream::USER_AGENT)
            .connection_timeout(timeout)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS disconnected; reconnecting")
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            });
        if let Some(path) = &self.config.creds {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| format!("WAGATE_NATS_CREDS {}: {e}", path.display()))?;
        }
        let servers: Vec<&str> = self.config.url.split(',').map(str::trim).collect();
        let client = opts
            .connect(servers.as_slice())
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.config.display_url()))?;
        tracing::info!(servers = %self.config.display_url(), "NATS bus connected");
        let mut js = jetstream::new(client);
        js.set_timeout(timeout);
        Ok(slot.insert(js).clone())
    }

    /// Finds the stream or creates it, then judges it.
    async fn ensure_stream(&self, js: &Context) -> Result<(), String> {
        let c = &self.config;
        let s = js
            .get_or_create_stream(stream::Config {
                name: c.stream.clone(),
                subjects: vec![c.stream_subjects()],
                duplicate_window: c.duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("stream {}: {e}", c.stream))?;
        let info = &s.cached_info().config;
        judge_stream(
            &StreamFacts {
                subjects: info.subjects.clone(),
                duplicate_window: info.duplicate_window,
            },
            c,
        )
        .inspect_err(|e| tracing::error!(error = %e, "NATS stream refused"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_stream_is_used_only_as_configured() {
        let want = NatsConfig::new("nats://x:1");
        let hour = Duration::from_secs(3600);
        let facts = |subjects: &[&str], window: Duration| StreamFacts {
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            duplicate_window: window,
        };
        for (f, ok, names) in [
            (facts(&["wagate.>"], hour), true, ""),
            (facts(&["other.>", "wagate.>"], hour), true, ""),
            (facts(&[">"], hour), true, ""),
            (facts(&["wagate.messages.*"], hour), false, "subjects"),
            (
                facts(&["wagate.>"], 2 * hour),
                false,
                "duplicate window is 2h",
            ),
            (facts(&["x.>"], Duration::from_secs(120)), false, "subjects"),
        ] {
            let got = judge_stream(&f, &want);
            assert_eq!(got.is_ok(), ok, "{f:?}: {got:?}");
            if let Err(e) = got {
                assert!(e.contains(names) && e.contains("stream WAGATE"), "{e}");
            }
        }
    }
}
