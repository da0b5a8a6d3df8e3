//! The sentiment model's text tokenizer: one implementation, used by the host tool when
//! it trains and by the box when it classifies, so the two can never disagree.
//!
//! A text becomes two id sequences:
//!
//! - **characters**: each character of the normalised text (Hangul syllables, jamo,
//!   Latin letters, digits, punctuation, the space) mapped through a vocabulary learned
//!   from the training text; `0` pads, `1` is any character the vocabulary lacks. The
//!   model's convolutions read these in order.
//! - **n-grams**: every run of 1 to `ngram_max` characters of the normalised text with a
//!   space added at both ends, hashed (FNV-1a) into `ngram_buckets - 1` buckets (ids from
//!   1; `0` pads). The model averages their embeddings, a bag of character n-grams like
//!   the TF-IDF features of the classical baseline.
//!
//! Normalisation ([`normalize`]): Unicode NFC (decomposed jamo become syllables), ASCII
//! letters lower-cased, full-width ASCII folded to ASCII, control characters dropped,
//! whitespace runs become one space, laughter and crying runs (ㅋㅋㅋ, ㅎㅎ, ㅋㅎㅋ, ㅠㅠㅠ,
//! ㅜㅜ) become a canonical pair, and any other character repeated more than twice is
//! cut to two (`!!!!` → `!!`, `하하하하` → `하하`).
//!
//! The data (`tokenizer.json`, shipped next to the model) holds the settings and the
//! character vocabulary; [`Tokenizer::build`] learns it from training text.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// The tokenizer data format this build reads.
pub const TOKENIZER_FORMAT: u32 = 1;
/// The name of the normalisation rules implemented here; stored in the data so that a
/// model trained under other rules is refused rather than misread.
pub const NORMALIZER: &str = "sangdam-nfc-fold-1";
/// Padding id in both sequences.
pub const PAD: i64 = 0;
/// Unknown-character id.
pub const UNK: i64 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    #[error("cannot read tokenizer data {path}: {source} (reinstall models/ from the release)")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("tokenizer data {path} is not valid: {message} (reinstall models/ from the release)")]
    Parse {
        path: std::path::PathBuf,
        message: String,
    },
}

/// Tokenizer data that this build cannot use: another format or normaliser, a damaged
/// vocabulary, or sizes out of range. The message names what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTokenizer(pub String);

/// Settings and vocabulary, as stored in `tokenizer.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerData {
    pub format: u32,
    pub normalizer: String,
    /// The model's limit: longer texts are cut to this many characters (counted).
    pub max_chars: usize,
    /// Longest character n-gram in the bag.
    pub ngram_max: usize,
    /// Rows of the n-gram embedding, padding row included.
    pub ngram_buckets: u32,
    /// Rows of the TF-IDF tables of a model with a TF-IDF linear part (padding row
    /// included): the same n-grams hashed a second time, into this many buckets, and
    /// counted per text ([`Encoded::tfidf_ids`]). Absent for models without that part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tfidf_buckets: Option<u32>,
    /// The character vocabulary; index = id. Entries 0 and 1 are `<pad>` and `<unk>`.
    pub chars: Vec<String>,
}

/// A text made ready for the model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Encoded {
    pub chars: Vec<i64>,
    pub ngrams: Vec<i64>,
    /// Characters dropped because the text was longer than `max_chars`.
    pub truncated_chars: usize,
    /// Characters mapped to `<unk>`.
    pub unknown: usize,
    /// The text's distinct n-grams in the TF-IDF hashing (ascending ids from 1), when the
    /// tokenizer has `tfidf_buckets`; empty otherwise.
    pub tfidf_ids: Vec<i64>,
    /// Their sublinear term frequency, `1 + ln(occurrences)`, one per id.
    pub tfidf_tf: Vec<f32>,
}

impl Encoded {
    /// Nothing left to classify (empty, or only whitespace and control characters).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Tokenizer {
    data: TokenizerData,
    ids: HashMap<char, i64>,
}

fn is_laugh(c: char) -> bool {
    matches!(c, 'ㅋ' | 'ㅎ')
}

fn is_cry(c: char) -> bool {
    matches!(c, 'ㅠ' | 'ㅜ')
}

