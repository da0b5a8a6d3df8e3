//! The `sangdam` binary end to end: analyse real (espeak-ng) speech with the fixture
//! model into a scratch store, list, show and export it, and the bad-input paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::fixture_models;

pub(crate) fn sangdam(data: &Path, models: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sangdam"));
    c.env("SANGDAM_DATA", data)
        .env("SANGDAM_MODELS", models)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    c
}

pub(crate) fn run(mut c: Command) -> (Output, String, String) {
    let out = c.output().expect("sangdam runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn tool(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap_or_else(|e| {
        panic!("{cmd} is needed by this test (scripts/setup installs it): {e}")
    });
    assert!(st.success(), "{cmd} {args:?} failed");
}

/// A two-channel 8 kHz call: the agent speaks first, the customer answers.
pub(crate) fn make_call(dir: &Path, name: &str, agent: &str, customer: &str) -> PathBuf {
    let a = dir.join(format!("{name}-a.wav"));
    let c = dir.join(format!("{name}-c.wav"));
    tool("espeak-ng", &["-v", "ko", "-w", a.to_str().unwrap(), agent]);
    tool(
        "espeak-ng",
        &["-v", "ko+f2", "-w", c.to_str().unwrap(), customer],
    );
    let a8 = dir.join(format!("{name}-a8.wav"));
    let c8 = dir.join(format!("{name}-c8.wav"));
    // Agent at 0.3 s, customer after the agent has finished (delay past its length).
    tool(
        "sox",
        &[
            a.to_str().unwrap(),
            "-r",
            "8000",
            a8.to_str().unwrap(),
            "pad",
            "0.3",
            "4.5",
        ],
    );
    tool(
        "sox",
        &[
            c.to_str().unwrap(),
            "-r",
            "8000",
            c8.to_str().unwrap(),
            "pad",
            "3.5",
            "1.0",
        ],
    );
    let out = dir.join(format!("{name}.wav"));
    tool(
        "sox",
        &[
            "-M",
            a8.to_str().unwrap(),
            c8.to_str().unwrap(),
            "-b",
            "16",
            out.to_str().unwrap(),
        ],
    );
    out
}

struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    models: PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let models = fixture_models(&root, "model.onnx");
    Scratch {
        data: root.join("data"),
        models,
        root,
        _dir: dir,
    }
}

#[test]
fn analyze_list_show_export_and_no_duplicates() {
    let s = scratch();
    let call = make_call(
        &s.root,
        "call1",
        "안녕하세요 상담원입니다",
        "카드 한도를 올리고 싶은데요",
    );
    let mut c = sangdam(&s.data, &s.models);
    c.arg("analyze").arg(&call);
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    // One line per utterance: the agent's and the customer's, in that order of time.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.iter().any(|l| l.contains("agent")), "{stdout}");
    assert!(lines.iter().any(|l| l.contains("customer")), "{stdout}");
    assert!(stderr.contains("stored"), "{stderr}");

    // calls: one row.
    let mut c = sangdam(&s.data, &s.models);
    c.arg("calls");
    let (out, stdout, _) = run(c);
    assert!(out.status.success());
    assert!(stdout.contains("call1.wav"), "{stdout}");

    // export: one JSON object, utterances in time order with both speakers.
    let mut c = sangdam(&s.data, &s.models);
    c.args(["export", "--format", "jsonl"]);
    let (out, stdout, _) = run(c);
    assert!(out.status.success());
    let objs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 1);
    let o = &objs[0];
    assert!(o["source"].as_str().unwrap().ends_with("call1.wav"));
    let dur = o["duration"].as_f64().unwrap();
    assert!(dur > 5.0 && dur < 12.0, "duration {dur}");
    let utts = o["utterances"].as_array().unwrap();
    assert!(utts.len() >= 2, "{o}");
    let starts: Vec<f64> = utts.iter().map(|u| u["start"].as_f64().unwrap()).collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "not in time order: {starts:?}"
    );
    assert_eq!(utts[0]["speaker"], "agent");
    assert_eq!(utts[0]["channel"], 0);
    assert!(utts
        .iter()
        .any(|u| u["speaker"] == "customer" && u["channel"] == 1));
    // The agent starts speaking at 0.3 s (padding may start the utterance a bit earlier).
    assert!(starts[0] < 0.5, "first utterance at {}", starts[0]);
    for u in utts {
        assert!(u["end"].as_f64().unwrap() > u["start"].as_f64().unwrap());
        assert!(u["text"].is_string());
    }

    // show by id prefix.
    let id = o["id"].as_str().unwrap();
    let mut c = sangdam(&s.data, &s.models);
    c.args(["show", &id[..8]]);
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(id), "{stdout}");
    assert_eq!(
        stdout.matches("customer").count() + stdout.matches("agent").count(),
        utts.len()
    );

    // Analysing the same content again (even under another name) stores nothing new.
    let copy = s.root.join("copy.wav");
    std::fs::copy(&call, &copy).unwrap();
    let mut c = sangdam(&s.data, &s.models);
    c.arg("analyze").arg(&call).arg(&copy);
    let (out, _, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("already stored").count(), 2, "{stderr}");
    let mut c = sangdam(&s.data, &s.models);
    c.args(["export", "--format", "jsonl"]);
    let (_, stdout, _) = run(c);
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn bad_files_fail_alone_and_the_rest_is_stored() {
    let s = scratch();
    let good = make_call(&s.root, "good", "네 말씀하세요", "환불 받고 싶어요");
    let bytes = std::fs::read(&good).unwrap();
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.wav", bytes[..30].to_vec(), "truncated"),
        ("empty.wav", Vec::new(), "empty"),
        (
            "notes.wav",
            b"this is a text file, not audio\n".repeat(10),
            "not a WAV",
        ),
        (
            "adpcm.wav",
            {
                let mut b = bytes.clone();
                b[20] = 2; // format tag 2: MS ADPCM
                b
            },
            "unsupported",
        ),
        (
            "corrupt.wav",
            {
                let mut b = bytes.clone();
                b[..4].copy_from_slice(b"RIFX");
                b
            },
            "WAV",
        ),
    ];
    let mut c = sangdam(&s.data, &s.models);
    c.arg("analyze");
    for (name, content, _) in &bad {
        let p = s.root.join(name);
        std::fs::write(&p, content).unwrap();
        c.arg(p);
    }
    c.arg(s.root.join("does-not-exist.wav"));
    c.arg(&good);
    let (out, _, stderr) = run(c);
    assert!(
        !out.status.success(),
        "must exit non-zero when a file failed"
    );
    let err_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(err_lines.len(), bad.len() + 1, "{stderr}");
    for (name, _, reason) in &bad {
        let line = err_lines
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no error line for {name}: {stderr}"));
        assert!(
            line.to_lowercase().contains(&reason.to_lowercase()),
            "{name}: expected '{reason}' in: {line}"
        );
    }
    assert!(
        err_lines.iter().any(|l| l.contains("does-not-exist.wav")),
        "{stderr}"
    );
    // The good file was still stored.
    let mut c = sangdam(&s.data, &s.models);
    c.args(["export", "--format", "jsonl"]);
    let (_, stdout, _) = run(c);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("good.wav"));
}

