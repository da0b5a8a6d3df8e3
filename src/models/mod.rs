//! The model manifest, `models/manifest.toml`, and the start-up check of every file it
//! lists.
//!
//! A model on the box is only as trustworthy as its bytes: a copy cut short by a full SD
//! card or replaced by hand would otherwise load, or half-load, and transcribe garbage.
//! So every listed file (the ONNX graph and its vocabulary or labels) carries a sha256
//! and a size, and [`Manifest::verify`] checks them all before anything runs.
//!
//! ```toml
//! format = 1                       # manifest format; this build reads 1
//!
//! [[model]]
//! name = "asr-ko"                  # what config refers to
//! kind = "asr-ctc"                 # asr-ctc | sentiment | ngram-lm
//! file = "asr-ko/model.int8.onnx"  # relative to the manifest's folder
//! sha256 = "…"
//! bytes = 1234567
//! vocab = "asr-ko/vocab.json"      # asr-ctc: Hugging Face vocab.json; sentiment: tokenizer.json
//! vocab_sha256 = "…"
//! sample_rate = 16000
//! neutral_band = [0.3, 0.7]        # sentiment only: p(positive) from 0.3 to 0.7 is neutral
//! made = "how it was trained, exported and quantized"
//! [model.decoder]                  # ngram-lm only: tuned beam-search settings
//! alpha = 0.5
//! beta = 1.0
//! [model.scores]                   # measured numbers, free-form names
//! cer_synth_test_int8 = 0.043
//! ```

pub mod config;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use config::ModelsConfig;

/// The manifest format this build understands.
pub const MANIFEST_FORMAT: u32 = 1;
/// The manifest's file name inside the models folder.
pub const MANIFEST_FILE: &str = "manifest.toml";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("model manifest {path} not found: point `models.dir` in the config (or --models) at the folder that holds manifest.toml, or reinstall models/ (board/INSTALL.md)")]
    NoManifest { path: PathBuf },
    #[error("cannot read model manifest {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model manifest {path} is not valid: {message} (restore it from the release)")]
    Parse { path: PathBuf, message: String },
    #[error("model manifest {path} has format {found}, this build reads format {MANIFEST_FORMAT}: install the sangdam release that came with these models")]
    Format { path: PathBuf, found: u32 },
    #[error("model file {path} (model {model}) is missing: reinstall models/ from the release (board/INSTALL.md)")]
    Missing { model: String, path: PathBuf },
    #[error("model file {path} (model {model}) is {actual} bytes, the manifest says {expected}: the copy is truncated or damaged; reinstall models/ from the release (board/INSTALL.md)")]
    Size {
        model: String,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("model file {path} (model {model}) has sha256 {actual}, the manifest expects {expected}: the file is damaged or was replaced; reinstall models/ from the release (board/INSTALL.md)")]
    Hash {
        model: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("no {kind} model is installed: {manifest} lists none named {name:?} (models there: {available}). Install a release's models/ folder there (board/INSTALL.md), or set `models.{kind_key}` in the config to one of the listed names")]
    NotInstalled {
        kind: ModelKind,
        kind_key: &'static str,
        name: String,
        manifest: PathBuf,
        available: String,
    },
    #[error("model {model} in {manifest} has no {what}: every {kind} model needs one")]
    Incomplete {
        model: String,
        manifest: PathBuf,
        kind: ModelKind,
        what: &'static str,
    },
}

