//! The CTC training loop: SpecAugment, AdamW with warm-up and linear decay, gradient
//! clipping and accumulation, length-grouped batches, checkpoints with resume, dev CER
//! on a schedule, a progress line, and one seed for everything random.
//!
//! The loss is transformers' `Wav2Vec2ForCTC` loss: CTC per utterance (blank = `[PAD]`,
//! `ctc_zero_infinity`), divided by the label length, averaged over the batch
//! (`ctc_loss_reduction = "mean"`). [`crate::ctc`] computes it and its gradient with
//! respect to the logits in f64; the gradient goes back through candle as the
//! derivative of `sum(logits * grad)`.
//!
//! Batches are zero-padded and, by default, masked as transformers masks them when it is
//! given an `attention_mask` ([`Padding`]): the encoder ignores padded frames and CTC
//! reads each item's own length. `tests/train.rs` reproduces transformers' 20-step
//! training curve (`../shared/fixtures/train-curve`) with and without the masks.
//!
//! The step itself runs on one of two backends ([`crate::engine`]): the candle code in
//! this module, or libtorch with the `torch` feature (module `torch`, the default when
//! built: PyTorch's kernels, about 5x faster on a CPU). Everything around the step (data,
//! SpecAugment masks, schedule, checkpoints, resume, dev CER) is shared.
//!
//! Not implemented: dropout and LayerDrop (candle's CPU dropout cannot be seeded, and
//! SpecAugment is the regulariser the recipe relies on).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::data::{self, DataError, Utterance};
use crate::engine::{Backend, Engine, EngineError};
use crate::eval::error_rates;
use crate::model::{Masks, ModelError, Wav2Vec2Config, Wav2Vec2ForCtc};
use crate::rng::Rng;

