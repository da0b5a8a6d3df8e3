//! ONNX export of the sentiment network, the same computation as [`super::net::Net`]:
//! inputs `chars [batch, chars]` and `ngrams [batch, ngrams]` (int64, 0 padding),
//! output `logits [batch, 2]`. Opset 17. A fused model's TF-IDF part
//! ([`super::fuse`]) adds the inputs `tfidf_ids [batch, tfidf]` (int64) and `tfidf_tf
//! [batch, tfidf]` (f32) and its margin to the positive logit.

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use prost::Message;
use tract_onnx::pb::{tensor_proto::DataType, GraphProto, ModelProto, OperatorSetIdProto};

use super::fuse::{FuseError, TfidfPart};
use super::net::{Net, NetError};
use super::train::SentimentTrainError;
use crate::onnx::quantize::{QuantizeError, Summary};
use crate::onnx::{attr_int, attr_ints, tensor_f32, value_info_typed, GraphBuilder, OPSET};

/// Why a trained network cannot be exported or quantized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A parameter the graph needs ([`Net::get`]).
    #[error(transparent)]
    Net(#[from] NetError),
    /// Reading a parameter's values.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The network's `tfidf_buckets` and the TF-IDF tables disagree: tables for a plain
    /// network, or none for a fused one.
    #[error(
        "the network's config says tfidf_buckets = {buckets} but the TF-IDF tables were {}",
        if *given { "given" } else { "not found (tfidf.safetensors)" }
    )]
    TfidfMismatch { buckets: usize, given: bool },
    #[error("TF-IDF tables of {weight} and {idf} rows for tfidf_buckets = {buckets}")]
    TfidfRows {
        weight: usize,
        idf: usize,
        buckets: usize,
    },
    /// The training folder's network ([`super::train::load`]).
    #[error(transparent)]
    Load(Box<SentimentTrainError>),
    /// The folder's `tfidf.safetensors` ([`TfidfPart::load`]).
    #[error(transparent)]
    Tfidf(#[from] FuseError),
    /// The int8 rewrite ([`crate::onnx::quantize::quantize`]).
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<SentimentTrainError> for ExportError {
    fn from(e: SentimentTrainError) -> Self {
        ExportError::Load(Box::new(e))
    }
}

type Result<T, E = ExportError> = std::result::Result<T, E>;

fn values(t: &Tensor) -> Result<(Vec<usize>, Vec<f32>)> {
    Ok((t.dims().to_vec(), t.flatten_all()?.to_vec1::<f32>()?))
}

/// `x @ W^T + b` for a `[out, in]` weight named `prefix.weight`.
fn linear(g: &mut GraphBuilder, net: &Net, prefix: &str, x: &str) -> Result<String> {
    let (dims, w) = values(&net.get(&format!("{prefix}.weight"))?)?;
    let (out, inp) = (dims[0], dims[1]);
    let mut wt = vec![0f32; w.len()];
    for r in 0..out {
        for c in 0..inp {
            wt[c * out + r] = w[r * inp + c];
        }
    }
    let wn = g.init(tensor_f32(&format!("{prefix}.weight"), &[inp, out], &wt));
    let y = g.node("MatMul", &[x, &wn], vec![]);
    let (bd, b) = values(&net.get(&format!("{prefix}.bias"))?)?;
    let bn = g.init(tensor_f32(&format!("{prefix}.bias"), &bd, &b));
    Ok(g.node("Add", &[&y, &bn], vec![]))
}

/// `Cast(ids > 0)` as f32: 1 for real tokens, 0 for padding.
fn mask(g: &mut GraphBuilder, ids: &str) -> String {
    let zero = g.fresh("zero");
    g.init(crate::onnx::tensor_i64(&zero, &[], &[0]));
    let gt = g.node("Greater", &[ids, &zero], vec![]);
    g.node("Cast", &[&gt], vec![attr_int("to", DataType::Float as i64)])
}

/// How a 1-D table is stored in the int8 model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Table {
    /// f32 as trained.
    F32,
    /// Companded int8 for values of both signs whose magnitudes span decades (the
    /// linear part's weights): `v = max · sign(q) · (q / 127)²`, so a weight a hundredth
    /// of the largest keeps about 5% precision instead of rounding to zero or one step.
    Sqrt8,
    /// Affine int8 for values in a narrow positive range (idf lies in [1, 1 + ln n]):
    /// `v = offset + scale · q` over the table's own range, twice the resolution of a
    /// scale around zero.
    Affine8,
}

