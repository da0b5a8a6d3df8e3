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

use crate::asr::{features, AsrEngine, AsrError};
use crate::audio::{AudioError, CallFile};
use crate::models::ModelError;
use crate::sentiment::SentimentError;

/// Where the conformance fixture lives relative to the repository root.
pub const FIXTURE_DIR: &str = "../shared/fixtures/wav2vec2-hf-tiny";

/// Why a benchmark could not run. Each message names what is missing or failed and, where
/// there is one, the flag that fixes it; the cause (an I/O error, the engine's error, the
/// child's output) is the error's source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("no model to measure: give --model FILE.onnx (the fixture folder {FIXTURE_DIR} was not found)")]
    NoModel,
    #[error("no audio to measure with: give --audio FILE.wav")]
    NoAudio,
    /// A clip to measure with, the line `--live` writes, or the fixture speech it is made of.
    #[error("{}", path.display())]
    Audio {
        path: PathBuf,
        #[source]
        source: AudioError,
    },
    #[error(transparent)]
    Asr(#[from] AsrError),
    #[error(transparent)]
    Sentiment(#[from] SentimentError),
    /// `--live`: the installed models' manifest.
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error("bench worker panicked")]
    WorkerPanicked,
    #[error("cannot read {} (give --texts FILE)", path.display())]
    Texts {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no texts", path.display())]
    NoTexts { path: PathBuf },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the folder {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("copying {}", from.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--live` without an installed `asr-ko`: the conformance fixture stands in for it.
    #[error("the fixture model in {} is needed as a stand-in", fixture.display())]
    StandIn {
        fixture: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a temporary folder for the bench (check TMPDIR and free space)")]
    TempDir(#[source] std::io::Error),
    #[error("cannot find the sangdam executable")]
    CurrentExe(#[source] std::io::Error),
    #[error("cannot print the measurement as JSON")]
    Print(#[source] serde_json::Error),
    /// A measurement child (`sangdam bench --one`, `scripts/bench_ort.py`) did not start.
    #[error("cannot start the {what} measurement")]
    ChildStart {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A measurement child exited with an error; `stderr` is what it printed.
    #[error("{what} measurement failed: {stderr}")]
    ChildFailed { what: &'static str, stderr: String },
    /// A measurement child succeeded but printed no JSON line; `stdout` is what it printed.
    #[error("{what} measurement printed no result: {stdout}")]
    ChildNoResult { what: &'static str, stdout: String },
    /// A measurement child's JSON line is not a measurement.
    #[error("the {what} measurement's result cannot be read: {line}")]
    ChildOutput {
        what: &'static str,
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// `--live`: the daemon child (`sangdam run`) did not start.
    #[error("cannot start sangdam run")]
    DaemonStart(#[source] std::io::Error),
    /// `--live`: `wait4` on the daemon child failed.
    #[error("waiting for the daemon failed")]
    DaemonWait(#[source] std::io::Error),
}

type Result<T, E = BenchError> = std::result::Result<T, E>;

impl BenchError {
    fn audio(path: &Path) -> impl FnOnce(AudioError) -> BenchError + '_ {
        move |source| BenchError::Audio {
            path: path.to_owned(),
            source,
        }
    }

    fn read(path: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
        move |source| BenchError::Read {
            path: path.to_owned(),
            source,
        }
    }

    fn write(path: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
        move |source| BenchError::Write {
            path: path.to_owned(),
            source,
        }
    }
}

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
        return Err(BenchError::NoModel);
    }
    let audio = if args.audio.is_empty() {
        default_audio()
    } else {
        args.audio.clone()
    };
    if audio.is_empty() {
        return Err(BenchError::NoAudio);
    }
    if args.one {
        let m = measure_tract(
            &models[0],
            args.vocab.as_deref(),
            &audio,
            args.seconds,
            args.workers[0],
        )?;
        println!("{}", serde_json::to_string(&m).map_err(BenchError::Print)?);
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(BenchError::CurrentExe)?;
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
            rows.push(child_result(cmd, "tract")?);
        }
        if args.onnxruntime {
            match ort_measurement(model, &audio, args.seconds) {
                Ok(Some(m)) => rows.push(m),
                Ok(None) => {}
                Err(e) => eprintln!(
                    "onnxruntime run of {} failed: {}",
                    model.display(),
                    crate::error::error_chain(&e)
                ),
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
            let mut f = CallFile::open(p).map_err(BenchError::audio(p))?;
            let mut out = Vec::new();
            while let Some(block) = f.next_block().map_err(BenchError::audio(p))? {
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
                s.spawn(move || -> Result<(), AsrError> {
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
            h.join().map_err(|_| BenchError::WorkerPanicked)??;
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

/// Runs a measurement child and reads the JSON line it printed last as a `T`.
fn child_result<T: serde::de::DeserializeOwned>(cmd: Command, what: &'static str) -> Result<T> {
    let line = child_json(cmd, what)?;
    serde_json::from_str(&line).map_err(|source| BenchError::ChildOutput { what, line, source })
}

/// Runs a measurement child and returns the JSON line it printed last.
fn child_json(mut cmd: Command, what: &'static str) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|source| BenchError::ChildStart { what, source })?;
    if !out.status.success() {
        return Err(BenchError::ChildFailed {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{'));
    match line {
        Some(line) => Ok(line.to_string()),
        None => Err(BenchError::ChildNoResult {
            what,
            stdout: text.into_owned(),
        }),
    }
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
    child_result(cmd, "onnxruntime").map(Some)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn child_failures_have_their_own_variants_and_messages() {
        let e = child_json(sh("echo broken >&2; exit 3"), "tract").unwrap_err();
        assert!(matches!(e, BenchError::ChildFailed { .. }), "{e:?}");
        assert_eq!(e.to_string(), "tract measurement failed: broken");

        let e = child_json(sh("echo hello"), "sentiment").unwrap_err();
        assert!(matches!(e, BenchError::ChildNoResult { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "sentiment measurement printed no result: hello\n"
        );

        let e =
            child_result::<Measurement>(sh("echo '{\"runtime\": 1}'"), "onnxruntime").unwrap_err();
        assert!(matches!(e, BenchError::ChildOutput { .. }), "{e:?}");
        let shown = crate::error::error_chain(&e);
        assert!(
            shown.starts_with("the onnxruntime measurement's result cannot be read: {\"runtime\": 1}: invalid type"),
            "{shown}"
        );

        let mut cmd = Command::new("/nonexistent/sangdam-bench-child");
        cmd.arg("--one");
        let e = child_json(cmd, "tract").unwrap_err();
        match &e {
            BenchError::ChildStart { .. } => {
                assert_eq!(e.to_string(), "cannot start the tract measurement");
                assert!(std::error::Error::source(&e).is_some());
            }
            // Under qemu-user (the aarch64 run of `.ci/run`) a failed exec is reported
            // as a child that exits non-zero, not as a spawn error.
            BenchError::ChildFailed { what, .. } if cfg!(target_arch = "aarch64") => {
                assert_eq!(*what, "tract");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_last_json_line_is_the_result() {
        let line = child_json(
            sh("echo '{\"a\": 1}'; echo progress; echo '{\"b\": 2}'"),
            "tract",
        )
        .unwrap();
        assert_eq!(line, "{\"b\": 2}");
    }

    #[test]
    fn sentiment_texts_name_the_file_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.tsv");
        let e = sentiment::run(&args(&[
            "--sentiment",
            "--texts",
            missing.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(matches!(e, BenchError::Texts { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("cannot read {} (give --texts FILE)", missing.display())
        );
        assert!(std::error::Error::source(&e).is_some());

        let empty = dir.path().join("empty.tsv");
        std::fs::write(&empty, "id\tdocument\tlabel\n").unwrap();
        let e = sentiment::run(&args(&["--sentiment", "--texts", empty.to_str().unwrap()]))
            .unwrap_err();
        assert_eq!(e.to_string(), format!("{} holds no texts", empty.display()));
    }

    #[test]
    fn a_clip_that_cannot_be_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("nope.wav");
        let e = load_clips(std::slice::from_ref(&clip)).unwrap_err();
        assert!(matches!(e, BenchError::Audio { .. }), "{e:?}");
        assert_eq!(e.to_string(), clip.display().to_string());
        assert!(crate::error::error_chain(&e).starts_with(&format!("{}: ", clip.display())));
    }

    fn args(flags: &[&str]) -> BenchArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        Cli::parse_from(std::iter::once("bench").chain(flags.iter().copied())).bench
    }
}
