//! The in-domain evaluation set (`tests/data/sentiment-calls/calls.tsv`, written apart
//! from every training template; see its PROVENANCE.md) and three-class scoring:
//! positive / neutral / negative from a model's positive probability and a neutral band.
//!
//! - **Polar accuracy**: on the items labelled positive or negative, the model's label
//!   at 0.5 (what the box reported before it had a neutral class).
//! - **Three classes**: probabilities inside `[lo, hi]` are neutral; macro-F1 over the
//!   three labels. The band is chosen on the set's `dev` split only ([`choose_band`]),
//!   never on `test`.
//! - **Reliability**: polar items grouped by predicted probability in tenths, the mean
//!   prediction against the share that is really positive.

use std::path::{Path, PathBuf};

use sangdam::sentiment::tokenizer::TokenizerError;
use sangdam::sentiment::SentimentError;
use serde::{Deserialize, Serialize};

use super::SentimentDataError;

/// Why the in-domain set or the read-speech sentences cannot be read, or a model scored
/// on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallsError {
    /// [`read_calls`]'s file.
    #[error("cannot read {} (the in-domain sentiment set)", path.display())]
    ReadSet {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: the header must be id, split, domain, speaker, label, case, text (tab-separated)",
        path.display()
    )]
    Header { path: PathBuf },
    /// A row without seven fields (`line` counts from 1, the header included).
    #[error("{} line {line}: {found} fields, want 7", path.display())]
    Fields {
        path: PathBuf,
        line: usize,
        found: usize,
    },
    #[error("{} line {line}: label {label:?} is not positive, neutral or negative", path.display())]
    Label {
        path: PathBuf,
        line: usize,
        label: String,
    },
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
    #[error("{}: no AnechoicChamber entries", path.display())]
    NoRoom { path: PathBuf },
    /// `--tokenizer` as the firmware reads it.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The firmware's engine refused the model.
    #[error("loading {}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: SentimentError,
    },
    /// Classifying a batch failed.
    #[error(transparent)]
    Classify(#[from] SentimentError),
    /// The baseline's training file ([`super::read_tsv`]).
    #[error(transparent)]
    Data(#[from] SentimentDataError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = CallsError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    Negative,
    Neutral,
    Positive,
}

impl Polarity {
    pub const ALL: [Polarity; 3] = [Polarity::Negative, Polarity::Neutral, Polarity::Positive];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "negative" => Some(Polarity::Negative),
            "neutral" => Some(Polarity::Neutral),
            "positive" => Some(Polarity::Positive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Polarity::Negative => "negative",
            Polarity::Neutral => "neutral",
            Polarity::Positive => "positive",
        }
    }

    /// The label of positive probability `p` with neutral band `[lo, hi]`.
    pub fn of(p: f32, band: (f32, f32)) -> Self {
        if p < band.0 {
            Polarity::Negative
        } else if p > band.1 {
            Polarity::Positive
        } else {
            Polarity::Neutral
        }
    }
}

/// One row of the in-domain set.
#[derive(Debug, Clone)]
pub struct CallItem {
    pub id: String,
    /// `dev` (may choose thresholds) or `test` (scoring only).
    pub split: String,
    pub domain: String,
    pub speaker: String,
    pub label: Polarity,
    pub case: String,
    pub text: String,
}

/// Reads `id split domain speaker label case text` (tab-separated, with a header).
pub fn read_calls(path: &Path) -> Result<Vec<CallItem>> {
    let text = std::fs::read_to_string(path).map_err(|source| CallsError::ReadSet {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    if header != "id\tsplit\tdomain\tspeaker\tlabel\tcase\ttext" {
        return Err(CallsError::Header {
            path: path.to_owned(),
        });
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let [id, split, domain, speaker, label, case, text] = f[..] else {
            return Err(CallsError::Fields {
                path: path.to_owned(),
                line: n + 2,
                found: f.len(),
            });
        };
        let Some(label) = Polarity::parse(label) else {
            return Err(CallsError::Label {
                path: path.to_owned(),
                line: n + 2,
                label: label.into(),
            });
        };
        out.push(CallItem {
            id: id.into(),
            split: split.into(),
            domain: domain.into(),
            speaker: speaker.into(),
            label,
            case: case.into(),
            text: text.into(),
        });
    }
    Ok(out)
}

/// One reliability bin: predictions in `[lo, lo + 0.1)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bin {
    pub lo: f32,
    pub items: usize,
    pub mean_predicted: f64,
    pub share_positive: f64,
}

/// What a model scores on a set of items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallScores {
    pub items: usize,
    pub polar_items: usize,
    /// Polar items whose label at 0.5 is right.
    pub polar_accuracy: f64,
    pub band: (f32, f32),
    pub macro_f1: f64,
    pub accuracy_3: f64,
    /// `confusion[truth][predicted]` in the order negative, neutral, positive.
    pub confusion: [[usize; 3]; 3],
    pub reliability: Vec<Bin>,
    /// Expected calibration error over the reliability bins (polar items).
    pub ece: f64,
}

