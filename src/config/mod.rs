//! The TOML configuration.
//!
//! **Where settings live.** Each section's settings struct, its defaults, its
//! `FIELD_DOCS` and its own `validate` live in the module that reads them: in that
//! module's `config.rs` leaf (`asr/config.rs`, `audio/config.rs`, `insights/config.rs`,
//! `live/config.rs` with `[live.detector]`, `models/config.rs`, `panel/config.rs`,
//! `store/config.rs`, `sync/config.rs`, `vad/config.rs`), or in the module's one file
//! (`[privacy]` in [`crate::redact`]). Those leaves import no module above theirs, so
//! nothing needs this module to know its settings. This module only assembles the
//! sections into [`Config`], reads and prints the file, and keeps `[log]`, which only the
//! binary reads. The old paths (`config::AsrConfig`, ...) are re-exported here.
//!
//! Looked up in this order: `--config FILE`, then `/etc/sangdam/sangdam.toml`, then the
//! built-in defaults. Unknown keys are errors (a typo must not silently fall back to a
//! default on a box nobody is watching). `sangdam config --print-defaults` prints the
//! defaults as a commented file, generated from [`Config::default`] and the [`FIELD_DOCS`]
//! table so the two cannot drift apart; a test fails if a field has no documentation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::asr::AsrConfig;
pub use crate::audio::AudioConfig;
pub use crate::insights::InsightsConfig;
pub use crate::live::{DetectorConfig, LiveConfig};
pub use crate::models::ModelsConfig;
pub use crate::panel::{PanelBackend, PanelConfig};
pub use crate::redact::PrivacyConfig;
pub use crate::setting::InvalidSetting;
pub use crate::store::StoreConfig;
pub use crate::sync::SyncConfig;
pub use crate::vad::VadConfig;

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
    pub sync: SyncConfig,
    pub log: LogConfig,
}

/// `[log]`: the tracing filter. Only the binary reads it (its logging set-up), so it
/// stays here.
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

/// Documentation of `[log]` and its field, printed above them by `--print-defaults`.
/// Keys are `section` or `section.field`; the other sections' are in their modules.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("log", "Logging (tracing). RUST_LOG overrides it."),
    (
        "log.level",
        "One of error, warn, info, debug, trace, or a tracing filter such as \"sangdam=debug\".",
    ),
];

/// Config text that does not parse: TOML syntax, an unknown key or a wrong type. The
/// message is one line with the position; it never quotes a line that may hold the
/// device key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct ParseError {
    /// The 1-based line of the problem, when TOML says where it is.
    pub line: Option<usize>,
    pub message: String,
}

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
        let cfg = Config::parse(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.message,
        })?;
        crate::secret::check_inline_key(&path, &cfg.sync.key).map_err(|message| {
            ConfigError::Invalid {
                path: path.clone(),
                message,
            }
        })?;
        cfg.validate().map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.message,
        })?;
        Ok((cfg, ConfigSource::File(path)))
    }

    /// Parses config text; the error is one line with the position and the key. The
    /// source line is left out when it may hold the device key (see [`secret_line`]).
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1);
            if let Some(line) = e.span().and_then(|s| secret_line(text, s.start)) {
                return ParseError {
                    line: Some(line),
                    message: format!(
                        "line {line}: {} (the line is not shown: it may hold the device key)",
                        hide_hex(&e.message().split_whitespace().collect::<Vec<_>>().join(" "))
                    ),
                };
            }
            ParseError {
                line,
                message: e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            }
        })
    }

    /// Checks values that parse but cannot work, section by section.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.store.validate()?;
        self.asr.validate()?;
        self.audio.validate()?;
        self.insights.validate()?;
        self.live.validate()?;
        self.sync.validate()?;
        crate::vad::Segmenter::new(self.vad.clone())
            .map(|_| ())
            .map_err(|e| InvalidSetting::new("vad", format!("[vad]: {e}")))
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
        shown.sync.key = crate::secret::shown_key(&self.sync.key).to_owned();
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

/// Every section's documentation, in the file's order.
const SECTION_DOCS: &[&[(&str, &str)]] = &[
    crate::store::config::FIELD_DOCS,
    crate::models::config::FIELD_DOCS,
    crate::audio::config::FIELD_DOCS,
    crate::vad::config::SECTION_DOC,
    crate::vad::FIELD_DOCS,
    crate::asr::config::FIELD_DOCS,
    crate::insights::config::FIELD_DOCS,
    crate::redact::FIELD_DOCS,
    crate::live::config::FIELD_DOCS,
    crate::panel::config::FIELD_DOCS,
    crate::sync::FIELD_DOCS,
    FIELD_DOCS,
];

/// Documentation for `key` (`section` or `section.field`), from the section's
/// `FIELD_DOCS`.
pub fn field_doc(key: &str) -> Option<&'static str> {
    SECTION_DOCS
        .iter()
        .flat_map(|docs| docs.iter())
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
        assert!(e.message.contains("data_dri"), "{e}");
        assert_eq!(e.line, Some(2));
        let e = Config::parse("[asr]\nbatch = \"two\"\n").unwrap_err();
        assert!(e.message.contains("line 2"), "{e}");
        let partial = Config::parse("[asr]\nworkers = 2\n").unwrap();
        assert_eq!(partial.asr.workers, 2);
        assert_eq!(partial.asr.batch, 1);
    }

    #[test]
    fn validation_catches_values_that_cannot_work() {
        let mut c = Config::default();
        c.asr.batch = 0;
        assert!(c.validate().unwrap_err().message.contains("asr.batch"));
        let mut c = Config::default();
        c.audio.customer_channel = c.audio.agent_channel;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.store.time_zone = "Seoul".into();
        let e = c.validate().unwrap_err();
        assert_eq!(e.section, "store");
        let e = e.message;
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
