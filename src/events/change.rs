//! Account events: a change kept whole (every field but `messages`), or the part of
//! a `messages` change that is not a message, status or contact; its time and a
//! short human summary.

use serde_json::Value;

use super::model::{AccountEvent, Item, ItemMeta};
use super::raw::OMITTED;
use super::read::{api_error, as_ts, str_at};

pub(super) fn change_item(meta: &ItemMeta, value: Value, entry_time: Option<i64>) -> Item {
    let summary = match value.get(OMITTED).and_then(|o| o.get("bytes")) {
        Some(n) => Some(format!(
            "{} value of {n} bytes not built (over 1 MiB): see the raw delivery",
            meta.field
        )),
        None => summarize(&meta.field, &value).map(|s| truncate(s, 200)),
    };
    let event = AccountEvent {
        field: meta.field.clone(),
        timestamp: change_time(&value).or(entry_time),
        timestamp_out_of_range: false,
        timestamp_raw: None,
        summary,
        value,
    };
    Item::Change {
        meta: meta.clone(),
        event,
    }
}

fn change_time(v: &Value) -> Option<i64> {
    v.get("timestamp")
        .and_then(as_ts)
        .or_else(|| {
            v.get("volume_tier_info")
                .and_then(|t| t.get("tier_update_time"))
                .and_then(as_ts)
        })
        .or_else(|| {
            v.get("user_preferences")
                .and_then(|p| p.get(0))
                .and_then(|p| p.get("timestamp"))
                .and_then(as_ts)
        })
}

fn summarize(field: &str, v: &Value) -> Option<String> {
    let g = |k: &str| str_at(v, k);
    let d = |k: &str| g(k).unwrap_or_default();
    let before = |k: &str| g(k).map(|x| x + " ").unwrap_or_default();
    let tpl = format!("template '{}'", d("message_template_name"));
    let event = g("event");
    Some(match field {
        "message_template_status_update" => match g("reason").filter(|r| r != "NONE") {
            Some(r) => format!("{tpl} {} ({r})", event?),
            None => format!("{tpl} {}", event?),
        },
        "message_template_quality_update" => {
            let new = g("new_quality_score")?;
            format!("{tpl} quality {}-> {new}", before("previous_quality_score"))
        }
        "template_category_update" => {
            let new = g("new_category")?;
            format!("{tpl} category {}-> {new}", before("previous_category"))
        }
        "phone_number_quality_update" => {
            let limit = g("max_daily_conversations_per_business").or_else(|| g("current_limit"));
            let limit = limit.map(|l| format!(" (limit {l})")).unwrap_or_default();
            format!("phone {} {}{limit}", d("display_phone_number"), event?)
        }
        "account_update" => {
            let detail = if let Some(t) = v.get("volume_tier_info") {
                let cat = str_at(t, "pricing_category").unwrap_or_default();
                str_at(t, "tier").map(|tier| format!("tier {tier} {cat}"))
            } else if let Some(Value::Array(r)) = v.get("restriction_info") {
                let types: Vec<_> = r
                    .iter()
                    .filter_map(|x| str_at(x, "restriction_type"))
                    .collect();
                Some(types.join(", "))
            } else {
                v.get("ban_info").and_then(|b| str_at(b, "waba_ban_state"))
            };
            let detail = detail
                .map(|x| format!(": {}", x.trim_end()))
                .unwrap_or_default();
            format!("account {}{detail}", event?)
        }
        "user_preferences" => {
            let p = v.get("user_preferences")?.get(0)?;
            let who = str_at(p, "wa_id")
                .or_else(|| str_at(p, "user_id"))
                .unwrap_or_default();
            let category = str_at(p, "category").unwrap_or_default();
            format!("user {who} {category}: {}", str_at(p, "value")?)
        }
        "messages" => match v.get("errors").and_then(|e| e.get(0)).map(api_error) {
            Some(e) => {
                let text = e.title.or(e.message).unwrap_or_default();
                format!("error {}: {text}", e.code.unwrap_or(0))
            }
            None => match ["messages", "statuses", "contacts"]
                .iter()
                .find(|k| v.get(**k).is_some())
            {
                Some(k) => format!("unreadable {k}[] element"),
                None => "messages change not read by this parser".into(),
            },
        },
        _ => format!("{field} {}", event?),
    })
}

pub(super) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}
