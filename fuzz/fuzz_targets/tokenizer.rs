//! The sentiment tokenizer: any text normalises and encodes within the model's limits,
//! and normalisation is idempotent. Also the tokenizer data (tokenizer.json): any JSON
//! gives a tokenizer or an error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sangdam::sentiment::tokenizer::{normalize, Tokenizer, TokenizerData};

fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        Tokenizer::build(
            ["정말 좋아요 ㅋㅋ", "최악이다 돈 아깝다 abc 123!"],
            1,
            64,
            4,
            1 << 12,
        )
        .expect("valid settings")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some((&0xFF, json)) = data.split_first() {
        if let Ok(d) = serde_json::from_slice::<TokenizerData>(json) {
            if let Ok(t) = Tokenizer::new(d) {
                let _ = t.encode("토큰 검사 test");
            }
        }
        return;
    }
    let text = String::from_utf8_lossy(data);
    let t = tokenizer();
    let once = normalize(&text);
    assert_eq!(normalize(&once), once, "normalisation is not idempotent");
    let e = t.encode(&text);
    let limit = t.data().max_chars;
    assert!(e.chars.len() <= limit);
    assert!(e.ngrams.len() <= 4 * (limit + 2));
    assert!(e
        .chars
        .iter()
        .all(|&i| i >= 1 && (i as usize) < t.vocab_size()));
    assert!(e.ngrams.iter().all(|&i| i >= 1 && i < (1 << 12)));
    assert_eq!(e.chars.is_empty(), e.ngrams.is_empty());
});
