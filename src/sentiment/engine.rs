//! The tract engine for the sentiment classifier.
//!
//! The graph (written by `sangdam-host sentiment export`) takes two int64 inputs,
//! `chars [batch, chars]` and `ngrams [batch, ngrams]` (the [`Tokenizer`]'s ids, `0`
//! padding), and returns `logits [batch, 2]` (negative, positive). Padding is masked
//! inside the graph, so a text scores the same alone or in a padded batch.
//!
//! A model with a TF-IDF linear part takes two more: `tfidf_ids [batch, tfidf]` (int64,
//! the text's distinct n-grams in the tokenizer's second hashing) and `tfidf_tf [batch,
//! tfidf]` (f32, their `1 + ln(count)`); the graph holds the idf and the weights.
//!
//! The model is binary: it gives p(positive). Most of a call is neither positive nor
//! negative ("네", "잠시만요", "카드 번호 불러 드릴게요"), so a model may come with a
//! calibrated **neutral band** `[lo, hi]` (its manifest entry's `neutral_band`, set with
//! [`SentimentEngine::with_neutral_band`]): a text whose p(positive) lies inside it,
//! bounds included, is [`Label::Neutral`]; outside it the label is positive from 0.5 up,
//! else negative. Without a band there is no neutral label. The probability is reported
//! either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::tract_ndarray::Array2;
use tract_onnx::prelude::*;

use super::tokenizer::{Encoded, Tokenizer, TokenizerError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SentimentError {
    #[error("cannot load sentiment model {path}: {source:#} (the file may be truncated or not a sangdam sentiment export; run `sangdam models` to check it against models/manifest.toml, or reinstall models/)")]
    Load {
        path: PathBuf,
        /// tract's own error type (`tract_onnx::prelude::TractError`).
        source: TractError,
    },
    #[error("sentiment model {path} has {found}; expected inputs chars and ngrams (int64 [batch, n]) and output logits [batch, 2]: it is not a sangdam sentiment export")]
    Interface { path: PathBuf, found: String },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("sentiment inference failed: {0:#}")]
    Run(TractError),
}

/// The verdict on one text. Stored and exported by name (`"negative"`, ...); `Neutral`
/// comes last so that the variants' order, should anything ever rely on it, is the old
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Negative,
    Positive,
    /// Nothing to classify: the text was empty after normalisation.
    Empty,
    /// p(positive) inside the model's neutral band: neither side.
    Neutral,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Positive => "positive",
            Label::Empty => "empty",
            Label::Neutral => "neutral",
        }
    }

    /// Positive or negative: the labels that pull a call towards a side.
    pub fn is_polar(self) -> bool {
        matches!(self, Label::Positive | Label::Negative)
    }

    /// The label of a text the model gave `p_positive`: neutral inside `band` (bounds
    /// included), else positive from 0.5 up, else negative.
    pub fn of(p_positive: f32, band: Option<[f32; 2]>) -> Label {
        match band {
            Some([lo, hi]) if (lo..=hi).contains(&p_positive) => Label::Neutral,
            _ if p_positive >= 0.5 => Label::Positive,
            _ => Label::Negative,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One classified text.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sentiment {
    pub label: Label,
    /// Probability that the text is positive (0.5 for an empty text).
    pub p_positive: f32,
    /// Characters beyond the model's limit that were not read.
    #[serde(default)]
    pub truncated_chars: usize,
}

impl Sentiment {
    pub const EMPTY: Sentiment = Sentiment {
        label: Label::Empty,
        p_positive: 0.5,
        truncated_chars: 0,
    };

    /// The larger of the two classes' probabilities (for a neutral text: how far it
    /// leans, which is less than the band's edges allow).
    pub fn confidence(&self) -> f32 {
        self.p_positive.max(1.0 - self.p_positive)
    }

    fn from_logits(neg: f32, pos: f32, truncated_chars: usize, band: Option<[f32; 2]>) -> Self {
        // Softmax of two: p(pos) = sigmoid(pos - neg).
        let p = 1.0 / (1.0 + (neg - pos).exp());
        Sentiment {
            label: Label::of(p, band),
            p_positive: p,
            truncated_chars,
        }
    }
}

/// A loaded, optimised sentiment model with its tokenizer. Cheap to clone.
#[derive(Clone)]
pub struct SentimentEngine {
    plan: Arc<TypedRunnableModel>,
    tokenizer: Arc<Tokenizer>,
    /// The graph has the TF-IDF inputs.
    tfidf: bool,
    /// p(positive) from `lo` to `hi` is neutral.
    neutral_band: Option<[f32; 2]>,
    path: PathBuf,
}

impl std::fmt::Debug for SentimentEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentimentEngine")
            .field("path", &self.path)
            .field("chars", &self.tokenizer.vocab_size())
            .field("neutral_band", &self.neutral_band)
            .finish()
    }
}

