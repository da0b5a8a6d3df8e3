//! The TOML configuration: any text parses to a validated config or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = sangdam::config::Config::parse(text) {
            // Validation judges any parsed config without panicking (its verdict is
            // free: parse does not validate, `Config::load` does both).
            let _ = config.validate();
            // A parsed config prints back to TOML that parses to the same config.
            let again = toml::to_string(&config).expect("a parsed config serialises");
            assert_eq!(sangdam::config::Config::parse(&again).as_ref(), Ok(&config));
        }
    }
});
