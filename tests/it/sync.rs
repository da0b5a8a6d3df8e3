//! Upstream sync against a real hub on loopback: an office offline for weeks, a full
//! outbox, a hub that fails and stalls mid-run, and a box killed with SIGKILL during a
//! send. Every batch must arrive exactly once and every count must add up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sangdam::config::Config;
use sangdam::store::Store;
use sangdam::sync::Syncer;
use sangdam_hub::{serve, HubConfig, Registry, RunningHub, SledStorage, Storage};

use crate::insights::fill_store;

const DEVICE: &str = "busan-03";
const KEY: &str = "6b6579206f6620746865206275736e2d30332062786f78206b6579206b657921";
/// The day after the last call `fill_store` writes (its calls span 40 days).
const NOW: u64 = 1_764_000_000 + 41 * 86_400;

fn hub(dir: &Path) -> (RunningHub, Arc<SledStorage>) {
    let storage = Arc::new(SledStorage::open(dir).unwrap());
    let mut reg = Registry::new();
    reg.insert(DEVICE, sangdam_wire::parse_key(KEY).unwrap(), "부산 3지점");
    let cfg = HubConfig {
        store_threads: 8,
        ..HubConfig::new("127.0.0.1:0".parse().unwrap())
    };
    let h = serve(cfg, reg, storage.clone()).unwrap();
    (h, storage)
}

fn config(url: &str, extra: &str) -> Config {
    let retries = if extra.contains("retries") {
        ""
    } else {
        "retries = 2\n"
    };
    Config::parse(&format!(
        "[sync]\nenabled = true\nhub_url = \"{url}\"\nallow_plain_http = true\ndevice_id = \"{DEVICE}\"\nkey = \"{KEY}\"\ntimeout_s = 2\nmax_kbps = 100000\n{retries}{extra}"
    ))
    .unwrap()
}

/// A syncer for `c`'s `[sync]` section, as `sangdam run` and `sangdam sync` make one.
fn new_syncer(c: &Config, store: Store) -> Result<Syncer, sangdam::sync::SyncError> {
    Syncer::new(&c.sync, &c.insights.extra_stopwords, store)
}

fn syncer(store: &Store, url: &str, extra: &str) -> Syncer {
    new_syncer(&config(url, extra), store.clone()).unwrap()
}

/// A port nothing listens on.
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}")
}

/// Every stored batch's (seq, calls, days), and checks that no (device, seq) is there twice.
fn hub_contents(storage: &SledStorage) -> (Vec<u64>, u64, u64) {
    let batches = storage.batches().unwrap();
    let mut seqs: Vec<u64> = batches.iter().map(|b| b.header.seq).collect();
    seqs.sort();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a batch is stored twice");
    let calls = batches.iter().map(|b| b.report.counters.calls).sum();
    let days = batches
        .iter()
        .map(|b| u64::from(b.header.period.days))
        .sum();
    (seqs, calls, days)
}

#[test]
fn offline_for_forty_days_then_every_batch_arrives_once() {
    let tmp = tempfile::tempdir().unwrap();
    fill_store(&tmp.path().join("box"), 120);
    let store = Store::open(&tmp.path().join("box")).unwrap();
    let stop = AtomicBool::new(false);
    // The hub is down: the batches are built and kept.
    let r = syncer(&store, &dead_url(), "retries = 1")
        .run_once(&|| NOW, &stop)
        .unwrap();
    assert_eq!(r.built, 41, "{r}");
    assert_eq!(r.delivered, 0);
    assert!(
        r.error.as_deref().unwrap().contains("cannot reach the hub"),
        "{r}"
    );
    assert_eq!(store.outbox_len(), 41);
    // Days pass with the hub still down: nothing is rebuilt or lost.
    let r = syncer(&store, &dead_url(), "retries = 1")
        .run_once(&|| NOW + 3600, &stop)
        .unwrap();
    assert_eq!((r.built, store.outbox_len()), (0, 41));

    let (h, storage) = hub(&tmp.path().join("hub"));
    let s = syncer(&store, &h.url(), "");
    let r = s.run_once(&|| NOW + 7200, &stop).unwrap();
    assert_eq!((r.delivered, r.duplicates, r.remaining), (41, 0, 0), "{r}");
    assert!(r.error.is_none());
    let (seqs, calls, days) = hub_contents(&storage);
    assert_eq!(seqs, (1..=41).collect::<Vec<_>>());
    assert_eq!(calls, 120, "every call counted once");
    assert_eq!(days, 41);
    // Again: nothing new to send, nothing stored twice.
    let r = s.run_once(&|| NOW + 9000, &stop).unwrap();
    assert_eq!((r.built, r.delivered), (0, 0));
    assert_eq!(storage.count().unwrap(), 41);
    let state = s.state().unwrap();
    assert_eq!(state.delivered, 41);
    assert!(state.last_sync_unix.is_some());
    h.stop();
}