/// What a model does; decides which extra files it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// wav2vec2 with a CTC head: `input_values [batch, samples] -> logits [batch, frames, vocab]`.
    AsrCtc,
    /// A text classifier over tokens.
    Sentiment,
    /// A syllable n-gram language model for the speech model's beam search (ARPA or
    /// the binary form of `sangdam-host lm build`).
    NgramLm,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::AsrCtc => "asr-ctc",
            ModelKind::Sentiment => "sentiment",
            ModelKind::NgramLm => "ngram-lm",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub kind: ModelKind,
    /// The ONNX file, relative to the manifest's folder.
    pub file: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Sentiment models only: `[lo, hi]`, the calibrated range of p(positive) that is
    /// labelled neutral (bounds included); `0 <= lo <= hi <= 1`. Absent: every text with
    /// words is positive or negative.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_band",
        deserialize_with = "deserialize_band"
    )]
    pub neutral_band: Option<[f32; 2]>,
    /// How the model was made: data, recipe, commands.
    #[serde(default)]
    pub made: String,
    /// Decoding settings tuned with this model (an ngram-lm's weight and insertion
    /// bonus, tuned with the speech model on the synthetic dev split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder: Option<DecoderDefaults>,
    /// Measured scores (CER, accuracy, real-time factor...), by name.
    #[serde(default)]
    pub scores: BTreeMap<String, f64>,
}

/// Writes the band's numbers as the decimals they were read as (`0.3`, not the f32's
/// `0.30000001192092896`).
fn serialize_band<S: serde::Serializer>(band: &Option<[f32; 2]>, s: S) -> Result<S::Ok, S::Error> {
    let shortest = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::from(x));
    band.map(|[lo, hi]| [shortest(lo), shortest(hi)])
        .serialize(s)
}

/// Reads exactly two numbers (a fixed-size array alone would also take `[a, b, c]`).
fn deserialize_band<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<[f32; 2]>, D::Error> {
    match Option::<Vec<f32>>::deserialize(d)? {
        None => Ok(None),
        Some(v) => match v[..] {
            [lo, hi] => Ok(Some([lo, hi])),
            _ => Err(serde::de::Error::custom(format!(
                "neutral_band has {} numbers: write two, [lo, hi] with 0 <= lo <= hi <= 1 (e.g. neutral_band = [0.3, 0.7])",
                v.len()
            ))),
        },
    }
}

/// Manifest text that is not a valid manifest: TOML, a field, or a model's entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct InvalidManifest {
    /// The entry at fault, when it is one model's.
    pub model: Option<String>,
    /// One line, naming the entry and the fix.
    pub message: String,
}

/// The manifest's rule for a neutral band, as the error text a parse failure carries.
pub fn check_neutral_band(model: &str, kind: ModelKind, band: [f32; 2]) -> Result<(), String> {
    if kind != ModelKind::Sentiment {
        return Err(format!(
            "model {model}: neutral_band is only for kind = \"sentiment\" models, this one is {kind}: remove the neutral_band line from its [[model]] entry"
        ));
    }
    let [lo, hi] = band;
    if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
        return Err(format!(
            "model {model}: neutral_band = [{lo}, {hi}] must be two probabilities with 0 <= lo <= hi <= 1 (e.g. neutral_band = [0.3, 0.7]): fix the [[model]] entry, or package the model again with `sangdam-host package --neutral-band LO,HI`"
        ));
    }
    Ok(())
}

/// `[model.decoder]`: the beam search settings an LM was tuned with. The config's
/// `asr.*` fields override them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderDefaults {
    /// LM weight on natural-log probabilities.
    pub alpha: f32,
    /// Insertion bonus per LM unit (syllable or word boundary).
    pub beta: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beam: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotword_bonus: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    #[serde(default, rename = "model")]
    pub models: Vec<ModelEntry>,
    /// The folder the manifest was read from; file paths are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// A model whose files were all checked against the manifest.
#[derive(Debug, Clone)]
pub struct VerifiedModel {
    pub entry: ModelEntry,
    pub file: PathBuf,
    pub vocab: Option<PathBuf>,
}

impl VerifiedModel {
    /// A short label for records: name and the first 12 hex digits of the hash.
    pub fn label(&self) -> String {
        format!(
            "{}@{}",
            self.entry.name,
            &self.entry.sha256[..12.min(self.entry.sha256.len())]
        )
    }
}

