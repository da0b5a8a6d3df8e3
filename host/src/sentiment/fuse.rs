//! Stacking: a trained network plus a logistic regression over the same hashed
//! character n-grams the network reads, merged into one graph.
//!
//! Measured on the NSMC-like split, a linear model over character 1-4-grams is as
//! accurate as the network on its own (BENCHMARKS.md), and the two err on different
//! texts. `fuse` trains the linear model on the network's training rows (same seed, same
//! dev split), then fits three numbers on the dev split, `margin = a * network + c *
//! linear + b`, and writes a network whose n-gram table carries the linear weights as
//! its "wide" column ([`NetConfig::wide`]): one model, one tract run, one tokenizer.
//!
//! The linear model's feature for n-gram `g` is `count(g) / sqrt(n)` with `n` the
//! text's number of n-grams: a length-normalised bag the graph computes exactly with a
//! Gather, a masked sum and a square root.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use sangdam::sentiment::{Encoded, Tokenizer};

use super::baseline::{counts, fit_logistic, BaselineSettings, Sparse};
use super::net::{Net, NetConfig};
use super::train::{load, split_rows, SentimentReport};
use super::Example;

/// What a fuse run measured, written as `fuse.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FuseReport {
    pub network_dev_accuracy: f64,
    pub linear_dev_accuracy: f64,
    pub fused_dev_accuracy: f64,
    /// margin = a * network + c * linear + b
    pub a: f32,
    pub c: f32,
    pub b: f32,
    pub linear_epochs: usize,
    pub wide_scale: f32,
}

