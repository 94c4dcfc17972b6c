//! The campaign's final checks, on a clean start after the last kill.

use std::collections::HashMap;
use std::time::Duration;

use crate::kit::api::{Api, Stored};
use crate::kit::bodies::media_bytes;
use crate::kit::{load, poll, Res};
use crate::Campaign;

/// Outcomes past the writer's own bound are violations; the rest are figures.
#[derive(Default)]
pub struct Report {
    pub violations: Vec<String>,
    pub acked: u64,
    pub lost: u64,
    pub stored_deliveries: u64,
    pub messages: u64,
    pub statuses: u64,
    pub applied_twice: u64,
    pub sends_acked: u64,
    pub sends_doubled: u64,
    pub sends_unknown: u64,
    pub forward_items: u64,
    pub forward_entries_again: u64,
    pub forward_bound: u64,
    pub media: u64,
    pub downloads: u64,
}

impl Report {
    pub fn summary(&self, c: &Campaign, secs: f64) -> String {
        format!(
            "kill campaign: {} rounds, {} kills ({} within 100 ms of start, {} of them before it listened; {} within 100 ms of listening), {:.0} s\n\
             start to listening: median {:.0} ms, max {:.0} ms (first start {:.0} ms, last {:.0} ms)\n\
             deliveries: {} acknowledged, {} lost, {} stored; items: {} messages and {} statuses, applied twice {}\n\
             sends: {} acknowledged, {} doubled, {} unknown (in flight at a kill, not resent)\n\
             forwarding: {} items, {} entries sent again (bound {}: {} kills x (concurrency {} + 16))\n\
             media: {} files stored byte-exact, {} downloads\n\
             | {} | {} | {} | {} | {} | {} | {} | {:.0} s |\n\
             violations: {}",
            c.args.rounds, c.kills, c.startup_kills, c.killed_before_listening, c.early_kills, secs,
            percentile(&c.start_ms, 0.5), percentile(&c.start_ms, 1.0),
            c.start_ms.first().copied().unwrap_or(0.0), c.start_ms.last().copied().unwrap_or(0.0),
            self.acked, self.lost, self.stored_deliveries, self.messages, self.statuses, self.applied_twice,
            self.sends_acked, self.sends_doubled, self.sends_unknown,
            self.forward_items, self.forward_entries_again, self.forward_bound, c.kills, c.args.forward_concurrency,
            self.media, self.downloads,
            c.args.rounds, c.kills, self.acked, self.lost, self.applied_twice, self.sends_doubled,
            self.forward_entries_again, secs,
            self.violations.len(),
        )
    }
}

fn percentile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

const LIMIT: Duration = Duration::from_secs(120);

pub async fn run(c: &mut Campaign) -> Res<Report> {
    let mut r = Report::default();
    let (w, api) = c.listening().await?;
    retry_pending_sends(c, &api).await?;
    let stats = api.caught_up(LIMIT).await?;
    let stored = api.stored().await?;
    deliveries(c, &api, &stats, &stored, &mut r).await?;
    sends(c, &api, &mut r).await?;
    forwards(c, &stored, &mut r).await;
    media(c, &api, &stored, &mut r).await?;
    quiet_restart(c, w, &api, &mut r).await?;
    panics(c, &mut r);
    Ok(r)
}

/// Sends whose `202` was lost to a kill, posted again with the same key.
async fn retry_pending_sends(c: &Campaign, api: &Api) -> Res<()> {
    poll("every send acknowledged", LIMIT, || async {
        let pending = std::mem::take(&mut c.ledger.lock().unwrap().pending_sends);
        for key in pending {
            load::send_one(api, &key, &c.ledger).await;
        }
        match c.ledger.lock().unwrap().pending_sends.len() {
            0 => Ok(()),
            n => Err(format!("{n} pending")),
        }
    })
    .await
}

async fn deliveries(
    c: &Campaign,
    api: &Api,
    stats: &serde_json::Value,
    stored: &Stored,
    r: &mut Report,
) -> Res<()> {
    let sample = {
        let l = c.ledger.lock().unwrap();
        r.acked = l.acked_total;
        for (digest, n) in &l.acked {
            let have = stored.bodies.get(digest).copied().unwrap_or(0);
            r.lost += n.saturating_sub(have) as u64;
        }
        let step = (l.acked_messages.len() / 300).max(1);
        let sample: Vec<String> = l.acked_messages.iter().step_by(step).cloned().collect();
        sample
    };
    r.stored_deliveries = stored.deliveries;
    if r.lost > 0 {
        r.violations
            .push(format!("{} acknowledged deliveries lost", r.lost));
    }
    if stats["deliveries_accepted"] != stored.deliveries {
        r.violations.push(format!(
            "deliveries_accepted {} but {} listed",
            stats["deliveries_accepted"], stored.deliveries
        ));
    }
    let m = stored.items.iter().filter(|k| k.starts_with("m:")).count() as u64;
    let s = stored.items.len() as u64 - m;
    (r.messages, r.statuses) = (m, s);
    for (name, distinct) in [("messages", m), ("statuses", s)] {
        let counted = stats[name].as_u64().unwrap_or(0);
        if counted != distinct {
            r.applied_twice += counted.saturating_sub(distinct);
            r.violations.push(format!(
                "{name}: the model counts {counted}, the stored bodies hold {distinct} distinct"
            ));
        }
    }
    for id in sample {
        let resp = api.get(&format!("/api/messages/{id}")).await?;
        if resp.status() != 200 {
            r.violations
                .push(format!("acknowledged message {id}: {}", resp.status()));
        }
    }
    Ok(())
}

