//! The dashboard listener: login, sessions, the `Host` check, the cached summary, and
//! the limits that keep boxes served while slow clients hold connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sangdam_hub::{serve, HubConfig, Registry, SledStorage, Storage, StorageError, Stored};
use sangdam_wire::Batch;

use crate::common::*;

/// The paths that show fleet data.
const DATA_PATHS: &[&str] = &["/", "/v1/summary", "/v1/stats"];

/// One request over a fresh connection with the given extra header lines.
fn request(addr: SocketAddr, method: &str, path: &str, host: &str, extra: &str) -> String {
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn with_fleet() -> TestHub {
    let t = TestHub::start();
    for seq in 1..=3 {
        assert_eq!(upload(t.addr(), &batch("busan-03", seq)).status, 200);
    }
    t
}

#[test]
fn every_dashboard_path_refuses_requests_without_a_live_session() {
    let t = with_fleet();
    let d = t.dashboard();
    let host = d.to_string();
    let unknown = "ab".repeat(32);
    let refusals = [
        String::new(),
        "Authorization: Bearer nonsense\r\n".to_owned(),
        format!("Authorization: Bearer {unknown}\r\n"),
        format!("Cookie: sangdam_hub_session={unknown}\r\n"),
        "Authorization: Basic a2ltLmFuYWx5c3Q6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==\r\n"
            .to_owned(),
    ];
    for path in DATA_PATHS {
        for method in ["GET", "HEAD"] {
            for extra in &refusals {
                let reply = request(d, method, path, &host, extra);
                let status = status_of(&reply);
                let want = if *path == "/" { 303 } else { 401 };
                assert_eq!(status, want, "{method} {path} with {extra:?}: {reply}");
                assert!(
                    !reply.contains("부산") && !reply.contains("busan-03"),
                    "{method} {path} leaked fleet data without a session: {reply}"
                );
                if *path == "/" {
                    assert!(
                        reply.to_ascii_lowercase().contains("location: /login"),
                        "{reply}"
                    );
                }
            }
        }
    }
    assert!(t.hub.stats().unauthenticated >= 30, "{:?}", t.hub.stats());
    // With a session every path answers.
    let token = login(d, VIEWER, VIEWER_PASSWORD).unwrap();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    for path in DATA_PATHS {
        let reply = request(d, "GET", path, &host, &bearer);
        assert_eq!(status_of(&reply), 200, "{path}: {reply}");
    }
    assert!(request(d, "GET", "/", &host, &bearer).contains("부산 3지점"));
    // Logging out ends the session for every later request.
    let reply = request(
        d,
        "POST",
        "/logout",
        &host,
        &format!("{bearer}Content-Length: 0\r\n"),
    );
    assert_eq!(status_of(&reply), 303, "{reply}");
    for path in DATA_PATHS {
        let reply = request(d, "GET", path, &host, &bearer);
        assert!(
            matches!(status_of(&reply), 401 | 303),
            "{path} after logout: {reply}"
        );
    }
}

#[test]
fn sessions_expire() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let config = HubConfig {
        session_ttl: Duration::from_millis(300),
        ..test_config()
    };
    let hub = serve(config, registry(), storage).unwrap();
    let d = hub.dashboard_addr().unwrap();
    let token = login(d, VIEWER, VIEWER_PASSWORD).unwrap();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get_with(d, "/v1/stats", &[("Authorization", &bearer)]).status,
        200
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        get_with(d, "/v1/stats", &[("Authorization", &bearer)]).status,
        401
    );
    hub.stop();
}

