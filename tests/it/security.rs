//! Issue 18: keys are never shown and never read from files other users may read, the
//! report server answers only to its own names (DNS rebinding), and the systemd units
//! keep their hardening.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sangdam::config::Config;
use sangdam::sync::SyncConfig;

use crate::cli::{run, sangdam};

const KEY: &str = "5f0c93e1a7b24d6e8f10c2a4b6d8e0f25f0c93e1a7b24d6e8f10c2a4b6d8e0f2";

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sync_section(key_line: &str) -> String {
    format!("[sync]\nenabled = true\nhub_url = \"http://127.0.0.1:1\"\ndevice_id = \"busan-03\"\n{key_line}\nallow_plain_http = true\n")
}

#[test]
fn config_command_never_prints_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("sangdam.toml");
    write_mode(&cfg, &sync_section(&format!("key = \"{KEY}\"")), 0o640);
    let mut c = sangdam(&data, Path::new("models"));
    c.arg("--config").arg(&cfg).arg("config");
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("key = \"<set>\""), "{stdout}");
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY) && !stdout.contains(&KEY[..16]),
        "the key was printed: {stdout}"
    );
    // The rest of the configuration is shown as it is.
    assert!(stdout.contains("device_id = \"busan-03\""), "{stdout}");
    // Without a key: "<unset>".
    write_mode(&cfg, "[store]\ndata_dir = \"x\"\n", 0o640);
    let mut c = sangdam(&data, Path::new("models"));
    c.arg("--config").arg(&cfg).arg("config");
    let (_, stdout, _) = run(c);
    assert!(stdout.contains("key = \"<unset>\""), "{stdout}");

    // Debug (what a log line of the config would show) hides it too.
    let parsed = Config::parse(&sync_section(&format!("key = \"{KEY}\""))).unwrap();
    let debug = format!("{parsed:?} {:#?}", parsed.sync);
    assert!(!debug.contains(&KEY[..16]), "{debug}");
    assert!(debug.contains("<set>"), "{debug}");
    assert!(!parsed.shown().unwrap().contains(&KEY[..16]));

    // A key written wrongly is not quoted back in the parse error.
    for bad in [
        format!("key = {KEY}"),
        format!("key = \"{KEY}"),
        format!("kye = \"{KEY}\""),
        format!("key = 0x{}", &KEY[..12]),
    ] {
        let e = Config::parse(&sync_section(&bad)).unwrap_err();
        assert!(!e.contains(&KEY[..8]), "{bad}: {e}");
        assert!(e.contains("line 5"), "{bad}: {e}");
    }
    // Other errors still quote their line.
    let e = Config::parse("[asr]\nbatch = \"two\"\n").unwrap_err();
    assert!(e.contains("batch = \"two\""), "{e}");
}

#[test]
fn a_key_file_others_may_read_is_refused_and_a_private_one_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sync.key");
    let cfg = SyncConfig {
        key_file: file.clone(),
        ..SyncConfig::default()
    };
    for mode in [0o644, 0o640, 0o604, 0o620, 0o660] {
        write_mode(&file, &format!("{KEY}\n"), mode);
        let e = format!("{:#}", cfg.load_key().unwrap_err());
        assert!(e.contains(&file.display().to_string()), "{e}");
        assert!(e.contains(&format!("{mode:04o}")), "{e}");
        assert!(
            e.contains("chmod 600") && e.contains("chown sangdam"),
            "{e}"
        );
        assert!(!e.contains(&KEY[..8]), "{e}");
    }
    for mode in [0o600, 0o400] {
        write_mode(&file, &format!("{KEY}\n"), mode);
        let key = cfg.load_key().unwrap();
        assert_eq!(sangdam_wire::hex(&key), KEY);
    }
}

#[test]
fn a_config_holding_the_key_that_others_may_read_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sangdam.toml");
    let text = sync_section(&format!("key = \"{KEY}\""));
    write_mode(&cfg, &text, 0o644);
    let e = Config::load(Some(&cfg)).unwrap_err().to_string();
    assert!(e.contains(&cfg.display().to_string()), "{e}");
    assert!(e.contains("0644") && e.contains("chmod 640"), "{e}");
    assert!(!e.contains(&KEY[..8]), "{e}");
    // The binary refuses it too, whatever the command.
    let mut c = sangdam(&tmp.path().join("data"), Path::new("models"));
    c.arg("--config").arg(&cfg).arg("config");
    let (out, stdout, stderr) = run(c);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("0644") && !stdout.contains(&KEY[..8]));
    // 0640 (root:sangdam on the box) is accepted, and so is a 0644 config without a key.
    write_mode(&cfg, &text, 0o640);
    assert!(Config::load(Some(&cfg)).is_ok());
    write_mode(
        &cfg,
        &sync_section("key_file = \"/etc/sangdam/sync.key\""),
        0o644,
    );
    assert!(Config::load(Some(&cfg)).is_ok());
}

