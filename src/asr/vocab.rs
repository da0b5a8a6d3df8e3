//! The CTC vocabulary in the Hugging Face layout: `vocab.json` maps each token to its id,
//! `[PAD]` doubles as the CTC blank, `|` is the word delimiter and `[UNK]` stands for
//! characters the model never saw.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Token that transformers' `Wav2Vec2CTCTokenizer` uses for the CTC blank.
pub const PAD: &str = "[PAD]";
/// Token that stands for an unknown character; it stays visible in transcripts.
pub const UNK: &str = "[UNK]";
/// Word delimiter; decoded as a space.
pub const WORD_DELIMITER: &str = "|";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VocabError {
    #[error("cannot read vocabulary {path}: {source} (reinstall the model folder that holds it)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("vocabulary {path} is not a JSON object of token -> id: {source} (it must be the vocab.json written with the model)")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("vocabulary {path}: {problem} (it must be the vocab.json written with the model)")]
    Invalid { path: PathBuf, problem: String },
}

/// Token strings indexed by id, plus the ids the decoder needs.
#[derive(Debug, Clone)]
pub struct Vocab {
    tokens: Vec<String>,
    blank: u32,
    delimiter: Option<u32>,
}

impl Vocab {
    pub fn load(path: &Path) -> Result<Self, VocabError> {
        let text = std::fs::read_to_string(path).map_err(|source| VocabError::Io {
            path: path.to_owned(),
            source,
        })?;
        let map: HashMap<String, u32> =
            serde_json::from_str(&text).map_err(|source| VocabError::Parse {
                path: path.to_owned(),
                source,
            })?;
        Self::from_map(map).map_err(|problem| VocabError::Invalid {
            path: path.to_owned(),
            problem,
        })
    }

    /// Builds the table from a token -> id map. Ids must be dense (0..n), unique, and
    /// `[PAD]` must exist; the error is a description of what is wrong.
    pub fn from_map(map: HashMap<String, u32>) -> Result<Self, String> {
        let n = map.len();
        if n == 0 {
            return Err("it is empty".into());
        }
        let mut tokens: Vec<Option<String>> = vec![None; n];
        for (tok, id) in map {
            let slot = tokens
                .get_mut(id as usize)
                .ok_or_else(|| format!("id {id} of token {tok:?} is outside 0..{n}"))?;
            if let Some(prev) = slot {
                return Err(format!("tokens {prev:?} and {tok:?} share id {id}"));
            }
            *slot = Some(tok);
        }
        // Dense and unique with n entries means every slot is filled.
        let tokens: Vec<String> = tokens.into_iter().map(|t| t.unwrap_or_default()).collect();
        let blank = tokens
            .iter()
            .position(|t| t == PAD)
            .ok_or_else(|| format!("it has no {PAD} token (the CTC blank)"))?
            as u32;
        let delimiter = tokens
            .iter()
            .position(|t| t == WORD_DELIMITER)
            .map(|i| i as u32);
        Ok(Vocab {
            tokens,
            blank,
            delimiter,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The CTC blank id (`[PAD]`).
    pub fn blank(&self) -> u32 {
        self.blank
    }

    /// The word-delimiter id (`|`), if the vocabulary has one.
    pub fn delimiter(&self) -> Option<u32> {
        self.delimiter
    }

    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(t, i)| (t.to_string(), *i)).collect()
    }

    #[test]
    fn finds_special_ids() {
        let v = Vocab::from_map(map(&[("|", 0), ("가", 1), ("[UNK]", 2), ("[PAD]", 3)])).unwrap();
        assert_eq!(v.blank(), 3);
        assert_eq!(v.delimiter(), Some(0));
        assert_eq!(v.token(1), Some("가"));
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn rejects_gaps_duplicates_and_missing_pad() {
        let gap = Vocab::from_map(map(&[("가", 0), ("[PAD]", 5)])).unwrap_err();
        assert!(gap.contains("outside"), "{gap}");
        let no_pad = Vocab::from_map(map(&[("가", 0), ("나", 1)])).unwrap_err();
        assert!(no_pad.contains("[PAD]"), "{no_pad}");
        assert!(Vocab::from_map(HashMap::new()).is_err());
    }
}