fn index(p: Polarity) -> usize {
    p as usize
}

/// Macro-F1 and accuracy over three classes of `(truth, predicted)` pairs.
pub fn macro_f1(pairs: &[(Polarity, Polarity)]) -> (f64, f64, [[usize; 3]; 3]) {
    let mut m = [[0usize; 3]; 3];
    for &(t, p) in pairs {
        m[index(t)][index(p)] += 1;
    }
    let mut f1 = 0.0;
    for (c, row) in m.iter().enumerate() {
        let tp = row[c] as f64;
        let predicted: usize = m.iter().map(|r| r[c]).sum();
        let actual: usize = row.iter().sum();
        let (p, r) = (tp / predicted.max(1) as f64, tp / actual.max(1) as f64);
        f1 += if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
    }
    let right: usize = (0..3).map(|c| m[c][c]).sum();
    (f1 / 3.0, right as f64 / pairs.len().max(1) as f64, m)
}

/// Scores positive probabilities `p` (one per item) with neutral band `band`.
pub fn score(p: &[f32], items: &[&CallItem], band: (f32, f32)) -> CallScores {
    let polar: Vec<(f32, bool)> = p
        .iter()
        .zip(items)
        .filter(|(_, it)| it.label != Polarity::Neutral)
        .map(|(&p, it)| (p, it.label == Polarity::Positive))
        .collect();
    let right = polar.iter().filter(|(p, pos)| (*p >= 0.5) == *pos).count();
    let pairs: Vec<(Polarity, Polarity)> = p
        .iter()
        .zip(items)
        .map(|(&p, it)| (it.label, Polarity::of(p, band)))
        .collect();
    let (macro_f1, accuracy_3, confusion) = macro_f1(&pairs);
    let mut reliability = Vec::new();
    let mut ece = 0.0;
    for b in 0..10 {
        let lo = b as f32 / 10.0;
        let inside: Vec<&(f32, bool)> = polar
            .iter()
            .filter(|(p, _)| ((p * 10.0) as usize).min(9) == b)
            .collect();
        if inside.is_empty() {
            continue;
        }
        let n = inside.len() as f64;
        let mean = inside.iter().map(|(p, _)| *p as f64).sum::<f64>() / n;
        let share = inside.iter().filter(|(_, pos)| *pos).count() as f64 / n;
        ece += n / polar.len() as f64 * (mean - share).abs();
        reliability.push(Bin {
            lo,
            items: inside.len(),
            mean_predicted: mean,
            share_positive: share,
        });
    }
    CallScores {
        items: items.len(),
        polar_items: polar.len(),
        polar_accuracy: right as f64 / polar.len().max(1) as f64,
        band,
        macro_f1,
        accuracy_3,
        confusion,
        reliability,
        ece,
    }
}

/// The neutral band with the best macro-F1 on `dev`: `lo` in [0, 0.5] and `hi` in
/// [0.5, 1] in steps of 0.025; ties go to the narrower band.
pub fn choose_band(p: &[f32], dev: &[&CallItem]) -> (f32, f32) {
    let mut best = ((0.5, 0.5), -1.0, 0.0);
    for lo in 0..=20 {
        for hi in 0..=20 {
            let band = (lo as f32 * 0.025, 0.5 + hi as f32 * 0.025);
            let pairs: Vec<(Polarity, Polarity)> = p
                .iter()
                .zip(dev)
                .map(|(&p, it)| (it.label, Polarity::of(p, band)))
                .collect();
            let (f1, _, _) = macro_f1(&pairs);
            let width = band.1 - band.0;
            if f1 > best.1 + 1e-12 || ((f1 - best.1).abs() <= 1e-12 && width < best.2) {
                best = (band, f1, width);
            }
        }
    }
    best.0
}