impl SentimentEngine {
    /// Loads `model` (ONNX) and `tokenizer` (tokenizer.json) and optimises the graph once.
    pub fn load(model: &Path, tokenizer: &Path) -> Result<Self, SentimentError> {
        let tokenizer = Tokenizer::load(tokenizer)?;
        Self::load_with(model, tokenizer)
    }

    pub fn load_with(path: &Path, tokenizer: Tokenizer) -> Result<Self, SentimentError> {
        let load_err = |source: TractError| SentimentError::Load {
            path: path.to_owned(),
            source,
        };
        let mut model = tract_onnx::onnx().model_for_path(path).map_err(load_err)?;
        // Two inputs: the network alone (or with the count/sqrt(n) wide column); four: a
        // TF-IDF linear part too, which reads the tokenizer's distinct TF-IDF n-grams.
        let tfidf = model.inputs.len() == 4;
        if tfidf && tokenizer.data().tfidf_buckets.is_none() {
            return Err(SentimentError::Interface {
                path: path.to_owned(),
                found: "a TF-IDF part but a tokenizer.json without tfidf_buckets (install the model's own tokenizer.json next to it)".into(),
            });
        }
        if !(model.inputs.len() == 2 || tfidf) || model.outputs.len() != 1 {
            return Err(SentimentError::Interface {
                path: path.to_owned(),
                found: format!(
                    "{} inputs and {} outputs",
                    model.inputs.len(),
                    model.outputs.len()
                ),
            });
        }
        let batch = model.symbols.sym("batch");
        let chars = model.symbols.sym("chars");
        let ngrams = model.symbols.sym("ngrams");
        let chars_shape: [TDim; 2] = [batch.clone().into(), chars.into()];
        let ngrams_shape: [TDim; 2] = [batch.clone().into(), ngrams.into()];
        model
            .set_input_fact(0, i64::fact(chars_shape).into())
            .map_err(load_err)?;
        model
            .set_input_fact(1, i64::fact(ngrams_shape).into())
            .map_err(load_err)?;
        if tfidf {
            let distinct = model.symbols.sym("tfidf");
            let ids_shape: [TDim; 2] = [batch.clone().into(), distinct.clone().into()];
            let tf_shape: [TDim; 2] = [batch.clone().into(), distinct.into()];
            model
                .set_input_fact(2, i64::fact(ids_shape).into())
                .map_err(load_err)?;
            model
                .set_input_fact(3, f32::fact(tf_shape).into())
                .map_err(load_err)?;
        }
        let typed = model.into_optimized().map_err(load_err)?;
        let out = typed.output_fact(0).map_err(load_err)?;
        let classes = out.shape.last().and_then(|d| d.to_i64().ok());
        if out.shape.rank() != 2 || classes != Some(2) || out.datum_type != f32::datum_type() {
            return Err(SentimentError::Interface {
                path: path.to_owned(),
                found: format!("output {out:?}"),
            });
        }
        let plan = typed.into_runnable().map_err(load_err)?;
        Ok(SentimentEngine {
            plan,
            tokenizer: Arc::new(tokenizer),
            tfidf,
            neutral_band: None,
            path: path.to_owned(),
        })
    }

    /// The same engine labelling p(positive) inside `band` (`[lo, hi]`, bounds included)
    /// neutral; `None`: no neutral label. The band comes from the model's manifest entry
    /// (`neutral_band`), which [`crate::models::Manifest::parse`] checked.
    pub fn with_neutral_band(mut self, band: Option<[f32; 2]>) -> Self {
        self.neutral_band = band;
        self
    }

