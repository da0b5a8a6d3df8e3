//! AI Hub-style speech corpora.
//!
//! AI Hub ships audio and labels in separate folder trees (`원천데이터/…/X.wav` and
//! `라벨링데이터/…/X.txt`) with the same file stem; [`index`] walks a root, pairs files by
//! stem, reads each transcript (UTF-8, or CP949 as older releases use), normalises it
//! ([`normalize`]), reads the audio's length (WAV, or raw 16 kHz s16le `.pcm`), and
//! reports what could not be paired. [`build_vocab`] makes `vocab.json` the way the
//! Hugging Face wav2vec2 fine-tuning guide does; [`split_by_speaker`] keeps every speaker
//! in one split so the test set measures unseen voices.

pub mod normalize;
pub mod numbers;
pub mod synth;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use normalize::Spelling;

/// Sample rate of AI Hub's raw `.pcm` files (16-bit little-endian mono).
pub const PCM_RATE: u32 = 16_000;

/// Why a corpus cannot be indexed or its index written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    #[error("cannot read corpus folder {path}: {source}")]
    Walk {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The output folder of [`write_index`] cannot be made.
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A split or `vocab.json` of [`write_index`] cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An item or the vocabulary could not be put as JSON.
    #[error(transparent)]
    Json(serde_json::Error),
}

/// One paired utterance of the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub audio: PathBuf,
    pub transcript: PathBuf,
    pub text: String,
    pub seconds: f64,
    pub speaker: String,
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub path: PathBuf,
    pub reason: String,
}

/// What [`index`] found.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Index {
    pub items: Vec<Item>,
    pub audio_without_text: Vec<PathBuf>,
    pub text_without_audio: Vec<PathBuf>,
    pub problems: Vec<Problem>,
}

/// Where an utterance's speaker id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SpeakerFrom {
    /// The name of the folder holding the audio file (AI Hub groups files by speaker).
    #[default]
    Folder,
    /// The file stem up to its first `_` (`SPK001_0001.wav` → `SPK001`).
    StemPrefix,
    /// Unknown: every utterance is its own speaker (splits by utterance).
    None,
}

/// Walks `root`, pairs audio and transcripts by file stem, and reads them.
pub fn index(
    root: &Path,
    spelling: Spelling,
    speaker_from: SpeakerFrom,
) -> Result<Index, CorpusError> {
    let mut audio: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut texts: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    walk(root, &mut |p| {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let Some(stem) = p.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            return;
        };
        match ext.as_deref() {
            Some("wav" | "pcm") => audio.entry(stem).or_default().push(p.to_owned()),
            Some("txt") => texts.entry(stem).or_default().push(p.to_owned()),
            _ => {}
        }
    })?;
    let mut out = Index::default();
    for (key, mut audios) in audio {
        let Some(mut ts) = texts.remove(&key) else {
            out.audio_without_text.extend(audios);
            continue;
        };
        audios.sort();
        ts.sort();
        if audios.len() > 1 || ts.len() > 1 {
            out.problems.push(Problem {
                path: audios[0].clone(),
                reason: format!(
                    "key {key} is used by {} audio and {} transcript files; keys must be unique",
                    audios.len(),
                    ts.len()
                ),
            });
            continue;
        }
        let (a, t) = (audios.remove(0), ts.remove(0));
        let text = match read_text(&t) {
            Ok(raw) => normalize::normalize(raw.lines().next().unwrap_or(""), spelling),
            Err(reason) => {
                out.problems.push(Problem { path: t, reason });
                continue;
            }
        };
        if text.is_empty() {
            out.problems.push(Problem {
                path: t,
                reason: "transcript is empty after removing noise tags".into(),
            });
            continue;
        }
        let seconds = match audio_seconds(&a) {
            Ok(s) => s,
            Err(reason) => {
                out.problems.push(Problem { path: a, reason });
                continue;
            }
        };
        let speaker = match speaker_from {
            SpeakerFrom::Folder => a
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            SpeakerFrom::StemPrefix => key.split('_').next().unwrap_or(&key).to_owned(),
            SpeakerFrom::None => key.clone(),
        };
        out.items.push(Item {
            key,
            audio: a,
            transcript: t,
            text,
            seconds,
            speaker,
        });
    }
    out.text_without_audio = texts.into_values().flatten().collect();
    out.text_without_audio.sort();
    Ok(out)
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<(), CorpusError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CorpusError::Walk {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, f)?;
        } else {
            f(&p);
        }
    }
    Ok(())
}

