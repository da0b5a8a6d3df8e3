//! Helpers shared by the integration tests: a small `.npy` reader for the reference
//! fixtures, paths into ../shared, and a scratch models folder with a real manifest.

use std::path::{Path, PathBuf};

/// The wav2vec2 conformance fixture made with transformers / onnxruntime.
pub fn fixture_dir() -> PathBuf {
    let d = PathBuf::from("../shared/fixtures/wav2vec2-hf-tiny");
    assert!(
        d.join("model.onnx").is_file(),
        "conformance fixture missing: {} (the tests need ../shared next to the checkout)",
        d.display()
    );
    d
}

pub fn fixture(name: &str) -> PathBuf {
    fixture_dir().join(name)
}

/// A numpy array read from a `.npy` file: its shape and its values widened to f64.
#[derive(Debug, Clone)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Npy {
    pub fn as_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// Reads a little-endian, C-order `.npy` of f4, f8, i4 or i8.
pub fn read_npy(path: &Path) -> Npy {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .unwrap();
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .unwrap();
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let body = &bytes[start + header_len..];
    let data: Vec<f64> = match descr {
        "<f4" => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "<f8" => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        "<i4" => body
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        "<i8" => body
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("{}: unsupported dtype {other}", path.display()),
    };
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    Npy { shape, data }
}

/// Lowercase hex sha256 of a file.
pub fn sha256(path: &Path) -> String {
    sangdam::models::sha256_file(path).unwrap()
}

/// A models folder in `dir` holding copies of the fixture's ONNX file (`onnx` names it)
/// and vocab.json, with a manifest that lists them as the ASR model `asr-ko`.
pub fn fixture_models(dir: &Path, onnx: &str) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir_all(models.join("asr-ko")).unwrap();
    let model = models.join("asr-ko").join(onnx);
    let vocab = models.join("asr-ko").join("vocab.json");
    std::fs::copy(fixture(onnx), &model).unwrap();
    std::fs::copy(fixture("vocab.json"), &vocab).unwrap();
    let manifest = format!(
        "format = 1\n\n[[model]]\nname = \"asr-ko\"\nkind = \"asr-ctc\"\nfile = \"asr-ko/{onnx}\"\n\
         sha256 = \"{}\"\nbytes = {}\nvocab = \"asr-ko/vocab.json\"\nvocab_sha256 = \"{}\"\n\
         sample_rate = 16000\nmade = \"conformance fixture (random weights)\"\n",
        sha256(&model),
        std::fs::metadata(&model).unwrap().len(),
        sha256(&vocab)
    );
    std::fs::write(models.join("manifest.toml"), manifest).unwrap();
    models
}

/// Max absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// xorshift: a seeded sequence without a crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The shipped sentiment model's folder and manifest entry (models/ in the checkout).
pub fn shipped_sentiment() -> sangdam::models::VerifiedModel {
    let manifest = sangdam::models::Manifest::load(Path::new("models")).unwrap();
    manifest
        .verified(sangdam::models::ModelKind::Sentiment, "sentiment-ko")
        .expect("models/ ships the sentiment model sentiment-ko")
}

/// Adds the shipped sentiment model to a scratch models folder made by
/// [`fixture_models`]: its files are copied and its entry appended to the manifest.
pub fn add_shipped_sentiment(models: &Path) {
    let shipped = shipped_sentiment();
    let mut manifest = sangdam::models::Manifest::load(models).unwrap();
    let dir = models.join("sentiment-ko");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&shipped.file, dir.join(shipped.file.file_name().unwrap())).unwrap();
    let vocab = shipped.vocab.as_ref().unwrap();
    std::fs::copy(vocab, dir.join(vocab.file_name().unwrap())).unwrap();
    manifest.models.push(shipped.entry.clone());
    std::fs::write(
        models.join("manifest.toml"),
        toml::to_string(&manifest).unwrap(),
    )
    .unwrap();
}
