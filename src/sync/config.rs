//! `[sync]` in the config file: where the hub is, the device key, the schedule and the
//! limits. A leaf of [`crate::sync`]: the config file reads it without importing sync.

use serde::{Deserialize, Serialize};

use crate::setting::InvalidSetting;

use sangdam_wire as wire;

use super::SyncError;
use crate::secret::{check_private, credential_path, shown_key};

/// `[sync]` in the config. Its `Debug` never shows the key (`"<set>"` or `"<unset>"`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    pub enabled: bool,
    pub hub_url: String,
    /// Accept an `http://` hub_url (off: only `https://`).
    pub allow_plain_http: bool,
    pub device_id: String,
    pub key: String,
    pub key_file: std::path::PathBuf,
    pub ca_file: std::path::PathBuf,
    pub interval_minutes: u32,
    pub max_kbps: u32,
    pub transcripts: bool,
    pub outbox_max_batches: usize,
    pub timeout_s: u32,
    pub retries: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            enabled: false,
            hub_url: String::new(),
            allow_plain_http: false,
            device_id: String::new(),
            key: String::new(),
            key_file: std::path::PathBuf::new(),
            ca_file: std::path::PathBuf::new(),
            interval_minutes: 60,
            max_kbps: 256,
            transcripts: false,
            outbox_max_batches: 120,
            timeout_s: 30,
            retries: 3,
        }
    }
}

impl std::fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("enabled", &self.enabled)
            .field("hub_url", &self.hub_url)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("device_id", &self.device_id)
            .field("key", &shown_key(&self.key))
            .field("key_file", &self.key_file)
            .field("ca_file", &self.ca_file)
            .field("interval_minutes", &self.interval_minutes)
            .field("max_kbps", &self.max_kbps)
            .field("transcripts", &self.transcripts)
            .field("outbox_max_batches", &self.outbox_max_batches)
            .field("timeout_s", &self.timeout_s)
            .field("retries", &self.retries)
            .finish()
    }
}

pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("sync", "Upstream sync of aggregates and recommendations to the hub (sangdam-hub): store-and-forward, signed, idempotent."),
    ("sync.enabled", "Send to the hub on the schedule while `sangdam run` runs (`sangdam sync --now` works either way)."),
    ("sync.hub_url", "The hub, e.g. \"https://hub.example.co.kr:8470\". https:// is required unless sync.allow_plain_http is set."),
    ("sync.allow_plain_http", "Accept an http:// sync.hub_url (default false: refused by validation). Plain HTTP shows the aggregates to anyone on the path, who may also delay or drop them (batches stay safe in the outbox: only the hub's signed answer deletes one). Only for a hub on a trusted network or loopback; a warning is logged at start."),
    ("sync.device_id", "This box's id in the hub's registry: letters, digits, '-', '_', '.'."),
    ("sync.key", "The device key from `sangdam-hub add-device`, hex. Prefer key_file. A config file holding the key is refused if other users may read it (mode 0640 root:sangdam is right). `sangdam config` shows only \"<set>\" or \"<unset>\"."),
    ("sync.key_file", "File holding the device key (hex); used when sync.key is empty. Refused if group or others may read it (chmod 600, owned by the sangdam user). A relative path is looked up in $CREDENTIALS_DIRECTORY when systemd sets it (LoadCredential=, board/INSTALL.md), else in the working folder."),
    ("sync.ca_file", "PEM file of the CA certificates to trust for the hub (a private CA); empty: the built-in Mozilla roots."),
    ("sync.interval_minutes", "Minutes between sync runs; a failed run is retried sooner, backing off up to this."),
    ("sync.max_kbps", "Upload cap, kilobits per second (a branch office's slow uplink)."),
    ("sync.transcripts", "Also send the day's redacted transcripts (off: only aggregates leave the box). Audio never does."),
    ("sync.outbox_max_batches", "Batches kept while the hub is unreachable; beyond this the oldest periods are merged into coarser ones."),
    ("sync.timeout_s", "Connect, send and answer timeouts per request, seconds."),
    ("sync.retries", "Attempts per batch in one run (exponential backoff with jitter) before the run gives up."),
];

impl SyncConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("sync", self.checks())
    }

    fn checks(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if !(self.hub_url.starts_with("https://") || self.hub_url.starts_with("http://")) {
            return Err(format!(
                "sync.hub_url = {:?}: give the hub's address, e.g. \"https://hub.example.co.kr:8470\"",
                self.hub_url
            ));
        }
        if self.plain_http() && !self.allow_plain_http {
            return Err(format!(
                "sync.hub_url = {:?} is plain http://: anyone on the path can read what the box sends. Use https://, or set sync.allow_plain_http = true for a hub on a trusted network",
                self.hub_url
            ));
        }
        if !wire::valid_device_id(&self.device_id) {
            return Err(format!(
                "sync.device_id = {:?}: 1 to 64 letters, digits, '-', '_' or '.', as registered at the hub",
                self.device_id
            ));
        }
        if self.key.is_empty() && self.key_file.as_os_str().is_empty() {
            return Err(
                "sync.key or sync.key_file: the device key from `sangdam-hub add-device` is needed"
                    .into(),
            );
        }
        if self.interval_minutes == 0 || self.max_kbps == 0 || self.outbox_max_batches < 2 {
            return Err("sync.interval_minutes and sync.max_kbps must be at least 1, sync.outbox_max_batches at least 2".into());
        }
        Ok(())
    }

    /// Whether `hub_url` is plain `http://`.
    pub fn plain_http(&self) -> bool {
        self.hub_url.starts_with("http://")
    }

    /// The device key, from `key` or `key_file` (at [`SyncConfig::key_path`]). A key
    /// file that group or others may read or write is refused (see [`check_private`]).
    pub fn load_key(&self) -> Result<Vec<u8>, SyncError> {
        let text = if !self.key.is_empty() {
            self.key.clone()
        } else {
            let path = self.key_path();
            check_private(&path, "sync.key_file", "the device key")?;
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(source) => return Err(SyncError::KeyUnreadable { path, source }),
            };
            if text.trim().is_empty() {
                return Err(SyncError::KeyEmpty { path });
            }
            text
        };
        wire::parse_key(&text).map_err(SyncError::Key)
    }

    /// Where `key_file` is read: a relative path inside `$CREDENTIALS_DIRECTORY` when
    /// systemd set it (`LoadCredential=`), else as given.
    pub fn key_path(&self) -> std::path::PathBuf {
        credential_path(
            &self.key_file,
            std::env::var_os("CREDENTIALS_DIRECTORY").as_deref(),
        )
    }
}