impl Manifest {
    /// Reads `DIR/manifest.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, ModelError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::NoManifest { path })
            }
            Err(source) => return Err(ModelError::Io { path, source }),
        };
        let mut m = Self::parse(&text).map_err(|e| ModelError::Parse {
            path: path.clone(),
            message: e.message,
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(ModelError::Format {
                path,
                found: m.format,
            });
        }
        m.dir = dir.to_owned();
        Ok(m)
    }

    /// Parses manifest text; the error is a one-line description with the position.
    pub fn parse(text: &str) -> Result<Manifest, InvalidManifest> {
        let m: Manifest = toml::from_str(text).map_err(|e| InvalidManifest {
            model: None,
            message: one_line(&e.to_string()),
        })?;
        for entry in &m.models {
            let bad = |message: String| InvalidManifest {
                model: Some(entry.name.clone()),
                message,
            };
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "model {}: sha256 must be 64 hex digits",
                    entry.name
                )));
            }
            if let Some(band) = entry.neutral_band {
                check_neutral_band(&entry.name, entry.kind, band).map_err(bad)?;
            }
        }
        Ok(m)
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Checks every file of every listed model; the first failure is returned.
    pub fn verify(&self) -> Result<Vec<VerifiedModel>, ModelError> {
        self.models.iter().map(|e| self.verify_entry(e)).collect()
    }

    /// Finds the model called `name` of the given kind and checks its files.
    pub fn verified(&self, kind: ModelKind, name: &str) -> Result<VerifiedModel, ModelError> {
        let entry = self
            .models
            .iter()
            .find(|m| m.kind == kind && m.name == name)
            .ok_or_else(|| ModelError::NotInstalled {
                kind,
                kind_key: match kind {
                    ModelKind::AsrCtc => "asr",
                    ModelKind::Sentiment => "sentiment",
                    ModelKind::NgramLm => "lm",
                },
                name: name.to_owned(),
                manifest: self.dir.join(MANIFEST_FILE),
                available: if self.models.is_empty() {
                    "none".to_owned()
                } else {
                    self.models
                        .iter()
                        .map(|m| format!("{} ({})", m.name, m.kind))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })?;
        self.verify_entry(entry)
    }

    fn verify_entry(&self, entry: &ModelEntry) -> Result<VerifiedModel, ModelError> {
        let file = self.dir.join(&entry.file);
        check_file(&entry.name, &file, Some(entry.bytes), &entry.sha256)?;
        let vocab = match (&entry.vocab, &entry.vocab_sha256) {
            (Some(v), Some(h)) => {
                let path = self.dir.join(v);
                check_file(&entry.name, &path, None, h)?;
                Some(path)
            }
            (Some(_), None) => {
                return Err(self.incomplete(entry, "vocab_sha256 next to its vocab"));
            }
            (None, _) if entry.kind == ModelKind::AsrCtc => {
                return Err(self.incomplete(entry, "vocab (vocab.json)"));
            }
            (None, _) if entry.kind == ModelKind::Sentiment => {
                return Err(self.incomplete(entry, "vocab (its tokenizer.json)"));
            }
            (None, _) => None,
        };
        Ok(VerifiedModel {
            entry: entry.clone(),
            file,
            vocab,
        })
    }

    fn incomplete(&self, entry: &ModelEntry, what: &'static str) -> ModelError {
        ModelError::Incomplete {
            model: entry.name.clone(),
            manifest: self.dir.join(MANIFEST_FILE),
            kind: entry.kind,
            what,
        }
    }
}

fn check_file(
    model: &str,
    path: &Path,
    bytes: Option<u64>,
    sha256: &str,
) -> Result<(), ModelError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) | Err(_) => {
            return Err(ModelError::Missing {
                model: model.to_owned(),
                path: path.to_owned(),
            })
        }
    };
    if let Some(expected) = bytes {
        if meta.len() != expected {
            return Err(ModelError::Size {
                model: model.to_owned(),
                path: path.to_owned(),
                expected,
                actual: meta.len(),
            });
        }
    }
    let actual = sha256_file(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(ModelError::Hash {
            model: model.to_owned(),
            path: path.to_owned(),
            expected: sha256.to_ascii_lowercase(),
            actual,
        });
    }
    Ok(())
}

