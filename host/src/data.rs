//! Training data in memory: the utterances of a split (`corpus index` output), their
//! normalised audio and label ids, and batches grouped by length.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::corpus::Item;
use crate::rng::Rng;

/// Sample rate every model input has.
pub const RATE: u32 = 16_000;

/// Why an utterance, a split or a vocabulary cannot be read. The message names the
/// file; the cause (the IO, JSON or WAV error) is its [`source`](std::error::Error::source),
/// which the binary's `error: ...` line and [`crate::error_chain`] print after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: raw PCM must be 16-bit samples (odd byte count)", path.display())]
    OddPcm { path: PathBuf },
    #[error("cannot read audio {}", path.display())]
    Audio {
        path: PathBuf,
        #[source]
        source: sangdam::audio::AudioError,
    },
    /// A line of a `corpus index` split that is not an [`Item`] (`line` counts from 1).
    #[error("{}:{line}: not a corpus item", path.display())]
    Item {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a vocab.json", path.display())]
    Vocab {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

type Result<T, E = DataError> = std::result::Result<T, E>;

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Reads an utterance as 16 kHz mono f32: WAV through the firmware's reader (resampled
/// and down-mixed), `.pcm` as AI Hub's raw 16 kHz s16le.
pub fn load_audio(path: &Path) -> Result<Vec<f32>> {
    let is_pcm = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pcm"));
    if is_pcm {
        let bytes = std::fs::read(path).map_err(read_error(path))?;
        if bytes.len() % 2 != 0 {
            return Err(DataError::OddPcm {
                path: path.to_owned(),
            });
        }
        return Ok(bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
            .collect());
    }
    let audio_error = |source| DataError::Audio {
        path: path.to_owned(),
        source,
    };
    let mut f = sangdam::audio::CallFile::open(path).map_err(audio_error)?;
    let mut out = Vec::new();
    while let Some(block) = f.next_block().map_err(audio_error)? {
        let n = block.first().map_or(0, Vec::len);
        let ch = block.len() as f32;
        for i in 0..n {
            out.push(block.iter().map(|c| c[i]).sum::<f32>() / ch);
        }
    }
    Ok(out)
}

/// Reads a `corpus index` split (one JSON item per line).
pub fn read_split(path: &Path) -> Result<Vec<Item>> {
    let text = std::fs::read_to_string(path).map_err(read_error(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| DataError::Item {
                path: path.to_owned(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// Reads `vocab.json` as token -> id.
pub fn read_vocab(path: &Path) -> Result<HashMap<String, u32>> {
    let text = std::fs::read_to_string(path).map_err(read_error(path))?;
    serde_json::from_str(&text).map_err(|source| DataError::Vocab {
        path: path.to_owned(),
        source,
    })
}

/// Text → label ids as `Wav2Vec2CTCTokenizer` makes them: one id per character, the
/// space as `|`, unknown characters as `[UNK]`; runs of spaces collapse.
pub fn encode(text: &str, vocab: &HashMap<String, u32>) -> Vec<u32> {
    let unk = vocab.get("[UNK]").copied();
    let delim = vocab.get("|").copied();
    let mut out = Vec::new();
    let mut prev_space = true;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            if !prev_space {
                out.extend(delim);
            }
            prev_space = true;
            continue;
        }
        prev_space = false;
        let mut buf = [0u8; 4];
        match vocab.get(c.encode_utf8(&mut buf) as &str) {
            Some(&id) => out.push(id),
            None => out.extend(unk),
        }
    }
    out
}

/// One utterance ready for the model.
pub struct Utterance {
    pub key: String,
    pub text: String,
    /// Normalised input values (zero mean, unit variance).
    pub input: Vec<f32>,
    pub labels: Vec<u32>,
}

/// Why items were left out of a split.
#[derive(Debug, Default, Clone, Copy)]
pub struct Skipped {
    pub too_long: usize,
    pub too_many_labels: usize,
    pub unreadable: usize,
    pub empty: usize,
}

impl Skipped {
    pub fn total(&self) -> usize {
        self.too_long + self.too_many_labels + self.unreadable + self.empty
    }
}

/// Loads a split into memory, dropping what the recipe excludes (audio over
/// `max_samples`, transcripts over `max_labels`), and counting what it drops.
/// `paths_from` resolves relative audio paths.
pub fn load_split(
    items: &[Item],
    vocab: &HashMap<String, u32>,
    max_samples: usize,
    max_labels: usize,
    paths_from: Option<&Path>,
) -> (Vec<Utterance>, Skipped) {
    let mut out = Vec::new();
    let mut skipped = Skipped::default();
    for it in items {
        let path: PathBuf = match paths_from {
            Some(base) if it.audio.is_relative() => base.join(&it.audio),
            _ => it.audio.clone(),
        };
        let audio = match load_audio(&path) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("skipped {}: {}", it.key, crate::error_chain(&e));
                skipped.unreadable += 1;
                continue;
            }
        };
        let labels = encode(&it.text, vocab);
        if audio.len() > max_samples {
            skipped.too_long += 1;
            continue;
        }
        if labels.len() > max_labels {
            skipped.too_many_labels += 1;
            continue;
        }
        if labels.is_empty() || audio.len() < sangdam::asr::MIN_SAMPLES {
            skipped.empty += 1;
            continue;
        }
        out.push(Utterance {
            key: it.key.clone(),
            text: it.text.clone(),
            input: sangdam::asr::features::normalize(&audio),
            labels,
        });
    }
    (out, skipped)
}

/// Batches of utterance indices grouped by length (sorted, then cut), in a shuffled
/// order: little padding, and still a different order every epoch.
pub fn length_grouped_batches(lengths: &[usize], batch: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..lengths.len()).collect();
    // Shuffle first so equal lengths do not always batch together, then sort stably.
    shuffle(&mut idx, rng);
    idx.sort_by_key(|&i| lengths[i]);
    let mut batches: Vec<Vec<usize>> = idx.chunks(batch.max(1)).map(<[usize]>::to_vec).collect();
    shuffle(&mut batches, rng);
    batches
}

/// Fisher-Yates with the project's seeded generator.
pub fn shuffle<T>(xs: &mut [T], rng: &mut Rng) {
    for i in (1..xs.len()).rev() {
        let j = rng.below(i + 1);
        xs.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_like_the_hf_tokenizer() {
        let vocab: HashMap<String, u32> =
            [("가", 0), ("나", 1), ("|", 2), ("[UNK]", 3), ("[PAD]", 4)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(encode(" 가나  가X ", &vocab), vec![0, 1, 2, 0, 3]);
    }

    #[test]
    fn batches_cover_every_index_once_and_group_lengths() {
        let lengths: Vec<usize> = (0..101).map(|i| (i * 7919) % 1000).collect();
        let mut rng = Rng::new(3);
        let batches = length_grouped_batches(&lengths, 4, &mut rng);
        let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
        // Within a batch lengths are close: the spread is far below the full range.
        let spread: usize = batches
            .iter()
            .map(|b| {
                let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
                l.iter().max().unwrap() - l.iter().min().unwrap()
            })
            .max()
            .unwrap();
        assert!(spread < 100, "spread {spread}");
    }
}