/// Why training (or one of its pieces: a model, a step, a checkpoint) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A tensor operation (shapes, devices, autograd).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The architecture cannot be built for this config.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A split or `vocab.json` ([`data`]).
    #[error(transparent)]
    Data(#[from] DataError),
    /// `--vocab` as the firmware's decoder reads it.
    #[error(transparent)]
    Vocab(#[from] sangdam::asr::VocabError),
    /// Choosing or starting the backend, or bringing its weights back.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An optimiser step failed (`step` counts the steps done before it).
    #[error("step {step}")]
    Step {
        step: usize,
        #[source]
        source: EngineError,
    },
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
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    #[error("cannot copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A config or state could not be put as JSON.
    #[error(transparent)]
    Json(serde_json::Error),
    #[error("vocab.json has no [PAD] token (build it with `sangdam-host corpus index`)")]
    NoPad,
    #[error("the model's config.json lacks a field wav2vec2 needs")]
    ConfigFields(#[source] serde_json::Error),
    #[error("no CUDA device: build sangdam-host with `--features cuda` on a machine with the CUDA toolkit and a GPU")]
    NoCuda(#[source] candle_core::Error),
    /// Every utterance of the split was skipped ([`data::load_split`]).
    #[error("no usable utterances in {}", path.display())]
    NoUtterances { path: PathBuf },
    /// The `trainer_state.json` at `path` (of the checkpoint resumed) is not one.
    #[error("trainer_state.json is damaged")]
    DamagedState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write --step-times")]
    StepTimes(#[source] std::io::Error),
    #[error("loss became {0}: lower the learning rate")]
    Diverged(f64),
    /// The checkpoint's CTC head (`lm_head`) reads another hidden size than the model.
    #[error("{}: its CTC head reads {checkpoint} features, this model has {model}", path.display())]
    HeadWidth {
        path: PathBuf,
        checkpoint: usize,
        model: usize,
    },
    /// Logits that do not fill their `[frames, vocab]` shape.
    #[error(transparent)]
    Shape(#[from] tract_onnx::prelude::tract_ndarray::ShapeError),
}

type Result<T, E = TrainError> = std::result::Result<T, E>;

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Read {
        path: path.to_owned(),
        source,
    }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Write {
        path: path.to_owned(),
        source,
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|source| TrainError::Copy {
            from: from.to_owned(),
            to: to.to_owned(),
            source,
        })
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let body = serde_json::to_string_pretty(value).map_err(TrainError::Json)?;
    std::fs::write(path, body).map_err(write_error(path))
}

/// A trainable model: the network and the variables behind it, by Hugging Face name.
pub struct Trainable {
    pub model: Wav2Vec2ForCtc,
    pub varmap: VarMap,
    /// Whether the positional conv uses the `parametrizations.weight.*` names.
    pub parametrized: bool,
}

impl Trainable {
    /// A fresh model for `config`, initialised from `seed` as transformers initialises
    /// wav2vec2 (normal(0, 0.02) linears, Kaiming-normal convolutions with uniform
    /// biases, the feature projection uniform in ±1/sqrt(in), unit norms, weight-norm
    /// `g = ||v||`).
    pub fn scratch(config: Wav2Vec2Config, seed: u64, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = Wav2Vec2ForCtc::new(config, vb, true)?;
        let t = Trainable {
            model,
            varmap,
            parametrized: true,
        };
        t.initialise(seed)?;
        Ok(t)
    }

    /// Loads a Hugging Face checkpoint folder (`config.json`, `model.safetensors`) for
    /// training. Parameters the checkpoint lacks or has in another shape (the CTC head
    /// of a pretrained-only checkpoint, or one made for another vocabulary) start fresh
    /// from `seed`; they are returned so the caller can report them.
    pub fn from_checkpoint(
        dir: &Path,
        config: Wav2Vec2Config,
        seed: u64,
        device: &Device,
    ) -> Result<(Self, Vec<String>)> {
        let weights = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, device).map_err(|source| {
            TrainError::ReadWeights {
                path: weights.clone(),
                source,
            }
        })?;
        let parametrized = tensors
            .keys()
            .any(|k| k.ends_with("pos_conv_embed.conv.parametrizations.weight.original0"));
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = Wav2Vec2ForCtc::new(config, vb, parametrized)?;
        let t = Trainable {
            model,
            varmap,
            parametrized,
        };
        t.initialise(seed)?;
        let mut fresh = Vec::new();
        for (name, var) in t.sorted_vars() {
            match tensors.get(&name) {
                Some(src) if src.shape() == var.shape() => var.set(&src.to_dtype(DType::F32)?)?,
                _ => fresh.push(name),
            }
        }
        Ok((t, fresh))
    }

    /// Variables sorted by name (a stable order for initialising and for the optimiser).
    pub fn sorted_vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn initialise(&self, seed: u64) -> Result<()> {
        let mut rng = Rng::new(seed ^ 0x5EED_1A17);
        let vars = self.sorted_vars();
        let mut pos_g = None;
        let mut pos_v_norm = None;
        for (name, var) in &vars {
            let shape = var.shape().clone();
            let n = shape.elem_count();
            let dims = shape.dims().to_vec();
            // Uniform in [-k, k], as torch initialises what transformers leaves to it.
            let uniform = |rng: &mut Rng, k: f64| -> Vec<f32> {
                (0..n)
                    .map(|_| ((rng.unit() * 2.0 - 1.0) * k) as f32)
                    .collect()
            };
            let values: Vec<f32> = if name.contains("feature_projection.projection") {
                // transformers: weight and bias uniform in ±1/sqrt(in_features).
                let fan_in = self.model.config.conv_dim.last().copied().unwrap_or(1);
                uniform(&mut rng, (1.0 / fan_in as f64).sqrt())
            } else if name.contains("feature_extractor.conv_layers") && name.ends_with("conv.bias")
            {
                // transformers: conv biases uniform in ±sqrt(groups / (in * kernel)).
                let i: usize = name
                    .split("conv_layers.")
                    .nth(1)
                    .and_then(|r| r.split('.').next())
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                let c = &self.model.config;
                let in_ch = if i == 0 { 1 } else { c.conv_dim[i - 1] };
                uniform(&mut rng, (1.0 / (in_ch * c.conv_kernel[i]) as f64).sqrt())
            } else if name.ends_with("bias") {
                vec![0.0; n]
            } else if name.contains("norm") && !name.contains("pos_conv") {
                vec![1.0; n]
            } else if name.ends_with("masked_spec_embed") {
                (0..n).map(|_| rng.unit() as f32).collect()
            } else if name.contains("pos_conv_embed") {
                if name.ends_with("original0") || name.ends_with("weight_g") {
                    pos_g = Some(var.clone());
                    vec![1.0; n]
                } else {
                    let k = dims[2];
                    let std = (4.0 / (k * dims[0]) as f64).sqrt();
                    let v: Vec<f32> = (0..n).map(|_| (normal(&mut rng) * std) as f32).collect();
                    // ||v|| over output and input channels, per kernel position.
                    let mut norms = vec![0f64; k];
                    for (i, x) in v.iter().enumerate() {
                        norms[i % k] += (*x as f64) * (*x as f64);
                    }
                    pos_v_norm = Some(norms.iter().map(|s| s.sqrt() as f32).collect::<Vec<_>>());
                    v
                }
            } else if dims.len() == 3 {
                // Convolution: Kaiming normal, fan-in = in_channels * kernel.
                let std = (2.0 / (dims[1] * dims[2]) as f64).sqrt();
                (0..n).map(|_| (normal(&mut rng) * std) as f32).collect()
            } else {
                (0..n).map(|_| (normal(&mut rng) * 0.02) as f32).collect()
            };
            var.set(&Tensor::from_vec(values, shape, var.device())?)?;
        }
        if let (Some(g), Some(norms)) = (pos_g, pos_v_norm) {
            let k = norms.len();
            g.set(&Tensor::from_vec(norms, (1, 1, k), g.device())?)?;
        }
        Ok(())
    }

    /// Writes the model as a Hugging Face checkpoint folder: `config.json` (the given
    /// JSON, which keeps every field the user's checkpoint had) and `model.safetensors`.
    pub fn save(&self, dir: &Path, config_json: &serde_json::Value) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Create {
            path: dir.to_owned(),
            source,
        })?;
        self.varmap
            .save(dir.join("model.safetensors"))
            .map_err(|source| TrainError::WriteWeights {
                path: dir.to_owned(),
                source,
            })?;
        write_json(&dir.join("config.json"), config_json)
    }
}

/// Standard normal by Box-Muller.
fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// transformers' `_compute_mask_indices` for one sequence of `len` positions: about
/// `prob * len / span` spans (plus a uniform random fraction, at least `min_masks`) of
/// `span` positions, starting at distinct random positions.
pub fn span_mask(rng: &mut Rng, len: usize, prob: f64, span: usize, min_masks: usize) -> Vec<bool> {
    let mut mask = vec![false; len];
    if span == 0 || len < span || (prob <= 0.0 && min_masks == 0) {
        return mask;
    }
    let eps = rng.unit();
    let mut n = ((prob * len as f64 / span as f64) + eps) as usize;
    n = n.max(min_masks);
    if n * span > len {
        n = len / span;
    }
    n = n.min(len + 1 - span);
    let mut starts: Vec<usize> = (0..=len - span).collect();
    data::shuffle(&mut starts, rng);
    for &s in &starts[..n] {
        for m in &mut mask[s..s + span] {
            *m = true;
        }
    }
    mask
}

/// SpecAugment masks for a batch whose items have `frames` valid frames each (padded
/// to `max_frames`), with the checkpoint's settings.
pub fn spec_augment(
    config: &Wav2Vec2Config,
    frames: &[usize],
    max_frames: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Option<Masks>> {
    if !config.apply_spec_augment {
        return Ok(None);
    }
    let b = frames.len();
    let time = if config.mask_time_prob > 0.0 || config.mask_time_min_masks > 0 {
        let mut t = vec![0f32; b * max_frames];
        for (i, &len) in frames.iter().enumerate() {
            let m = span_mask(
                rng,
                len,
                config.mask_time_prob,
                config.mask_time_length,
                config.mask_time_min_masks,
            );
            for (j, on) in m.into_iter().enumerate() {
                t[i * max_frames + j] = on as u8 as f32;
            }
        }
        Some(Tensor::from_vec(t, (b, max_frames, 1), device)?)
    } else {
        None
    };
    let h = config.hidden_size;
    let feature = if config.mask_feature_prob > 0.0 || config.mask_feature_min_masks > 0 {
        let mut f = vec![0f32; b * h];
        for i in 0..b {
            let m = span_mask(
                rng,
                h,
                config.mask_feature_prob,
                config.mask_feature_length,
                config.mask_feature_min_masks,
            );
            for (j, on) in m.into_iter().enumerate() {
                f[i * h + j] = on as u8 as f32;
            }
        }
        Some(Tensor::from_vec(f, (b, 1, h), device)?)
    } else {
        None
    };
    Ok(Some(Masks { time, feature }))
}

/// Stacks utterances into a zero-padded `[B, samples]` batch; returns it with each
/// item's valid frame count.
pub fn batch_inputs(
    config: &Wav2Vec2Config,
    utts: &[&Utterance],
    device: &Device,
) -> Result<(Tensor, Vec<usize>)> {
    let max = config.exact_length(utts.iter().map(|u| u.input.len()).max().unwrap_or(0));
    let mut flat = vec![0f32; utts.len() * max];
    for (i, u) in utts.iter().enumerate() {
        flat[i * max..i * max + u.input.len()].copy_from_slice(&u.input);
    }
    let frames = utts
        .iter()
        .map(|u| config.frames_for(u.input.len()))
        .collect();
    Ok((Tensor::from_vec(flat, (utts.len(), max), device)?, frames))
}

/// transformers' CTC loss ("mean" reduction) of a batch of logits `[B, L, V]`, and the
/// gradient tensor to back-propagate: `d loss / d logits`.
pub fn ctc_batch_loss(
    logits: &Tensor,
    frames: &[usize],
    labels: &[&[u32]],
    blank: usize,
) -> Result<(f64, Tensor)> {
    let (b, l, v) = logits.dims3()?;
    let host: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let mut grad = vec![0f32; b * l * v];
    let mut total = 0.0;
    for i in 0..b {
        let lg: Vec<f64> = host[i * l * v..(i + 1) * l * v]
            .iter()
            .map(|&x| x as f64)
            .collect();
        let target: Vec<usize> = labels[i].iter().map(|&x| x as usize).collect();
        if target.is_empty() {
            continue;
        }
        let out = crate::ctc::ctc_loss(&lg, v, frames[i].min(l), &target, blank, true);
        let scale = 1.0 / (target.len() as f64 * b as f64);
        total += out.loss * scale;
        for (g, d) in grad[i * l * v..(i + 1) * l * v].iter_mut().zip(&out.grad) {
            *g = (d * scale) as f32;
        }
    }
    Ok((total, Tensor::from_vec(grad, (b, l, v), logits.device())?))
}

/// How a zero-padded batch is shown to the model, as transformers' `attention_mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `attention_mask` passed: the encoder masks each item's padded frames and CTC
    /// reads each item's own frames.
    Masked,
    /// `attention_mask=None`: the model sees the zeros as signal and CTC takes every
    /// frame of the padded length (what transformers does for group-norm checkpoints
    /// when the feature extractor returns no mask).
    Unmasked,
}

/// Loss and parameter gradients of one batch (SpecAugment applied when `masks` is
/// given). `frames` are the items' own frame counts. Returns the loss and the
/// gradients in the order of `vars`.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grads(
    t: &Trainable,
    vars: &[(String, Var)],
    inputs: &Tensor,
    frames: &[usize],
    labels: &[&[u32]],
    masks: Option<&Masks>,
    freeze_feature_encoder: bool,
    padding: Padding,
) -> Result<(f64, Vec<Option<Tensor>>)> {
    let valid = match padding {
        Padding::Masked => Some(frames),
        Padding::Unmasked => None,
    };
    let logits = t
        .model
        .forward_t(inputs, masks, freeze_feature_encoder, valid)?;
    let blank = t
        .model
        .config
        .pad_token_id
        .map(|p| p as usize)
        .unwrap_or(t.model.config.vocab_size - 1);
    let all = vec![logits.dim(1)?; frames.len()];
    let ctc_frames = match padding {
        Padding::Masked => frames,
        Padding::Unmasked => all.as_slice(),
    };
    let (loss, g) = ctc_batch_loss(&logits, ctc_frames, labels, blank)?;
    let surrogate = (logits * g)?.sum_all()?;
    let grads = surrogate.backward()?;
    Ok((
        loss,
        vars.iter()
            .map(|(_, v)| grads.get(v.as_tensor()).cloned())
            .collect(),
    ))
}

