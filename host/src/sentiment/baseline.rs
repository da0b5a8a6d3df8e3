//! The classical baseline the seed's analysis stack would use: TF-IDF over character
//! 1- to 4-grams (hashed through the firmware tokenizer's TF-IDF hashing into 2^20
//! buckets, sublinear term frequency, smooth idf, l2-normalised rows, as scikit-learn's
//! `TfidfVectorizer` does) and logistic regression trained with AdaGrad and L2
//! regularisation, keeping the epoch with the best dev accuracy. The same weighting is
//! the linear part of the shipped stack (`fuse`). Neutral rows train towards 0.5.

use sangdam::sentiment::{Encoded, Tokenizer};

use super::Example;
use crate::data::shuffle;
use crate::rng::Rng;

pub struct TfidfLogistic {
    tokenizer: Tokenizer,
    pub tfidf: Tfidf,
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// TF-IDF weighting over the firmware tokenizer's second hashing
/// ([`Encoded::tfidf_ids`]): sublinear tf (the tokenizer's `1 + ln(count)`), smooth idf
/// `ln((1 + docs) / (1 + df)) + 1`, rows l2-normalised. The sentiment graph computes the
/// same thing from the same tokenizer output (`export`).
#[derive(Debug, Clone)]
pub struct Tfidf {
    pub idf: Vec<f32>,
}

impl Tfidf {
    /// Document frequencies over `docs` (encoded by a tokenizer with `tfidf_buckets`).
    pub fn fit<'a>(docs: impl IntoIterator<Item = &'a Encoded>, buckets: usize) -> Tfidf {
        let mut df = vec![0u32; buckets];
        let mut n = 0u32;
        for e in docs {
            n += 1;
            for &j in &e.tfidf_ids {
                df[j as usize] += 1;
            }
        }
        let docs = n as f32;
        Tfidf {
            idf: df
                .iter()
                .map(|&d| ((1.0 + docs) / (1.0 + d as f32)).ln() + 1.0)
                .collect(),
        }
    }

    /// The l2-normalised TF-IDF row of one encoded text.
    pub fn vector(&self, e: &Encoded) -> Sparse {
        let mut v: Sparse = e
            .tfidf_ids
            .iter()
            .zip(&e.tfidf_tf)
            .map(|(&j, &tf)| (j as u32, tf * self.idf[j as usize]))
            .collect();
        let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, x) in &mut v {
                *x /= norm;
            }
        }
        v
    }
}

#[derive(Debug, Clone)]
pub struct BaselineSettings {
    pub buckets: u32,
    pub epochs: usize,
    pub lr: f32,
    pub l2: f32,
    pub seed: u64,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        BaselineSettings {
            buckets: (1 << 20) + 1,
            epochs: 6,
            lr: 0.2,
            l2: 1e-6,
            seed: 42,
        }
    }
}

/// Sorted (n-gram id, occurrences) of a text.
pub fn counts(tokenizer: &Tokenizer, text: &str) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = tokenizer
        .encode(text)
        .ngrams
        .iter()
        .map(|&i| i as u32)
        .collect();
    ids.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some((last, c)) if *last == id => *c += 1.0,
            _ => out.push((id, 1.0)),
        }
    }
    out
}

impl TfidfLogistic {
    fn score(&self, v: &Sparse) -> f32 {
        logistic(&self.weights, self.bias, v)
    }

    /// Positive-class probability of each text.
    pub fn predict(&self, texts: &[&str]) -> Vec<f32> {
        texts
            .iter()
            .map(|t| self.score(&self.tfidf.vector(&self.tokenizer.encode(t))))
            .collect()
    }

    /// Trains on `train`, choosing the epoch by accuracy on `dev`; returns the model and
    /// its dev accuracy. `tokenizer` supplies the n-grams (its TF-IDF hashing); `None`
    /// uses a fixed one with `s.buckets` rows.
    pub fn train_with(
        tokenizer: Option<&Tokenizer>,
        train: &[Example],
        dev: &[Example],
        s: &BaselineSettings,
    ) -> (Self, f64) {
        let tokenizer = match tokenizer {
            Some(t) => t.clone(),
            None => Tokenizer::build(std::iter::once("가"), 1, 10_000, 4, 2)
                .and_then(|t| t.with_tfidf_buckets(Some(s.buckets)))
                .expect("fixed baseline tokenizer settings are valid"),
        };
        let n = tokenizer
            .data()
            .tfidf_buckets
            .expect("a tokenizer with tfidf_buckets") as usize;
        let enc: Vec<Encoded> = train.iter().map(|e| tokenizer.encode(&e.text)).collect();
        let tfidf = Tfidf::fit(&enc, n);
        let xs: Vec<Sparse> = enc.iter().map(|e| tfidf.vector(e)).collect();
        drop(enc);
        let dev_x: Vec<Sparse> = dev
            .iter()
            .map(|e| tfidf.vector(&tokenizer.encode(&e.text)))
            .collect();
        let best = fit_logistic(&xs, train, &dev_x, dev, n, s);
        (
            TfidfLogistic {
                tokenizer,
                tfidf,
                weights: best.1,
                bias: best.2,
            },
            best.0,
        )
    }

    /// [`TfidfLogistic::train_with`] the fixed 2^20-bucket tokenizer.
    pub fn train(train: &[Example], dev: &[Example], s: &BaselineSettings) -> (Self, f64) {
        Self::train_with(None, train, dev, s)
    }
}

/// Sparse rows: (feature, value).
pub type Sparse = Vec<(u32, f32)>;

fn logistic(weights: &[f32], bias: f32, v: &Sparse) -> f32 {
    let z = bias + v.iter().map(|&(j, x)| weights[j as usize] * x).sum::<f32>();
    1.0 / (1.0 + (-z).exp())
}

/// Logistic regression over `features` sparse columns by AdaGrad with L2, one pass per
/// epoch in a seeded order, keeping the epoch with the best accuracy on `dev`.
/// Returns (dev accuracy, weights, bias).
pub fn fit_logistic(
    xs: &[Sparse],
    train: &[Example],
    dev_x: &[Sparse],
    dev: &[Example],
    features: usize,
    s: &BaselineSettings,
) -> (f64, Vec<f32>, f32) {
    let mut weights = vec![0f32; features];
    let mut bias = 0f32;
    let mut g2 = vec![1e-8f32; features];
    let mut g2b = 1e-8f32;
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut rng = Rng::new(s.seed);
    let mut best = (f64::MIN, weights.clone(), 0.0);
    for _ in 0..s.epochs {
        shuffle(&mut order, &mut rng);
        for &i in &order {
            let y = train[i].target();
            let g = logistic(&weights, bias, &xs[i]) - y;
            for &(j, x) in &xs[i] {
                let j = j as usize;
                let grad = g * x + s.l2 * weights[j];
                g2[j] += grad * grad;
                weights[j] -= s.lr * grad / g2[j].sqrt();
            }
            g2b += g * g;
            bias -= s.lr * g / g2b.sqrt();
        }
        let p: Vec<f32> = dev_x.iter().map(|v| logistic(&weights, bias, v)).collect();
        let acc = super::accuracy(&p, dev);
        if acc > best.0 {
            best = (acc, weights.clone(), bias);
        }
    }
    best
}
