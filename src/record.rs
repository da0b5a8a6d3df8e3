//! What a call is: the records the pipeline makes and the store keeps (a call, its
//! utterances, how a live call came and went, a day's counters). Plain data with serde;
//! this module uses only leaf modules (audio's speaker, sentiment's labels, vad's talk
//! statistics, models' hex), so that the store, the live recorder, the pipeline and
//! insights can all depend on it without depending on each other.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::audio::Speaker;
use crate::sentiment::{CallSentiment, Label, Sentiment};
use crate::vad::talk::{Span, TalkStats};

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The handset went back on the hook.
    OnHook,
    /// No talk for the silence timeout.
    Silence,
    /// The call reached `max_call_minutes` and was cut (a new call follows at once).
    MaxLength,
    /// The audio device failed mid-call; the call is closed and kept.
    DeviceLost,
    /// The daemon was asked to stop.
    Shutdown,
    /// Recording was muted for privacy at the desk.
    Muted,
    /// A replayed file (the `wav` source) ended.
    EndOfStream,
    /// The daemon stopped without closing the call (power cut, crash); found at start-up.
    Interrupted,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndReason::OnHook => "on-hook",
            EndReason::Silence => "silence timeout",
            EndReason::MaxLength => "maximum length",
            EndReason::DeviceLost => "audio device lost",
            EndReason::Shutdown => "shutdown",
            EndReason::Muted => "muted",
            EndReason::EndOfStream => "end of input",
            EndReason::Interrupted => "interrupted (power cut or crash)",
        })
    }
}

/// A call's identity: the first 16 bytes of the SHA-256 of the audio file's bytes, so
/// analysing the same recording twice finds the same call.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct CallId(pub [u8; 16]);

impl CallId {
    pub fn from_digest(sha256: &[u8]) -> Self {
        let mut id = [0u8; 16];
        let n = sha256.len().min(16);
        id[..n].copy_from_slice(&sha256[..n]);
        CallId(id)
    }

    pub fn to_hex(&self) -> String {
        crate::models::hex(&self.0)
    }

    /// The first 12 hex digits, for tables and transcript lines.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Text that is not a call id (32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a call id (32 hex digits)")]
pub struct BadCallId(pub String);

impl FromStr for CallId {
    type Err = BadCallId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = parse_hex(s).filter(|b| b.len() == 16);
        bytes
            .map(|b| CallId::from_digest(&b))
            .ok_or_else(|| BadCallId(s.to_owned()))
    }
}

/// Bytes of an even-length hex string.
pub(crate) fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: CallId,
    /// The path the recording was read from, as given.
    pub source: String,
    pub duration_s: f64,
    /// Sample rate of the recording (before resampling).
    pub sample_rate: u32,
    pub channels: u16,
    /// Unix seconds, given by the caller.
    pub analysed_at: u64,
    pub utterance_count: u32,
    /// Which ASR model transcribed it: manifest name and hash prefix.
    pub asr_model: String,
    /// Per-speaker sentiment, overall label and trend (absent when no sentiment model
    /// was installed, or for calls stored by an older build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<CallSentiment>,
    /// Talk time per side, silence, overlaps (absent for calls stored by an older build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk: Option<TalkStats>,
    /// Set for calls recorded from the live line by `sangdam run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveCall>,
}

/// How a call recorded by the daemon came and went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveCall {
    /// Unix seconds at the start of the call, by the box's clock.
    pub started_at: u64,
    pub ended_by: EndReason,
    /// The audio source ("alsa plughw:1,0").
    pub line: String,
    /// The spool's number for the call (unique on the box).
    #[serde(default)]
    pub seq: u64,
    /// Marked for review with the desk button.
    #[serde(default)]
    pub marked: bool,
    /// The raw audio was discarded before recognition (the spool was full): the call
    /// has no transcript, but it is counted.
    #[serde(default)]
    pub audio_dropped: bool,
    /// Parts of the call that were not recorded (disk full, device lost), seconds.
    #[serde(default)]
    pub unrecorded_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UtteranceRecord {
    pub channel: u16,
    pub speaker: Speaker,
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCounters {
    pub calls: u64,
    pub utterances: u64,
    pub audio_seconds: f64,
    /// Calls by overall sentiment (calls without sentiment count in none of the three).
    #[serde(default)]
    pub positive_calls: u64,
    #[serde(default)]
    pub negative_calls: u64,
    /// Calls whose deciding speaker said nothing polar (schema 2; 0 in older days).
    #[serde(default)]
    pub neutral_calls: u64,
    /// Utterances by label (empty texts count in none of the three).
    #[serde(default)]
    pub positive_utterances: u64,
    #[serde(default)]
    pub negative_utterances: u64,
    /// Schema 2; 0 in older days.
    #[serde(default)]
    pub neutral_utterances: u64,
    /// Live calls whose audio was discarded before recognition (spool full).
    #[serde(default)]
    pub audio_dropped: u64,
    /// Live calls marked for review at the desk.
    #[serde(default)]
    pub marked: u64,
}

impl DayCounters {
    /// Adds one call and its utterances.
    pub fn add(&mut self, call: &CallRecord, utterances: &[UtteranceRecord]) {
        self.calls += 1;
        self.utterances += utterances.len() as u64;
        self.audio_seconds += call.duration_s;
        if let Some(live) = &call.live {
            self.audio_dropped += u64::from(live.audio_dropped);
            self.marked += u64::from(live.marked);
        }
        match call.sentiment.as_ref().map(|s| s.overall) {
            Some(Label::Positive) => self.positive_calls += 1,
            Some(Label::Negative) => self.negative_calls += 1,
            Some(Label::Neutral) => self.neutral_calls += 1,
            Some(Label::Empty) | None => {}
        }
        for u in utterances {
            match u.sentiment.map(|s| s.label) {
                Some(Label::Positive) => self.positive_utterances += 1,
                Some(Label::Negative) => self.negative_utterances += 1,
                Some(Label::Neutral) => self.neutral_utterances += 1,
                Some(Label::Empty) | None => {}
            }
        }
    }
}

impl Span for UtteranceRecord {
    fn speaker(&self) -> Speaker {
        self.speaker
    }
    fn span(&self) -> (f64, f64) {
        (self.start_s, self.end_s)
    }
}
