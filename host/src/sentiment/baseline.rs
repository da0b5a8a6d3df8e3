//! The classical baseline the seed's analysis stack would use: TF-IDF over character
//! 1- to 4-grams (hashed through the firmware tokenizer into 2^20 buckets, sublinear
//! term frequency, smooth idf, l2-normalised rows, as scikit-learn's `TfidfVectorizer`
//! does) and logistic regression trained with AdaGrad and L2 regularisation, keeping the
//! epoch with the best dev accuracy.

use sangdam::sentiment::Tokenizer;

use super::Example;
use crate::corpus::synth::Rng;
use crate::data::shuffle;

pub struct TfidfLogistic {
    tokenizer: Tokenizer,
    idf: Vec<f32>,
    weights: Vec<f32>,
    bias: f32,
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
    fn vector(&self, text: &str) -> Sparse {
        let mut v: Sparse = counts(&self.tokenizer, text)
            .into_iter()
            .map(|(j, c)| (j, (1.0 + c.ln()) * self.idf[j as usize]))
            .collect();
        let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, x) in &mut v {
                *x /= norm;
            }
        }
        v
    }

    fn score(&self, v: &Sparse) -> f32 {
        logistic(&self.weights, self.bias, v)
    }

    /// Positive-class probability of each text.
    pub fn predict(&self, texts: &[&str]) -> Vec<f32> {
        texts.iter().map(|t| self.score(&self.vector(t))).collect()
    }

    /// Trains on `train`, choosing the epoch by accuracy on `dev`; returns the model and
    /// its dev accuracy.
    pub fn train(train: &[Example], dev: &[Example], s: &BaselineSettings) -> (Self, f64) {
        let tokenizer = Tokenizer::build(std::iter::once("가"), 1, 10_000, 4, s.buckets)
            .expect("fixed baseline tokenizer settings are valid");
        let n = s.buckets as usize;
        let mut df = vec![0u32; n];
        let raw: Vec<Vec<(u32, f32)>> = train.iter().map(|e| counts(&tokenizer, &e.text)).collect();
        for doc in &raw {
            for &(j, _) in doc {
                df[j as usize] += 1;
            }
        }
        let docs = train.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| ((1.0 + docs) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        let mut model = TfidfLogistic {
            tokenizer,
            idf,
            weights: vec![0.0; n],
            bias: 0.0,
        };
        let xs: Vec<Sparse> = train.iter().map(|e| model.vector(&e.text)).collect();
        let dev_x: Vec<Sparse> = dev.iter().map(|e| model.vector(&e.text)).collect();
        let best = fit_logistic(&xs, train, &dev_x, dev, n, s);
        model.weights = best.1;
        model.bias = best.2;
        (model, best.0)
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
            let y = train[i].label as f32;
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
        let right = dev_x
            .iter()
            .zip(dev)
            .filter(|(v, e)| (logistic(&weights, bias, v) >= 0.5) == (e.label == 1))
            .count();
        let acc = right as f64 / dev.len().max(1) as f64;
        if acc > best.0 {
            best = (acc, weights.clone(), bias);
        }
    }
    best
}