#[test]
fn login_sets_a_strict_cookie_and_refuses_wrong_passwords() {
    let t = TestHub::start();
    let d = t.dashboard();
    let host = d.to_string();
    let form = |name: &str, password: &str| {
        let body = format!("name={name}&password={}", password.replace(' ', "+"));
        format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // The form itself is open (it shows nothing of the fleet).
    let page = request(d, "GET", "/login", &host, "");
    assert_eq!(status_of(&page), 200);
    assert!(page.contains("<form method=\"post\" action=\"/login\">"));
    // A browser's login: 303 to / with the session cookie.
    let reply = raw(
        d,
        format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{}",
            form(VIEWER, VIEWER_PASSWORD)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&reply), 303, "{reply}");
    let cookie_line = reply
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {reply}"));
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            cookie_line.split(';').any(|p| p.trim() == flag),
            "{flag} missing: {cookie_line}"
        );
    }
    let pair = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let page = request(
        d,
        "GET",
        "/",
        &host,
        &format!("Cookie: theme=x; {pair}\r\n"),
    );
    assert_eq!(status_of(&page), 200, "{page}");
    assert!(page.contains("로그아웃") && page.contains(VIEWER), "{page}");
    let csp = page
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    // Wrong password, unknown viewer: 401, no cookie.
    for (name, password) in [(VIEWER, "wrong password here"), ("nobody", VIEWER_PASSWORD)] {
        let reply = raw(
            d,
            format!(
                "POST /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{}",
                form(name, password)
            )
            .as_bytes(),
        );
        assert_eq!(status_of(&reply), 401, "{reply}");
        assert!(
            !reply.to_ascii_lowercase().contains("set-cookie"),
            "{reply}"
        );
    }
    assert_eq!(login(d, VIEWER, "wrong password here"), Err(401));
    // A login form posted from another site's page is refused before the password check.
    let reply = raw(
        d,
        format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nConnection: close\r\n{}",
            form(VIEWER, VIEWER_PASSWORD)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&reply), 403, "{reply}");
    let stats = t.hub.stats();
    assert_eq!((stats.logins, stats.login_failures), (1, 3), "{stats:?}");
}

#[test]
fn wrong_host_is_refused_on_every_dashboard_path() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let config = HubConfig {
        dashboard_hosts: vec!["hub.example.co.kr".into()],
        ..test_config()
    };
    let hub = serve(config, registry(), storage).unwrap();
    let d = hub.dashboard_addr().unwrap();
    let token = login(d, VIEWER, VIEWER_PASSWORD).unwrap();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let port = d.port();
    for path in [
        "/",
        "/v1/summary",
        "/v1/stats",
        "/login",
        "/healthz",
        "/nope",
    ] {
        for host in [
            "evil.example".to_owned(),
            format!("evil.example:{port}"),
            format!("hub.example.co.kr.evil.example:{port}"),
            "".to_owned(),
        ] {
            let reply = request(d, "GET", path, &host, &bearer);
            assert_eq!(status_of(&reply), 421, "{path} for Host {host:?}: {reply}");
            assert!(!reply.contains("부산"));
        }
        // Two Host headers are refused too.
        let reply = request(
            d,
            "GET",
            path,
            "127.0.0.1",
            &format!("{bearer}Host: evil.example\r\n"),
        );
        assert_eq!(status_of(&reply), 421, "{path}: {reply}");
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("HUB.example.co.kr:{port}"),
            "hub.example.co.kr.".to_owned(),
        ] {
            let reply = request(d, "GET", path, &host, &bearer);
            assert_ne!(status_of(&reply), 421, "{path} for Host {host:?}: {reply}");
        }
    }
    // The login itself is refused under a wrong name (a rebinding page cannot log in).
    let reply = raw(
        d,
        b"POST /login HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\nConnection: close\r\n\r\nname=x&pa",
    );
    assert_eq!(status_of(&reply), 421, "{reply}");
    assert!(hub.stats().wrong_host >= 25, "{:?}", hub.stats());
    hub.stop();
}

#[test]
fn summary_is_shared_between_requests_but_never_older_than_the_last_batch() {
    let t = TestHub::start();
    let summary = |t: &TestHub| -> serde_json::Value {
        serde_json::from_slice(&t.view("/v1/summary").body).unwrap()
    };
    assert_eq!(summary(&t)["batches"], 0);
    assert_eq!(upload(t.addr(), &batch("busan-03", 1)).status, 200);
    assert_eq!(
        summary(&t)["batches"],
        1,
        "the cached summary outlived a new batch"
    );
    // A duplicate changes nothing; a new batch again shows at once.
    assert_eq!(upload(t.addr(), &batch("busan-03", 1)).status, 409);
    assert_eq!(summary(&t)["batches"], 1);
    assert_eq!(upload(t.addr(), &batch("seoul-01", 2)).status, 200);
    assert_eq!(summary(&t)["batches"], 2);
    // Many readers at once all get the same answer.
    let token = login(t.dashboard(), VIEWER, VIEWER_PASSWORD).unwrap();
    let bearer = format!("Bearer {token}");
    let d = t.dashboard();
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| get_with(d, "/v1/summary", &[("Authorization", &bearer)]).body))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