/// One padded batch: inputs `[B, samples]`, each item's frame count and labels.
pub struct Batch<'a> {
    pub inputs: Tensor,
    pub frames: Vec<usize>,
    pub labels: Vec<&'a [u32]>,
    pub masks: Option<Masks>,
}

/// One optimiser step over `group` (gradients averaged over its batches, as gradient
/// accumulation does): loss, global gradient norm before clipping, clipping to
/// `max_grad_norm`, AdamW at `lr`. Returns the mean loss and that norm.
#[allow(clippy::too_many_arguments)]
pub fn optimiser_step(
    t: &Trainable,
    vars: &[(String, Var)],
    opt: &mut AdamW,
    group: &[Batch],
    padding: Padding,
    freeze_feature_encoder: bool,
    max_grad_norm: f64,
    lr: f64,
) -> Result<(f64, f64)> {
    let mut acc: Vec<Option<Tensor>> = vec![None; vars.len()];
    let mut loss = 0.0;
    let n = group.len().max(1) as f64;
    for b in group {
        let (l, grads) = loss_and_grads(
            t,
            vars,
            &b.inputs,
            &b.frames,
            &b.labels,
            b.masks.as_ref(),
            freeze_feature_encoder,
            padding,
        )?;
        loss += l / n;
        for (a, g) in acc.iter_mut().zip(grads) {
            if let Some(g) = g {
                let g = if group.len() > 1 { (g / n)? } else { g }.detach();
                *a = Some(match a.take() {
                    Some(x) => (x + g)?,
                    None => g,
                });
            }
        }
    }
    if !loss.is_finite() {
        return Err(TrainError::Diverged(loss));
    }
    let grad_norm = clip_grad_norm(&mut acc, max_grad_norm)?;
    opt.update(vars, &acc, lr)?;
    Ok((loss, grad_norm))
}

