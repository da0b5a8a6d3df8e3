//! `[panel]` in the config file: which backend drives the desk panel, its lines and its
//! timing.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

    pub fn timing(&self) -> super::PanelTiming {
        super::PanelTiming {
            debounce_ms: self.debounce_ms,
            long_press_ms: self.long_press_ms,
        }
    }
}

/// Documentation of `[panel]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
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
];
