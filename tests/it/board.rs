//! What a technician installs from board/: the systemd unit passes `systemd-analyze
//! verify`, the example config loads, and the pin map agrees with the config defaults.

use std::path::Path;
use std::process::Command;

fn board(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("board")
        .join(name)
}

/// Runs `systemd-analyze verify` on `unit` (text) with ExecStart pointing at the test
/// build; returns its complaints about this unit.
fn verify(dir: &Path, unit: &str) -> Option<Vec<String>> {
    let exe = env!("CARGO_BIN_EXE_sangdam");
    let path = dir.join("sangdam.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/sangdam", exe)).unwrap();
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED systemd-analyze verify: {e} (scripts/setup installs systemd)");
            return None;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let mut complaints: Vec<String> = text
        .lines()
        .filter(|l| l.contains("sangdam.service"))
        .map(str::to_owned)
        .collect();
    if !out.status.success() {
        complaints.push(format!("exit status {:?}: {text}", out.status.code()));
    }
    Some(complaints)
}

#[test]
fn systemd_unit_verifies_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(board("sangdam.service")).unwrap();
    let Some(complaints) = verify(tmp.path(), &unit) else {
        return;
    };
    assert!(complaints.is_empty(), "{complaints:#?}");
    // The check can fail: a misspelt key is reported.
    let bad = unit.replace("WatchdogSec=30", "WatchdogSecs=30");
    let complaints = verify(tmp.path(), &bad).unwrap();
    assert!(
        complaints.iter().any(|c| c.contains("WatchdogSecs")),
        "{complaints:#?}"
    );
    // What the daemon relies on.
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "User=sangdam",
        "KillSignal=SIGTERM",
        "ExecStart=/usr/local/bin/sangdam",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
}

#[test]
fn example_config_loads_and_names_the_adapter() {
    let (cfg, _) = sangdam::config::Config::load(Some(&board("sangdam.toml"))).unwrap();
    assert_eq!(cfg.live.device, "phone_line");
    assert_eq!(cfg.store.data_dir, Path::new("/var/lib/sangdam"));
    let asound = std::fs::read_to_string(board("asound.conf")).unwrap();
    assert!(asound.contains(&format!("pcm.{} ", cfg.live.device)));
}

#[test]
fn pin_map_matches_the_config_defaults() {
    let pins = std::fs::read_to_string(board("pins.md")).unwrap();
    let gpio_of = |function: &str| -> u32 {
        let row = pins
            .lines()
            .find(|l| l.starts_with(&format!("| {function}")))
            .unwrap_or_else(|| panic!("no row for {function}"));
        row.split('|').nth(2).unwrap().trim().parse().unwrap()
    };
    let d = sangdam::config::PanelConfig::default();
    assert_eq!(gpio_of("status LED"), d.led_line);
    assert_eq!(gpio_of("button"), d.button_line);
    let (cfg, _) = sangdam::config::Config::load(Some(&board("sangdam.toml"))).unwrap();
    assert_eq!(Some(gpio_of("off-hook line")), cfg.panel.hook());
}
