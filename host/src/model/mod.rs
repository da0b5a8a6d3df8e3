//! Wav2Vec2ForCTC in candle, read from a Hugging Face checkpoint (`config.json` +
//! `model.safetensors`, the parameter names `save_pretrained` writes).
//!
//! Both layouts of the architecture are covered: `feat_extract_norm = "group"` (group
//! norm on the first convolution only, post-LN transformer: wav2vec2-base) and `"layer"`
//! with `do_stable_layer_norm = true` (layer norm after every convolution, pre-LN
//! transformer: wav2vec2-large-lv60 / XLS-R). SpecAugment (time masks filled with the
//! learned `masked_spec_embed`, feature masks zeroed) and attention masks over a batch's
//! padding are applied when the training loop passes them to
//! [`Wav2Vec2ForCtc::forward_t`]; dropout and LayerDrop are not implemented (see `train`).

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, GroupNorm, Linear, VarBuilder};

/// Layer norm over the last axis from primitive ops, so gradients flow through it
/// (candle-nn's fused `LayerNorm` and `softmax_last_dim` have no backward pass).
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(D::Minus1)? as f64;
        let mean = (x.sum_keepdim(D::Minus1)? / n)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = (xc.sqr()?.sum_keepdim(D::Minus1)? / n)?;
        let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        xn.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(size, "weight", candle_nn::init::ONE)?,
        bias: vb.get_with_hints(size, "bias", candle_nn::init::ZERO)?,
        eps,
    })
}
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("unsupported wav2vec2 configuration: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The fields of `config.json` the forward pass needs; everything else is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Wav2Vec2Config {
    pub conv_dim: Vec<usize>,
    pub conv_kernel: Vec<usize>,
    pub conv_stride: Vec<usize>,
    #[serde(default)]
    pub conv_bias: bool,
    pub feat_extract_norm: String,
    #[serde(default = "gelu")]
    pub feat_extract_activation: String,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub num_conv_pos_embeddings: usize,
    pub num_conv_pos_embedding_groups: usize,
    #[serde(default)]
    pub do_stable_layer_norm: bool,
    pub vocab_size: usize,
    /// SpecAugment settings, read by the training loop.
    #[serde(default = "yes")]
    pub apply_spec_augment: bool,
    #[serde(default = "mask_time_prob")]
    pub mask_time_prob: f64,
    #[serde(default = "ten")]
    pub mask_time_length: usize,
    #[serde(default = "two")]
    pub mask_time_min_masks: usize,
    #[serde(default)]
    pub mask_feature_prob: f64,
    #[serde(default = "ten")]
    pub mask_feature_length: usize,
    #[serde(default)]
    pub mask_feature_min_masks: usize,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

fn yes() -> bool {
    true
}
fn mask_time_prob() -> f64 {
    0.05
}
fn ten() -> usize {
    10
}
fn two() -> usize {
    2
}

fn gelu() -> String {
    "gelu".into()
}

impl Wav2Vec2Config {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let c: Self = serde_json::from_str(&text).map_err(|e| ModelError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        c.check()?;
        Ok(c)
    }

    /// Rejects what this implementation cannot run.
    pub fn check(&self) -> Result<(), ModelError> {
        let c = self;
        if c.feat_extract_activation != "gelu" || c.hidden_act != "gelu" {
            return Err(ModelError::Unsupported(format!(
                "activations {} / {} (only gelu)",
                c.feat_extract_activation, c.hidden_act
            )));
        }
        if !matches!(c.feat_extract_norm.as_str(), "group" | "layer") {
            return Err(ModelError::Unsupported(format!(
                "feat_extract_norm {}",
                c.feat_extract_norm
            )));
        }
        if c.conv_dim.len() != c.conv_kernel.len() || c.conv_dim.len() != c.conv_stride.len() {
            return Err(ModelError::Unsupported(
                "conv_dim, conv_kernel and conv_stride differ in length".into(),
            ));
        }
        if c.num_attention_heads == 0
            || c.hidden_size % c.num_attention_heads != 0
            || c.num_conv_pos_embedding_groups == 0
            || c.hidden_size % c.num_conv_pos_embedding_groups != 0
        {
            return Err(ModelError::Unsupported(format!(
                "hidden_size {} must divide by num_attention_heads {} and num_conv_pos_embedding_groups {}",
                c.hidden_size, c.num_attention_heads, c.num_conv_pos_embedding_groups
            )));
        }
        Ok(())
    }

    /// The smallest length >= `samples` at which every convolution of the feature
    /// encoder consumes its input exactly (no samples left over at the end). Padding a
    /// batch to it keeps every item's frames and lets candle's backward pass use its
    /// fast im2col/col2im path.
    pub fn exact_length(&self, samples: usize) -> usize {
        let back = |frames: usize| {
            self.conv_kernel
                .iter()
                .zip(&self.conv_stride)
                .rev()
                .fold(frames, |len, (&k, &s)| (len.max(1) - 1) * s + k)
        };
        let f = self.frames_for(samples);
        let t = back(f.max(1));
        if t >= samples {
            t
        } else {
            back(f + 1)
        }
    }

    /// Frames the feature encoder makes from `samples` input samples.
    pub fn frames_for(&self, samples: usize) -> usize {
        self.conv_kernel
            .iter()
            .zip(&self.conv_stride)
            .fold(
                samples,
                |len, (&k, &s)| if len < k { 0 } else { (len - k) / s + 1 },
            )
    }
}

/// A 1-D convolution without padding, `x [B, Cin, T]` with `weight [Cout, Cin/groups, K]`
/// → `[B, Cout, (T - K) / stride + 1]`, built from ops whose backward pass is right:
/// the input is unfolded into columns by `index_select` (its gradient is `index_add`)
/// and multiplied by the weight with one batched matmul per group.
///
/// candle 0.11.1's own `conv1d` computes wrong gradients for batches of more than one
/// item with more than one output channel (both the weight's gradient and the input's
/// for every item after the first; `tests/model.rs` pins a small case against PyTorch).
/// With batch 1 it is right, which is why the one-utterance gradient fixture passed
/// while every batched training run was fed wrong gradients for the feature encoder
/// and the positional convolution.
pub fn conv1d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    groups: usize,
) -> candle_core::Result<Tensor> {
    let (b, cin, t) = x.dims3()?;
    let (cout, cin_g, k) = weight.dims3()?;
    if groups == 0 || cin != cin_g * groups || cout % groups != 0 || stride == 0 {
        candle_core::bail!(
            "conv1d: input {:?}, weight {:?}, groups {groups}, stride {stride}",
            x.dims(),
            weight.dims()
        );
    }
    if t < k {
        candle_core::bail!("conv1d: {t} samples are fewer than the kernel's {k}");
    }
    let l = (t - k) / stride + 1;
    let idx: Vec<u32> = (0..l)
        .flat_map(|i| (0..k).map(move |j| (i * stride + j) as u32))
        .collect();
    let idx = Tensor::from_vec(idx, l * k, x.device())?;
    // [B, Cin, L*K] -> [B, G, L, Cin/G * K]
    let cols = x
        .contiguous()?
        .index_select(&idx, 2)?
        .reshape((b, groups, cin_g, l, k))?
        .permute((0, 1, 3, 2, 4))?
        .contiguous()?
        .reshape((b, groups, l, cin_g * k))?;
    let cout_g = cout / groups;
    // [G, Cin/G * K, Cout/G], broadcast over the batch.
    let w = weight
        .reshape((groups, cout_g, cin_g * k))?
        .transpose(1, 2)?
        .contiguous()?
        .unsqueeze(0)?;
    let y = cols.broadcast_matmul(&w)?; // [B, G, L, Cout/G]
    let y = y.permute((0, 1, 3, 2))?.reshape((b, cout, l))?;
    match bias {
        Some(bias) => y.broadcast_add(&bias.reshape((1, cout, 1))?),
        None => Ok(y),
    }
}