/// The linear model's features of one encoded text.
pub fn features(tokenizer: &Tokenizer, text: &str) -> Sparse {
    let c = counts(tokenizer, text);
    let n: f32 = c.iter().map(|&(_, k)| k).sum();
    c.into_iter().map(|(j, k)| (j, k / n.sqrt())).collect()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits `p = sigmoid(a x + c y + b)` by Newton's method with step halving (three
/// parameters, convex log-loss), starting from zero.
fn fit_blend(x: &[f32], y: &[f32], labels: &[f32]) -> [f32; 3] {
    let loss = |w: &[f64; 3]| -> f64 {
        (0..x.len())
            .map(|i| {
                let z = w[0] * x[i] as f64 + w[1] * y[i] as f64 + w[2];
                // log(1 + e^z) - label * z, stable for large |z|
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - labels[i] as f64 * z
            })
            .sum()
    };
    let mut w = [0f64; 3];
    let mut current = loss(&w);
    for _ in 0..100 {
        let mut g = [0f64; 3];
        let mut h = [[0f64; 3]; 3];
        for i in 0..x.len() {
            let f = [x[i] as f64, y[i] as f64, 1.0];
            let p = 1.0 / (1.0 + (-(w[0] * f[0] + w[1] * f[1] + w[2])).exp());
            for r in 0..3 {
                g[r] += (p - labels[i] as f64) * f[r];
                for c in 0..3 {
                    h[r][c] += p * (1.0 - p) * f[r] * f[c];
                }
            }
        }
        for (r, row) in h.iter_mut().enumerate() {
            row[r] += 1e-6; // keeps the step defined on separable data
        }
        let step = solve3(h, g);
        let mut t = 1.0;
        let mut next = w;
        let mut next_loss = f64::INFINITY;
        while t > 1e-6 {
            next = [w[0] - t * step[0], w[1] - t * step[1], w[2] - t * step[2]];
            next_loss = loss(&next);
            if next_loss <= current {
                break;
            }
            t /= 2.0;
        }
        if next_loss > current {
            break;
        }
        let done = current - next_loss < 1e-9 * current.max(1.0);
        w = next;
        current = next_loss;
        if done {
            break;
        }
    }
    [w[0] as f32, w[1] as f32, w[2] as f32]
}

/// Solves a 3x3 system by Cramer's rule.
fn solve3(m: [[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    let mut out = [0f64; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let mut mc = m;
        for r in 0..3 {
            mc[r][c] = v[r];
        }
        *o = det(mc) / d;
    }
    out
}

fn accuracy_of(margins: &[f32], dev: &[Example]) -> f64 {
    let p: Vec<f32> = margins.iter().map(|&m| sigmoid(m)).collect();
    super::accuracy(&p, dev)
}

/// Fuses the network trained in `run` (its `train_state.json` names the training file,
/// seed and split) with a linear model, writing the merged network to `out` in the same
/// layout as a training run (then `export::export_dir(out)` makes its ONNX files).
pub fn fuse(run: &Path, out: &Path, linear_epochs: usize, quiet: bool) -> Result<FuseReport> {
    let state: SentimentReport = serde_json::from_str(
        &std::fs::read_to_string(run.join("train_state.json"))
            .with_context(|| format!("cannot read {}/train_state.json", run.display()))?,
    )?;
    anyhow::ensure!(
        !state.net.wide,
        "{} already has a wide column; fuse a plain network",
        run.display()
    );
    let s = &state.settings;
    let (net, tokenizer) = load(run)?;
    // The training run's split, row for row.
    let (train, dev, _) = split_rows(s, &mut crate::corpus::synth::Rng::new(s.seed))?;

    let buckets = state.net.buckets;
    if !quiet {
        eprintln!(
            "fuse: linear model over {buckets} n-gram buckets on {} rows, {linear_epochs} epochs",
            train.len()
        );
    }
    let xs: Vec<Sparse> = train
        .iter()
        .map(|e| features(&tokenizer, &e.text))
        .collect();
    let dev_x: Vec<Sparse> = dev.iter().map(|e| features(&tokenizer, &e.text)).collect();
    let settings = BaselineSettings {
        epochs: linear_epochs,
        seed: s.seed,
        ..BaselineSettings::default()
    };
    let (linear_dev_accuracy, weights, bias) =
        fit_logistic(&xs, &train, &dev_x, &dev, buckets, &settings);
    let linear: Vec<f32> = dev_x
        .iter()
        .map(|v| bias + v.iter().map(|&(j, x)| weights[j as usize] * x).sum::<f32>())
        .collect();

    let enc: Vec<Encoded> = dev.iter().map(|e| tokenizer.encode(&e.text)).collect();
    let refs: Vec<&Encoded> = enc.iter().collect();
    let network = net.margins(&refs, 256, &Device::Cpu)?;
    let labels: Vec<f32> = dev.iter().map(|e| e.label as f32).collect();
    let [a, c, b] = fit_blend(&network, &linear, &labels);
    let fused: Vec<f32> = network
        .iter()
        .zip(&linear)
        .map(|(n, l)| a * n + c * l + b)
        .collect();

    // The merged network: the wide column holds c * weights / wide_scale, with the
    // scale chosen so the column's typical size matches the embedding's (the int8
    // rewrite shares one scale per table row).
    let d = state.net.ngram_dim;
    let table = net.get("ngram_emb.weight")?.to_vec2::<f32>()?;
    let typical = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2].max(1e-12)
    };
    let mut row_max: Vec<f32> = table
        .iter()
        .map(|r| r.iter().fold(0f32, |m, x| m.max(x.abs())))
        .collect();
    let mut wide_abs: Vec<f32> = weights
        .iter()
        .map(|w| (c * w).abs())
        .filter(|w| *w > 0.0)
        .collect();
    let wide_scale = if wide_abs.is_empty() {
        1.0
    } else {
        typical(&mut wide_abs) / typical(&mut row_max)
    };
    let mut merged = Vec::with_capacity(table.len() * (d + 1));
    for (g, row) in table.iter().enumerate() {
        merged.extend_from_slice(row);
        merged.push(c * weights[g] / wide_scale);
    }
    let config = NetConfig {
        wide: true,
        wide_scale,
        ..state.net.clone()
    };
    let fused_net = Net::new(config.clone(), 0, &Device::Cpu)?;
    let mut w = net.snapshot();
    w.insert(
        "ngram_emb.weight".into(),
        Tensor::from_vec(merged, (table.len(), d + 1), &Device::Cpu)?,
    );
    // Scale the network's margin by a and add the blend's bias (and the linear model's,
    // times c) to the positive logit.
    let fc2w = (w["fc2.weight"].clone() * a as f64)?;
    let mut fc2b = (w["fc2.bias"].clone() * a as f64)?.to_vec1::<f32>()?;
    fc2b[1] += b + c * bias;
    w.insert("fc2.weight".into(), fc2w);
    w.insert(
        "fc2.bias".into(),
        Tensor::new(fc2b.as_slice(), &Device::Cpu)?,
    );
    fused_net.restore(&w)?;

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    tokenizer.save(&out.join("tokenizer.json"))?;
    std::fs::write(out.join("net.json"), serde_json::to_string_pretty(&config)?)?;
    candle_core::safetensors::save(&fused_net.snapshot(), out.join("model.safetensors"))?;
    let mut state = state.clone();
    state.net = config;
    std::fs::write(
        out.join("train_state.json"),
        serde_json::to_string_pretty(&state)?,
    )?;
    let report = FuseReport {
        network_dev_accuracy: accuracy_of(&network, &dev),
        linear_dev_accuracy,
        fused_dev_accuracy: accuracy_of(&fused, &dev),
        a,
        c,
        b,
        linear_epochs,
        wide_scale,
    };
    std::fs::write(
        out.join("fuse.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(report)
}
