//! Accuracy of sentiment models on a labelled file, through the firmware's own engine
//! (the code the box runs), beside the TF-IDF baseline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use sangdam::sentiment::tokenizer::TokenizerError;
use sangdam::sentiment::{Encoded, SentimentEngine, SentimentError, Tokenizer};

use super::baseline::{BaselineSettings, TfidfLogistic};
use super::{accuracy, read_tsv, Example, SentimentDataError};
use crate::data::shuffle;
use crate::rng::Rng;

/// Why sentiment models cannot be scored on a labelled file. (The speech models' is
/// [`crate::eval::EvalError`].)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SentimentEvalError {
    /// The test or baseline training file ([`read_tsv`]).
    #[error(transparent)]
    Data(#[from] SentimentDataError),
    /// `--tokenizer` as the firmware reads it.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The firmware's engine refused the model ([`SentimentEngine::load_with`]).
    #[error("loading {}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: SentimentError,
    },
    /// Classifying a batch failed.
    #[error(transparent)]
    Classify(#[from] SentimentError),
}

type Result<T, E = SentimentEvalError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub bytes: Option<u64>,
    pub accuracy: f64,
    pub rows: usize,
    /// Wall-clock milliseconds per text in batches of 64 (whole run, one thread).
    pub ms_per_text: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub test: PathBuf,
    pub rows: Vec<Row>,
}

impl EvalReport {
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "| model | size | accuracy on {} | texts | ms/text (batch 64) |\n|---|---|---|---|---|\n",
            self.test.display()
        );
        for r in &self.rows {
            out += &format!(
                "| {} | {} | {:.2}% | {} | {:.3} |\n",
                r.name,
                r.bytes
                    .map(|b| format!("{:.2} MB", b as f64 / 1e6))
                    .unwrap_or_else(|| "-".into()),
                r.accuracy * 100.0,
                r.rows,
                r.ms_per_text
            );
        }
        out
    }
}

/// Scores one engine on `rows`, in length-sorted batches of 64.
pub fn score_engine(engine: &SentimentEngine, rows: &[Example]) -> Result<(f64, f64)> {
    let tok = engine.tokenizer();
    let enc: Vec<Encoded> = rows.iter().map(|e| tok.encode(&e.text)).collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| enc[i].chars.len());
    let mut p = vec![0.5f32; rows.len()];
    let started = Instant::now();
    for chunk in order.chunks(64) {
        let batch: Vec<Encoded> = chunk.iter().map(|&i| enc[i].clone()).collect();
        let out = engine.classify_encoded(&batch)?;
        for (&i, s) in chunk.iter().zip(out) {
            p[i] = s.p_positive;
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0 / rows.len().max(1) as f64;
    Ok((accuracy(&p, rows), ms))
}

pub fn evaluate(
    models: &[PathBuf],
    tokenizer: &Path,
    test: &Path,
    baseline_train: Option<&Path>,
    limit: usize,
) -> Result<EvalReport> {
    let (mut rows, _) = read_tsv(test)?;
    rows.truncate(limit);
    let tok = Tokenizer::load(tokenizer)?;
    let mut out = Vec::new();
    for m in models {
        let engine = SentimentEngine::load_with(m, tok.clone()).map_err(|source| {
            SentimentEvalError::Load {
                path: m.clone(),
                source,
            }
        })?;
        let (acc, ms) = score_engine(&engine, &rows)?;
        out.push(Row {
            name: m
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: std::fs::metadata(m).ok().map(|md| md.len()),
            accuracy: acc,
            rows: rows.len(),
            ms_per_text: ms,
        });
    }
    if let Some(train_path) = baseline_train {
        let (mut train, _) = read_tsv(train_path)?;
        // The same seeded 5% dev split as `sentiment train`.
        let mut rng = Rng::new(42);
        shuffle(&mut train, &mut rng);
        let dev = train.split_off(train.len() - train.len() / 20);
        let (model, _) = TfidfLogistic::train(&train, &dev, &BaselineSettings::default());
        let texts: Vec<&str> = rows.iter().map(|e| e.text.as_str()).collect();
        let started = Instant::now();
        let p = model.predict(&texts);
        let ms = started.elapsed().as_secs_f64() * 1000.0 / rows.len().max(1) as f64;
        out.push(Row {
            name: "TF-IDF char 1-4 + logistic regression (baseline)".into(),
            bytes: None,
            accuracy: accuracy(&p, &rows),
            rows: rows.len(),
            ms_per_text: ms,
        });
    }
    Ok(EvalReport {
        test: test.to_path_buf(),
        rows: out,
    })
}