#[test]
fn a_full_outbox_merges_old_periods_and_keeps_every_count() {
    let tmp = tempfile::tempdir().unwrap();
    fill_store(&tmp.path().join("box"), 120);
    let store = Store::open(&tmp.path().join("box")).unwrap();
    let stop = AtomicBool::new(false);
    let r = syncer(&store, &dead_url(), "retries = 1\noutbox_max_batches = 8")
        .run_once(&|| NOW, &stop)
        .unwrap();
    assert_eq!(r.built, 41);
    assert!(r.merged >= 33, "{r}");
    assert!(store.outbox_len() <= 8);
    let (h, storage) = hub(&tmp.path().join("hub"));
    let r = syncer(&store, &h.url(), "outbox_max_batches = 8")
        .run_once(&|| NOW, &stop)
        .unwrap();
    assert_eq!(r.remaining, 0, "{r}");
    let (_, calls, days) = hub_contents(&storage);
    assert_eq!(calls, 120, "merging lost counts");
    assert_eq!(days, 41, "the merged periods cover every day once");
    let batches = storage.batches().unwrap();
    let singles: u64 = batches
        .iter()
        .map(|b| u64::from(b.report.merged.max(1)))
        .sum();
    assert_eq!(singles, 41);
    assert!(batches.iter().all(|b| b.report.lost == 0));
    h.stop();
}

