//! The dashboard listener: the fleet page (`/`), its data (`/v1/summary`), the hub's
//! counters (`/v1/stats`), and the login that guards them.
//!
//! - Every answer first checks `Host` against [`AllowedHosts`] (localhost, IP literals and
//!   the configured names): 421 otherwise, so that a page on another name that resolves
//!   to the hub (DNS rebinding) cannot read it through an analyst's browser.
//! - Data needs a session: `POST /login` with a viewer's name and password (argon2id,
//!   [`Viewers`]) sets the cookie [`SESSION_COOKIE`] (`HttpOnly; Secure; SameSite=Strict`)
//!   and, when the client asks for JSON, returns the same token for
//!   `Authorization: Bearer` (scripts). Sessions live in memory: a restart logs everyone
//!   out. Without one, `/` redirects to `/login` and the JSON paths answer 401.
//! - A page costs a bounded amount of memory whatever the store holds at once: the fleet
//!   summary is computed by one request at a time and kept until a batch arrives or
//!   [`HubConfig::summary_max_age`](crate::HubConfig) passes; every other request reads
//!   that copy.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Form;
use sangdam_wire::headers::{host_name, request_token, AllowedHosts};
use serde::Deserialize;

use crate::http::Response;
use crate::server::Shared;
use crate::storage::now_unix;
use crate::viewers::Viewers;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sangdam_hub_session";
/// Sessions kept at once; the oldest goes when a new login would pass it.
pub const MAX_SESSIONS: usize = 10_000;
/// Password checks run at once (each argon2id check takes ~19 MiB and tens of ms).
const LOGIN_CHECKS: usize = 2;
/// A failed login waits this long before it is answered.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(400);

/// The `Content-Security-Policy` of every page: nothing fetched, no script runs, forms
/// post only here, and no other site may frame it.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct Session {
    viewer: String,
    expires: Instant,
    created: Instant,
}

#[derive(Clone)]
struct Cached {
    generation: u64,
    made: Instant,
    html: Arc<String>,
    json: Arc<Vec<u8>>,
}

/// What the dashboard's handlers share.
pub(crate) struct Dashboard {
    pub(crate) shared: Arc<Shared>,
    hosts: AllowedHosts,
    viewers: Viewers,
    session_ttl: Duration,
    summary_max_age: Duration,
    /// sha256(token) → session: the tokens themselves are not kept.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    login_gate: tokio::sync::Semaphore,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl Dashboard {
    pub(crate) fn new(
        shared: Arc<Shared>,
        hosts: AllowedHosts,
        viewers: Viewers,
        session_ttl: Duration,
        summary_max_age: Duration,
    ) -> Dashboard {
        Dashboard {
            shared,
            hosts,
            viewers,
            session_ttl,
            summary_max_age,
            sessions: Mutex::new(HashMap::new()),
            login_gate: tokio::sync::Semaphore::new(LOGIN_CHECKS),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The viewer whose live session the request carries.
    fn viewer(&self, headers: &HeaderMap) -> Option<String> {
        let token = request_token(
            SESSION_COOKIE,
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )?;
        let id = sangdam_wire::body_digest(token.as_bytes());
        let mut sessions = self.sessions();
        match sessions.get(&id) {
            Some(s) if s.expires > Instant::now() => Some(s.viewer.clone()),
            Some(_) => {
                sessions.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Starts a session for `viewer` and returns its token (64 hex digits).
    fn start_session(&self, viewer: &str) -> Option<String> {
        let token = sangdam_wire::hex(&crate::registry::random_key().ok()?);
        let now = Instant::now();
        let mut sessions = self.sessions();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires > now);
        }
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            sangdam_wire::body_digest(token.as_bytes()),
            Session {
                viewer: viewer.to_owned(),
                expires: now + self.session_ttl,
                created: now,
            },
        );
        Some(token)
    }

    fn end_session(&self, headers: &HeaderMap) {
        let token = request_token(
            SESSION_COOKIE,
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        if let Some(t) = token {
            self.sessions()
                .remove(&sangdam_wire::body_digest(t.as_bytes()));
        }
    }

    /// The fleet summary as HTML and JSON: the cached copy while no batch has arrived
    /// since and it is younger than `summary_max_age`, else computed now (one request at
    /// a time; the others wait for its result).
    async fn summary(&self) -> Result<Cached, String> {
        let mut cache = self.cache.lock().await;
        let generation = self.shared.generation.load(Ordering::SeqCst);
        if let Some(c) = cache.as_ref() {
            if c.generation == generation && c.made.elapsed() < self.summary_max_age {
                return Ok(c.clone());
            }
        }
        // Drop the old copy first, so that at most one summary and one computation are
        // in memory.
        *cache = None;
        let shared = self.shared.clone();
        let made = tokio::task::spawn_blocking(move || {
            let devices = shared
                .storage
                .aggregates()
                .map_err(|e| format!("cannot read the batch store: {e}"))?;
            let summary = crate::fleet::summarize_devices(&shared.registry, &devices, now_unix());
            drop(devices);
            let json = serde_json::to_vec_pretty(&summary)
                .map_err(|e| format!("cannot encode JSON: {e}"))?;
            let html = crate::fleet::render_html(&summary);
            Ok::<_, String>((html, json))
        })
        .await
        .map_err(|e| format!("the summary failed: {e}"))??;
        let c = Cached {
            generation,
            made: Instant::now(),
            html: Arc::new(made.0),
            json: Arc::new(made.1),
        };
        *cache = Some(c.clone());
        Ok(c)
    }
}

fn page(status: u16, body: String) -> Response {
    Response::new(status, "text/html; charset=utf-8", body.into_bytes())
        .header("Content-Security-Policy", CSP)
        .header("Cache-Control", "no-store")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "no-referrer")
}

fn json_bytes(body: Vec<u8>) -> Response {
    Response::new(200, "application/json", body).header("Cache-Control", "no-store")
}

fn unauthorized() -> Response {
    Response::text(
        401,
        "log in first: POST /login (name, password) and send the session cookie or Authorization: Bearer TOKEN\n",
    )
    .header("WWW-Authenticate", "Bearer realm=\"sangdam-hub\"")
    .header("Cache-Control", "no-store")
}

fn session_cookie(token: &str, max_age: Duration) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    )
}

