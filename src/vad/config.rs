//! `[vad]` in the config file: the segmenter's settings (checked by
//! [`super::Segmenter::new`]).

use serde::{Deserialize, Serialize};

/// Settings of the segmenter, the `[vad]` section of the config file. Times in
/// milliseconds, lengths in 16 kHz samples, levels in dB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VadConfig {
    /// Analysis frame in ms, 10 to 50 (default 20). One [`super::Segmenter::push`] takes one
    /// frame; boundaries are found to within a frame.
    pub frame_ms: u32,
    /// Audio kept before and after the detected speech, in ms (default 200), so the
    /// recogniser hears the soft onset and decay of the first and last sounds. At most
    /// `end_silence_ms`: the trailing padding comes out of the silence that ends an
    /// utterance.
    pub pad_ms: u32,
    /// Speech (first to last speech frame) shorter than this is dropped, in ms
    /// (default 250): clicks, knocks, a cough.
    pub min_speech_ms: u32,
    /// Silence that ends an utterance, in ms (default 500). Pauses shorter than this
    /// stay inside one utterance.
    pub end_silence_ms: u32,
    /// Longest utterance in 16 kHz samples (default 246000 = 15.4 s, the recogniser's
    /// limit). Longer speech is split at its quietest point.
    pub max_samples: usize,
    /// A frame this many dB above the noise floor starts speech (default 12.0).
    pub start_db: f32,
    /// Speech goes on while frames stay this many dB above the noise floor (default
    /// 4.0). Lower than `start_db`: the hysteresis that keeps word endings.
    pub continue_db: f32,
    /// The noise floor never goes below this level, in dB full scale (default -65.0).
    /// Digital silence (hold, mute) would otherwise pull the floor to -120 dB and make
    /// the line noise that follows look like speech; speech quieter than this plus
    /// `start_db` is not detected.
    pub floor_min_dbfs: f32,
    /// The noise floor is the quietest frame of this last stretch, in ms (default 3000).
    /// Longer follows a changing line more slowly; it must stay longer than the longest
    /// stretch of speech without a pause.
    pub noise_window_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            frame_ms: 20,
            pad_ms: 200,
            min_speech_ms: 250,
            end_silence_ms: 500,
            max_samples: 246_000,
            start_db: 12.0,
            continue_db: 4.0,
            floor_min_dbfs: -65.0,
            noise_window_ms: 3_000,
        }
    }
}

/// The `[vad]` section's own line, printed above it by `sangdam config --print-defaults`
/// ([`FIELD_DOCS`] holds one line per field, each stating its default).
pub const SECTION_DOC: &[(&str, &str)] = &[(
    "vad",
    "Voice-activity segmentation: how a channel is cut into utterances (16 kHz samples).",
)];

/// Documentation of each field, for `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("vad.frame_ms", "Analysis frame in ms, 10 to 50 (default 20)."),
    (
        "vad.pad_ms",
        "Audio kept before and after the detected speech, in ms (default 200); at most end_silence_ms.",
    ),
    (
        "vad.min_speech_ms",
        "Speech shorter than this (a click, a cough) is dropped, in ms (default 250).",
    ),
    (
        "vad.end_silence_ms",
        "Silence that ends an utterance, in ms (default 500); shorter pauses stay inside it.",
    ),
    (
        "vad.max_samples",
        "Longest utterance in 16 kHz samples (default 246000 = 15.4 s, the model's limit);\nlonger speech is split at its quietest point.",
    ),
    (
        "vad.start_db",
        "Speech starts when a frame is this many dB above the noise floor (default 12.0).",
    ),
    (
        "vad.continue_db",
        "Speech goes on while frames stay this many dB above the noise floor (default 4.0).",
    ),
    (
        "vad.floor_min_dbfs",
        "The noise floor never goes below this, in dB full scale (default -65.0), so digital\nsilence does not make the line noise after it look like speech.",
    ),
    (
        "vad.noise_window_ms",
        "The noise floor is the quietest frame of this last stretch, in ms (default 3000).",
    ),
];
