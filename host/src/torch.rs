//! The libtorch training backend (feature `torch`): the same Wav2Vec2ForCTC as
//! [`crate::model`], the same loss, clipping and AdamW as [`crate::train`], run by
//! PyTorch's own CPU and CUDA kernels through tch-rs.
//!
//! Why a second backend: on this project's 2-core machine the candle step of the
//! recipe model took 2.6 s where transformers/PyTorch took 0.57 s (BENCHMARKS.md,
//! "Training speed against transformers"); two thirds of candle's time was its backward
//! pass over unfused element-wise ops and materialised im2col columns, work that
//! libtorch does in fused, multi-threaded kernels (oneDNN convolutions, fused layer and
//! group norm, flash attention). Using those kernels from Rust makes the host tool as
//! fast as the peer by construction, and gives `--cuda` for free.
//!
//! The candle [`Trainable`] stays the owner of the weights as far as the rest of the
//! tool is concerned: this module copies its variables (and the AdamW moments) in at
//! the start and back out before every dev evaluation and checkpoint ([`TorchTrainer::sync_into`]),
//! so initialisation, checkpoint loading, the CTC head carried by token, the
//! safetensors files and resume are the same code for both backends, and a run may
//! resume on the other backend.

use std::collections::HashMap;

use tch::{Kind, Reduction, Tensor};

use crate::model::Wav2Vec2Config;
use crate::train::{AdamW, Batch, Padding, Trainable};

/// Why the libtorch backend cannot start or a step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchError {
    /// libtorch raised a C++ exception (tch panics with its message) while doing `what`.
    #[error("libtorch, {what}: {message}")]
    Libtorch { what: String, message: String },
    #[error("--cuda: libtorch (a CUDA build) sees no GPU: check the driver with nvidia-smi, or train without --cuda")]
    NoGpu,
    #[error("--cuda: the libtorch this tool was built against has no CUDA (install a CUDA build of torch 2.13.0 and rebuild), or train without --cuda")]
    NoCuda,
    /// The candle variables are not the ones this trainer was made from.
    #[error("variable {index} is {candle} in candle and {torch} in libtorch")]
    VariableOrder {
        index: usize,
        candle: String,
        torch: String,
    },
    #[error("loss became {0}: lower the learning rate")]
    Diverged(f64),
    #[error("copying a tensor out of libtorch")]
    CopyOut(#[source] tch::TchError),
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

type Result<T, E = TorchError> = std::result::Result<T, E>;

/// The network's parameters as libtorch tensors (in the candle variables' sorted order)
/// and the optimiser's moments.
pub struct TorchTrainer {
    config: Wav2Vec2Config,
    parametrized: bool,
    device: tch::Device,
    names: Vec<String>,
    params: Vec<Tensor>,
    index: HashMap<String, usize>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

/// Runs libtorch code, turning the panic tch raises on a C++ exception (a shape it
/// refuses, CUDA out of memory) into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown error".into());
        TorchError::Libtorch {
            what: what.to_owned(),
            message: msg,
        }
    })
}

fn to_torch(t: &candle_core::Tensor, device: tch::Device) -> Result<Tensor> {
    let dims: Vec<i64> = t.dims().iter().map(|&d| d as i64).collect();
    let data: Vec<f32> = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    Ok(Tensor::from_slice(&data).reshape(dims).to_device(device))
}

fn to_candle(t: &Tensor, device: &candle_core::Device) -> Result<candle_core::Tensor> {
    let dims: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    let data = Vec::<f32>::try_from(&flat).map_err(TorchError::CopyOut)?;
    Ok(candle_core::Tensor::from_vec(data, dims, device)?)
}

/// The device `--cuda` asks for, or the CPU.
pub fn device(cuda: bool) -> Result<tch::Device> {
    if !cuda {
        return Ok(tch::Device::Cpu);
    }
    if !tch::Cuda::is_available() {
        if option_env!("SANGDAM_LIBTORCH_CUDA") == Some("yes") {
            return Err(TorchError::NoGpu);
        }
        return Err(TorchError::NoCuda);
    }
    Ok(tch::Device::Cuda(0))
}