/// Every dashboard answer passes here first: a `Host` outside the list is answered 421,
/// a form posted from another origin 403.
pub(crate) async fn check_host(
    State(dash): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let headers = request.headers();
    let mut hosts = headers.get_all(axum::http::header::HOST).iter();
    let (host, more) = (hosts.next(), hosts.next().is_some());
    let host = host.map(|v| v.to_str().unwrap_or("\u{0}"));
    // Requests without Host (HTTP/1.0 clients) are not browsers; two Hosts are refused.
    let host_ok = !more && host.is_none_or(|h| dash.hosts.allows(h));
    if !host_ok {
        dash.shared
            .counters
            .wrong_host
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(host = ?host.map(|h| h.chars().take(80).collect::<String>()), "dashboard request for a host name not in the list refused");
        return Response::text(
            421,
            "this dashboard answers only to localhost, IP addresses and the names given with --dashboard-host\n",
        )
        .close()
        .into_response();
    }
    if request.method() == Method::POST {
        // Browsers send Origin with every POST; it must be this dashboard.
        if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://").map(|(_, rest)| rest))
                .is_some_and(|o| {
                    host_name(o).is_some() && host.is_some_and(|h| h.eq_ignore_ascii_case(o))
                });
            if !same {
                return Response::text(403, "cross-origin form refused\n").into_response();
            }
        }
    }
    next.run(request).await
}

pub(crate) async fn fleet_page(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some(viewer) = dash.viewer(&headers) else {
        dash.shared
            .counters
            .unauthenticated
            .fetch_add(1, Ordering::Relaxed);
        return Response::text(303, "log in first: /login\n")
            .header("Location", "/login")
            .header("Cache-Control", "no-store");
    };
    match dash.summary().await {
        Ok(c) => {
            let bar = format!(
                "<body>\n<form method=\"post\" action=\"/logout\" style=\"float:right\">{} <button>로그아웃</button></form>\n",
                crate::fleet::escape(&viewer)
            );
            page(200, c.html.replacen("<body>\n", &bar, 1))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot build the fleet page");
            Response::text(500, &format!("{e}\n"))
        }
    }
}

pub(crate) async fn summary_json(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
) -> Response {
    if dash.viewer(&headers).is_none() {
        dash.shared
            .counters
            .unauthenticated
            .fetch_add(1, Ordering::Relaxed);
        return unauthorized();
    }
    match dash.summary().await {
        Ok(c) => json_bytes(c.json.as_ref().clone()),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the fleet summary");
            Response::text(500, &format!("{e}\n"))
        }
    }
}

pub(crate) async fn stats_json(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if dash.viewer(&headers).is_none() {
        dash.shared
            .counters
            .unauthenticated
            .fetch_add(1, Ordering::Relaxed);
        return unauthorized();
    }
    match serde_json::to_vec_pretty(&dash.shared.counters.snapshot()) {
        Ok(body) => json_bytes(body),
        Err(e) => Response::text(500, &format!("cannot encode JSON: {e}\n")),
    }
}

