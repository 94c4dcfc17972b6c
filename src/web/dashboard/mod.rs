//! The dashboard: server-rendered HTML (askama templates in `templates/dash/`, CSS
//! in `static/`, both compiled in), behind a password login.
//!
//! One filter takes every dashboard path (`/`, `/login`, `/logout`, `/static/...`,
//! `/dashboard/...`) and dispatches by hand, so the session check sits in one place:
//! everything but `/login` and `/static/` needs a session, and every POST but the
//! login needs the session's CSRF token. Every answer carries the security headers.

pub mod auth;
mod codes;
mod conversation;
mod deliveries;
mod events;
mod forward;
mod media;
mod messages;
mod overview;
pub(crate) mod page;
mod settings;
mod statuses;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use crate::httpkit::error::ApiError;
use crate::httpkit::params::{capped_body, decode_segment};
use crate::web::WebState;
use auth::throttle::BUSY_RETRY_SECS;
use auth::{Login, Refused, Session};
pub use page::Chrome;

type Response = warp::reply::Response;

/// Content-Security-Policy of every dashboard answer: no inline script or style.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// Largest form body accepted (login, logout, re-verify, replay, enable).
const MAX_FORM: u64 = 16 * 1024;

/// One dashboard request, as the pages see it.
pub struct Req {
    pub state: WebState,
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub headers: HeaderMap,
    pub peer: Option<SocketAddr>,
}

impl Req {
    /// A non-empty query parameter.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Served over HTTPS: TLS here, or a trusted proxy saying so.
    fn secure(&self) -> bool {
        let c = &self.state.config;
        let proxied_https = self.peer.is_some_and(|p| {
            c.trusted_proxies.iter().any(|t| t.contains(p.ip()))
                && self
                    .headers
                    .get("x-forwarded-proto")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
        });
        c.tls.is_some() || c.acme.is_some() || proxied_https
    }
}

fn is_dashboard_path(path: &str) -> bool {
    path == "/"
        || path == "/login"
        || path == "/logout"
        || path.starts_with("/static/")
        || path == "/dashboard"
        || path.starts_with("/dashboard/")
}