/// Sets libtorch's intra-op threads (0: leave its default, one per physical core).
pub fn set_threads(n: usize) {
    if n > 0 {
        tch::set_num_threads(n as i32);
    }
}

impl TorchTrainer {
    /// Copies `t`'s variables and `opt`'s moments to `device`.
    pub fn new(t: &Trainable, opt: &AdamW, device: tch::Device) -> Result<Self> {
        let vars = t.sorted_vars();
        let mut names = Vec::with_capacity(vars.len());
        let mut params = Vec::with_capacity(vars.len());
        let mut m = Vec::with_capacity(vars.len());
        let mut v = Vec::with_capacity(vars.len());
        let (om, ov) = opt.moments();
        for (i, (name, var)) in vars.iter().enumerate() {
            names.push(name.clone());
            params.push(to_torch(var.as_tensor(), device)?.set_requires_grad(true));
            m.push(to_torch(&om[i], device)?);
            v.push(to_torch(&ov[i], device)?);
        }
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Ok(TorchTrainer {
            config: t.model.config.clone(),
            parametrized: t.parametrized,
            device,
            names,
            params,
            index,
            m,
            v,
        })
    }

    /// Writes the current weights into `t`'s variables and the moments into `opt`.
    pub fn sync_into(&self, t: &Trainable, opt: &mut AdamW) -> Result<()> {
        let vars = t.sorted_vars();
        let mut m = Vec::with_capacity(vars.len());
        let mut v = Vec::with_capacity(vars.len());
        for (i, (name, var)) in vars.iter().enumerate() {
            if name != &self.names[i] {
                return Err(TorchError::VariableOrder {
                    index: i,
                    candle: name.clone(),
                    torch: self.names[i].clone(),
                });
            }
            var.set(&to_candle(&self.params[i], var.device())?)?;
            m.push(to_candle(&self.m[i], var.device())?);
            v.push(to_candle(&self.v[i], var.device())?);
        }
        opt.set_moments(m, v);
        Ok(())
    }

    fn p(&self, name: &str) -> &Tensor {
        // Every name below is created by `Wav2Vec2ForCtc::new` for this config.
        &self.params[*self
            .index
            .get(name)
            .unwrap_or_else(|| panic!("no parameter {name}"))]
    }

    fn linear(&self, x: &Tensor, prefix: &str) -> Tensor {
        x.linear(
            self.p(&format!("{prefix}.weight")),
            Some(self.p(&format!("{prefix}.bias"))),
        )
    }

    fn layer_norm(&self, x: &Tensor, prefix: &str) -> Tensor {
        let w = self.p(&format!("{prefix}.weight"));
        x.layer_norm(
            w.size(),
            Some(w),
            Some(self.p(&format!("{prefix}.bias"))),
            self.config.layer_norm_eps,
            true,
        )
    }

    fn attention(&self, x: &Tensor, prefix: &str, bias: Option<&Tensor>) -> Tensor {
        let (b, l, h) = x.size3().expect("[B, L, H]");
        let heads = self.config.num_attention_heads as i64;
        let split = |t: Tensor| t.view([b, l, heads, h / heads]).transpose(1, 2);
        let q = split(self.linear(x, &format!("{prefix}.q_proj")));
        let k = split(self.linear(x, &format!("{prefix}.k_proj")));
        let v = split(self.linear(x, &format!("{prefix}.v_proj")));
        let ctx = Tensor::scaled_dot_product_attention(&q, &k, &v, bias, 0.0, false, None, false);
        self.linear(
            &ctx.transpose(1, 2).reshape([b, l, h]),
            &format!("{prefix}.out_proj"),
        )
    }

