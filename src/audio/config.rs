//! `[audio]` in the config file: which channel of a recording is whom.

use serde::{Deserialize, Serialize};

use crate::setting::InvalidSetting;

use super::ChannelMap;

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

impl AudioConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        InvalidSetting::check("audio", self.checks())
    }

    fn checks(&self) -> Result<(), String> {
        if self.agent_channel == self.customer_channel {
            return Err(format!(
                "audio.agent_channel and audio.customer_channel are both {}: they must name different channels",
                self.agent_channel
            ));
        }
        Ok(())
    }
}

/// Documentation of `[audio]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("audio", "How recorded calls are read."),
    (
        "audio.agent_channel",
        "Channel index (0-based) of the agent in two-channel recordings.",
    ),
    (
        "audio.customer_channel",
        "Channel index (0-based) of the customer in two-channel recordings.",
    ),
];
