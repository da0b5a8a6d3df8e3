//! `[insights]` in the config file: keywords, the report page and the product catalogue.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::setting::InvalidSetting;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightsConfig {
    pub extra_stopwords: Vec<String>,
    pub top: usize,
    pub max_calls: usize,
    pub refresh_hours: u32,
    pub serve_addr: String,
    pub allowed_hosts: Vec<String>,
    /// Empty: `viewers` in the store's data folder (see [`crate::config::Config::viewers_path`]).
    pub viewers_file: PathBuf,
    pub products: Vec<super::Product>,
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
            products: super::default_catalogue(),
        }
    }
}

impl InsightsConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("insights", self.checks())
    }

    fn checks(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for p in &self.products {
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
        for h in &self.allowed_hosts {
            if h.trim() != "*" && super::report::host_name(h).is_none() {
                return Err(format!(
                    "insights.allowed_hosts: {h:?} is not a host name; write names as the browser's address bar shows them, e.g. \"sangdam-07.branch.local\""
                ));
            }
        }
        if self.top == 0 || self.max_calls == 0 {
            return Err("insights.top and insights.max_calls must be at least 1".into());
        }
        Ok(())
    }
}

/// Documentation of `[insights]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
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
];