/// SpecAugment masks for one batch, as 0/1 tensors: `time [B, L, 1]` (1 = replace the
/// frame by `masked_spec_embed`) and `feature [B, 1, H]` (1 = zero the channel).
pub struct Masks {
    pub time: Option<Tensor>,
    pub feature: Option<Tensor>,
}

enum ConvNorm {
    None,
    Group(GroupNorm),
    /// Layer norm over channels, applied with channels last.
    Layer(LayerNorm),
}

struct ConvLayer {
    conv: Conv1d,
    norm: ConvNorm,
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    /// `bias`: an additive `[B, 1, 1, L]` term on the scores (large negative over padded
    /// keys), or `None` when every frame is real.
    fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, l, h) = x.dims3()?;
        let d = h / self.heads;
        let scale = (d as f64).powf(-0.5);
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, l, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split((self.q.forward(x)? * scale)?)?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let mut scores = q.matmul(&k.transpose(2, 3)?.contiguous()?)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))?;
        self.out.forward(&ctx)
    }
}

struct EncoderLayer {
    attention: Attention,
    layer_norm: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn feed_forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.ff_out.forward(&self.ff_in.forward(x)?.gelu_erf()?)
    }

    fn forward(
        &self,
        x: &Tensor,
        stable: bool,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        if stable {
            let a = self.attention.forward(&self.layer_norm.forward(x)?, bias)?;
            let x = (x + a)?;
            let f = self.feed_forward(&self.final_layer_norm.forward(&x)?)?;
            x + f
        } else {
            let a = self.attention.forward(x, bias)?;
            let x = self.layer_norm.forward(&(x + a)?)?;
            let f = self.feed_forward(&x)?;
            self.final_layer_norm.forward(&(x + f)?)
        }
    }
}

