//! An item's own time, judged against when its delivery was received
//! ([`ItemTime`]): a time out of range is kept raw and marked, and the item is
//! ordered, expired, shown and forwarded by its receive time instead.

use super::model::Item;
use crate::util::time::ItemTime;

impl Item {
    /// The item's own time, judged against `received_secs`.
    pub fn time(&self, received_secs: i64) -> ItemTime {
        ItemTime::judge(self.timestamp(), received_secs)
    }

    /// Sets the item's `timestamp` to the time it goes by (its own, else the receive
    /// time) and marks one that was out of range, keeping it raw. Once per item: the
    /// time of an account event is read from the field it sets.
    pub fn settle_time(&mut self, received_secs: i64) {
        let judged = self.time(received_secs);
        let at = judged.or_received(received_secs);
        let raw = judged.out_of_range();
        match self {
            Item::Message { message: m, .. } => {
                (m.timestamp, m.timestamp_raw, m.timestamp_out_of_range) = (at, raw, raw.is_some());
            }
            Item::Status { status: s, .. } => {
                (s.timestamp, s.timestamp_raw, s.timestamp_out_of_range) = (at, raw, raw.is_some());
            }
            Item::Change { event: e, .. } => {
                (e.timestamp, e.timestamp_raw, e.timestamp_out_of_range) =
                    (Some(at), raw, raw.is_some());
            }
            Item::Call { call: c, .. } => {
                (c.timestamp, c.timestamp_raw, c.timestamp_out_of_range) = (at, raw, raw.is_some());
            }
            Item::Contact { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::parse::parse_delivery;

    const NOW: i64 = 1_764_670_000;

    fn items(ts: &str) -> Vec<Item> {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"1","id":"wamid.M","timestamp":{ts},"type":"text","text":{{"body":"x"}}}}],"statuses":[{{"id":"wamid.S","status":"sent","timestamp":{ts},"recipient_id":"1"}}]}}}},{{"field":"account_update","value":{{"event":"X","timestamp":{ts}}}}}]}}]}}"#
        );
        parse_delivery(body.as_bytes()).unwrap()
    }

    /// `timestamp`, `timestamp_out_of_range`, `timestamp_raw`.
    type Times = (i64, bool, Option<i64>);

    fn times(item: &Item) -> Option<Times> {
        match item {
            Item::Message { message: m, .. } => {
                Some((m.timestamp, m.timestamp_out_of_range, m.timestamp_raw))
            }
            Item::Status { status: s, .. } => {
                Some((s.timestamp, s.timestamp_out_of_range, s.timestamp_raw))
            }
            Item::Change { event: e, .. } => {
                Some((e.timestamp?, e.timestamp_out_of_range, e.timestamp_raw))
            }
            Item::Call { call: c, .. } => {
                Some((c.timestamp, c.timestamp_out_of_range, c.timestamp_raw))
            }
            Item::Contact { .. } => None,
        }
    }

    #[test]
    #[rustfmt::skip]
    fn out_of_range_times_are_kept_raw_and_marked() {
        let cases: &[(&str, Times)] = &[
            ("\"1764660000\"",            (1_764_660_000, false, None)),
            ("1764660000",                (1_764_660_000, false, None)),
            ("\"0\"",                     (NOW, false, None)),
            ("\"-1\"",                    (NOW, true, Some(-1))),
            ("\"253402300799\"",          (NOW, true, Some(253_402_300_799))),
            ("\"253402300800\"",          (NOW, true, Some(253_402_300_800))),
            ("\"9223372036854775807\"",   (NOW, true, Some(i64::MAX))),
            ("\"99999999999999999999\"",  (NOW, true, Some(i64::MAX))),
            ("\"-99999999999999999999\"", (NOW, true, Some(i64::MIN))),
            ("1e300",                     (NOW, true, Some(i64::MAX))),
            ("\"soon\"",                  (NOW, false, None)),
        ];
        for (ts, want) in cases {
            let all = items(ts);
            assert_eq!(all.len(), 3, "{ts}");
            for mut item in all {
                item.settle_time(NOW);
                assert_eq!(times(&item), Some(*want), "{ts}: {item:?}");
            }
        }
    }
}