#[test]
fn a_relative_key_file_is_read_from_the_credentials_directory() {
    use sangdam::sync::credential_path;
    let creds = std::ffi::OsStr::new("/run/credentials/sangdam.service");
    assert_eq!(
        credential_path(Path::new("sangdam-sync.key"), Some(creds)),
        PathBuf::from("/run/credentials/sangdam.service/sangdam-sync.key")
    );
    assert_eq!(
        credential_path(Path::new("/etc/sangdam/sync.key"), Some(creds)),
        PathBuf::from("/etc/sangdam/sync.key")
    );
    assert_eq!(
        credential_path(Path::new("sync.key"), None),
        PathBuf::from("sync.key")
    );
    assert_eq!(
        credential_path(Path::new("sync.key"), Some(std::ffi::OsStr::new(""))),
        PathBuf::from("sync.key")
    );
    // The binary: a key file only in $CREDENTIALS_DIRECTORY is found by `sangdam sync
    // --now`, which then fails on the dead hub, not on the key. systemd grants the service
    // read access there with an ACL, which makes the mode 0440: that is accepted there.
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    write_mode(&creds.join("sangdam-sync.key"), KEY, 0o440);
    let cfg = tmp.path().join("sangdam.toml");
    write_mode(
        &cfg,
        &(sync_section("key_file = \"sangdam-sync.key\"") + "timeout_s = 1\nretries = 1\n"),
        0o640,
    );
    let mut c = sangdam(&tmp.path().join("data"), Path::new("models"));
    c.current_dir(tmp.path())
        .env("CREDENTIALS_DIRECTORY", &creds)
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--now"]);
    let (_, stdout, stderr) = run(c);
    let text = stdout + &stderr;
    assert!(!text.contains("sync.key_file"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    // Without it the relative path is looked for in the working folder, and not found.
    let mut c = sangdam(&tmp.path().join("data"), Path::new("models"));
    c.current_dir(tmp.path())
        .env_remove("CREDENTIALS_DIRECTORY")
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--now"]);
    let (out, _, stderr) = run(c);
    assert!(!out.status.success());
    assert!(stderr.contains("sangdam-sync.key"), "{stderr}");
}

#[test]
fn allowed_hosts_are_localhost_addresses_and_the_configured_names() {
    use sangdam::insights::report::AllowedHosts;
    let d = AllowedHosts::default();
    for ok in [
        "localhost",
        "LOCALHOST:8787",
        "localhost.",
        "127.0.0.1",
        "127.0.0.1:8787",
        "[::1]",
        "[::1]:8787",
        "192.168.0.50:8787",
    ] {
        assert!(d.allows(ok), "{ok}");
    }
    for bad in [
        "evil.example",
        "evil.example:8787",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "sangdam-07.branch.local",
        "",
        "::1",
        "[::1",
        "localhost:80:80",
        "local host",
        "localhost/",
    ] {
        assert!(!d.allows(bad), "{bad:?}");
    }
    let names = AllowedHosts::new(&["Sangdam-07.branch.local".into()]);
    assert!(names.allows("sangdam-07.branch.local:8787"));
    assert!(!names.allows("evil.example"));
    assert!(AllowedHosts::new(&["*".into()]).allows("evil.example"));
    // A name that is no host name is a config error.
    let e = Config::parse("[insights]\nallowed_hosts = [\"http://box/\"]\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(e.contains("insights.allowed_hosts"), "{e}");
}

/// Sends one request with `headers` and returns the whole answer.
fn get(addr: &str, headers: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(s, "GET / HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn serve_refuses_other_host_names_over_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::insights::fill_store(&data, 12);
    let cfg = tmp.path().join("sangdam.toml");
    write_mode(
        &cfg,
        "[insights]\nallowed_hosts = [\"sangdam-07.branch.local\"]\n",
        0o640,
    );
    let mut c = sangdam(&data, Path::new("models"));
    c.arg("--config")
        .arg(&cfg)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("serving insights on http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    // DNS rebinding: the attacker's name, resolved to this box.
    for evil in [
        "Host: evil.example\r\n".to_owned(),
        format!("Host: evil.example:{port}\r\n"),
        format!("Host: localhost:{port}\r\nHost: evil.example\r\n"),
    ] {
        let a = get(&addr, &evil);
        assert!(a.starts_with("HTTP/1.1 421 "), "{evil}: {a}");
        assert!(!a.contains("<svg"), "{evil}: the page was served");
    }
    // The box's own names get the page (it has no login).
    for good in [
        format!("Host: {addr}\r\n"),
        format!("Host: localhost:{port}\r\n"),
        format!("Host: sangdam-07.branch.local:{port}\r\n"),
    ] {
        let a = get(&addr, &good);
        assert!(
            a.starts_with("HTTP/1.1 200 ") && a.contains("<svg"),
            "{good}: {}",
            &a[..a.len().min(300)]
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn board(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("board")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `[Service]` settings of a unit, one `key=value` per entry (comments dropped).
fn service_lines(unit: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(str::to_owned)
        .collect()
}

/// `systemd-analyze security --offline=yes` of `unit` (text, saved as `name`): the
/// overall exposure, or `None` where that systemd is missing or too old.
fn exposure(dir: &Path, name: &str, unit: &str) -> Option<f64> {
    let path = dir.join(name);
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_units_keep_their_hardening() {
    let box_unit = board("sangdam.service");
    let hub_unit = board("sangdam-hub.service");
    let common = [
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "UMask=0077",
    ];
    for (name, unit, own) in [
        (
            "sangdam.service",
            &box_unit,
            &[
                "User=sangdam",
                "DevicePolicy=closed",
                "DeviceAllow=char-alsa rw",
                "LoadCredential=sangdam-sync.key:/etc/sangdam/sync.key",
            ][..],
        ),
        (
            "sangdam-hub.service",
            &hub_unit,
            &[
                "User=sangdam-hub",
                "StateDirectory=sangdam-hub",
                "PrivateDevices=yes",
                "PrivateUsers=yes",
                "LoadCredential=registry.toml:/etc/sangdam-hub/registry.toml",
            ][..],
        ),
    ] {
        let lines = service_lines(unit);
        for needed in common.iter().chain(own) {
            assert!(lines.iter().any(|l| l == needed), "{name} lacks {needed}");
        }
        // Nothing widens them again further down.
        for bad in [
            "CapabilityBoundingSet=CAP_",
            "AmbientCapabilities=CAP_",
            "User=root",
        ] {
            assert!(!lines.iter().any(|l| l.starts_with(bad)), "{name}: {bad}");
        }
    }
    // The hub reads its registry from the credential, which it cannot find otherwise.
    assert!(hub_unit.contains("--registry %d/registry.toml"));
    // The hub's unit is valid (the box's is checked by board::systemd_unit_verifies_cleanly).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sangdam-hub.service");
    std::fs::write(
        &path,
        hub_unit.replace("/usr/local/bin/sangdam-hub", "/bin/true"),
    )
    .unwrap();
    match std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            let complaints: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("sangdam-hub.service"))
                .collect();
            assert!(out.status.success() && complaints.is_empty(), "{text}");
        }
        Err(e) => eprintln!("SKIPPED systemd-analyze verify: {e}"),
    }
    // The box's config points its key at the credential (a relative key_file).
    let example = board("sangdam.toml");
    assert!(
        example.contains("key_file = \"sangdam-sync.key\""),
        "board/sangdam.toml"
    );

    // The scores documented in the units (1.5 and 1.1 with systemd 252) hold, with some
    // room for other systemd versions (when this one can measure them at all).
    for (name, unit, most) in [
        ("sangdam.service", &box_unit, 2.0),
        ("sangdam-hub.service", &hub_unit, 1.5),
    ] {
        let Some(score) = exposure(tmp.path(), name, unit) else {
            eprintln!("SKIPPED systemd-analyze security --offline: not available");
            return;
        };
        assert!(score <= most, "{name}: exposure {score} > {most}");
    }
    // The measurement notices a missing setting.
    let weaker = box_unit.replace("CapabilityBoundingSet=\n", "");
    assert!(exposure(tmp.path(), "sangdam.service", &weaker).unwrap() > 2.0);
}