#[test]
fn missing_or_damaged_model_is_named() {
    let s = scratch();
    let call = make_call(&s.root, "m", "네", "아니요");
    // No model installed: the shipped manifest lists none.
    let empty = s.root.join("empty-models");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("manifest.toml"), "format = 1\n").unwrap();
    let mut c = sangdam(&s.data, &empty);
    c.arg("analyze").arg(&call);
    let (out, _, stderr) = run(c);
    assert!(!out.status.success());
    assert!(stderr.contains("no asr-ctc model is installed"), "{stderr}");

    // Altered model: the error names the file and both hashes.
    let model = s.models.join("asr-ko/model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&model, &bytes).unwrap();
    let mut c = sangdam(&s.data, &s.models);
    c.arg("analyze").arg(&call);
    let (out, _, stderr) = run(c);
    assert!(!out.status.success());
    assert!(
        stderr.contains("model.onnx") && stderr.contains("sha256"),
        "{stderr}"
    );
    assert!(stderr.contains("reinstall"), "{stderr}");
    let mut c = sangdam(&s.data, &s.models);
    c.arg("models");
    let (out, stdout, _) = run(c);
    assert!(!out.status.success());
    assert!(stdout.contains("FAIL"), "{stdout}");

    // Truncated model.
    std::fs::write(&model, &bytes[..1000]).unwrap();
    let mut c = sangdam(&s.data, &s.models);
    c.arg("analyze").arg(&call);
    let (_, _, stderr) = run(c);
    assert!(stderr.contains("truncated"), "{stderr}");
}

#[test]
fn config_defaults_and_malformed_config() {
    let s = scratch();
    let mut c = sangdam(&s.data, &s.models);
    c.args(["config", "--print-defaults"]);
    let (out, stdout, _) = run(c);
    assert!(out.status.success());
    assert!(stdout.contains("# Folder of the store"), "{stdout}");
    let cfg = s.root.join("sangdam.toml");
    std::fs::write(&cfg, &stdout).unwrap();
    // The printed defaults are accepted as a config file.
    let mut c = sangdam(&s.data, &s.models);
    c.arg("--config").arg(&cfg).arg("config");
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("sangdam.toml"));

    std::fs::write(&cfg, "[store]\ndata_directory = \"/tmp/x\"\n").unwrap();
    let mut c = sangdam(&s.data, &s.models);
    c.arg("--config").arg(&cfg).arg("calls");
    let (out, _, stderr) = run(c);
    assert!(!out.status.success());
    assert!(
        stderr.contains("sangdam.toml") && stderr.contains("data_directory"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
}

#[test]
fn data_flag_overrides_environment() {
    let s = scratch();
    let call = make_call(&s.root, "d", "네", "감사합니다");
    let other = s.root.join("other-data");
    let mut c = sangdam(&s.data, &s.models);
    c.arg("--data").arg(&other).arg("analyze").arg(&call);
    let (out, _, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert!(other.is_dir());
    let mut c = sangdam(&s.data, &s.models);
    c.args(["export", "--format", "jsonl"]);
    let (_, stdout, _) = run(c);
    assert_eq!(
        stdout.lines().count(),
        0,
        "SANGDAM_DATA store must be untouched"
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "analyze", "calls", "show", "export", "config", "models", "bench",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sangdam"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{sub}"
        );
    }
}
