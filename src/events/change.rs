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
        _ => return other(field, v),
    })
}

/// Summaries of the fields Meta documents besides the classic ones (coexistence,
/// account, template, group, partner, payment, security), and of unknown fields:
/// their `event`, else the keys of their value.
fn other(field: &str, v: &Value) -> Option<String> {
    let g = |k: &str| str_at(v, k);
    let d = |k: &str| g(k).unwrap_or_default();
    let first = |k: &str| v.get(k).and_then(|a| a.get(0)).cloned();
    Some(match field {
        "history" => history(v)?,
        "smb_app_state_sync" => {
            let all = super::coex::saved_contacts(v);
            let n = |a: &str| all.iter().filter(|c| c.action == a).count();
            let edited = all.len() - n("remove");
            format!(
                "app contacts: {edited} added or edited, {} removed",
                n("remove")
            )
        }
        "account_alerts" => {
            let a = v.get("alert_info").unwrap_or(&Value::Null);
            let s = |k: &str| str_at(a, k).unwrap_or_default();
            let text = format!(
                "alert {} {}: {}",
                s("alert_type"),
                s("alert_severity"),
                s("alert_description")
            );
            text.replace("  ", " ")
        }
        "account_review_update" => format!("account review: {}", g("decision")?),
        "business_capability_update" => {
            let keys: Vec<String> = object_keys(v)
                .into_iter()
                .filter_map(|k| Some(format!("{k} {}", str_at(v, &k)?)))
                .collect();
            format!("capability: {}", keys.join(", "))
        }
        "phone_number_name_update" => {
            let reason = g("rejection_reason").filter(|r| r != "NONE");
            let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
            let name = d("requested_verified_name");
            format!(
                "phone {} name '{name}' {}{reason}",
                d("display_phone_number"),
                g("decision")?
            )
        }
        "message_template_components_update" => {
            format!(
                "template '{}' components updated",
                d("message_template_name")
            )
        }
        f if f.starts_with("group_") => {
            let grp = first("groups").unwrap_or_else(|| v.clone());
            let what = str_at(&grp, "type")
                .or_else(|| g("event"))
                .unwrap_or_default();
            let id = str_at(&grp, "group_id").unwrap_or_default();
            format!("{f} {what} group {id}")
        }
        "partner_solutions" => {
            let status = g("solution_status")
                .or_else(|| g("event"))
                .unwrap_or_default();
            format!("solution {} {status}", d("solution_id"))
        }
        "payment_configuration_update" => {
            format!(
                "payment configuration '{}' {}",
                d("configuration_name"),
                d("status")
            )
        }
        "security" => {
            format!(
                "phone {} security {}",
                d("display_phone_number"),
                g("event")?
            )
        }
        _ => match g("event") {
            Some(e) => format!("{field} {e}"),
            None => format!("{field}: {}", object_keys(v).join(", ")),
        },
    })
}

fn object_keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A `history` chunk: its phase, order and progress, what it holds, or a declined
/// share (error 2593109).
fn history(v: &Value) -> Option<String> {
    let h = v.get("history")?.get(0)?;
    if let Some(e) = h.get("errors").and_then(|e| e.get(0)).map(api_error) {
        let text = e.details.or(e.title).or(e.message).unwrap_or_default();
        let what = match e.code {
            Some(2_593_109) => "history sharing declined",
            _ => "history error",
        };
        return Some(format!("{what} ({}): {text}", e.code.unwrap_or(0)));
    }
    if h.get("threads").is_some() {
        // A history message not read as one (no `id`).
        return Some("history message not read".into());
    }
    let md = h.get("metadata").unwrap_or(&Value::Null);
    let n = |k: &str| {
        md.get(k)
            .and_then(as_ts)
            .map_or("?".into(), |x| x.to_string())
    };
    let count = |k: &str| h.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(format!(
        "history phase {} chunk {}: {}%, {} threads, {} messages",
        n("phase"),
        n("chunk_order"),
        n("progress"),
        count("threads_count"),
        count("messages_count")
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_documented_field_has_a_one_line_summary() {
        let table = [
            (
                "account_alerts",
                json!({"entity_type": "WABA", "alert_info": {"alert_severity": "WARNING", "alert_status": "ACTIVE", "alert_type": "OBA_APPROVED", "alert_description": "approved"}}),
                "alert OBA_APPROVED WARNING: approved",
            ),
            (
                "account_review_update",
                json!({"decision": "APPROVED"}),
                "account review: APPROVED",
            ),
            (
                "business_capability_update",
                json!({"max_daily_conversation_per_phone": 1000}),
                "capability: max_daily_conversation_per_phone 1000",
            ),
            (
                "phone_number_name_update",
                json!({"display_phone_number": "15550100", "decision": "DEFERRED", "requested_verified_name": "Shop", "rejection_reason": "NONE"}),
                "phone 15550100 name 'Shop' DEFERRED",
            ),
            (
                "message_template_components_update",
                json!({"message_template_id": 1, "message_template_name": "welcome"}),
                "template 'welcome' components updated",
            ),
            (
                "group_lifecycle_update",
                json!({"groups": [{"type": "group_create", "group_id": "G1"}]}),
                "group_lifecycle_update group_create group G1",
            ),
            (
                "partner_solutions",
                json!({"event": "SOLUTION_CREATED", "solution_id": "S1", "solution_status": "ACTIVE"}),
                "solution S1 ACTIVE",
            ),
            (
                "payment_configuration_update",
                json!({"configuration_name": "pay", "status": "Active"}),
                "payment configuration 'pay' Active",
            ),
            (
                "security",
                json!({"display_phone_number": "15550100", "event": "PIN_CHANGED"}),
                "phone 15550100 security PIN_CHANGED",
            ),
            (
                "business_status_update",
                json!({"event": "ONBOARDED"}),
                "business_status_update ONBOARDED",
            ),
            (
                "something_new",
                json!({"a": 1, "b": 2}),
                "something_new: a, b",
            ),
            (
                "history",
                json!({"history": [{"metadata": {"phase": 2, "chunk_order": 3, "progress": 90}, "threads_count": 4, "messages_count": 40}]}),
                "history phase 2 chunk 3: 90%, 4 threads, 40 messages",
            ),
            (
                "history",
                json!({"history": [{"errors": [{"code": 2593109, "title": "off"}]}]}),
                "history sharing declined (2593109): off",
            ),
        ];
        for (field, value, want) in table {
            assert_eq!(summarize(field, &value).as_deref(), Some(want), "{field}");
        }
    }
}
