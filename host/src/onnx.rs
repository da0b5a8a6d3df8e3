//! ONNX export of a Wav2Vec2ForCTC checkpoint, written node by node with tract's own
//! ONNX protobuf types, and the int8 rewrites of such a graph ([`quantize`]).
//!
//! The graph has the interface of transformers' `torch.onnx.export` of the model (input
//! `input_values [batch, samples]` f32, output `logits [batch, frames, vocab]`, symbolic
//! batch and sample axes, opset 17), so the firmware's engine treats a model exported
//! here and one exported by PyTorch alike. Linear layers are `MatMul` by a `[in, out]`
//! weight then `Add` of the bias (the pattern int8 rewrites look for); the attention
//! scale is folded into the query projection; GELU is the exact erf form; the
//! positional convolution's weight norm is folded into a plain weight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use prost::Message;
use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto,
};

use crate::model::{ModelError, Wav2Vec2Config};

pub mod import;
pub mod quantize;

/// Why a checkpoint cannot be exported, or an ONNX file read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The checkpoint's `config.json` ([`Wav2Vec2Config::load`]).
    #[error(transparent)]
    Config(#[from] ModelError),
    #[error("cannot read {}", path.display())]
    ReadWeights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    /// A tensor the architecture needs is not in `model.safetensors`.
    #[error("the checkpoint has no tensor {name}")]
    MissingTensor { name: String },
    /// A convolution's weight does not have the shape `config.json` gives it.
    #[error("{name} has shape {dims:?}, config says {expected:?}")]
    Shape {
        name: String,
        dims: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An initializer read as f32 ([`f32_values`]) holds another type.
    #[error("initializer {name} is not f32")]
    NotF32 { name: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an ONNX model (protobuf decoding failed)", path.display())]
    NotOnnx {
        path: PathBuf,
        #[source]
        source: prost::DecodeError,
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
}

type Result<T, E = OnnxError> = std::result::Result<T, E>;

/// Opset of the exported graph (LayerNormalization needs 17).
pub const OPSET: i64 = 17;

/// Builds a graph one node at a time with generated value names.
#[derive(Default)]
pub struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    counter: usize,
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

/// An f32 initializer.
pub fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An int8 initializer.
pub fn tensor_i8(name: &str, dims: &[usize], data: &[i8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int8 as i32,
        raw_data: data.iter().map(|&v| v as u8).collect(),
        ..Default::default()
    }
}

/// An int64 initializer.
pub fn tensor_i64(name: &str, dims: &[usize], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// The f32 values of an initializer, from `raw_data` or `float_data`.
pub fn f32_values(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return Err(OnnxError::NotF32 {
            name: t.name.clone(),
        });
    }
    if !t.raw_data.is_empty() {
        Ok(t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    } else {
        Ok(t.float_data.clone())
    }
}

impl GraphBuilder {
    pub fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    pub fn init(&mut self, t: TensorProto) -> String {
        let name = t.name.clone();
        self.initializers.push(t);
        name
    }

    pub fn scalar(&mut self, hint: &str, v: f32) -> String {
        let name = self.fresh(hint);
        self.init(tensor_f32(&name, &[], &[v]))
    }

    pub fn ints(&mut self, hint: &str, v: &[i64]) -> String {
        let name = self.fresh(hint);
        self.init(tensor_i64(&name, &[v.len()], v))
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node_named(op, inputs, attrs, &out);
        out
    }

    pub fn node_named(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, out: &str) {
        let name = self.fresh(&format!("n_{op}"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    pub fn gelu(&mut self, x: &str) -> String {
        let s2 = self.scalar("sqrt2", std::f32::consts::SQRT_2);
        let one = self.scalar("one", 1.0);
        let half = self.scalar("half", 0.5);
        let d = self.node("Div", &[x, &s2], vec![]);
        let e = self.node("Erf", &[&d], vec![]);
        let a = self.node("Add", &[&e, &one], vec![]);
        let m = self.node("Mul", &[x, &a], vec![]);
        self.node("Mul", &[&m, &half], vec![])
    }

    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.node("Transpose", &[x], vec![attr_ints("perm", perm)])
    }

    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.ints("shape", shape);
        self.node("Reshape", &[x, &s], vec![])
    }
}

fn value_info(name: &str, dims: &[&str]) -> ValueInfoProto {
    value_info_typed(name, DataType::Float, dims)
}

/// A graph input or output: element type and dimensions (numbers, or names for
/// symbolic axes).
pub fn value_info_typed(name: &str, elem: DataType, dims: &[&str]) -> ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d.parse::<i64>() {
                                Ok(n) => Value::DimValue(n),
                                Err(_) => Value::DimParam(d.to_string()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Checkpoint weights by Hugging Face name, as f32 vectors with their shapes.
struct Weights(HashMap<String, Tensor>);

impl Weights {
    fn get(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self
            .0
            .get(name)
            .ok_or_else(|| OnnxError::MissingTensor { name: name.into() })?
            .to_dtype(DType::F32)?;
        Ok((t.dims().to_vec(), t.flatten_all()?.to_vec1()?))
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transposed(rows: usize, cols: usize, w: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

impl GraphBuilder {
    /// `x @ W^T + b` for a PyTorch `Linear` named `prefix` (weight `[out, in]`), with the
    /// weight (and bias) multiplied by `scale`.
    fn linear(&mut self, w: &Weights, prefix: &str, x: &str, scale: f32) -> Result<String> {
        let (dims, weight) = w.get(&format!("{prefix}.weight"))?;
        let (out, inp) = (dims[0], dims[1]);
        let wt: Vec<f32> = transposed(out, inp, &weight)
            .iter()
            .map(|v| v * scale)
            .collect();
        let wn = self.init(tensor_f32(&format!("{prefix}.weight"), &[inp, out], &wt));
        let y = self.node("MatMul", &[x, &wn], vec![]);
        let bias_name = format!("{prefix}.bias");
        if w.has(&bias_name) {
            let (_, b) = w.get(&bias_name)?;
            let b: Vec<f32> = b.iter().map(|v| v * scale).collect();
            let bn = self.init(tensor_f32(&bias_name, &[out], &b));
            Ok(self.node("Add", &[&y, &bn], vec![]))
        } else {
            Ok(y)
        }
    }

    /// LayerNormalization over the last axis.
    fn layer_norm(&mut self, w: &Weights, prefix: &str, x: &str, eps: f64) -> Result<String> {
        let (d, g) = w.get(&format!("{prefix}.weight"))?;
        let (_, b) = w.get(&format!("{prefix}.bias"))?;
        let gn = self.init(tensor_f32(&format!("{prefix}.weight"), &d, &g));
        let bn = self.init(tensor_f32(&format!("{prefix}.bias"), &d, &b));
        Ok(self.node(
            "LayerNormalization",
            &[x, &gn, &bn],
            vec![attr_int("axis", -1), attr_float("epsilon", eps as f32)],
        ))
    }
}

/// Exports the checkpoint folder `dir` (config.json + model.safetensors) to ONNX bytes.
pub fn export(dir: &Path) -> Result<Vec<u8>> {
    let config = Wav2Vec2Config::load(&dir.join("config.json"))?;
    let path = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|source| OnnxError::ReadWeights { path, source })?;
    let model = build(&config, &Weights(tensors))?;
    Ok(model.encode_to_vec())
}

fn build(c: &Wav2Vec2Config, w: &Weights) -> Result<ModelProto> {
    let mut g = GraphBuilder::default();
    let eps = c.layer_norm_eps;
    let axes1 = g.ints("axes", &[1]);
    let mut x = g.node("Unsqueeze", &["input_values", &axes1], vec![]);
    // Feature encoder.
    let mut in_ch = 1;
    for (i, ((&out, &k), &s)) in c
        .conv_dim
        .iter()
        .zip(&c.conv_kernel)
        .zip(&c.conv_stride)
        .enumerate()
    {
        let p = format!("wav2vec2.feature_extractor.conv_layers.{i}");
        let (dims, kw) = w.get(&format!("{p}.conv.weight"))?;
        if dims != [out, in_ch, k] {
            return Err(OnnxError::Shape {
                name: format!("{p}.conv.weight"),
                dims,
                expected: vec![out, in_ch, k],
            });
        }
        let wn = g.init(tensor_f32(&format!("{p}.conv.weight"), &dims, &kw));
        let mut inputs = vec![x.clone(), wn];
        if c.conv_bias {
            let (_, b) = w.get(&format!("{p}.conv.bias"))?;
            inputs.push(g.init(tensor_f32(&format!("{p}.conv.bias"), &[out], &b)));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        x = g.node(
            "Conv",
            &refs,
            vec![
                attr_ints("kernel_shape", &[k as i64]),
                attr_ints("strides", &[s as i64]),
            ],
        );
        match (c.feat_extract_norm.as_str(), i) {
            ("group", 0) => {
                // GroupNorm with one group per channel is instance normalisation.
                let (_, gw) = w.get(&format!("{p}.layer_norm.weight"))?;
                let (_, gb) = w.get(&format!("{p}.layer_norm.bias"))?;
                let gwn = g.init(tensor_f32(&format!("{p}.layer_norm.weight"), &[out], &gw));
                let gbn = g.init(tensor_f32(&format!("{p}.layer_norm.bias"), &[out], &gb));
                x = g.node(
                    "InstanceNormalization",
                    &[&x, &gwn, &gbn],
                    vec![attr_float("epsilon", 1e-5)],
                );
            }
            ("layer", _) => {
                let t = g.transpose(&x, &[0, 2, 1]);
                let n = g.layer_norm(w, &format!("{p}.layer_norm"), &t, eps)?;
                x = g.transpose(&n, &[0, 2, 1]);
            }
            _ => {}
        }
        x = g.gelu(&x);
        in_ch = out;
    }
    // Feature projection.
    let t = g.transpose(&x, &[0, 2, 1]);
    let n = g.layer_norm(w, "wav2vec2.feature_projection.layer_norm", &t, eps)?;
    let mut h = g.linear(w, "wav2vec2.feature_projection.projection", &n, 1.0)?;
    // Positional convolution (weight norm folded).
    let pc = "wav2vec2.encoder.pos_conv_embed.conv";
    let (gv, vv) = if w.has(&format!("{pc}.parametrizations.weight.original0")) {
        (
            w.get(&format!("{pc}.parametrizations.weight.original0"))?,
            w.get(&format!("{pc}.parametrizations.weight.original1"))?,
        )
    } else {
        (
            w.get(&format!("{pc}.weight_g"))?,
            w.get(&format!("{pc}.weight_v"))?,
        )
    };
    let (vdims, v) = vv;
    let k = vdims[2];
    let mut norms = vec![0f64; k];
    for (i, x) in v.iter().enumerate() {
        norms[i % k] += (*x as f64).powi(2);
    }
    let weight: Vec<f32> = v
        .iter()
        .enumerate()
        .map(|(i, x)| (*x as f64 / norms[i % k].sqrt() * gv.1[i % k] as f64) as f32)
        .collect();
    let pw = g.init(tensor_f32(&format!("{pc}.weight"), &vdims, &weight));
    let (_, pb_) = w.get(&format!("{pc}.bias"))?;
    let pbn = g.init(tensor_f32(&format!("{pc}.bias"), &[c.hidden_size], &pb_));
    let ht = g.transpose(&h, &[0, 2, 1]);
    let mut pos = g.node(
        "Conv",
        &[&ht, &pw, &pbn],
        vec![
            attr_ints("kernel_shape", &[k as i64]),
            attr_ints("pads", &[(k / 2) as i64, (k / 2) as i64]),
            attr_int("group", c.num_conv_pos_embedding_groups as i64),
        ],
    );
    if k % 2 == 0 {
        let starts = g.ints("starts", &[0]);
        let ends = g.ints("ends", &[-1]);
        let axes = g.ints("axes", &[2]);
        pos = g.node("Slice", &[&pos, &starts, &ends, &axes], vec![]);
    }
    let pos = g.gelu(&pos);
    let pos = g.transpose(&pos, &[0, 2, 1]);
    h = g.node("Add", &[&h, &pos], vec![]);
    let stable = c.do_stable_layer_norm;
    if !stable {
        h = g.layer_norm(w, "wav2vec2.encoder.layer_norm", &h, eps)?;
    }
    let heads = c.num_attention_heads as i64;
    let d = c.hidden_size as i64 / heads;
    let scale = (d as f32).powf(-0.5);
    for i in 0..c.num_hidden_layers {
        let p = format!("wav2vec2.encoder.layers.{i}");
        let attn_in = if stable {
            g.layer_norm(w, &format!("{p}.layer_norm"), &h, eps)?
        } else {
            h.clone()
        };
        let q = g.linear(w, &format!("{p}.attention.q_proj"), &attn_in, scale)?;
        let kk = g.linear(w, &format!("{p}.attention.k_proj"), &attn_in, 1.0)?;
        let v = g.linear(w, &format!("{p}.attention.v_proj"), &attn_in, 1.0)?;
        let q = g.reshape(&q, &[0, 0, heads, d]);
        let q = g.transpose(&q, &[0, 2, 1, 3]);
        let kk = g.reshape(&kk, &[0, 0, heads, d]);
        let kk = g.transpose(&kk, &[0, 2, 3, 1]);
        let v = g.reshape(&v, &[0, 0, heads, d]);
        let v = g.transpose(&v, &[0, 2, 1, 3]);
        let scores = g.node("MatMul", &[&q, &kk], vec![]);
        let probs = g.node("Softmax", &[&scores], vec![attr_int("axis", -1)]);
        let ctx = g.node("MatMul", &[&probs, &v], vec![]);
        let ctx = g.transpose(&ctx, &[0, 2, 1, 3]);
        let ctx = g.reshape(&ctx, &[0, 0, c.hidden_size as i64]);
        let a = g.linear(w, &format!("{p}.attention.out_proj"), &ctx, 1.0)?;
        let ff = |g: &mut GraphBuilder, x: &str| -> Result<String> {
            let y = g.linear(w, &format!("{p}.feed_forward.intermediate_dense"), x, 1.0)?;
            let y = g.gelu(&y);
            g.linear(w, &format!("{p}.feed_forward.output_dense"), &y, 1.0)
        };
        if stable {
            let x1 = g.node("Add", &[&h, &a], vec![]);
            let n = g.layer_norm(w, &format!("{p}.final_layer_norm"), &x1, eps)?;
            let f = ff(&mut g, &n)?;
            h = g.node("Add", &[&x1, &f], vec![]);
        } else {
            let x1 = g.node("Add", &[&h, &a], vec![]);
            let x1 = g.layer_norm(w, &format!("{p}.layer_norm"), &x1, eps)?;
            let f = ff(&mut g, &x1)?;
            let x2 = g.node("Add", &[&x1, &f], vec![]);
            h = g.layer_norm(w, &format!("{p}.final_layer_norm"), &x2, eps)?;
        }
    }
    if stable {
        h = g.layer_norm(w, "wav2vec2.encoder.layer_norm", &h, eps)?;
    }
    let logits = g.linear(w, "lm_head", &h, 1.0)?;
    g.node_named("Identity", &[&logits], vec![], "logits");

    let vocab = c.vocab_size.to_string();
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "sangdam-host".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: g.nodes,
            name: "wav2vec2_ctc".into(),
            initializer: g.initializers,
            input: vec![value_info("input_values", &["batch", "samples"])],
            output: vec![value_info("logits", &["batch", "frames", &vocab])],
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `sangdam-host export`: the ONNX model of `checkpoint` written to `out`, with the
/// checkpoint's `vocab.json` copied next to it; returns the model's size in bytes.
pub fn export_to(checkpoint: &Path, out: &Path) -> Result<u64> {
    let bytes = export(checkpoint)?;
    std::fs::write(out, &bytes).map_err(|source| OnnxError::Write {
        path: out.to_owned(),
        source,
    })?;
    let vocab = checkpoint.join("vocab.json");
    if vocab.exists() {
        let dest = out.with_file_name("vocab.json");
        if dest != vocab {
            std::fs::copy(&vocab, &dest).map_err(|source| OnnxError::Copy {
                from: vocab.clone(),
                to: dest.clone(),
                source,
            })?;
        }
    }
    Ok(bytes.len() as u64)
}

/// Reads an ONNX file into tract's protobuf types.
pub fn read_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read {
        path: path.to_owned(),
        source,
    })?;
    ModelProto::decode(bytes.as_slice()).map_err(|source| OnnxError::NotOnnx {
        path: path.to_owned(),
        source,
    })
}
