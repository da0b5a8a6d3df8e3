//! The HTML report page and its read-only local server.
//!
//! The page is one file: inline CSS and inline SVG, no scripts, nothing fetched from
//! elsewhere, so it opens from a USB stick on an office PC with no network. The server
//! is plain HTTP/1.1 over `std::net`: `GET /` (the page, rendered fresh), `GET /health`,
//! 404 for anything else, 405 for other methods; requests are read with a timeout and at
//! most [`MAX_REQUEST`] bytes, one short-lived connection at a time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use super::charts::esc as escape;

/// Requests longer than this are refused (431).
pub const MAX_REQUEST: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct ReportPage {
    pub title: String,
    pub generated: String,
    pub period: String,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    pub svg: Option<String>,
    /// An HTML fragment, already escaped (e.g. from [`table`]).
    pub html: String,
}

/// An HTML table with every cell escaped.
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

const STYLE: &str = "body{font-family:NanumGothic,'Nanum Gothic','Noto Sans CJK KR','Noto Sans KR',sans-serif;margin:24px;color:#222;max-width:1000px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.meta{color:#666;font-size:13px}svg{display:block;margin:8px 0;max-width:100%;height:auto}";

/// The whole page.
pub fn render(page: &ReportPage) -> String {
    let mut o = format!(
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p class=\"meta\">generated {} · period {}</p>",
        escape(&page.title),
        escape(&page.title),
        escape(&page.generated),
        escape(&page.period)
    );
    for s in &page.sections {
        o += &format!("<section><h2>{}</h2>", escape(&s.heading));
        if let Some(svg) = &s.svg {
            o += svg;
        }
        o += &s.html;
        o += "</section>";
    }
    o + "</body></html>\n"
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn handle(mut stream: TcpStream, page: &dyn Fn() -> Result<String, String>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if buf.len() > MAX_REQUEST {
            respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request too large\n",
            );
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return, // timed out or reset: nothing to answer
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if method.is_empty() || !path.starts_with('/') {
        respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
        );
        return;
    }
    if method != "GET" && method != "HEAD" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "read-only: GET only\n",
        );
        return;
    }
    match path.split('?').next().unwrap_or("") {
        "/" | "/index.html" => match page() {
            Ok(html) => respond(&mut stream, "200 OK", "text/html; charset=utf-8", &html),
            Err(e) => respond(
                &mut stream,
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                &format!("the report cannot be made: {e}\n"),
            ),
        },
        "/health" => respond(&mut stream, "200 OK", "text/plain", "ok\n"),
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n"),
    }
}

/// Serves the page on `listener` until `stop` is set. Binding (and so the address, by
/// default localhost) is the caller's choice.
pub fn serve(
    listener: TcpListener,
    page: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                handle(stream, &page);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> ReportPage {
        ReportPage {
            title: "지점 <보고서>".into(),
            generated: "2026-11-24".into(),
            period: "all".into(),
            sections: vec![
                Section {
                    heading: "키워드".into(),
                    svg: Some("<svg></svg>".into()),
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
    fn the_page_holds_every_section_escaped() {
        let html = render(&page());
        assert!(html.contains("<title>지점 &lt;보고서&gt;</title>"));
        assert!(html.contains("<h2>키워드</h2><svg></svg>"));
        assert!(html.contains("<td>한도&amp;</td>"));
        assert!(html.contains("<h2>추천</h2>"));
        assert!(html.contains("charset=\"utf-8\"") && html.contains("lang=\"ko\""));
    }

    fn ask(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(request);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn the_server_answers_refuses_and_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || serve(listener, || Ok(render(&page())), s2));
        let ok = ask(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.contains("키워드"),
            "{ok}"
        );
        assert!(ask(addr, b"GET /health HTTP/1.1\r\n\r\n").ends_with("ok\n"));
        assert!(ask(addr, b"GET /etc/passwd HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(addr, b"POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(ask(addr, b"\x00\xff garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        let big = vec![b'a'; 20_000];
        assert!(ask(addr, &big).starts_with("HTTP/1.1 431"));
        // A client that connects and says nothing does not block the next one for long.
        let _idle = TcpStream::connect(addr).unwrap();
        assert!(ask(addr, b"GET /health HTTP/1.1\r\n\r\n").contains("200"));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap().unwrap();
    }
}
