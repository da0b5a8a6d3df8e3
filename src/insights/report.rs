//! The HTML report page and its read-only local server.
//!
//! The page is one file: inline CSS and inline SVG, no scripts, nothing fetched from
//! elsewhere, so it opens from a USB stick on an office PC with no network.
//!
//! The server is plain HTTP/1.1 over `std::net` for a branch manager's browser on the
//! same desk or LAN: `GET /` (the page, rendered fresh), `GET /health`, 404 for other
//! paths, `GET /login` and `POST /login` (the login), `POST /logout`, 405 for other
//! methods. It is built to be left running on a small box: a request must arrive whole,
//! within [`MAX_REQUEST`] bytes of head and [`MAX_FORM`] of body and [`REQUEST_DEADLINE`],
//! every connection gets its own thread but at most [`MAX_CONNECTIONS`] at once (more are
//! answered 503), pages are rendered one at a time (rendering may mean refreshing the
//! insights, which takes the CPU), and the answer closes the connection. Binding, and so
//! the address, is the caller's choice.
//!
//! Checks, in this order:
//!
//! - A request whose `Host` header is not in its [`AllowedHosts`] (localhost, IP
//!   addresses, the names configured in `insights.allowed_hosts`) is answered 421, so
//!   that a web page on some other name that resolves to the box (DNS rebinding) cannot
//!   read the report through a browser on the office network. Requests without a `Host`
//!   header (not browsers) are answered.
//! - A `POST` whose `Origin` is not the `Host` it was sent to (a form on another site)
//!   is answered 403.
//! - Every path but `/login` needs a live session; without one a `GET` is sent to
//!   `/login` (303), whether the path exists or not. `POST /login` with the form fields
//!   `user` and `password` checks them against the [`Viewers`] (argon2id; an unknown name
//!   costs a check of a decoy hash, so timing does not tell names apart), then either
//!   sets the cookie [`SESSION_COOKIE`] (256 random bits, `HttpOnly; SameSite=Strict;
//!   Path=/`) and sends the browser to `/`, or answers 401 with the form after
//!   [`FAILED_LOGIN_DELAY`]. One password is checked at a time, the pause after a wrong
//!   one included, so guessing is slow however many connections try. Sessions live in
//!   memory (a restart logs everyone out), end [`SESSION_TTL`] after the login or at
//!   `POST /logout`, and at most [`MAX_SESSIONS`] are kept (a login beyond drops the
//!   oldest).
//!
//! The cookie has no `Secure` attribute: the server speaks plain HTTP, and browsers drop
//! a `Secure` cookie set over plain HTTP from any address but localhost, so a manager
//! on the LAN could never log in. The password and the cookie therefore cross the LAN
//! in clear; `insights.serve_addr` beyond localhost is for a trusted office network (or
//! an SSH tunnel to the box's localhost).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::charts;

/// Requests longer than this (request line and headers) are refused with 431.
pub const MAX_REQUEST: usize = 8 * 1024;
/// A request must arrive whole within this time, or it is answered 408.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; more are answered 503 at once.
pub const MAX_CONNECTIONS: usize = 8;
/// How often waiting loops look at the stop flag.
const POLL: Duration = Duration::from_millis(25);
/// Writing an answer may take this long (a client that does not read is dropped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
pub struct ReportPage {
    pub title: String,
    /// When the numbers were computed, as people read it.
    pub generated: String,
    /// Which calls the numbers cover, as people read it.
    pub period: String,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    /// A chart from [`charts`], shown above the fragment.
    pub svg: Option<String>,
    /// An HTML fragment, already escaped (e.g. from [`table`]).
    pub html: String,
}

/// HTML escaping for text and attribute values (the same rules as the charts' XML).
pub fn escape(s: &str) -> String {
    charts::esc(s)
}

/// An HTML table with every header and cell escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut o = String::from("<table><thead><tr>");
    for h in headers {
        o += &format!("<th>{}</th>", escape(h));
    }
    o += "</tr></thead><tbody>";
    for r in rows {
        o += "<tr>";
        for c in r {
            o += &format!("<td>{}</td>", escape(c));
        }
        o += "</tr>";
    }
    o + "</tbody></table>"
}

fn style() -> String {
    format!(
        "body{{font-family:{};margin:24px auto;padding:0 16px;color:#222;max-width:1000px;line-height:1.45}}\
h1{{font-size:22px;margin-bottom:4px}}h2{{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}}\
nav ol{{font-size:13px;columns:2;padding-left:20px}}nav a{{color:#0072b2;text-decoration:none}}\
table{{border-collapse:collapse;font-size:13px;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}}\
th{{background:#f3f3f3}}.meta,footer{{color:#666;font-size:13px}}footer{{margin-top:40px}}\
svg{{display:block;margin:10px 0;max-width:100%;height:auto}}\
@media print{{body{{margin:0;max-width:none}}nav{{display:none}}svg,table{{break-inside:avoid}}}}",
        charts::FONT
    )
}

/// The whole page: one HTML file with everything inline.
pub fn render(page: &ReportPage) -> String {
    let mut o = format!(
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{}</style></head><body><h1>{}</h1><p class=\"meta\">작성 (generated) {} · 기간 (period) {}</p>",
        escape(&page.title),
        style(),
        escape(&page.title),
        escape(&page.generated),
        escape(&page.period)
    );
    if page.sections.len() > 1 {
        o += "<nav><ol>";
        for (i, s) in page.sections.iter().enumerate() {
            o += &format!(
                "<li><a href=\"#s{}\">{}</a></li>",
                i + 1,
                escape(&s.heading)
            );
        }
        o += "</ol></nav>";
    }
    for (i, s) in page.sections.iter().enumerate() {
        o += &format!("<section id=\"s{}\"><h2>{}</h2>", i + 1, escape(&s.heading));
        if let Some(svg) = &s.svg {
            o += svg;
        }
        o += &s.html;
        o += "</section>";
    }
    o += "<footer>sangdam: computed on the recorder, offline; this page loads nothing from the network.</footer>";
    o + "</body></html>\n"
}

pub use sangdam_wire::headers::{host_name, AllowedHosts, HostName};

