//! The sentiment network in candle.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use sangdam::sentiment::Encoded;

use crate::rng::Rng;

/// Why a network cannot be built, its weights read or set, or a batch run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// [`NetConfig::check`]: a convolution width is even.
    #[error("convolution widths must be odd (same padding): {kernels:?}")]
    EvenKernel { kernels: Vec<usize> },
    /// [`NetConfig::check`]: no kernels and no n-gram columns.
    #[error("both branches are switched off")]
    NoBranch,
    /// [`Net::get`] of a name the network does not have.
    #[error("no parameter {name}")]
    NoParameter { name: String },
    /// [`Net::restore`] from weights without one of the network's parameters.
    #[error("checkpoint lacks {name}")]
    MissingWeight { name: String },
    /// A tensor operation (shapes, devices, autograd).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

type Result<T, E = NetError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Character vocabulary size (the tokenizer's).
    pub vocab: usize,
    /// N-gram embedding rows (the tokenizer's `ngram_buckets`).
    pub buckets: usize,
    pub char_dim: usize,
    /// Odd convolution widths; empty switches the CNN branch off.
    pub kernels: Vec<usize>,
    pub filters: usize,
    /// N-gram embedding width; 0 switches the bag branch off.
    pub ngram_dim: usize,
    pub hidden: usize,
    pub dropout: f32,
    /// A linear ("wide") path next to the network: one more column in the n-gram table
    /// whose sum over the text's n-grams, divided by the square root of their number
    /// (a length-normalised bag of n-grams, as TF-IDF's l2 norm does), is added to the
    /// positive logit past the hidden layer and its dropout.
    #[serde(default)]
    pub wide: bool,
    /// The wide column is multiplied by this before it reaches the logit, so that its
    /// stored values can sit in the embedding's range (int8 scales are per table row).
    #[serde(default = "one")]
    pub wide_scale: f32,
    /// Rows of a TF-IDF linear part (its tables are in `tfidf.safetensors` beside the
    /// weights, written by `fuse`; the tokenizer hashes into as many buckets); 0: none.
    /// Not a trainable part of the network: the export adds its margin to the positive
    /// logit.
    #[serde(default)]
    pub tfidf_buckets: usize,
}

fn one() -> f32 {
    1.0
}

impl NetConfig {
    pub fn features(&self) -> usize {
        self.kernels.len() * self.filters + self.ngram_dim
    }

    /// Columns of the n-gram table: the embedding, then the wide weight.
    pub fn ngram_columns(&self) -> usize {
        self.ngram_dim + usize::from(self.wide)
    }

    pub fn check(&self) -> Result<()> {
        if !self.kernels.iter().all(|k| k % 2 == 1) {
            return Err(NetError::EvenKernel {
                kernels: self.kernels.clone(),
            });
        }
        if self.features() == 0 {
            return Err(NetError::NoBranch);
        }
        Ok(())
    }
}

/// The trainable parameters, by name.
pub struct Net {
    pub config: NetConfig,
    pub vars: Vec<(String, Var)>,
    index: HashMap<String, usize>,
}

/// One padded batch.
pub struct Batch {
    pub chars: Tensor,
    pub ngrams: Tensor,
    pub labels: Tensor,
}