impl CallScores {
    /// A markdown block: the headline numbers, the confusion matrix and reliability.
    pub fn markdown(&self, title: &str) -> String {
        let mut out = format!(
            "**{title}**: polar accuracy {:.2}% ({} polar of {} items); three classes with neutral band [{:.3}, {:.3}]: macro-F1 {:.3}, accuracy {:.2}%; ECE {:.3}\n\n",
            self.polar_accuracy * 100.0,
            self.polar_items,
            self.items,
            self.band.0,
            self.band.1,
            self.macro_f1,
            self.accuracy_3 * 100.0,
            self.ece
        );
        out += "| truth \\ predicted | negative | neutral | positive |\n|---|---:|---:|---:|\n";
        for t in Polarity::ALL {
            let r = self.confusion[index(t)];
            out += &format!("| {} | {} | {} | {} |\n", t.as_str(), r[0], r[1], r[2]);
        }
        out += "\n| predicted p(positive) | polar items | mean predicted | share positive |\n|---|---:|---:|---:|\n";
        for b in &self.reliability {
            out += &format!(
                "| {:.1}-{:.1} | {} | {:.3} | {:.3} |\n",
                b.lo,
                b.lo + 0.1,
                b.items,
                b.mean_predicted,
                b.share_positive
            );
        }
        out
    }
}

/// One model's positive probabilities for `texts`, through the firmware's engine.
pub fn probabilities(
    engine: &sangdam::sentiment::SentimentEngine,
    texts: &[&str],
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        out.extend(
            engine
                .classify_batch(chunk)?
                .into_iter()
                .map(|s| s.p_positive),
        );
    }
    Ok(out)
}

