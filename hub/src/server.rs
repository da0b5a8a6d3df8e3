//! The hub's HTTP side on hyper 1 and axum (tokio): two listeners, each with its own
//! router, so that each can be firewalled on its own.
//!
//! - **Ingest** ([`HubConfig::listen`]): `POST /v1/batches` from boxes and `GET /healthz`.
//!   The batch checks run in the order the README's contract gives (see
//!   `receive_batch`).
//! - **Dashboard** ([`HubConfig::dashboard`]): the fleet page and its JSON for people,
//!   behind a login and a `Host` check (`crate::dashboard`).
//!
//! Limits on both: a connection limit per listener (beyond it the hub answers 503 at
//! once and closes), hyper's header-read timeout (which also closes idle keep-alive
//! connections) and header size limits, a body limit checked on `Content-Length` before
//! any body byte is read (tower-http's `RequestBodyLimitLayer`, which also stops a chunked
//! body at the limit), a body timeout between frames and a deadline for the whole body.
//! Routing happens on the request head: a body is read only by the handler of its path.
//! A panic in a handler is answered 500 (tower-http's `CatchPanicLayer`) and the hub
//! keeps serving.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use sangdam_wire::{
    Batch, WireError, BATCH_PATH, DEVICE_HEADER, MAX_BODY_BYTES, SCHEMA_VERSION, SIGNATURE_HEADER,
};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::dashboard::{self, Dashboard};
use crate::http::{self, Response};
use crate::storage::now_unix;
use crate::viewers::Viewers;
use crate::{Registry, Storage, Stored};

/// Largest body the dashboard reads (a login form).
const DASHBOARD_BODY_BYTES: usize = 8 * 1024;
/// Largest request head (request line and headers) hyper buffers.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Header lines per request.
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where boxes upload; port 0 picks a free port (see [`RunningHub::addr`]).
    pub listen: SocketAddr,
    /// Where people read the dashboard (`None`: no dashboard is served).
    pub dashboard: Option<SocketAddr>,
    /// Connections served at once per listener; more are answered 503 and closed.
    pub max_connections: usize,
    /// The request head must arrive within this, and an idle keep-alive connection is
    /// closed after it.
    pub header_timeout: Duration,
    /// The whole body must arrive within this (and no gap between its parts may be
    /// longer).
    pub body_timeout: Duration,
    /// Threads that run the HTTP side (tokio workers).
    pub workers: usize,
    /// Threads that may wait for the store at once: each upload waits on one until its
    /// batch is durable, so this also bounds how many batches one group commit gathers.
    pub store_threads: usize,
    /// Host names the dashboard answers to, besides localhost and IP addresses (`"*"`:
    /// any).
    pub dashboard_hosts: Vec<String>,
    /// Who may log in to the dashboard.
    pub viewers: Viewers,
    /// A dashboard session lasts this long.
    pub session_ttl: Duration,
    /// The fleet summary is recomputed when a batch arrives, or when it is older than
    /// this (its "last seen" ages move on).
    pub summary_max_age: Duration,
}

impl HubConfig {
    /// Ingest on `listen`, no dashboard, default limits.
    pub fn new(listen: SocketAddr) -> HubConfig {
        HubConfig {
            listen,
            dashboard: None,
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(15),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            store_threads: 256,
            dashboard_hosts: Vec::new(),
            viewers: Viewers::new(),
            session_ttl: Duration::from_secs(12 * 3600),
            summary_max_age: Duration::from_secs(30),
        }
    }
}

