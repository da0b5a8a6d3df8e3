//! The `sangdam-hub` binary: clear errors, add-device, and acknowledged batches that
//! survive the process being killed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use sangdam_hub::{Registry, SledStorage, Storage};

use crate::common::*;

pub fn hub_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sangdam-hub"));
    c.env("RUST_LOG", "warn");
    c
}

fn output(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Writes the test devices' registry.
pub fn write_registry(path: &Path) {
    let mut text = String::new();
    for (id, branch) in DEVICES {
        text.push_str(&format!(
            "[[device]]\nid = \"{id}\"\nkey = \"{}\"\nbranch = \"{branch}\"\n",
            sangdam_wire::hex(&key(id))
        ));
    }
    std::fs::write(path, text).unwrap();
    // The hub refuses a registry that others may read.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// Starts `serve` on a free port; returns the child and its address.
fn spawn_serve(dir: &Path) -> (Child, SocketAddr) {
    spawn_serve_logging(dir, Stdio::inherit())
}

fn spawn_serve_logging(dir: &Path, stderr: Stdio) -> (Child, SocketAddr) {
    let mut child = hub_bin()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--store-threads",
            "8",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.join("data"))
        .arg("--registry")
        .arg(dir.join("registry.toml"))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

#[test]
fn acknowledged_batches_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(&dir.path().join("registry.toml"));
    let (mut child, addr) = spawn_serve(dir.path());
    let sent: Vec<_> = (1..=20).map(|seq| batch("busan-03", seq)).collect();
    for b in &sent {
        assert_eq!(upload(addr, b).status, 200);
    }
    // SIGKILL right after the last acknowledgement: no shutdown, no destructor, sled's
    // in-memory buffers are lost. What was acknowledged must be in the files already.
    child.kill().unwrap();
    child.wait().unwrap();
    let storage = SledStorage::open(&dir.path().join("data")).unwrap();
    assert_eq!(storage.count().unwrap(), 20);
    for b in &sent {
        assert!(storage.contains("busan-03", b.header.seq).unwrap());
    }
}

#[test]
fn missing_or_broken_registry_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    let serve = |registry: &Path| {
        output(
            hub_bin()
                .args(["serve", "--addr", "127.0.0.1:0", "--data"])
                .arg(dir.path().join("data"))
                .arg("--registry")
                .arg(registry),
        )
    };
    let (out, text) = serve(&registry);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("registry.toml") && text.contains("add-device"),
        "{text}"
    );
    std::fs::write(
        &registry,
        "[[device]]\nid = \"x\"\nkey = \"beef\"\nbranch = \"b\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &registry,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (out, text) = serve(&registry);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("entry #1") && text.contains("openssl rand"),
        "{text}"
    );
}

#[test]
fn busy_port_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(&dir.path().join("registry.toml"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (out, text) = output(
        hub_bin()
            .arg("serve")
            .arg("--addr")
            .arg(taken.local_addr().unwrap().to_string())
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--registry")
            .arg(dir.path().join("registry.toml")),
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("already in use"), "{text}");
}

#[test]
fn add_device_prints_the_key_once_and_the_hub_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    let (out, text) = output(
        hub_bin()
            .args([
                "add-device",
                "daegu-01",
                "--branch",
                "대구 1지점",
                "--registry",
            ])
            .arg(&registry),
    );
    assert!(out.status.success(), "{text}");
    let key_line = text
        .lines()
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no key printed: {text}"));
    let loaded = Registry::load(&registry).unwrap();
    let device = loaded.get("daegu-01").unwrap();
    assert_eq!(sangdam_wire::hex(&device.key), key_line);
    assert_eq!(device.branch, "대구 1지점");
}

#[test]
fn refusals_are_logged_with_reason_and_peer() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(&dir.path().join("registry.toml"));
    let (mut child, addr) = spawn_serve_logging(dir.path(), Stdio::piped());
    let (body, _) = signed(&batch("busan-03", 1));
    let forged = sangdam_wire::sign(&key("seoul-01"), &body);
    assert_eq!(
        post(addr, Some("busan-03"), Some(&forged), &body).status,
        401
    );
    assert_eq!(
        post(addr, Some("mallory"), Some(&forged), &body).status,
        403
    );
    // Each refusal is logged (stderr is unbuffered) before its answer is written, so both
    // lines are out by now.
    child.kill().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    child.wait().unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("rejected")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("bad_signature") && lines[0].contains("busan-03"),
        "{log}"
    );
    assert!(
        lines[1].contains("unknown_device") && lines[1].contains("mallory"),
        "{log}"
    );
    assert!(lines.iter().all(|l| l.contains("peer=127.0.0.1:")), "{log}");
}

#[test]
fn add_device_key_out_writes_a_private_file_and_prints_no_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    let key_file = dir.path().join("daegu-01.key");
    let (out, text) = output(
        hub_bin()
            .args(["add-device", "daegu-01", "--branch", "대구", "--registry"])
            .arg(&registry)
            .arg("--key-out")
            .arg(&key_file),
    );
    assert!(out.status.success(), "{text}");
    let written = std::fs::read_to_string(&key_file).unwrap();
    let loaded = Registry::load(&registry).unwrap();
    let key = sangdam_wire::hex(&loaded.get("daegu-01").unwrap().key);
    assert_eq!(written.trim(), key);
    assert!(!text.contains(&key[..8]), "the key was printed: {text}");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    // An existing file is not overwritten, and then nothing is registered.
    let (out, text) = output(
        hub_bin()
            .args(["add-device", "daegu-02", "--branch", "대구", "--registry"])
            .arg(&registry)
            .arg("--key-out")
            .arg(&key_file),
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(Registry::load(&registry).unwrap().get("daegu-02").is_none());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), written);
}

#[test]
fn serve_refuses_an_exposed_registry_and_reads_its_credential() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    write_registry(&registry);
    std::fs::set_permissions(&registry, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (out, text) = output(
        hub_bin()
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--registry")
            .arg(&registry),
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("0644") && text.contains("chmod 600"),
        "{text}"
    );
    // systemd's LoadCredential= copy: 0440 through its ACL, in $CREDENTIALS_DIRECTORY.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::copy(&registry, creds.join("registry.toml")).unwrap();
    std::fs::set_permissions(
        creds.join("registry.toml"),
        std::fs::Permissions::from_mode(0o440),
    )
    .unwrap();
    let mut child = hub_bin()
        .env("CREDENTIALS_DIRECTORY", &creds)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--registry")
        .arg(creds.join("registry.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening on"), "{line:?}");
}
