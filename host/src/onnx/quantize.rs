//! int8 rewrites of an f32 ONNX graph, all with symmetric per-output-channel weight
//! scales (zero point 0):
//!
//! - [`Variant::Dynamic`]: a `MatMul` by a constant `[in, out]` weight becomes
//!   `DynamicQuantizeLinear` of the activations, `MatMulInteger` by int8 weights, and a
//!   rescale (activation scale × per-column weight scale); convolutions likewise become
//!   `ConvInteger`, except the first `keep_f32_convs` (raw audio does not survive eight
//!   bits well). This is onnxruntime's `quantize_dynamic` with per-channel weights.
//! - [`Variant::WeightOnly`]: weights are stored as int8 and expanded by
//!   `DequantizeLinear` when the model loads; arithmetic stays f32, the file shrinks
//!   four-fold.
//!
//! In every variant an embedding table read by `Gather` is stored int8 with a scale per
//! row, and only the gathered rows are turned back into f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tract_onnx::pb::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};

use super::{attr_int, f32_values, tensor_f32, tensor_i64, tensor_i8, OnnxError};

/// Why a variant name is not one, or a graph cannot be quantized or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    #[error("variant {variant}: dynamic-keepN needs a number")]
    KeepCount {
        variant: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("unknown quantization variant {0} (dynamic-matmul, dynamic-all, dynamic-keepN, weight-only)")]
    UnknownVariant(String),
    #[error("the ONNX model has no graph")]
    NoGraph,
    #[error("conv bias {name} is not a constant")]
    BiasNotConstant { name: String },
    /// Reading the model ([`super::read_model`]).
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = QuantizeError> = std::result::Result<T, E>;

/// How to quantize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Dynamic int8 activations × int8 weights. Convolutions after the first
    /// `keep_f32_convs` become `ConvInteger` when `convs` is set.
    Dynamic { convs: bool, keep_f32_convs: usize },
    /// int8 weights, f32 arithmetic.
    WeightOnly,
}

impl Variant {
    /// Parses the names the command line and reports use.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "dynamic-matmul" => Variant::Dynamic {
                convs: false,
                keep_f32_convs: 0,
            },
            "dynamic-all" => Variant::Dynamic {
                convs: true,
                keep_f32_convs: 0,
            },
            "weight-only" => Variant::WeightOnly,
            _ => {
                if let Some(n) = s.strip_prefix("dynamic-keep") {
                    let n: usize = n.parse().map_err(|source| QuantizeError::KeepCount {
                        variant: s.to_owned(),
                        source,
                    })?;
                    Variant::Dynamic {
                        convs: true,
                        keep_f32_convs: n,
                    }
                } else {
                    return Err(QuantizeError::UnknownVariant(s.to_owned()));
                }
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Variant::Dynamic { convs: false, .. } => "dynamic-matmul".into(),
            Variant::Dynamic {
                convs: true,
                keep_f32_convs: 0,
            } => "dynamic-all".into(),
            Variant::Dynamic {
                convs: true,
                keep_f32_convs: n,
            } => format!("dynamic-keep{n}"),
            Variant::WeightOnly => "weight-only".into(),
        }
    }
}

/// What a rewrite changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub matmuls: usize,
    pub convs: usize,
    pub kept_f32: usize,
    /// Embedding tables (`Gather` of a constant) stored int8 with a scale per row.
    pub gathers: usize,
}

/// Symmetric int8 per channel: `axis` is the channel axis of `dims`; returns the int8
/// values and one scale per channel.
pub fn quantize_per_channel(dims: &[usize], w: &[f32], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let channels = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut max = vec![0f32; channels];
    for (i, v) in w.iter().enumerate() {
        let c = (i / inner) % channels;
        max[c] = max[c].max(v.abs());
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|m| if *m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / inner) % channels;
            (v / scales[c]).round().clamp(-127.0, 127.0) as i8
        })
        .collect();
    (q, scales)
}

struct Rewriter {
    inits: HashMap<String, TensorProto>,
    order: Vec<String>,
    new_nodes: Vec<NodeProto>,
    counter: usize,
}