/// Reads a transcript as UTF-8 (with or without BOM), else as CP949 (EUC-KR superset).
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    let (s, _, had_errors) = encoding_rs::EUC_KR.decode(bytes);
    if had_errors {
        return Err("transcript is neither UTF-8 nor CP949 text".into());
    }
    Ok(s.into_owned())
}

/// Length of an audio file in seconds: WAV through the firmware's reader, `.pcm` as raw
/// 16 kHz 16-bit mono.
pub fn audio_seconds(path: &Path) -> Result<f64, String> {
    let is_pcm = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pcm"));
    if is_pcm {
        let len = std::fs::metadata(path)
            .map_err(|e| format!("cannot read: {e}"))?
            .len();
        if len == 0 || len % 2 != 0 {
            return Err(format!("raw PCM of {len} bytes is not 16-bit samples"));
        }
        return Ok(len as f64 / 2.0 / PCM_RATE as f64);
    }
    let mut r = sangdam::audio::WavReader::open(path).map_err(|e| e.to_string())?;
    let mut bufs = vec![Vec::new(); r.spec().channels as usize];
    let mut frames = 0u64;
    loop {
        for b in &mut bufs {
            b.clear();
        }
        let n = r
            .read_frames(&mut bufs, 16_000)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        frames += n as u64;
    }
    Ok(frames as f64 / r.spec().sample_rate as f64)
}

/// Decomposes precomposed Hangul syllables into conjoining jamo (U+1100 block), for a
/// jamo vocabulary: 68 symbols instead of ~2,000 syllables. The firmware's decoder
/// composes them back ([`sangdam::hangul`]).
pub fn to_jamo(text: &str) -> String {
    sangdam::hangul::decompose_jamo(text)
}

/// `vocab.json` as the Hugging Face wav2vec2 guide builds it: the sorted set of
/// characters, the space renamed `|` (keeping the space's id), then `[UNK]` and `[PAD]`.
pub fn build_vocab<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u32> {
    let chars: BTreeSet<char> = texts
        .into_iter()
        .flat_map(str::chars)
        .chain([' '])
        .collect();
    let mut vocab: BTreeMap<String, u32> = chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tok = if *c == ' ' {
                "|".to_owned()
            } else {
                c.to_string()
            };
            (tok, i as u32)
        })
        .collect();
    let n = vocab.len() as u32;
    vocab.insert("[UNK]".into(), n);
    vocab.insert("[PAD]".into(), n + 1);
    vocab
}

/// Assigns each item to train/dev/test by a hash of its speaker, so no speaker is in two
/// splits; `dev` and `test` are the fractions (of speakers) for those splits.
pub fn split_by_speaker(items: &[Item], dev: f64, test: f64) -> BTreeMap<&'static str, Vec<Item>> {
    split_with_test_speakers(items, dev, test, &[])
}

/// As [`split_by_speaker`], but the named speakers form the test split (a corpus whose
/// test voices were chosen when it was made, like `corpus synth`'s); the others are
/// split into train and dev by hash.
pub fn split_with_test_speakers(
    items: &[Item],
    dev: f64,
    test: f64,
    test_speakers: &[String],
) -> BTreeMap<&'static str, Vec<Item>> {
    let mut out: BTreeMap<&'static str, Vec<Item>> = BTreeMap::new();
    let test = if test_speakers.is_empty() { test } else { 0.0 };
    for it in items {
        if test_speakers.contains(&it.speaker) {
            out.entry("test").or_default().push(it.clone());
            continue;
        }
        let h = fnv1a(it.speaker.as_bytes()) as f64 / u64::MAX as f64;
        let split = if h < test {
            "test"
        } else if h < test + dev {
            "dev"
        } else {
            "train"
        };
        out.entry(split).or_default().push(it.clone());
    }
    out
}

/// How [`write_index`] indexes and splits a corpus (`corpus index`'s options).
#[derive(Debug, Clone, Default)]
pub struct IndexSettings {
    pub spelling: Spelling,
    pub speaker_from: SpeakerFrom,
    /// Jamo transcripts and vocabulary instead of syllables.
    pub jamo: bool,
    /// Fractions of speakers for the dev and test splits.
    pub dev: f64,
    pub test: f64,
    /// Speakers that form the test split, instead of `test`.
    pub test_speakers: Vec<String>,
}