/// The whole network, ready for inference.
pub struct Wav2Vec2ForCtc {
    pub config: Wav2Vec2Config,
    convs: Vec<ConvLayer>,
    proj_norm: LayerNorm,
    proj: Linear,
    pos_g: Tensor,
    pos_v: Tensor,
    pos_bias: Tensor,
    pos_kernel: usize,
    masked_spec_embed: Option<Tensor>,
    enc_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    lm_head: Linear,
}

impl Wav2Vec2ForCtc {
    /// Loads `config.json` and `model.safetensors` from a checkpoint folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let config = Wav2Vec2Config::load(&dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        let tensors =
            candle_core::safetensors::load(&weights, device).map_err(|e| ModelError::Read {
                path: weights.display().to_string(),
                message: e.to_string(),
            })?;
        let parametrized = tensors
            .keys()
            .any(|k| k.ends_with("pos_conv_embed.conv.parametrizations.weight.original0"));
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(config, vb, parametrized)
    }

    /// Builds the network from `vb`. `parametrized` picks the names of the positional
    /// convolution's weight norm: `parametrizations.weight.original0/1` (transformers
    /// since PyTorch's parametrize API) or `weight_g/weight_v` (older checkpoints). With a
    /// `VarMap`-backed builder the parameters are created (and trainable);
    /// `masked_spec_embed` is then created too, while a checkpoint without it is fine.
    pub fn new(
        config: Wav2Vec2Config,
        vb: VarBuilder,
        parametrized: bool,
    ) -> Result<Self, ModelError> {
        config.check()?;
        let c = &config;
        let w = vb.pp("wav2vec2");
        let eps = c.layer_norm_eps;
        let mut convs = Vec::new();
        let mut in_ch = 1;
        for (i, ((&out, &k), &s)) in c
            .conv_dim
            .iter()
            .zip(&c.conv_kernel)
            .zip(&c.conv_stride)
            .enumerate()
        {
            let lv = w.pp(format!("feature_extractor.conv_layers.{i}"));
            let cfg = Conv1dConfig {
                stride: s,
                ..Default::default()
            };
            let conv = if c.conv_bias {
                candle_nn::conv1d(in_ch, out, k, cfg, lv.pp("conv"))?
            } else {
                candle_nn::conv1d_no_bias(in_ch, out, k, cfg, lv.pp("conv"))?
            };
            let norm = match (c.feat_extract_norm.as_str(), i) {
                ("group", 0) => {
                    ConvNorm::Group(candle_nn::group_norm(out, out, 1e-5, lv.pp("layer_norm"))?)
                }
                ("layer", _) => ConvNorm::Layer(layer_norm(out, eps, lv.pp("layer_norm"))?),
                _ => ConvNorm::None,
            };
            convs.push(ConvLayer { conv, norm });
            in_ch = out;
        }
        let last = *c
            .conv_dim
            .last()
            .ok_or_else(|| ModelError::Unsupported("no conv layers".into()))?;
        let proj_norm = layer_norm(last, eps, w.pp("feature_projection.layer_norm"))?;
        let proj = candle_nn::linear(last, c.hidden_size, w.pp("feature_projection.projection"))?;

        // Positional convolution with weight normalisation over dim 2 (the kernel axis):
        // weight = g * v / ||v||, the norm taken over output and input channels.
        let pv = w.pp("encoder.pos_conv_embed.conv");
        let k = c.num_conv_pos_embeddings;
        let groups = c.num_conv_pos_embedding_groups;
        let shape = (c.hidden_size, c.hidden_size / groups, k);
        let (g_name, v_name) = if parametrized {
            (
                "parametrizations.weight.original0",
                "parametrizations.weight.original1",
            )
        } else {
            ("weight_g", "weight_v")
        };
        // Fresh parameters (VarMap): v ~ N(0, sqrt(4 / (k * hidden))) as transformers
        // initialises it, g = 1 (the training loop's initialiser sets g = ||v||).
        let std = (4.0 / (k * c.hidden_size) as f64).sqrt();
        let pos_v = pv.get_with_hints(
            shape,
            v_name,
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        )?;
        let pos_g = pv.get_with_hints((1, 1, k), g_name, candle_nn::Init::Const(1.0))?;
        let pos_bias = pv.get_with_hints(c.hidden_size, "bias", candle_nn::init::ZERO)?;
        let masked_spec_embed = w
            .get_with_hints(
                c.hidden_size,
                "masked_spec_embed",
                candle_nn::Init::Uniform { lo: 0.0, up: 1.0 },
            )
            .ok();
        let enc_norm = layer_norm(c.hidden_size, eps, w.pp("encoder.layer_norm"))?;
        let mut layers = Vec::new();
        for i in 0..c.num_hidden_layers {
            let lv = w.pp(format!("encoder.layers.{i}"));
            let h = c.hidden_size;
            layers.push(EncoderLayer {
                attention: Attention {
                    q: candle_nn::linear(h, h, lv.pp("attention.q_proj"))?,
                    k: candle_nn::linear(h, h, lv.pp("attention.k_proj"))?,
                    v: candle_nn::linear(h, h, lv.pp("attention.v_proj"))?,
                    out: candle_nn::linear(h, h, lv.pp("attention.out_proj"))?,
                    heads: c.num_attention_heads,
                },
                layer_norm: layer_norm(h, eps, lv.pp("layer_norm"))?,
                ff_in: candle_nn::linear(
                    h,
                    c.intermediate_size,
                    lv.pp("feed_forward.intermediate_dense"),
                )?,
                ff_out: candle_nn::linear(
                    c.intermediate_size,
                    h,
                    lv.pp("feed_forward.output_dense"),
                )?,
                final_layer_norm: layer_norm(h, eps, lv.pp("final_layer_norm"))?,
            });
        }
        let lm_head = candle_nn::linear(c.hidden_size, c.vocab_size, vb.pp("lm_head"))?;
        Ok(Wav2Vec2ForCtc {
            convs,
            proj_norm,
            proj,
            pos_g,
            pos_v,
            pos_bias,
            pos_kernel: k,
            masked_spec_embed,
            enc_norm,
            layers,
            lm_head,
            config,
        })
    }

    /// `input_values [batch, samples]` → `logits [batch, frames, vocab]`.
    pub fn forward(&self, input_values: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(input_values, None, false, None)
    }

    /// The forward pass for training: SpecAugment `masks` when given, and with
    /// `freeze_feature_encoder` no gradient flows into the convolutions.
    ///
    /// `valid_frames` is the attention mask over a zero-padded batch, as transformers
    /// applies it when `attention_mask` is passed: item `i` has `valid_frames[i]` real
    /// frames; the encoder zeroes the rest before the positional convolution and no
    /// attention head looks at them, so an item's real frames come out the same whatever
    /// else is in its batch (up to the feature encoder's group norm, which transformers
    /// also takes over the padded length). `None`: every frame is real.
    pub fn forward_t(
        &self,
        input_values: &Tensor,
        masks: Option<&Masks>,
        freeze_feature_encoder: bool,
        valid_frames: Option<&[usize]>,
    ) -> candle_core::Result<Tensor> {
        // Feature encoder: [B, 1, T] -> [B, C, L].
        let mut x = input_values.unsqueeze(1)?;
        for layer in &self.convs {
            x = conv1d(
                &x,
                layer.conv.weight(),
                layer.conv.bias(),
                layer.conv.config().stride,
                1,
            )?;
            x = match &layer.norm {
                ConvNorm::None => x,
                ConvNorm::Group(g) => g.forward(&x)?,
                ConvNorm::Layer(l) => l.forward(&x.transpose(1, 2)?)?.transpose(1, 2)?,
            };
            x = x.gelu_erf()?;
        }
        if freeze_feature_encoder {
            x = x.detach();
        }
        // Feature projection: [B, L, C] -> [B, L, H].
        let x = x.transpose(1, 2)?.contiguous()?;
        let mut x = self.proj.forward(&self.proj_norm.forward(&x)?)?;
        if let Some(m) = masks {
            if let (Some(tm), Some(embed)) = (&m.time, &self.masked_spec_embed) {
                let keep = (1.0 - tm)?;
                x = (x.broadcast_mul(&keep)? + tm.broadcast_mul(&embed.reshape((1, 1, ()))?)?)?;
            }
            if let Some(fm) = &m.feature {
                x = x.broadcast_mul(&(1.0 - fm)?)?;
            }
        }
        let (b, l, _) = x.dims3()?;
        let mut attn_bias = None;
        if let Some(valid) = valid_frames {
            if valid.len() != b {
                candle_core::bail!("{} frame counts for a batch of {b}", valid.len());
            }
            let keep: Vec<f32> = valid
                .iter()
                .flat_map(|&n| (0..l).map(move |j| if j < n { 1.0 } else { 0.0 }))
                .collect();
            let keep = Tensor::from_vec(keep, (b, l), x.device())?;
            x = x.broadcast_mul(&keep.unsqueeze(2)?)?;
            // Far below any score, so softmax gives padded keys exactly zero weight
            // (transformers adds the dtype's minimum; the result is the same).
            attn_bias = Some(((keep - 1.0)? * 1e9)?.reshape((b, 1, 1, l))?);
        }
        // Positional embedding from a grouped convolution over time, its weight
        // normalised over the kernel axis: weight = g * v / ||v||.
        let norm = self.pos_v.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?;
        let weight = self
            .pos_v
            .broadcast_div(&norm)?
            .broadcast_mul(&self.pos_g)?;
        // Zero padding done explicitly (same length out, as transformers' `padding=k/2`).
        let half = self.pos_kernel / 2;
        let xt = x.transpose(1, 2)?.pad_with_zeros(D::Minus1, half, half)?;
        let pos = conv1d(
            &xt,
            &weight,
            Some(&self.pos_bias),
            1,
            self.config.num_conv_pos_embedding_groups,
        )?;
        let pos = if self.pos_kernel % 2 == 0 {
            let l = pos.dim(D::Minus1)?;
            pos.narrow(D::Minus1, 0, l - 1)?
        } else {
            pos
        };
        let pos = pos.gelu_erf()?.transpose(1, 2)?;
        let mut x = (x + pos)?;
        let stable = self.config.do_stable_layer_norm;
        if !stable {
            x = self.enc_norm.forward(&x)?;
        }
        for layer in &self.layers {
            x = layer.forward(&x, stable, attn_bias.as_ref())?;
        }
        if stable {
            x = self.enc_norm.forward(&x)?;
        }
        self.lm_head.forward(&x)
    }
}