impl Default for HubConfig {
    /// Ingest on 127.0.0.1:8470, no dashboard.
    fn default() -> HubConfig {
        HubConfig::new(SocketAddr::from(([127, 0, 0, 1], 8470)))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    #[error("cannot listen on {addr}: the address is already in use (another sangdam-hub, or another program, is listening there): stop it or choose another address")]
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
    /// Batches whose (device, seq) was stored before with another batch (a rebuilt or
    /// re-imaged box): 409 with a signed Conflict (a version-1/2 box: text), nothing
    /// stored.
    pub conflicts: u64,
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
    /// A wrong method on the batch path. (HTTP that does not parse is answered by hyper
    /// and not counted here.)
    pub bad_request: u64,
    /// The request stopped arriving: timeout or connection closed mid-request.
    pub incomplete: u64,
    /// 503: the listener's connection limit was reached.
    pub busy: u64,
    /// 503: the store failed.
    pub storage_failed: u64,
    /// Dashboard: logins that succeeded.
    pub logins: u64,
    /// Dashboard: logins refused (wrong name or password).
    pub login_failures: u64,
    /// Dashboard: data requests without a live session (not counted in `rejected`).
    pub unauthenticated: u64,
    /// Dashboard: requests for a host name not in the list (421).
    pub wrong_host: u64,
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
pub(crate) struct Counters {
    accepted: AtomicU64,
    accepted_v1: AtomicU64,
    duplicates: AtomicU64,
    conflicts: AtomicU64,
    rejected: [AtomicU64; 10],
    pub(crate) logins: AtomicU64,
    pub(crate) login_failures: AtomicU64,
    pub(crate) unauthenticated: AtomicU64,
    pub(crate) wrong_host: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> HubStats {
        let r = |reason: Reason| self.rejected[reason as usize].load(Ordering::Relaxed);
        HubStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            accepted_v1: self.accepted_v1.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
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
            logins: self.logins.load(Ordering::Relaxed),
            login_failures: self.login_failures.load(Ordering::Relaxed),
            unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
            wrong_host: self.wrong_host.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) counters: Counters,
    /// Batches stored since start: the dashboard's cached summary is of one generation.
    pub(crate) generation: AtomicU64,
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
}

/// The peer of a connection, put in each of its requests.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// A listener and what limits its connections.
struct Listening {
    addr: SocketAddr,
    slots: Arc<Semaphore>,
}

/// A hub serving on its own threads. Dropping it stops it too.
pub struct RunningHub {
    ingest: Listening,
    dashboard: Option<Listening>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    max_connections: usize,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RunningHub {
    /// The ingest address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.ingest.addr
    }

    /// `http://ADDR` of the ingest listener: the boxes' `sync.hub_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.ingest.addr)
    }

    /// The dashboard's address, when one is served.
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard.as_ref().map(|l| l.addr)
    }

    /// `http://ADDR` of the dashboard, when one is served.
    pub fn dashboard_url(&self) -> Option<String> {
        self.dashboard_addr().map(|a| format!("http://{a}"))
    }

    pub fn stats(&self) -> HubStats {
        self.shared.counters.snapshot()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.shared.storage.clone()
    }