/// AdamW (decoupled weight decay, as `torch.optim.AdamW`), with its moments kept so a
/// checkpoint can resume it exactly.
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decay biases, norms and `masked_spec_embed` too (`torch.optim.AdamW` over
    /// `model.parameters()`); off: they are left out, as the Hugging Face Trainer does.
    pub decay_all: bool,
    pub step: usize,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl AdamW {
    pub fn new(vars: &[(String, Var)], weight_decay: f64) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decay_all: false,
            step: 0,
            m: vars
                .iter()
                .map(|(_, v)| zeros(v))
                .collect::<candle_core::Result<_>>()?,
            v: vars
                .iter()
                .map(|(_, v)| zeros(v))
                .collect::<candle_core::Result<_>>()?,
        })
    }

    /// One update with learning rate `lr`. Biases and norms get no weight decay unless
    /// `decay_all`.
    pub fn update(
        &mut self,
        vars: &[(String, Var)],
        grads: &[Option<Tensor>],
        lr: f64,
    ) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        for (i, ((name, var), g)) in vars.iter().zip(grads).enumerate() {
            let Some(g) = g else { continue };
            let m = ((&self.m[i] * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            let v = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let step = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let decay = self.decay_for(name);
            let w = var.as_tensor();
            let next = ((w * (1.0 - lr * decay))? - (step * lr)?)?;
            var.set(&next)?;
            // Detached: the moments must not keep the previous steps' graphs alive.
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// The weight decay of the parameter `name`: none for biases, norms and
    /// `masked_spec_embed` unless `decay_all`.
    pub fn decay_for(&self, name: &str) -> f64 {
        if !self.decay_all
            && (name.ends_with("bias")
                || name.contains("norm")
                || name.contains("masked_spec_embed"))
        {
            0.0
        } else {
            self.weight_decay
        }
    }

    /// The first and second moments, in the order of the variables.
    pub fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// Replaces the moments (another backend's, see [`crate::engine`]).
    pub fn set_moments(&mut self, m: Vec<Tensor>, v: Vec<Tensor>) {
        self.m = m;
        self.v = v;
    }

    fn save(&self, path: &Path, vars: &[(String, Var)]) -> Result<()> {
        let mut map = HashMap::new();
        for (i, (name, _)) in vars.iter().enumerate() {
            map.insert(format!("m.{name}"), self.m[i].clone());
            map.insert(format!("v.{name}"), self.v[i].clone());
        }
        candle_core::safetensors::save(&map, path).map_err(|source| TrainError::WriteWeights {
            path: path.to_owned(),
            source,
        })
    }

    fn load(&mut self, path: &Path, vars: &[(String, Var)], device: &Device) -> Result<()> {
        let map = candle_core::safetensors::load(path, device).map_err(|source| {
            TrainError::ReadWeights {
                path: path.to_owned(),
                source,
            }
        })?;
        for (i, (name, _)) in vars.iter().enumerate() {
            if let (Some(m), Some(v)) =
                (map.get(&format!("m.{name}")), map.get(&format!("v.{name}")))
            {
                self.m[i] = m.clone();
                self.v[i] = v.clone();
            }
        }
        Ok(())
    }
}

/// Global L2 norm of the gradients; scales them down to `max_norm` when above it.
pub fn clip_grad_norm(grads: &mut [Option<Tensor>], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter().flatten() {
        sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        for g in grads.iter_mut().flatten() {
            *g = (&*g * s)?;
        }
    }
    Ok(norm)
}

/// Linear warm-up to `peak` over `warmup` steps, then linear decay to 0 at `total`
/// (transformers' `get_linear_schedule_with_warmup`).
pub fn learning_rate(step: usize, warmup: usize, total: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else if total <= warmup {
        peak
    } else {
        peak * (total.saturating_sub(step) as f64 / (total - warmup) as f64).max(0.0)
    }
}

/// Where the model starts from.
#[derive(Debug, Clone)]
pub enum Start {
    /// A Hugging Face checkpoint folder (fine-tuning).
    Checkpoint(PathBuf),
    /// A `config.json` describing the architecture (training from scratch).
    Scratch(PathBuf),
}

/// Everything `sangdam-host train` takes.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub train: PathBuf,
    pub dev: Option<PathBuf>,
    pub vocab: PathBuf,
    pub start: Start,
    pub out: PathBuf,
    pub resume: bool,
    pub epochs: usize,
    /// Stop after this many optimiser steps (0: run all epochs).
    pub max_steps: usize,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub max_samples: usize,
    pub max_labels: usize,
    pub freeze_feature_encoder: bool,
    /// First epoch in order of length (short first).
    pub sorta_grad: bool,
    /// Attention masks over each batch's padding (transformers' `attention_mask`).
    pub padding: Padding,
    /// SpecAugment (when the config turns it on) only from this optimiser step on: CTC
    /// leaves its all-blank start sooner without it.
    pub spec_augment_from: usize,
    /// Train on the first CUDA GPU (libtorch's CUDA build, or candle with the `cuda`
    /// feature).
    pub cuda: bool,
    /// Which kernels run the step ([`Backend::preferred`]: libtorch when built).
    pub backend: Backend,
    /// libtorch's threads (0: one per core); candle reads `RAYON_NUM_THREADS`.
    pub threads: usize,
    pub eval_every: usize,
    pub save_every: usize,
    pub dev_limit: usize,
    pub seed: u64,
    /// Print the progress line (to stderr) this often, in optimiser steps.
    pub log_every: usize,
    /// Each step's wall seconds (batch preparation and optimiser step) and audio
    /// seconds, one TSV line per step.
    pub step_times: Option<PathBuf>,
    pub quiet: bool,
}

impl Default for TrainSettings {
    /// The seed's fine-tuning recipe: batch 2, 50 epochs, learning rate 5e-5, labels up
    /// to 256, audio up to 246,000 samples.
    fn default() -> Self {
        TrainSettings {
            train: PathBuf::from("corpus-index/train.jsonl"),
            dev: Some(PathBuf::from("corpus-index/dev.jsonl")),
            vocab: PathBuf::from("corpus-index/vocab.json"),
            start: Start::Checkpoint(PathBuf::from("checkpoint")),
            out: PathBuf::from("ckpt/run"),
            resume: false,
            epochs: 50,
            max_steps: 0,
            batch_size: 2,
            grad_accum: 1,
            lr: 5e-5,
            warmup_steps: 500,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            max_samples: 246_000,
            max_labels: 256,
            freeze_feature_encoder: false,
            sorta_grad: false,
            padding: Padding::Masked,
            spec_augment_from: 0,
            cuda: false,
            backend: Backend::preferred(),
            threads: 0,
            eval_every: 500,
            save_every: 500,
            dev_limit: 200,
            seed: 42,
            log_every: 10,
            step_times: None,
            quiet: false,
        }
    }
}

/// What a run did, also written as `trainer_state.json` in each checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub epoch: usize,
    /// Batches of the current epoch already consumed (for an exact resume).
    pub batch_in_epoch: usize,
    pub total_steps: usize,
    /// Mean loss over each logging window, `(step, loss)`.
    pub losses: Vec<(usize, f64)>,
    /// `(step, dev CER)`.
    pub dev_cer: Vec<(usize, f64)>,
    pub best_cer: Option<f64>,
    pub audio_seconds: f64,
    pub train_seconds: f64,
    pub train_utterances: usize,
    pub skipped: usize,
    /// Global gradient norm of the last step, before clipping.
    #[serde(default)]
    pub last_grad_norm: f64,
}

