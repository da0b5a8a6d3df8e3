//! `sangdam bench --sentiment`: latency per utterance (one text per run, one thread),
//! batch throughput, load time and peak memory of the sentiment model, each model in a
//! fresh child process so that its peak RSS is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{child_result, peak_rss_kib, BenchArgs, BenchError, Result};
use crate::sentiment::SentimentEngine;

/// Default texts: the NSMC-like test split in ../shared.
pub const DEFAULT_TEXTS: &str = "../shared/data/nsmc-like/test.tsv";
/// Default model: the shipped one.
pub const DEFAULT_MODEL: &str = "models/sentiment-ko/model.int8.onnx";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Measurement {
    model: String,
    bytes: u64,
    texts: usize,
    mean_chars: f64,
    load_ms: f64,
    mean_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    batch64_texts_per_s: f64,
    peak_rss_kib: u64,
}

/// Texts from an id<TAB>document<TAB>label file (or one per line), at most `n`.
fn load_texts(path: &Path, n: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Texts {
        path: path.to_owned(),
        source,
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with("id\t"))
        .map(|l| l.split('\t').nth(1).unwrap_or(l).to_string())
        .filter(|t| !t.trim().is_empty())
        .take(n)
        .collect())
}

fn measure(model: &Path, tokenizer: &Path, texts: &[String]) -> Result<Measurement> {
    let t0 = Instant::now();
    let engine = SentimentEngine::load(model, tokenizer)?;
    engine.classify("준비")?;
    let load_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut ms = Vec::with_capacity(texts.len());
    for t in texts {
        let s = Instant::now();
        std::hint::black_box(engine.classify(t)?);
        ms.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let t1 = Instant::now();
    for chunk in texts.chunks(64) {
        std::hint::black_box(engine.classify_batch(chunk)?);
    }
    let batch_s = t1.elapsed().as_secs_f64();
    let mean_ms = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    Ok(Measurement {
        model: model.display().to_string(),
        bytes: std::fs::metadata(model).map(|m| m.len()).unwrap_or(0),
        texts: texts.len(),
        mean_chars: texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64
            / texts.len().max(1) as f64,
        load_ms,
        mean_ms,
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        max_ms: pct(1.0),
        batch64_texts_per_s: texts.len() as f64 / batch_s,
        peak_rss_kib: peak_rss_kib(),
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let models = if args.models.is_empty() {
        vec![PathBuf::from(DEFAULT_MODEL)]
    } else {
        args.models.clone()
    };
    let texts_path = args
        .texts
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TEXTS));
    let texts = load_texts(&texts_path, args.count)?;
    if texts.is_empty() {
        return Err(BenchError::NoTexts { path: texts_path });
    }
    let tokenizer_of = |m: &Path| {
        args.vocab
            .clone()
            .unwrap_or_else(|| m.with_file_name("tokenizer.json"))
    };
    if args.one {
        let m = measure(&models[0], &tokenizer_of(&models[0]), &texts)?;
        println!("{}", serde_json::to_string(&m).map_err(BenchError::Print)?);
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(BenchError::CurrentExe)?;
    let mut rows: Vec<Measurement> = Vec::new();
    for model in &models {
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", "--sentiment", "--one", "--model"])
            .arg(model)
            .arg("--vocab")
            .arg(tokenizer_of(model))
            .arg("--texts")
            .arg(&texts_path)
            .arg("--count")
            .arg(args.count.to_string());
        rows.push(child_result(cmd, "sentiment")?);
    }
    println!(
        "| model | size MB | texts | mean chars | load ms | ms/text mean | p50 | p95 | max | texts/s (batch 64) | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.2} | {} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {:.1} |",
            Path::new(&r.model)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| r.model.clone()),
            r.bytes as f64 / 1e6,
            r.texts,
            r.mean_chars,
            r.load_ms,
            r.mean_ms,
            r.p50_ms,
            r.p95_ms,
            r.max_ms,
            r.batch64_texts_per_s,
            r.peak_rss_kib as f64 / 1024.0
        );
    }
    Ok(())
}