    /// Stops accepting, lets the requests in progress finish (up to 5 s), closes idle
    /// connections and stops every thread. When it returns the hub holds no reference to
    /// the storage.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let _ = self.stop.send(true);
        let n = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let slots: Vec<_> = std::iter::once(&self.ingest)
            .chain(self.dashboard.as_ref())
            .map(|l| l.slots.clone())
            .collect();
        runtime.block_on(async move {
            for s in slots {
                // Every connection gives its slot back when it ends.
                let _ = tokio::time::timeout(Duration::from_secs(5), s.acquire_many(n)).await;
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

impl Drop for RunningHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, HubError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            HubError::AddrInUse { addr }
        } else {
            HubError::Bind { addr, source }
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| HubError::Bind { addr, source })?;
    Ok(listener)
}

/// Binds the listeners, starts the HTTP threads, and returns at once.
pub fn serve(
    config: HubConfig,
    registry: Registry,
    storage: Arc<dyn Storage>,
) -> Result<RunningHub, HubError> {
    let ingest_listener = bind(config.listen)?;
    let dashboard_listener = config.dashboard.map(bind).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .max_blocking_threads(config.store_threads.max(1))
        .thread_name("hub-http")
        .enable_all()
        .build()
        .map_err(HubError::Spawn)?;
    let shared = Arc::new(Shared {
        registry,
        storage,
        counters: Counters::default(),
        generation: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let max_connections = config.max_connections.max(1);
    let limits = Limits {
        header_timeout: config.header_timeout,
        slots: max_connections,
    };
    let _entered = runtime.enter();
    let start = |listener: std::net::TcpListener,
                 router: Router,
                 what: &'static str|
     -> Result<Listening, HubError> {
        let addr = listener.local_addr().map_err(HubError::Spawn)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(HubError::Spawn)?;
        let slots = Arc::new(Semaphore::new(limits.slots));
        runtime.spawn(accept_loop(
            listener,
            router,
            shared.clone(),
            slots.clone(),
            limits,
            stopped.clone(),
            what,
        ));
        Ok(Listening { addr, slots })
    };
    let ingest = start(
        ingest_listener,
        ingest_router(shared.clone(), config.body_timeout),
        "ingest",
    )?;
    let dashboard = match dashboard_listener {
        Some(listener) => {
            let dash = Arc::new(Dashboard::new(
                shared.clone(),
                sangdam_wire::headers::AllowedHosts::new(&config.dashboard_hosts),
                config.viewers.clone(),
                config.session_ttl,
                config.summary_max_age,
            ));
            Some(start(
                listener,
                dashboard_router(dash, config.body_timeout),
                "dashboard",
            )?)
        }
        None => None,
    };
    tracing::info!(
        ingest = %ingest.addr,
        dashboard = ?dashboard.as_ref().map(|d| d.addr),
        devices = shared.registry.len(),
        viewers = config.viewers.len(),
        "hub listening"
    );
    drop(_entered);
    Ok(RunningHub {
        ingest,
        dashboard,
        shared,
        stop,
        max_connections,
        runtime: Some(runtime),
    })
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    slots: usize,
}

/// Accepts until stopped; each connection holds one of `slots` while it lives.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
    what: &'static str,
) {
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::error!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = stopped_signal(&mut stopped) => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.reject(
                Reason::Busy,
                peer,
                None,
                &format!(
                    "the {what} listener is at its limit of {} connections",
                    limits.slots
                ),
            );
            tokio::spawn(async move {
                let body = "the hub is busy: retry later\n";
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    stream.write_all(answer.as_bytes()),
                )
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(Peer(peer));
                    let router = router.clone();
                    async move {
                        Ok::<_, Infallible>(
                            router
                                .oneshot(request.map(Body::new))
                                .await
                                .unwrap_or_else(|never| match never {}),
                        )
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true)
                .max_header_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopped_signal(&mut stopped) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                }
            }
        });
    }
}

/// Resolves once the hub is stopping (at once when it already is).
async fn stopped_signal(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

fn panic_answer(what: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let text = what
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| what.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %text, "a request handler panicked; answered 500");
    Response::text(500, "internal error: the hub logged it\n").into_response()
}

type PanicAnswer = fn(Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response;

fn catch_panics() -> CatchPanicLayer<PanicAnswer> {
    CatchPanicLayer::custom(panic_answer as PanicAnswer)
}

fn ingest_router(shared: Arc<Shared>, body_timeout: Duration) -> Router {
    Router::new()
        .route(BATCH_PATH, post(upload).fallback(batch_wrong_method))
        .route("/healthz", get(healthz))
        .fallback(ingest_not_found)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(
            (shared.clone(), body_timeout),
            refuse_oversized,
        ))
        .layer(catch_panics())
        .with_state((shared, body_timeout))
}

fn dashboard_router(dash: Arc<Dashboard>, body_timeout: Duration) -> Router {
    Router::new()
        .route("/", get(dashboard::fleet_page))
        .route("/v1/summary", get(dashboard::summary_json))
        .route("/v1/stats", get(dashboard::stats_json))
        .route("/login", get(dashboard::login_form).post(dashboard::login))
        .route("/logout", post(dashboard::logout))
        .route("/healthz", get(healthz))
        .fallback(dashboard_not_found)
        .layer(RequestBodyLimitLayer::new(DASHBOARD_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(
            dash.clone(),
            dashboard::check_host,
        ))
        .layer(catch_panics())
        .with_state(dash)
}

type Ingest = (Arc<Shared>, Duration);

/// Counts and answers 413 for an upload whose `Content-Length` is over the limit, before
/// any of its body is read (the body limit layer behind it refuses the same, uncounted,
/// and stops chunked bodies at the limit).
async fn refuse_oversized(
    State((shared, _)): State<Ingest>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let length = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<u64>().unwrap_or(u64::MAX));
    if let Some(len) = length.filter(|&n| n > MAX_BODY_BYTES as u64) {
        let peer = request.extensions().get::<Peer>().map(|p| p.0);
        let device = request
            .headers()
            .get(DEVICE_HEADER)
            .and_then(|v| v.to_str().ok());
        if let Some(peer) = peer {
            shared.reject(
                Reason::TooLarge,
                peer,
                device,
                &format!("Content-Length {len} is over the {MAX_BODY_BYTES}-byte limit"),
            );
        }
        return too_large(Some(len)).into_response();
    }
    next.run(request).await
}