/// Pads encoded texts into `[batch, max]` u32 tensors (0 = padding), with at least
/// `min_chars` character columns (candle's convolution gradient needs the input at
/// least as long as the kernel; padding is masked, so the result does not change).
pub fn batch_tensors(
    items: &[&Encoded],
    labels: &[u32],
    min_chars: usize,
    device: &Device,
) -> Result<Batch> {
    let lc = items
        .iter()
        .map(|e| e.chars.len())
        .max()
        .unwrap_or(0)
        .max(min_chars)
        .max(1);
    let ln = items
        .iter()
        .map(|e| e.ngrams.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chars = vec![0u32; items.len() * lc];
    let mut ngrams = vec![0u32; items.len() * ln];
    for (i, e) in items.iter().enumerate() {
        for (j, &c) in e.chars.iter().enumerate() {
            chars[i * lc + j] = c as u32;
        }
        for (j, &g) in e.ngrams.iter().enumerate() {
            ngrams[i * ln + j] = g as u32;
        }
    }
    Ok(Batch {
        chars: Tensor::from_vec(chars, (items.len(), lc), device)?,
        ngrams: Tensor::from_vec(ngrams, (items.len(), ln), device)?,
        labels: Tensor::from_vec(labels.to_vec(), labels.len(), device)?,
    })
}

fn normal(rng: &mut Rng) -> f32 {
    // Box-Muller.
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

impl Net {
    /// Fresh weights from `seed`: embeddings N(0, 0.1) (n-gram rows N(0, 0.01)), layers
    /// uniform in ±1/sqrt(fan_in) as PyTorch does.
    pub fn new(config: NetConfig, seed: u64, device: &Device) -> Result<Self> {
        config.check()?;
        let mut rng = Rng::new(seed);
        let mut vars = Vec::new();
        let mut add =
            |name: String, dims: Vec<usize>, init: &mut dyn FnMut(&mut Rng) -> f32| -> Result<()> {
                let n: usize = dims.iter().product();
                let data: Vec<f32> = (0..n).map(|_| init(&mut rng)).collect();
                let t = Tensor::from_vec(data, dims, device)?;
                vars.push((name, Var::from_tensor(&t)?));
                Ok(())
            };
        let uniform = |bound: f32| move |r: &mut Rng| ((r.unit() as f32) * 2.0 - 1.0) * bound;
        if !config.kernels.is_empty() {
            add(
                "char_emb.weight".into(),
                vec![config.vocab, config.char_dim],
                &mut |r| normal(r) * 0.1,
            )?;
            for &k in &config.kernels {
                let b = 1.0 / ((config.char_dim * k) as f32).sqrt();
                add(
                    format!("conv{k}.weight"),
                    vec![config.filters, config.char_dim, k],
                    &mut uniform(b),
                )?;
                add(
                    format!("conv{k}.bias"),
                    vec![config.filters],
                    &mut uniform(b),
                )?;
            }
        }
        if config.ngram_columns() > 0 {
            // The wide column starts at zero: the linear path begins neutral.
            let cols = config.ngram_columns();
            let mut i = 0usize;
            add(
                "ngram_emb.weight".into(),
                vec![config.buckets, cols],
                &mut |r| {
                    let col = i % cols;
                    i += 1;
                    if col < config.ngram_dim {
                        normal(r) * 0.01
                    } else {
                        0.0
                    }
                },
            )?;
        }
        let b1 = 1.0 / (config.features() as f32).sqrt();
        add(
            "fc1.weight".into(),
            vec![config.hidden, config.features()],
            &mut uniform(b1),
        )?;
        add("fc1.bias".into(), vec![config.hidden], &mut uniform(b1))?;
        let b2 = 1.0 / (config.hidden as f32).sqrt();
        add(
            "fc2.weight".into(),
            vec![2, config.hidden],
            &mut uniform(b2),
        )?;
        add("fc2.bias".into(), vec![2], &mut uniform(b2))?;
        let index = vars
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        Ok(Net {
            config,
            vars,
            index,
        })
    }

    pub fn get(&self, name: &str) -> Result<Tensor> {
        let i = self
            .index
            .get(name)
            .ok_or_else(|| NetError::NoParameter { name: name.into() })?;
        Ok(self.vars[*i].1.as_tensor().clone())
    }

    /// The shortest character axis a batch may have (the widest kernel).
    pub fn min_chars(&self) -> usize {
        self.config.kernels.iter().copied().max().unwrap_or(1)
    }

    pub fn params(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Logits `[batch, 2]`. `train` turns dropout on, drawing masks from `rng`.
    pub fn forward(&self, b: &Batch, train: Option<&mut Rng>) -> Result<Tensor> {
        let c = &self.config;
        let mut feats = Vec::new();
        if !c.kernels.is_empty() {
            let (n, l) = b.chars.dims2()?;
            // Padded positions are zeroed, exactly like the convolution's own zero
            // padding, so a text scores the same alone or in a padded batch.
            let mask = b.chars.ne(0u32)?.to_dtype(DType::F32)?.unsqueeze(1)?; // [n,1,l]
            let emb = self
                .get("char_emb.weight")?
                .index_select(&b.chars.flatten_all()?, 0)?
                .reshape((n, l, c.char_dim))?
                .transpose(1, 2)?
                .broadcast_mul(&mask)?
                .contiguous()?; // [n, e, l]
            for &k in &c.kernels {
                let w = self.get(&format!("conv{k}.weight"))?;
                let bias = self.get(&format!("conv{k}.bias"))?;
                // crate::model::conv1d, not candle's: candle 0.11.1's conv1d backward is
                // wrong for batches of more than one text (see its doc).
                let padded = emb.pad_with_zeros(D::Minus1, k / 2, k / 2)?;
                let y = crate::model::conv1d(&padded, &w, None, 1, 1)?;
                let y = y.broadcast_add(&bias.reshape((1, c.filters, 1))?)?.relu()?;
                let y = y.broadcast_mul(&mask)?;
                feats.push(y.max(D::Minus1)?);
            }
        }
        let mut wide = None;
        if c.ngram_columns() > 0 {
            let (n, l) = b.ngrams.dims2()?;
            let mask = b.ngrams.ne(0u32)?.to_dtype(DType::F32)?; // [n, l]
            let emb = self
                .get("ngram_emb.weight")?
                .index_select(&b.ngrams.flatten_all()?, 0)?
                .reshape((n, l, c.ngram_columns()))?;
            let sum = emb.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?; // [n, d + wide]
            let count = mask.sum_keepdim(1)?.clamp(1f32, f32::MAX)?; // [n, 1]
            if c.ngram_dim > 0 {
                feats.push(sum.narrow(1, 0, c.ngram_dim)?.broadcast_div(&count)?);
            }
            if c.wide {
                let w = sum
                    .narrow(1, c.ngram_dim, 1)?
                    .broadcast_div(&count.sqrt()?)?;
                let to_positive = Tensor::new(&[[0f32, c.wide_scale]], w.device())?;
                wide = Some(w.broadcast_mul(&to_positive)?); // [n, 2]
            }
        }
        let mut rng = train;
        let mut x = Tensor::cat(&feats, 1)?;
        if let Some(r) = rng.as_deref_mut() {
            x = dropout(&x, c.dropout, r)?;
        }
        let h = x
            .matmul(&self.get("fc1.weight")?.t()?)?
            .broadcast_add(&self.get("fc1.bias")?)?
            .relu()?;
        let h = match rng {
            Some(r) => dropout(&h, c.dropout, r)?,
            None => h,
        };
        let logits = h
            .matmul(&self.get("fc2.weight")?.t()?)?
            .broadcast_add(&self.get("fc2.bias")?)?;
        Ok(match wide {
            Some(w) => (logits + w)?,
            None => logits,
        })
    }

    /// Positive-class probabilities, evaluation mode, in batches of `batch`.
    pub fn predict(&self, items: &[&Encoded], batch: usize, device: &Device) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(batch.max(1)) {
            let labels = vec![0u32; chunk.len()];
            let b = batch_tensors(chunk, &labels, self.min_chars(), device)?;
            let logits = self.forward(&b, None)?;
            let p = candle_nn::ops::softmax(&logits, 1)?
                .narrow(1, 1, 1)?
                .flatten_all()?;
            out.extend(p.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Logit margins (positive minus negative), evaluation mode, in batches of `batch`.
    pub fn margins(&self, items: &[&Encoded], batch: usize, device: &Device) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(batch.max(1)) {
            let labels = vec![0u32; chunk.len()];
            let b = batch_tensors(chunk, &labels, self.min_chars(), device)?;
            let logits = self.forward(&b, None)?;
            let m = (logits.narrow(1, 1, 1)? - logits.narrow(1, 0, 1)?)?.flatten_all()?;
            out.extend(m.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Current weights as plain tensors (a snapshot for the best epoch).
    pub fn snapshot(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    v.as_tensor().copy().expect("copy of a CPU tensor"),
                )
            })
            .collect()
    }

    pub fn restore(&self, weights: &HashMap<String, Tensor>) -> Result<()> {
        for (n, v) in &self.vars {
            let t = weights
                .get(n)
                .ok_or_else(|| NetError::MissingWeight { name: n.clone() })?;
            v.set(t)?;
        }
        Ok(())
    }
}

/// Inverted dropout with a mask drawn from the project's seeded generator.
fn dropout(x: &Tensor, p: f32, rng: &mut Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let keep = 1.0 - p;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if (rng.unit() as f32) < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.dims(), x.device())?;
    Ok((x * mask)?)
}
