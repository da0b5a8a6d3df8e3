//! The model manifest: any text gives a manifest or an error; a parsed manifest's
//! entries can be looked up and verified (missing files are errors, not panics).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sangdam::models::{Manifest, ModelKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(mut m) = Manifest::parse(text) {
            m.dir = std::path::PathBuf::from("/nonexistent-sangdam-fuzz");
            let _ = m.verified(ModelKind::AsrCtc, "asr-ko");
            let _ = m.verified(ModelKind::Sentiment, "sentiment-ko");
            let _ = m.verify();
        }
    }
});
