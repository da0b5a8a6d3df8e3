//! The inverse of [`super::export`]: a Wav2Vec2ForCTC graph written by this tool (f32,
//! or int8 weight-only / dynamic, whose int8 weights are expanded again with their
//! scales) back to Hugging Face tensors, so a shipped model can be fine-tuned further
//! when its training checkpoint is gone (`sangdam-host import`).
//!
//! What export folded is unfolded: `[in, out]` linear weights are transposed back to
//! PyTorch's `[out, in]`, the attention scale leaves the query projection, and the
//! positional convolution's plain weight becomes a weight-norm pair whose `g` is the
//! weight's own norm per kernel tap (the same effective weight). Weights that went
//! through int8 carry its rounding (below half a step of their per-channel scale); a
//! few hundred steps of training remove it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto};

use super::{f32_values, OnnxError};
use crate::model::Wav2Vec2Config;

/// Why an ONNX graph cannot be turned back into a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("the ONNX file has no graph")]
    NoGraph,
    #[error("initializer {name} is named int8 but is not")]
    NotInt8 { name: String },
    #[error("int8 weight {name} has no {scale}")]
    NoScale { name: String, scale: String },
    #[error("int8 weight {name} holds {values} values, its dims say {expected}")]
    Int8Count {
        name: String,
        values: usize,
        expected: usize,
    },
    #[error("int8 weight {name} ({dims:?}) has {scales} scales: not a layout this tool writes")]
    ScaleLayout {
        name: String,
        dims: Vec<usize>,
        scales: usize,
    },
    #[error("the ONNX graph has no weight {name}: not a wav2vec2 CTC model exported by sangdam-host for this config")]
    MissingWeight { name: String },
    /// A weight whose rank is not its layer's; `needs` says what the layer needs.
    #[error("{name} has dims {dims:?}, {needs}")]
    Rank {
        name: String,
        dims: Vec<usize>,
        needs: &'static str,
    },
    /// Reading the file or an initializer ([`super::read_model`], [`f32_values`]).
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a wav2vec2 config", path.display())]
    NotConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// [`import`] of the model file failed.
    #[error("cannot import {}", path.display())]
    Import {
        path: PathBuf,
        #[source]
        source: Box<ImportError>,
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
    #[error("cannot write {}", path.display())]
    WriteWeights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("cannot copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config could not be put as JSON again.
    #[error(transparent)]
    Json(serde_json::Error),
}

type Result<T, E = ImportError> = std::result::Result<T, E>;

/// A weight's dims and f32 values.
type Dense = (Vec<usize>, Vec<f32>);

/// One initializer as f32 with its dims; int8 ones are dequantized with `{name}_scale`
/// along the axis export's rewrites used (1 for `[in, out]` matrices, 0 for convs).
fn weights(model: &ModelProto) -> Result<HashMap<String, Dense>> {
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    let by_name: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut out = HashMap::new();
    for t in &graph.initializer {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        if let Some(base) = t.name.strip_suffix("_int8") {
            if t.data_type != DataType::Int8 as i32 {
                return Err(ImportError::NotInt8 {
                    name: t.name.clone(),
                });
            }
            let scale_name = format!("{base}_scale");
            let Some(scale) = by_name.get(scale_name.as_str()) else {
                return Err(ImportError::NoScale {
                    name: t.name.clone(),
                    scale: scale_name,
                });
            };
            let scales = f32_values(scale)?;
            let q: Vec<i8> = t.raw_data.iter().map(|&b| b as i8).collect();
            let n: usize = dims.iter().product();
            if q.len() != n {
                return Err(ImportError::Int8Count {
                    name: t.name.clone(),
                    values: q.len(),
                    expected: n,
                });
            }
            let values: Vec<f32> = match dims.len() {
                // [in, out], a scale per output column.
                2 if scales.len() == dims[1] => q
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v as f32 * scales[i % dims[1]])
                    .collect(),
                // [out, in, k], a scale per output channel.
                3 if scales.len() == dims[0] => {
                    let per = dims[1] * dims[2];
                    q.iter()
                        .enumerate()
                        .map(|(i, &v)| v as f32 * scales[i / per])
                        .collect()
                }
                _ => {
                    return Err(ImportError::ScaleLayout {
                        name: t.name.clone(),
                        dims,
                        scales: scales.len(),
                    })
                }
            };
            out.insert(base.to_string(), (dims, values));
        } else if t.data_type == DataType::Float as i32 && !t.name.ends_with("_scale") {
            out.insert(t.name.clone(), (dims, f32_values(t)?));
        }
    }
    Ok(out)
}

