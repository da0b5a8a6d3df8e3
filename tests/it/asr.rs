//! Conformance of the ASR path with the reference stack (transformers, PyTorch,
//! onnxruntime), on the tiny wav2vec2 fixture in ../shared/fixtures.

use sangdam::asr::{features, AsrEngine, AsrError, CtcDecoder, GreedyDecoder, Vocab};
use sangdam::audio::CallFile;
use tract_onnx::prelude::tract_ndarray::Array2;

use crate::support::{fixture, max_abs_diff, read_npy};

const UTTS: [&str; 2] = ["utt0", "utt1"];

fn wav_samples(name: &str) -> Vec<f32> {
    let mut f = CallFile::open(&fixture(&format!("{name}.wav"))).unwrap();
    let mut out = Vec::new();
    while let Some(block) = f.next_block().unwrap() {
        out.extend_from_slice(&block[0]);
    }
    out
}

fn fixture_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("fixture.json")).unwrap()).unwrap()
}

fn logits_ref(name: &str, which: &str) -> Array2<f32> {
    let npy = read_npy(&fixture(&format!("{name}.logits.{which}.npy")));
    assert_eq!(npy.shape.len(), 3);
    Array2::from_shape_vec((npy.shape[1], npy.shape[2]), npy.as_f32()).unwrap()
}

fn engine(onnx: &str) -> AsrEngine {
    AsrEngine::load(&fixture(onnx), &fixture("vocab.json")).unwrap()
}

#[test]
fn normalisation_reproduces_feature_extractor() {
    for name in UTTS {
        let ours = features::normalize(&wav_samples(name));
        let reference = read_npy(&fixture(&format!("{name}.input_values.npy")));
        assert_eq!(reference.shape, vec![1, ours.len()], "{name}");
        let d = max_abs_diff(&ours, &reference.as_f32());
        eprintln!("{name}: normalisation max abs diff {d:.3e}");
        assert!(d <= 1e-4, "{name}: max abs diff {d}");
    }
}

#[test]
fn tract_f32_matches_onnxruntime() {
    let engine = engine("model.onnx");
    for name in UTTS {
        let input = read_npy(&fixture(&format!("{name}.input_values.npy"))).as_f32();
        let ours = engine.logits(&input).unwrap();
        let reference = logits_ref(name, "ort");
        assert_eq!(ours.shape(), reference.shape(), "{name}");
        let d = max_abs_diff(ours.as_slice().unwrap(), reference.as_slice().unwrap());
        eprintln!("{name}: tract f32 vs onnxruntime max abs diff {d:.3e}");
        assert!(d <= 1e-3, "{name}: max abs diff {d}");
    }
}

fn argmax_rows(a: &Array2<f32>) -> Vec<usize> {
    a.outer_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0
        })
        .collect()
}

#[test]
fn tract_int8_agrees_with_onnxruntime_int8_on_argmax() {
    let engine = engine("model.int8.onnx");
    for name in UTTS {
        let input = read_npy(&fixture(&format!("{name}.input_values.npy"))).as_f32();
        let ours = engine.logits(&input).unwrap();
        let reference = logits_ref(name, "ort_int8");
        assert_eq!(ours.shape(), reference.shape(), "{name}");
        let (a, b) = (argmax_rows(&ours), argmax_rows(&reference));
        let agree = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
        let d = max_abs_diff(ours.as_slice().unwrap(), reference.as_slice().unwrap());
        eprintln!(
            "{name}: tract int8 vs onnxruntime int8: argmax agreement {:.1}%, max abs diff {d:.3e}",
            agree * 100.0
        );
        assert!(agree >= 0.95, "{name}: argmax agreement {agree}");
    }
}

#[test]
fn greedy_decoder_reproduces_transformers_decode() {
    let vocab = Vocab::load(&fixture("vocab.json")).unwrap();
    let json = fixture_json();
    for (i, name) in UTTS.iter().enumerate() {
        let expected = json["cases"][i]["greedy_decode_hf"].as_str().unwrap();
        assert_eq!(json["cases"][i]["name"], *name);
        let t = GreedyDecoder.decode(logits_ref(name, "torch").view(), &vocab);
        assert_eq!(t.text, expected, "{name}");
    }
}

#[test]
fn end_to_end_from_wav_matches_reference_decode() {
    // wav -> our normalisation -> tract f32 -> greedy: the same text transformers decodes
    // from its own torch logits (the model is random, so this checks numbers, not Korean).
    let engine = engine("model.onnx");
    let json = fixture_json();
    for (i, name) in UTTS.iter().enumerate() {
        let t = engine.transcribe(&wav_samples(name)).unwrap();
        assert_eq!(
            t.text,
            json["cases"][i]["greedy_decode_hf"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn batched_run_matches_single_runs() {
    let engine = engine("model.onnx");
    let a = read_npy(&fixture("utt0.input_values.npy")).as_f32();
    let b = read_npy(&fixture("utt1.input_values.npy")).as_f32();
    let batch = engine.logits_batch(&[&a, &b]).unwrap();
    let single_b = engine.logits(&b).unwrap();
    // The longest item is not padded: identical to its own run.
    let d = max_abs_diff(batch[1].as_slice().unwrap(), single_b.as_slice().unwrap());
    assert!(d <= 1e-4, "unpadded item differs by {d}");
    // The padded item keeps its own frame count (121 for utt0); group norm sees the
    // padding, as in transformers, so values may move but the shape is right.
    assert_eq!(batch[0].shape(), &[121, 101]);
}

#[test]
fn bad_models_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Truncated ONNX file.
    let bytes = std::fs::read(fixture("model.onnx")).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let e = AsrEngine::load(&cut, &fixture("vocab.json")).unwrap_err();
    assert!(matches!(e, AsrError::Load { .. }), "{e}");
    assert!(e.to_string().contains("cut.onnx"), "{e}");
    // Vocabulary of the wrong size for the model.
    let small = dir.path().join("vocab.json");
    std::fs::write(&small, r#"{"[PAD]": 0, "|": 1, "가": 2}"#).unwrap();
    let e = AsrEngine::load(&fixture("model.onnx"), &small).unwrap_err();
    assert!(
        matches!(
            e,
            AsrError::VocabMismatch {
                outputs: 101,
                vocab: 3,
                ..
            }
        ),
        "{e}"
    );
    // Garbage vocabulary.
    std::fs::write(&small, "not json").unwrap();
    let e = AsrEngine::load(&fixture("model.onnx"), &small).unwrap_err();
    assert!(e.to_string().contains("vocab.json"), "{e}");
    // Too-short input.
    let e = engine("model.onnx").logits(&[0.0; 100]).unwrap_err();
    assert!(matches!(e, AsrError::TooShort(100)), "{e}");
}
