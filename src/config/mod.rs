//! The TOML configuration.
//!
//! Looked up in this order: `--config FILE`, then `/etc/sangdam/sangdam.toml`, then the
//! built-in defaults. Unknown keys are errors (a typo must not silently fall back to a
//! default on a box nobody is watching). `sangdam config --print-defaults` prints the
//! defaults as a commented file, generated from [`Config::default`] and the [`FIELD_DOCS`]
//! table so the two cannot drift apart; a test fails if a field has no documentation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audio::ChannelMap;
use crate::vad::VadConfig;

/// Where the box's installed config lives.
pub const SYSTEM_CONFIG: &str = "/etc/sangdam/sangdam.toml";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config file {path} cannot be read: {source} (check the path given to --config)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message} (fix it, or start from `sangdam config --print-defaults`)")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub models: ModelsConfig,
    pub audio: AudioConfig,
    pub vad: VadConfig,
    pub asr: AsrConfig,
    pub insights: InsightsConfig,
    pub privacy: PrivacyConfig,
    pub live: LiveConfig,
    pub panel: PanelConfig,
    pub sync: crate::sync::SyncConfig,
    pub log: LogConfig,
}

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
    pub detector: crate::live::DetectorConfig,
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
            detector: crate::live::DetectorConfig::default(),
        }
    }
}

/// The desk panel: status LED, button, off-hook line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PanelConfig {
    pub backend: PanelBackend,
    pub chip: String,
    pub led_line: u32,
    pub button_line: u32,
    /// -1: no off-hook line.
    pub hook_line: i64,
    pub hook_active_high: bool,
    pub file_dir: PathBuf,
    pub debounce_ms: u32,
    pub long_press_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PanelBackend {
    None,
    Gpio,
    File,
}

impl Default for PanelConfig {
    fn default() -> Self {
        PanelConfig {
            backend: PanelBackend::None,
            chip: "/dev/gpiochip0".to_owned(),
            led_line: 17,
            button_line: 27,
            hook_line: -1,
            hook_active_high: false,
            file_dir: PathBuf::from("sangdam-panel"),
            debounce_ms: 30,
            long_press_ms: 2_000,
        }
    }
}

impl PanelConfig {
    pub fn hook(&self) -> Option<u32> {
        u32::try_from(self.hook_line).ok()
    }

