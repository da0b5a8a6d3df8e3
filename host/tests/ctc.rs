//! The CTC loss against PyTorch's `ctc_loss` (../shared/fixtures/ctc): per-sample losses
//! to 1e-6 relative and the gradient of their sum to 1e-6 absolute, in f64, including a
//! target with repeated labels and inputs shorter than the batch's longest.

use sangdam_host::ctc::ctc_loss;

mod support;

fn npy(name: &str) -> (Vec<usize>, Vec<f64>) {
    support::npy(&support::shared("fixtures/ctc").join(name))
}

#[test]
fn matches_pytorch_losses_and_gradients() {
    let (shape, logits) = npy("logits.npy");
    let (t_max, n, c) = (shape[0], shape[1], shape[2]);
    let (_, targets) = npy("targets.npy");
    let (_, in_lens) = npy("input_lengths.npy");
    let (_, tgt_lens) = npy("target_lengths.npy");
    let (_, losses) = npy("loss_none.npy");
    let (_, grad_ref) = npy("grad_logits_of_sum.npy");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(support::shared("fixtures/ctc/fixture.json")).unwrap(),
    )
    .unwrap();
    let blank = fixture["blank"].as_u64().unwrap() as usize;
    let max_target = targets.len() / n;
    let mut mean = 0.0;
    let mut worst_rel = 0.0f64;
    let mut worst_abs = 0.0f64;
    for s in 0..n {
        // Gather this sample's [T, C] logits from the [T, N, C] array.
        let mut x = Vec::with_capacity(t_max * c);
        for t in 0..t_max {
            x.extend_from_slice(&logits[(t * n + s) * c..(t * n + s + 1) * c]);
        }
        let len = tgt_lens[s] as usize;
        let target: Vec<usize> = targets[s * max_target..s * max_target + len]
            .iter()
            .map(|v| *v as usize)
            .collect();
        let out = ctc_loss(&x, c, in_lens[s] as usize, &target, blank, false);
        let rel = ((out.loss - losses[s]) / losses[s]).abs();
        worst_rel = worst_rel.max(rel);
        mean += out.loss / len as f64;
        for t in 0..t_max {
            for k in 0..c {
                let d = (out.grad[t * c + k] - grad_ref[(t * n + s) * c + k]).abs();
                worst_abs = worst_abs.max(d);
            }
        }
    }
    mean /= n as f64;
    eprintln!(
        "CTC vs PyTorch: worst loss rel diff {worst_rel:.2e}, worst grad abs diff {worst_abs:.2e}"
    );
    assert!(worst_rel <= 1e-6, "loss rel diff {worst_rel}");
    assert!(worst_abs <= 1e-6, "grad abs diff {worst_abs}");
    let ref_mean = fixture["loss_mean"].as_f64().unwrap();
    assert!(
        ((mean - ref_mean) / ref_mean).abs() <= 1e-6,
        "mean {mean} vs {ref_mean}"
    );
}
