//! Stacking: a trained network plus a TF-IDF logistic regression over character
//! n-grams, merged into one graph.
//!
//! Measured on the NSMC-like split, a linear model over character 1-4-grams is as
//! accurate as the network on its own (BENCHMARKS.md), and the two err on different
//! texts. `fuse` trains the linear model on the network's training rows (same seed, same
//! dev split), then fits three numbers on the dev split, `margin = a * network + c *
//! linear + b` (Platt scaling of both at once, so the printed probability is calibrated
//! on dev), and writes the network with its TF-IDF part: one model, one tract run, one
//! tokenizer.
//!
//! The linear model is the baseline's ([`super::baseline`]): the n-grams hashed a second
//! time into 2^20 buckets (the tokenizer's `tfidf_buckets`; the network's own table has
//! far fewer rows), sublinear tf, smooth idf, l2-normalised rows. The earlier linear part
//! (raw counts over the network's 2^18 buckets, divided by sqrt(n)) lacked both the
//! buckets and the weighting (BENCHMARKS.md measures each). The graph gets the text's
//! distinct n-grams with their `1 + ln(count)` from the tokenizer and holds idf and the
//! weights as two tables (int8 in the shipped file).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use sangdam::sentiment::{Encoded, InvalidTokenizer};

use super::baseline::{BaselineSettings, TfidfLogistic};
use super::net::{Net, NetConfig, NetError};
use super::train::{load, split_rows, SentimentReport, SentimentTrainError};
use super::Example;

/// Why a run cannot be fused, or a TF-IDF part read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FuseError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The run's `train_state.json` is not a training report.
    #[error("{} is not a train_state.json", path.display())]
    NotState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} already has a linear part; fuse a plain network", run.display())]
    AlreadyFused { run: PathBuf },
    /// The run's network or its training split ([`load`], [`split_rows`]).
    #[error(transparent)]
    Run(Box<SentimentTrainError>),
    /// The run's tokenizer with the TF-IDF buckets is not one this build can use.
    #[error(transparent)]
    Tokenizer(#[from] InvalidTokenizer),
    /// The fused network cannot be built, run or restored.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A tensor operation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("cannot create {}", path.display())]
    Create {
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
    /// A config or report could not be put as JSON.
    #[error(transparent)]
    Json(serde_json::Error),
    #[error("cannot read {}", path.display())]
    ReadWeights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("cannot write {}", path.display())]
    WriteWeights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    /// `tfidf.safetensors` without one of its two tables.
    #[error("{} lacks {name}", path.display())]
    MissingTable { path: PathBuf, name: String },
}

impl From<SentimentTrainError> for FuseError {
    fn from(e: SentimentTrainError) -> Self {
        FuseError::Run(Box::new(e))
    }
}

type Result<T, E = FuseError> = std::result::Result<T, E>;

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> FuseError + '_ {
    move |source| FuseError::Write {
        path: path.to_owned(),
        source,
    }
}

fn write_weights_error(path: &Path) -> impl FnOnce(candle_core::Error) -> FuseError + '_ {
    move |source| FuseError::WriteWeights {
        path: path.to_owned(),
        source,
    }
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let body = serde_json::to_string_pretty(value).map_err(FuseError::Json)?;
    std::fs::write(path, body).map_err(write_error(path))
}