/// Lowercase hex sha256 of a file, read in 64 KiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_rejects_bad_hash_text() {
        let text = r#"
format = 1
[[model]]
name = "asr-ko"
kind = "asr-ctc"
file = "a.onnx"
sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
bytes = 3
vocab = "v.json"
vocab_sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
made = "test"
[model.scores]
cer = 0.05
"#;
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.models.len(), 1);
        assert_eq!(m.models[0].kind, ModelKind::AsrCtc);
        assert_eq!(m.models[0].scores["cer"], 0.05);
        let bad = text.replace("0011223344", "zz11223344");
        assert!(Manifest::parse(&bad)
            .unwrap_err()
            .message
            .contains("64 hex"));
        let unknown = format!("surprise = 1\n{text}");
        assert!(Manifest::parse(&unknown).is_err());
    }

    fn sentiment_entry(band: &str, kind: &str) -> String {
        format!(
            r#"
format = 1
[[model]]
name = "sentiment-ko"
kind = "{kind}"
file = "m.onnx"
sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
bytes = 3
{band}
"#
        )
    }

    #[test]
    fn neutral_band_is_read_checked_and_written_back() {
        // Absent: no band, as before.
        let m = Manifest::parse(&sentiment_entry("", "sentiment")).unwrap();
        assert_eq!(m.models[0].neutral_band, None);
        let m =
            Manifest::parse(&sentiment_entry("neutral_band = [0.3, 0.7]", "sentiment")).unwrap();
        assert_eq!(m.models[0].neutral_band, Some([0.3, 0.7]));
        // Written back as the same decimals, and read back equal.
        let text = toml::to_string(&m).unwrap();
        assert!(text.contains("neutral_band = [0.3, 0.7]"), "{text}");
        assert_eq!(Manifest::parse(&text).unwrap().models, m.models);
        // A point band and the extremes are allowed.
        for ok in ["[0.5, 0.5]", "[0.0, 1.0]", "[0, 1]"] {
            let t = sentiment_entry(&format!("neutral_band = {ok}"), "sentiment");
            assert!(Manifest::parse(&t).is_ok(), "{ok}");
        }
        // Out of order, out of range, not a pair, or on another kind: refused, naming the
        // entry and the fix.
        for bad in ["[0.7, 0.3]", "[-0.1, 0.5]", "[0.2, 1.5]", "[nan, 0.5]"] {
            let t = sentiment_entry(&format!("neutral_band = {bad}"), "sentiment");
            let e = Manifest::parse(&t).unwrap_err().to_string();
            assert!(e.contains("model sentiment-ko: neutral_band"), "{bad}: {e}");
            assert!(e.contains("0 <= lo <= hi <= 1"), "{bad}: {e}");
            assert!(e.contains("--neutral-band"), "{bad}: {e}");
        }
        for bad in ["[0.3]", "[0.3, 0.5, 0.7]", "[]"] {
            let t = sentiment_entry(&format!("neutral_band = {bad}"), "sentiment");
            let e = Manifest::parse(&t).unwrap_err().to_string();
            assert!(e.contains("write two, [lo, hi]"), "{bad}: {e}");
        }
        let t = sentiment_entry("neutral_band = 0.5", "sentiment");
        assert!(Manifest::parse(&t).is_err());
        let e =
            Manifest::parse(&sentiment_entry("neutral_band = [0.3, 0.7]", "asr-ctc")).unwrap_err();
        assert_eq!(e.model.as_deref(), Some("sentiment-ko"));
        let e = e.to_string();
        assert!(e.contains("model sentiment-ko"), "{e}");
        assert!(e.contains("only for kind = \"sentiment\""), "{e}");
        assert!(e.contains("remove the neutral_band line"), "{e}");
        // Through load, the error names the manifest file too.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            sentiment_entry("neutral_band = [0.9, 0.1]", "sentiment"),
        )
        .unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("manifest.toml") && e.contains("model sentiment-ko"),
            "{e}"
        );
    }
}
