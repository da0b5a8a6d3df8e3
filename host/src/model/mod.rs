//! Wav2Vec2ForCTC in candle, read from a Hugging Face checkpoint (`config.json` +
//! `model.safetensors`, the parameter names `save_pretrained` writes).
//!
//! Both layouts of the architecture are covered: `feat_extract_norm = "group"` (group
//! norm on the first convolution only, post-LN transformer: wav2vec2-base) and `"layer"`
//! with `do_stable_layer_norm = true` (layer norm after every convolution, pre-LN
//! transformer: wav2vec2-large-lv60 / XLS-R). Dropout, LayerDrop and SpecAugment belong to
//! training and are not applied here.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, GroupNorm, LayerNorm, Linear, VarBuilder};
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
        Ok(c)
    }
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
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
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
        let scores = q.matmul(&k.transpose(2, 3)?.contiguous()?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
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

    fn forward(&self, x: &Tensor, stable: bool) -> candle_core::Result<Tensor> {
        if stable {
            let a = self.attention.forward(&self.layer_norm.forward(x)?)?;
            let x = (x + a)?;
            let f = self.feed_forward(&self.final_layer_norm.forward(&x)?)?;
            x + f
        } else {
            let a = self.attention.forward(x)?;
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
    pos_conv: Conv1d,
    pos_kernel: usize,
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
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(config, vb)
    }

    pub fn new(config: Wav2Vec2Config, vb: VarBuilder) -> Result<Self, ModelError> {
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
                ("layer", _) => {
                    ConvNorm::Layer(candle_nn::layer_norm(out, eps, lv.pp("layer_norm"))?)
                }
                _ => ConvNorm::None,
            };
            convs.push(ConvLayer { conv, norm });
            in_ch = out;
        }
        let last = *c
            .conv_dim
            .last()
            .ok_or_else(|| ModelError::Unsupported("no conv layers".into()))?;
        let proj_norm = candle_nn::layer_norm(last, eps, w.pp("feature_projection.layer_norm"))?;
        let proj = candle_nn::linear(last, c.hidden_size, w.pp("feature_projection.projection"))?;

        // Positional convolution with weight normalisation over dim 2 (the kernel axis):
        // weight = g * v / ||v||, the norm taken over output and input channels.
        let pv = w.pp("encoder.pos_conv_embed.conv");
        let k = c.num_conv_pos_embeddings;
        let groups = c.num_conv_pos_embedding_groups;
        let shape = (c.hidden_size, c.hidden_size / groups, k);
        let (g, v) = if pv.contains_tensor("parametrizations.weight.original0") {
            (
                pv.get((1, 1, k), "parametrizations.weight.original0")?,
                pv.get(shape, "parametrizations.weight.original1")?,
            )
        } else {
            (pv.get((1, 1, k), "weight_g")?, pv.get(shape, "weight_v")?)
        };
        let norm = v.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?;
        let weight = v.broadcast_div(&norm)?.broadcast_mul(&g)?;
        let bias = pv.get(c.hidden_size, "bias")?;
        let pos_conv = Conv1d::new(
            weight,
            Some(bias),
            Conv1dConfig {
                padding: k / 2,
                groups,
                ..Default::default()
            },
        );
        let enc_norm = candle_nn::layer_norm(c.hidden_size, eps, w.pp("encoder.layer_norm"))?;
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
                layer_norm: candle_nn::layer_norm(h, eps, lv.pp("layer_norm"))?,
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
                final_layer_norm: candle_nn::layer_norm(h, eps, lv.pp("final_layer_norm"))?,
            });
        }
        let lm_head = candle_nn::linear(c.hidden_size, c.vocab_size, vb.pp("lm_head"))?;
        Ok(Wav2Vec2ForCtc {
            convs,
            proj_norm,
            proj,
            pos_conv,
            pos_kernel: k,
            enc_norm,
            layers,
            lm_head,
            config,
        })
    }

    /// `input_values [batch, samples]` → `logits [batch, frames, vocab]`.
    pub fn forward(&self, input_values: &Tensor) -> candle_core::Result<Tensor> {
        // Feature encoder: [B, 1, T] -> [B, C, L].
        let mut x = input_values.unsqueeze(1)?;
        for layer in &self.convs {
            x = layer.conv.forward(&x)?;
            x = match &layer.norm {
                ConvNorm::None => x,
                ConvNorm::Group(g) => g.forward(&x)?,
                ConvNorm::Layer(l) => l.forward(&x.transpose(1, 2)?)?.transpose(1, 2)?,
            };
            x = x.gelu_erf()?;
        }
        // Feature projection: [B, L, C] -> [B, L, H].
        let x = x.transpose(1, 2)?.contiguous()?;
        let x = self.proj.forward(&self.proj_norm.forward(&x)?)?;
        // Positional embedding from a grouped convolution over time.
        let pos = self.pos_conv.forward(&x.transpose(1, 2)?.contiguous()?)?;
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
            x = layer.forward(&x, stable)?;
        }
        if stable {
            x = self.enc_norm.forward(&x)?;
        }
        self.lm_head.forward(&x)
    }
}
