//! The hub's HTTP server: an acceptor thread, a fixed pool of connection threads, and the
//! batch checks in the order the README's contract gives.

use std::io::{BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sangdam_wire::{
    Ack, Batch, WireError, BATCH_PATH, DEVICE_HEADER, MAX_BODY_BYTES, SCHEMA_VERSION,
    SIGNATURE_HEADER,
};
use serde::Serialize;

use crate::http::{self, HeadError, Response};
use crate::storage::now_unix;
use crate::{Registry, Storage, Stored};

/// How often an idle connection thread looks up from its socket.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where to listen; port 0 picks a free port (see [`RunningHub::addr`]).
    pub addr: SocketAddr,
    /// Connection threads: how many connections are served at once. Each upload holds its
    /// thread until its batch is durable, so this also bounds how many batches one group
    /// commit can gather.
    pub threads: usize,
    /// Accepted connections that may wait for a thread; beyond that the hub answers 503.
    pub queue: usize,
    /// An idle keep-alive connection is closed after this long (at once when other
    /// connections are waiting for a thread).
    pub idle_timeout: Duration,
    /// The whole request (head and body) must arrive within this.
    pub request_timeout: Duration,
}

impl HubConfig {
    pub fn new(addr: SocketAddr) -> HubConfig {
        HubConfig {
            addr,
            threads: 128,
            queue: 1024,
            idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

impl Default for HubConfig {
    /// 127.0.0.1:8470.
    fn default() -> HubConfig {
        HubConfig::new(SocketAddr::from(([127, 0, 0, 1], 8470)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("cannot listen on {addr}: the address is already in use (another sangdam-hub, or another program, is listening there): stop it or choose another --addr")]
    AddrInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the hub's threads: {0}")]
    Spawn(std::io::Error),
}

/// Counts since the hub started. Every request that stored nothing is counted under one
/// reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HubStats {
    /// Batches stored (200).
    pub accepted: u64,
    /// Of `accepted`, batches in wire version 1 (boxes not yet updated: they carry no
    /// neutral counts).
    pub accepted_v1: u64,
    /// Batches whose (device, seq) was stored before (409 with an Ack).
    pub duplicates: u64,
    /// 413: the body is over [`MAX_BODY_BYTES`].
    pub too_large: u64,
    /// 403: no device header, or a device the registry does not know.
    pub unknown_device: u64,
    /// 401: no signature, or one that does not verify.
    pub bad_signature: u64,
    /// 400: a wire version or schema this hub does not read.
    pub bad_version: u64,
    /// 400: truncated, garbage, trailing bytes or an invalid header in the frame.
    pub malformed: u64,
    /// 400: the frame's device is not the header's.
    pub device_mismatch: u64,
    /// Malformed HTTP, a wrong method on the batch path, chunked uploads.
    pub bad_request: u64,
    /// The request stopped arriving: timeout or connection closed mid-request.
    pub incomplete: u64,
    /// 503: every thread busy and the queue full.
    pub busy: u64,
    /// 503: the store failed.
    pub storage_failed: u64,
}

impl HubStats {
    /// Requests that stored nothing and got no acknowledgement.
    pub fn rejected(&self) -> u64 {
        self.too_large
            + self.unknown_device
            + self.bad_signature
            + self.bad_version
            + self.malformed
            + self.device_mismatch
            + self.bad_request
            + self.incomplete
            + self.busy
            + self.storage_failed
    }
}

#[derive(Debug, Clone, Copy)]
enum Reason {
    TooLarge,
    UnknownDevice,
    BadSignature,
    BadVersion,
    Malformed,
    DeviceMismatch,
    BadRequest,
    Incomplete,
    Busy,
    StorageFailed,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::UnknownDevice => "unknown_device",
            Reason::BadSignature => "bad_signature",
            Reason::BadVersion => "bad_version",
            Reason::Malformed => "malformed",
            Reason::DeviceMismatch => "device_mismatch",
            Reason::BadRequest => "bad_request",
            Reason::Incomplete => "incomplete",
            Reason::Busy => "busy",
            Reason::StorageFailed => "storage_failed",
        }
    }
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    accepted_v1: AtomicU64,
    duplicates: AtomicU64,
    rejected: [AtomicU64; 10],
}

impl Counters {
    fn snapshot(&self) -> HubStats {
        let r = |reason: Reason| self.rejected[reason as usize].load(Ordering::Relaxed);
        HubStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            accepted_v1: self.accepted_v1.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            too_large: r(Reason::TooLarge),
            unknown_device: r(Reason::UnknownDevice),
            bad_signature: r(Reason::BadSignature),
            bad_version: r(Reason::BadVersion),
            malformed: r(Reason::Malformed),
            device_mismatch: r(Reason::DeviceMismatch),
            bad_request: r(Reason::BadRequest),
            incomplete: r(Reason::Incomplete),
            busy: r(Reason::Busy),
            storage_failed: r(Reason::StorageFailed),
        }
    }
}

struct Shared {
    config: HubConfig,
    registry: Registry,
    storage: Arc<dyn Storage>,
    counters: Counters,
    stop: AtomicBool,
    /// Connections accepted and not yet picked up by a thread.
    queued: AtomicUsize,
}

/// A device id as a header gave it, safe to log (an attacker chooses it).
fn loggable(id: Option<&str>) -> String {
    match id {
        None => "-".into(),
        Some(s) => {
            let s: String = s.chars().take(80).collect();
            if sangdam_wire::valid_device_id(&s) {
                s
            } else {
                format!("{s:?}")
            }
        }
    }
}

impl Shared {
    /// Counts and logs a request that stored nothing.
    fn reject(&self, reason: Reason, peer: SocketAddr, device: Option<&str>, detail: &str) {
        self.counters.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            peer = %peer,
            device = %loggable(device),
            reason = reason.as_str(),
            "request rejected: {detail}"
        );
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A hub serving on its own threads. Dropping it stops it too.
pub struct RunningHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl RunningHub {
    /// The address it listens on (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> HubStats {
        self.shared.counters.snapshot()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.shared.storage.clone()
    }

