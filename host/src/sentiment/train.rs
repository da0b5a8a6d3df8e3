//! Training the sentiment network: seeded dev split, length-grouped batches, AdamW with
//! warm-up and linear decay, evaluation on dev every half epoch, early stopping on dev
//! accuracy, and the best weights kept.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use sangdam::sentiment::tokenizer::TokenizerError;
use sangdam::sentiment::{Encoded, InvalidTokenizer, Tokenizer};

use super::net::{batch_tensors, Net, NetConfig, NetError};
use super::{accuracy, read_tsv, Example, SentimentDataError};
use crate::data::{length_grouped_batches, shuffle};
use crate::rng::Rng;
use crate::train::{clip_grad_norm, learning_rate, AdamW, TrainError};

/// Why a sentiment training run failed, or a trained network cannot be loaded. (The
/// speech model's is [`crate::train::TrainError`].)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SentimentTrainError {
    /// The training file ([`read_tsv`]).
    #[error(transparent)]
    Data(#[from] SentimentDataError),
    #[error("{}: fewer than two labelled rows", path.display())]
    TooFewRows { path: PathBuf },
    /// The tokenizer built from the training rows is not one this build can use.
    #[error(transparent)]
    Tokenizer(#[from] InvalidTokenizer),
    /// A training folder's `tokenizer.json` ([`Tokenizer::load`]).
    #[error(transparent)]
    LoadTokenizer(#[from] TokenizerError),
    /// The network cannot be built, run or restored.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A tensor operation of the training step.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The optimiser or the gradient clipping ([`AdamW`], [`clip_grad_norm`]).
    #[error(transparent)]
    Step(#[from] TrainError),
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A training folder's `net.json` that does not describe a network.
    #[error("{} is not a net.json", path.display())]
    NotNetJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
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
}

type Result<T, E = SentimentTrainError> = std::result::Result<T, E>;

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let body = serde_json::to_string_pretty(value).map_err(SentimentTrainError::Json)?;
    std::fs::write(path, body).map_err(|source| SentimentTrainError::Write {
        path: path.to_owned(),
        source,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentimentSettings {
    pub train: PathBuf,
    pub out: PathBuf,
    /// Fraction of the training file held out for early stopping.
    pub dev_fraction: f64,
    pub seed: u64,
    pub epochs: usize,
    /// Stop when dev accuracy has not improved for this many evaluations.
    pub patience: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub max_grad_norm: f64,
    /// Tokenizer: characters seen fewer times are `<unk>`.
    pub min_char_count: usize,
    pub max_chars: usize,
    pub ngram_max: usize,
    pub ngram_buckets: u32,
    pub char_dim: usize,
    pub kernels: Vec<usize>,
    pub filters: usize,
    pub ngram_dim: usize,
    pub hidden: usize,
    pub dropout: f32,
    /// The linear n-gram path next to the network (see `NetConfig::wide`).
    #[serde(default)]
    pub wide: bool,
    /// Use only this many training rows (0: all), for quick trials.
    pub limit: usize,
    pub quiet: bool,
}

impl Default for SentimentSettings {
    fn default() -> Self {
        SentimentSettings {
            train: PathBuf::from("../shared/data/nsmc-like/train.tsv"),
            out: PathBuf::from("out/sentiment-ko"),
            dev_fraction: 0.05,
            seed: 42,
            epochs: 4,
            patience: 3,
            batch: 64,
            lr: 2e-3,
            weight_decay: 0.0,
            warmup_steps: 200,
            max_grad_norm: 5.0,
            min_char_count: 3,
            max_chars: 200,
            ngram_max: 4,
            ngram_buckets: 1 << 18,
            char_dim: 48,
            kernels: vec![3, 5],
            filters: 128,
            ngram_dim: 16,
            hidden: 128,
            dropout: 0.3,
            wide: false,
            limit: 0,
            quiet: false,
        }
    }
}

/// What a run produced, also written as `train_state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentimentReport {
    pub settings: SentimentSettings,
    pub net: NetConfig,
    pub params: usize,
    pub train_rows: usize,
    pub dev_rows: usize,
    pub best_dev_accuracy: f64,
    pub best_step: usize,
    pub steps: usize,
    pub seconds: f64,
    /// (step, epoch, train loss, dev accuracy) at each evaluation.
    pub history: Vec<(usize, f64, f64, f64)>,
    pub stopped_early: bool,
}

fn progress(done: usize, total: usize, started: Instant, line: &str) {
    let frac = done as f64 / total.max(1) as f64;
    let width = 24;
    let filled = (frac * width as f64).round() as usize;
    let elapsed = started.elapsed().as_secs_f64();
    let eta = if done > 0 {
        elapsed / frac - elapsed
    } else {
        0.0
    };
    eprint!(
        "\r[{}{}] {done}/{total} {line} eta {:.0}s   ",
        "#".repeat(filled.min(width)),
        "-".repeat(width - filled.min(width)),
        eta
    );
}

/// The run's rows: the training file shuffled by the seed, cut to `limit`, and the last
/// `dev_fraction` held out. Returns (train, dev, rows skipped for lack of a label).
/// `rng` must be fresh from `Rng::new(s.seed)`; training goes on drawing from it.
pub fn split_rows(
    s: &SentimentSettings,
    rng: &mut Rng,
) -> Result<(Vec<Example>, Vec<Example>, usize)> {
    let (mut rows, skipped) = read_tsv(&s.train)?;
    if rows.len() < 2 {
        return Err(SentimentTrainError::TooFewRows {
            path: s.train.clone(),
        });
    }
    shuffle(&mut rows, rng);
    if s.limit > 0 {
        rows.truncate(s.limit.max(2));
    }
    let n_dev = ((rows.len() as f64 * s.dev_fraction).round() as usize).clamp(1, rows.len() - 1);
    let dev: Vec<Example> = rows.split_off(rows.len() - n_dev);
    Ok((rows, dev, skipped))
}

/// Trains, saving `tokenizer.json`, `model.safetensors`, `net.json` and
/// `train_state.json` (best dev weights) in `s.out`.
pub fn train(s: &SentimentSettings) -> Result<SentimentReport> {
    let device = Device::Cpu;
    let started = Instant::now();
    let mut rng = Rng::new(s.seed);
    let (train_rows, dev, skipped) = split_rows(s, &mut rng)?;
    if skipped > 0 && !s.quiet {
        eprintln!(
            "sentiment: skipped {skipped} rows without a 0, 1 or neutral label in {}",
            s.train.display()
        );
    }
    let tokenizer = Tokenizer::build(
        train_rows.iter().map(|e| e.text.as_str()),
        s.min_char_count,
        s.max_chars,
        s.ngram_max,
        s.ngram_buckets,
    )?;
    std::fs::create_dir_all(&s.out).map_err(|source| SentimentTrainError::Create {
        path: s.out.clone(),
        source,
    })?;
    let tokenizer_path = s.out.join("tokenizer.json");
    tokenizer
        .save(&tokenizer_path)
        .map_err(|source| SentimentTrainError::Write {
            path: tokenizer_path,
            source,
        })?;
    let enc_train: Vec<Encoded> = train_rows
        .iter()
        .map(|e| tokenizer.encode(&e.text))
        .collect();
    let enc_dev: Vec<Encoded> = dev.iter().map(|e| tokenizer.encode(&e.text)).collect();
    let labels: Vec<u32> = train_rows.iter().map(|e| e.label as u32).collect();
    let targets: Vec<f32> = train_rows.iter().map(|e| e.target()).collect();

    let config = NetConfig {
        vocab: tokenizer.vocab_size(),
        buckets: s.ngram_buckets as usize,
        char_dim: s.char_dim,
        kernels: s.kernels.clone(),
        filters: s.filters,
        ngram_dim: s.ngram_dim,
        hidden: s.hidden,
        dropout: s.dropout,
        wide: s.wide,
        wide_scale: 1.0,
        tfidf_buckets: 0,
    };
    let net = Net::new(config.clone(), s.seed, &device)?;
    write_json(&s.out.join("net.json"), &config)?;
    if !s.quiet {
        eprintln!(
            "sentiment: {} train, {} dev rows; {} characters; {} parameters",
            enc_train.len(),
            enc_dev.len(),
            tokenizer.vocab_size(),
            net.params()
        );
    }
    let mut opt = AdamW::new(&net.vars, s.weight_decay)?;
    let lengths: Vec<usize> = enc_train.iter().map(|e| e.chars.len()).collect();
    let steps_per_epoch = enc_train.len().div_ceil(s.batch);
    let total = steps_per_epoch * s.epochs;
    let eval_every = (steps_per_epoch / 2).max(1);
    let dev_refs: Vec<&Encoded> = enc_dev.iter().collect();
    let mut best = (f64::MIN, 0usize, net.snapshot());
    let mut history = Vec::new();
    let mut since_best = 0;
    let mut step = 0;
    let mut loss_sum = 0.0;
    let mut loss_n = 0usize;
    let mut stopped_early = false;
    'epochs: for _epoch in 0..s.epochs {
        for batch in length_grouped_batches(&lengths, s.batch, &mut rng) {
            let items: Vec<&Encoded> = batch.iter().map(|&i| &enc_train[i]).collect();
            let ys: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
            let b = batch_tensors(&items, &ys, net.min_chars(), &device)?;
            let logits = net.forward(&b, Some(&mut rng))?;
            // Cross-entropy against (1 - t, t): the hard labels' loss for polar rows, and
            // a pull to the middle for neutral ones (t = 0.5).
            let t: Vec<f32> = batch
                .iter()
                .flat_map(|&i| [1.0 - targets[i], targets[i]])
                .collect();
            let t = Tensor::from_vec(t, (batch.len(), 2), &device)?;
            let logp = candle_nn::ops::log_softmax(&logits, 1)?;
            let loss = (logp * t)?.sum(1)?.mean(0)?.neg()?;
            let grads = loss.backward()?;
            let mut gs: Vec<Option<Tensor>> = net
                .vars
                .iter()
                .map(|(_, v)| grads.get(v).cloned())
                .collect();
            clip_grad_norm(&mut gs, s.max_grad_norm)?;
            let lr = learning_rate(step, s.warmup_steps, total, s.lr);
            opt.update(&net.vars, &gs, lr)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            loss_n += 1;
            step += 1;
            if !s.quiet && step % 20 == 0 {
                progress(
                    step,
                    total,
                    started,
                    &format!("loss {:.4}", loss_sum / loss_n as f64),
                );
            }
            if step % eval_every == 0 || step == total {
                let p = net.predict(&dev_refs, 256, &device)?;
                let acc = accuracy(&p, &dev);
                let train_loss = loss_sum / loss_n.max(1) as f64;
                history.push((step, step as f64 / steps_per_epoch as f64, train_loss, acc));
                loss_sum = 0.0;
                loss_n = 0;
                if !s.quiet {
                    eprintln!(
                        "\rstep {step}/{total} epoch {:.2}: train loss {train_loss:.4}, dev accuracy {:.2}% ({:.0}s)",
                        step as f64 / steps_per_epoch as f64,
                        acc * 100.0,
                        started.elapsed().as_secs_f64()
                    );
                }
                if acc > best.0 {
                    best = (acc, step, net.snapshot());
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= s.patience {
                        stopped_early = true;
                        break 'epochs;
                    }
                }
            }
        }
    }
    net.restore(&best.2)?;
    let weights = s.out.join("model.safetensors");
    candle_core::safetensors::save(&best.2, &weights).map_err(|source| {
        SentimentTrainError::WriteWeights {
            path: weights,
            source,
        }
    })?;
    let report = SentimentReport {
        settings: s.clone(),
        net: config,
        params: net.params(),
        train_rows: enc_train.len(),
        dev_rows: enc_dev.len(),
        best_dev_accuracy: best.0,
        best_step: best.1,
        steps: step,
        seconds: started.elapsed().as_secs_f64(),
        history,
        stopped_early,
    };
    write_json(&s.out.join("train_state.json"), &report)?;
    Ok(report)
}

/// Loads a trained network and its tokenizer from a training output folder.
pub fn load(dir: &Path) -> Result<(Net, Tokenizer)> {
    let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?;
    let net_json = dir.join("net.json");
    let text = std::fs::read_to_string(&net_json).map_err(|source| SentimentTrainError::Read {
        path: net_json.clone(),
        source,
    })?;
    let config: NetConfig =
        serde_json::from_str(&text).map_err(|source| SentimentTrainError::NotNetJson {
            path: net_json,
            source,
        })?;
    let net = Net::new(config, 0, &Device::Cpu)?;
    let path = dir.join("model.safetensors");
    let weights = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|source| SentimentTrainError::ReadWeights { path, source })?;
    net.restore(&weights)?;
    Ok((net, tokenizer))
}