/// What a fuse run measured, written as `fuse.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FuseReport {
    pub network_dev_accuracy: f64,
    pub linear_dev_accuracy: f64,
    pub fused_dev_accuracy: f64,
    /// margin = a * network + c * linear + b
    pub a: f32,
    pub c: f32,
    pub b: f32,
    pub linear_epochs: usize,
    /// Rows of the TF-IDF tables.
    pub tfidf_buckets: usize,
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits `p = sigmoid(a x + c y + b)` by Newton's method with step halving (three
/// parameters, convex log-loss), starting from zero.
fn fit_blend(x: &[f32], y: &[f32], labels: &[f32]) -> [f32; 3] {
    let loss = |w: &[f64; 3]| -> f64 {
        (0..x.len())
            .map(|i| {
                let z = w[0] * x[i] as f64 + w[1] * y[i] as f64 + w[2];
                // log(1 + e^z) - label * z, stable for large |z|
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - labels[i] as f64 * z
            })
            .sum()
    };
    let mut w = [0f64; 3];
    let mut current = loss(&w);
    for _ in 0..100 {
        let mut g = [0f64; 3];
        let mut h = [[0f64; 3]; 3];
        for i in 0..x.len() {
            let f = [x[i] as f64, y[i] as f64, 1.0];
            let p = 1.0 / (1.0 + (-(w[0] * f[0] + w[1] * f[1] + w[2])).exp());
            for r in 0..3 {
                g[r] += (p - labels[i] as f64) * f[r];
                for c in 0..3 {
                    h[r][c] += p * (1.0 - p) * f[r] * f[c];
                }
            }
        }
        for (r, row) in h.iter_mut().enumerate() {
            row[r] += 1e-6; // keeps the step defined on separable data
        }
        let step = solve3(h, g);
        let mut t = 1.0;
        let mut next = w;
        let mut next_loss = f64::INFINITY;
        while t > 1e-6 {
            next = [w[0] - t * step[0], w[1] - t * step[1], w[2] - t * step[2]];
            next_loss = loss(&next);
            if next_loss <= current {
                break;
            }
            t /= 2.0;
        }
        if next_loss > current {
            break;
        }
        let done = current - next_loss < 1e-9 * current.max(1.0);
        w = next;
        current = next_loss;
        if done {
            break;
        }
    }
    [w[0] as f32, w[1] as f32, w[2] as f32]
}

