//! `[live]` in the config file: the line's source, the spool and the call detector
//! (`[live.detector]`, whose settings live with the detector).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::setting::InvalidSetting;

/// `sangdam run`: where live audio comes from and how calls are found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    pub source: crate::capture::SourceKind,
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    pub period_frames: usize,
    pub buffer_frames: usize,
    pub wav: PathBuf,
    pub wav_speed: f64,
    pub exit_at_end: bool,
    pub spool_max_mb: u64,
    pub keep_marked_audio: bool,
    pub keep_audio: bool,
    pub keep_audio_max_mb: u64,
    pub generator_rate: u32,
    pub generator: Vec<crate::capture::Segment>,
    pub detector: super::DetectorConfig,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            source: crate::capture::SourceKind::Alsa,
            device: "default".to_owned(),
            rate: 8_000,
            channels: 1,
            period_frames: 160,
            buffer_frames: 1_600,
            wav: PathBuf::new(),
            wav_speed: 1.0,
            exit_at_end: true,
            spool_max_mb: 1_024,
            keep_marked_audio: true,
            keep_audio: false,
            keep_audio_max_mb: 200,
            generator_rate: 8_000,
            generator: Vec::new(),
            detector: super::DetectorConfig::default(),
        }
    }
}

impl LiveConfig {
    /// Checks values that parse but cannot work (the detector's included).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("live", self.checks())?;
        self.detector.validate()
    }

    fn checks(&self) -> Result<(), String> {
        if !matches!(self.rate, 8_000 | 16_000) {
            return Err(format!("live.rate = {}: use 8000 or 16000", self.rate));
        }
        if !(1..=2).contains(&self.channels) {
            return Err(format!("live.channels = {}: use 1 or 2", self.channels));
        }
        if self.period_frames == 0
            || self.period_frames * self.channels as usize > crate::capture::MAX_PERIOD_SAMPLES
        {
            return Err(format!(
                "live.period_frames = {}: use 1 to {} frames",
                self.period_frames,
                crate::capture::MAX_PERIOD_SAMPLES / self.channels as usize
            ));
        }
        if self.spool_max_mb == 0 {
            return Err("live.spool_max_mb must be at least 1".into());
        }
        if !(0.0..=1000.0).contains(&self.wav_speed) {
            return Err("live.wav_speed must be 0 (as fast as possible) to 1000".into());
        }
        Ok(())
    }
}

/// `[live.detector]`: how calls are found on the line ([`super::CallDetector`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// A 20 ms frame louder than this (on any channel) is talk, dB full scale.
    pub speech_dbfs: f32,
    /// Talk needed to start a call (voice mode), ms.
    pub start_ms: u32,
    /// Silence that ends a call (voice mode), seconds.
    pub silence_timeout_s: f32,
    /// Audio kept before the detected start, ms.
    pub preroll_ms: u32,
    /// Silence kept after the last talk, ms.
    pub tail_ms: u32,
    /// Calls are cut at this length, minutes (bounds one spool file).
    pub max_call_minutes: u32,
    /// Calls shorter than this (a click, a wrong number) are not kept, seconds.
    pub min_call_s: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            speech_dbfs: -45.0,
            start_ms: 300,
            silence_timeout_s: 8.0,
            preroll_ms: 500,
            tail_ms: 1_000,
            max_call_minutes: 120,
            min_call_s: 1.0,
        }
    }
}

impl DetectorConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("live.detector", self.checks())
    }

    fn checks(&self) -> Result<(), String> {
        if !(-90.0..=0.0).contains(&self.speech_dbfs) {
            return Err(format!(
                "live.detector.speech_dbfs = {} is outside -90..=0 dBFS",
                self.speech_dbfs
            ));
        }
        if !(0.5..=3600.0).contains(&self.silence_timeout_s) {
            return Err("live.detector.silence_timeout_s must be 0.5 to 3600 seconds".into());
        }
        if self.max_call_minutes == 0 {
            return Err("live.detector.max_call_minutes must be at least 1".into());
        }
        if self.tail_ms as f32 > self.silence_timeout_s * 1000.0 {
            return Err("live.detector.tail_ms must not exceed silence_timeout_s".into());
        }
        Ok(())
    }
}

/// Documentation of `[live]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("live", "sangdam run: the live phone line. The daemon records each call to a spool on disk and transcribes it like `sangdam analyze`."),
    ("live.source", "alsa (a sound card or USB telephone adapter), cpal (second backend), wav (replay live.wav as if it were the line), generator (the live.generator schedule). alsa and cpal need the device build (--features device)."),
    ("live.device", "ALSA device for alsa (\"default\", \"plughw:1,0\", a PCM from asound.conf; `arecord -L` lists them), or the cpal device name."),
    ("live.rate", "Sample rate asked of the device: 8000 (telephone) or 16000 Hz."),
    ("live.channels", "1 (both sides mixed) or 2 (agent and customer on audio.agent_channel and audio.customer_channel)."),
    ("live.period_frames", "Frames per device read (160 = 20 ms at 8 kHz)."),
    ("live.buffer_frames", "Device buffer in frames; larger survives longer stalls (xruns) at the cost of latency."),
    ("live.wav", "The WAV file the wav source replays."),
    ("live.wav_speed", "Replay speed of the wav and generator sources: 1.0 is real time, 0 as fast as possible."),
    ("live.exit_at_end", "For the wav and generator sources: stop once the input has ended and every call is stored."),
    ("live.spool_max_mb", "Disk the spool of calls waiting for recognition may use, MB. When full, the oldest waiting audio is discarded; its call stays stored and counted (audio_dropped)."),
    ("live.keep_marked_audio", "Keep the audio of calls marked for review with the desk button in DATA/recordings/<call id>.wav, for a supervisor to listen to."),
    ("live.keep_audio", "Keep every call's audio in DATA/recordings (off: audio is deleted once the call is transcribed)."),
    ("live.keep_audio_max_mb", "Disk DATA/recordings may use, MB; the oldest recordings are deleted first."),
    ("live.generator_rate", "Sample rate of the generator source."),
    ("live.generator", "The generator's schedule: [[live.generator]] kind = \"talk\"|\"tone\"|\"noise\"|\"silence\", seconds, level_dbfs, freq_hz, channel."),
    ("live.detector", "Finding calls on the line: by the off-hook line when panel.hook_line is set, else by voice."),
    ("live.detector.speech_dbfs", "A 20 ms frame louder than this on either channel counts as talk, dB full scale."),
    ("live.detector.start_ms", "Talk that starts a call (voice mode), ms."),
    ("live.detector.silence_timeout_s", "Silence that ends a call (voice mode), seconds."),
    ("live.detector.preroll_ms", "Audio kept from before the detected start, ms."),
    ("live.detector.tail_ms", "Silence kept after the last talk, ms."),
    ("live.detector.max_call_minutes", "Calls are cut at this length (a new call continues at once)."),
    ("live.detector.min_call_s", "Calls shorter than this (to their last talk) are not kept: clicks, a cough."),
];
