//! A call as its events tell it (pure): the events in time order whatever order
//! they arrived in, one per (event, status), and the call's state, start, end and
//! duration decided from them.

use serde::Serialize;

use super::model::CallEvent;

/// One line of a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStep {
    pub event: String,
    pub status: Option<String>,
    pub timestamp: i64,
}

/// A call, as `GET /api/calls/{id}` answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallView {
    pub id: String,
    pub contact: String,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// ringing, accepted, rejected, completed, failed, ended.
    pub state: String,
    pub events: Vec<CallStep>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_seconds: Option<i64>,
}

/// The state a call is in after `events` (in time order): a `terminate` ends it
/// (its status, lowercased: completed or failed; `ended` without one); before that
/// the latest status answers (rejected, accepted, ringing); a `connect` alone is
/// ringing.
pub fn call_state(events: &[CallEvent]) -> String {
    if let Some(t) = events.iter().rev().find(|e| e.event == "terminate") {
        return t
            .status
            .as_deref()
            .map_or_else(|| "ended".into(), str::to_ascii_lowercase);
    }
    let rank = |s: &str| match s {
        "REJECTED" => 3,
        "ACCEPTED" => 2,
        "RINGING" => 1,
        _ => 0,
    };
    events
        .iter()
        .filter(|e| e.event == "status")
        .filter_map(|e| e.status.as_deref().map(str::to_ascii_uppercase))
        .max_by_key(|s| rank(s))
        .filter(|s| rank(s) > 0)
        .map_or_else(|| "ringing".into(), |s| s.to_ascii_lowercase())
}

/// The call made of `events` (any order; duplicates per (event, status) counted once,
/// the earliest kept). `None` without events.
pub fn call_view(mut events: Vec<CallEvent>) -> Option<CallView> {
    events.sort_by(|a, b| {
        (a.timestamp, &a.event, &a.status).cmp(&(b.timestamp, &b.event, &b.status))
    });
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert((e.event.clone(), e.status.clone())));
    let first = events.first()?.clone();
    let pick = |f: &dyn Fn(&CallEvent) -> Option<String>| events.iter().find_map(f);
    let terminate = events.iter().rev().find(|e| e.event == "terminate");
    let connect = events.iter().find(|e| e.event == "connect");
    let started_at = terminate
        .and_then(|t| t.start_time)
        .or(connect.map(|c| c.timestamp))
        .or(Some(first.timestamp));
    let ended_at = terminate.map(|t| t.end_time.unwrap_or(t.timestamp));
    let duration_seconds = terminate.and_then(|t| t.duration).or_else(|| {
        let (s, e) = (terminate?.start_time?, ended_at?);
        Some((e - s).max(0))
    });
    Some(CallView {
        id: first.id.clone(),
        contact: first.contact_id.clone(),
        direction: pick(&|e| e.direction.clone()),
        from: pick(&|e| e.from.clone()),
        to: pick(&|e| e.to.clone()),
        state: call_state(&events),
        events: events
            .iter()
            .map(|e| CallStep {
                event: e.event.clone(),
                status: e.status.clone(),
                timestamp: e.timestamp,
            })
            .collect(),
        started_at,
        ended_at,
        duration_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, status: Option<&str>, ts: i64) -> CallEvent {
        CallEvent {
            id: "wacid.1".into(),
            event: event.into(),
            status: status.map(Into::into),
            timestamp: ts,
            timestamp_out_of_range: false,
            timestamp_raw: None,
            direction: Some("USER_INITIATED".into()),
            from: Some("447700900001".into()),
            to: Some("15550100".into()),
            contact_id: "447700900001".into(),
            start_time: None,
            end_time: None,
            duration: None,
            biz_opaque_callback_data: None,
            errors: Vec::new(),
        }
    }

    #[test]
    fn state_from_events() {
        type Events<'a> = &'a [(&'a str, Option<&'a str>)];
        let table: &[(Events, &str)] = &[
            (&[("connect", None)], "ringing"),
            (&[("connect", None), ("status", Some("RINGING"))], "ringing"),
            (
                &[("status", Some("RINGING")), ("status", Some("ACCEPTED"))],
                "accepted",
            ),
            (
                &[("status", Some("ACCEPTED")), ("status", Some("RINGING"))],
                "accepted",
            ),
            (&[("status", Some("REJECTED"))], "rejected"),
            (
                &[("connect", None), ("terminate", Some("COMPLETED"))],
                "completed",
            ),
            (
                &[("terminate", Some("FAILED")), ("status", Some("ACCEPTED"))],
                "failed",
            ),
            (&[("terminate", None)], "ended"),
            (&[("status", Some("SOMETHING"))], "ringing"),
        ];
        for (events, want) in table {
            let events: Vec<_> = events.iter().map(|(e, s)| ev(e, *s, 1)).collect();
            assert_eq!(call_state(&events), *want, "{events:?}");
        }
    }

    #[test]
    fn events_in_time_order_once_each_whatever_the_arrival() {
        let mut t = ev("terminate", Some("COMPLETED"), 50);
        t.start_time = Some(12);
        t.end_time = Some(45);
        t.duration = Some(33);
        let arrived = vec![
            t.clone(),
            ev("status", Some("ACCEPTED"), 12),
            ev("connect", None, 10),
            ev("status", Some("ACCEPTED"), 13),
            t,
        ];
        let v = call_view(arrived).unwrap();
        let order: Vec<_> = v
            .events
            .iter()
            .map(|e| (e.event.as_str(), e.timestamp))
            .collect();
        assert_eq!(order, [("connect", 10), ("status", 12), ("terminate", 50)]);
        assert_eq!(
            (v.started_at, v.ended_at, v.duration_seconds),
            (Some(12), Some(45), Some(33))
        );
        assert_eq!(v.state, "completed");
        let open = call_view(vec![ev("connect", None, 10)]).unwrap();
        assert_eq!(
            (open.started_at, open.ended_at, open.duration_seconds),
            (Some(10), None, None)
        );
        assert!(call_view(Vec::new()).is_none());
    }
}