/// The normalisation described in the module documentation.
pub fn normalize(text: &str) -> String {
    // Character mappings first, composition after them: a mark separated from its base
    // by a dropped control character, or following a full-width letter, must compose
    // with the base it ends up next to, or normalising twice would differ from once.
    let mapped: String = text
        .chars()
        .filter_map(|c| {
            let c = match c {
                // Full-width ASCII (！ Ａ ０) to ASCII.
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
                '\u{3000}' => ' ',
                _ => c,
            };
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{FEFF}') {
                None
            } else {
                Some(c.to_ascii_lowercase())
            }
        })
        .collect();
    let mut cleaned = String::with_capacity(mapped.len());
    let mut space = false;
    for c in mapped.nfc() {
        if c == ' ' {
            space = true;
            continue;
        }
        if space && !cleaned.is_empty() {
            cleaned.push(' ');
        }
        space = false;
        cleaned.push(c);
    }
    // Fold runs.
    let chars: Vec<char> = cleaned.chars().collect();
    let mut out = String::with_capacity(cleaned.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let class: Option<fn(char) -> bool> = if is_laugh(c) {
            Some(is_laugh)
        } else if is_cry(c) {
            Some(is_cry)
        } else {
            None
        };
        let mut j = i + 1;
        match class {
            Some(f) => {
                while j < chars.len() && f(chars[j]) {
                    j += 1;
                }
                if j - i >= 2 {
                    let canon = if is_laugh(c) { 'ㅋ' } else { 'ㅠ' };
                    out.push(canon);
                    out.push(canon);
                } else {
                    out.push(c);
                }
            }
            None => {
                while j < chars.len() && chars[j] == c {
                    j += 1;
                }
                for _ in 0..(j - i).min(2) {
                    out.push(c);
                }
            }
        }
        i = j;
    }
    out
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// One byte of 64-bit FNV-1a.
fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
}

/// The 64-bit FNV-1a hash of an n-gram's UTF-8 bytes, before it is cut to buckets.
fn ngram_hash(gram: &[char]) -> u64 {
    let mut h: u64 = FNV_OFFSET;
    let mut buf = [0u8; 4];
    for c in gram {
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            h = fnv_step(h, b);
        }
    }
    h
}

#[cfg(test)]
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(FNV_OFFSET, fnv_step)
}

