//! CER and WER of an ONNX model on a split, through the firmware's own tract engine and
//! greedy decoder: the numbers describe exactly what the box will print.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sangdam::asr::{AsrError, CtcDecoder, VocabError};
use tract_onnx::prelude::tract_ndarray::Array2;

use serde::Serialize;

use crate::corpus::Item;
use crate::data::{self, DataError};

/// Why a model or a set cannot be scored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("cannot read {}", path.display())]
    Vocab {
        path: PathBuf,
        #[source]
        source: VocabError,
    },
    /// The firmware's engine refused the model ([`sangdam::asr::AsrEngine::load_with`]).
    #[error("cannot load {}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: AsrError,
    },
    /// Recognition of an utterance failed.
    #[error(transparent)]
    Asr(#[from] AsrError),
    /// A split or an utterance's audio ([`data`]).
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sox is needed for the telephone channel (apt-get install sox)")]
    NoSox(#[source] std::io::Error),
    #[error("sox failed on {}", path.display())]
    SoxFailed { path: PathBuf },
    #[error("no clips with a transcript in {}", path.display())]
    NoClips { path: PathBuf },
}

type Result<T, E = EvalError> = std::result::Result<T, E>;

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Read {
        path: path.to_owned(),
        source,
    }
}

fn load_error(path: &Path) -> impl FnOnce(AsrError) -> EvalError + '_ {
    move |source| EvalError::Load {
        path: path.to_owned(),
        source,
    }
}

/// Character and word error rates, and the edit distance under them: the firmware's
/// own arithmetic (`sangdam::asr::score`), so the host and the box score alike.
pub use sangdam::asr::score::{edit_distance, error_rates};

/// The scores of one model on one set of utterances.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub model: String,
    pub set: String,
    /// How the scores were decoded (greedy, beam 8, beam 8 + LM ...).
    #[serde(default)]
    pub decoder: String,
    pub utterances: usize,
    pub audio_seconds: f64,
    pub cer: f64,
    pub wer: f64,
    /// Wall seconds of recognition (one thread, one utterance at a time), model and
    /// decoder.
    pub seconds: f64,
    /// Of which the decoder.
    #[serde(default)]
    pub decode_seconds: f64,
    pub load_seconds: f64,
    /// Utterances whose reference names a catalogue product, and of those the ones
    /// whose transcript spells it as the catalogue does (spaces aside).
    #[serde(default)]
    pub products: (usize, usize),
    /// The process's peak resident memory when the set was done, MB.
    #[serde(default)]
    pub peak_rss_mb: f64,
    /// `(reference, hypothesis)` for the first few utterances.
    pub examples: Vec<(String, String)>,
}

impl Scores {
    pub fn rtf(&self) -> f64 {
        self.seconds / self.audio_seconds.max(1e-9)
    }

    /// Product-name accuracy; NaN when no reference names a product.
    pub fn product_accuracy(&self) -> f64 {
        self.products.1 as f64 / self.products.0 as f64
    }
}

/// The process's peak resident set, MB (the firmware's reader of /proc's VmHWM).
pub fn peak_rss_mb() -> f64 {
    sangdam::bench::peak_rss_kib() as f64 / 1024.0
}

/// The product names (and aliases) of the default catalogue that a jamo recogniser can
/// write, spaces removed; the longest found in a reference is the one it names.
pub fn product_forms() -> Vec<String> {
    let mut forms: Vec<String> = sangdam::insights::default_catalogue()
        .iter()
        .flat_map(|p| std::iter::once(p.name.clone()).chain(p.aliases.iter().cloned()))
        .map(|f| f.replace(' ', ""))
        .filter(|f| f.chars().all(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)))
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.chars().count()));
    forms.dedup();
    forms
}

/// `(named, spelt)` over `(reference, hypothesis)` pairs: see [`Scores::products`].
pub fn product_hits(pairs: &[(String, String)], forms: &[String]) -> (usize, usize) {
    let (mut named, mut spelt) = (0, 0);
    for (r, h) in pairs {
        let r = r.replace(' ', "");
        if let Some(f) = forms.iter().find(|f| r.contains(f.as_str())) {
            named += 1;
            spelt += usize::from(h.replace(' ', "").contains(f.as_str()));
        }
    }
    (named, spelt)
}

/// Transcribes `items` with `model` (+ `vocab`) and scores them, greedy or (`beam` > 0)
/// with the firmware's prefix beam search of that width. References are
/// composed from jamo when the corpus was indexed with a jamo vocabulary.
pub fn evaluate(
    model: &Path,
    vocab: &Path,
    set: &str,
    items: &[Item],
    keep_examples: usize,
    beam: usize,
) -> Result<Scores> {
    let (name, decoder): (String, Arc<dyn CtcDecoder>) = if beam > 0 {
        (
            format!("beam {beam}"),
            Arc::new(sangdam::asr::BeamDecoder {
                beam,
                ..Default::default()
            }),
        )
    } else {
        ("greedy".into(), Arc::new(sangdam::asr::GreedyDecoder))
    };
    evaluate_with(model, vocab, set, items, keep_examples, &name, decoder)
}

