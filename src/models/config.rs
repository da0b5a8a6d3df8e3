//! `[models]` in the config file: the models folder and the names of the models to load.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    pub dir: PathBuf,
    pub asr: String,
    /// Empty: no sentiment.
    pub sentiment: String,
    /// Empty: no language model.
    pub lm: String,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: PathBuf::from("models"),
            asr: "asr-ko".to_owned(),
            sentiment: "sentiment-ko".to_owned(),
            lm: "lm-ko".to_owned(),
        }
    }
}

/// Documentation of `[models]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("models", "Installed models: a folder with manifest.toml; every file is checked against its sha256 at start-up."),
    ("models.dir", "Folder holding manifest.toml and the model files. On the box: /usr/share/sangdam/models."),
    ("models.asr", "Name of the speech-recognition model in the manifest (kind asr-ctc)."),
    ("models.lm", "Name of the language model in the manifest (kind ngram-lm) that the beam search fuses; \"\" for none (beam search without an LM). When it is missing or damaged, decoding falls back to greedy and a warning names the file."),
    ("models.sentiment", "Name of the sentiment model in the manifest (kind sentiment); \"\" turns sentiment off. When it is not installed, calls are stored without sentiment and a warning says so."),
];