impl Tokenizer {
    pub fn new(data: TokenizerData) -> Result<Self, InvalidTokenizer> {
        let bad = |m: String| Err(InvalidTokenizer(m));
        if data.format != TOKENIZER_FORMAT {
            return bad(format!(
                "format {} (this build reads {TOKENIZER_FORMAT})",
                data.format
            ));
        }
        if data.normalizer != NORMALIZER {
            return bad(format!(
                "normaliser {:?} (this build implements {NORMALIZER:?}); the model was trained with other text rules",
                data.normalizer
            ));
        }
        if data.chars.len() < 3 || data.chars[0] != "<pad>" || data.chars[1] != "<unk>" {
            return bad(
                "the character list must start with <pad>, <unk> and hold at least one character"
                    .into(),
            );
        }
        if data.max_chars == 0 || data.ngram_max == 0 || data.ngram_buckets < 2 {
            return bad("max_chars, ngram_max and ngram_buckets must be positive".into());
        }
        if data.tfidf_buckets.is_some_and(|b| b < 2) {
            return bad("tfidf_buckets must be at least 2".into());
        }
        let mut ids = HashMap::with_capacity(data.chars.len());
        for (i, s) in data.chars.iter().enumerate().skip(2) {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => {
                    if ids.insert(c, i as i64).is_some() {
                        return bad(format!("character {s:?} is listed twice"));
                    }
                }
                _ => return bad(format!("vocabulary entry {i} ({s:?}) is not one character")),
            }
        }
        Ok(Tokenizer { data, ids })
    }

    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let data: TokenizerData =
            serde_json::from_str(&text).map_err(|e| TokenizerError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Tokenizer::new(data).map_err(|e| TokenizerError::Parse {
            path: path.to_path_buf(),
            message: e.0,
        })
    }

    /// Learns the character vocabulary from `texts`: every character of the normalised
    /// texts seen at least `min_count` times, most frequent first (ties by code point).
    pub fn build<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        min_count: usize,
        max_chars: usize,
        ngram_max: usize,
        ngram_buckets: u32,
    ) -> Result<Self, InvalidTokenizer> {
        let mut counts: HashMap<char, usize> = HashMap::new();
        for t in texts {
            for c in normalize(t).chars() {
                *counts.entry(c).or_default() += 1;
            }
        }
        let mut kept: Vec<(char, usize)> = counts
            .into_iter()
            .filter(|&(_, n)| n >= min_count)
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut chars = vec!["<pad>".to_string(), "<unk>".to_string()];
        chars.extend(kept.into_iter().map(|(c, _)| c.to_string()));
        Tokenizer::new(TokenizerData {
            format: TOKENIZER_FORMAT,
            normalizer: NORMALIZER.into(),
            max_chars,
            ngram_max,
            ngram_buckets,
            tfidf_buckets: None,
            chars,
        })
    }

    /// The same tokenizer with a TF-IDF hashing into `buckets` rows (padding included),
    /// for a model with a TF-IDF linear part.
    pub fn with_tfidf_buckets(self, buckets: Option<u32>) -> Result<Self, InvalidTokenizer> {
        Tokenizer::new(TokenizerData {
            tfidf_buckets: buckets,
            ..self.data
        })
    }

    pub fn data(&self) -> &TokenizerData {
        &self.data
    }

    pub fn vocab_size(&self) -> usize {
        self.data.chars.len()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(&self.data).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }

    /// The id of one (normalised) character.
    pub fn char_id(&self, c: char) -> i64 {
        self.ids.get(&c).copied().unwrap_or(UNK)
    }

    /// The bucket of one n-gram (given as characters).
    pub fn ngram_id(&self, gram: &[char]) -> i64 {
        1 + (ngram_hash(gram) % (self.data.ngram_buckets as u64 - 1)) as i64
    }

    /// Normalises `text`, cuts it at `max_chars` and produces both id sequences.
    pub fn encode(&self, text: &str) -> Encoded {
        let norm = normalize(text);
        let mut chars: Vec<char> = norm.chars().collect();
        let truncated_chars = chars.len().saturating_sub(self.data.max_chars);
        chars.truncate(self.data.max_chars);
        if chars.last() == Some(&' ') {
            chars.pop();
        }
        let ids: Vec<i64> = chars.iter().map(|&c| self.char_id(c)).collect();
        let unknown = ids.iter().filter(|&&i| i == UNK).count();
        let mut ngrams = Vec::new();
        let mut tfidf = Vec::new();
        if !chars.is_empty() {
            let mut padded = Vec::with_capacity(chars.len() + 2);
            padded.push(' ');
            padded.extend_from_slice(&chars);
            padded.push(' ');
            for n in 1..=self.data.ngram_max {
                for w in padded.windows(n) {
                    // The lone boundary spaces carry nothing.
                    if n == 1 && w[0] == ' ' {
                        continue;
                    }
                    let h = ngram_hash(w);
                    ngrams.push(1 + (h % (self.data.ngram_buckets as u64 - 1)) as i64);
                    if let Some(b) = self.data.tfidf_buckets {
                        tfidf.push(1 + (h % (b as u64 - 1)) as i64);
                    }
                }
            }
        }
        tfidf.sort_unstable();
        let mut tfidf_ids: Vec<i64> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        for id in tfidf {
            if tfidf_ids.last() == Some(&id) {
                *counts.last_mut().expect("one count per id") += 1;
            } else {
                tfidf_ids.push(id);
                counts.push(1);
            }
        }
        Encoded {
            chars: ids,
            ngrams,
            truncated_chars,
            unknown,
            tfidf_ids,
            tfidf_tf: counts.iter().map(|&c| 1.0 + (c as f32).ln()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        Tokenizer::build(["좋아요 최고", "별로 ㅋㅋ abc 123"], 1, 16, 3, 1000).unwrap()
    }

    #[test]
    fn normalisation_is_pinned() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("정말 좋아요", "정말 좋아요"),
            ("  정말\t\n좋아요  ", "정말 좋아요"),
            // NFD jamo compose into syllables.
            ("\u{1100}\u{1161}\u{11A8}", "각"),
            ("ㅋㅋㅋㅋㅋ 웃기네", "ㅋㅋ 웃기네"),
            ("ㅎㅎ", "ㅋㅋ"),
            ("ㅋㅎㅋㅎㅋ", "ㅋㅋ"),
            ("ㅋ 하나", "ㅋ 하나"),
            ("ㅠㅠㅠㅠ 슬퍼", "ㅠㅠ 슬퍼"),
            ("ㅜㅠㅜ", "ㅠㅠ"),
            ("최고!!!!!!", "최고!!"),
            ("하하하하하", "하하"),
            ("너무너무", "너무너무"),
            ("아.....", "아.."),
            ("KT 5G 요금제 ＡＢＣ１２３", "kt 5g 요금제 abc123"),
            ("카드\u{200B}한도", "카드한도"),
            ("Good MOVIE", "good movie"),
            ("😀😀😀😀", "😀😀"),
            // Found by the fuzzer: a mark cut off from its base by control characters,
            // or after a full-width letter, composes once they are removed or mapped,
            // so normalising twice gives what once does.
            ("e\u{0}\u{0}\u{12}\u{301}\u{301}", "\u{e9}\u{301}"),
            ("\u{FF45}\u{301}", "\u{e9}"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "input {input:?}");
            assert_eq!(normalize(want), want, "not idempotent on {input:?}");
        }
        // The fuzzer's input itself.
        let found = String::from_utf8_lossy(&[
            0xe1, 0x84, 0x80, 0xe1, 0x85, 0x86, 0xa8, 0xc7, 0x20, 0x65, 0x00, 0x00, 0x00, 0x12,
            0xcc, 0x81, 0xcc, 0x81,
        ]);
        let once = normalize(&found);
        assert_eq!(normalize(&once), once);
    }

    #[test]
    fn encoding_is_pinned() {
        let t = tiny();
        // Vocabulary: by count (space x3, then singles by code point).
        let e = t.encode("좋아요!");
        assert_eq!(e.chars.len(), 4);
        assert_eq!(e.chars[3], UNK, "'!' was not in the training text");
        assert_eq!(e.unknown, 1);
        // n-grams of " 좋아요! ": 4 unigrams, 5 bigrams, 4 trigrams.
        assert_eq!(e.ngrams.len(), 4 + 5 + 4);
        assert!(e.ngrams.iter().all(|&i| (1..1000).contains(&i)));
        // The same n-gram always lands in the same bucket, whatever text it came from.
        let f = t.encode("아요");
        assert!(f.ngrams.contains(&t.ngram_id(&['아', '요'])));
        assert!(e.ngrams.contains(&t.ngram_id(&['아', '요'])));
        assert_eq!(
            t.ngram_id(&['아', '요']),
            1 + (fnv1a("아요".bytes()) % 999) as i64
        );
        // Ids pinned for a fixed vocabulary.
        assert_eq!(
            t.encode("ㅋㅋㅋㅋ").chars,
            vec![t.char_id('ㅋ'), t.char_id('ㅋ')]
        );
        assert_eq!(t.data().chars[2], " ");
    }

    #[test]
    fn tfidf_ids_are_distinct_counted_ngrams() {
        let plain = tiny();
        assert!(plain.encode("아 아 아").tfidf_ids.is_empty());
        let t = tiny().with_tfidf_buckets(Some(1 << 12)).unwrap();
        let e = t.encode("아 아 아");
        // " 아 아 아 ": unigrams 아 x3 (lone spaces are skipped); bigrams " 아" x3, "아 "
        // x3; trigrams " 아 " x3, "아 아" x2; no 4-grams (ngram_max 3).
        let hashed = |g: &str| {
            let cs: Vec<char> = g.chars().collect();
            1 + (ngram_hash(&cs) % ((1 << 12) - 1)) as i64
        };
        let expect = [
            ("아", 3.0f32),
            (" 아", 3.0),
            ("아 ", 3.0),
            (" 아 ", 3.0),
            ("아 아", 2.0),
        ];
        let mut want: Vec<(i64, f32)> = expect
            .iter()
            .map(|&(g, c)| (hashed(g), 1.0 + c.ln()))
            .collect();
        want.sort_by_key(|w| w.0);
        let got: Vec<(i64, f32)> = e.tfidf_ids.iter().copied().zip(e.tfidf_tf).collect();
        assert_eq!(got, want);
        // The embedding's occurrences are untouched by the second hashing.
        assert_eq!(e.ngrams, plain.encode("아 아 아").ngrams);
        // Stored and read back.
        let json = serde_json::to_string(t.data()).unwrap();
        assert!(json.contains("\"tfidf_buckets\":4096"));
        let back = Tokenizer::new(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(
            back.encode("아 아 아").tfidf_ids,
            t.encode("아 아 아").tfidf_ids
        );
        assert!(tiny().with_tfidf_buckets(Some(1)).is_err());
    }

    #[test]
    fn long_text_is_cut_and_counted() {
        let t = tiny();
        let long = "좋아요 최고 ".repeat(10);
        let e = t.encode(&long);
        assert_eq!(e.chars.len(), 16);
        assert_eq!(e.truncated_chars, normalize(&long).chars().count() - 16);
        let short = t.encode("좋아요");
        assert_eq!(short.truncated_chars, 0);
    }

    #[test]
    fn degenerate_texts_are_defined() {
        let t = tiny();
        assert!(t.encode("").is_empty());
        assert!(t.encode(" \u{200B}\t").is_empty());
        assert!(t.encode("").ngrams.is_empty());
        let emoji = t.encode("😀🎉");
        assert_eq!(emoji.chars, vec![UNK, UNK]);
        assert!(!emoji.ngrams.is_empty());
    }

    #[test]
    fn bad_data_is_refused() {
        let mut d = tiny().data().clone();
        d.normalizer = "other".into();
        assert!(Tokenizer::new(d).unwrap_err().0.contains("normaliser"));
        let mut d = tiny().data().clone();
        d.chars.push("ab".into());
        assert!(Tokenizer::new(d)
            .unwrap_err()
            .0
            .contains("not one character"));
        let mut d = tiny().data().clone();
        let dup = d.chars[3].clone();
        d.chars.push(dup);
        assert!(Tokenizer::new(d).unwrap_err().0.contains("twice"));
    }
}