/// A proxy in front of the hub that answers 500 to some requests and, for others,
/// forwards the request but answers only after the box has given up waiting.
struct Flaky {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

fn read_http(s: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    while buf.len() < head_end + len {
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    Some((
        buf[..head_end].to_vec(),
        buf[head_end..head_end + len].to_vec(),
    ))
}

/// Sends a request to the hub on a fresh connection; returns the status line and body.
fn forward(hub: SocketAddr, head: &[u8], body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(hub).unwrap();
    s.write_all(head).unwrap();
    s.write_all(body).unwrap();
    let (h, b) = read_http(&mut s).unwrap();
    let status = String::from_utf8_lossy(&h)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    (status, b)
}

impl Flaky {
    /// `plan(n)` for the n-th request (from 0): 0 forward, 1 answer 500, 2 forward and
    /// answer after `stall`.
    fn start(hub: SocketAddr, plan: fn(usize) -> u8, stall: Duration) -> Flaky {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (req, st) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                let Ok((mut s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let n = req.fetch_add(1, Ordering::AcqRel);
                std::thread::spawn(move || {
                    let Some((head, body)) = read_http(&mut s) else {
                        return;
                    };
                    let reply = |s: &mut TcpStream, status: &str, body: &[u8]| {
                        let _ = s.write_all(
                            format!(
                                "{status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        );
                        let _ = s.write_all(body);
                    };
                    match plan(n) {
                        1 => reply(&mut s, "HTTP/1.1 500 Internal Server Error", b"down"),
                        2 => {
                            let (status, b) = forward(hub, &head, &body);
                            std::thread::sleep(stall);
                            reply(&mut s, &status, &b);
                        }
                        _ => {
                            let (status, b) = forward(hub, &head, &body);
                            reply(&mut s, &status, &b);
                        }
                    }
                });
            }
        });
        Flaky {
            addr,
            requests,
            stop,
        }
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

#[test]
fn a_failing_and_stalling_hub_loses_nothing_and_stores_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    fill_store(&tmp.path().join("box"), 60);
    let store = Store::open(&tmp.path().join("box")).unwrap();
    let (h, storage) = hub(&tmp.path().join("hub"));
    // Every 5th request fails with 500; every 7th is stored by the hub but answered
    // after the box's 2 s timeout, so the box sends it again.
    let proxy = Flaky::start(
        h.addr(),
        |n| match n {
            n if n % 5 == 1 => 1,
            n if n % 7 == 3 => 2,
            _ => 0,
        },
        Duration::from_secs(3),
    );
    let s = syncer(&store, &format!("http://{}", proxy.addr), "retries = 4");
    let stop = AtomicBool::new(false);
    let mut runs = 0;
    loop {
        let r = s.run_once(&|| NOW, &stop).unwrap();
        runs += 1;
        if r.remaining == 0 {
            break;
        }
        assert!(runs < 10, "never drained: {r}");
    }
    let (seqs, calls, _) = hub_contents(&storage);
    assert_eq!(seqs, (1..=41).collect::<Vec<_>>());
    assert_eq!(calls, 60);
    let st = h.stats();
    assert!(
        st.duplicates >= 1,
        "the stalled answers must have caused resends: {st:?}"
    );
    assert!(proxy.requests.load(Ordering::Acquire) > 41);
    assert_eq!(s.state().unwrap().delivered, 41);
    h.stop();
}

#[test]
fn a_box_killed_during_a_send_resends_and_the_hub_stores_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    fill_store(&data, 10);
    let (h, storage) = hub(&tmp.path().join("hub"));
    // The first request reaches the hub, which stores it; the answer never comes back
    // before the box is killed.
    let proxy = Flaky::start(
        h.addr(),
        |n| if n == 0 { 2 } else { 0 },
        Duration::from_secs(60),
    );
    let write_cfg = |url: &str| {
        let p = tmp.path().join("sangdam.toml");
        std::fs::write(
            &p,
            format!("[sync]\nenabled = true\nhub_url = \"{url}\"\nallow_plain_http = true\ndevice_id = \"{DEVICE}\"\nkey = \"{KEY}\"\ntimeout_s = 30\n"),
        )
        .unwrap();
        // A config holding the key must not be readable by others (it is refused).
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        p
    };
    let cfg = write_cfg(&format!("http://{}", proxy.addr));
    let mut child = crate::cli::sangdam(&data, Path::new("models"))
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--now"])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while storage.count().unwrap() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the first batch never reached the hub"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert_eq!(storage.count().unwrap(), 1);
    // After the restart the same batch goes again: the hub says it has it.
    let cfg = write_cfg(&h.url());
    let (out, stdout, stderr) = crate::cli::run({
        let mut c = crate::cli::sangdam(&data, Path::new("models"));
        c.arg("--config").arg(&cfg).args(["sync", "--now"]);
        c
    });
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 already at the hub"), "{stdout}");
    // (The command runs on the real clock, a year after these calls: the outbox bound
    // merged old periods, so sequence numbers have gaps; counts must still add up.)
    let (_, calls, _) = hub_contents(&storage);
    assert_eq!(calls, 10);
    assert!(stdout.contains("0 waiting"), "{stdout}");
    h.stop();
}

#[test]
fn bad_keys_and_settings_are_clear_errors() {
    let e = Config::parse("[sync]\nenabled = true\nhub_url = \"ftp://x\"\n")
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sync.hub_url"), "{e}");
    let c = config("http://127.0.0.1:1", "").validate();
    assert!(c.is_ok(), "{c:?}");
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let bad = Config::parse(&format!(
        "[sync]\nenabled = true\nhub_url = \"http://127.0.0.1:1\"\nallow_plain_http = true\ndevice_id = \"{DEVICE}\"\nkey = \"abcd\"\n"
    ))
    .unwrap();
    let e = new_syncer(&bad, store.clone()).err().unwrap().to_string();
    assert!(e.contains("openssl rand -hex 32"), "{e}");
    // A key the hub does not know: 401, the batch is kept, the message names the fix.
    fill_store(&tmp.path().join("box"), 3);
    let boxed = Store::open(&tmp.path().join("box")).unwrap();
    let (h, storage) = hub(&tmp.path().join("hub"));
    let wrong = Config::parse(&format!(
        "[sync]\nenabled = true\nhub_url = \"{}\"\nallow_plain_http = true\ndevice_id = \"{DEVICE}\"\nkey = \"{}\"\n",
        h.url(),
        "11".repeat(32)
    ))
    .unwrap();
    let r = new_syncer(&wrong, boxed.clone())
        .unwrap()
        .run_once(&|| NOW, &AtomicBool::new(false))
        .unwrap();
    assert!(r.error.as_deref().unwrap().contains("sync.key"), "{r}");
    assert_eq!(r.remaining, 41);
    assert_eq!(storage.count().unwrap(), 0);
    h.stop();
}

/// A TLS front for the hub: terminates TLS with a certificate made by `openssl` for
/// 127.0.0.1 and forwards each request to the hub over plain TCP.
fn tls_front(hub: SocketAddr, dir: &Path) -> Option<(SocketAddr, std::path::PathBuf)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    // A private CA (what an office would put in sync.ca_file) and the hub's certificate
    // for 127.0.0.1 signed by it.
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr, ext) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("hub.csr"),
        dir.join("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: Vec<Vec<std::ffi::OsString>> = vec![
        ["req", "-x509", "-days", "2", "-subj", "/CN=sangdam test CA"]
            .iter()
            .chain(&ec)
            .map(Into::into)
            .chain([
                "-keyout".into(),
                ca_key.clone().into(),
                "-out".into(),
                ca.clone().into(),
            ])
            .collect(),
        ["req", "-subj", "/CN=127.0.0.1"]
            .iter()
            .chain(&ec)
            .map(Into::into)
            .chain([
                "-keyout".into(),
                key.clone().into(),
                "-out".into(),
                csr.clone().into(),
            ])
            .collect(),
        ["x509", "-req", "-days", "2", "-set_serial", "7"]
            .iter()
            .map(Into::into)
            .chain([
                "-in".into(),
                csr.clone().into(),
                "-CA".into(),
                ca.clone().into(),
                "-CAkey".into(),
                ca_key.clone().into(),
                "-extfile".into(),
                ext.clone().into(),
                "-out".into(),
                cert.clone().into(),
            ])
            .collect(),
    ];
    for args in steps {
        match std::process::Command::new("openssl").args(&args).output() {
            Ok(o) if o.status.success() => {}
            other => {
                eprintln!("SKIPPED HTTPS sync test: openssl could not make the certificates ({other:?}); scripts/setup installs openssl");
                return None;
            }
        }
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(tcp) = s else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // One request per connection, like the proxy above.
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    match tls.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap_or(0));
                while buf.len() < head_end + len {
                    match tls.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let (status, body) = forward(hub, &buf[..head_end], &buf[head_end..head_end + len]);
                let _ = tls.write_all(
                    format!(
                        "{status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                let _ = tls.write_all(&body);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    Some((addr, ca))
}

#[test]
fn https_with_the_custom_ca_of_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    fill_store(&tmp.path().join("box"), 12);
    let store = Store::open(&tmp.path().join("box")).unwrap();
    let (h, storage) = hub(&tmp.path().join("hub"));
    let Some((front, ca)) = tls_front(h.addr(), tmp.path()) else {
        return;
    };
    let url = format!("https://{front}");
    let stop = AtomicBool::new(false);
    // Without the CA the certificate is refused: nothing is delivered, nothing is lost.
    let r = syncer(&store, &url, "retries = 1")
        .run_once(&|| NOW, &stop)
        .unwrap();
    assert_eq!(r.delivered, 0, "{r}");
    assert!(r.error.is_some() && r.remaining == 41, "{r}");
    // With sync.ca_file naming it, everything goes over TLS.
    let r = syncer(&store, &url, &format!("ca_file = {:?}", ca))
        .run_once(&|| NOW, &stop)
        .unwrap();
    assert_eq!((r.delivered, r.remaining), (41, 0), "{r}");
    let (_, calls, _) = hub_contents(&storage);
    assert_eq!(calls, 12);
    // A CA file without a certificate is a clear error.
    let bad = tmp.path().join("empty.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let e = new_syncer(
        &config(&url, &format!("ca_file = {:?}", bad)),
        store.clone(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    h.stop();
}

#[test]
fn transcripts_leave_only_when_allowed_and_redacted() {
    use sangdam::audio::Speaker;
    use sangdam::store::{CallId, CallRecord, UtteranceRecord};
    let tmp = tempfile::tempdir().unwrap();
    // A call stored unredacted (privacy.redact_transcripts was off on this box).
    let utts = vec![UtteranceRecord {
        channel: 1,
        speaker: Speaker::Customer,
        start_s: 0.5,
        end_s: 3.0,
        text: "제 번호는 010-1234-5678 이고 카드가 안 돼요".into(),
        sentiment: None,
    }];
    let call = CallRecord {
        id: CallId([9; 16]),
        source: "x.wav".into(),
        duration_s: 3.0,
        sample_rate: 8000,
        channels: 2,
        analysed_at: NOW - 86_400,
        utterance_count: 1,
        asr_model: "asr-ko@test".into(),
        sentiment: None,
        talk: None,
        live: None,
    };
    let stop = AtomicBool::new(false);
    for (allowed, dir) in [(false, "hub-off"), (true, "hub-on")] {
        let (h, storage) = hub(&tmp.path().join(dir));
        // A box per setting, each with the same call.
        let data = tmp.path().join(format!("box-{dir}"));
        let boxed = Store::open(&data).unwrap();
        boxed.insert_call(&call, &utts).unwrap();
        let r = syncer(&boxed, &h.url(), &format!("transcripts = {allowed}"))
            .run_once(&|| NOW, &stop)
            .unwrap();
        assert_eq!(r.remaining, 0, "{r}");
        let batches = storage.batches().unwrap();
        let transcripts: Vec<_> = batches
            .iter()
            .flat_map(|b| b.report.transcripts.clone())
            .collect();
        if allowed {
            assert_eq!(transcripts.len(), 1);
            let (who, text) = &transcripts[0].lines[0];
            assert_eq!(*who, 2, "customer");
            assert!(
                text.contains("[전화번호]") && !text.contains("5678"),
                "{text}"
            );
            assert!(text.contains("카드가 안 돼요"), "{text}");
        } else {
            assert!(
                transcripts.is_empty(),
                "transcripts left the box with sync.transcripts off"
            );
            assert_eq!(
                batches.iter().map(|b| b.report.counters.calls).sum::<u64>(),
                1
            );
        }
        h.stop();
    }
}

/// A loopback "hub" that answers every POST with `answer(body)`: (status, body). For
/// answers a real hub never gives (issue 18: someone on the path answering for it).
struct FakeHub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeHub {
    fn start(answer: fn(&[u8]) -> (u16, Vec<u8>)) -> FakeHub {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some((_, body)) = read_http(&mut c) {
                    let (status, reply) = answer(&body);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.len()
                    );
                    let _ = c.write_all(head.as_bytes());
                    let _ = c.write_all(&reply);
                }
            }
        });
        FakeHub { addr, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn seq_of(body: &[u8]) -> u64 {
    sangdam_wire::Batch::decode(body).unwrap().header.seq
}

fn box_key() -> Vec<u8> {
    sangdam_wire::parse_key(KEY).unwrap()
}

/// Builds the 41 batches of `fill_store` at NOW, sends them to `fake`, and checks that
/// nothing left the outbox and the last good time did not move; returns the error.
fn forged_answer_keeps_the_batch(answer: fn(&[u8]) -> (u16, Vec<u8>)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    fill_store(&tmp.path().join("box"), 3);
    let store = Store::open(&tmp.path().join("box")).unwrap();
    let fake = FakeHub::start(answer);
    let s = syncer(&store, &fake.url(), "retries = 1");
    let r = s.run_once(&|| NOW, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.built, 41, "{r}");
    assert_eq!((r.delivered, r.remaining), (0, 41), "{r}");
    assert_eq!(store.outbox_len(), 41, "a forged answer deleted a batch");
    let state = s.state().unwrap();
    assert_eq!(state.delivered, 0);
    assert_eq!(
        state.last_good_unix, NOW,
        "a forged answer moved the good time"
    );
    assert_eq!(state.last_sync_unix, None);
    assert_eq!(
        state.next_seq, 42,
        "a forged answer moved the sequence counter"
    );
    assert_eq!(state.renumbered, 0);
    let seqs: Vec<u64> = store.outbox().unwrap().iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=41).collect::<Vec<_>>(),
        "a forged answer renumbered"
    );
    let e = r.error.unwrap();
    assert_eq!(
        state.last_error.as_deref(),
        Some(e.as_str()),
        "in the status"
    );
    e
}

#[test]
fn an_ack_signed_with_another_key_deletes_nothing() {
    let e = forged_answer_keeps_the_batch(|body| {
        let ack = sangdam_wire::Ack::signed(&[0x11; 32], DEVICE, seq_of(body), body, false, NOW);
        (200, ack.encode().unwrap())
    });
    assert!(
        e.contains("not signed with this box's key") && e.contains("sync.hub_url"),
        "{e}"
    );
}

#[test]
fn an_ack_for_another_seq_deletes_nothing() {
    let e = forged_answer_keeps_the_batch(|body| {
        let ack = sangdam_wire::Ack::signed(&box_key(), DEVICE, seq_of(body) + 1, body, false, NOW);
        (200, ack.encode().unwrap())
    });
    assert!(e.contains("not this box's batch"), "{e}");
}

#[test]
fn an_ack_for_another_body_deletes_nothing() {
    let e = forged_answer_keeps_the_batch(|body| {
        let ack = sangdam_wire::Ack::signed(&box_key(), DEVICE, seq_of(body), b"other", true, NOW);
        (409, ack.encode().unwrap())
    });
    assert!(e.contains("different body"), "{e}");
}

#[test]
fn an_unsigned_answer_deletes_nothing() {
    // The version-1 layout behind a 2 (what any well-formed unsigned Ack looks like).
    let e = forged_answer_keeps_the_batch(|body| {
        let ack = sangdam_wire::Ack::signed(&[0; 32], DEVICE, seq_of(body), body, false, NOW);
        let mut frame = ack.encode_as(1).unwrap();
        frame[0] = 2;
        (200, frame)
    });
    assert!(e.contains("without a valid signed acknowledgement"), "{e}");
    // A version-1 Ack (unsigned) for a version-2 batch.
    let e = forged_answer_keeps_the_batch(|body| {
        let ack = sangdam_wire::Ack::signed(&[0; 32], DEVICE, seq_of(body), body, false, NOW);
        (200, ack.encode_as(1).unwrap())
    });
    assert!(e.contains("hub answer not signed"), "{e}");
}

#[test]
fn a_forged_conflict_answer_renumbers_nothing() {
    // Signed with another key: anyone on the path answering 409 "conflict, use 1000".
    let e = forged_answer_keeps_the_batch(|body| {
        let c = sangdam_wire::Conflict::signed(&[0x11; 32], DEVICE, seq_of(body), body, 1000);
        (409, c.encode().unwrap())
    });
    assert!(
        e.contains("conflict answer") && e.contains("not signed with this box's key"),
        "{e}"
    );
    // Signed with the box's key but over another body (a replayed answer).
    let e = forged_answer_keeps_the_batch(|body| {
        let c = sangdam_wire::Conflict::signed(&box_key(), DEVICE, seq_of(body), b"x", 1000);
        (409, c.encode().unwrap())
    });
    assert!(e.contains("different body"), "{e}");
    // Signed, but naming a number that is not above the batch's.
    let e = forged_answer_keeps_the_batch(|body| {
        let seq = seq_of(body);
        let c = sangdam_wire::Conflict::signed(&box_key(), DEVICE, seq, body, seq);
        (409, c.encode().unwrap())
    });
    assert!(e.contains("not above it"), "{e}");
}

/// A call of no utterances analysed at `at` (what the day counters count).
fn plain_call(k: u8, at: u64) -> sangdam::store::CallRecord {
    sangdam::store::CallRecord {
        id: sangdam::store::CallId([k; 16]),
        source: format!("/rec/new-{k}.wav"),
        duration_s: 3.0,
        sample_rate: 8000,
        channels: 2,
        analysed_at: at,
        utterance_count: 0,
        asr_model: "asr-ko@test".into(),
        sentiment: None,
        talk: None,
        live: None,
    }
}

#[test]
fn a_box_whose_sync_state_was_lost_renumbers_from_the_hub_and_every_new_day_arrives() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    fill_store(&data, 120);
    let (h, storage) = hub(&tmp.path().join("hub"));
    let stop = AtomicBool::new(false);
    {
        let store = Store::open(&data).unwrap();
        let r = syncer(&store, &h.url(), "")
            .run_once(&|| NOW, &stop)
            .unwrap();
        assert_eq!((r.delivered, r.remaining), (41, 0), "{r}");
    }
    let before = storage.batches().unwrap();
    // The sled store is lost and only the journal is left (a damaged store, or a box
    // re-imaged with its data kept): opening rebuilds it from the journal, and the sync
    // tree, with the sequence counter, is not in the journal.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != sangdam::store::journal::JOURNAL_FILE {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let store = Store::open(&data).unwrap();
    assert!(store.recovery().is_some(), "not rebuilt from the journal");
    assert_eq!(store.call_count(), 120);
    let s = syncer(&store, &h.url(), "");
    assert_eq!(s.state().unwrap().next_seq, 1, "the counter starts again");
    // New calls on two new days.
    let (day1, day2) = (store.day_of(NOW).0, store.day_of(NOW + 86_400).0);
    for (k, at) in [
        (201, NOW + 60),
        (202, NOW + 120),
        (203, NOW + 180),
        (204, NOW + 86_400),
        (205, NOW + 86_460),
    ] {
        store.insert_call(&plain_call(k, at), &[]).unwrap();
    }
    let r = s.run_once(&|| NOW + 2 * 86_400, &stop).unwrap();
    assert!(r.error.is_none(), "{r}");
    assert_eq!(r.remaining, 0, "{r}");
    assert_eq!(r.delivered, r.built, "{r}");
    assert!(r.renumbered > 0, "the hub's conflict was not acted on: {r}");
    assert!(h.stats().conflicts >= 1, "{:?}", h.stats());
    // Every new day's counts are at the hub, once; nothing stored before was touched.
    let (seqs, _, _) = hub_contents(&storage);
    assert_eq!(calls_on_day(&storage, day1), vec![3]);
    assert_eq!(calls_on_day(&storage, day2), vec![2]);
    let batches = storage.batches().unwrap();
    for b in &before {
        assert!(batches.contains(b), "batch {} was replaced", b.header.seq);
    }
    // The counter is past everything at the hub: the next day goes without a conflict.
    let state = s.state().unwrap();
    assert_eq!(state.next_seq, seqs.last().unwrap() + 1);
    assert_eq!(state.renumbered, r.renumbered as u64);
    store
        .insert_call(&plain_call(206, NOW + 2 * 86_400 + 60), &[])
        .unwrap();
    let r = s.run_once(&|| NOW + 3 * 86_400, &stop).unwrap();
    assert_eq!((r.built, r.delivered, r.renumbered), (1, 1, 0), "{r}");
    assert_eq!(
        calls_on_day(&storage, store.day_of(NOW + 2 * 86_400).0),
        vec![1]
    );
    h.stop();
}

fn calls_on_day(storage: &SledStorage, day: u32) -> Vec<u64> {
    storage
        .batches()
        .unwrap()
        .iter()
        .filter(|b| b.header.period == sangdam_wire::Period::day(sangdam_wire::Day(day)))
        .map(|b| b.report.counters.calls)
        .collect()
}

#[test]
fn batches_carry_the_branchs_own_days() {
    use sangdam::store::{Day, TimeZone};
    let tmp = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let dec2 = Day::from_ymd(2026, 12, 2).unwrap();
    let dec3 = dec2.plus(1);
    // 2026-12-02 20:30 UTC and 2026-12-03 03:00 UTC: both on 3 December in Seoul.
    let night = dec2.start_unix(&TimeZone::UTC) + 20 * 3600 + 1800;
    let morning = night + 6 * 3600 + 1800;
    let sync_at = dec3.plus(1).start_unix(&TimeZone::UTC) + 10 * 3600;
    for (zone, want) in [
        ("Asia/Seoul", vec![(dec3.0, 2)]),
        // A box configured for UTC cuts at UTC midnight: one call on each day.
        ("UTC", vec![(dec2.0, 1), (dec3.0, 1)]),
    ] {
        let dir = tmp.path().join(zone.replace('/', "-"));
        let (h, storage) = hub(&dir.join("hub"));
        let store = Store::open_in(&dir.join("box"), zone).unwrap();
        store.insert_call(&plain_call(1, night), &[]).unwrap();
        store.insert_call(&plain_call(2, morning), &[]).unwrap();
        let r = syncer(&store, &h.url(), "")
            .run_once(&|| sync_at, &stop)
            .unwrap();
        assert!(r.error.is_none(), "{r}");
        assert_eq!(r.remaining, 0, "{r}");
        let got: Vec<(u32, u64)> = storage
            .batches()
            .unwrap()
            .iter()
            .filter(|b| b.report.counters.calls > 0)
            .map(|b| (b.header.period.first_day.0, b.report.counters.calls))
            .collect();
        assert_eq!(got, want, "{zone}");
        h.stop();
    }
}

#[test]
fn a_far_future_hub_time_never_stops_the_box_building() {
    let tmp = tempfile::tempdir().unwrap();
    fill_store(&tmp.path().join("box"), 3);
    let store = Store::open(&tmp.path().join("box")).unwrap();
    // Signed with the right key (a hub whose clock is years ahead, or a replayed key):
    // the batches are acknowledged, the time is not taken.
    let fake = FakeHub::start(|body| {
        let far = NOW + 10 * 365 * 86_400;
        let ack = sangdam_wire::Ack::signed(&box_key(), DEVICE, seq_of(body), body, false, far);
        (200, ack.encode().unwrap())
    });
    let s = syncer(&store, &fake.url(), "retries = 1");
    let r = s.run_once(&|| NOW, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.built, r.delivered, r.remaining), (41, 41, 0), "{r}");
    assert_eq!(
        s.state().unwrap().last_good_unix,
        NOW,
        "moved to the future"
    );
    // The next day is built as usual.
    let r = s
        .run_once(&|| NOW + 86_400, &AtomicBool::new(false))
        .unwrap();
    assert_eq!((r.built, r.delivered), (1, 1), "{r}");
    // A hub time within a day of the box's clock is taken.
    assert_eq!(
        sangdam::sync::plausible_hub_time(NOW + 600, NOW),
        Some(NOW + 600)
    );
    assert_eq!(
        sangdam::sync::plausible_hub_time(NOW + 2 * 86_400, NOW),
        None
    );
}

