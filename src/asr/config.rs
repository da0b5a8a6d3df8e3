//! `[asr]` in the config file: batching, workers and the decoder's settings.

use serde::{Deserialize, Serialize};

use crate::setting::InvalidSetting;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsrConfig {
    pub batch: usize,
    pub workers: usize,
    /// "beam" or "greedy".
    pub decoder: String,
    pub beam: usize,
    /// Tokens more than this (natural log) below a frame's best are not expanded.
    pub beam_prune: f32,
    /// Override the LM weight / insertion bonus / hotword bonus the manifest gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_alpha: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_beta: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotword_bonus: Option<f32>,
    pub hotwords: Vec<String>,
    pub catalogue_hotwords: bool,
}

impl Default for AsrConfig {
    fn default() -> Self {
        AsrConfig {
            batch: 1,
            workers: 1,
            decoder: "beam".to_owned(),
            beam: 8,
            beam_prune: 8.0,
            lm_alpha: None,
            lm_beta: None,
            hotword_bonus: None,
            hotwords: Vec::new(),
            catalogue_hotwords: true,
        }
    }
}

impl AsrConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("asr", self.checks())
    }

    fn checks(&self) -> Result<(), String> {
        if self.batch == 0 {
            return Err("asr.batch must be at least 1".into());
        }
        if self.workers == 0 {
            return Err("asr.workers must be at least 1".into());
        }
        if !matches!(self.decoder.as_str(), "beam" | "greedy") {
            return Err(format!(
                "asr.decoder is {:?}: it must be \"beam\" or \"greedy\"",
                self.decoder
            ));
        }
        if self.beam == 0 || self.beam > 256 {
            return Err(format!(
                "asr.beam is {}: choose 1 to 256 (8 is the tuned width)",
                self.beam
            ));
        }
        if !(self.beam_prune.is_finite() && self.beam_prune > 0.0) {
            return Err(format!(
                "asr.beam_prune is {}: it must be a positive number (8 is the default)",
                self.beam_prune
            ));
        }
        for (name, v) in [
            ("asr.lm_alpha", self.lm_alpha),
            ("asr.lm_beta", self.lm_beta),
            ("asr.hotword_bonus", self.hotword_bonus),
        ] {
            if let Some(v) = v {
                if !v.is_finite() || v.abs() > 100.0 {
                    return Err(format!(
                        "{name} is {v}: it must be a number between -100 and 100"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Documentation of `[asr]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("asr", "Speech recognition."),
    ("asr.batch", "Utterances run through the model together (1 = one at a time; more uses more memory)."),
    ("asr.workers", "Threads that transcribe utterances in parallel (each holds its own model state)."),
    ("asr.decoder", "\"beam\": prefix beam search with the language model (models.lm) and hotwords; \"greedy\": each frame's best token, no LM."),
    ("asr.beam", "Hypotheses the beam search keeps per frame (1 keeps a single path: greedy decoding, plus the LM and hotwords if set)."),
    ("asr.beam_prune", "The beam search expands only tokens whose log-probability is within this of the frame's best (larger: slower, rarely better)."),
    ("asr.lm_alpha", "Language-model weight; unset: the value tuned with the model (models/manifest.toml, [model.decoder])."),
    ("asr.lm_beta", "Insertion bonus per syllable or word boundary; unset: the tuned value from the manifest."),
    ("asr.hotword_bonus", "Bonus per matched token of a hotword; unset: the manifest's value, or 1.5."),
    ("asr.hotwords", "Words and phrases the recogniser should favour (product names, branch names), written as they should come out."),
    ("asr.catalogue_hotwords", "Also favour the product catalogue's names and aliases (insights.products)."),
];
