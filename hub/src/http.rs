//! Just enough HTTP/1.1 for the hub, with hard limits: a head of at most 16 KiB and 64
//! header lines, bodies framed by Content-Length only (no chunked uploads), one deadline
//! per request so a slow client cannot hold a thread, keep-alive.
//!
//! Written here rather than taken from a general server because the hub must refuse
//! oversized and slow bodies without reading or allocating them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub const MAX_HEAD_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client wants the connection kept after this request.
    pub fn keep_alive(&self) -> bool {
        if self.minor == 0 {
            self.has_token("Connection", "keep-alive")
        } else {
            !self.has_token("Connection", "close")
        }
    }

    pub fn expects_continue(&self) -> bool {
        self.get("Expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// The body's length from Content-Length (0 when absent). Chunked or otherwise
    /// transfer-encoded bodies are refused: boxes always send a length.
    pub fn body_length(&self) -> Result<u64, Response> {
        if self.get("Transfer-Encoding").is_some() {
            return Err(Response::text(
                411,
                "send the body with a Content-Length (chunked uploads are not accepted)\n",
            )
            .close());
        }
        let mut length = None;
        for v in self.all("Content-Length") {
            let v = v.trim();
            // Digits only; a number too large for u64 is simply too large (413 follows).
            let n = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                Some(v.parse::<u64>().unwrap_or(u64::MAX))
            } else {
                None
            };
            match (n, length) {
                (None, _) => {
                    return Err(Response::text(400, "invalid Content-Length\n").close());
                }
                (Some(n), Some(prev)) if n != prev => {
                    return Err(Response::text(400, "conflicting Content-Length headers\n").close());
                }
                (Some(n), _) => length = Some(n),
            }
        }
        Ok(length.unwrap_or(0))
    }
}

#[derive(Debug)]
pub enum HeadError {
    /// The peer closed the connection (cleanly, between requests, or in the middle).
    Closed,
    /// The deadline passed.
    Timeout,
    Io(io::Error),
    /// Answer with this and close.
    Reject(Response),
}

fn read_error(e: io::Error) -> HeadError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HeadError::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => HeadError::Closed,
        _ => HeadError::Io(e),
    }
}

/// Sets the socket's timeout to what is left before `deadline`.
fn arm(reader: &BufReader<TcpStream>, deadline: Instant) -> Result<(), HeadError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HeadError::Timeout);
    }
    reader
        .get_ref()
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .map_err(HeadError::Io)
}

/// One line (without CR LF) of at most `*budget` bytes, which it decreases.
fn read_line(
    reader: &mut BufReader<TcpStream>,
    budget: &mut usize,
    deadline: Instant,
    out: &mut Vec<u8>,
) -> Result<(), HeadError> {
    out.clear();
    loop {
        if reader.buffer().is_empty() {
            arm(reader, deadline)?;
        }
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        if buf.is_empty() {
            return Err(HeadError::Closed);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if take > *budget {
            return Err(HeadError::Reject(
                Response::text(431, "request head too large\n").close(),
            ));
        }
        *budget -= take;
        out.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            out.pop();
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            return Ok(());
        }
    }
}

fn bad(msg: &'static str) -> HeadError {
    HeadError::Reject(Response::text(400, msg).close())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads a request line and headers. Empty lines before the request line are skipped,
/// as RFC 9112 allows.
pub fn read_head(reader: &mut BufReader<TcpStream>, deadline: Instant) -> Result<Head, HeadError> {
    let mut budget = MAX_HEAD_BYTES;
    let mut line = Vec::with_capacity(256);
    loop {
        read_line(reader, &mut budget, deadline, &mut line)?;
        if !line.is_empty() {
            break;
        }
    }
    let request_line =
        std::str::from_utf8(&line).map_err(|_| bad("request line is not ASCII\n"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line\n"));
    };
    if !is_token(method) || target.is_empty() {
        return Err(bad("malformed request line\n"));
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => {
            return Err(HeadError::Reject(
                Response::text(505, "only HTTP/1.0 and HTTP/1.1 are spoken here\n").close(),
            ))
        }
    };
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let (method, mut headers) = (method.to_owned(), Vec::new());
    loop {
        read_line(reader, &mut budget, deadline, &mut line)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::Reject(
                Response::text(431, "too many header lines\n").close(),
            ));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(bad("folded header lines are not accepted\n"));
        }
        let text = String::from_utf8_lossy(&line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(bad("malformed header line\n"));
        };
        if !is_token(name) {
            return Err(bad("malformed header name\n"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head {
        method,
        path,
        minor,
        headers,
    })
}

/// Reads exactly `len` bytes of body before `deadline`.
pub fn read_body(
    reader: &mut BufReader<TcpStream>,
    len: usize,
    deadline: Instant,
) -> Result<Vec<u8>, HeadError> {
    let mut body = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        if reader.buffer().is_empty() {
            arm(reader, deadline)?;
        }
        match reader.read(&mut body[filled..]) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    Ok(body)
}

/// Waits until the next request starts arriving. Returns false when the connection should
/// be closed instead: the peer closed it, it stayed idle for `idle`, or `give_up()` says so
/// (checked every `poll`), e.g. because the hub is stopping or other connections wait.
pub fn await_request(
    reader: &mut BufReader<TcpStream>,
    idle: Duration,
    poll: Duration,
    mut give_up: impl FnMut(Duration) -> bool,
) -> bool {
    if !reader.buffer().is_empty() {
        return true;
    }
    let started = Instant::now();
    if reader.get_ref().set_read_timeout(Some(poll)).is_err() {
        return false;
    }
    loop {
        match reader.fill_buf() {
            Ok(b) => return !b.is_empty(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let waited = started.elapsed();
                if waited >= idle || give_up(waited) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub extra: Vec<(&'static str, String)>,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            body,
            extra: Vec::new(),
            close: false,
        }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    pub fn close(mut self) -> Response {
        self.close = true;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.extra.push((name, value.into()));
        self
    }

    /// Writes the whole response with one write call. `head_only` leaves the body out
    /// (for HEAD) but keeps its Content-Length.
    pub fn write_to(&self, out: &mut impl Write, head_only: bool) -> io::Result<()> {
        let mut msg = Vec::with_capacity(256 + self.body.len());
        let _ = write!(
            msg,
            "HTTP/1.1 {} {}\r\nServer: sangdam-hub\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.extra {
            let _ = write!(msg, "{name}: {value}\r\n");
        }
        if self.close {
            msg.extend_from_slice(b"Connection: close\r\n");
        }
        msg.extend_from_slice(b"\r\n");
        if !head_only {
            msg.extend_from_slice(&self.body);
        }
        out.write_all(&msg)?;
        out.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