fn login_page(failed: bool) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>상담 허브 — 로그인</title><style>body{{font-family:sans-serif;max-width:360px;margin:64px auto;padding:0 16px}}\
         label{{display:block;margin:12px 0 4px}} input{{width:100%;padding:6px}} button{{margin-top:16px;padding:6px 16px}} .err{{color:#b3261e}}</style>\
         </head><body>\n<h1>상담 허브</h1>\n{}<form method=\"post\" action=\"/login\">\
         <label for=\"name\">이름</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required>\
         <label for=\"password\">비밀번호</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button>로그인</button></form>\n</body></html>\n",
        if failed {
            "<p class=\"err\">이름 또는 비밀번호가 맞지 않습니다.</p>\n"
        } else {
            ""
        }
    )
}

pub(crate) async fn login_form() -> Response {
    page(200, login_page(false))
}

#[derive(Deserialize)]
pub(crate) struct Login {
    name: String,
    password: String,
}

pub(crate) async fn login(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let wants_json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let ok = {
        let Ok(_permit) = dash.login_gate.acquire().await else {
            return Response::text(503, "the hub is stopping\n");
        };
        let viewers = dash.viewers.clone();
        let (name, password) = (form.name.clone(), form.password);
        tokio::task::spawn_blocking(move || viewers.verify(&name, &password))
            .await
            .unwrap_or(false)
    };
    let shown: String = form.name.chars().take(64).collect();
    if !ok {
        dash.shared
            .counters
            .login_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(viewer = ?shown, "dashboard login refused");
        tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        return if wants_json {
            Response::text(401, "wrong name or password\n")
        } else {
            page(401, login_page(true))
        };
    }
    let Some(token) = dash.start_session(&form.name) else {
        return Response::text(500, "cannot make a session token\n");
    };
    dash.shared.counters.logins.fetch_add(1, Ordering::Relaxed);
    tracing::info!(viewer = %shown, "dashboard login");
    let cookie = session_cookie(&token, dash.session_ttl);
    if wants_json {
        let body = serde_json::json!({
            "token": token,
            "expires_in_s": dash.session_ttl.as_secs(),
        });
        json_bytes(serde_json::to_vec(&body).unwrap_or_default()).header("Set-Cookie", cookie)
    } else {
        Response::text(303, "logged in\n")
            .header("Location", "/")
            .header("Set-Cookie", cookie)
            .header("Cache-Control", "no-store")
    }
}

pub(crate) async fn logout(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    dash.end_session(&headers);
    Response::text(303, "logged out\n")
        .header("Location", "/login")
        .header(
            "Set-Cookie",
            format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
        )
        .header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sangdam_wire::headers::cookie_value;

    const T: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_come_from_bearer_or_the_cookie_and_must_be_well_formed() {
        assert_eq!(
            request_token(
                SESSION_COOKIE,
                Some(&format!("Bearer {T}")),
                std::iter::empty()
            ),
            Some(T)
        );
        assert_eq!(
            request_token(
                SESSION_COOKIE,
                Some(&format!("bearer  {T} ")),
                std::iter::empty()
            ),
            Some(T)
        );
        assert_eq!(
            request_token(SESSION_COOKIE, Some("Bearer abc"), std::iter::empty()),
            None
        );
        let cookie = format!("theme=dark; {SESSION_COOKIE}={T}; x=1");
        assert_eq!(
            request_token(SESSION_COOKIE, None, [cookie.as_str()].into_iter()),
            Some(T)
        );
        let quoted = format!("{SESSION_COOKIE}=\"{T}\"");
        assert_eq!(
            request_token(SESSION_COOKIE, None, [quoted.as_str()].into_iter()),
            Some(T)
        );
        let other = format!("not_{SESSION_COOKIE}={T}");
        assert_eq!(
            request_token(SESSION_COOKIE, None, [other.as_str()].into_iter()),
            None
        );
        assert_eq!(
            request_token(
                SESSION_COOKIE,
                Some("Basic Zm9vOmJhcg=="),
                [cookie.as_str()].into_iter()
            ),
            Some(T)
        );
        assert_eq!(cookie_value("a", "a"), None);
        assert_eq!(cookie_value("a=", "a"), Some(""));
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_same_site_strict() {
        let c = session_cookie(T, Duration::from_secs(60));
        for flag in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(c.split("; ").any(|p| p == flag), "{flag} missing in {c}");
        }
    }
}