/// [`evaluate`] with any decoder, named `decoder_name` in the table.
pub fn evaluate_with(
    model: &Path,
    vocab: &Path,
    set: &str,
    items: &[Item],
    keep_examples: usize,
    decoder_name: &str,
    decoder: Arc<dyn CtcDecoder>,
) -> Result<Scores> {
    let t0 = Instant::now();
    let vocab = sangdam::asr::Vocab::load(vocab).map_err(|source| EvalError::Vocab {
        path: vocab.to_owned(),
        source,
    })?;
    let engine =
        sangdam::asr::AsrEngine::load_with(model, vocab, decoder).map_err(load_error(model))?;
    let load_seconds = t0.elapsed().as_secs_f64();
    let mut pairs = Vec::new();
    let mut audio_seconds = 0.0;
    let mut seconds = 0.0;
    let mut decode_seconds = 0.0;
    for it in items {
        let audio = data::load_audio(&it.audio)?;
        audio_seconds += audio.len() as f64 / data::RATE as f64;
        let t = Instant::now();
        let hyp = if audio.len() < sangdam::asr::MIN_SAMPLES {
            String::new()
        } else {
            let logits = engine.logits(&sangdam::asr::features::normalize(&audio))?;
            let td = Instant::now();
            let text = engine.decode(&logits).text;
            decode_seconds += td.elapsed().as_secs_f64();
            text
        };
        seconds += t.elapsed().as_secs_f64();
        pairs.push((sangdam::hangul::compose_jamo(&it.text), hyp));
    }
    let (cer, wer) = error_rates(&pairs);
    Ok(Scores {
        model: model.display().to_string(),
        set: set.to_string(),
        decoder: decoder_name.to_string(),
        utterances: items.len(),
        audio_seconds,
        cer,
        wer,
        seconds,
        decode_seconds,
        load_seconds,
        products: product_hits(&pairs, &product_forms()),
        peak_rss_mb: peak_rss_mb(),
        examples: pairs.into_iter().take(keep_examples).collect(),
    })
}

/// What `sangdam-host eval` scores: every model on every split, on the real clip and on
/// the real-speech dev set (as recorded and through the telephone channel) when given.
pub struct EvalRun<'a> {
    pub models: &'a [std::path::PathBuf],
    pub vocab: &'a Path,
    /// `*.jsonl` splits of `corpus index`.
    pub splits: &'a [std::path::PathBuf],
    /// `../shared/data/speech-real` (the real clip), if scored.
    pub real: Option<&'a Path>,
    /// `../shared/data/speech-real-dev`, if scored.
    pub real_dev: Option<&'a Path>,
    /// At most this many utterances of each split.
    pub limit: usize,
    pub decoder_name: &'a str,
    pub decoder: Arc<dyn CtcDecoder>,
}

/// `sangdam-host eval`: one row of [`Scores`] per model and set, in that order, with
/// three examples each.
pub fn run(r: &EvalRun) -> Result<Vec<Scores>> {
    let tel_dir = std::env::temp_dir().join(format!("sangdam-real-dev-{}", std::process::id()));
    let mut sets: Vec<(String, Vec<Item>)> = Vec::new();
    for sp in r.splits {
        let mut items = data::read_split(sp)?;
        items.truncate(r.limit);
        let name = sp
            .file_stem()
            .map_or("split".into(), |s| s.to_string_lossy().into_owned());
        sets.push((name, items));
    }
    if let Some(dir) = r.real {
        sets.push(("real clip".into(), real_clip_items(dir)?));
    }
    if let Some(dir) = r.real_dev {
        sets.push(("real-dev as recorded".into(), real_dev_items(dir, None)?));
        sets.push((
            "real-dev telephone".into(),
            real_dev_items(dir, Some(&tel_dir))?,
        ));
    }
    let mut rows = Vec::new();
    for model in r.models {
        for (name, items) in &sets {
            rows.push(evaluate_with(
                model,
                r.vocab,
                name,
                items,
                3,
                r.decoder_name,
                r.decoder.clone(),
            )?);
        }
    }
    let _ = std::fs::remove_dir_all(&tel_dir);
    Ok(rows)
}

/// The model's scores for each item, computed once so that many decoders can be tried
/// on them (`sangdam-host lm tune`): `(reference, logits, audio seconds)`.
pub fn logits_of(
    model: &Path,
    vocab: &sangdam::asr::Vocab,
    items: &[Item],
) -> Result<Vec<(String, Array2<f32>, f64)>> {
    let engine = sangdam::asr::AsrEngine::load_with(
        model,
        vocab.clone(),
        Arc::new(sangdam::asr::GreedyDecoder),
    )
    .map_err(load_error(model))?;
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let audio = data::load_audio(&it.audio)?;
        if audio.len() < sangdam::asr::MIN_SAMPLES {
            continue;
        }
        let logits = engine.logits(&sangdam::asr::features::normalize(&audio))?;
        out.push((
            sangdam::hangul::compose_jamo(&it.text),
            logits,
            audio.len() as f64 / data::RATE as f64,
        ));
    }
    Ok(out)
}