    fn encoder_layer(&self, x: &Tensor, i: usize, bias: Option<&Tensor>) -> Tensor {
        let pre = format!("wav2vec2.encoder.layers.{i}");
        let ff = |x: &Tensor| {
            let h = self
                .linear(x, &format!("{pre}.feed_forward.intermediate_dense"))
                .gelu("none");
            self.linear(&h, &format!("{pre}.feed_forward.output_dense"))
        };
        if self.config.do_stable_layer_norm {
            let a = self.attention(
                &self.layer_norm(x, &format!("{pre}.layer_norm")),
                &format!("{pre}.attention"),
                bias,
            );
            let x = x + a;
            let f = ff(&self.layer_norm(&x, &format!("{pre}.final_layer_norm")));
            x + f
        } else {
            let a = self.attention(x, &format!("{pre}.attention"), bias);
            let x = self.layer_norm(&(x + a), &format!("{pre}.layer_norm"));
            let f = ff(&x);
            self.layer_norm(&(x + f), &format!("{pre}.final_layer_norm"))
        }
    }

    /// `input [B, samples]` → logits `[B, frames, vocab]`; the same computation as
    /// [`crate::model::Wav2Vec2ForCtc::forward_t`] (see there for the masks).
    fn forward(
        &self,
        input: &Tensor,
        time_mask: Option<&Tensor>,
        feature_mask: Option<&Tensor>,
        freeze_feature_encoder: bool,
        valid_frames: Option<&[usize]>,
    ) -> Tensor {
        let c = &self.config;
        let mut x = input.unsqueeze(1);
        for i in 0..c.conv_dim.len() {
            let pre = format!("wav2vec2.feature_extractor.conv_layers.{i}");
            let bias = c.conv_bias.then(|| self.p(&format!("{pre}.conv.bias")));
            x = x.conv1d(
                self.p(&format!("{pre}.conv.weight")),
                bias,
                [c.conv_stride[i] as i64],
                [0],
                [1],
                1,
            );
            x = match (c.feat_extract_norm.as_str(), i) {
                ("group", 0) => x.group_norm(
                    c.conv_dim[0] as i64,
                    Some(self.p(&format!("{pre}.layer_norm.weight"))),
                    Some(self.p(&format!("{pre}.layer_norm.bias"))),
                    1e-5,
                    true,
                ),
                ("layer", _) => self
                    .layer_norm(&x.transpose(1, 2), &format!("{pre}.layer_norm"))
                    .transpose(1, 2),
                _ => x,
            };
            x = x.gelu("none");
        }
        if freeze_feature_encoder {
            x = x.detach();
        }
        let x = x.transpose(1, 2);
        let mut x = self.linear(
            &self.layer_norm(&x, "wav2vec2.feature_projection.layer_norm"),
            "wav2vec2.feature_projection.projection",
        );
        if let (Some(tm), Some(&i)) = (time_mask, self.index.get("wav2vec2.masked_spec_embed")) {
            let embed = self.params[i].view([1, 1, -1]);
            x = &x * (1.0 - tm) + tm * embed;
        }
        if let Some(fm) = feature_mask {
            x = &x * (1.0 - fm);
        }
        let (b, l, _) = x.size3().expect("[B, L, H]");
        let mut attn_bias = None;
        if let Some(valid) = valid_frames {
            let keep: Vec<f32> = valid
                .iter()
                .flat_map(|&n| (0..l as usize).map(move |j| if j < n { 1.0 } else { 0.0 }))
                .collect();
            let keep = Tensor::from_slice(&keep)
                .view([b, l])
                .to_device(self.device);
            x = &x * keep.unsqueeze(2);
            attn_bias = Some(((keep - 1.0) * 1e9).view([b, 1, 1, l]));
        }
        let (g, v) = if self.parametrized {
            (
                "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0",
                "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original1",
            )
        } else {
            (
                "wav2vec2.encoder.pos_conv_embed.conv.weight_g",
                "wav2vec2.encoder.pos_conv_embed.conv.weight_v",
            )
        };
        let v = self.p(v);
        let weight = v / v
            .square()
            .sum_dim_intlist([0i64, 1].as_slice(), true, Kind::Float)
            .sqrt()
            * self.p(g);
        let k = c.num_conv_pos_embeddings as i64;
        let pos = x.transpose(1, 2).conv1d(
            &weight,
            Some(self.p("wav2vec2.encoder.pos_conv_embed.conv.bias")),
            [1],
            [k / 2],
            [1],
            c.num_conv_pos_embedding_groups as i64,
        );
        let pos = if k % 2 == 0 { pos.narrow(2, 0, l) } else { pos };
        let mut x = x + pos.gelu("none").transpose(1, 2);
        if !c.do_stable_layer_norm {
            x = self.layer_norm(&x, "wav2vec2.encoder.layer_norm");
        }
        for i in 0..c.num_hidden_layers {
            x = self.encoder_layer(&x, i, attn_bias.as_ref());
        }
        if c.do_stable_layer_norm {
            x = self.layer_norm(&x, "wav2vec2.encoder.layer_norm");
        }
        self.linear(&x, "lm_head")
    }