/// What [`write_index`] wrote: each split's utterances and hours, the vocabulary, and
/// what it could not pair or read.
#[derive(Debug, Clone, Default)]
pub struct IndexReport {
    /// (split, utterances, hours), in name order.
    pub splits: Vec<(&'static str, usize, f64)>,
    pub vocab_tokens: usize,
    pub vocab_path: PathBuf,
    pub index: Index,
}

/// `corpus index`: indexes `root` ([`index`]), splits it by speaker, and writes
/// `train.jsonl`, `dev.jsonl`, `test.jsonl` and the training split's `vocab.json` into
/// `out`. The report's `index` keeps the items and the unpaired and unreadable files.
pub fn write_index(root: &Path, out: &Path, s: &IndexSettings) -> Result<IndexReport, CorpusError> {
    use std::io::Write;
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| CorpusError::Write { path, source }
    };
    let mut idx = index(root, s.spelling, s.speaker_from)?;
    if s.jamo {
        for it in &mut idx.items {
            it.text = to_jamo(&it.text);
        }
    }
    std::fs::create_dir_all(out).map_err(|source| CorpusError::Create {
        path: out.to_owned(),
        source,
    })?;
    let splits = split_with_test_speakers(&idx.items, s.dev, s.test, &s.test_speakers);
    let mut report = IndexReport::default();
    for (name, items) in &splits {
        let path = out.join(format!("{name}.jsonl"));
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(&path).map_err(write_error(&path))?);
        for it in items {
            let line = serde_json::to_string(it).map_err(CorpusError::Json)?;
            writeln!(f, "{line}").map_err(write_error(&path))?;
        }
        f.flush().map_err(write_error(&path))?;
        let hours = items.iter().map(|i| i.seconds).sum::<f64>() / 3600.0;
        report.splits.push((name, items.len(), hours));
    }
    let train_texts = splits.get("train").map(Vec::as_slice).unwrap_or(&[]);
    let vocab = build_vocab(train_texts.iter().map(|i| i.text.as_str()));
    report.vocab_path = out.join("vocab.json");
    let body = serde_json::to_string_pretty(&vocab).map_err(CorpusError::Json)?;
    std::fs::write(&report.vocab_path, body).map_err(write_error(&report.vocab_path))?;
    report.vocab_tokens = vocab.len();
    report.index = idx;
    Ok(report)
}

/// FNV-1a with a final avalanche (murmur3's fmix64): a stable hash whose high bits
/// spread even for ids that differ in one digit (std's hasher is randomised per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_follows_the_hf_guide() {
        let v = build_vocab(["카드 한도", "한도"]);
        // ' ' sorts first, so '|' keeps id 0, as in the fixture's vocab.json.
        assert_eq!(v["|"], 0);
        assert_eq!(v.len(), 4 + 1 + 2);
        assert_eq!(v["[UNK]"], 5);
        assert_eq!(v["[PAD]"], 6);
        assert!(v["도"] < v["드"] && v["드"] < v["카"]);
    }

    #[test]
    fn jamo_decomposition() {
        assert_eq!(to_jamo("한"), "\u{1112}\u{1161}\u{11AB}");
        assert_eq!(to_jamo("카드 5G"), "\u{110F}\u{1161}\u{1103}\u{1173} 5G");
    }

    #[test]
    fn split_keeps_speakers_together() {
        let items: Vec<Item> = (0..200)
            .map(|i| Item {
                key: format!("k{i}"),
                audio: PathBuf::new(),
                transcript: PathBuf::new(),
                text: "가".into(),
                seconds: 1.0,
                speaker: format!("spk{}", i % 40),
            })
            .collect();
        let s = split_by_speaker(&items, 0.1, 0.1);
        let speakers = |name: &str| -> BTreeSet<String> {
            s.get(name)
                .map(|v| v.iter().map(|i| i.speaker.clone()).collect())
                .unwrap_or_default()
        };
        let (tr, de, te) = (speakers("train"), speakers("dev"), speakers("test"));
        assert!(tr.is_disjoint(&de) && tr.is_disjoint(&te) && de.is_disjoint(&te));
        assert_eq!(tr.len() + de.len() + te.len(), 40);
        assert!(!te.is_empty() && !tr.is_empty());
        assert_eq!(s.values().map(Vec::len).sum::<usize>(), 200);
    }
}
