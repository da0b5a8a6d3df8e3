//! The HTML report page and its read-only local server.
//!
//! The page is one file: inline CSS and inline SVG, no scripts, nothing fetched from
//! elsewhere, so it opens from a USB stick on an office PC with no network.
//!
//! The server is plain HTTP/1.1 over `std::net` for a branch manager's browser on the
//! same desk or LAN: `GET /` (the page, rendered fresh), `GET /health`, 404 for other
//! paths, 405 for methods that would change something. It is built to be left running
//! on a small box: a request must arrive whole, within [`MAX_REQUEST`] bytes and
//! [`REQUEST_DEADLINE`], every connection gets its own thread but at most
//! [`MAX_CONNECTIONS`] at once (more are answered 503), pages are rendered one at a time
//! (rendering may mean refreshing the insights, which takes the CPU), and the answer
//! closes the connection. Binding, and so the address, is the caller's choice.
//!
//! The page has no login: whoever reaches the port reads it. A request whose `Host`
//! header is not in its [`AllowedHosts`] (localhost, IP addresses, the names configured
//! in `insights.allowed_hosts`) is answered 421, so that a web page on some other name
//! that resolves to the box (DNS rebinding) cannot read the report through a browser on
//! the office network. Requests without a `Host` header (not browsers) are answered.

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

/// The request's `Host` header: `Ok(None)` without one, `Err` for more than one.
fn host_header(head: &[u8]) -> Result<Option<String>, ()> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = String::from_utf8_lossy(line);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("host") {
            if found.is_some() {
                return Err(());
            }
            found = Some(value.trim().to_owned());
        }
    }
    Ok(found)
}

/// The limits of [`serve`], separate so that tests can use short ones.
#[derive(Debug, Clone, Copy)]
struct Limits {
    deadline: Duration,
    connections: usize,
}

const LIMITS: Limits = Limits {
    deadline: REQUEST_DEADLINE,
    connections: MAX_CONNECTIONS,
};

/// Serves the page on `listener` until `stop` is set, then waits for the connections
/// in progress (each ends within [`REQUEST_DEADLINE`] plus a write timeout) and
/// returns. `page` is called once per page request, never twice at the same time; its
/// error is answered 500 with the message. Only the default [`AllowedHosts`] are
/// answered; [`serve_allowing`] takes more.
pub fn serve(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    serve_with(listener, page, stop, LIMITS, AllowedHosts::default())
}

/// [`serve`], answering the `Host` values `hosts` allows (421 to others).
pub fn serve_allowing(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
    hosts: AllowedHosts,
) -> std::io::Result<()> {
    serve_with(listener, page, stop, LIMITS, hosts)
}

fn serve_with(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
    limits: Limits,
    hosts: AllowedHosts,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let hosts = Arc::new(hosts);
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
        let (page, stop2, hosts) = (page.clone(), stop.clone(), hosts.clone());
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
                    limits.deadline,
                    &hosts,
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
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n",
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
    /// A whole head (request line and headers).
    Head(Vec<u8>),
    TooLarge,
    TooSlow,
    /// Closed, reset or stopped: nothing to answer.
    Gone,
}