    /// Stops accepting, lets the requests in progress finish, closes idle connections and
    /// joins every thread. When it returns the hub holds no reference to the storage.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor, blocked in accept().
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.addr.port())
            }
            _ => self.addr,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for RunningHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `config.addr`, starts the acceptor and `config.threads` connection threads, and
/// returns at once.
pub fn serve(
    config: HubConfig,
    registry: Registry,
    storage: Arc<dyn Storage>,
) -> Result<RunningHub, HubError> {
    let listener = TcpListener::bind(config.addr).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            HubError::AddrInUse { addr: config.addr }
        } else {
            HubError::Bind {
                addr: config.addr,
                source,
            }
        }
    })?;
    let addr = listener.local_addr().map_err(|source| HubError::Bind {
        addr: config.addr,
        source,
    })?;
    let threads = config.threads.max(1);
    let (tx, rx) = sync_channel::<(TcpStream, SocketAddr)>(config.queue.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let shared = Arc::new(Shared {
        config,
        registry,
        storage,
        counters: Counters::default(),
        stop: AtomicBool::new(false),
        queued: AtomicUsize::new(0),
    });
    let mut hub = RunningHub {
        addr,
        shared: shared.clone(),
        threads: Vec::with_capacity(threads + 1),
    };
    for i in 0..threads {
        let (shared, rx) = (shared.clone(), rx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("hub-conn-{i}"))
            .stack_size(512 * 1024)
            .spawn(move || connection_thread(&shared, &rx))
            .map_err(HubError::Spawn)?;
        hub.threads.push(handle);
    }
    let acceptor = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("hub-accept".into())
            .spawn(move || {
                accept_loop(&shared, listener, tx);
            })
            .map_err(HubError::Spawn)?
    };
    hub.threads.push(acceptor);
    tracing::info!(addr = %addr, threads, devices = shared.registry.len(), "hub listening");
    Ok(hub)
}