/// Greedy transcripts of `utts` by the model being trained (no masks), through the
/// firmware's decoder, so they read exactly as the box would print them.
pub fn transcribe(
    t: &Trainable,
    vocab: &sangdam::asr::Vocab,
    utts: &[&Utterance],
    device: &Device,
) -> Result<Vec<String>> {
    use sangdam::asr::CtcDecoder;
    let mut out = Vec::new();
    for u in utts {
        let x = Tensor::from_slice(&u.input, (1, u.input.len()), device)?;
        let logits = t.model.forward(&x)?.squeeze(0)?;
        let (l, v) = logits.dims2()?;
        let flat: Vec<f32> = logits.flatten_all()?.to_vec1()?;
        let arr = tract_onnx::prelude::tract_ndarray::Array2::from_shape_vec((l, v), flat)?;
        out.push(sangdam::asr::GreedyDecoder.decode(arr.view(), vocab).text);
    }
    Ok(out)
}

fn config_json(start: &Start, vocab: &HashMap<String, u32>) -> Result<serde_json::Value> {
    let path = match start {
        Start::Checkpoint(dir) => dir.join("config.json"),
        Start::Scratch(p) => p.clone(),
    };
    let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| TrainError::NotJson {
            path: path.clone(),
            source,
        })?;
    let pad = *vocab.get("[PAD]").ok_or(TrainError::NoPad)?;
    json["vocab_size"] = serde_json::json!(vocab.len());
    json["pad_token_id"] = serde_json::json!(pad);
    json["ctc_zero_infinity"] = serde_json::json!(true);
    json["architectures"] = serde_json::json!(["Wav2Vec2ForCTC"]);
    Ok(json)
}