/// Hugging Face tensors (by name, as `model.safetensors` holds them) of an exported
/// graph, and the vocabulary size its CTC head has. `config` is the architecture the
/// graph was exported from (its `vocab_size` is not needed).
pub fn import(
    model: &ModelProto,
    config: &Wav2Vec2Config,
) -> Result<(HashMap<String, Tensor>, usize)> {
    let w = weights(model)?;
    let get = |name: &str| -> Result<&Dense> {
        w.get(name)
            .ok_or_else(|| ImportError::MissingWeight { name: name.into() })
    };
    let mut out = HashMap::new();
    let put = |out: &mut HashMap<String, Tensor>,
               name: &str,
               dims: &[usize],
               v: Vec<f32>|
     -> Result<()> {
        out.insert(name.to_string(), Tensor::from_vec(v, dims, &Device::Cpu)?);
        Ok(())
    };
    let plain = |out: &mut HashMap<String, Tensor>, name: &str| -> Result<()> {
        let (d, v) = get(name)?;
        put(out, name, d, v.clone())
    };
    // A linear layer: [in, out] back to [out, in], the bias as is, both divided by the
    // scale export multiplied them by.
    let linear = |out: &mut HashMap<String, Tensor>, prefix: &str, scale: f32| -> Result<usize> {
        let (d, v) = get(&format!("{prefix}.weight"))?;
        if d.len() != 2 {
            return Err(ImportError::Rank {
                name: format!("{prefix}.weight"),
                dims: d.clone(),
                needs: "a linear layer needs two",
            });
        }
        let (inp, o) = (d[0], d[1]);
        let mut t = vec![0f32; v.len()];
        for r in 0..inp {
            for c in 0..o {
                t[c * inp + r] = v[r * o + c] / scale;
            }
        }
        put(out, &format!("{prefix}.weight"), &[o, inp], t)?;
        if let Ok((bd, b)) = get(&format!("{prefix}.bias")) {
            put(
                out,
                &format!("{prefix}.bias"),
                bd,
                b.iter().map(|x| x / scale).collect(),
            )?;
        }
        Ok(o)
    };
    for i in 0..config.conv_dim.len() {
        let p = format!("wav2vec2.feature_extractor.conv_layers.{i}");
        plain(&mut out, &format!("{p}.conv.weight"))?;
        if config.conv_bias {
            plain(&mut out, &format!("{p}.conv.bias"))?;
        }
        let has_norm = match config.feat_extract_norm.as_str() {
            "group" => i == 0,
            "layer" => true,
            _ => false,
        };
        if has_norm {
            plain(&mut out, &format!("{p}.layer_norm.weight"))?;
            plain(&mut out, &format!("{p}.layer_norm.bias"))?;
        }
    }
    for n in ["feature_projection.layer_norm", "encoder.layer_norm"] {
        plain(&mut out, &format!("wav2vec2.{n}.weight"))?;
        plain(&mut out, &format!("wav2vec2.{n}.bias"))?;
    }
    linear(&mut out, "wav2vec2.feature_projection.projection", 1.0)?;
    // Weight norm over the kernel axis: g[k] = ||w[:, :, k]||, v = w.
    let pc = "wav2vec2.encoder.pos_conv_embed.conv";
    let (pd, pw) = get(&format!("{pc}.weight"))?;
    if pd.len() != 3 {
        return Err(ImportError::Rank {
            name: format!("{pc}.weight"),
            dims: pd.clone(),
            needs: "a convolution needs three",
        });
    }
    let k = pd[2];
    let mut norms = vec![0f64; k];
    for (i, x) in pw.iter().enumerate() {
        norms[i % k] += (*x as f64).powi(2);
    }
    let g: Vec<f32> = norms.iter().map(|n| n.sqrt() as f32).collect();
    put(
        &mut out,
        &format!("{pc}.parametrizations.weight.original0"),
        &[1, 1, k],
        g,
    )?;
    put(
        &mut out,
        &format!("{pc}.parametrizations.weight.original1"),
        pd,
        pw.clone(),
    )?;
    plain(&mut out, &format!("{pc}.bias"))?;
    let heads = config.num_attention_heads;
    let scale = ((config.hidden_size / heads) as f32).powf(-0.5);
    for i in 0..config.num_hidden_layers {
        let p = format!("wav2vec2.encoder.layers.{i}");
        linear(&mut out, &format!("{p}.attention.q_proj"), scale)?;
        for l in ["attention.k_proj", "attention.v_proj", "attention.out_proj"] {
            linear(&mut out, &format!("{p}.{l}"), 1.0)?;
        }
        for l in [
            "feed_forward.intermediate_dense",
            "feed_forward.output_dense",
        ] {
            linear(&mut out, &format!("{p}.{l}"), 1.0)?;
        }
        for n in ["layer_norm", "final_layer_norm"] {
            plain(&mut out, &format!("{p}.{n}.weight"))?;
            plain(&mut out, &format!("{p}.{n}.bias"))?;
        }
    }
    let vocab = linear(&mut out, "lm_head", 1.0)?;
    Ok((out, vocab))
}