use super::viewers::Viewers;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sangdam_session";
/// A session ends this long after its login, whatever happens in between.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; a login beyond drops the expired ones, then the oldest.
pub const MAX_SESSIONS: usize = 64;
/// Largest login form body read (`Content-Length` beyond: 413, not read).
pub const MAX_FORM: usize = 4096;
/// A failed login is answered after this pause, during which no other password is
/// checked: guessing gets about one try a second, whatever the number of connections.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// The values of header `name` (any case) in the request head, in order.
fn header_all(head: &[u8], name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = String::from_utf8_lossy(line);
        let Some((n, value)) = line.split_once(':') else {
            continue;
        };
        if n.trim().eq_ignore_ascii_case(name) {
            found.push(value.trim().to_owned());
        }
    }
    found
}

/// The request's `Host` header: `Ok(None)` without one, `Err` for more than one.
fn host_header(head: &[u8]) -> Result<Option<String>, ()> {
    let mut all = header_all(head, "host");
    match all.len() {
        0 => Ok(None),
        1 => Ok(all.pop()),
        _ => Err(()),
    }
}

/// Whether a POST may come from where it says it comes from: without `Origin` (not a
/// browser, or an old one), or with one whose host is allowed and is the `Host` it was
/// sent to. A form on another site (or another box on the LAN) is refused.
fn origin_ok(head: &[u8], host: Option<&str>, hosts: &AllowedHosts) -> bool {
    let origins = header_all(head, "origin");
    match &origins[..] {
        [] => true,
        [origin] => {
            let Some((scheme, authority)) = origin.split_once("://") else {
                return false; // "null" and the like
            };
            matches!(scheme, "http" | "https")
                && hosts.allows(authority)
                && host.is_none_or(|h| h.eq_ignore_ascii_case(authority))
        }
        _ => false,
    }
}

struct Session {
    viewer: String,
    created: Instant,
}

/// The live sessions, in memory (a restart logs everyone out). Keyed by the SHA-256 of
/// the token: the tokens themselves are not kept. `clock` is `Instant::now` except in
/// tests.
pub(crate) struct Sessions {
    ttl: Duration,
    max: usize,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
    map: Mutex<std::collections::HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub(crate) fn new(
        ttl: Duration,
        max: usize,
        clock: Box<dyn Fn() -> Instant + Send + Sync>,
    ) -> Sessions {
        Sessions {
            ttl,
            max: max.max(1),
            clock,
            map: Mutex::new(Default::default()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `viewer`: its token, 64 hex digits (256 random bits).
    fn start(&self, viewer: &str) -> std::io::Result<String> {
        let token = sangdam_wire::hex(&super::viewers::random_bytes::<32>()?);
        let now = (self.clock)();
        let mut map = self.map();
        if map.len() >= self.max {
            let ttl = self.ttl;
            map.retain(|_, s| now.saturating_duration_since(s.created) < ttl);
        }
        while map.len() >= self.max {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(
            sangdam_wire::body_digest(token.as_bytes()),
            Session {
                viewer: viewer.to_owned(),
                created: now,
            },
        );
        Ok(token)
    }

    /// The viewer of a live session with this token (an expired one is dropped).
    fn viewer(&self, token: &str) -> Option<String> {
        let id = sangdam_wire::body_digest(token.as_bytes());
        let now = (self.clock)();
        let mut map = self.map();
        let s = map.get(&id)?;
        if now.saturating_duration_since(s.created) < self.ttl {
            return Some(s.viewer.clone());
        }
        map.remove(&id);
        None
    }

    fn end(&self, token: &str) {
        self.map()
            .remove(&sangdam_wire::body_digest(token.as_bytes()));
    }
}

/// The viewers and their sessions: what a request's login is checked against.
pub(crate) struct Login {
    viewers: Viewers,
    sessions: Sessions,
    /// Held while a password is checked, and through the pause after a wrong one.
    gate: Mutex<()>,
}

impl Login {
    pub(crate) fn new(viewers: Viewers, sessions: Sessions) -> Login {
        Login {
            viewers,
            sessions,
            gate: Mutex::new(()),
        }
    }

    fn with_defaults(viewers: Viewers) -> Login {
        Login::new(
            viewers,
            Sessions::new(SESSION_TTL, MAX_SESSIONS, Box::new(Instant::now)),
        )
    }

    /// The session token the request's cookie carries, if well formed.
    fn token(head: &[u8]) -> Option<String> {
        let cookies = header_all(head, "cookie");
        sangdam_wire::headers::request_token(
            SESSION_COOKIE,
            None,
            cookies.iter().map(|c| c.as_str()),
        )
        .map(str::to_owned)
    }

    /// The viewer whose live session the request carries.
    fn viewer(&self, head: &[u8]) -> Option<String> {
        self.sessions.viewer(&Login::token(head)?)
    }
}

/// The limits of [`serve`], separate so that tests can use short ones.
#[derive(Debug, Clone, Copy)]
struct Limits {
    deadline: Duration,
    connections: usize,
    failed_login_delay: Duration,
}

const LIMITS: Limits = Limits {
    deadline: REQUEST_DEADLINE,
    connections: MAX_CONNECTIONS,
    failed_login_delay: FAILED_LOGIN_DELAY,
};

/// Serves the page on `listener` to the `viewers` who log in, until `stop` is set, then
/// waits for the connections in progress (each ends within [`REQUEST_DEADLINE`] plus a
/// write timeout) and returns. `page` is called once per page request of a logged-in
/// viewer, never twice at the same time; its error is answered 500 with the message.
/// Only the default [`AllowedHosts`] are answered; [`serve_allowing`] takes more. With
/// no viewers it does not start (nobody could read the page): an `InvalidInput` error.
pub fn serve(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
    viewers: Viewers,
) -> std::io::Result<()> {
    serve_with(
        listener,
        page,
        stop,
        LIMITS,
        AllowedHosts::default(),
        Login::with_defaults(viewers),
    )
}

/// [`serve`], answering the `Host` values `hosts` allows (421 to others).
pub fn serve_allowing(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
    hosts: AllowedHosts,
    viewers: Viewers,
) -> std::io::Result<()> {
    serve_with(
        listener,
        page,
        stop,
        LIMITS,
        hosts,
        Login::with_defaults(viewers),
    )
}

fn serve_with(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
    limits: Limits,
    hosts: AllowedHosts,
    login: Login,
) -> std::io::Result<()> {
    if login.viewers.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "no viewers, so nobody could log in: add one with `sangdam add-viewer NAME`",
        ));
    }
    listener.set_nonblocking(true)?;
    let hosts = Arc::new(hosts);
    let login = Arc::new(login);
    let page = Arc::new(Mutex::new(page));
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        workers.retain(|w| !w.is_finished());
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "report server: accept failed");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        if workers.len() >= limits.connections {
            busy(stream);
            continue;
        }
        let (page, stop2, hosts, login) =
            (page.clone(), stop.clone(), hosts.clone(), login.clone());
        let spawned = std::thread::Builder::new()
            .name("report-http".into())
            .spawn(move || {
                handle(
                    stream,
                    &|| {
                        let f = page.lock().unwrap_or_else(|e| e.into_inner());
                        catch_unwind(AssertUnwindSafe(&*f))
                            .unwrap_or_else(|_| Err("the report panicked".into()))
                    },
                    &stop2,
                    &limits,
                    &hosts,
                    &login,
                )
            });
        match spawned {
            Ok(w) => workers.push(w),
            Err(e) => tracing::warn!(error = %e, "report server: cannot start a thread"),
        }
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// Answers 503 without reading the request: too many connections are open.
fn busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    respond(
        &mut stream,
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
        "busy, try again\n",
        &["Retry-After: 1"],
        true,
    );
    linger(&mut stream, Duration::from_millis(100));
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
    extra: &[&str],
    with_body: bool,
) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n",
        body.len()
    );
    for h in extra {
        head += h;
        head += "\r\n";
    }
    head += "\r\n";
    if with_body {
        head += body;
    }
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.flush();
}

