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

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto};

use super::f32_values;
use crate::model::Wav2Vec2Config;

/// A weight's dims and f32 values.
type Dense = (Vec<usize>, Vec<f32>);

/// One initializer as f32 with its dims; int8 ones are dequantized with `{name}_scale`
/// along the axis export's rewrites used (1 for `[in, out]` matrices, 0 for convs).
fn weights(model: &ModelProto) -> Result<HashMap<String, Dense>> {
    let graph = model.graph.as_ref().context("the ONNX file has no graph")?;
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
                bail!("initializer {} is named int8 but is not", t.name);
            }
            let scale_name = format!("{base}_scale");
            let scale = by_name
                .get(scale_name.as_str())
                .with_context(|| format!("int8 weight {} has no {scale_name}", t.name))?;
            let scales = f32_values(scale)?;
            let q: Vec<i8> = t.raw_data.iter().map(|&b| b as i8).collect();
            let n: usize = dims.iter().product();
            if q.len() != n {
                bail!(
                    "int8 weight {} holds {} values, its dims say {n}",
                    t.name,
                    q.len()
                );
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
                _ => bail!(
                    "int8 weight {} ({dims:?}) has {} scales: not a layout this tool writes",
                    t.name,
                    scales.len()
                ),
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
        w.get(name).with_context(|| {
            format!("the ONNX graph has no weight {name}: not a wav2vec2 CTC model exported by sangdam-host for this config")
        })
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
            bail!("{prefix}.weight has dims {d:?}, a linear layer needs two");
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
        bail!("{pc}.weight has dims {pd:?}, a convolution needs three");
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
pub fn import_dir(
    model: &std::path::Path,
    config: &std::path::Path,
    out: &std::path::Path,
) -> Result<(usize, usize)> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", config.display()))?;
    json["vocab_size"] = serde_json::json!(1);
    let arch: Wav2Vec2Config = serde_json::from_value(json.clone())
        .with_context(|| format!("{} is not a wav2vec2 config", config.display()))?;
    let proto = super::read_model(model)?;
    let (tensors, vocab) =
        import(&proto, &arch).with_context(|| format!("cannot import {}", model.display()))?;
    json["vocab_size"] = serde_json::json!(vocab);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join("config.json"),
        serde_json::to_string_pretty(&json)?,
    )
    .with_context(|| format!("cannot write {}", out.join("config.json").display()))?;
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
    let v = model.with_file_name("vocab.json");
    if v.exists() {
        std::fs::copy(&v, out.join("vocab.json"))?;
    }
    Ok((tensors.len(), vocab))
}