fn accept_loop(
    shared: &Shared,
    listener: TcpListener,
    tx: std::sync::mpsc::SyncSender<(TcpStream, SocketAddr)>,
) {
    loop {
        let accepted = listener.accept();
        if shared.stopping() {
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                shared.queued.fetch_add(1, Ordering::SeqCst);
                if let Err(
                    TrySendError::Full((stream, peer)) | TrySendError::Disconnected((stream, peer)),
                ) = tx.try_send((stream, peer))
                {
                    shared.queued.fetch_sub(1, Ordering::SeqCst);
                    shared.reject(
                        Reason::Busy,
                        peer,
                        None,
                        "every connection thread is busy and the queue is full",
                    );
                    let _ = stream.set_nonblocking(true);
                    let _ = Response::text(503, "the hub is busy: retry later\n")
                        .header("Retry-After", "5")
                        .close()
                        .write_to(&mut &stream, false);
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::error!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // Dropping `tx` lets idle connection threads see the end.
}

fn connection_thread(shared: &Shared, rx: &Mutex<Receiver<(TcpStream, SocketAddr)>>) {
    loop {
        let next = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok((stream, peer)) = next else { return };
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        if shared.stopping() {
            continue; // drain the queue, closing each connection
        }
        serve_connection(shared, stream, peer);
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.config.request_timeout));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = stream;
    loop {
        let keep_waiting =
            http::await_request(&mut reader, shared.config.idle_timeout, POLL, |waited| {
                shared.stopping() || (waited >= POLL && shared.queued.load(Ordering::Relaxed) > 0)
            });
        if !keep_waiting {
            return;
        }
        let deadline = Instant::now() + shared.config.request_timeout;
        let (response, head_only) = match http::read_head(&mut reader, deadline) {
            Ok(head) => {
                let Some(mut response) =
                    handle_request(shared, &head, &mut reader, &mut writer, peer, deadline)
                else {
                    return;
                };
                if !head.keep_alive() || shared.stopping() {
                    response.close = true;
                }
                (response, head.method == "HEAD")
            }
            Err(HeadError::Reject(response)) => {
                shared.reject(
                    Reason::BadRequest,
                    peer,
                    None,
                    &format!(
                        "malformed HTTP request ({} {})",
                        response.status,
                        String::from_utf8_lossy(&response.body).trim()
                    ),
                );
                (response, false)
            }
            Err(HeadError::Timeout) => {
                shared.reject(
                    Reason::Incomplete,
                    peer,
                    None,
                    "the request head did not arrive in time",
                );
                let _ = Response::text(408, "request timeout\n")
                    .close()
                    .write_to(&mut writer, false);
                return;
            }
            Err(HeadError::Closed | HeadError::Io(_)) => return,
        };
        if response.write_to(&mut writer, head_only).is_err() || response.close {
            return;
        }
    }
}

/// Reads the body (when it is within the limit) and answers. None: the connection broke.
fn handle_request(
    shared: &Shared,
    head: &http::Head,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<Response> {
    let device = head.get(DEVICE_HEADER);
    let len = match head.body_length() {
        Ok(n) => n,
        Err(response) => {
            shared.reject(
                Reason::BadRequest,
                peer,
                device,
                &format!(
                    "{} {}: {}",
                    head.method,
                    head.path,
                    String::from_utf8_lossy(&response.body).trim()
                ),
            );
            return Some(response);
        }
    };
    if len > MAX_BODY_BYTES as u64 {
        // Refused from the header alone: the body is never read, so the connection closes.
        shared.reject(
            Reason::TooLarge,
            peer,
            device,
            &format!("Content-Length {len} is over the {MAX_BODY_BYTES}-byte limit"),
        );
        return Some(
            Response::text(
                413,
                &format!("body of {len} bytes is larger than the {MAX_BODY_BYTES}-byte limit\n"),
            )
            .close(),
        );
    }
    if head.expects_continue() && len > 0 {
        if writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return None;
        }
        let _ = writer.flush();
    }
    let body = match http::read_body(reader, len as usize, deadline) {
        Ok(body) => body,
        Err(e) => {
            let timed_out = matches!(e, HeadError::Timeout);
            shared.reject(
                Reason::Incomplete,
                peer,
                device,
                &format!(
                    "{} of the announced {len} body bytes: {}",
                    if timed_out {
                        "timed out before"
                    } else {
                        "connection closed before"
                    },
                    if timed_out {
                        "too slow"
                    } else {
                        "truncated upload"
                    }
                ),
            );
            return timed_out.then(|| Response::text(408, "request timeout\n").close());
        }
    };
    let get = matches!(head.method.as_str(), "GET" | "HEAD");
    Some(match head.path.as_str() {
        BATCH_PATH if head.method == "POST" => receive_batch(shared, head, &body, peer),
        BATCH_PATH => {
            shared.reject(
                Reason::BadRequest,
                peer,
                device,
                &format!("{} on {BATCH_PATH}", head.method),
            );
            Response::text(405, "batches are POSTed\n").header("Allow", "POST")
        }
        "/healthz" if get => Response::text(200, "ok\n"),
        "/" if get => page(shared, false),
        "/v1/summary" if get => page(shared, true),
        "/v1/stats" if get => json(&shared.counters.snapshot()),
        "/" | "/healthz" | "/v1/summary" | "/v1/stats" => {
            Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD")
        }
        _ => Response::text(404, "not found\n"),
    })
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Response::new(200, "application/json", body),
        Err(e) => Response::text(500, &format!("cannot encode JSON: {e}\n")),
    }
}

/// The fleet page (HTML) or its data (JSON).
fn page(shared: &Shared, as_json: bool) -> Response {
    let records = match shared.storage.records() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the batch store for the fleet page");
            return Response::text(500, &format!("cannot read the batch store: {e}\n"));
        }
    };
    let summary = crate::fleet::summarize(&shared.registry, &records, now_unix());
    if as_json {
        return json(&summary);
    }
    Response::new(
        200,
        "text/html; charset=utf-8",
        crate::fleet::render_html(&summary).into_bytes(),
    )
    // The page is self-contained: nothing may be fetched, no script may run.
    .header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    )
    .header("Cache-Control", "no-store")
}