fn too_large(len: Option<u64>) -> Response {
    let what = len.map_or("the body".to_owned(), |n| format!("body of {n} bytes"));
    Response::text(
        413,
        &format!("{what} is larger than the {MAX_BODY_BYTES}-byte limit\n"),
    )
    .close()
}

async fn healthz() -> Response {
    Response::text(200, "ok\n")
}

async fn ingest_not_found() -> Response {
    Response::text(
        404,
        "not found (this is the hub's ingest listener: the fleet page is on the dashboard listener)\n",
    )
}

async fn dashboard_not_found() -> Response {
    Response::text(404, "not found\n")
}

async fn batch_wrong_method(
    State((shared, _)): State<Ingest>,
    Extension(Peer(peer)): Extension<Peer>,
    request: Request,
) -> Response {
    let device = request
        .headers()
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok());
    shared.reject(
        Reason::BadRequest,
        peer,
        device,
        &format!("{} on {BATCH_PATH}", request.method()),
    );
    Response::text(405, "batches are POSTed\n").header("Allow", "POST")
}

/// Whether `e` or one of its sources is a `T`.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<T>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `POST /v1/batches`: the body is read here (within the limits), then checked and
/// stored on a store thread.
async fn upload(
    State((shared, body_timeout)): State<Ingest>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let head = http::Head::new(headers);
    let read = tokio::time::timeout(body_timeout, body.collect()).await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => {
            let device = head.get(DEVICE_HEADER);
            if caused_by::<http_body_util::LengthLimitError>(&e) {
                shared.reject(
                    Reason::TooLarge,
                    peer,
                    device,
                    &format!("the body went past the {MAX_BODY_BYTES}-byte limit"),
                );
                return too_large(None);
            }
            let timed_out = caused_by::<tower_http::timeout::TimeoutError>(&e);
            shared.reject(
                Reason::Incomplete,
                peer,
                device,
                if timed_out {
                    "the body stopped arriving: too slow"
                } else {
                    "the connection closed before the whole body arrived: truncated upload"
                },
            );
            return Response::text(408, "request timeout\n").close();
        }
        Err(_) => {
            shared.reject(
                Reason::Incomplete,
                peer,
                head.get(DEVICE_HEADER),
                &format!("the body did not arrive within {body_timeout:?}: too slow"),
            );
            return Response::text(408, "request timeout\n").close();
        }
    };
    let worker = shared.clone();
    match tokio::task::spawn_blocking(move || receive_batch(&worker, &head, &body, peer)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(peer = %peer, error = %e, "the batch handler failed; answered 500");
            Response::text(500, "internal error: the hub logged it\n")
        }
    }
}

/// The checks, in order: device known (403), signature (401), frame decodes (400),
/// frame's device = header's (400), then store (200 / 409 duplicate / 409 conflict).
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
    match stored {
        Stored::Duplicate => {
            shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %peer, device = %id, seq, "duplicate batch: stored before, acknowledged again");
        }
        Stored::Conflict { next_seq } => {
            shared.counters.conflicts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %peer, device = %id, seq, next_seq, wire = version, "conflict: this seq is stored with another batch (a rebuilt or re-imaged box?); not stored, the box is told the next free seq");
        }
        Stored::New => {
            shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
            shared.generation.fetch_add(1, Ordering::SeqCst);
            if version == 1 {
                shared.counters.accepted_v1.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(peer = %peer, device = %id, seq, bytes = body.len(), wire = version, "batch stored");
        }
    }
    // Signed under the device's key over the body received, so that the box acts only on
    // this hub's word (see crate::answer for each outcome's status and body).
    let a = crate::answer(stored, &device.key, id, seq, body, version, now_unix());
    Response::new(a.status, a.content_type, a.body)
}
