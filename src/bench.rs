//! `sangdam bench`: real-time factor, throughput and peak memory of speech recognition
//! (and, with `--sentiment`, latency and memory of the sentiment model: [`sentiment`]).
//!
//! Each measurement runs in a fresh child process (`sangdam bench --one ...`) so that
//! its peak RSS (VmHWM) belongs to that model alone; the parent prints one table. When
//! Python's onnxruntime is installed, the same ONNX files and the same audio also go
//! through `scripts/bench_ort.py` in the same run, so the tract/onnxruntime ratio is
//! measured on the same machine at the same moment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::asr::{features, AsrEngine};
use crate::audio::CallFile;

/// Where the conformance fixture lives relative to the repository root.
pub const FIXTURE_DIR: &str = "../shared/fixtures/wav2vec2-hf-tiny";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// ONNX models to measure (repeatable). Default: model.onnx and model.int8.onnx of the
    /// conformance fixture, and the installed ASR model if there is one.
    #[arg(long = "model", value_name = "ONNX")]
    pub models: Vec<PathBuf>,
    /// vocab.json for the models given with --model (default: the one next to each model).
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// Audio clips, cycled until --seconds of audio have been transcribed.
    #[arg(long = "audio", value_name = "WAV")]
    pub audio: Vec<PathBuf>,
    /// Seconds of audio per measurement.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Worker-thread counts to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub workers: Vec<usize>,
    /// Also run onnxruntime (Python) on the same inputs when it is installed.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub onnxruntime: bool,
    /// Measure the sentiment model instead (--model defaults to the shipped int8 model,
    /// --vocab to the tokenizer.json beside it).
    #[arg(long)]
    pub sentiment: bool,
    /// Sentiment: texts to classify, an id<TAB>document<TAB>label file or one per line.
    #[arg(long, value_name = "FILE")]
    pub texts: Option<PathBuf>,
    /// Sentiment: how many texts.
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    /// Measure the live path instead: CPU of capture alone, and CPU and peak RSS of the
    /// whole daemon at 1x real time (--seconds of line per row).
    #[arg(long)]
    pub live: bool,
    /// Internal: run one measurement and print it as JSON.
    #[arg(long, hide = true)]
    pub one: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Measurement {
    runtime: String,
    model: String,
    workers: usize,
    load_s: f64,
    audio_s: f64,
    wall_s: f64,
    peak_rss_kib: u64,
}

pub mod live;
pub mod sentiment;

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.sentiment {
        return sentiment::run(args);
    }
    if args.live {
        return live::run(args.seconds);
    }
    let models = if args.models.is_empty() {
        default_models()
    } else {
        args.models.clone()
    };
    if models.is_empty() {
        bail!("no model to measure: give --model FILE.onnx (the fixture folder {FIXTURE_DIR} was not found)");
    }
    let audio = if args.audio.is_empty() {
        default_audio()
    } else {
        args.audio.clone()
    };
    if audio.is_empty() {
        bail!("no audio to measure with: give --audio FILE.wav");
    }
    if args.one {
        let m = measure_tract(
            &models[0],
            args.vocab.as_deref(),
            &audio,
            args.seconds,
            args.workers[0],
        )?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the sangdam executable")?;
    let mut rows = Vec::new();
    for model in &models {
        for &workers in &args.workers {
            let mut cmd = Command::new(&exe);
            cmd.arg("bench").arg("--one").arg("--model").arg(model);
            if let Some(v) = &args.vocab {
                cmd.arg("--vocab").arg(v);
            }
            for a in &audio {
                cmd.arg("--audio").arg(a);
            }
            cmd.arg("--seconds").arg(args.seconds.to_string());
            cmd.arg("--workers").arg(workers.to_string());
            rows.push(child_measurement(cmd, "tract")?);
        }
        if args.onnxruntime {
            match ort_measurement(model, &audio, args.seconds) {
                Ok(Some(m)) => rows.push(m),
                Ok(None) => {}
                Err(e) => eprintln!("onnxruntime run of {} failed: {e:#}", model.display()),
            }
        }
    }
    print_table(&rows);
    Ok(())
}