    pub fn timing(&self) -> crate::panel::PanelTiming {
        crate::panel::PanelTiming {
            debounce_ms: self.debounce_ms,
            long_press_ms: self.long_press_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    pub redact_transcripts: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            redact_transcripts: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightsConfig {
    pub extra_stopwords: Vec<String>,
    pub top: usize,
    pub max_calls: usize,
    pub refresh_hours: u32,
    pub serve_addr: String,
    pub allowed_hosts: Vec<String>,
    /// Empty: `viewers` in the store's data folder (see [`Config::viewers_path`]).
    pub viewers_file: PathBuf,
    pub products: Vec<crate::insights::Product>,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        InsightsConfig {
            extra_stopwords: Vec::new(),
            top: 30,
            max_calls: 50_000,
            refresh_hours: 24,
            serve_addr: "127.0.0.1:8787".to_owned(),
            allowed_hosts: Vec::new(),
            viewers_file: PathBuf::new(),
            products: crate::insights::default_catalogue(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// IANA time zone that decides which day a call counts on.
    pub time_zone: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("sangdam-data"),
            time_zone: crate::store::DEFAULT_TIME_ZONE.to_owned(),
        }
    }
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub agent_channel: u16,
    pub customer_channel: u16,
}

impl Default for AudioConfig {
    fn default() -> Self {
        let map = ChannelMap::default();
        AudioConfig {
            agent_channel: map.agent,
            customer_channel: map.customer,
        }
    }
}

impl AudioConfig {
    pub fn channel_map(&self) -> ChannelMap {
        ChannelMap {
            agent: self.agent_channel,
            customer: self.customer_channel,
        }
    }
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

/// Documentation of every section and field, printed above it by `--print-defaults`.
/// Keys are `section` or `section.field`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("store", "Local storage of calls, transcripts and counters (sled)."),
    ("store.data_dir", "Folder of the store. Overridden by --data or SANGDAM_DATA. On the box: /var/lib/sangdam."),
    ("store.time_zone", "IANA time zone of the branch, e.g. \"Asia/Seoul\" (the default) or \"UTC\": it decides which day a call counts on in the day counters, the insights' periods and the batches sent to the hub, and the times the pages show. Changing it counts the stored days again at the next start; days already sent to the hub stay as they were sent."),
    ("models", "Installed models: a folder with manifest.toml; every file is checked against its sha256 at start-up."),
    ("models.dir", "Folder holding manifest.toml and the model files. On the box: /usr/share/sangdam/models."),
    ("models.asr", "Name of the speech-recognition model in the manifest (kind asr-ctc)."),
    ("models.lm", "Name of the language model in the manifest (kind ngram-lm) that the beam search fuses; \"\" for none (beam search without an LM). When it is missing or damaged, decoding falls back to greedy and a warning names the file."),
    ("models.sentiment", "Name of the sentiment model in the manifest (kind sentiment); \"\" turns sentiment off. When it is not installed, calls are stored without sentiment and a warning says so."),
    ("audio", "How recorded calls are read."),
    ("audio.agent_channel", "Channel index (0-based) of the agent in two-channel recordings."),
    ("audio.customer_channel", "Channel index (0-based) of the customer in two-channel recordings."),
    ("vad", "Voice-activity segmentation: how a channel is cut into utterances (16 kHz samples)."),
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
    ("insights", "Keywords by sentiment, drivers of satisfaction and recommendations (sangdam insights, recommend, report, serve)."),
    ("insights.extra_stopwords", "Words never to report as keywords, added to the shipped Korean stop-word list (ranks.nl, data/stopwords-ko)."),
    ("insights.top", "How many keywords and drivers each list shows."),
    ("insights.max_calls", "The newest calls the models are trained on; bounds memory and time on the box."),
    ("insights.refresh_hours", "Insights older than this are recomputed before they are shown (0: only by sangdam insights --refresh)."),
    ("insights.serve_addr", "Where sangdam serve listens. Localhost by default: set e.g. \"0.0.0.0:8787\" to show the page to the branch office's network. The server speaks plain HTTP, so the login's password and session cookie cross that network in clear (the cookie is HttpOnly and SameSite=Strict but not Secure: browsers drop a Secure cookie set over plain HTTP from any address but localhost). Open it only to a trusted office network, or reach the box's localhost through an SSH tunnel."),
    ("insights.allowed_hosts", "Host names, besides localhost and IP addresses, that sangdam serve answers to, e.g. [\"sangdam-07.branch.local\"] (the name the office types in its browser). Requests for any other name are refused with 421, which blocks DNS rebinding, and a login form posted from another origin is refused with 403. [\"*\"] turns the Host check off."),
    ("insights.viewers_file", "Who may log in to sangdam serve's page: NAME<TAB>argon2id-hash lines written by `sangdam add-viewer NAME` (password read from the terminal or stdin, 12 to 128 characters) and `sangdam remove-viewer NAME`. \"\" (the default): the file viewers in store.data_dir. serve refuses to start without a viewer, or when group or others may read the file (chmod 600). Every page but the login form needs a session; sessions last 12 hours, are kept in memory (a restart of serve logs everyone out) and end at log-out. Restart serve after changing the viewers."),
    ("insights.products", "The product catalogue: id, name, aliases (other ways callers say it), category. Recommendations and per-call suggestions name these."),
    ("insights.products.id", "Stable product id (used in synced recommendations)."),
    ("insights.products.name", "Product name as shown."),
    ("insights.products.aliases", "Other spellings callers use; spaces and case are ignored."),
    ("insights.products.category", "Free-form category, e.g. card, telecom, education."),
    ("privacy", "Personal data in transcripts."),
    ("privacy.redact_transcripts", "Replace resident registration, card, account and phone numbers and e-mail addresses (written or spoken as Korean digits) with tags such as [전화번호] before transcripts are stored. On by default."),
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
    ("panel", "The desk panel on GPIO: status LED, a button (short press: mark the call for review; long press: mute recording), the phone's off-hook line. Pin map: board/pins.md."),
    ("panel.backend", "none, gpio (the board's GPIO character device; device build), or file (host stand-in: DIR/led is written, DIR/button and DIR/hook are read)."),
    ("panel.chip", "GPIO character device."),
    ("panel.led_line", "Line offset of the status LED (output)."),
    ("panel.button_line", "Line offset of the button (input, pressed = low, pull-up)."),
    ("panel.hook_line", "Line offset of the off-hook input; -1 for none (calls are then found by voice)."),
    ("panel.hook_active_high", "The off-hook line reads high when off the hook (default: low, as with an opto-isolator to ground)."),
    ("panel.file_dir", "Folder of the file backend's led, button and hook files."),
    ("panel.debounce_ms", "A button or hook level must hold this long to count, ms."),
    ("panel.long_press_ms", "A press this long toggles the privacy mute, ms."),
    ("log", "Logging (tracing). RUST_LOG overrides it."),
    ("log.level", "One of error, warn, info, debug, trace, or a tracing filter such as \"sangdam=debug\"."),
];

/// Where the effective configuration came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::Defaults => f.write_str("built-in defaults"),
        }
    }
}