/// CER, WER, product hits and decoding seconds of `decoder` on precomputed logits.
pub fn score_decoder(
    decoder: &dyn CtcDecoder,
    vocab: &sangdam::asr::Vocab,
    logits: &[(String, Array2<f32>, f64)],
) -> (f64, f64, (usize, usize), f64) {
    let t = Instant::now();
    let pairs: Vec<(String, String)> = logits
        .iter()
        .map(|(r, l, _)| (r.clone(), decoder.decode(l.view(), vocab).text))
        .collect();
    let secs = t.elapsed().as_secs_f64();
    let (cer, wer) = error_rates(&pairs);
    (cer, wer, product_hits(&pairs, &product_forms()), secs)
}

/// The real Korean clip in `../shared/data/speech-real` as an item list (its
/// `transcripts.tsv` gives file and text).
pub fn real_clip_items(dir: &Path) -> Result<Vec<Item>> {
    let tsv = dir.join("transcripts.tsv");
    let text = std::fs::read_to_string(&tsv).map_err(read_error(&tsv))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (audio, transcript) = (f.next()?, f.next()?);
            Some(Item {
                key: audio.to_string(),
                audio: dir.join(audio),
                transcript: tsv.clone(),
                text: transcript.to_string(),
                seconds: 0.0,
                speaker: "real".into(),
            })
        })
        .collect())
}

/// The real read-speech evaluation set (`../shared/data/speech-real-dev`: WAVs under
/// `AnechoicChamber/`, texts in the corpus's own metadata JSON) as an item list, texts
/// reduced to Hangul and spaces (the recogniser writes no punctuation). With
/// `telephone = Some(dir)` every clip is first put through the synthetic corpus's phone
/// channel (8 kHz, 300-3400 Hz, G.711 mu-law, by sox) into `dir`. Evaluation only: never
/// train or tune on it.
pub fn real_dev_items(root: &Path, telephone: Option<&Path>) -> Result<Vec<Item>> {
    let meta_path = root.join("Korean_Read_Speech_Corpus_sample.json");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).map_err(read_error(&meta_path))?)
            .map_err(|source| EvalError::NotJson {
                path: meta_path.clone(),
                source,
            })?;
    let wavs = root.join("AnechoicChamber");
    let mut names: Vec<String> = std::fs::read_dir(&wavs)
        .map_err(read_error(&wavs))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wav"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let id = name.trim_end_matches(".wav");
        let Some(text) = meta["AnechoicChamber"][id]["text"].as_str() else {
            continue;
        };
        let text: String = text
            .chars()
            .map(|c| {
                if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut audio = wavs.join(&name);
        if let Some(dir) = telephone {
            std::fs::create_dir_all(dir).map_err(|source| EvalError::Create {
                path: dir.to_owned(),
                source,
            })?;
            let tel = dir.join(&name);
            let st = std::process::Command::new("sox")
                .arg(&audio)
                .args(["-r", "8000", "-e", "u-law", "-b", "8"])
                .arg(&tel)
                .args(["sinc", "300-3400"])
                .status()
                .map_err(EvalError::NoSox)?;
            if !st.success() {
                return Err(EvalError::SoxFailed { path: audio });
            }
            audio = tel;
        }
        out.push(Item {
            key: id.to_string(),
            audio,
            transcript: meta_path.clone(),
            text,
            seconds: 0.0,
            speaker: "real-dev".into(),
        });
    }
    if out.is_empty() {
        return Err(EvalError::NoClips { path: wavs });
    }
    Ok(out)
}

/// A markdown table of scores.
pub fn table(rows: &[Scores]) -> String {
    let mut s = String::from(
        "| model | set | decoder | utts | audio s | CER % | WER % | products | RTF (1 thread) | decode s / audio s | peak RSS MB | load s |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let products = if r.products.0 == 0 {
            "-".to_string()
        } else {
            format!(
                "{}/{} ({:.1}%)",
                r.products.1,
                r.products.0,
                r.product_accuracy() * 100.0
            )
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {:.4} | {:.5} | {:.0} | {:.2} |\n",
            Path::new(&r.model)
                .file_name()
                .map_or(r.model.clone(), |f| f.to_string_lossy().into_owned()),
            r.set,
            r.decoder,
            r.utterances,
            r.audio_seconds,
            r.cer * 100.0,
            r.wer * 100.0,
            products,
            r.rtf(),
            r.decode_seconds / r.audio_seconds.max(1e-9),
            r.peak_rss_mb,
            r.load_seconds
        ));
    }
    s
}