fn default_models() -> Vec<PathBuf> {
    let dir = Path::new(FIXTURE_DIR);
    ["model.onnx", "model.int8.onnx"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

fn default_audio() -> Vec<PathBuf> {
    let fixture = Path::new(FIXTURE_DIR);
    [
        fixture.join("utt0.wav"),
        fixture.join("utt1.wav"),
        PathBuf::from("../shared/data/speech-real/leopard-ko.wav"),
    ]
    .into_iter()
    .filter(|p| p.is_file())
    .collect()
}

/// Reads every clip as 16 kHz mono (first channel).
fn load_clips(audio: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
    audio
        .iter()
        .map(|p| {
            let mut f = CallFile::open(p).with_context(|| p.display().to_string())?;
            let mut out = Vec::new();
            while let Some(block) = f.next_block().with_context(|| p.display().to_string())? {
                out.extend_from_slice(&block[0]);
            }
            Ok(out)
        })
        .collect()
}

fn measure_tract(
    model: &Path,
    vocab: Option<&Path>,
    audio: &[PathBuf],
    seconds: f64,
    workers: usize,
) -> Result<Measurement> {
    let clips = load_clips(audio)?;
    let vocab = vocab
        .map(Path::to_owned)
        .unwrap_or_else(|| model.with_file_name("vocab.json"));
    let t0 = Instant::now();
    let engine = AsrEngine::load(model, &vocab)?;
    // One warm-up run: tract finishes some allocations lazily on the first call.
    engine.transcribe(&clips[0])?;
    let load_s = t0.elapsed().as_secs_f64();

    // The work list: clips cycled until `seconds` of audio.
    let mut jobs = Vec::new();
    let mut total = 0.0;
    let mut i = 0;
    while total < seconds {
        let c = &clips[i % clips.len()];
        total += c.len() as f64 / 16_000.0;
        jobs.push(c.as_slice());
        i += 1;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t1 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                let engine = engine.clone();
                let jobs = &jobs;
                let next = &next;
                s.spawn(move || -> Result<()> {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(clip) = jobs.get(k) else {
                            return Ok(());
                        };
                        let input = features::normalize(clip);
                        let logits = engine.logits(&input)?;
                        std::hint::black_box(engine.decode(&logits));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("bench worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(Measurement {
        runtime: "tract".into(),
        model: model.display().to_string(),
        workers,
        load_s,
        audio_s: total,
        wall_s: t1.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
    })
}

fn child_measurement(cmd: Command, what: &str) -> Result<Measurement> {
    Ok(serde_json::from_str(&child_json(cmd, what)?)?)
}

/// Runs a measurement child and returns the JSON line it printed last.
fn child_json(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start the {what} measurement"))?;
    if !out.status.success() {
        bail!(
            "{what} measurement failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{what} measurement printed no result: {text}"))?;
    Ok(line.to_string())
}

fn ort_measurement(model: &Path, audio: &[PathBuf], seconds: f64) -> Result<Option<Measurement>> {
    let script = Path::new("scripts/bench_ort.py");
    let probe = Command::new("python3")
        .args(["-c", "import onnxruntime, numpy"])
        .output();
    if !script.is_file() || !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("onnxruntime not installed for python3: the comparison column is skipped (pip install onnxruntime numpy)");
        return Ok(None);
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(model)
        .arg("--seconds")
        .arg(seconds.to_string());
    for a in audio {
        cmd.arg(a);
    }
    child_measurement(cmd, "onnxruntime").map(Some)
}

/// Peak resident set size of this process, from /proc (0 where there is no /proc).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn print_table(rows: &[Measurement]) {
    println!(
        "| runtime | model | threads | audio s | wall s | RTF | x real time | load s | peak RSS MiB | vs onnxruntime |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let rtf = r.wall_s / r.audio_s;
        let ort = rows
            .iter()
            .find(|o| o.runtime == "onnxruntime" && o.model == r.model && o.workers == 1);
        let ratio = match ort {
            Some(o) if r.runtime == "tract" => format!("{:.2}x", rtf / (o.wall_s / o.audio_s)),
            _ => "-".into(),
        };
        let name = Path::new(&r.model)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| r.model.clone());
        println!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.4} | {:.1} | {:.2} | {:.1} | {} |",
            r.runtime,
            name,
            r.workers,
            r.audio_s,
            r.wall_s,
            rtf,
            1.0 / rtf,
            r.load_s,
            r.peak_rss_kib as f64 / 1024.0,
            ratio
        );
    }
}
