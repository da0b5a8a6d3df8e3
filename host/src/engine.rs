//! Which code runs the training step: candle (always built) or libtorch through tch-rs
//! (feature `torch`, module `torch`). Both compute the same loss, gradients, clipping
//! and AdamW update (`tests/train.rs` holds each built backend to transformers' one-step
//! gradients and 20-step training curve); the weights live in the candle
//! [`Trainable`] between steps as far as checkpoints and evaluation are concerned.

use candle_core::{Tensor, Var};

use crate::data::Utterance;
use crate::train::{self, AdamW, Batch, Padding, TrainError, Trainable};

/// Why a backend cannot be chosen or started, or its step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("--backend torch: this sangdam-host was built without libtorch; rebuild with `pip install torch==2.13.0` and `LIBTORCH_USE_PYTORCH=1 cargo build -p sangdam-host --features torch`")]
    TorchNotBuilt,
    #[error("--backend {0}: choose candle or torch")]
    UnknownBackend(String),
    /// The candle step ([`train::optimiser_step`] and friends).
    #[error(transparent)]
    Candle(Box<TrainError>),
    /// The libtorch step.
    #[cfg(feature = "torch")]
    #[error(transparent)]
    Torch(#[from] crate::torch::TorchError),
    /// libtorch's logits do not have the shape they claim.
    #[cfg(feature = "torch")]
    #[error(transparent)]
    Shape(#[from] tract_onnx::prelude::tract_ndarray::ShapeError),
}

impl From<TrainError> for EngineError {
    fn from(e: TrainError) -> Self {
        EngineError::Candle(Box::new(e))
    }
}

type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// candle's CPU (or, with the `cuda` feature, CUDA) kernels.
    Candle,
    /// PyTorch's kernels through libtorch (feature `torch`).
    Torch,
}

impl Backend {
    /// The backends this binary was built with.
    pub fn built() -> Vec<Backend> {
        let mut v = vec![Backend::Candle];
        if cfg!(feature = "torch") {
            v.push(Backend::Torch);
        }
        v
    }

    /// The fastest backend built: libtorch when the `torch` feature is on.
    pub fn preferred() -> Backend {
        if cfg!(feature = "torch") {
            Backend::Torch
        } else {
            Backend::Candle
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Candle => "candle",
            Backend::Torch => "torch",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "candle" => Ok(Backend::Candle),
            "torch" if cfg!(feature = "torch") => Ok(Backend::Torch),
            "torch" => Err(EngineError::TorchNotBuilt),
            other => Err(EngineError::UnknownBackend(other.to_owned())),
        }
    }
}

/// A backend ready to train one [`Trainable`].
pub enum Engine {
    Candle,
    #[cfg(feature = "torch")]
    Torch(Box<crate::torch::TorchTrainer>),
}

impl Engine {
    /// `cuda`: train on the first GPU (libtorch; candle's CUDA device is chosen by the
    /// caller when it builds `t`). `threads`: libtorch's intra-op threads (0: its
    /// default); candle reads `RAYON_NUM_THREADS`.
    pub fn new(
        backend: Backend,
        t: &Trainable,
        opt: &AdamW,
        cuda: bool,
        threads: usize,
    ) -> Result<Self> {
        match backend {
            Backend::Candle => {
                let _ = (t, opt, cuda, threads);
                Ok(Engine::Candle)
            }
            #[cfg(feature = "torch")]
            Backend::Torch => {
                crate::torch::set_threads(threads);
                let device = crate::torch::device(cuda)?;
                Ok(Engine::Torch(Box::new(crate::torch::TorchTrainer::new(
                    t, opt, device,
                )?)))
            }
            #[cfg(not(feature = "torch"))]
            Backend::Torch => "torch".parse::<Backend>().map(|_| Engine::Candle),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Engine::Candle => Backend::Candle,
            #[cfg(feature = "torch")]
            Engine::Torch(_) => Backend::Torch,
        }
    }

    /// One optimiser step over `group`; see [`train::optimiser_step`].
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        t: &Trainable,
        vars: &[(String, Var)],
        opt: &mut AdamW,
        group: &[Batch],
        padding: Padding,
        freeze_feature_encoder: bool,
        max_grad_norm: f64,
        lr: f64,
    ) -> Result<(f64, f64)> {
        match self {
            Engine::Candle => Ok(train::optimiser_step(
                t,
                vars,
                opt,
                group,
                padding,
                freeze_feature_encoder,
                max_grad_norm,
                lr,
            )?),
            #[cfg(feature = "torch")]
            Engine::Torch(tt) => {
                let _ = (t, vars);
                Ok(tt.step(
                    opt,
                    group,
                    padding,
                    freeze_feature_encoder,
                    max_grad_norm,
                    lr,
                )?)
            }
        }
    }

    /// Loss and gradients (in the order of `vars`) of one batch; see
    /// [`train::loss_and_grads`].
    pub fn loss_and_grads(
        &mut self,
        t: &Trainable,
        vars: &[(String, Var)],
        batch: &Batch,
        padding: Padding,
        freeze_feature_encoder: bool,
    ) -> Result<(f64, Vec<Option<Tensor>>)> {
        match self {
            Engine::Candle => Ok(train::loss_and_grads(
                t,
                vars,
                &batch.inputs,
                &batch.frames,
                &batch.labels,
                batch.masks.as_ref(),
                freeze_feature_encoder,
                padding,
            )?),
            #[cfg(feature = "torch")]
            Engine::Torch(tt) => {
                let _ = (t, vars);
                Ok(tt.loss_and_grads(batch, padding, freeze_feature_encoder)?)
            }
        }
    }

    /// Brings `t`'s variables and `opt`'s moments up to date (before a checkpoint is
    /// written or the weights are read).
    pub fn sync(&self, t: &Trainable, opt: &mut AdamW) -> Result<()> {
        match self {
            Engine::Candle => {
                let _ = (t, opt);
                Ok(())
            }
            #[cfg(feature = "torch")]
            Engine::Torch(tt) => Ok(tt.sync_into(t, opt)?),
        }
    }

    /// Greedy transcripts by the model being trained, through the firmware's decoder.
    pub fn transcribe(
        &self,
        t: &Trainable,
        vocab: &sangdam::asr::Vocab,
        utts: &[&Utterance],
        device: &candle_core::Device,
    ) -> Result<Vec<String>> {
        match self {
            Engine::Candle => Ok(train::transcribe(t, vocab, utts, device)?),
            #[cfg(feature = "torch")]
            Engine::Torch(tt) => {
                use sangdam::asr::CtcDecoder;
                let _ = device;
                let mut out = Vec::with_capacity(utts.len());
                for u in utts {
                    let (l, v, flat) = tt.logits(&u.input)?;
                    let arr =
                        tract_onnx::prelude::tract_ndarray::Array2::from_shape_vec((l, v), flat)?;
                    out.push(sangdam::asr::GreedyDecoder.decode(arr.view(), vocab).text);
                }
                Ok(out)
            }
        }
    }
}