/// The latest checkpoint folder under `out` (`step-N` with the largest N).
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    for e in std::fs::read_dir(out).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("step-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            if e.path().join("trainer_state.json").exists() && best.as_ref().is_none_or(|b| n > b.0)
            {
                best = Some((n, e.path()));
            }
        }
    }
    best.map(|b| b.1)
}

/// Fine-tuning with a vocabulary that is not the checkpoint's (a corpus with one more
/// jamo, or the same tokens in another order): the CTC head's rows are copied by token
/// from the checkpoint, so what the model learned to emit stays; tokens it never had
/// keep their fresh rows. Returns how many rows were carried (0 when the checkpoint
/// has no vocab.json beside it or no `lm_head`, or when both vocabularies are equal and
/// the head was loaded as is).
fn carry_head_rows(t: &Trainable, dir: &Path, vocab: &HashMap<String, u32>) -> Result<usize> {
    let old_path = dir.join("vocab.json");
    if !old_path.exists() {
        return Ok(0);
    }
    let old = data::read_vocab(&old_path)?;
    if &old == vocab {
        return Ok(0);
    }
    let weights = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu).map_err(|source| {
        TrainError::ReadWeights {
            path: weights.clone(),
            source,
        }
    })?;
    let (Some(ow), Some(ob)) = (tensors.get("lm_head.weight"), tensors.get("lm_head.bias")) else {
        return Ok(0);
    };
    let vars: HashMap<String, Var> = t.sorted_vars().into_iter().collect();
    let (Some(nw), Some(nb)) = (vars.get("lm_head.weight"), vars.get("lm_head.bias")) else {
        return Ok(0);
    };
    let ow: Vec<Vec<f32>> = ow.to_dtype(DType::F32)?.to_vec2()?;
    let ob: Vec<f32> = ob.to_dtype(DType::F32)?.to_vec1()?;
    let mut w: Vec<Vec<f32>> = nw.as_tensor().to_device(&Device::Cpu)?.to_vec2()?;
    let mut b: Vec<f32> = nb.as_tensor().to_device(&Device::Cpu)?.to_vec1()?;
    if ow.first().map(Vec::len) != w.first().map(Vec::len) {
        return Err(TrainError::HeadWidth {
            path: weights,
            checkpoint: ow.first().map_or(0, Vec::len),
            model: w.first().map_or(0, Vec::len),
        });
    }
    let mut carried = 0;
    for (tok, &new_id) in vocab {
        if let Some(&old_id) = old.get(tok) {
            if let (Some(row), Some(&bias)) = (ow.get(old_id as usize), ob.get(old_id as usize)) {
                if let Some(dst) = w.get_mut(new_id as usize) {
                    dst.clone_from(row);
                    b[new_id as usize] = bias;
                    carried += 1;
                }
            }
        }
    }
    let (rows, cols) = (w.len(), w.first().map_or(0, Vec::len));
    let flat: Vec<f32> = w.into_iter().flatten().collect();
    let device = nw.device().clone();
    nw.set(&Tensor::from_vec(flat, (rows, cols), &device)?)?;
    nb.set(&Tensor::from_vec(b, rows, &device)?)?;
    Ok(carried)
}