fn read_head(stream: &mut TcpStream, stop: &AtomicBool, deadline: Duration) -> Arrival {
    let end = Instant::now() + deadline;
    let _ = stream.set_read_timeout(Some(POLL));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(n) = head_end(&buf) {
            buf.truncate(n);
            return Arrival::Head(buf);
        }
        if buf.len() > MAX_REQUEST {
            return Arrival::TooLarge;
        }
        let room = (MAX_REQUEST + 1 - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            // A client may send a request line and close its side without the empty
            // line; answer what came.
            Ok(0) if buf.is_empty() => return Arrival::Gone,
            Ok(0) => return Arrival::Head(buf),
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

fn handle(
    mut stream: TcpStream,
    page: &dyn Fn() -> Result<String, String>,
    stop: &AtomicBool,
    deadline: Duration,
    hosts: &AllowedHosts,
) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let text = "text/plain; charset=utf-8";
    let head = match read_head(&mut stream, stop, deadline) {
        Arrival::Head(head) => head,
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
    // DNS rebinding: a browser names the host it thinks it talks to.
    if !host_header(&head).is_ok_and(|h| h.is_none_or(|h| hosts.allows(&h))) {
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
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            text,
            "read-only: GET only\n",
            &["Allow: GET, HEAD"],
            true,
        );
        linger(&mut stream, Duration::from_millis(500));
        return;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    match path {
        "/" | "/index.html" => match page() {
            Ok(html) => respond(
                &mut stream,
                "200 OK",
                "text/html; charset=utf-8",
                &html,
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

    struct Server {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<std::io::Result<()>>>,
    }

    impl Server {
        fn start(
            page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
            limits: Option<Limits>,
        ) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let thread = std::thread::spawn(move || match limits {
                Some(l) => serve_with(listener, page, s2, l, AllowedHosts::default()),
                None => serve(listener, page, s2),
            });
            Server {
                addr,
                stop,
                thread: Some(thread),
            }
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
        let ok = ask(addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert_eq!(body(&ok), render(&page()));
        assert!(ok.contains(&format!("Content-Length: {}\r\n", render(&page()).len())));
        let index = ask(addr, b"GET /index.html?x=1 HTTP/1.0\r\n\r\n");
        assert_eq!(body(&index), render(&page()));
        // Rendered fresh for every request.
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // HEAD: the same head, no body.
        let head = ask(addr, b"HEAD / HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200") && body(&head).is_empty(),
            "{head}"
        );
        let health = ask(addr, b"GET /health HTTP/1.1\r\n\r\n");
        assert!(health.starts_with("HTTP/1.1 200") && body(&health) == "ok\n");
        // Bare newlines are tolerated.
        assert!(ask(addr, b"GET /health HTTP/1.1\n\n").starts_with("HTTP/1.1 200"));
        for path in [
            "/etc/passwd",
            "/../index.html",
            "/index.html/",
            "/favicon.ico",
        ] {
            let a = ask(addr, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
            assert!(a.starts_with("HTTP/1.1 404"), "{path}: {a}");
        }
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let a = ask(
                addr,
                format!("{method} / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").as_bytes(),
            );
            assert!(
                a.starts_with("HTTP/1.1 405") && a.contains("Allow: GET, HEAD\r\n"),
                "{a}"
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
                a.starts_with("HTTP/1.1 400") || a.starts_with("HTTP/1.1 404"),
                "{garbage:?}: {a}"
            );
        }
        // A request line without the empty line, then the client closes its side.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
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
        let mut fits = b"GET /health HTTP/1.1\r\nX-Pad: ".to_vec();
        fits.resize(MAX_REQUEST - 4, b'p');
        fits.extend_from_slice(b"\r\n\r\n");
        assert!(ask(addr, &fits).starts_with("HTTP/1.1 200"));
        assert!(server.stop() < Duration::from_secs(2));
    }

    #[test]
    fn page_errors_and_panics_are_500_and_the_server_goes_on() {
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n2 = n.clone();
        let server = Server::start(
            move || match n2.fetch_add(1, Ordering::Relaxed) {
                0 => Err("store <locked>".into()),
                1 => panic!("a bug in the report"),
                _ => Ok("<p>fine</p>".into()),
            },
            None,
        );
        let a = ask(server.addr, b"GET / HTTP/1.1\r\n\r\n");
        assert!(
            a.starts_with("HTTP/1.1 500") && a.contains("store <locked>"),
            "{a}"
        );
        assert!(a.contains("Content-Type: text/plain"));
        let a = ask(server.addr, b"GET / HTTP/1.1\r\n\r\n");
        assert!(
            a.starts_with("HTTP/1.1 500") && a.contains("panicked"),
            "{a}"
        );
        let a = ask(server.addr, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(body(&a), "<p>fine</p>");
        server.stop();
    }

    #[test]
    fn slow_and_idle_clients_do_not_hold_the_server() {
        let limits = Limits {
            deadline: Duration::from_millis(400),
            connections: 3,
        };
        let server = Server::start(|| Ok("page".into()), Some(limits));
        let addr = server.addr;
        // An idle client does not delay the next one.
        let idle = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        assert!(ask(addr, b"GET /health HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
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
        let a = ask(addr, b"GET /health HTTP/1.1\r\n\r\n");
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
        assert_eq!(MAX_REQUEST, 8192);
    }
}
