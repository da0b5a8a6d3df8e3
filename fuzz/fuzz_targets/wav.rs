//! The WAV reader and the call-file checks behind it (header, chunks, sample formats,
//! resampling to 16 kHz): any bytes give audio or an error, never a panic, and memory
//! stays bounded whatever the header claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sangdam::audio::wav::WavReader;
use sangdam::audio::CallFile;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = WavReader::new(std::io::Cursor::new(data)) else {
        return;
    };
    let Ok(mut call) = CallFile::from_reader(reader) else {
        return;
    };
    // At most a few blocks: the input is small, but a header may claim hours.
    for _ in 0..64 {
        match call.next_block() {
            Ok(Some(block)) => {
                let n = block[0].len();
                assert!(n > 0);
                assert!(block.iter().all(|c| c.len() == n));
            }
            Ok(None) | Err(_) => break,
        }
    }
});