impl Rewriter {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("q_{hint}_{}", self.counter)
    }

    fn add_init(&mut self, t: TensorProto) -> String {
        let name = t.name.clone();
        if !self.inits.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.inits.insert(name.clone(), t);
        name
    }

    fn push(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attrs: Vec<tract_onnx::pb::AttributeProto>,
    ) {
        let name = self.fresh(op);
        self.new_nodes.push(NodeProto {
            input: inputs,
            output: outputs,
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn const_weight(&self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let t = self.inits.get(name)?;
        if t.data_type != DataType::Float as i32 {
            return None;
        }
        Some((
            t.dims.iter().map(|&d| d as usize).collect(),
            f32_values(t).ok()?,
        ))
    }

    /// `DynamicQuantizeLinear(x)`: returns (quantized, scale, zero point) names.
    fn dynamic_quantize(&mut self, x: &str) -> (String, String, String) {
        let (q, s, z) = (self.fresh("xq"), self.fresh("xs"), self.fresh("xz"));
        self.push(
            "DynamicQuantizeLinear",
            vec![x.into()],
            vec![q.clone(), s.clone(), z.clone()],
            vec![],
        );
        (q, s, z)
    }
}

/// Rewrites `model` in place; returns what changed.
pub fn quantize(model: &mut ModelProto, variant: Variant) -> Result<Summary> {
    let graph = model.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
    let mut rw = Rewriter {
        order: graph.initializer.iter().map(|t| t.name.clone()).collect(),
        inits: graph
            .initializer
            .drain(..)
            .map(|t| (t.name.clone(), t))
            .collect(),
        new_nodes: Vec::new(),
        counter: 0,
    };
    let mut summary = Summary::default();
    let mut conv_index = 0usize;
    let nodes = std::mem::take(&mut graph.node);
    for node in nodes {
        if node.op_type == "Gather" {
            if let Some((dims, values)) = rw.const_weight(&node.input[0]) {
                if dims.len() == 2 {
                    gather_int8(&mut rw, &node, &dims, &values);
                    summary.gathers += 1;
                    continue;
                }
            }
        }
        let is_conv = node.op_type == "Conv";
        let weight = node
            .input
            .get(1)
            .and_then(|w| rw.const_weight(w).map(|cw| (w.clone(), cw)));
        let this_conv = conv_index;
        if is_conv {
            conv_index += 1;
        }
        let Some((wname, (dims, values))) = weight else {
            rw.new_nodes.push(node);
            continue;
        };
        match (node.op_type.as_str(), variant) {
            ("MatMul", _) if dims.len() == 2 => {
                let (q, scales) = quantize_per_channel(&dims, &values, 1);
                match variant {
                    Variant::WeightOnly => {
                        let deq = dequantized(&mut rw, &wname, &dims, &q, &scales, 1);
                        rw.push(
                            "MatMul",
                            vec![node.input[0].clone(), deq],
                            node.output.clone(),
                            vec![],
                        );
                    }
                    Variant::Dynamic { .. } => {
                        let qn = rw.add_init(tensor_i8(&format!("{wname}_int8"), &dims, &q));
                        let sn =
                            rw.add_init(tensor_f32(&format!("{wname}_scale"), &[dims[1]], &scales));
                        let (xq, xs, xz) = rw.dynamic_quantize(&node.input[0]);
                        let y32 = rw.fresh("y32");
                        rw.push("MatMulInteger", vec![xq, qn, xz], vec![y32.clone()], vec![]);
                        rescale(&mut rw, &y32, &xs, &sn, &node.output[0]);
                    }
                }
                summary.matmuls += 1;
            }
            ("Conv", _) if dims.len() == 3 => {
                let (q, scales) = quantize_per_channel(&dims, &values, 0);
                match variant {
                    Variant::WeightOnly => {
                        let deq = dequantized(&mut rw, &wname, &dims, &q, &scales, 0);
                        let mut inputs = node.input.clone();
                        inputs[1] = deq;
                        rw.push("Conv", inputs, node.output.clone(), node.attribute.clone());
                        summary.convs += 1;
                    }
                    Variant::Dynamic {
                        convs,
                        keep_f32_convs,
                    } if convs && this_conv >= keep_f32_convs => {
                        let qn = rw.add_init(tensor_i8(&format!("{wname}_int8"), &dims, &q));
                        let sn = rw.add_init(tensor_f32(
                            &format!("{wname}_scale"),
                            &[dims[0], 1],
                            &scales,
                        ));
                        let (xq, xs, xz) = rw.dynamic_quantize(&node.input[0]);
                        let y32 = rw.fresh("y32");
                        rw.push(
                            "ConvInteger",
                            vec![xq, qn, xz],
                            vec![y32.clone()],
                            node.attribute.clone(),
                        );
                        if let Some(bias) = node.input.get(2) {
                            let (bd, bv) = rw.const_weight(bias).ok_or_else(|| {
                                QuantizeError::BiasNotConstant { name: bias.clone() }
                            })?;
                            let scaled = rw.fresh("scaled");
                            rescale(&mut rw, &y32, &xs, &sn, &scaled);
                            let bn =
                                rw.add_init(tensor_f32(&format!("{bias}_col"), &[bd[0], 1], &bv));
                            rw.push("Add", vec![scaled, bn], node.output.clone(), vec![]);
                        } else {
                            rescale(&mut rw, &y32, &xs, &sn, &node.output[0]);
                        }
                        summary.convs += 1;
                    }
                    _ => {
                        summary.kept_f32 += 1;
                        rw.new_nodes.push(node);
                    }
                }
            }
            _ => rw.new_nodes.push(node),
        }
    }
    // Drop initializers nothing reads any more (the f32 originals).
    let used: std::collections::HashSet<&str> = rw
        .new_nodes
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    graph.initializer = rw
        .order
        .iter()
        .filter(|n| used.contains(n.as_str()))
        .filter_map(|n| rw.inits.get(n).cloned())
        .collect();
    graph.node = rw.new_nodes;
    Ok(summary)
}

/// An embedding table read by `Gather`: stored int8 with one scale per row; the rows a
/// text selects are gathered as int8 and only they are scaled back to f32, so the table
/// stays int8 in memory too.
fn gather_int8(rw: &mut Rewriter, node: &NodeProto, dims: &[usize], values: &[f32]) {
    let wname = &node.input[0];
    let (q, scales) = quantize_per_channel(dims, values, 0);
    let qn = rw.add_init(tensor_i8(&format!("{wname}_int8"), dims, &q));
    let sn = rw.add_init(tensor_f32(&format!("{wname}_scale"), &[dims[0]], &scales));
    let ids = node.input[1].clone();
    let rows = rw.fresh("rows_i8");
    rw.push(
        "Gather",
        vec![qn, ids.clone()],
        vec![rows.clone()],
        vec![attr_int("axis", 0)],
    );
    let row_scales = rw.fresh("row_scales");
    rw.push(
        "Gather",
        vec![sn, ids],
        vec![row_scales.clone()],
        vec![attr_int("axis", 0)],
    );
    let axes_name = rw.fresh("last_axis");
    let axes = rw.add_init(tensor_i64(&axes_name, &[1], &[-1]));
    let scales3 = rw.fresh("row_scales3");
    rw.push(
        "Unsqueeze",
        vec![row_scales, axes],
        vec![scales3.clone()],
        vec![],
    );
    let rows_f = rw.fresh("rows_f32");
    rw.push(
        "Cast",
        vec![rows],
        vec![rows_f.clone()],
        vec![attr_int("to", DataType::Float as i64)],
    );
    rw.push("Mul", vec![rows_f, scales3], node.output.clone(), vec![]);
}

fn dequantized(
    rw: &mut Rewriter,
    wname: &str,
    dims: &[usize],
    q: &[i8],
    scales: &[f32],
    axis: usize,
) -> String {
    let qn = rw.add_init(tensor_i8(&format!("{wname}_int8"), dims, q));
    let sn = rw.add_init(tensor_f32(
        &format!("{wname}_scale"),
        &[scales.len()],
        scales,
    ));
    let out = rw.fresh("deq");
    rw.push(
        "DequantizeLinear",
        vec![qn, sn],
        vec![out.clone()],
        vec![attr_int("axis", axis as i64)],
    );
    out
}

/// `out = float(y32) * (x_scale * w_scale)`.
fn rescale(rw: &mut Rewriter, y32: &str, xs: &str, ws: &str, out: &str) {
    let yf = rw.fresh("yf");
    rw.push(
        "Cast",
        vec![y32.into()],
        vec![yf.clone()],
        vec![attr_int("to", DataType::Float as i64)],
    );
    let s = rw.fresh("s");
    rw.push("Mul", vec![xs.into(), ws.into()], vec![s.clone()], vec![]);
    rw.push("Mul", vec![yf, s], vec![out.into()], vec![]);
}

/// `sangdam-host quantize`: the ONNX model at `model` quantized as `variant` and written
/// to `out`. Returns what was quantized and the new model's size in bytes.
pub fn quantize_file(model: &Path, out: &Path, variant: Variant) -> Result<(Summary, u64)> {
    let mut m = super::read_model(model)?;
    let s = quantize(&mut m, variant)?;
    let bytes = prost::Message::encode_to_vec(&m);
    std::fs::write(out, &bytes).map_err(|source| QuantizeError::Write {
        path: out.to_owned(),
        source,
    })?;
    Ok((s, bytes.len() as u64))
}