/// The real read-speech set's sentences with their `text_sentiment` (-1, 0, 1), as the
/// recogniser would print them (punctuation dropped). Evaluation only.
pub fn read_speech_real_dev(dir: &Path) -> Result<Vec<CallItem>> {
    let meta = dir.join("Korean_Read_Speech_Corpus_sample.json");
    let text = std::fs::read_to_string(&meta).map_err(|source| CallsError::Read {
        path: meta.clone(),
        source,
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| CallsError::NotJson {
            path: meta.clone(),
            source,
        })?;
    let room = json["AnechoicChamber"]
        .as_object()
        .ok_or_else(|| CallsError::NoRoom { path: meta.clone() })?;
    let mut out = Vec::new();
    for (id, e) in room {
        // The WAVs the set ships: neutral voice only.
        if e["voice_sentiment"].as_i64() != Some(0)
            || !dir
                .join("AnechoicChamber")
                .join(format!("{id}.wav"))
                .exists()
        {
            continue;
        }
        let label = match e["text_sentiment"].as_i64() {
            Some(-1) => Polarity::Negative,
            Some(0) => Polarity::Neutral,
            Some(1) => Polarity::Positive,
            _ => continue,
        };
        let text: String = e["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == ' ' {
                    c
                } else {
                    ' '
                }
            })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        out.push(CallItem {
            id: id.clone(),
            split: "test".into(),
            domain: "read-speech".into(),
            speaker: e["speaker"].as_str().unwrap_or_default().into(),
            label,
            case: "plain".into(),
            text,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Everything `sentiment calls` reports for one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallsReport {
    pub model: String,
    pub dev: CallScores,
    pub test: CallScores,
    /// Polar accuracy on the test split by case tag: `(case, polar items, accuracy)`.
    pub by_case: Vec<(String, usize, f64)>,
    pub speech_real_dev: Option<CallScores>,
}

impl CallsReport {
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.model);
        out += &self.test.markdown("in-domain test");
        out += "\n";
        out += &format!(
            "dev split (band chosen here): polar {:.2}%, macro-F1 {:.3}\n\n",
            self.dev.polar_accuracy * 100.0,
            self.dev.macro_f1
        );
        out += "| case (test) | polar items | polar accuracy |\n|---|---:|---:|\n";
        for (case, n, acc) in &self.by_case {
            out += &format!("| {case} | {n} | {:.1}% |\n", acc * 100.0);
        }
        if let Some(r) = &self.speech_real_dev {
            out += "\n";
            out += &r.markdown("speech-real-dev sentences (text_sentiment; same band)");
        }
        out
    }
}

/// Scores positive probabilities of the whole set (`p[i]` for `items[i]`): the band from
/// the dev split, the scores on test, polar accuracy per case tag.
pub fn report(
    model: &str,
    items: &[CallItem],
    p: &[f32],
    real: Option<(&[CallItem], &[f32])>,
) -> CallsReport {
    let pick = |split: &str| -> (Vec<&CallItem>, Vec<f32>) {
        items
            .iter()
            .zip(p)
            .filter(|(it, _)| it.split == split)
            .map(|(it, &p)| (it, p))
            .unzip()
    };
    let (dev, dev_p) = pick("dev");
    let (test, test_p) = pick("test");
    let band = choose_band(&dev_p, &dev);
    let mut cases: Vec<String> = test.iter().map(|it| it.case.clone()).collect();
    cases.sort();
    cases.dedup();
    let by_case = cases
        .into_iter()
        .filter_map(|case| {
            let polar: Vec<bool> = test
                .iter()
                .zip(&test_p)
                .filter(|(it, _)| it.case == case && it.label != Polarity::Neutral)
                .map(|(it, &p)| (p >= 0.5) == (it.label == Polarity::Positive))
                .collect();
            (!polar.is_empty()).then(|| {
                let right = polar.iter().filter(|&&r| r).count();
                (case, polar.len(), right as f64 / polar.len() as f64)
            })
        })
        .collect();
    CallsReport {
        model: model.into(),
        dev: score(&dev_p, &dev, band),
        test: score(&test_p, &test, band),
        by_case,
        speech_real_dev: real.map(|(items, p)| {
            let refs: Vec<&CallItem> = items.iter().collect();
            score(p, &refs, band)
        }),
    }
}

/// What `sangdam-host sentiment calls` scores: one model on the in-domain call set and on
/// the real-speech dev sentences, optionally against the TF-IDF baseline.
pub struct CallsRun<'a> {
    pub model: &'a Path,
    pub tokenizer: &'a Path,
    /// `tests/data/sentiment-calls/calls.tsv`.
    pub set: &'a Path,
    /// `../shared/data/speech-real-dev`; skipped (with a note) when it is not there.
    pub real: &'a Path,
    /// A training TSV: also train and score the TF-IDF + logistic-regression baseline.
    pub baseline: Option<&'a Path>,
    /// Write each item's probability and label here (TSV).
    pub predictions: Option<&'a Path>,
}