pub fn routes(state: WebState) -> BoxedFilter<(Response,)> {
    warp::path::full()
        .and_then(|p: warp::path::FullPath| async move {
            if is_dashboard_path(p.as_str()) {
                Ok(p.as_str().to_string())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(crate::httpkit::peer())
        .and(form_body())
        .then(
            move |path,
                  method,
                  query: String,
                  headers,
                  peer,
                  body: Result<Option<Bytes>, ApiError>| {
                let state = state.clone();
                async move {
                    let body = match body {
                        Ok(Some(body)) => body,
                        refused => {
                            let mut resp = match refused {
                                Err(e) => page::message(
                                    StatusCode::BAD_REQUEST,
                                    "Bad request",
                                    &e.to_string(),
                                ),
                                _ => page::too_large(),
                            };
                            security_headers(resp.headers_mut());
                            return resp;
                        }
                    };
                    let query = serde_urlencoded::from_str(&query).unwrap_or_default();
                    let form = if method == Method::POST {
                        serde_urlencoded::from_bytes(&body).unwrap_or_default()
                    } else {
                        HashMap::new()
                    };
                    let req = Req {
                        state,
                        method,
                        path,
                        query,
                        form,
                        headers,
                        peer,
                    };
                    let mut resp = dispatch(req).await;
                    security_headers(resp.headers_mut());
                    resp
                }
            },
        )
        .boxed()
}

/// A POST's form body, `None` when it is over `MAX_FORM`; other methods get an
/// empty body.
fn form_body(
) -> impl Filter<Extract = (Result<Option<Bytes>, ApiError>,), Error = std::convert::Infallible> + Clone
{
    warp::post()
        .and(capped_body(MAX_FORM as usize))
        .or(warp::any().map(|| Ok(Some(Bytes::new()))))
        .unify()
}

fn security_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    // Media content keeps its own stricter `sandbox` policy.
    if !h.contains_key("content-security-policy") {
        set(h, "content-security-policy", CSP);
    }
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    if !h.contains_key(http::header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
}

/// A logged-in request: the session and the cookie that refreshes it.
pub struct Ctx {
    pub req: Req,
    pub session: Session,
    pub chrome_csrf: String,
}

async fn dispatch(req: Req) -> Response {
    let now = req.state.clock.now_secs();
    match (&req.method, req.path.as_str()) {
        (&Method::GET, p) if p.starts_with("/static/") => return page::static_file(p),
        (&Method::GET, "/login") => return page::login_page(&req, None, StatusCode::OK),
        (&Method::POST, "/login") => return login(req, now).await,
        _ => {}
    }
    let auth = req.state.dashboard.clone();
    let session = req.cookie(auth::COOKIE).and_then(|c| auth.check(c, now));
    let Some(session) = session else {
        return if req.method == Method::GET {
            page::redirect("/login")
        } else {
            page::forbidden("log in first")
        };
    };
    if req.method == Method::POST
        && !auth.check_csrf(&session, req.form.get("csrf").map(String::as_str))
    {
        return page::forbidden("missing or wrong CSRF token: reload the page and try again");
    }
    let secure = req.secure();
    let refreshed = auth.set_cookie(&auth.refresh(&session, now), secure);
    let ctx = Ctx {
        chrome_csrf: auth.csrf(&session),
        session,
        req,
    };
    let mut resp = route(ctx, now).await;
    if !resp.headers().contains_key(http::header::SET_COOKIE) {
        if let Ok(v) = HeaderValue::from_str(&refreshed) {
            resp.headers_mut().insert(http::header::SET_COOKIE, v);
        }
    }
    resp
}

async fn route(ctx: Ctx, now: i64) -> Response {
    let path = ctx.req.path.clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let post = ctx.req.method == Method::POST;
    match (post, segments.as_slice()) {
        (false, [""]) => overview::page(ctx).await,
        (true, ["logout"]) => {
            let auth = ctx.req.state.dashboard.clone();
            let (a, session) = (auth.clone(), ctx.session.clone());
            let saved = tokio::task::spawn_blocking(move || a.revoke(&session, now)).await;
            if let Ok(Err(e)) = saved {
                // Out in memory: only a restart would let the cookie back in.
                tracing::error!(error = %e, "cannot record a dashboard logout on disk");
            }
            let mut resp = page::redirect("/login");
            if let Ok(v) = HeaderValue::from_str(&auth.set_cookie("", ctx.req.secure())) {
                resp.headers_mut().insert(http::header::SET_COOKIE, v);
            }
            resp
        }
        (false, ["dashboard"]) => page::redirect("/"),
        (false, ["dashboard", "deliveries"]) => deliveries::list(ctx).await,
        (false, ["dashboard", "deliveries", id]) => match id.parse() {
            Ok(id) => deliveries::detail(ctx, id).await,
            Err(_) => page::not_found(),
        },
        (false, ["dashboard", "deliveries", id, "raw"]) => match id.parse() {
            Ok(id) => deliveries::raw(ctx, id).await,
            Err(_) => page::not_found(),
        },
        (true, ["dashboard", "deliveries", "reverify"]) => deliveries::reverify(ctx).await,
        (false, ["dashboard", "messages"]) => messages::list(ctx).await,
        (false, ["dashboard", "conversation"]) => conversation::conversation(ctx).await,
        (false, ["dashboard", "export"]) => conversation::export(ctx).await,
        (true, ["dashboard", "erase"]) => conversation::erase(ctx).await,
        (false, ["dashboard", "statuses"]) => statuses::page(ctx).await,
        (false, ["dashboard", "media"]) => media::list(ctx).await,
        (false, ["dashboard", "media", id, "content"]) => match decode_segment(id) {
            Ok(id) => media::content(ctx, id).await,
            Err(_) => page::not_found(),
        },
        (false, ["dashboard", "events"]) => events::page(ctx).await,
        (false, ["dashboard", "settings"]) => settings::page(ctx).await,
        (false, ["dashboard", "forward"]) => forward::page(ctx).await,
        (true, ["dashboard", "forward", "replay"]) => forward::replay(ctx).await,
        (true, ["dashboard", "forward", "targets", id, "enable"]) => match decode_segment(id) {
            Ok(id) => forward::enable(ctx, &id).await,
            Err(_) => page::not_found(),
        },
        (true, _) => page::not_found(),
        _ => page::not_found(),
    }
}

/// Checks the password; on success a session cookie and a redirect to the overview.
async fn login(req: Req, now: i64) -> Response {
    let Some(peer) = req.peer else {
        return page::forbidden("no peer address");
    };
    let c = &req.state.config;
    let xff = req
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let addr = crate::httpkit::client_ip::client_ip(peer, xff, &c.trusted_proxies);
    let auth = req.state.dashboard.clone();
    let given = req.form.get("password").cloned().unwrap_or_default();
    match auth.login(addr, given, now).await {
        Login::Ok => {}
        Login::WrongPassword => {
            tracing::info!(%addr, "dashboard login failed");
            return page::login_page(
                &req,
                Some("Wrong password.".into()),
                StatusCode::UNAUTHORIZED,
            );
        }
        Login::Refused(Refused::Locked(wait)) => {
            let msg = format!(
                "Too many failed logins from your address: try again in {} minute(s).",
                (wait + 59) / 60
            );
            return page::login_page(&req, Some(msg), StatusCode::TOO_MANY_REQUESTS);
        }
        Login::Refused(Refused::Busy) => {
            let msg = format!(
                "Too many logins are being checked right now: try again in {BUSY_RETRY_SECS} seconds."
            );
            let mut resp = page::login_page(&req, Some(msg), StatusCode::SERVICE_UNAVAILABLE);
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_SECS),
            );
            return resp;
        }
    }
    tracing::info!(%addr, "dashboard login");
    let mut resp = page::redirect("/");
    let cookie = auth.set_cookie(&auth.issue(now), req.secure());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    resp
}

/// A page's answer, or the error's (a 500 page is never a 200).
pub fn render<T: askama::Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => page::html(html),
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

/// Maps a page's error to its answer: a 404 or 400 page, else the error mapping
/// of `web::error` (a 500 is never a 200 page).
pub fn respond(r: Result<Response, crate::httpkit::error::ApiError>) -> Response {
    use crate::httpkit::error::ApiError;
    match r {
        Ok(resp) => resp,
        Err(ApiError::NotFound) => page::not_found(),
        Err(ApiError::BadRequest(m)) => page::message(StatusCode::BAD_REQUEST, "Bad request", &m),
        Err(e) => e.into_response(),
    }
}
