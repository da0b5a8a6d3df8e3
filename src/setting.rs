//! What a settings check says when a value parses but cannot work: which section of the
//! config file, and a message that names the field, the value and the fix. A leaf, so
//! every module's `config.rs` can return it without importing [`crate::config`].

/// A `[section]` of the config file holds a value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct InvalidSetting {
    /// The section, e.g. `asr` or `live.detector`.
    pub section: &'static str,
    /// One line: the field, its value and the fix.
    pub message: String,
}

impl InvalidSetting {
    pub fn new(section: &'static str, message: impl Into<String>) -> InvalidSetting {
        InvalidSetting {
            section,
            message: message.into(),
        }
    }

    /// A check of `section` written as `Result<(), String>`, typed.
    pub fn check(section: &'static str, r: Result<(), String>) -> Result<(), InvalidSetting> {
        r.map_err(|m| InvalidSetting::new(section, m))
    }
}