/// `sangdam-host sentiment calls`: the model's report, then the baseline's if asked.
pub fn run(r: &CallsRun) -> Result<Vec<CallsReport>> {
    let tok = sangdam::sentiment::Tokenizer::load(r.tokenizer)?;
    let engine =
        sangdam::sentiment::SentimentEngine::load_with(r.model, tok).map_err(|source| {
            CallsError::Load {
                path: r.model.to_owned(),
                source,
            }
        })?;
    let items = read_calls(r.set)?;
    let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let p = probabilities(&engine, &texts)?;
    let real_items = if r.real.exists() {
        Some(read_speech_real_dev(r.real)?)
    } else {
        eprintln!(
            "{} not found: the read-speech sentences are skipped",
            r.real.display()
        );
        None
    };
    let real_p = match &real_items {
        Some(real) => {
            let t: Vec<&str> = real.iter().map(|i| i.text.as_str()).collect();
            Some(probabilities(&engine, &t)?)
        }
        None => None,
    };
    let name = r.model.display().to_string();
    let mut reports = vec![report(
        &name,
        &items,
        &p,
        real_items.as_deref().zip(real_p.as_deref()),
    )];
    if let Some(out) = r.predictions {
        let band = reports[0].test.band;
        let mut tsv = String::from("id\tsplit\tcase\tlabel\tp_positive\tpredicted\ttext\n");
        for (it, &p) in items.iter().zip(&p) {
            tsv += &format!(
                "{}\t{}\t{}\t{}\t{p:.4}\t{}\t{}\n",
                it.id,
                it.split,
                it.case,
                it.label.as_str(),
                Polarity::of(p, band).as_str(),
                it.text
            );
        }
        std::fs::write(out, tsv).map_err(|source| CallsError::Write {
            path: out.to_owned(),
            source,
        })?;
    }
    if let Some(train_path) = r.baseline {
        use crate::sentiment::baseline::{BaselineSettings, TfidfLogistic};
        let (mut train, _) = crate::sentiment::read_tsv(train_path)?;
        // The same seeded 5% dev split as `sentiment eval --baseline`.
        let mut rng = crate::rng::Rng::new(42);
        crate::data::shuffle(&mut train, &mut rng);
        let dev = train.split_off(train.len() - train.len() / 20);
        let (m, _) = TfidfLogistic::train(&train, &dev, &BaselineSettings::default());
        let bp = m.predict(&texts);
        let brp = real_items.as_ref().map(|r| {
            let t: Vec<&str> = r.iter().map(|i| i.text.as_str()).collect();
            m.predict(&t)
        });
        reports.push(report(
            &format!(
                "TF-IDF char 1-4 + logistic regression on {}",
                train_path.display()
            ),
            &items,
            &bp,
            real_items.as_deref().zip(brp.as_deref()),
        ));
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(label: Polarity, split: &str) -> CallItem {
        CallItem {
            id: String::new(),
            split: split.into(),
            domain: String::new(),
            speaker: String::new(),
            label,
            case: "plain".into(),
            text: String::new(),
        }
    }

    #[test]
    fn macro_f1_of_a_perfect_and_a_one_sided_guess() {
        use Polarity::*;
        let perfect = [
            (Negative, Negative),
            (Neutral, Neutral),
            (Positive, Positive),
        ];
        assert_eq!(macro_f1(&perfect).0, 1.0);
        // Everything called neutral: only the neutral class has an F1 (2/3 precision...).
        let all_neutral = [(Negative, Neutral), (Neutral, Neutral), (Positive, Neutral)];
        let (f1, acc, m) = macro_f1(&all_neutral);
        assert!((f1 - (2.0 * (1.0 / 3.0) / (1.0 / 3.0 + 1.0)) / 3.0).abs() < 1e-12);
        assert!((acc - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m[0][1] + m[1][1] + m[2][1], 3);
    }

    #[test]
    fn the_band_is_chosen_on_dev_and_maps_the_middle_to_neutral() {
        use Polarity::*;
        let dev = [
            item(Negative, "dev"),
            item(Neutral, "dev"),
            item(Neutral, "dev"),
            item(Positive, "dev"),
        ];
        let refs: Vec<&CallItem> = dev.iter().collect();
        let p = [0.05, 0.42, 0.61, 0.97];
        let band = choose_band(&p, &refs);
        assert!(
            band.0 <= 0.42 && band.0 > 0.05 && band.1 >= 0.61 && band.1 < 0.97,
            "{band:?}"
        );
        let s = score(&p, &refs, band);
        assert_eq!(s.macro_f1, 1.0);
        // Polar accuracy ignores the neutral rows: both polar ones right.
        assert_eq!((s.polar_items, s.polar_accuracy), (2, 1.0));
        // A confident wrong answer is what calibration error measures.
        let s = score(&[0.95, 0.5, 0.5, 0.05], &refs, band);
        assert_eq!(s.polar_accuracy, 0.0);
        assert!(s.ece > 0.9, "{}", s.ece);
    }

    #[test]
    fn the_in_domain_set_reads_with_every_label_and_both_splits() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/sentiment-calls/calls.tsv");
        let items = read_calls(&path).unwrap();
        assert!(items.len() >= 400, "{}", items.len());
        for l in Polarity::ALL {
            for split in ["dev", "test"] {
                assert!(
                    items.iter().any(|i| i.label == l && i.split == split),
                    "{l:?} {split}"
                );
            }
        }
        for domain in ["finance", "telecom", "education"] {
            assert!(
                items.iter().filter(|i| i.domain == domain).count() >= 100,
                "{domain}"
            );
        }
        // As the recogniser writes: no punctuation.
        assert!(items.iter().all(|i| i
            .text
            .chars()
            .all(|c| c == ' ' || ('가'..='힣').contains(&c))));
    }
}
