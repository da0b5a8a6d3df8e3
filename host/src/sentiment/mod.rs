//! The sentiment classifier: data, the network in candle, training, ONNX export and
//! the TF-IDF baseline.
//!
//! The network reads the firmware's [`Tokenizer`](sangdam::sentiment::Tokenizer) output (so host and box can never
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
pub mod domain;
pub mod eval;
pub mod export;
pub mod fuse;
pub mod net;
pub mod train;

use std::path::{Path, PathBuf};

/// Why a labelled file cannot be read or written. (The firmware's
/// `sangdam::sentiment::SentimentError` is the other side: a model the box cannot load
/// or run.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SentimentDataError {
    /// [`read_tsv`]'s file.
    #[error("cannot read {} (an id<TAB>document<TAB>label file)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// [`write_domain_tsv`]'s file.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = SentimentDataError> = std::result::Result<T, E>;

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    /// 1 positive, 0 negative, [`NEUTRAL`] neither.
    pub label: u8,
}

/// The label of a text that is neither positive nor negative ("네 알겠습니다"). Models
/// are trained to give it p(positive) = 0.5, so that a band around the middle (in the
/// manifest) maps to neutral.
pub const NEUTRAL: u8 = 2;

impl Example {
    /// The training target: p(positive) the text should get.
    pub fn target(&self) -> f32 {
        match self.label {
            1 => 1.0,
            0 => 0.0,
            _ => 0.5,
        }
    }

    pub fn is_polar(&self) -> bool {
        self.label < NEUTRAL
    }
}

/// Reads an NSMC-style file: `id<TAB>document<TAB>label` with a header line; the label
/// is `0` (negative), `1` (positive) or `neutral`. Rows without one of these are skipped
/// and counted.
pub fn read_tsv(path: &Path) -> Result<(Vec<Example>, usize)> {
    let text = std::fs::read_to_string(path).map_err(|source| SentimentDataError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in text.lines().enumerate() {
        if i == 0 && line.starts_with("id\t") {
            continue;
        }
        let mut parts = line.split('\t');
        let (_, doc, label) = (parts.next(), parts.next(), parts.next());
        let label = match label.map(str::trim) {
            Some("0") => Some(0),
            Some("1") => Some(1),
            Some("neutral") => Some(NEUTRAL),
            _ => None,
        };
        match (doc, label) {
            (Some(doc), Some(label)) => out.push(Example {
                text: doc.to_string(),
                label,
            }),
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

/// Accuracy of `predicted` positive-probabilities against labels (threshold 0.5), on
/// the polar examples (neutral ones have no side to get right).
pub fn accuracy(p_positive: &[f32], examples: &[Example]) -> f64 {
    let polar = examples.iter().filter(|e| e.is_polar()).count();
    let right = p_positive
        .iter()
        .zip(examples)
        .filter(|(p, e)| e.is_polar() && (**p >= 0.5) == (e.label == 1))
        .count();
    right as f64 / polar.max(1) as f64
}

/// How many rows of each label [`write_domain_tsv`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DomainRows {
    pub negative: usize,
    pub neutral: usize,
    pub positive: usize,
    /// Of them, the speech corpus's template sentences (`corpus synth`).
    pub from_synth: usize,
}

/// Writes call-centre training rows as an NSMC-style file (`id<TAB>document<TAB>label`,
/// label `0`, `1` or `neutral`): `count` rows, `synth_fraction` of them the speech
/// corpus's own labelled sentences ([`crate::corpus::synth::sentence`], positive or
/// negative), the rest from the hand-written call-centre generator ([`domain`], all
/// three labels). Deterministic from `seed`.
pub fn write_domain_tsv(
    path: &Path,
    count: usize,
    seed: u64,
    synth_fraction: f64,
) -> Result<DomainRows> {
    use std::fmt::Write as _;
    let n_synth = ((count as f64) * synth_fraction.clamp(0.0, 1.0)).round() as usize;
    let mut rows = DomainRows::default();
    let mut out = String::from("id\tdocument\tlabel\n");
    let mut rng = crate::rng::Rng::new(seed ^ 0x5e47_1ce5);
    for i in 0..n_synth {
        let (_, sentiment, text) = crate::corpus::synth::sentence(&mut rng);
        let label = if sentiment == "positive" {
            rows.positive += 1;
            "1"
        } else {
            rows.negative += 1;
            "0"
        };
        writeln!(out, "S{seed}_{i}\t{text}\t{label}").expect("writing to a String");
    }
    rows.from_synth = n_synth;
    for (i, s) in domain::generate(count - n_synth, seed)
        .into_iter()
        .enumerate()
    {
        let label = match s.label {
            domain::Polarity::Negative => {
                rows.negative += 1;
                "0"
            }
            domain::Polarity::Neutral => {
                rows.neutral += 1;
                "neutral"
            }
            domain::Polarity::Positive => {
                rows.positive += 1;
                "1"
            }
        };
        writeln!(out, "D{seed}_{i}\t{}\t{label}", s.text).expect("writing to a String");
    }
    std::fs::write(path, out).map_err(|source| SentimentDataError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    /// A missing labelled file prints as before the typed errors: the message naming
    /// the file, then its cause, once.
    #[test]
    fn a_missing_labelled_file_names_itself_then_the_cause() {
        let missing = std::env::temp_dir().join("sangdam-host-no-such-dir/train.tsv");
        let e = super::read_tsv(&missing).unwrap_err();
        let io = std::fs::read(&missing).unwrap_err();
        assert_eq!(
            crate::error_chain(&e),
            format!(
                "cannot read {} (an id<TAB>document<TAB>label file): {io}",
                missing.display()
            )
        );
    }
}
