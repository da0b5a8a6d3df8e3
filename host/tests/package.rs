//! `package` installs a model so that the firmware's manifest check accepts it, and
//! replaces an older entry of the same name.

mod support;

use std::collections::BTreeMap;

use sangdam::models::{Manifest, ModelKind};
use sangdam_host::package::{package, Package};

#[test]
fn packaged_model_passes_the_firmware_check_and_replaces_old_entries() {
    let fixture = support::shared("fixtures/wav2vec2-hf-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let mut p = Package {
        models_dir: models.clone(),
        name: "asr-ko".into(),
        kind: ModelKind::AsrCtc,
        model: fixture.join("model.onnx"),
        vocab: Some(fixture.join("vocab.json")),
        labels: None,
        sample_rate: Some(16_000),
        quantization: None,
        made: "fixture".into(),
        scores: BTreeMap::from([("cer".to_string(), 0.5)]),
        decoder: None,
        neutral_band: None,
    };
    package(&p).unwrap();
    p.model = fixture.join("model.int8.onnx");
    p.quantization = Some("dynamic int8".into());
    let e = package(&p).unwrap();
    let m = Manifest::load(&models).unwrap();
    assert_eq!(m.models.len(), 1);
    assert_eq!(m.models[0], {
        let mut x = e.clone();
        x.file = "asr-ko/model.int8.onnx".into();
        x
    });
    let verified = m.verify().unwrap();
    assert_eq!(verified.len(), 1);
    // A damaged copy is caught by the same check.
    let f = models.join("asr-ko/model.int8.onnx");
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();
    let err = Manifest::load(&models)
        .unwrap()
        .verify()
        .unwrap_err()
        .to_string();
    assert!(err.contains("sha256"), "{err}");
}

#[test]
fn asr_model_without_vocab_is_refused() {
    let fixture = support::shared("fixtures/wav2vec2-hf-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let err = package(&Package {
        models_dir: tmp.path().to_owned(),
        name: "asr-ko".into(),
        kind: ModelKind::AsrCtc,
        model: fixture.join("model.onnx"),
        vocab: None,
        labels: None,
        sample_rate: None,
        quantization: None,
        made: String::new(),
        scores: BTreeMap::new(),
        decoder: None,
        neutral_band: None,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("--vocab"), "{err}");
}

#[test]
fn sentiment_model_carries_its_neutral_band_into_the_manifest() {
    // Any file does for the manifest: it is hashed and copied, not run.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("model.int8.onnx"), b"not a real graph").unwrap();
    std::fs::write(src.join("tokenizer.json"), b"{}").unwrap();
    let models = tmp.path().join("models");
    let mut p = Package {
        models_dir: models.clone(),
        name: "sentiment-ko".into(),
        kind: ModelKind::Sentiment,
        model: src.join("model.int8.onnx"),
        vocab: Some(src.join("tokenizer.json")),
        labels: Some(vec!["negative".into(), "positive".into()]),
        sample_rate: None,
        quantization: Some("int8".into()),
        made: "fixture".into(),
        scores: BTreeMap::new(),
        decoder: None,
        neutral_band: Some([0.35, 0.65]),
    };
    let e = package(&p).unwrap();
    assert_eq!(e.neutral_band, Some([0.35, 0.65]));
    let text = std::fs::read_to_string(models.join("manifest.toml")).unwrap();
    assert!(text.contains("neutral_band = [0.35, 0.65]"), "{text}");
    let m = Manifest::load(&models).unwrap();
    assert_eq!(
        m.get("sentiment-ko").unwrap().neutral_band,
        Some([0.35, 0.65])
    );
    // Without one the entry has no band line.
    p.neutral_band = None;
    package(&p).unwrap();
    let text = std::fs::read_to_string(models.join("manifest.toml")).unwrap();
    assert!(!text.contains("neutral_band"), "{text}");
    // A band out of order, or on a speech model, is refused before anything is written.
    p.neutral_band = Some([0.7, 0.3]);
    let err = package(&p).unwrap_err().to_string();
    assert!(err.contains("0 <= lo <= hi <= 1"), "{err}");
    p.kind = ModelKind::NgramLm;
    p.neutral_band = Some([0.3, 0.7]);
    let err = package(&p).unwrap_err().to_string();
    assert!(err.contains("only for kind = \"sentiment\""), "{err}");
    assert!(!std::fs::read_to_string(models.join("manifest.toml"))
        .unwrap()
        .contains("neutral_band"));
}

#[test]
fn neutral_band_option_reads_lo_comma_hi() {
    use sangdam_host::package::parse_neutral_band;
    assert_eq!(parse_neutral_band("0.3,0.7"), Ok([0.3, 0.7]));
    assert_eq!(parse_neutral_band(" 0.35 , 0.6 "), Ok([0.35, 0.6]));
    for bad in ["0.3", "0.3;0.7", "a,b", ""] {
        let e = parse_neutral_band(bad).unwrap_err();
        assert!(e.contains("write LO,HI"), "{bad}: {e}");
    }
}
