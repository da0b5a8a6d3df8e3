//! The candle Wav2Vec2ForCTC against transformers: the fixture checkpoint, loaded from
//! its own config.json and model.safetensors, reproduces PyTorch's logits.

mod support;

use candle_core::{Device, Tensor};
use sangdam_host::model::Wav2Vec2ForCtc;

#[test]
fn reproduces_transformers_logits() {
    let dir = support::shared("fixtures/wav2vec2-hf-tiny");
    let model = Wav2Vec2ForCtc::load(&dir, &Device::Cpu).unwrap();
    for name in ["utt0", "utt1"] {
        let (shape, x) = support::npy(&dir.join(format!("{name}.input_values.npy")));
        let x: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let input = Tensor::from_vec(x, (shape[0], shape[1]), &Device::Cpu).unwrap();
        let logits = model.forward(&input).unwrap();
        let (rshape, reference) = support::npy(&dir.join(format!("{name}.logits.torch.npy")));
        assert_eq!(logits.dims(), rshape.as_slice(), "{name}");
        let ours: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        let d = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{name}: candle vs transformers logits, max abs diff {d:.2e}");
        assert!(d <= 1e-4, "{name}: max abs diff {d}");
    }
}