    fn blank(&self) -> i64 {
        self.config
            .pad_token_id
            .map(i64::from)
            .unwrap_or(self.config.vocab_size as i64 - 1)
    }

    /// transformers' CTC loss of one batch ("mean": each item's loss over its label
    /// length, averaged over the batch; items without labels count as zero, as in
    /// [`crate::train::ctc_batch_loss`]), as a tensor to back-propagate.
    fn batch_loss(&self, batch: &Batch, padding: Padding, freeze: bool) -> Result<Tensor> {
        let (bsz, samples) = batch.inputs.dims2()?;
        let input = to_torch(&batch.inputs, self.device)?;
        let (tm, fm) = match &batch.masks {
            Some(m) => (
                m.time
                    .as_ref()
                    .map(|t| to_torch(t, self.device))
                    .transpose()?,
                m.feature
                    .as_ref()
                    .map(|t| to_torch(t, self.device))
                    .transpose()?,
            ),
            None => (None, None),
        };
        let valid = match padding {
            Padding::Masked => Some(batch.frames.as_slice()),
            Padding::Unmasked => None,
        };
        let blank = self.blank();
        guarded(&format!("a batch of {bsz} x {samples} samples"), || {
            let logits = self.forward(&input, tm.as_ref(), fm.as_ref(), freeze, valid);
            let l = logits.size()[1];
            let log_probs = logits.log_softmax(-1, Kind::Float).transpose(0, 1);
            let targets: Vec<i64> = batch
                .labels
                .iter()
                .flat_map(|x| x.iter().map(|&t| i64::from(t)))
                .collect();
            let target_lengths: Vec<i64> = batch.labels.iter().map(|x| x.len() as i64).collect();
            let input_lengths: Vec<i64> = match padding {
                Padding::Masked => batch.frames.iter().map(|&f| (f as i64).min(l)).collect(),
                Padding::Unmasked => vec![l; bsz],
            };
            let weights: Vec<f32> = target_lengths
                .iter()
                .map(|&n| {
                    if n > 0 {
                        1.0 / (n as f32 * bsz as f32)
                    } else {
                        0.0
                    }
                })
                .collect();
            let per_item = Tensor::ctc_loss(
                &log_probs,
                &Tensor::from_slice(&targets).to_device(self.device),
                input_lengths.as_slice(),
                target_lengths.as_slice(),
                blank,
                Reduction::None,
                true,
            );
            (per_item * Tensor::from_slice(&weights).to_device(self.device)).sum(Kind::Float)
        })
    }

