//! A hub on a free loopback port with a fresh store, and clients that speak to it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sangdam_hub::bench::sample_batch;
use sangdam_hub::{serve, HubConfig, Registry, RunningHub, SledStorage, Viewers};
use sangdam_wire::{Ack, Batch, BATCH_PATH, DEVICE_HEADER, SIGNATURE_HEADER};

/// Registered devices: (id, branch).
pub const DEVICES: &[(&str, &str)] = &[
    ("busan-03", "부산 3지점"),
    ("busan-04", "부산 3지점"),
    ("seoul-01", "서울 강남지점"),
];

/// A fixed 32-byte key per device id.
pub fn key(id: &str) -> Vec<u8> {
    (0..32u8)
        .map(|i| {
            id.bytes()
                .fold(i.wrapping_mul(31), |a, b| a.wrapping_mul(7).wrapping_add(b))
        })
        .collect()
}

pub fn registry() -> Registry {
    let mut r = Registry::new();
    for (id, branch) in DEVICES {
        r.insert(id, key(id), branch);
    }
    r
}

pub struct TestHub {
    pub hub: RunningHub,
    pub storage: Arc<SledStorage>,
    pub _dir: tempfile::TempDir,
}

impl TestHub {
    pub fn start() -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let (hub, storage) = start_in(dir.path());
        TestHub {
            hub,
            storage,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.hub.addr()
    }

    pub fn dashboard(&self) -> SocketAddr {
        self.hub
            .dashboard_addr()
            .expect("the test hub serves a dashboard")
    }

    /// GET on the dashboard as the test viewer (logged in for this request).
    pub fn view(&self, path: &str) -> Reply {
        let token =
            login(self.dashboard(), VIEWER, VIEWER_PASSWORD).expect("the test viewer logs in");
        get_with(
            self.dashboard(),
            path,
            &[("Authorization", &format!("Bearer {token}"))],
        )
    }
}

/// The dashboard account every test hub has.
pub const VIEWER: &str = "kim.analyst";
pub const VIEWER_PASSWORD: &str = "correct horse battery staple";

pub fn viewers() -> Viewers {
    let mut v = Viewers::new();
    v.insert(VIEWER, VIEWER_PASSWORD).unwrap();
    v
}

/// Test-sized config: ingest and dashboard on free loopback ports, one viewer.
pub fn test_config() -> HubConfig {
    HubConfig {
        store_threads: 16,
        dashboard: Some("127.0.0.1:0".parse().unwrap()),
        viewers: viewers(),
        ..HubConfig::new("127.0.0.1:0".parse().unwrap())
    }
}

/// POSTs the login form asking for JSON; the session token, or the status on refusal.
pub fn login(dashboard: SocketAddr, name: &str, password: &str) -> Result<String, u16> {
    let mut response = agent()
        .post(format!("http://{dashboard}/login"))
        .header("Accept", "application/json")
        .send_form([("name", name), ("password", password)])
        .unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return Err(status);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    Ok(v["token"].as_str().unwrap().to_owned())
}

/// GET with extra headers, redirects not followed.
pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(format!("http://{addr}{path}"));
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    let mut response = request.call().unwrap();
    Reply {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_vec().unwrap(),
    }
}

pub fn start_in(dir: &Path) -> (RunningHub, Arc<SledStorage>) {
    let storage = Arc::new(SledStorage::open(dir).unwrap());
    let hub = serve(test_config(), registry(), storage.clone()).unwrap();
    (hub, storage)
}

/// Batch `seq` of `device` for day 20758 + seq (2026-11-01 onwards).
pub fn batch(device: &str, seq: u64) -> Batch {
    sample_batch(
        device,
        seq,
        20_758 + seq as u32,
        seq * 1000 + device.len() as u64,
    )
}

/// The frame and its signature under the device's own key.
pub fn signed(batch: &Batch) -> (Vec<u8>, String) {
    let body = batch.encode().unwrap();
    let sig = sangdam_wire::sign(&key(&batch.header.device), &body);
    (body, sig)
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ack(&self) -> Ack {
        Ack::decode(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} with a body that is no Ack ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs `body` to the batch path with the given headers (None leaves one out).
pub fn post(addr: SocketAddr, device: Option<&str>, signature: Option<&str>, body: &[u8]) -> Reply {
    post_with(&agent(), addr, device, signature, body)
}

pub fn post_with(
    agent: &ureq::Agent,
    addr: SocketAddr,
    device: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Reply {
    let mut request = agent.post(format!("http://{addr}{BATCH_PATH}"));
    if let Some(d) = device {
        request = request.header(DEVICE_HEADER, d);
    }
    if let Some(s) = signature {
        request = request.header(SIGNATURE_HEADER, s);
    }
    let mut response = request.send(body).unwrap();
    Reply {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_vec().unwrap(),
    }
}

/// Posts a batch signed by its own device.
pub fn upload(addr: SocketAddr, batch: &Batch) -> Reply {
    let (body, sig) = signed(batch);
    post(addr, Some(&batch.header.device), Some(&sig), &body)
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut response = agent().get(format!("http://{addr}{path}")).call().unwrap();
    Reply {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_vec().unwrap(),
    }
}

/// Writes raw bytes on a fresh connection and returns everything the hub answers until
/// it closes the connection (or 10 s pass).
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in `raw`'s output.
pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {response:?}"))
}
