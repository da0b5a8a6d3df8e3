//! The sentiment classifier: data, the network in candle, training, ONNX export and
//! the TF-IDF baseline.
//!
//! The network reads the firmware's [`Tokenizer`] output (so host and box can never
//! disagree) through two branches whose features are concatenated:
//!
//! - **character CNN**: character embeddings, one 1-D convolution per kernel width,
//!   ReLU, max over time (padding masked: a ReLU output is never negative, so zeroing
//!   padded positions before the max is the masked max);
//! - **n-gram bag**: the mean of hashed character n-gram embeddings (padding masked),
//!   which is what TF-IDF with a linear model sees, made dense.
//!
//! then a hidden layer and two logits (negative, positive). Either branch can be
//! switched off (`kernels = []` or `ngram_dim = 0`), which is how the architecture was
//! chosen by measurement (BENCHMARKS.md). A "wide" column in the n-gram table adds a
//! linear path to the positive logit; [`fuse`] fills it with a separately trained
//! logistic regression (stacking), which is what the shipped model does.

pub mod baseline;
pub mod calls;
pub mod eval;
pub mod export;
pub mod fuse;
pub mod net;
pub mod train;

use std::path::Path;

use anyhow::{Context, Result};

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    /// 1 positive, 0 negative.
    pub label: u8,
}

/// Reads an NSMC-style file: `id<TAB>document<TAB>label` with a header line. Rows
/// without a 0/1 label are skipped and counted.
pub fn read_tsv(path: &Path) -> Result<(Vec<Example>, usize)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (an id<TAB>document<TAB>label file)",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in text.lines().enumerate() {
        if i == 0 && line.starts_with("id\t") {
            continue;
        }
        let mut parts = line.split('\t');
        let (_, doc, label) = (parts.next(), parts.next(), parts.next());
        match (doc, label.map(str::trim)) {
            (Some(doc), Some("0")) | (Some(doc), Some("1")) => out.push(Example {
                text: doc.to_string(),
                label: u8::from(label.map(str::trim) == Some("1")),
            }),
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

/// Accuracy of `predicted` positive-probabilities against labels (threshold 0.5).
pub fn accuracy(p_positive: &[f32], examples: &[Example]) -> f64 {
    let right = p_positive
        .iter()
        .zip(examples)
        .filter(|(p, e)| (**p >= 0.5) == (e.label == 1))
        .count();
    right as f64 / examples.len().max(1) as f64
}
