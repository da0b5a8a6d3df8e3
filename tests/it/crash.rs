//! Power cuts: `sangdam analyze` is killed with SIGKILL at random moments while it
//! stores a stream of calls, and after every kill the store must open, hold every call
//! the tool had acknowledged ("stored ..." is printed only after the write is flushed),
//! hold no half-written call, and keep day counters equal to what the stored calls add
//! up to.
//!
//! CI runs a few cycles; `scripts/kill-loop --cycles N` runs as many as asked
//! (`SANGDAM_KILL_CYCLES`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sangdam::audio::{WavWriter, WriteFormat};
use sangdam::store::Store;

use crate::support::{fixture, fixture_models, Rng};

/// `count` distinct short calls (the fixture's speech with a different lead-in each, so
/// every file has its own content hash), two channels at 8 kHz.
pub(crate) fn make_calls(dir: &Path, count: usize) -> Vec<PathBuf> {
    let mut speech = Vec::new();
    let mut r = sangdam::audio::CallFile::open(&fixture("utt0.wav")).unwrap();
    while let Some(b) = r.next_block().unwrap() {
        speech.extend_from_slice(&b[0]);
    }
    // 16 kHz -> 8 kHz by dropping every other sample (the fixture is band-limited
    // speech; this is a test signal, not a resampler).
    let speech: Vec<f32> = speech.iter().step_by(2).copied().collect();
    (0..count)
        .map(|i| {
            let p = dir.join(format!("call{i:03}.wav"));
            let lead = 800 + i * 37;
            let mut inter = Vec::new();
            for t in 0..lead + speech.len() + 2_000 {
                let s = if t >= lead && t - lead < speech.len() {
                    speech[t - lead]
                } else {
                    0.0
                };
                // agent quiet, customer speaks
                inter.push(0.0);
                inter.push(s);
            }
            let mut w = WavWriter::create(&p, 8_000, 2, WriteFormat::Pcm16).unwrap();
            w.write_interleaved(&inter).unwrap();
            w.finish().unwrap();
            p
        })
        .collect()
}

/// Checks the invariants; returns the number of stored calls.
fn check_store(data: &Path, acknowledged: &BTreeSet<String>) -> usize {
    let store =
        Store::open(data).unwrap_or_else(|e| panic!("store does not open after a kill: {e}"));
    let calls = store.calls().expect("calls readable");
    let ids: BTreeSet<String> = calls.iter().map(|c| c.id.short()).collect();
    for a in acknowledged {
        assert!(
            ids.contains(a),
            "acknowledged call {a} is missing after a kill"
        );
    }
    let mut utterances = 0u64;
    for c in &calls {
        let u = store.utterances(&c.id).expect("utterances readable");
        assert_eq!(
            u.len() as u32,
            c.utterance_count,
            "call {} is half-written",
            c.id.short()
        );
        utterances += u.len() as u64;
    }
    let days = store.days().expect("counters readable");
    let counted_calls: u64 = days.iter().map(|(_, d)| d.calls).sum();
    let counted_utts: u64 = days.iter().map(|(_, d)| d.utterances).sum();
    assert_eq!(
        counted_calls,
        calls.len() as u64,
        "day counters disagree with the calls"
    );
    assert_eq!(
        counted_utts, utterances,
        "day counters disagree with the utterances"
    );
    calls.len()
}

#[test]
fn store_survives_sigkill_at_random_moments() {
    let cycles: usize = std::env::var("SANGDAM_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let tmp = tempfile::tempdir().unwrap();
    let models = fixture_models(tmp.path(), "model.onnx");
    let calls = make_calls(tmp.path(), 60);
    let mut rng = Rng(0x5A17_C0DE ^ cycles as u64);
    let mut data = tmp.path().join("data-0");
    let mut acknowledged = BTreeSet::new();
    let (mut kills, mut stores, mut fresh) = (0, 0, 0);
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut order = calls.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_sangdam"))
            .env("SANGDAM_DATA", &data)
            .env("SANGDAM_MODELS", &models)
            .env_remove("RUST_LOG")
            .arg("analyze")
            .args(&order)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("stored ") {
                    acks.push(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
            acks
        });
        let delay = Duration::from_millis(20 + rng.below(400));
        let deadline = Instant::now() + delay;
        let mut exited = false;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !exited {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        stores += acks.len();
        acknowledged.extend(acks);
        let n = check_store(&data, &acknowledged);
        if n == calls.len() {
            // Everything is stored: start over in a new folder.
            fresh += 1;
            data = tmp.path().join(format!("data-{}", cycle + 1));
            acknowledged.clear();
        }
    }
    eprintln!(
        "{cycles} cycles: {kills} SIGKILLs, {stores} acknowledged stores, {fresh} full stores, all invariants held ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills > 0,
        "no cycle was killed mid-run; the delays are too long"
    );
}