/// A store that panics on every call.
struct PanickingStorage;

impl Storage for PanickingStorage {
    fn insert(&self, _: &Batch, _: &[u8]) -> Result<Stored, StorageError> {
        panic!("the test store panics on insert")
    }
    fn batches(&self) -> Result<Vec<Batch>, StorageError> {
        panic!("the test store panics on read")
    }
    fn count(&self) -> Result<usize, StorageError> {
        Ok(0)
    }
    fn contains(&self, _: &str, _: u64) -> Result<bool, StorageError> {
        Ok(false)
    }
}

#[test]
fn a_panic_is_answered_500_and_the_hub_keeps_serving() {
    let hub = serve(test_config(), registry(), Arc::new(PanickingStorage)).unwrap();
    let b = batch("busan-03", 1);
    for _ in 0..3 {
        let reply = upload(hub.addr(), &b);
        assert_eq!(reply.status, 500, "{}", reply.text());
    }
    let d = hub.dashboard_addr().unwrap();
    let token = login(d, VIEWER, VIEWER_PASSWORD).unwrap();
    let reply = get_with(
        d,
        "/v1/summary",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(reply.status, 500);
    assert_eq!(get(hub.addr(), "/healthz").status, 200);
    assert_eq!(get(d, "/healthz").status, 200);
    hub.stop();
}

/// Holds a connection open by sending a request head one byte at a time, forever.
fn trickle(addr: SocketAddr, stop: &AtomicBool) -> Duration {
    let started = Instant::now();
    let Ok(mut s) = TcpStream::connect(addr) else {
        return started.elapsed();
    };
    s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let head = b"POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nX-Padding: ";
    let mut i = 0usize;
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let byte = head.get(i).copied().unwrap_or(b'a');
        if s.write_all(&[byte]).is_err() {
            break;
        }
        i += 1;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => break, // an answer (408) means the hub cut it off
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(190));
    }
    started.elapsed()
}

#[test]
fn two_hundred_trickling_connections_do_not_keep_fifty_boxes_out() {
    const BOXES: usize = 50;
    const BATCHES: u64 = 4;
    let ids: Vec<String> = (0..BOXES).map(|i| format!("box-{i:02}")).collect();
    let mut reg = Registry::new();
    for id in &ids {
        reg.insert(id, key(id), "부하 지점");
    }
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let header_timeout = Duration::from_secs(3);
    let config = HubConfig {
        header_timeout,
        ..test_config()
    };
    let hub = serve(config, reg, storage.clone()).unwrap();
    let addr = hub.addr();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (held, statuses) = std::thread::scope(|s| {
        let tricklers: Vec<_> = (0..200).map(|_| s.spawn(|| trickle(addr, &stop))).collect();
        // Should the hub never cut them off, the test still ends (and fails below).
        s.spawn(|| {
            let end = Instant::now() + header_timeout + Duration::from_secs(20);
            while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Let the slow connections settle in before the boxes come.
        std::thread::sleep(Duration::from_millis(500));
        let boxes: Vec<_> = ids
            .iter()
            .map(|id| {
                s.spawn(move || {
                    let agent = agent();
                    (1..=BATCHES)
                        .map(|seq| {
                            let b =
                                sangdam_hub::bench::sample_batch(id, seq, 20_758 + seq as u32, seq);
                            let body = b.encode().unwrap();
                            let sig = sangdam_wire::sign(&key(id), &body);
                            post_with(&agent, addr, Some(id), Some(&sig), &body).status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let statuses: Vec<u16> = boxes.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let delivered_in = started.elapsed();
        // The tricklers are cut off by the header timeout, not left to hold a slot.
        let held: Vec<Duration> = tricklers.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        eprintln!(
            "{} batches delivered in {delivered_in:?} beside 200 trickling connections",
            statuses.len()
        );
        (held, statuses)
    });
    assert_eq!(statuses.len(), BOXES * BATCHES as usize);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(storage.count().unwrap(), BOXES * BATCHES as usize);
    let longest = held.iter().max().unwrap();
    assert!(
        *longest < header_timeout + Duration::from_secs(3),
        "a trickling connection was held for {longest:?} (header timeout {header_timeout:?})"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    hub.stop();
}
