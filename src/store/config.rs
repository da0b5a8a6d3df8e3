//! `[store]` in the config file: where the store lives and the branch's time zone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::setting::InvalidSetting;

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
            time_zone: super::DEFAULT_TIME_ZONE.to_owned(),
        }
    }
}

impl StoreConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("store", self.checks())
    }

    fn checks(&self) -> Result<(), String> {
        sangdam_wire::day::time_zone(&self.time_zone)
            .map(|_| ())
            .map_err(|e| format!("store.time_zone: {e}"))
    }
}

/// Documentation of `[store]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("store", "Local storage of calls, transcripts and counters (sled)."),
    ("store.data_dir", "Folder of the store. Overridden by --data or SANGDAM_DATA. On the box: /var/lib/sangdam."),
    ("store.time_zone", "IANA time zone of the branch, e.g. \"Asia/Seoul\" (the default) or \"UTC\": it decides which day a call counts on in the day counters, the insights' periods and the batches sent to the hub, and the times the pages show. Changing it counts the stored days again at the next start; days already sent to the hub stay as they were sent."),
];
