//! The model the box ships (`models/`): its manifest checks out, and `sangdam analyze`
//! on the bundled sample calls (held-out voices, telephone channel) prints the Korean
//! the calls say, per speaker, within the character error rate pinned here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sangdam::models::{Manifest, ModelKind};

/// CER the shipped int8 model must stay within on the sample calls, all speakers
/// together (spaces ignored). Measured when the model was trained: see
/// models/manifest.toml (`cer_samples_int8`).
const MAX_SAMPLES_CER: f64 = 0.10;

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn no_spaces(s: &str) -> Vec<char> {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn shipped_manifest_verifies_and_has_the_speech_model() {
    let m = Manifest::load(Path::new("models")).unwrap();
    let verified = m.verify().unwrap();
    assert!(verified
        .iter()
        .any(|v| v.entry.kind == ModelKind::AsrCtc && v.entry.name == "asr-ko"));
    let e = m.models.iter().find(|e| e.name == "asr-ko").unwrap();
    assert!(e.bytes <= 25_000_000, "{} bytes", e.bytes);
    assert!(
        e.made.contains("synthetic"),
        "the manifest must say how the model was made"
    );
}

#[test]
fn analyze_prints_what_the_sample_calls_say() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sangdam"))
            .env("SANGDAM_DATA", &data)
            .env("SANGDAM_MODELS", "models")
            .env_remove("RUST_LOG")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["analyze", "samples"]);
    let exported = run(&["export", "--format", "jsonl"]);

    // Expected text per (file, speaker), lines in order.
    let tsv = std::fs::read_to_string("samples/transcripts.tsv").unwrap();
    let mut expected: BTreeMap<(String, String), String> = BTreeMap::new();
    for l in tsv.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        let e = expected
            .entry((f[0].to_string(), f[1].to_string()))
            .or_default();
        e.push_str(f[2]);
        e.push(' ');
    }
    let mut got: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in exported.lines() {
        let call: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = Path::new(call["source"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for u in call["utterances"].as_array().unwrap() {
            let e = got
                .entry((file.clone(), u["speaker"].as_str().unwrap().to_string()))
                .or_default();
            e.push_str(u["text"].as_str().unwrap());
            e.push(' ');
        }
    }
    let (mut errors, mut chars) = (0, 0);
    for (key, reference) in &expected {
        let hyp = got.get(key).map(String::as_str).unwrap_or("");
        let (r, h) = (no_spaces(reference), no_spaces(hyp));
        let d = edit_distance(&r, &h);
        eprintln!(
            "{key:?}: «{}» → «{}» ({d} edits)",
            reference.trim(),
            hyp.trim()
        );
        errors += d;
        chars += r.len();
    }
    let cer = errors as f64 / chars as f64;
    eprintln!(
        "sample calls: CER {:.2}% over {chars} characters",
        cer * 100.0
    );
    assert!(cer <= MAX_SAMPLES_CER, "CER {cer}");
}
