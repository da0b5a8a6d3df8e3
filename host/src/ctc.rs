//! CTC loss and its gradient with respect to the pre-softmax logits, in f64, by the
//! forward-backward algorithm in log space (Graves et al., 2006).
//!
//! It matches `torch.nn.functional.ctc_loss` with `reduction="none"` (checked against
//! `../shared/fixtures/ctc`), blank at any id (wav2vec2 uses its last id, `[PAD]`), and
//! handles transformers' `ctc_zero_infinity`: a target that cannot fit in the input
//! (too many labels, or repeats that need blanks between them) has probability zero,
//! and its loss and gradient become 0 instead of infinity.
//!
//! The training loop calls it per utterance on the model's logits and feeds the gradient
//! back into the network; it is kept free of any tensor library so its numbers can be
//! checked exactly.

/// Loss of one utterance and the gradient of that loss with respect to its logits.
#[derive(Debug, Clone, PartialEq)]
pub struct CtcOutput {
    /// `-ln p(target | input)`; infinite when the target cannot be produced (unless
    /// `zero_infinity`).
    pub loss: f64,
    /// `[frames, classes]` row-major, the same shape as the logits given; frames at or
    /// past `input_len` get zeros.
    pub grad: Vec<f64>,
}

fn lse2(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// CTC for one utterance. `logits` is `[frames, classes]` row-major; only the first
/// `input_len` frames are used. Panics if `target` holds the blank or an id out of range
/// (a caller bug, not bad data).
pub fn ctc_loss(
    logits: &[f64],
    classes: usize,
    input_len: usize,
    target: &[usize],
    blank: usize,
    zero_infinity: bool,
) -> CtcOutput {
    let frames = logits.len() / classes;
    assert!(
        input_len <= frames,
        "input_len {input_len} > {frames} frames"
    );
    assert!(
        target.iter().all(|&k| k < classes && k != blank),
        "target ids must be labels, not the blank"
    );
    let mut grad = vec![0.0; logits.len()];
    // log-softmax per frame.
    let mut lp = vec![0.0; input_len * classes];
    for t in 0..input_len {
        let row = &logits[t * classes..(t + 1) * classes];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln() + m;
        for k in 0..classes {
            lp[t * classes + k] = row[k] - z;
        }
    }
    let s_len = 2 * target.len() + 1;
    let label = |s: usize| if s % 2 == 0 { blank } else { target[s / 2] };
    // Whether state s may be reached from s-2 (skipping a blank).
    let can_skip = |s: usize| s >= 2 && label(s) != blank && label(s) != label(s - 2);
    let ninf = f64::NEG_INFINITY;
    if input_len == 0 {
        return infinite(grad, zero_infinity);
    }
    let mut alpha = vec![ninf; input_len * s_len];
    let mut beta = vec![ninf; input_len * s_len];
    alpha[0] = lp[blank];
    if s_len > 1 {
        alpha[1] = lp[label(1)];
    }
    for t in 1..input_len {
        for s in 0..s_len {
            let mut a = alpha[(t - 1) * s_len + s];
            if s >= 1 {
                a = lse2(a, alpha[(t - 1) * s_len + s - 1]);
            }
            if can_skip(s) {
                a = lse2(a, alpha[(t - 1) * s_len + s - 2]);
            }
            alpha[t * s_len + s] = a + lp[t * classes + label(s)];
        }
    }
    let last = (input_len - 1) * s_len;
    let mut loglik = alpha[last + s_len - 1];
    if s_len > 1 {
        loglik = lse2(loglik, alpha[last + s_len - 2]);
    }
    if loglik == ninf {
        return infinite(grad, zero_infinity);
    }
    beta[last + s_len - 1] = lp[(input_len - 1) * classes + label(s_len - 1)];
    if s_len > 1 {
        beta[last + s_len - 2] = lp[(input_len - 1) * classes + label(s_len - 2)];
    }
    for t in (0..input_len - 1).rev() {
        for s in 0..s_len {
            let mut b = beta[(t + 1) * s_len + s];
            if s + 1 < s_len {
                b = lse2(b, beta[(t + 1) * s_len + s + 1]);
            }
            if s + 2 < s_len && can_skip(s + 2) {
                b = lse2(b, beta[(t + 1) * s_len + s + 2]);
            }
            beta[t * s_len + s] = b + lp[t * classes + label(s)];
        }
    }
    // d(-ln p)/du_tk = y_tk - 1/(p y_tk) * sum_{s: l'_s = k} alpha_t(s) beta_t(s)
    let mut acc = vec![ninf; classes];
    for t in 0..input_len {
        acc.iter_mut().for_each(|a| *a = ninf);
        for s in 0..s_len {
            let k = label(s);
            acc[k] = lse2(acc[k], alpha[t * s_len + s] + beta[t * s_len + s]);
        }
        for k in 0..classes {
            let l = lp[t * classes + k];
            grad[t * classes + k] = l.exp() - (acc[k] - l - loglik).exp();
        }
    }
    CtcOutput {
        loss: -loglik,
        grad,
    }
}

fn infinite(grad: Vec<f64>, zero_infinity: bool) -> CtcOutput {
    CtcOutput {
        loss: if zero_infinity { 0.0 } else { f64::INFINITY },
        grad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_target_is_infinite_or_zero() {
        // Three frames cannot hold "a a" plus the blank the repeat needs... they can
        // (a, blank, a); two frames cannot.
        let logits = vec![0.0; 2 * 3];
        let out = ctc_loss(&logits, 3, 2, &[0, 0], 2, false);
        assert!(out.loss.is_infinite());
        let out = ctc_loss(&logits, 3, 2, &[0, 0], 2, true);
        assert_eq!(out.loss, 0.0);
        assert!(out.grad.iter().all(|g| *g == 0.0));
        let logits = vec![0.0; 3 * 3];
        assert!(ctc_loss(&logits, 3, 3, &[0, 0], 2, false).loss.is_finite());
    }

    #[test]
    fn uniform_single_frame_has_known_loss() {
        // One frame, target "a": p = y(a) = 1/3.
        let out = ctc_loss(&[0.0, 0.0, 0.0], 3, 1, &[0], 2, false);
        assert!((out.loss - 3f64.ln()).abs() < 1e-12);
        // Gradient: y - onehot(a).
        let expect = [1.0 / 3.0 - 1.0, 1.0 / 3.0, 1.0 / 3.0];
        for (g, e) in out.grad.iter().zip(expect) {
            assert!((g - e).abs() < 1e-12);
        }
    }
}