/// Ends the connection gently: stop sending, then read and drop what the client still
/// sends for a moment. Closing a socket with unread input makes the kernel reset the
/// connection, and the client could lose the answer it has not read yet.
fn linger(stream: &mut TcpStream, time: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let end = Instant::now() + time;
    let _ = stream.set_read_timeout(Some(POLL));
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 && Instant::now() < end {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => left = left.saturating_sub(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

/// Where the request head ends (after an empty line), if it has.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the reading of a request came to.
enum Arrival {
    /// A whole head (request line and headers), and the bytes read after it (the start
    /// of a body).
    Head(Vec<u8>, Vec<u8>),
    TooLarge,
    TooSlow,
    /// Closed, reset or stopped: nothing to answer.
    Gone,
}

fn read_head(stream: &mut TcpStream, stop: &AtomicBool, end: Instant) -> Arrival {
    let _ = stream.set_read_timeout(Some(POLL));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(n) = head_end(&buf) {
            let rest = buf.split_off(n);
            return Arrival::Head(buf, rest);
        }
        if buf.len() > MAX_REQUEST {
            return Arrival::TooLarge;
        }
        let room = (MAX_REQUEST + 1 - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            // A client may send a request line and close its side without the empty
            // line; answer what came.
            Ok(0) if buf.is_empty() => return Arrival::Gone,
            Ok(0) => return Arrival::Head(buf, Vec::new()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) {
                    return Arrival::Gone;
                }
                if Instant::now() >= end {
                    return Arrival::TooSlow;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Arrival::Gone,
        }
    }
}

/// Reads a request body of at most [`MAX_FORM`] bytes (`started`: what came with the
/// head), by `end`. The error is the status and message to answer.
fn read_body(
    stream: &mut TcpStream,
    head: &[u8],
    mut started: Vec<u8>,
    stop: &AtomicBool,
    end: Instant,
) -> Result<Vec<u8>, (&'static str, &'static str)> {
    if !header_all(head, "transfer-encoding").is_empty() {
        return Err(("400 Bad Request", "send the form with Content-Length\n"));
    }
    let lengths = header_all(head, "content-length");
    let len: usize = match &lengths[..] {
        [] => return Err(("411 Length Required", "send Content-Length\n")),
        [one] => match one.parse() {
            Ok(n) => n,
            Err(_) => return Err(("400 Bad Request", "bad Content-Length\n")),
        },
        _ => return Err(("400 Bad Request", "more than one Content-Length\n")),
    };
    if len > MAX_FORM {
        return Err(("413 Content Too Large", "form too large\n"));
    }
    let mut chunk = [0u8; 1024];
    while started.len() < len {
        let room = (len - started.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(("400 Bad Request", "the form ended early\n")),
            Ok(n) => started.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) || Instant::now() >= end {
                    return Err(("408 Request Timeout", "too slow\n"));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(("400 Bad Request", "the form ended early\n")),
        }
    }
    started.truncate(len);
    Ok(started)
}

/// `application/x-www-form-urlencoded` decoding of one name or value (`+` is a space).
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The `user` and `password` fields of a login form; `None` when it cannot be decoded
/// or names a field twice. Missing fields are empty (and so a failed login).
fn login_fields(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let (mut user, mut password) = (None, None);
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match form_decode(name)?.as_str() {
            "user" => &mut user,
            "password" => &mut password,
            _ => continue,
        };
        if slot.replace(form_decode(value)?).is_some() {
            return None;
        }
    }
    Some((user.unwrap_or_default(), password.unwrap_or_default()))
}

/// The login page (with the "wrong name or password" line after a failed try).
fn login_page(failed: bool) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>sangdam — 로그인 (log in)</title>\
<style>body{{font-family:{};max-width:360px;margin:64px auto;padding:0 16px;color:#222}}label{{display:block;margin:12px 0 4px}}input{{width:100%;padding:6px;box-sizing:border-box}}button{{margin-top:16px;padding:6px 16px}}.err{{color:#b3261e}}</style></head>\
<body><h1>sangdam</h1>{}<form method=\"post\" action=\"/login\">\
<label for=\"user\">이름 (name)</label><input id=\"user\" name=\"user\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">비밀번호 (password)</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button>로그인 (log in)</button></form></body></html>\n",
        charts::FONT,
        if failed {
            "<p class=\"err\">이름 또는 비밀번호가 맞지 않습니다 (wrong name or password).</p>"
        } else {
            ""
        }
    )
}

/// The report page with the viewer's name and a log-out button at the top.
fn with_logout(html: &str, viewer: &str) -> String {
    let bar = format!(
        "<body><form method=\"post\" action=\"/logout\" style=\"float:right;font-size:13px\">{} <button>로그아웃 (log out)</button></form>",
        escape(viewer)
    );
    html.replacen("<body>", &bar, 1)
}

/// Sleeps `time`, or until `stop` is set.
fn pause(time: Duration, stop: &AtomicBool) {
    let end = Instant::now() + time;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep(POLL.min(end - now));
    }
}

/// `POST /login`: checks the form's name and password and starts a session.
fn post_login(
    stream: &mut TcpStream,
    head: &[u8],
    started: Vec<u8>,
    stop: &AtomicBool,
    end: Instant,
    limits: &Limits,
    login: &Login,
) {
    let text = "text/plain; charset=utf-8";
    let form_type = header_all(head, "content-type").first().is_some_and(|t| {
        t.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form_type {
        respond(
            stream,
            "415 Unsupported Media Type",
            text,
            "send the login form (application/x-www-form-urlencoded)\n",
            &[],
            true,
        );
        return;
    }
    let body = match read_body(stream, head, started, stop, end) {
        Ok(b) => b,
        Err((status, message)) => {
            respond(stream, status, text, message, &[], true);
            return;
        }
    };
    let Some((user, password)) = login_fields(&body) else {
        respond(stream, "400 Bad Request", text, "bad form\n", &[], true);
        return;
    };
    let shown: String = user.chars().take(64).collect();
    let ok = {
        let _gate = login.gate.lock().unwrap_or_else(|p| p.into_inner());
        let ok = login.viewers.verify(&user, &password);
        if !ok {
            pause(limits.failed_login_delay, stop);
        }
        ok
    };
    drop(password);
    if !ok {
        tracing::warn!(viewer = ?shown, "report login refused: wrong name or password");
        respond(
            stream,
            "401 Unauthorized",
            "text/html; charset=utf-8",
            &login_page(true),
            &[],
            true,
        );
        return;
    }
    match login.sessions.start(&user) {
        Ok(token) => {
            tracing::info!(viewer = %shown, "report login");
            let cookie = format!(
                "Set-Cookie: {SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict",
                login.sessions.ttl.as_secs()
            );
            respond(
                stream,
                "303 See Other",
                text,
                "logged in\n",
                &["Location: /", &cookie],
                true,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "report login: no randomness for a session token");
            respond(
                stream,
                "500 Internal Server Error",
                text,
                "cannot make a session\n",
                &[],
                true,
            );
        }
    }
}

fn handle(
    mut stream: TcpStream,
    page: &dyn Fn() -> Result<String, String>,
    stop: &AtomicBool,
    limits: &Limits,
    hosts: &AllowedHosts,
    login: &Login,
) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let text = "text/plain; charset=utf-8";
    let end = Instant::now() + limits.deadline;
    let (head, started) = match read_head(&mut stream, stop, end) {
        Arrival::Head(head, started) => (head, started),
        Arrival::TooLarge => {
            respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                text,
                "request too large\n",
                &[],
                true,
            );
            linger(&mut stream, Duration::from_millis(500));
            return;
        }
        Arrival::TooSlow => {
            respond(
                &mut stream,
                "408 Request Timeout",
                text,
                "too slow\n",
                &[],
                true,
            );
            linger(&mut stream, Duration::from_millis(100));
            return;
        }
        Arrival::Gone => return,
    };
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    let (method, target) = match parts[..] {
        [method, target, version]
            if !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_uppercase())
                && target.starts_with('/')
                && version.starts_with("HTTP/1.") =>
        {
            (method, target)
        }
        _ => {
            respond(
                &mut stream,
                "400 Bad Request",
                text,
                "bad request\n",
                &[],
                true,
            );
            linger(&mut stream, Duration::from_millis(100));
            return;
        }
    };
    // DNS rebinding: a browser names the host it thinks it talks to. Checked first, for
    // every path.
    let host = match host_header(&head) {
        Ok(h) if h.as_deref().is_none_or(|h| hosts.allows(h)) => h,
        _ => {
            respond(
                &mut stream,
                "421 Misdirected Request",
                text,
                "this page answers only to localhost, IP addresses and the names in insights.allowed_hosts\n",
                &[],
                true,
            );
            linger(&mut stream, Duration::from_millis(100));
            return;
        }
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    let with_body = method != "HEAD";
    match method {
        "GET" | "HEAD" => {}
        "POST" => {
            // A form posted from another site: refused before anything is read.
            if !origin_ok(&head, host.as_deref(), hosts) {
                respond(
                    &mut stream,
                    "403 Forbidden",
                    text,
                    "cross-origin form refused\n",
                    &[],
                    true,
                );
            } else if path == "/login" {
                post_login(&mut stream, &head, started, stop, end, limits, login);
            } else if path == "/logout" {
                if let Some(token) = Login::token(&head) {
                    login.sessions.end(&token);
                }
                respond(
                    &mut stream,
                    "303 See Other",
                    text,
                    "logged out\n",
                    &[
                        "Location: /login",
                        &format!("Set-Cookie: {SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
                    ],
                    true,
                );
            } else {
                respond(
                    &mut stream,
                    "405 Method Not Allowed",
                    text,
                    "read-only: only /login and /logout take a POST\n",
                    &["Allow: GET, HEAD"],
                    true,
                );
            }
            linger(&mut stream, Duration::from_millis(500));
            return;
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                text,
                "read-only: GET, and POST to /login and /logout\n",
                &["Allow: GET, HEAD, POST"],
                true,
            );
            linger(&mut stream, Duration::from_millis(500));
            return;
        }
    }
    if path == "/login" {
        respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            &login_page(false),
            &[],
            with_body,
        );
        linger(&mut stream, Duration::from_millis(100));
        return;
    }
    // Everything else needs a live session; without one, not even whether the path
    // exists is told.
    let Some(viewer) = login.viewer(&head) else {
        respond(
            &mut stream,
            "303 See Other",
            text,
            "log in first: /login\n",
            &["Location: /login"],
            with_body,
        );
        linger(&mut stream, Duration::from_millis(100));
        return;
    };
    match path {
        "/" | "/index.html" => match page() {
            Ok(html) => respond(
                &mut stream,
                "200 OK",
                "text/html; charset=utf-8",
                &with_logout(&html, &viewer),
                &[],
                with_body,
            ),
            Err(e) => respond(
                &mut stream,
                "500 Internal Server Error",
                text,
                &format!("the report cannot be made: {e}\n"),
                &[],
                with_body,
            ),
        },
        "/health" => respond(&mut stream, "200 OK", text, "ok\n", &[], with_body),
        _ => respond(
            &mut stream,
            "404 Not Found",
            text,
            "not found\n",
            &[],
            with_body,
        ),
    }
    linger(&mut stream, Duration::from_millis(100));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn page() -> ReportPage {
        ReportPage {
            title: "지점 <보고서>".into(),
            generated: "2026-11-24 & 오후".into(),
            period: "\"all\"".into(),
            sections: vec![
                Section {
                    heading: "키워드 <1>".into(),
                    svg: Some(charts::bar_chart(
                        "막대",
                        &[("한도".into(), 3.0)],
                        charts::NEGATIVE,
                        400,
                    )),
                    html: table(&["단어", "수"], &[vec!["한도&".into(), "3".into()]]),
                },
                Section {
                    heading: "추천".into(),
                    svg: None,
                    html: "<p>없음</p>".into(),
                },
            ],
        }
    }

    #[test]
    fn escape_covers_the_html_specials() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("상담 평범"), "상담 평범");
    }

    #[test]
    fn tables_escape_every_cell() {
        let t = table(&["<h>"], &[vec!["<td>".into()], vec!["a&b".into()]]);
        assert_eq!(
            t,
            "<table><thead><tr><th>&lt;h&gt;</th></tr></thead><tbody><tr><td>&lt;td&gt;</td></tr><tr><td>a&amp;b</td></tr></tbody></table>"
        );
    }

    #[test]
    fn the_page_holds_every_section_escaped_and_nothing_external() {
        let p = page();
        let html = render(&p);
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">")
        );
        assert!(html.contains("<title>지점 &lt;보고서&gt;</title>"));
        assert!(html.contains("<h1>지점 &lt;보고서&gt;</h1>"));
        assert!(html.contains("2026-11-24 &amp; 오후") && html.contains("&quot;all&quot;"));
        let first = html
            .find("<h2>키워드 &lt;1&gt;</h2>")
            .expect("first section");
        let second = html.find("<h2>추천</h2>").expect("second section");
        assert!(first < second);
        assert!(html.contains(p.sections[0].svg.as_deref().unwrap()));
        assert!(html.contains("<td>한도&amp;</td>") && html.contains("<p>없음</p>"));
        assert!(html.contains("<a href=\"#s2\">추천</a>"));
        assert!(html.contains(charts::FONT));
        // Nothing to fetch: no scripts, links, images or URLs other than the SVG
        // namespace name (which is never fetched).
        let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for bad in [
            "<script", "<link", "<img", "src=", "url(", "http:", "https:", "@import",
        ] {
            assert!(!without_ns.contains(bad), "{bad}");
        }
        assert!(render(&ReportPage {
            sections: vec![],
            ..p
        })
        .contains("</body></html>"));
    }

    /// Sends `request` and reads the answer until the server closes.
    fn ask(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(request);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn body(answer: &str) -> &str {
        answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
    }

    /// The answer's head (status line and headers).
    fn head_of(answer: &str) -> &str {
        answer
            .split_once("\r\n\r\n")
            .map(|(h, _)| h)
            .unwrap_or(answer)
    }

    const USER: &str = "kim.manager";
    const PASSWORD: &str = "correct horse battery";
    /// What only the report page shows (the login form has none of it).
    const PAGE_ONLY: [&str; 4] = ["<svg", "한도", "지점", "키워드"];
    /// The failed-login pause of the test servers.
    const TEST_DELAY: Duration = Duration::from_millis(200);

    fn viewers() -> Viewers {
        static V: std::sync::OnceLock<Viewers> = std::sync::OnceLock::new();
        V.get_or_init(|| {
            let mut v = Viewers::new();
            v.insert(USER, PASSWORD).unwrap();
            v.insert("lee", "another long secret").unwrap();
            v
        })
        .clone()
    }

    /// Form encoding of every byte but letters and digits.
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn login_request(user: &str, password: &str) -> Vec<u8> {
        post(
            "/login",
            "",
            &format!("user={}&password={}", enc(user), enc(password)),
        )
    }

    /// The session token an answer sets, if it sets one.
    fn set_token(answer: &str) -> Option<String> {
        head_of(answer)
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .and_then(|c| c.strip_prefix(&format!("{SESSION_COOKIE}=")))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|t| !t.is_empty())
    }

    fn get(path: &str, token: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: theme=dark; {SESSION_COOKIE}={token}\r\n\r\n")
            .into_bytes()
    }

    struct Server {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<std::io::Result<()>>>,
        /// How far the server's clock is ahead of the real one.
        ahead: Arc<Mutex<Duration>>,
    }

    impl Server {
        fn start(
            page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
            limits: Option<Limits>,
        ) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let ahead = Arc::new(Mutex::new(Duration::ZERO));
            let a2 = ahead.clone();
            let clock = Box::new(move || Instant::now() + *a2.lock().unwrap());
            let login = Login::new(viewers(), Sessions::new(SESSION_TTL, MAX_SESSIONS, clock));
            let limits = limits.unwrap_or(Limits {
                failed_login_delay: TEST_DELAY,
                ..LIMITS
            });
            let s2 = stop.clone();
            let thread = std::thread::spawn(move || {
                serve_with(listener, page, s2, limits, AllowedHosts::default(), login)
            });
            Server {
                addr,
                stop,
                thread: Some(thread),
                ahead,
            }
        }

        /// Logs in as [`USER`]; the session token.
        fn login(&self) -> String {
            let a = ask(self.addr, &login_request(USER, PASSWORD));
            assert!(a.starts_with("HTTP/1.1 303 "), "{a}");
            set_token(&a).unwrap_or_else(|| panic!("no cookie: {a}"))
        }

        fn advance(&self, by: Duration) {
            *self.ahead.lock().unwrap() += by;
        }

        /// Sets the flag and returns how long `serve` took to return.
        fn stop(mut self) -> Duration {
            let t = Instant::now();
            self.stop.store(true, Ordering::Relaxed);
            self.thread.take().unwrap().join().unwrap().unwrap();
            t.elapsed()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_server_answers_and_refuses() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c2 = calls.clone();
        let server = Server::start(
            move || {
                c2.fetch_add(1, Ordering::Relaxed);
                Ok(render(&page()))
            },
            None,
        );
        let addr = server.addr;
        let token = server.login();
        let cookie = format!("Cookie: {SESSION_COOKIE}={token}\r\n");
        let expected = with_logout(&render(&page()), USER);
        let ok = ask(addr, &get("/", &token));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert_eq!(body(&ok), expected);
        assert!(ok.contains(&format!("Content-Length: {}\r\n", expected.len())));
        // The viewer's name and a log-out button on top of the page.
        assert!(expected.contains("<body><form method=\"post\" action=\"/logout\""));
        assert!(expected.contains("kim.manager <button>"));
        let index = ask(
            addr,
            format!("GET /index.html?x=1 HTTP/1.0\r\n{cookie}\r\n").as_bytes(),
        );
        assert_eq!(body(&index), expected);
        // Rendered fresh for every request.
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // HEAD: the same head, no body.
        let head = ask(addr, format!("HEAD / HTTP/1.1\r\n{cookie}\r\n").as_bytes());
        assert!(
            head.starts_with("HTTP/1.1 200") && body(&head).is_empty(),
            "{head}"
        );
        let health = ask(addr, &get("/health", &token));
        assert!(health.starts_with("HTTP/1.1 200") && body(&health) == "ok\n");
        // Bare newlines are tolerated.
        let bare = format!("GET /health HTTP/1.1\n{}\n\n", cookie.trim_end());
        assert!(ask(addr, bare.as_bytes()).starts_with("HTTP/1.1 200"));
        for path in [
            "/etc/passwd",
            "/../index.html",
            "/index.html/",
            "/favicon.ico",
        ] {
            let a = ask(addr, &get(path, &token));
            assert!(a.starts_with("HTTP/1.1 404"), "{path}: {a}");
        }
        for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
            let a = ask(
                addr,
                format!("{method} / HTTP/1.1\r\n{cookie}Content-Length: 5\r\n\r\nhello").as_bytes(),
            );
            assert!(
                a.starts_with("HTTP/1.1 405") && a.contains("Allow: GET, HEAD, POST\r\n"),
                "{a}"
            );
        }
        for path in ["/", "/health", "/nope"] {
            let a = ask(addr, &post(path, &cookie, "x=1"));
            assert!(
                a.starts_with("HTTP/1.1 405") && a.contains("Allow: GET, HEAD\r\n"),
                "{path}: {a}"
            );
        }
        for garbage in [
            &b"\x00\xff garbage\r\n\r\n"[..],
            b"\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET / SMTP/1.0\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            "GET /한글 HTTP/1.1\r\n\r\n".as_bytes(),
        ] {
            let a = ask(addr, garbage);
            assert!(
                a.starts_with("HTTP/1.1 400") || a.starts_with("HTTP/1.1 303"),
                "{garbage:?}: {a}"
            );
        }
        // A request line without the empty line, then the client closes its side.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /login HTTP/1.1\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        // Connect and close without a byte: nothing breaks.
        drop(TcpStream::connect(addr).unwrap());
        // Over 8 KiB: 431, and the answer is readable although the request was not read.
        // (Up to 60 KB: the server drains that much before it closes, see `linger`.)
        for size in [MAX_REQUEST + 1, 20_000, 60_000] {
            let mut big = b"GET /".to_vec();
            big.resize(size, b'a');
            let a = ask(addr, &big);
            assert!(a.starts_with("HTTP/1.1 431"), "{size}: {a:?}");
        }
        // Just under the limit is fine.
        let mut fits = format!("GET /health HTTP/1.1\r\n{cookie}X-Pad: ").into_bytes();
        fits.resize(MAX_REQUEST - 4, b'p');
        fits.extend_from_slice(b"\r\n\r\n");
        assert!(ask(addr, &fits).starts_with("HTTP/1.1 200"));
        assert!(server.stop() < Duration::from_secs(2));
    }

    #[test]
    fn without_a_live_session_nothing_but_the_login_form_is_shown() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c2 = calls.clone();
        let server = Server::start(
            move || {
                c2.fetch_add(1, Ordering::Relaxed);
                Ok(render(&page()))
            },
            None,
        );
        let addr = server.addr;
        let refused = |a: &str, what: &str| {
            assert!(
                a.starts_with("HTTP/1.1 303 ") && a.contains("\r\nLocation: /login\r\n"),
                "{what}: {a}"
            );
            for only in PAGE_ONLY {
                assert!(!a.contains(only), "{what}: the page was served: {a}");
            }
        };
        // No cookie, on every path and both read methods: sent to the login.
        for path in ["/", "/index.html", "/health", "/nope", "/login/"] {
            for method in ["GET", "HEAD"] {
                let a = ask(
                    addr,
                    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
                );
                refused(&a, &format!("{method} {path}"));
            }
        }
        // Forged, malformed, stale-looking or misplaced tokens.
        let random = sangdam_wire::hex(&crate::insights::viewers::random_bytes::<32>().unwrap());
        for token in [random.as_str(), "abc", "", &"0".repeat(64), &"g".repeat(64)] {
            refused(&ask(addr, &get("/", token)), token);
        }
        let a = ask(
            addr,
            format!("GET / HTTP/1.1\r\nAuthorization: Bearer {random}\r\n\r\n").as_bytes(),
        );
        refused(&a, "bearer");
        // The form itself is open.
        let form = ask(addr, b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(form.starts_with("HTTP/1.1 200 "), "{form}");
        for part in [
            "<form method=\"post\" action=\"/login\">",
            "name=\"user\"",
            "name=\"password\" type=\"password\"",
        ] {
            assert!(body(&form).contains(part), "{part}: {form}");
        }
        assert!(!form.contains("Set-Cookie"));
        // Wrong password, unknown name, empty fields: one answer, 401 with the form, no
        // cookie, after the pause.
        for (user, password) in [
            (USER, "correct horse batterY"),
            ("nobody", PASSWORD),
            (USER, ""),
            ("", ""),
            ("lee", PASSWORD),
        ] {
            let t = Instant::now();
            let a = ask(addr, &login_request(user, password));
            assert!(t.elapsed() >= TEST_DELAY, "{user}: {:?}", t.elapsed());
            assert!(a.starts_with("HTTP/1.1 401 "), "{user}/{password}: {a}");
            assert!(!a.contains("Set-Cookie") && set_token(&a).is_none(), "{a}");
            assert!(body(&a).contains("wrong name or password"), "{a}");
            assert!(!a.contains(password) || password.is_empty(), "{a}");
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0, "the page was rendered");
        // The right password: a strict, HttpOnly cookie, and the way to the page.
        let a = ask(addr, &login_request(USER, PASSWORD));
        assert!(
            a.starts_with("HTTP/1.1 303 ") && a.contains("\r\nLocation: /\r\n"),
            "{a}"
        );
        let cookie = head_of(&a)
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .unwrap()
            .to_owned();
        let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
        for needed in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(attributes.contains(&needed), "{needed}: {cookie}");
        }
        // Plain HTTP: see the module doc for why there is no `Secure`.
        assert!(!attributes.contains(&"Secure"), "{cookie}");
        let token = set_token(&a).unwrap();
        assert!(sangdam_wire::headers::valid_token(&token), "{token}");
        let page = ask(addr, &get("/", &token));
        assert!(
            page.starts_with("HTTP/1.1 200 ") && page.contains("<svg"),
            "{page}"
        );
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        // Another login gets another token; a plus for a space decodes too.
        let other = ask(
            addr,
            &post(
                "/login",
                "",
                "password=correct+horse+battery&user=kim.manager&x=1",
            ),
        );
        let other = set_token(&other).unwrap_or_else(|| panic!("{other}"));
        assert_ne!(other, token);
        // Logging out ends that session and clears the cookie; the other one lives on.
        let out = ask(
            addr,
            &post(
                "/logout",
                &format!("Cookie: {SESSION_COOKIE}={token}\r\n"),
                "",
            ),
        );
        assert!(
            out.starts_with("HTTP/1.1 303 ") && out.contains("\r\nLocation: /login\r\n"),
            "{out}"
        );
        assert!(out.contains(&format!("Set-Cookie: {SESSION_COOKIE}=; Path=/; Max-Age=0")));
        refused(&ask(addr, &get("/", &token)), "after logout");
        assert!(ask(addr, &get("/", &other)).starts_with("HTTP/1.1 200 "));
        server.stop();
    }

    #[test]
    fn login_posts_are_checked_before_the_password() {
        let limits = Limits {
            deadline: Duration::from_secs(1),
            failed_login_delay: TEST_DELAY,
            ..LIMITS
        };
        let server = Server::start(|| Ok(render(&page())), Some(limits));
        let addr = server.addr;
        let port = addr.port();
        let form = format!("user={USER}&password={}", enc(PASSWORD));
        let with = |headers: &str| {
            let a = ask(addr, &post("/login", headers, &form));
            (a.lines().next().unwrap_or("").to_owned(), set_token(&a))
        };
        // A form posted from another site, or another box: 403, and no session.
        for origin in [
            "http://evil.example".to_owned(),
            format!("http://evil.example:{port}"),
            "null".to_owned(),
            format!("http://127.0.0.1:{port}"),
            format!("ftp://localhost:{port}"),
            format!("http://localhost:{port}/"),
        ] {
            let a = ask(
                addr,
                format!(
                    "POST /login HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: {origin}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
                    form.len()
                )
                .as_bytes(),
            );
            assert!(a.starts_with("HTTP/1.1 403 "), "{origin}: {a}");
            assert!(set_token(&a).is_none());
        }
        // The same origin as the Host: fine (and without Host, any allowed one).
        let a = ask(
            addr,
            format!(
                "POST /login HTTP/1.1\r\nHost: LOCALHOST:{port}\r\nOrigin: http://localhost:{port}\r\nContent-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            )
            .as_bytes(),
        );
        assert!(
            a.starts_with("HTTP/1.1 303 ") && set_token(&a).is_some(),
            "{a}"
        );
        // Logging out from another site is refused too.
        let a = ask(
            addr,
            &post("/logout", "Origin: http://evil.example\r\n", ""),
        );
        assert!(a.starts_with("HTTP/1.1 403 "), "{a}");
        // The Host check comes first, for the login as for the page.
        let a = ask(
            addr,
            format!(
                "POST /login HTTP/1.1\r\nHost: evil.example\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            )
            .as_bytes(),
        );
        assert!(a.starts_with("HTTP/1.1 421 "), "{a}");
        assert!(
            ask(addr, b"GET /login HTTP/1.1\r\nHost: evil.example\r\n\r\n")
                .starts_with("HTTP/1.1 421 ")
        );
        // Bodies: bounded, with a length, of the form's type.
        let (status, token) = with(&format!("X-Pad: {}\r\n", "p".repeat(10)));
        assert!(status.contains("303") && token.is_some(), "{status}");
        let big = ask(
            addr,
            format!(
                "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                MAX_FORM + 1
            )
            .as_bytes(),
        );
        assert!(big.starts_with("HTTP/1.1 413 "), "{big}");
        for (request, status) in [
            (
                format!("POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n{form}"),
                "411",
            ),
            (
                format!("POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{form}\r\n0\r\n\r\n", form.len()),
                "400",
            ),
            (
                format!("POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{form}", form.len()),
                "415",
            ),
            (
                format!("POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{form}"),
                "400",
            ),
            (
                "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\nuser=%zz&password=x".to_owned(),
                "400",
            ),
            (
                "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\nuser=a&user=b&passw".to_owned(),
                "400",
            ),
        ] {
            let a = ask(addr, request.as_bytes());
            assert!(a.starts_with(&format!("HTTP/1.1 {status} ")), "{request:?}: {a}");
            assert!(set_token(&a).is_none());
        }
        // A body that stops coming is cut off at the deadline.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = Instant::now();
        s.write_all(b"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\nuser=kim")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        assert!(t.elapsed() < limits.deadline + Duration::from_secs(2));
        server.stop();
    }

    #[test]
    fn sessions_expire_twelve_hours_after_the_login() {
        let server = Server::start(|| Ok(render(&page())), None);
        let token = server.login();
        assert!(ask(server.addr, &get("/", &token)).starts_with("HTTP/1.1 200 "));
        server.advance(SESSION_TTL - Duration::from_secs(60));
        assert!(ask(server.addr, &get("/", &token)).starts_with("HTTP/1.1 200 "));
        server.advance(Duration::from_secs(61));
        let a = ask(server.addr, &get("/", &token));
        assert!(a.starts_with("HTTP/1.1 303 ") && !a.contains("<svg"), "{a}");
        // Gone for good, even if the clock went back.
        *server.ahead.lock().unwrap() = Duration::ZERO;
        assert!(ask(server.addr, &get("/", &token)).starts_with("HTTP/1.1 303 "));
        // A new login works.
        let token = server.login();
        assert!(ask(server.addr, &get("/", &token)).starts_with("HTTP/1.1 200 "));
        server.stop();
    }

    #[test]
    fn sessions_are_bounded_in_number() {
        let now = Arc::new(Mutex::new(Instant::now()));
        let n2 = now.clone();
        let sessions = Sessions::new(
            Duration::from_secs(100),
            3,
            Box::new(move || *n2.lock().unwrap()),
        );
        let tick = |s: u64| *now.lock().unwrap() += Duration::from_secs(s);
        let a = sessions.start("a").unwrap();
        tick(1);
        let b = sessions.start("b").unwrap();
        tick(1);
        let c = sessions.start("c").unwrap();
        tick(1);
        // Full: the oldest goes.
        let d = sessions.start("d").unwrap();
        assert_eq!(sessions.viewer(&a), None);
        assert_eq!(sessions.viewer(&b).as_deref(), Some("b"));
        assert_eq!(sessions.viewer(&d).as_deref(), Some("d"));
        assert_eq!(sessions.map().len(), 3);
        // Expired ones go first.
        tick(98); // b is 100 s old: expired; c (99 s) and d (98 s) still live
        let e = sessions.start("e").unwrap();
        assert_eq!(sessions.viewer(&c).as_deref(), Some("c"));
        assert_eq!(sessions.viewer(&e).as_deref(), Some("e"));
        assert_eq!(sessions.viewer(&b), None);
        sessions.end(&c);
        assert_eq!(sessions.viewer(&c), None);
        assert!(sessions.map().len() <= 3);
    }

    #[test]
    fn guesses_are_checked_one_at_a_time() {
        let server = Server::start(|| Ok("page".into()), None);
        let addr = server.addr;
        let t = Instant::now();
        let tries: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    ask(addr, &login_request(USER, &format!("guess number {i}")))
                })
            })
            .collect();
        for t in tries {
            assert!(t.join().unwrap().starts_with("HTTP/1.1 401 "));
        }
        // Four wrong passwords in parallel take four pauses, not one.
        assert!(t.elapsed() >= TEST_DELAY * 4, "{:?}", t.elapsed());
        server.stop();
    }

    #[test]
    fn serve_will_not_start_without_viewers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let e = serve(listener, || Ok("page".into()), stop, Viewers::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("sangdam add-viewer"), "{e}");
    }

    #[test]
    fn page_errors_and_panics_are_500_and_the_server_goes_on() {
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n2 = n.clone();
        let server = Server::start(
            move || match n2.fetch_add(1, Ordering::Relaxed) {
                0 => Err("store <locked>".into()),
                1 => panic!("a bug in the report"),
                _ => Ok("<body><p>fine</p>".into()),
            },
            None,
        );
        let token = server.login();
        let a = ask(server.addr, &get("/", &token));
        assert!(
            a.starts_with("HTTP/1.1 500") && a.contains("store <locked>"),
            "{a}"
        );
        assert!(a.contains("Content-Type: text/plain"));
        let a = ask(server.addr, &get("/", &token));
        assert!(
            a.starts_with("HTTP/1.1 500") && a.contains("panicked"),
            "{a}"
        );
        let a = ask(server.addr, &get("/", &token));
        assert!(body(&a).ends_with("</form><p>fine</p>"), "{a}");
        server.stop();
    }

    #[test]
    fn slow_and_idle_clients_do_not_hold_the_server() {
        let limits = Limits {
            deadline: Duration::from_millis(400),
            connections: 3,
            failed_login_delay: TEST_DELAY,
        };
        let server = Server::start(|| Ok("page".into()), Some(limits));
        let addr = server.addr;
        // An idle client does not delay the next one.
        let idle = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        assert!(ask(addr, b"GET /login HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        // A trickling client is cut off at the deadline with 408.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = Instant::now();
        for b in b"GET " {
            let _ = slow.write_all(&[*b]);
            std::thread::sleep(Duration::from_millis(60));
        }
        let mut out = String::new();
        let _ = slow.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(t.elapsed() < Duration::from_secs(2));
        // The idle one was cut off too; its connection is closed.
        let mut idle = idle;
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        let _ = idle.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        drop((idle, slow));
        std::thread::sleep(Duration::from_millis(100));
        // More open connections than allowed: the extra one is told so at once.
        let hold: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let a = ask(addr, b"GET /login HTTP/1.1\r\n\r\n");
        assert!(
            a.starts_with("HTTP/1.1 503") && a.contains("Retry-After: 1"),
            "{a}"
        );
        drop(hold);
        // Stop ends serve quickly even with a connection open and silent.
        let _open = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let took = server.stop();
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn the_default_limits_are_the_documented_ones() {
        assert_eq!(LIMITS.deadline, REQUEST_DEADLINE);
        assert_eq!(LIMITS.connections, MAX_CONNECTIONS);
        assert_eq!(LIMITS.failed_login_delay, FAILED_LOGIN_DELAY);
        assert_eq!(MAX_REQUEST, 8192);
        assert_eq!(SESSION_TTL, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn form_fields_decode() {
        assert_eq!(
            login_fields(b"user=kim&password=a+b%20c%26%3D%ED%95%9C"),
            Some(("kim".into(), "a b c&=한".into()))
        );
        assert_eq!(login_fields(b""), Some((String::new(), String::new())));
        assert_eq!(
            login_fields(b"user=kim&password"),
            Some(("kim".into(), String::new()))
        );
        assert_eq!(login_fields(b"user=%"), None);
        assert_eq!(login_fields(b"user=%4"), None);
        assert_eq!(login_fields(b"user=%ff"), None);
        assert_eq!(login_fields(b"password=a&password=b"), None);
        assert_eq!(login_fields(b"\xff"), None);
    }
}