#[test]
fn plain_http_is_refused_unless_allowed() {
    let section = |url: &str, extra: &str| {
        Config::parse(&format!(
            "[sync]\nenabled = true\nhub_url = \"{url}\"\ndevice_id = \"{DEVICE}\"\nkey = \"{KEY}\"\n{extra}"
        ))
        .unwrap()
    };
    // The default: https only.
    assert!(!sangdam::sync::SyncConfig::default().allow_plain_http);
    let e = section("http://hub.example.co.kr:8470", "")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sync.allow_plain_http"), "{e}");
    assert!(e.contains("https://"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let e = new_syncer(&section("http://127.0.0.1:1", ""), store.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("sync.allow_plain_http"), "{e}");
    // https needs no opt-in; http with it is accepted (and warned about at start).
    let ok = section("https://hub.example.co.kr:8470", "").validate();
    assert!(ok.is_ok(), "{ok:?}");
    let ok = section("http://127.0.0.1:1", "allow_plain_http = true").validate();
    assert!(ok.is_ok(), "{ok:?}");
    assert!(new_syncer(
        &section("http://127.0.0.1:1", "allow_plain_http = true"),
        store
    )
    .is_ok());
    // Documented.
    assert!(sangdam::sync::FIELD_DOCS
        .iter()
        .any(|(k, d)| *k == "sync.allow_plain_http" && d.contains("default false")));
}
