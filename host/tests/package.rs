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
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("--vocab"), "{err}");
}