/// `sangdam-host import`: the ONNX `model` (with its Hugging Face `config` JSON) as a
/// checkpoint folder `out` (`config.json` with the model's vocabulary size,
/// `model.safetensors`, and `vocab.json` when one lies next to the model). Returns the
/// number of tensors and the vocabulary size.
pub fn import_dir(model: &Path, config: &Path, out: &Path) -> Result<(usize, usize)> {
    let text = std::fs::read_to_string(config).map_err(|source| ImportError::Read {
        path: config.to_owned(),
        source,
    })?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ImportError::NotJson {
            path: config.to_owned(),
            source,
        })?;
    json["vocab_size"] = serde_json::json!(1);
    let arch: Wav2Vec2Config =
        serde_json::from_value(json.clone()).map_err(|source| ImportError::NotConfig {
            path: config.to_owned(),
            source,
        })?;
    let proto = super::read_model(model)?;
    let (tensors, vocab) = import(&proto, &arch).map_err(|e| ImportError::Import {
        path: model.to_owned(),
        source: Box::new(e),
    })?;
    json["vocab_size"] = serde_json::json!(vocab);
    std::fs::create_dir_all(out).map_err(|source| ImportError::Create {
        path: out.to_owned(),
        source,
    })?;
    let config_out = out.join("config.json");
    let body = serde_json::to_string_pretty(&json).map_err(ImportError::Json)?;
    std::fs::write(&config_out, body).map_err(|source| ImportError::Write {
        path: config_out,
        source,
    })?;
    let weights = out.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights).map_err(|source| {
        ImportError::WriteWeights {
            path: weights.clone(),
            source,
        }
    })?;
    let v = model.with_file_name("vocab.json");
    if v.exists() {
        let to = out.join("vocab.json");
        std::fs::copy(&v, &to).map_err(|source| ImportError::Copy {
            from: v.clone(),
            to: to.clone(),
            source,
        })?;
    }
    Ok((tensors.len(), vocab))
}