/// Solves a 3x3 system by Cramer's rule.
fn solve3(m: [[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    let mut out = [0f64; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let mut mc = m;
        for r in 0..3 {
            mc[r][c] = v[r];
        }
        *o = det(mc) / d;
    }
    out
}

fn accuracy_of(margins: &[f32], dev: &[Example]) -> f64 {
    let p: Vec<f32> = margins.iter().map(|&m| sigmoid(m)).collect();
    super::accuracy(&p, dev)
}

/// Rows of the stack's TF-IDF tables: the baseline's 2^20 buckets, plus the padding row.
pub const TFIDF_BUCKETS: u32 = (1 << 20) + 1;

/// The TF-IDF linear part of a fused model, as `tfidf.safetensors` holds it.
pub struct TfidfPart {
    /// The linear weights, already multiplied by the blend's `c`.
    pub weight: Vec<f32>,
    pub idf: Vec<f32>,
}

impl TfidfPart {
    pub fn save(&self, path: &Path) -> Result<()> {
        let n = self.weight.len();
        let map = std::collections::HashMap::from([
            (
                "tfidf.weight".to_string(),
                Tensor::from_vec(self.weight.clone(), n, &Device::Cpu)?,
            ),
            (
                "tfidf.idf".to_string(),
                Tensor::from_vec(self.idf.clone(), n, &Device::Cpu)?,
            ),
        ]);
        candle_core::safetensors::save(&map, path).map_err(write_weights_error(path))
    }

    pub fn load(path: &Path) -> Result<TfidfPart> {
        let map = candle_core::safetensors::load(path, &Device::Cpu).map_err(|source| {
            FuseError::ReadWeights {
                path: path.to_owned(),
                source,
            }
        })?;
        let get = |k: &str| -> Result<Vec<f32>> {
            Ok(map
                .get(k)
                .ok_or_else(|| FuseError::MissingTable {
                    path: path.to_owned(),
                    name: k.into(),
                })?
                .to_vec1::<f32>()?)
        };
        Ok(TfidfPart {
            weight: get("tfidf.weight")?,
            idf: get("tfidf.idf")?,
        })
    }
}

/// Fuses the network trained in `run` (its `train_state.json` names the training file,
/// seed and split) with a TF-IDF logistic regression, writing the merged model to `out`
/// in the same layout as a training run plus `tfidf.safetensors` (then
/// `export::export_dir(out)` makes its ONNX files). The blend is fitted on the run's dev
/// split, neutral rows included with target 0.5.
pub fn fuse(run: &Path, out: &Path, linear_epochs: usize, quiet: bool) -> Result<FuseReport> {
    let state_path = run.join("train_state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|source| FuseError::Read {
        path: state_path.clone(),
        source,
    })?;
    let state: SentimentReport =
        serde_json::from_str(&text).map_err(|source| FuseError::NotState {
            path: state_path,
            source,
        })?;
    if state.net.wide || state.net.tfidf_buckets != 0 {
        return Err(FuseError::AlreadyFused {
            run: run.to_owned(),
        });
    }
    let s = &state.settings;
    let (net, tokenizer) = load(run)?;
    let tokenizer = tokenizer.with_tfidf_buckets(Some(TFIDF_BUCKETS))?;
    // The training run's split, row for row.
    let (train, dev, _) = split_rows(s, &mut crate::rng::Rng::new(s.seed))?;
    if !quiet {
        eprintln!(
            "fuse: TF-IDF logistic regression over {TFIDF_BUCKETS} n-gram buckets on {} rows, {linear_epochs} epochs",
            train.len()
        );
    }
    let settings = BaselineSettings {
        epochs: linear_epochs,
        seed: s.seed,
        buckets: TFIDF_BUCKETS,
        ..BaselineSettings::default()
    };
    let (linear_model, linear_dev_accuracy) =
        TfidfLogistic::train_with(Some(&tokenizer), &train, &dev, &settings);
    let enc: Vec<Encoded> = dev.iter().map(|e| tokenizer.encode(&e.text)).collect();
    let linear: Vec<f32> = enc
        .iter()
        .map(|e| {
            let v = linear_model.tfidf.vector(e);
            linear_model.bias
                + v.iter()
                    .map(|&(j, x)| linear_model.weights[j as usize] * x)
                    .sum::<f32>()
        })
        .collect();
    let refs: Vec<&Encoded> = enc.iter().collect();
    let network = net.margins(&refs, 256, &Device::Cpu)?;
    let labels: Vec<f32> = dev.iter().map(|e| e.target()).collect();
    let [a, c, b] = fit_blend(&network, &linear, &labels);
    let fused: Vec<f32> = network
        .iter()
        .zip(&linear)
        .map(|(n, l)| a * n + c * l + b)
        .collect();

    let config = NetConfig {
        tfidf_buckets: TFIDF_BUCKETS as usize,
        ..state.net.clone()
    };
    let fused_net = Net::new(config.clone(), 0, &Device::Cpu)?;
    let mut w = net.snapshot();
    // Scale the network's margin by a and add the blend's bias (and the linear model's,
    // times c) to the positive logit.
    let fc2w = (w["fc2.weight"].clone() * a as f64)?;
    let mut fc2b = (w["fc2.bias"].clone() * a as f64)?.to_vec1::<f32>()?;
    fc2b[1] += b + c * linear_model.bias;
    w.insert("fc2.weight".into(), fc2w);
    w.insert(
        "fc2.bias".into(),
        Tensor::new(fc2b.as_slice(), &Device::Cpu)?,
    );
    fused_net.restore(&w)?;

    std::fs::create_dir_all(out).map_err(|source| FuseError::Create {
        path: out.to_owned(),
        source,
    })?;
    let tokenizer_path = out.join("tokenizer.json");
    tokenizer
        .save(&tokenizer_path)
        .map_err(write_error(&tokenizer_path))?;
    write_json(&out.join("net.json"), &config)?;
    let weights = out.join("model.safetensors");
    candle_core::safetensors::save(&fused_net.snapshot(), &weights)
        .map_err(write_weights_error(&weights))?;
    TfidfPart {
        weight: linear_model.weights.iter().map(|w| c * w).collect(),
        idf: linear_model.tfidf.idf.clone(),
    }
    .save(&out.join("tfidf.safetensors"))?;
    let mut state = state.clone();
    state.net = config;
    write_json(&out.join("train_state.json"), &state)?;
    let report = FuseReport {
        network_dev_accuracy: accuracy_of(&network, &dev),
        linear_dev_accuracy,
        fused_dev_accuracy: accuracy_of(&fused, &dev),
        a,
        c,
        b,
        linear_epochs,
        tfidf_buckets: TFIDF_BUCKETS as usize,
    };
    write_json(&out.join("fuse.json"), &report)?;
    Ok(report)
}
