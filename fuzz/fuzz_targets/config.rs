//! The TOML configuration: any text parses to a validated config or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = sangdam::config::Config::parse(text) {
            // What parsed must also pass its own validation (parse validates).
            assert!(config.validate().is_ok());
        }
    }
});