/// Runs training; returns the final state. Checkpoints go to `out/step-N` (the last two
/// kept), the best dev CER to `out/best`, and the final model to `out/final`.
pub fn train(s: &TrainSettings) -> Result<TrainState> {
    // With libtorch the candle variables only hold the weights between steps (on the
    // CPU); libtorch picks its own device.
    let device = if s.cuda && s.backend == Backend::Candle {
        Device::new_cuda(0).map_err(TrainError::NoCuda)?
    } else {
        Device::Cpu
    };
    let vocab_map = data::read_vocab(&s.vocab)?;
    let vocab = sangdam::asr::Vocab::load(&s.vocab)?;
    let cfg_json = config_json(&s.start, &vocab_map)?;
    let config: Wav2Vec2Config =
        serde_json::from_value(cfg_json.clone()).map_err(TrainError::ConfigFields)?;
    config.check()?;

    let resume_from = if s.resume {
        latest_checkpoint(&s.out)
    } else {
        None
    };
    if s.resume && resume_from.is_none() {
        eprintln!(
            "no checkpoint in {} to resume; starting fresh",
            s.out.display()
        );
    }
    let (t, fresh) = match (&resume_from, &s.start) {
        (Some(dir), _) => Trainable::from_checkpoint(dir, config.clone(), s.seed, &device)?,
        (None, Start::Checkpoint(dir)) => {
            let (t, mut fresh) = Trainable::from_checkpoint(dir, config.clone(), s.seed, &device)?;
            let carried = carry_head_rows(&t, dir, &vocab_map)?;
            if carried > 0 {
                fresh.retain(|n| !n.starts_with("lm_head"));
                if !s.quiet {
                    eprintln!(
                        "CTC head: {carried} of {} tokens carried over from {}/vocab.json by token",
                        vocab_map.len(),
                        dir.display()
                    );
                }
            }
            (t, fresh)
        }
        (None, Start::Scratch(_)) => (
            Trainable::scratch(config.clone(), s.seed, &device)?,
            Vec::new(),
        ),
    };
    if !fresh.is_empty() && !s.quiet {
        eprintln!(
            "initialised fresh (not in the checkpoint): {}",
            fresh.join(", ")
        );
    }
    let vars = t.sorted_vars();
    let n_params: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();

    let train_items = data::read_split(&s.train)?;
    let (train_utts, skipped) =
        data::load_split(&train_items, &vocab_map, s.max_samples, s.max_labels, None);
    if train_utts.is_empty() {
        return Err(TrainError::NoUtterances {
            path: s.train.clone(),
        });
    }
    let dev_utts = match &s.dev {
        Some(p) if p.exists() => {
            let mut items = data::read_split(p)?;
            items.truncate(s.dev_limit);
            data::load_split(&items, &vocab_map, usize::MAX, usize::MAX, None).0
        }
        _ => Vec::new(),
    };
    let lengths: Vec<usize> = train_utts.iter().map(|u| u.input.len()).collect();
    let batches_per_epoch = lengths.len().div_ceil(s.batch_size.max(1));
    let steps_per_epoch = batches_per_epoch.div_ceil(s.grad_accum.max(1));
    let mut total_steps = steps_per_epoch * s.epochs;
    if s.max_steps > 0 {
        total_steps = total_steps.min(s.max_steps);
    }
    if !s.quiet {
        eprintln!(
            "{} parameters; {} train utterances ({:.2} h, {} skipped), {} dev; {} steps ({} per epoch)",
            n_params,
            train_utts.len(),
            lengths.iter().sum::<usize>() as f64 / data::RATE as f64 / 3600.0,
            skipped.total(),
            dev_utts.len(),
            total_steps,
            steps_per_epoch
        );
    }

    let mut opt = AdamW::new(&vars, s.weight_decay)?;
    let mut state = TrainState {
        total_steps,
        train_utterances: train_utts.len(),
        skipped: skipped.total(),
        ..Default::default()
    };
    if let Some(dir) = &resume_from {
        let state_path = dir.join("trainer_state.json");
        let text = std::fs::read_to_string(&state_path).map_err(read_error(&state_path))?;
        state = serde_json::from_str(&text).map_err(|source| TrainError::DamagedState {
            path: state_path.clone(),
            source,
        })?;
        state.total_steps = total_steps;
        opt.load(&dir.join("optimizer.safetensors"), &vars, &device)?;
        opt.step = state.step;
        if !s.quiet {
            eprintln!("resumed from {} at step {}", dir.display(), state.step);
        }
    }
    let mut engine = Engine::new(s.backend, &t, &opt, s.cuda, s.threads)?;
    if !s.quiet {
        eprintln!(
            "backend {}{}",
            s.backend.name(),
            if s.cuda { " on CUDA" } else { "" }
        );
    }

    let started = Instant::now();
    let train_before = state.train_seconds;
    let mut window = (0.0, 0usize);
    let mut last_cer = state.dev_cer.last().map(|x| x.1);
    let step_times = match &s.step_times {
        Some(p) => Some(
            std::fs::File::create(p).map_err(|source| TrainError::Create {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    'epochs: while state.step < total_steps {
        // Each epoch's order comes from the seed and the epoch number alone, so a resumed
        // run sees the same batches.
        let mut rng = Rng::new(
            s.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(state.epoch as u64),
        );
        let mut batches = data::length_grouped_batches(&lengths, s.batch_size, &mut rng);
        if s.sorta_grad && state.epoch == 0 {
            // SortaGrad (Amodei et al., 2016): the first epoch goes from short to long
            // utterances, which gets CTC out of its all-blank start sooner.
            batches.sort_by_key(|b| b.iter().map(|&i| lengths[i]).max().unwrap_or(0));
        }
        let mut groups = batches
            .chunks(s.grad_accum.max(1))
            .skip(state.batch_in_epoch / s.grad_accum.max(1));
        loop {
            if state.step >= total_steps {
                break 'epochs;
            }
            let Some(group) = groups.next() else { break };
            let step_started = std::time::Instant::now();
            let audio_before = state.audio_seconds;
            let mut prepared = Vec::with_capacity(group.len());
            for batch in group {
                let utts: Vec<&Utterance> = batch.iter().map(|&i| &train_utts[i]).collect();
                let (inputs, frames) = batch_inputs(&config, &utts, &device)?;
                let max_frames = config.frames_for(inputs.dim(1)?);
                let mut mrng = Rng::new(
                    s.seed ^ (state.step as u64).wrapping_mul(0x9E37_79B9) ^ batch[0] as u64,
                );
                let masks = if state.step >= s.spec_augment_from {
                    spec_augment(&config, &frames, max_frames, &mut mrng, &device)?
                } else {
                    None
                };
                let labels: Vec<&[u32]> = utts.iter().map(|u| u.labels.as_slice()).collect();
                state.audio_seconds +=
                    utts.iter().map(|u| u.input.len()).sum::<usize>() as f64 / data::RATE as f64;
                state.batch_in_epoch += 1;
                prepared.push(Batch {
                    inputs,
                    frames,
                    labels,
                    masks,
                });
            }
            let lr = learning_rate(state.step, s.warmup_steps, total_steps, s.lr);
            let (loss, grad_norm) = engine
                .step(
                    &t,
                    &vars,
                    &mut opt,
                    &prepared,
                    s.padding,
                    s.freeze_feature_encoder,
                    s.max_grad_norm,
                    lr,
                )
                .map_err(|source| TrainError::Step {
                    step: state.step,
                    source,
                })?;
            state.last_grad_norm = grad_norm;
            state.step += 1;
            if let Some(mut f) = step_times.as_ref() {
                use std::io::Write;
                writeln!(
                    f,
                    "{}\t{:.6}\t{:.3}",
                    state.step,
                    step_started.elapsed().as_secs_f64(),
                    state.audio_seconds - audio_before
                )
                .map_err(TrainError::StepTimes)?;
            }
            window.0 += loss;
            window.1 += 1;
            state.train_seconds = train_before + started.elapsed().as_secs_f64();

            let eval_now = !dev_utts.is_empty()
                && s.eval_every > 0
                && (state.step % s.eval_every == 0 || state.step == total_steps);
            if eval_now {
                let refs: Vec<&Utterance> = dev_utts.iter().collect();
                let hyps = engine.transcribe(&t, &vocab, &refs, &device)?;
                let pairs: Vec<(String, String)> = refs
                    .iter()
                    .zip(hyps)
                    .map(|(u, h)| (sangdam::hangul::compose_jamo(&u.text), h))
                    .collect();
                let (cer, _) = error_rates(&pairs);
                state.dev_cer.push((state.step, cer));
                last_cer = Some(cer);
                if state.best_cer.is_none_or(|b| cer < b) {
                    state.best_cer = Some(cer);
                    engine.sync(&t, &mut opt)?;
                    t.save(&s.out.join("best"), &cfg_json)?;
                    copy(&s.vocab, &s.out.join("best").join("vocab.json"))?;
                }
                if !s.quiet {
                    eprintln!();
                    eprintln!(
                        "step {} dev CER {:.2}%  e.g. «{}» → «{}»",
                        state.step,
                        cer * 100.0,
                        pairs[0].0,
                        pairs[0].1
                    );
                }
            }
            if window.1 > 0 && (state.step % s.log_every.max(1) == 0 || state.step == total_steps) {
                let mean = window.0 / window.1 as f64;
                state.losses.push((state.step, mean));
                window = (0.0, 0);
                if !s.quiet {
                    progress(&state, mean, last_cer, lr);
                }
            }
            if s.save_every > 0 && state.step % s.save_every == 0 && state.step < total_steps {
                engine.sync(&t, &mut opt)?;
                save_checkpoint(&t, &opt, &vars, &state, &cfg_json, s)?;
            }
        }
        state.epoch += 1;
        state.batch_in_epoch = 0;
    }
    state.train_seconds = train_before + started.elapsed().as_secs_f64();
    engine.sync(&t, &mut opt)?;
    save_checkpoint(&t, &opt, &vars, &state, &cfg_json, s)?;
    let fin = s.out.join("final");
    t.save(&fin, &cfg_json)?;
    copy(&s.vocab, &fin.join("vocab.json"))?;
    write_json(&fin.join("trainer_state.json"), &state)?;
    if !s.quiet {
        eprintln!();
    }
    Ok(state)
}

fn progress(state: &TrainState, loss: f64, cer: Option<f64>, lr: f64) {
    let frac = state.step as f64 / state.total_steps.max(1) as f64;
    let width = 24;
    let done = (frac * width as f64) as usize;
    let bar: String = (0..width)
        .map(|i| if i < done { '#' } else { '.' })
        .collect();
    let rate = state.audio_seconds / state.train_seconds.max(1e-9);
    let eta = state.train_seconds / frac.max(1e-9) * (1.0 - frac);
    let cer = cer.map_or("-".to_string(), |c| format!("{:.1}%", c * 100.0));
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\rstep {}/{} [{bar}] loss {loss:.3} cer {cer} lr {lr:.2e} |g| {:.2e} {rate:.1} audio-s/s eta {}m{:02}s ",
        state.step,
        state.total_steps,
        state.last_grad_norm,
        (eta / 60.0) as u64,
        (eta % 60.0) as u64
    );
    let _ = err.flush();
}

fn save_checkpoint(
    t: &Trainable,
    opt: &AdamW,
    vars: &[(String, Var)],
    state: &TrainState,
    cfg_json: &serde_json::Value,
    s: &TrainSettings,
) -> Result<()> {
    let dir = s.out.join(format!("step-{}", state.step));
    let tmp = s.out.join(format!(".step-{}.partial", state.step));
    let _ = std::fs::remove_dir_all(&tmp);
    t.save(&tmp, cfg_json)?;
    opt.save(&tmp.join("optimizer.safetensors"), vars)?;
    copy(&s.vocab, &tmp.join("vocab.json"))?;
    write_json(&tmp.join("trainer_state.json"), state)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(write_error(&dir))?;
    // Keep the two newest step checkpoints.
    let mut steps: Vec<(usize, PathBuf)> = std::fs::read_dir(&s.out)
        .map_err(read_error(&s.out))?
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("step-")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    steps.sort();
    for (_, p) in steps.iter().rev().skip(2) {
        let _ = std::fs::remove_dir_all(p);
    }
    Ok(())
}