    fn zero_grads(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// Loss and parameter gradients of one batch, gradients in the order of
    /// `t.sorted_vars()` as candle tensors (for the conformance tests).
    pub fn loss_and_grads(
        &mut self,
        batch: &Batch,
        padding: Padding,
        freeze_feature_encoder: bool,
    ) -> Result<(f64, Vec<Option<candle_core::Tensor>>)> {
        self.zero_grads();
        let loss = self.batch_loss(batch, padding, freeze_feature_encoder)?;
        guarded("backward", || loss.backward())?;
        let value = loss.double_value(&[]);
        let grads = self
            .params
            .iter()
            .map(|p| {
                let g = p.grad();
                if g.defined() {
                    to_candle(&g, &candle_core::Device::Cpu).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_>>()?;
        self.zero_grads();
        Ok((value, grads))
    }

    /// One optimiser step over `group`, as [`crate::train::optimiser_step`]: gradients
    /// averaged over the group's batches, the global norm clipped to `max_grad_norm`,
    /// AdamW at `lr` with `opt`'s settings (its step counter advances; its moments are
    /// kept here until [`Self::sync_into`]). Returns the mean loss and the norm before
    /// clipping.
    pub fn step(
        &mut self,
        opt: &mut AdamW,
        group: &[Batch],
        padding: Padding,
        freeze_feature_encoder: bool,
        max_grad_norm: f64,
        lr: f64,
    ) -> Result<(f64, f64)> {
        self.zero_grads();
        let n = group.len().max(1) as f64;
        let mut loss = 0.0;
        for b in group {
            let l = self.batch_loss(b, padding, freeze_feature_encoder)? / n;
            guarded("backward", || l.backward())?;
            loss += l.double_value(&[]);
        }
        if !loss.is_finite() {
            return Err(TorchError::Diverged(loss));
        }
        let grads: Vec<Option<Tensor>> = self
            .params
            .iter()
            .map(|p| {
                let g = p.grad();
                g.defined().then_some(g)
            })
            .collect();
        let norm = tch::no_grad(|| {
            let sq: Vec<Tensor> = grads
                .iter()
                .flatten()
                .map(|g| g.square().sum(Kind::Float))
                .collect();
            if sq.is_empty() {
                0.0
            } else {
                Tensor::stack(&sq, 0)
                    .sum(Kind::Float)
                    .sqrt()
                    .double_value(&[])
            }
        });
        let scale = if max_grad_norm > 0.0 && norm > max_grad_norm {
            max_grad_norm / (norm + 1e-6)
        } else {
            1.0
        };
        opt.step += 1;
        let t = opt.step as i32;
        let c1 = 1.0 - opt.beta1.powi(t);
        let c2 = 1.0 - opt.beta2.powi(t);
        tch::no_grad(|| {
            for (i, g) in grads.iter().enumerate() {
                let Some(g) = g else { continue };
                let g = if scale != 1.0 {
                    g * scale
                } else {
                    g.shallow_clone()
                };
                let decay = opt.decay_for(&self.names[i]);
                let _ = self.m[i].g_mul_scalar_(opt.beta1);
                let _ = self.m[i].g_add_(&(&g * (1.0 - opt.beta1)));
                let _ = self.v[i].g_mul_scalar_(opt.beta2);
                let _ = self.v[i].g_add_(&(g.square() * (1.0 - opt.beta2)));
                let update = (&self.m[i] / c1) / ((&self.v[i] / c2).sqrt() + opt.eps);
                let p = &mut self.params[i];
                if decay != 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * decay);
                }
                let _ = p.g_sub_(&(update * lr));
            }
        });
        self.zero_grads();
        Ok((loss, norm))
    }

    /// Logits `[frames, vocab]` of one utterance (no masks, no gradient), row-major.
    pub fn logits(&self, samples: &[f32]) -> Result<(usize, usize, Vec<f32>)> {
        let input = Tensor::from_slice(samples)
            .view([1, samples.len() as i64])
            .to_device(self.device);
        let out = guarded("inference", || {
            tch::no_grad(|| self.forward(&input, None, None, false, None))
        })?;
        let size = out.size();
        let (l, v) = (size[1] as usize, size[2] as usize);
        let flat = out.to_device(tch::Device::Cpu).contiguous().view([-1]);
        Ok((l, v, Vec::<f32>::try_from(&flat)?))
    }
}