    pub fn neutral_band(&self) -> Option<[f32; 2]> {
        self.neutral_band
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Classifies one text.
    pub fn classify(&self, text: &str) -> Result<Sentiment, SentimentError> {
        Ok(self.classify_batch(&[text])?.remove(0))
    }

    /// Classifies several texts in one run of the graph.
    pub fn classify_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Sentiment>, SentimentError> {
        let encoded: Vec<Encoded> = texts
            .iter()
            .map(|t| self.tokenizer.encode(t.as_ref()))
            .collect();
        self.classify_encoded(&encoded)
    }

    /// Classifies already-encoded texts; empty ones get [`Sentiment::EMPTY`] without a run.
    pub fn classify_encoded(&self, encoded: &[Encoded]) -> Result<Vec<Sentiment>, SentimentError> {
        let live: Vec<&Encoded> = encoded.iter().filter(|e| !e.is_empty()).collect();
        let mut scores = if live.is_empty() {
            Vec::new()
        } else {
            self.logits(&live)?
        }
        .into_iter();
        Ok(encoded
            .iter()
            .map(|e| {
                if e.is_empty() {
                    Sentiment::EMPTY
                } else {
                    let (neg, pos) = scores.next().unwrap_or((0.0, 0.0));
                    Sentiment::from_logits(neg, pos, e.truncated_chars, self.neutral_band)
                }
            })
            .collect())
    }

    fn logits(&self, batch: &[&Encoded]) -> Result<Vec<(f32, f32)>, SentimentError> {
        let lc = batch
            .iter()
            .map(|e| e.chars.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let ln = batch
            .iter()
            .map(|e| e.ngrams.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut chars = Array2::<i64>::zeros((batch.len(), lc));
        let mut ngrams = Array2::<i64>::zeros((batch.len(), ln));
        for (i, e) in batch.iter().enumerate() {
            for (j, &c) in e.chars.iter().enumerate() {
                chars[(i, j)] = c;
            }
            for (j, &g) in e.ngrams.iter().enumerate() {
                ngrams[(i, j)] = g;
            }
        }
        let mut inputs: TVec<TValue> =
            tvec!(chars.into_tensor().into(), ngrams.into_tensor().into());
        if self.tfidf {
            // Padding: id 0 with tf 0, which the graph's sums ignore.
            let lt = batch
                .iter()
                .map(|e| e.tfidf_ids.len())
                .max()
                .unwrap_or(1)
                .max(1);
            let mut ids = Array2::<i64>::zeros((batch.len(), lt));
            let mut tf = Array2::<f32>::zeros((batch.len(), lt));
            for (i, e) in batch.iter().enumerate() {
                for (j, (&g, &w)) in e.tfidf_ids.iter().zip(&e.tfidf_tf).enumerate() {
                    ids[(i, j)] = g;
                    tf[(i, j)] = w;
                }
            }
            inputs.push(ids.into_tensor().into());
            inputs.push(tf.into_tensor().into());
        }
        let out = self.plan.run(inputs).map_err(SentimentError::Run)?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(SentimentError::Run)?;
        let view = view
            .into_dimensionality::<tract_ndarray::Ix2>()
            .map_err(|e| SentimentError::Run(e.into()))?;
        Ok(view.rows().into_iter().map(|r| (r[0], r[1])).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_maps_to_neutral_bounds_included() {
        let band = Some([0.3, 0.7]);
        for (p, want) in [
            (0.0, Label::Negative),
            (0.299, Label::Negative),
            (0.3, Label::Neutral),
            (0.5, Label::Neutral),
            (0.7, Label::Neutral),
            (0.701, Label::Positive),
            (1.0, Label::Positive),
        ] {
            assert_eq!(Label::of(p, band), want, "p = {p}");
        }
        // No band: the old two-way split at 0.5.
        assert_eq!(Label::of(0.5, None), Label::Positive);
        assert_eq!(Label::of(0.499, None), Label::Negative);
        // A band that leaves 0.5 outside still splits there.
        assert_eq!(Label::of(0.5, Some([0.6, 0.8])), Label::Positive);
        assert_eq!(Label::of(0.65, Some([0.6, 0.8])), Label::Neutral);
        assert_eq!(Label::of(0.45, Some([0.6, 0.8])), Label::Negative);
        // A band of one point.
        assert_eq!(Label::of(0.5, Some([0.5, 0.5])), Label::Neutral);
        // Through the logits, with the probability kept.
        let s = Sentiment::from_logits(0.0, 0.4, 3, band);
        assert_eq!(s.label, Label::Neutral);
        assert!((s.p_positive - 0.598_7).abs() < 1e-3, "{s:?}");
        assert_eq!(s.truncated_chars, 3);
        assert_eq!(
            Sentiment::from_logits(0.0, 0.4, 0, None).label,
            Label::Positive
        );
        assert!(!Label::Neutral.is_polar() && !Label::Empty.is_polar());
        assert!(Label::Positive.is_polar() && Label::Negative.is_polar());
    }

    #[test]
    fn labels_are_stored_by_name_and_old_names_still_read() {
        for (l, name) in [
            (Label::Negative, "negative"),
            (Label::Positive, "positive"),
            (Label::Empty, "empty"),
            (Label::Neutral, "neutral"),
        ] {
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{name}\""));
            assert_eq!(l.as_str(), name);
            assert_eq!(
                serde_json::from_str::<Label>(&format!("\"{name}\"")).unwrap(),
                l
            );
        }
        // The order of the old variants is kept; neutral is appended.
        assert_eq!(
            [
                Label::Negative,
                Label::Positive,
                Label::Empty,
                Label::Neutral
            ]
            .map(|l| l as u8),
            [0, 1, 2, 3]
        );
    }
}