/// The checks, in order: device known (403), signature (401), frame decodes (400),
/// frame's device = header's (400), then store (409 duplicate / 200).
fn receive_batch(shared: &Shared, head: &http::Head, body: &[u8], peer: SocketAddr) -> Response {
    let header_device = head.get(DEVICE_HEADER);
    let Some(device) = header_device.and_then(|id| shared.registry.get(id.trim())) else {
        let detail = if header_device.is_none() {
            format!("no {DEVICE_HEADER} header")
        } else {
            "device not in the registry".to_owned()
        };
        shared.reject(Reason::UnknownDevice, peer, header_device, &detail);
        return Response::text(403, "forbidden\n");
    };
    let Some(signature) = head.get(SIGNATURE_HEADER) else {
        shared.reject(
            Reason::BadSignature,
            peer,
            header_device,
            &format!("no {SIGNATURE_HEADER} header"),
        );
        return Response::text(401, "missing signature\n");
    };
    if !sangdam_wire::verify(&device.key, body, signature) {
        shared.reject(
            Reason::BadSignature,
            peer,
            header_device,
            &format!(
                "signature does not verify over the {}-byte body",
                body.len()
            ),
        );
        return Response::text(401, "signature does not verify\n");
    }
    // Every wire version the hub reads is accepted; the answer goes back in the batch's
    // own version, which that box can read.
    let (batch, version) = match Batch::decode_versioned(body) {
        Ok(b) => b,
        Err(e) => {
            let reason = match e {
                WireError::UnknownVersion(_) => Reason::BadVersion,
                _ => Reason::Malformed,
            };
            shared.reject(reason, peer, header_device, &e.to_string());
            return Response::text(400, &format!("{e}\n"));
        }
    };
    if batch.header.device != device.id {
        let detail = format!(
            "the frame is from device {:?} but the {DEVICE_HEADER} header says {:?}",
            batch.header.device, device.id
        );
        shared.reject(Reason::DeviceMismatch, peer, header_device, &detail);
        return Response::text(400, &format!("{detail}\n"));
    }
    if batch.header.schema != SCHEMA_VERSION {
        let detail = format!(
            "report schema {} is not understood (this hub reads schema {SCHEMA_VERSION}): update the hub or the box",
            batch.header.schema
        );
        shared.reject(Reason::BadVersion, peer, header_device, &detail);
        return Response::text(400, &format!("{detail}\n"));
    }
    let (seq, id) = (batch.header.seq, &batch.header.device);
    let stored = match shared.storage.insert(&batch, body) {
        Ok(s) => s,
        Err(e) => {
            shared.reject(
                Reason::StorageFailed,
                peer,
                header_device,
                &format!("seq {seq}: {e}"),
            );
            return Response::text(503, "the hub cannot store batches right now: retry later\n")
                .header("Retry-After", "60");
        }
    };
    let duplicate = stored == Stored::Duplicate;
    if duplicate {
        shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
        tracing::info!(peer = %peer, device = %id, seq, "duplicate batch: stored before, acknowledged again");
    } else {
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        if version == 1 {
            shared.counters.accepted_v1.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(peer = %peer, device = %id, seq, bytes = body.len(), wire = version, "batch stored");
    }
    // Signed under the device's key over the body received, so that the box deletes the
    // batch only on this hub's word (a version-1 answer drops the signature: those boxes
    // cannot read it).
    let ack = Ack::signed(&device.key, id, seq, body, duplicate, now_unix());
    match ack.encode_as(version) {
        Ok(frame) => Response::new(
            if duplicate { 409 } else { 200 },
            "application/octet-stream",
            frame,
        ),
        Err(e) => Response::text(500, &format!("cannot encode the acknowledgement: {e}\n")),
    }
}