async fn sends(c: &Campaign, api: &Api, r: &mut Report) -> Res<()> {
    let (acked, broken) = {
        let l = c.ledger.lock().unwrap();
        (l.sends.clone(), l.idempotency_broken.clone())
    };
    r.violations.extend(
        broken
            .into_iter()
            .map(|b| format!("idempotency key answered with two ids: {b}")),
    );
    r.sends_acked = acked.len() as u64;
    for (key, id) in &acked {
        let e = poll(&format!("send {id} final"), LIMIT, || async {
            let e = api.get_json(&format!("/api/outbox/{id}")).await?;
            match e["state"].as_str() {
                Some("sent" | "unknown" | "failed") => Ok(e),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
        let got = c.fakes.lock().sends.get(key).copied().unwrap_or(0);
        match (e["state"].as_str(), got) {
            (Some("sent"), 1) => {}
            (Some("unknown"), 0 | 1) => r.sends_unknown += 1,
            (state, n) => r.violations.push(format!(
                "send {id} ({key}) is {state:?}, Meta got it {n} times"
            )),
        }
    }
    r.sends_doubled = c.fakes.lock().sends.values().filter(|n| **n > 1).count() as u64;
    if r.sends_doubled > 0 {
        r.violations
            .push(format!("{} sends reached Meta twice", r.sends_doubled));
    }
    Ok(())
}

async fn forwards(c: &Campaign, stored: &Stored, r: &mut Report) {
    r.forward_items = stored.items.len() as u64;
    let all = poll("every stored item forwarded", LIMIT, || async {
        let f = c.fakes.lock();
        match stored
            .items
            .iter()
            .filter(|k| !f.forwarded_items.contains_key(*k))
            .count()
        {
            0 => Ok(()),
            n => Err(format!("{n} not forwarded")),
        }
    })
    .await;
    if let Err(e) = all {
        r.violations.push(e);
    }
    let f = c.fakes.lock();
    r.forward_entries_again = f
        .forwarded_bodies
        .values()
        .map(|n| (*n as u64).saturating_sub(1))
        .sum();
    r.forward_bound = c.kills * (c.args.forward_concurrency as u64 + 16);
    if r.forward_entries_again > r.forward_bound {
        r.violations.push(format!(
            "{} forwarded entries came again (bound {})",
            r.forward_entries_again, r.forward_bound
        ));
    }
    let worst = f.forwarded_items.values().max().copied().unwrap_or(0) as u64;
    if worst > 1 + c.kills {
        r.violations.push(format!(
            "an item was forwarded {worst} times over {} kills",
            c.kills
        ));
    }
    if f.forward_unsigned > 0 {
        r.violations
            .push(format!("{} forwards badly signed", f.forward_unsigned));
    }
}

async fn media(c: &Campaign, api: &Api, stored: &Stored, r: &mut Report) -> Res<()> {
    for id in &stored.media {
        let state = poll(&format!("media {id} stored"), LIMIT, || async {
            let v = api.get_json(&format!("/api/media/{id}")).await?;
            match v["state"].as_str() {
                Some("stored") => Ok(()),
                Some(s @ ("failed" | "quarantined" | "expired" | "deleted")) => {
                    Err(format!("final: {s}"))
                }
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        if let Err(e) = state {
            r.violations.push(e);
            continue;
        }
        let bytes = api
            .get(&format!("/api/media/{id}/content"))
            .await?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        if bytes.as_ref() != media_bytes(id).as_slice() {
            r.violations.push(format!(
                "media {id}: content differs ({} bytes)",
                bytes.len()
            ));
        }
        r.media += 1;
    }
    let f = c.fakes.lock();
    r.downloads = f.downloads_total;
    let twice: Vec<_> = f
        .downloads
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((id, g), n)| format!("{id} x{n} by process {g}"))
        .collect();
    if !twice.is_empty() {
        let some = &twice[..twice.len().min(5)];
        r.violations.push(format!(
            "{} media ids downloaded twice by one process: {some:?}",
            twice.len()
        ));
    }
    Ok(())
}

/// A graceful stop and another start: nothing more reaches Meta or the target.
async fn quiet_restart(
    c: &mut Campaign,
    w: crate::kit::child::Wagate,
    api: &Api,
    r: &mut Report,
) -> Res<()> {
    let before = api.caught_up(LIMIT).await?;
    let snapshot = |c: &Campaign| {
        let f = c.fakes.lock();
        (
            f.sends.values().sum::<u32>(),
            f.downloads_total,
            f.forward_requests,
        )
    };
    if !w.term(Duration::from_secs(30)).await {
        r.violations
            .push("wagate did not stop cleanly on SIGTERM".into());
    }
    let seen = snapshot(c);
    let (w, api) = c.listening().await?;
    let after = api.caught_up(LIMIT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await; // a negative: give a resend time to show
    if snapshot(c) != seen {
        r.violations.push(format!(
            "after a clean restart: (sends, downloads, forwards) {seen:?} -> {:?}",
            snapshot(c)
        ));
    }
    let keys = [
        "deliveries_accepted",
        "messages",
        "statuses",
        "items_new",
        "media_stored",
        "sends_sent",
    ];
    let changed: HashMap<_, _> = keys
        .iter()
        .filter(|k| before[**k] != after[**k])
        .map(|k| (*k, (before[*k].clone(), after[*k].clone())))
        .collect();
    if !changed.is_empty() {
        r.violations
            .push(format!("stats changed across a clean restart: {changed:?}"));
    }
    w.term(Duration::from_secs(30)).await;
    Ok(())
}

fn panics(c: &Campaign, r: &mut Report) {
    let log = std::fs::read_to_string(&c.log).unwrap_or_default();
    let n = log.lines().filter(|l| l.contains("panicked")).count();
    if n > 0 {
        r.violations.push(format!("{n} panics in the log"));
    }
}
