//! `GET /api/calls`, `/api/calls/{call_id}` (calls from their events) and
//! `GET /api/history` (the coexistence backfill, per phone number id).

use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::Filter;

use super::json_or_error;
use crate::events::calls::CallView;
use crate::httpkit::error::ApiError;
use crate::httpkit::params::{query, segment, Cursor, Limit};
use crate::store::{self, HistoryProgress, Store};

#[derive(Debug, Deserialize)]
struct ListQuery {
    contact: Option<String>,
    limit: Option<Limit>,
    before: Option<Cursor>,
}

#[derive(Serialize)]
struct CallList {
    calls: Vec<CallView>,
    next_before: Option<String>,
}

#[derive(Serialize)]
struct HistoryList {
    phone_numbers: Vec<HistoryProgress>,
}

/// Calls and history read only the store.
pub fn routes(store: Store) -> BoxedFilter<(warp::reply::Response,)> {
    let s = store.clone();
    let list = warp::get()
        .and(warp::path("calls"))
        .and(warp::path::end())
        .and(query::<ListQuery>())
        .then(move |q| {
            let s = s.clone();
            async move { json_or_error(list(s, q).await) }
        });
    let s = store.clone();
    let one = warp::get()
        .and(warp::path("calls"))
        .and(segment())
        .and(warp::path::end())
        .then(move |id: String| {
            let st = s.clone();
            async move {
                let call = store::blocking(move || st.call(&id)).await;
                json_or_error(
                    call.map_err(ApiError::from)
                        .and_then(|c| c.ok_or(ApiError::NotFound)),
                )
            }
        });
    let history = warp::get()
        .and(warp::path("history"))
        .and(warp::path::end())
        .then(move || {
            let st = store.clone();
            async move {
                let h = store::blocking(move || st.history()).await;
                json_or_error(
                    h.map_err(ApiError::from)
                        .map(|phone_numbers| HistoryList { phone_numbers }),
                )
            }
        });
    list.or(one).unify().or(history).unify().boxed()
}

async fn list(st: Store, q: ListQuery) -> Result<CallList, ApiError> {
    let limit = Limit::or(q.limit, 50);
    let contact = q.contact.filter(|c| !c.is_empty());
    let before = q.before.map(|c| c.0);
    let page = store::blocking(move || {
        // A contact may be named by wa_id or user_id: resolve to its id first.
        let contact = match contact {
            Some(c) => Some(st.contact_id(&c)?.unwrap_or(c)),
            None => None,
        };
        st.calls(contact.as_deref(), before.as_deref(), limit)
    })
    .await?;
    Ok(CallList {
        calls: page.calls,
        next_before: page.next_before,
    })
}