/// Quantises a 1-D table to int8 with `v = max · sign(q) · (q / 127)²`; returns the codes
/// and `max / 127²`.
fn sqrt8_table(values: &[f32]) -> (Vec<i8>, f32) {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max = if max > 0.0 { max } else { 1.0 };
    let q = values
        .iter()
        .map(|v| {
            (v.signum() * 127.0 * (v.abs() / max).sqrt())
                .round()
                .clamp(-127.0, 127.0) as i8
        })
        .collect();
    (q, max / (127.0 * 127.0))
}

/// Quantises a 1-D table to int8 with `v = offset + scale · q` spanning its range;
/// returns the codes, the scale and the offset.
fn affine8_table(values: &[f32]) -> (Vec<i8>, f32, f32) {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if values.is_empty() || hi <= lo {
        let offset = if values.is_empty() { 0.0 } else { lo };
        return (vec![0; values.len()], 1.0, offset);
    }
    let scale = (hi - lo) / 254.0;
    let offset = (hi + lo) / 2.0;
    let q = values
        .iter()
        .map(|v| ((v - offset) / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scale, offset)
}

/// The dequantised values of a table stored as `coding` (what the graph computes).
#[cfg(test)]
fn stored(values: &[f32], coding: Table) -> Vec<f32> {
    match coding {
        Table::F32 => values.to_vec(),
        Table::Sqrt8 => {
            let (q, s) = sqrt8_table(values);
            q.iter().map(|&q| q as f32 * (q as f32).abs() * s).collect()
        }
        Table::Affine8 => {
            let (q, s, o) = affine8_table(values);
            q.iter().map(|&q| q as f32 * s + o).collect()
        }
    }
}

/// `table[ids]` for a 1-D table stored as `coding`.
fn gather_1d(g: &mut GraphBuilder, name: &str, values: &[f32], coding: Table, ids: &str) -> String {
    let codes = |g: &mut GraphBuilder, suffix: &str, q: &[i8]| {
        let t = g.init(crate::onnx::tensor_i8(
            &format!("{name}_{suffix}"),
            &[values.len()],
            q,
        ));
        let rows = g.node("Gather", &[&t, ids], vec![attr_int("axis", 0)]);
        g.node(
            "Cast",
            &[&rows],
            vec![attr_int("to", DataType::Float as i64)],
        )
    };
    match coding {
        Table::F32 => {
            let t = g.init(tensor_f32(name, &[values.len()], values));
            g.node("Gather", &[&t, ids], vec![attr_int("axis", 0)])
        }
        Table::Sqrt8 => {
            let (q, scale) = sqrt8_table(values);
            let rows = codes(g, "sqrt8", &q);
            let magnitude = g.node("Abs", &[&rows], vec![]);
            let squared = g.node("Mul", &[&rows, &magnitude], vec![]);
            let s = g.scalar(&format!("{name}_sqrt8_scale"), scale);
            g.node("Mul", &[&squared, &s], vec![])
        }
        Table::Affine8 => {
            let (q, scale, offset) = affine8_table(values);
            let rows = codes(g, "affine8", &q);
            let s = g.scalar(&format!("{name}_affine8_scale"), scale);
            let scaled = g.node("Mul", &[&rows, &s], vec![]);
            let o = g.scalar(&format!("{name}_affine8_offset"), offset);
            g.node("Add", &[&scaled, &o], vec![])
        }
    }
}

/// The graph of `net` (no TF-IDF part).
pub fn build(net: &Net) -> Result<ModelProto> {
    build_with(net, None, false)
}

/// The graph of `net` with its TF-IDF part (required when `net.config.tfidf_buckets` is
/// set), the part's two tables stored int8 when `int8_tfidf` (the quantiser leaves
/// 1-D tables alone).
pub fn build_with(net: &Net, tfidf: Option<&TfidfPart>, int8_tfidf: bool) -> Result<ModelProto> {
    let c = &net.config;
    if (c.tfidf_buckets > 0) != tfidf.is_some() {
        return Err(ExportError::TfidfMismatch {
            buckets: c.tfidf_buckets,
            given: tfidf.is_some(),
        });
    }
    if let Some(t) = tfidf {
        if t.weight.len() != c.tfidf_buckets || t.idf.len() != c.tfidf_buckets {
            return Err(ExportError::TfidfRows {
                weight: t.weight.len(),
                idf: t.idf.len(),
                buckets: c.tfidf_buckets,
            });
        }
    }
    let mut g = GraphBuilder::default();
    let mut feats = Vec::new();
    if !c.kernels.is_empty() {
        let (d, e) = values(&net.get("char_emb.weight")?)?;
        let en = g.init(tensor_f32("char_emb.weight", &d, &e));
        let emb = g.node("Gather", &[&en, "chars"], vec![attr_int("axis", 0)]); // [b, l, e]
        let emb = g.transpose(&emb, &[0, 2, 1]);
        let m = mask(&mut g, "chars");
        let axes1 = g.ints("axes", &[1]);
        let m = g.node("Unsqueeze", &[&m, &axes1], vec![]); // [b, 1, l]
        let emb = g.node("Mul", &[&emb, &m], vec![]);
        for &k in &c.kernels {
            let (wd, w) = values(&net.get(&format!("conv{k}.weight"))?)?;
            let (bd, b) = values(&net.get(&format!("conv{k}.bias"))?)?;
            let wn = g.init(tensor_f32(&format!("conv{k}.weight"), &wd, &w));
            let bn = g.init(tensor_f32(&format!("conv{k}.bias"), &bd, &b));
            let pad = (k / 2) as i64;
            let y = g.node(
                "Conv",
                &[&emb, &wn, &bn],
                vec![
                    attr_ints("kernel_shape", &[k as i64]),
                    attr_ints("pads", &[pad, pad]),
                ],
            );
            let y = g.node("Relu", &[&y], vec![]);
            let y = g.node("Mul", &[&y, &m], vec![]);
            feats.push(g.node(
                "ReduceMax",
                &[&y],
                vec![attr_ints("axes", &[2]), attr_int("keepdims", 0)],
            ));
        }
    }
    let mut wide = None;
    if c.ngram_columns() > 0 {
        let (d, e) = values(&net.get("ngram_emb.weight")?)?;
        let en = g.init(tensor_f32("ngram_emb.weight", &d, &e));
        let emb = g.node("Gather", &[&en, "ngrams"], vec![attr_int("axis", 0)]); // [b, l, d]
        let m = mask(&mut g, "ngrams"); // [b, l]
        let axes2 = g.ints("axes", &[2]);
        let m3 = g.node("Unsqueeze", &[&m, &axes2], vec![]);
        let masked = g.node("Mul", &[&emb, &m3], vec![]);
        let axes1 = g.ints("axes", &[1]);
        let sum = g.node(
            "ReduceSum",
            &[&masked, &axes1],
            vec![attr_int("keepdims", 0)],
        );
        let count = g.node("ReduceSum", &[&m, &axes1], vec![attr_int("keepdims", 1)]);
        let one = g.scalar("one", 1.0);
        let count = g.node("Max", &[&count, &one], vec![]);
        let columns = |g: &mut GraphBuilder, from: usize, to: usize| {
            let starts = g.ints("starts", &[from as i64]);
            let ends = g.ints("ends", &[to as i64]);
            let axes = g.ints("axes", &[1]);
            g.node("Slice", &[&sum, &starts, &ends, &axes], vec![])
        };
        if c.ngram_dim > 0 {
            let deep = if c.wide {
                columns(&mut g, 0, c.ngram_dim)
            } else {
                sum.clone()
            };
            feats.push(g.node("Div", &[&deep, &count], vec![]));
        }
        if c.wide {
            let w = columns(&mut g, c.ngram_dim, c.ngram_dim + 1); // [b, 1]
            let root = g.node("Sqrt", &[&count], vec![]);
            let w = g.node("Div", &[&w, &root], vec![]);
            let to_positive = g.fresh("to_positive");
            g.init(tensor_f32(&to_positive, &[1, 2], &[0.0, c.wide_scale]));
            wide = Some(g.node("Mul", &[&w, &to_positive], vec![])); // [b, 2]
        }
    }
    let mut tfidf_margin = None;
    if let Some(t) = tfidf {
        // x = tf * idf per distinct n-gram, z = (w . x) / |x|: the baseline's l2-normalised
        // TF-IDF row times its weights. Padding has tf 0, so it adds nothing anywhere.
        let (weight_coding, idf_coding) = if int8_tfidf {
            (Table::Sqrt8, Table::Affine8)
        } else {
            (Table::F32, Table::F32)
        };
        let w = gather_1d(
            &mut g,
            "tfidf.weight",
            &t.weight,
            weight_coding,
            "tfidf_ids",
        );
        let idf = gather_1d(&mut g, "tfidf.idf", &t.idf, idf_coding, "tfidf_ids");
        let x = g.node("Mul", &[&idf, "tfidf_tf"], vec![]);
        let axes1 = g.ints("axes", &[1]);
        let sq = g.node("Mul", &[&x, &x], vec![]);
        let norm = g.node("ReduceSum", &[&sq, &axes1], vec![attr_int("keepdims", 1)]);
        let norm = g.node("Sqrt", &[&norm], vec![]);
        let tiny = g.scalar("tiny", 1e-12);
        let norm = g.node("Max", &[&norm, &tiny], vec![]);
        let wx = g.node("Mul", &[&w, &x], vec![]);
        let dot = g.node("ReduceSum", &[&wx, &axes1], vec![attr_int("keepdims", 1)]);
        let z = g.node("Div", &[&dot, &norm], vec![]); // [b, 1]
        let to_positive = g.fresh("tfidf_to_positive");
        g.init(tensor_f32(&to_positive, &[1, 2], &[0.0, 1.0]));
        tfidf_margin = Some(g.node("Mul", &[&z, &to_positive], vec![])); // [b, 2]
    }
    let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
    let x = if refs.len() == 1 {
        feats[0].clone()
    } else {
        g.node("Concat", &refs, vec![attr_int("axis", 1)])
    };
    let h = linear(&mut g, net, "fc1", &x)?;
    let h = g.node("Relu", &[&h], vec![]);
    let mut logits = linear(&mut g, net, "fc2", &h)?;
    if let Some(w) = wide {
        logits = g.node("Add", &[&logits, &w], vec![]);
    }
    if let Some(l) = tfidf_margin {
        logits = g.node("Add", &[&logits, &l], vec![]);
    }
    let mut inputs = vec![
        value_info_typed("chars", DataType::Int64, &["batch", "chars"]),
        value_info_typed("ngrams", DataType::Int64, &["batch", "ngrams"]),
    ];
    if tfidf.is_some() {
        inputs.push(value_info_typed(
            "tfidf_ids",
            DataType::Int64,
            &["batch", "tfidf"],
        ));
        inputs.push(value_info_typed(
            "tfidf_tf",
            DataType::Float,
            &["batch", "tfidf"],
        ));
    }
    g.node_named("Identity", &[&logits], vec![], "logits");
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
            name: "sangdam_sentiment".into(),
            initializer: g.initializers,
            input: inputs,
            output: vec![value_info_typed("logits", DataType::Float, &["batch", "2"])],
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn export(net: &Net) -> Result<Vec<u8>> {
    Ok(build(net)?.encode_to_vec())
}

/// Exports the trained network in `dir` to `dir/model.onnx` and its int8 variants:
/// `dir/model.int8.onnx`, the shipped one (embedding and TF-IDF tables int8, linear
/// layers and convolutions with int8 weights and f32 arithmetic: [`quantized`]), and
/// `dir/model.int8-dynamic.onnx` (the same tables, linear layers dynamic int8, the small
/// convolutions f32: [`quantized_dynamic`]), kept for the comparison in BENCHMARKS.md.
pub fn export_dir(dir: &Path) -> Result<(PathBuf, PathBuf, Summary)> {
    let write = |path: &Path, model: &ModelProto| {
        std::fs::write(path, model.encode_to_vec()).map_err(|source| ExportError::Write {
            path: path.to_owned(),
            source,
        })
    };
    let (net, _) = super::train::load(dir)?;
    let tfidf = if net.config.tfidf_buckets > 0 {
        Some(TfidfPart::load(&dir.join("tfidf.safetensors"))?)
    } else {
        None
    };
    let model = build_with(&net, tfidf.as_ref(), false)?;
    let f32_path = dir.join("model.onnx");
    write(&f32_path, &model)?;
    let int8_tables = build_with(&net, tfidf.as_ref(), true)?;
    let (dynamic, _) = quantized_dynamic(int8_tables.clone())?;
    let dynamic_path = dir.join("model.int8-dynamic.onnx");
    write(&dynamic_path, &dynamic)?;
    let (int8, summary) = quantized(int8_tables)?;
    let int8_path = dir.join("model.int8.onnx");
    write(&int8_path, &int8)?;
    Ok((f32_path, int8_path, summary))
}

/// The shipped int8 rewrite of an exported sentiment graph: embedding tables int8 per
/// row; MatMul and Conv weights int8 per output channel, dequantised once at load, so
/// the arithmetic stays f32 (the weights are rounded, the activations are not). Same
/// size as [`quantized_dynamic`]; chosen for it because only the weights are rounded and
/// f32 arithmetic was the faster on x86 (BENCHMARKS.md).
pub fn quantized(mut model: ModelProto) -> Result<(ModelProto, Summary)> {
    use crate::onnx::quantize::{quantize, Variant};
    let summary = quantize(&mut model, Variant::WeightOnly)?;
    Ok((model, summary))
}

/// The earlier int8 rewrite: embedding tables int8 per row, MatMul dynamic int8
/// (activations quantised per run), convolutions left f32.
pub fn quantized_dynamic(mut model: ModelProto) -> Result<(ModelProto, Summary)> {
    use crate::onnx::quantize::{quantize, Variant};
    let summary = quantize(
        &mut model,
        Variant::Dynamic {
            convs: false,
            keep_f32_convs: 0,
        },
    )?;
    Ok((model, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old coding, one scale for the whole table: `v = q · max / 127`.
    fn linear8(values: &[f32]) -> Vec<f32> {
        let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = max / 127.0;
        values
            .iter()
            .map(|v| (v / s).round().clamp(-127.0, 127.0) * s)
            .collect()
    }

    /// Weights of both signs over four decades, as a linear model's hashed weights are.
    fn heavy_tailed(n: usize) -> Vec<f32> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f32 / (1u64 << 53) as f32;
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                sign * 3.0 * 10f32.powf(-4.0 * u)
            })
            .collect()
    }

    #[test]
    fn companded_weights_keep_small_weights_that_one_scale_rounds_away() {
        let w = heavy_tailed(20_000);
        let (sqrt8, lin) = (stored(&w, Table::Sqrt8), linear8(&w));
        let max = 3.0f32;
        let (mut rel_sqrt, mut rel_lin, mut n) = (0f32, 0f32, 0);
        for ((&v, &a), &b) in w.iter().zip(&sqrt8).zip(&lin) {
            assert!(a * v >= 0.0, "sign of {v} lost: {a}");
            assert!((a - v).abs() <= 2.0 * max / 127.0, "{v} stored as {a}");
            if v.abs() > max / 1000.0 && v.abs() < max / 10.0 {
                rel_sqrt += (a - v).abs() / v.abs();
                rel_lin += (b - v).abs() / v.abs();
                n += 1;
            }
        }
        let (rel_sqrt, rel_lin) = (rel_sqrt / n as f32, rel_lin / n as f32);
        assert!(n > 5_000, "{n} weights in the middle decades");
        assert!(rel_sqrt < 0.06, "companded: mean relative error {rel_sqrt}");
        assert!(
            rel_sqrt * 4.0 < rel_lin,
            "companded {rel_sqrt} vs one scale {rel_lin}"
        );
        // The largest weight is exact in both.
        let top = w
            .iter()
            .position(|v| v.abs() == w.iter().fold(0f32, |m, v| m.max(v.abs())));
        let top = top.unwrap();
        assert!((sqrt8[top] - w[top]).abs() < 1e-6 * max);
    }

    #[test]
    fn affine_idf_spans_its_own_range_at_twice_the_resolution() {
        // Smooth idf of document frequencies 0..n: 1 + ln((1 + n) / (1 + df)).
        let n = 150_000f32;
        let idf: Vec<f32> = (0..5_000)
            .map(|i| 1.0 + ((1.0 + n) / (1.0 + (i * i) as f32 % n)).ln())
            .collect();
        let (lo, hi) = idf
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let affine = stored(&idf, Table::Affine8);
        let lin = linear8(&idf);
        let worst = |s: &[f32]| {
            idf.iter()
                .zip(s)
                .fold(0f32, |m, (&v, &a)| m.max((a - v).abs()))
        };
        let step = (hi - lo) / 254.0;
        assert!(
            worst(&affine) <= step / 2.0 + 1e-5,
            "{} > {}",
            worst(&affine),
            step / 2.0
        );
        assert!(
            worst(&affine) * 1.9 < worst(&lin),
            "{} vs {}",
            worst(&affine),
            worst(&lin)
        );
        // A constant table is stored exactly.
        assert_eq!(stored(&[2.5; 4], Table::Affine8), vec![2.5; 4]);
        assert!(stored(&[], Table::Affine8).is_empty());
    }
}
