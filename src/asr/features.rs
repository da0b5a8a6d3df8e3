//! Feature normalisation, identical to transformers' `Wav2Vec2FeatureExtractor` with
//! `do_normalize=True`: zero mean and unit variance per utterance, with `1e-7` added to
//! the variance before the square root.
//!
//! The statistics are accumulated in f64: on a 15 s utterance an f32 running sum loses
//! enough precision to move the result by more than the 1e-4 the conformance test allows.

/// Returns `(x - mean) / sqrt(var + 1e-7)` for the whole slice (population variance,
/// as numpy's `var()` computes it).
pub fn normalize(samples: &[f32]) -> Vec<f32> {
    let mut out = samples.to_vec();
    normalize_in_place(&mut out);
    out
}

/// In-place variant of [`normalize`], for callers that own the buffer.
pub fn normalize_in_place(samples: &mut [f32]) {
    if samples.is_empty() {
        return;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&x| {
            let d = x as f64 - mean;
            d * d
        })
        .sum::<f64>()
        / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    for x in samples.iter_mut() {
        *x = ((*x as f64 - mean) * scale) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_mean_unit_variance() {
        let x: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.01).sin() * 0.3 + 0.1)
            .collect();
        let y = normalize(&x);
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / y.len() as f64;
        assert!(mean.abs() < 1e-6, "mean {mean}");
        assert!((var - 1.0).abs() < 1e-4, "var {var}");
    }

    #[test]
    fn silence_stays_finite() {
        // All-zero input: the 1e-7 keeps the division finite, as in transformers.
        let y = normalize(&[0.0; 64]);
        assert!(y.iter().all(|v| *v == 0.0));
        assert!(normalize(&[]).is_empty());
    }
}