impl Config {
    /// Loads `explicit` if given (it must exist), else the system config if present, else
    /// the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None if Path::new(SYSTEM_CONFIG).is_file() => PathBuf::from(SYSTEM_CONFIG),
            None => return Ok((Config::default(), ConfigSource::Defaults)),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let cfg = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })?;
        crate::sync::check_inline_key(&path, &cfg.sync.key).map_err(|message| {
            ConfigError::Invalid {
                path: path.clone(),
                message,
            }
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        Ok((cfg, ConfigSource::File(path)))
    }

    /// Parses config text; the error is one line with the position and the key. The
    /// source line is left out when it may hold the device key (see [`secret_line`]).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            if let Some(line) = e.span().and_then(|s| secret_line(text, s.start)) {
                return format!(
                    "line {line}: {} (the line is not shown: it may hold the device key)",
                    hide_hex(&e.message().split_whitespace().collect::<Vec<_>>().join(" "))
                );
            }
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        sangdam_wire::day::time_zone(&self.store.time_zone)
            .map_err(|e| format!("store.time_zone: {e}"))?;
        if self.asr.batch == 0 {
            return Err("asr.batch must be at least 1".into());
        }
        if self.asr.workers == 0 {
            return Err("asr.workers must be at least 1".into());
        }
        if !matches!(self.asr.decoder.as_str(), "beam" | "greedy") {
            return Err(format!(
                "asr.decoder is {:?}: it must be \"beam\" or \"greedy\"",
                self.asr.decoder
            ));
        }
        if self.asr.beam == 0 || self.asr.beam > 256 {
            return Err(format!(
                "asr.beam is {}: choose 1 to 256 (8 is the tuned width)",
                self.asr.beam
            ));
        }
        if !(self.asr.beam_prune.is_finite() && self.asr.beam_prune > 0.0) {
            return Err(format!(
                "asr.beam_prune is {}: it must be a positive number (8 is the default)",
                self.asr.beam_prune
            ));
        }
        for (name, v) in [
            ("asr.lm_alpha", self.asr.lm_alpha),
            ("asr.lm_beta", self.asr.lm_beta),
            ("asr.hotword_bonus", self.asr.hotword_bonus),
        ] {
            if let Some(v) = v {
                if !v.is_finite() || v.abs() > 100.0 {
                    return Err(format!(
                        "{name} is {v}: it must be a number between -100 and 100"
                    ));
                }
            }
        }
        if self.audio.agent_channel == self.audio.customer_channel {
            return Err(format!(
                "audio.agent_channel and audio.customer_channel are both {}: they must name different channels",
                self.audio.agent_channel
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for p in &self.insights.products {
            if p.id.trim().is_empty() || p.name.trim().is_empty() {
                return Err("every [[insights.products]] needs an id and a name".into());
            }
            if !ids.insert(p.id.as_str()) {
                return Err(format!(
                    "[[insights.products]]: the id {:?} is used twice; ids must be unique",
                    p.id
                ));
            }
        }
        for h in &self.insights.allowed_hosts {
            if h.trim() != "*" && crate::insights::report::host_name(h).is_none() {
                return Err(format!(
                    "insights.allowed_hosts: {h:?} is not a host name; write names as the browser's address bar shows them, e.g. \"sangdam-07.branch.local\""
                ));
            }
        }
        if self.insights.top == 0 || self.insights.max_calls == 0 {
            return Err("insights.top and insights.max_calls must be at least 1".into());
        }
        let l = &self.live;
        if !matches!(l.rate, 8_000 | 16_000) {
            return Err(format!("live.rate = {}: use 8000 or 16000", l.rate));
        }
        if !(1..=2).contains(&l.channels) {
            return Err(format!("live.channels = {}: use 1 or 2", l.channels));
        }
        if l.period_frames == 0
            || l.period_frames * l.channels as usize > crate::capture::MAX_PERIOD_SAMPLES
        {
            return Err(format!(
                "live.period_frames = {}: use 1 to {} frames",
                l.period_frames,
                crate::capture::MAX_PERIOD_SAMPLES / l.channels as usize
            ));
        }
        if l.spool_max_mb == 0 {
            return Err("live.spool_max_mb must be at least 1".into());
        }
        if !(0.0..=1000.0).contains(&l.wav_speed) {
            return Err("live.wav_speed must be 0 (as fast as possible) to 1000".into());
        }
        l.detector.validate()?;
        self.sync.validate()?;
        crate::vad::Segmenter::new(self.vad.clone())
            .map(|_| ())
            .map_err(|e| format!("[vad]: {e}"))
    }

    /// The file of the report page's viewers: `insights.viewers_file`, or `viewers` in
    /// the store's data folder when that is empty.
    pub fn viewers_path(&self) -> PathBuf {
        if self.insights.viewers_file.as_os_str().is_empty() {
            self.store.data_dir.join("viewers")
        } else {
            self.insights.viewers_file.clone()
        }
    }

    /// The configuration as `sangdam config` shows it: TOML, with the device key
    /// replaced by `"<set>"` or `"<unset>"`.
    pub fn shown(&self) -> Result<String, toml::ser::Error> {
        let mut shown = self.clone();
        shown.sync.key = crate::sync::shown_key(&self.sync.key).to_owned();
        toml::to_string(&shown)
    }

    /// The defaults as a TOML file with every field documented.
    pub fn commented_defaults() -> String {
        let body = toml::to_string(&Config::default()).unwrap_or_default();
        let mut out = String::from(
            "# sangdam configuration. Every field is optional: a missing field takes the\n\
             # value shown here. Unknown fields are errors.\n",
        );
        let mut section = String::new();
        for line in body.lines() {
            let trimmed = line.trim();
            if let Some(name) = section_name(trimmed) {
                let first = section != name;
                section = name.to_owned();
                out.push('\n');
                if first {
                    push_doc(&mut out, &section);
                }
            } else if let Some((key, _)) = trimmed.split_once('=') {
                let key = format!("{section}.{}", key.trim());
                push_doc(&mut out, &key);
            } else if trimmed.is_empty() {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The 1-based line of byte `offset` in `text` if that line may hold the device key: it
/// mentions a key, or it lies in the `[sync]` table.
fn secret_line(text: &str, offset: usize) -> Option<usize> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let in_sync = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .is_some_and(|h| h.split('#').next().unwrap_or("").replace(' ', "") == "[sync]");
    (in_sync || line.to_ascii_lowercase().contains("key"))
        .then(|| text[..start].matches('\n').count() + 1)
}

/// `s` with every run of 8 or more hex digits (a key, or part of one) replaced by `…`.
fn hide_hex(s: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 8 { "…" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// The name of a `[section]` or `[[array.of.tables]]` header line.
fn section_name(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(inner),
    )
}

/// Documentation for `key`, from [`FIELD_DOCS`] or the documented sub-structures.
pub fn field_doc(key: &str) -> Option<&'static str> {
    FIELD_DOCS
        .iter()
        .chain(crate::vad::FIELD_DOCS.iter())
        .chain(crate::sync::FIELD_DOCS.iter())
        .find(|(k, _)| *k == key)
        .map(|(_, d)| *d)
}

fn push_doc(out: &mut String, key: &str) {
    if let Some(doc) = field_doc(key) {
        for l in doc.lines() {
            out.push_str("# ");
            out.push_str(l);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_defaults_parse_back_to_defaults() {
        let text = Config::commented_defaults();
        assert_eq!(Config::parse(&text).unwrap(), Config::default());
    }

    #[test]
    fn every_field_is_documented() {
        let body = toml::to_string(&Config::default()).unwrap();
        let mut section = String::new();
        for line in body.lines().map(str::trim) {
            if let Some(name) = section_name(line) {
                section = name.to_owned();
                assert!(
                    field_doc(&section).is_some(),
                    "section [{section}] has no doc"
                );
            } else if let Some((key, _)) = line.split_once('=') {
                let key = format!("{section}.{}", key.trim());
                assert!(field_doc(&key).is_some(), "{key} has no doc in FIELD_DOCS");
            }
        }
    }

    #[test]
    fn unknown_and_mistyped_fields_are_errors_with_position() {
        let e = Config::parse("[store]\ndata_dri = \"x\"\n").unwrap_err();
        assert!(e.contains("data_dri"), "{e}");
        let e = Config::parse("[asr]\nbatch = \"two\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let partial = Config::parse("[asr]\nworkers = 2\n").unwrap();
        assert_eq!(partial.asr.workers, 2);
        assert_eq!(partial.asr.batch, 1);
    }

    #[test]
    fn validation_catches_values_that_cannot_work() {
        let mut c = Config::default();
        c.asr.batch = 0;
        assert!(c.validate().unwrap_err().contains("asr.batch"));
        let mut c = Config::default();
        c.audio.customer_channel = c.audio.agent_channel;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.store.time_zone = "Seoul".into();
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("store.time_zone") && e.contains("Asia/Seoul"),
            "{e}"
        );
        c.store.time_zone = "UTC".into();
        assert!(c.validate().is_ok());
        assert_eq!(Config::default().store.time_zone, "Asia/Seoul");
        assert!(Config::default().validate().is_ok());
    }
}
