//! `sangdam-host lm`: a syllable n-gram language model for the box's beam search, built
//! from text with interpolated modified Kneser-Ney smoothing (Chen & Goodman's
//! variant: three discounts per order from the counts of counts), pruned by count
//! cutoffs with the back-off weights renormalised, written as ARPA and as the
//! firmware's compact binary ([`sangdam::asr::lm`]).

use std::collections::{BTreeSet, HashMap};

use std::path::{Path, PathBuf};

use sangdam::asr::lm::{units_of, Entry, NgramLm, BOS, EOS, UNK_UNIT};

use crate::corpus::synth;

/// Why the LM's text cannot be gathered or the model built. (The firmware's
/// `sangdam::asr::LmError` is the other side: a model file the box cannot load.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a split file that starts like JSON and is not.
    #[error("{}: a line is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: a JSON line has no \"text\"", path.display())]
    NoText { path: PathBuf },
    /// A TSV source ([`synth::sentences_from_tsv`]).
    #[error(transparent)]
    Tsv(#[from] synth::SynthError),
    #[error("--order {0}: choose 1 to 6")]
    Order(usize),
    #[error("{0} distinct units: more than this builder packs")]
    TooManyUnits(usize),
    /// The firmware refused the tables ([`NgramLm::from_entries`]'s message).
    #[error("{0}")]
    Tables(String),
}

type Result<T, E = LmError> = std::result::Result<T, E>;

/// Where the LM's text comes from.
#[derive(Debug, Clone, Default)]
pub struct TextSources {
    /// Sentences drawn from the synthetic corpus's call-centre templates.
    pub templates: usize,
    pub template_seed: u64,
    /// NSMC-layout TSV files (a `document` column), cleaned as `corpus synth` cleans
    /// them.
    pub tsv: Vec<std::path::PathBuf>,
    /// Plain text files, one utterance per line (a user's own transcripts).
    pub text: Vec<std::path::PathBuf>,
    /// Sentences never to include: the synthetic corpus's held-out test sentences (by
    /// the same hash `corpus synth` uses) when `test_fraction` > 0, and every
    /// transcript in these files (`corpus index` splits or text, one per line).
    pub test_fraction: f64,
    pub exclude: Vec<std::path::PathBuf>,
}

/// The sentences of a split file (`{"text": ...}` per line, jamo composed) or of a text
/// file (one per line).
pub fn sentences_of(path: &Path) -> Result<Vec<String>> {
    let body = std::fs::read_to_string(path).map_err(|source| LmError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let text = if line.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|source| LmError::NotJson {
                    path: path.to_owned(),
                    source,
                })?;
            match v.get("text").and_then(|t| t.as_str()) {
                Some(t) => sangdam::hangul::compose_jamo(t),
                None => {
                    return Err(LmError::NoText {
                        path: path.to_owned(),
                    })
                }
            }
        } else {
            crate::corpus::normalize::normalize(line, Default::default())
        };
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            out.push(text);
        }
    }
    Ok(out)
}

/// The LM's training sentences from `src`, the excluded ones left out; also how many
/// were left out.
pub fn gather(src: &TextSources) -> Result<(Vec<String>, usize)> {
    let mut pool = Vec::new();
    let mut rng = crate::rng::Rng::new(src.template_seed);
    for _ in 0..src.templates {
        pool.push(synth::sentence(&mut rng).2);
    }
    for p in &src.tsv {
        pool.extend(synth::sentences_from_tsv(p)?);
    }
    for p in &src.text {
        pool.extend(sentences_of(p)?);
    }
    // Held out: the excluded files' sentences and the test sentences (by the corpus's
    // hash), each in every spacing (a review written 정말 좋아요 in one line and
    // 정말좋아요 in another is one sentence to the recogniser).
    let mut held: std::collections::HashSet<String> = std::collections::HashSet::new();
    for p in &src.exclude {
        held.extend(sentences_of(p)?.into_iter().map(|s| s.replace(' ', "")));
    }
    if src.test_fraction > 0.0 {
        held.extend(
            pool.iter()
                .filter(|s| synth::is_test_sentence(s, src.test_fraction))
                .map(|s| s.replace(' ', "")),
        );
    }
    let before = pool.len();
    pool.retain(|s| !held.contains(&s.replace(' ', "")));
    let dropped = before - pool.len();
    Ok((pool, dropped))
}

/// Build settings.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub order: usize,
    /// Minimum raw count to keep an n-gram, per order (1-grams always stay); the last
    /// value repeats for higher orders.
    pub cutoffs: Vec<u32>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            order: 5,
            cutoffs: vec![1, 1, 2, 2, 2],
        }
    }
}

fn pack(ids: &[u32]) -> u128 {
    ids.iter().fold(0u128, |k, &i| (k << 20) | i as u128)
}

fn unpack(key: u128, n: usize) -> Vec<u32> {
    (0..n)
        .rev()
        .map(|i| ((key >> (20 * i)) & 0xF_FFFF) as u32)
        .collect()
}

/// The lower-order key: `key` (an n-gram) without its first unit.
fn suffix(key: u128, n: usize) -> u128 {
    key & ((1u128 << (20 * (n - 1))) - 1)
}

/// The context of `key`: it without its last unit.
fn prefix(key: u128) -> u128 {
    key >> 20
}

fn log10(p: f64) -> f32 {
    (p.max(1e-99)).log10() as f32
}

/// Counts, smooths and prunes.
pub fn build(sentences: &[String], s: &BuildSettings) -> Result<NgramLm> {
    let n_max = s.order;
    if !(1..=6).contains(&n_max) {
        return Err(LmError::Order(n_max));
    }
    // Vocabulary: <s> </s> <unk>, then units by first appearance.
    let mut words: Vec<String> = vec![BOS.into(), EOS.into(), UNK_UNIT.into()];
    let mut ids: HashMap<String, u32> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), i as u32))
        .collect();
    let (bos, eos) = (0u32, 1u32); // then <unk> = 2
                                   // Raw counts per order.
    let mut counts: Vec<HashMap<u128, u32>> = vec![HashMap::new(); n_max];
    let mut seq = Vec::new();
    for sentence in sentences {
        seq.clear();
        seq.push(bos);
        for u in units_of(sentence) {
            let next = ids.len() as u32;
            let id = *ids.entry(u.clone()).or_insert_with(|| {
                words.push(u);
                next
            });
            seq.push(id);
        }
        if seq.len() == 1 {
            continue;
        }
        seq.push(eos);
        for n in 1..=n_max {
            for (i, w) in seq.windows(n).enumerate() {
                if n == 1 && i == 0 {
                    continue; // <s> is never predicted
                }
                *counts[n - 1].entry(pack(w)).or_insert(0) += 1;
            }
        }
    }
    if words.len() >= 1 << 20 {
        return Err(LmError::TooManyUnits(words.len()));
    }
    // Adjusted counts: continuation counts (distinct left neighbours) for every order
    // but the highest, except for n-grams that start with <s>, which keep raw counts.
    let starts_with_bos = |key: u128, n: usize| unpack(key, n)[0] == bos;
    let mut adjusted: Vec<HashMap<u128, u32>> = Vec::with_capacity(n_max);
    for n in 1..=n_max {
        if n == n_max {
            adjusted.push(counts[n - 1].clone());
            continue;
        }
        let mut a: HashMap<u128, u32> = HashMap::with_capacity(counts[n - 1].len());
        for &key in counts[n].keys() {
            *a.entry(suffix(key, n + 1)).or_insert(0) += 1;
        }
        for (&key, &c) in &counts[n - 1] {
            if starts_with_bos(key, n) {
                a.insert(key, c);
            }
        }
        adjusted.push(a);
    }
    // Three discounts per order from the counts of adjusted counts.
    let discounts: Vec<[f64; 3]> = adjusted
        .iter()
        .map(|a| {
            let mut cc = [0f64; 5];
            for &c in a.values() {
                if (1..=4).contains(&c) {
                    cc[c as usize] += 1.0;
                }
            }
            if cc[1] == 0.0 || cc[2] == 0.0 || cc[3] == 0.0 || cc[4] == 0.0 {
                return [0.5, 1.0, 1.5];
            }
            let y = cc[1] / (cc[1] + 2.0 * cc[2]);
            let d = [
                1.0 - 2.0 * y * cc[2] / cc[1],
                2.0 - 3.0 * y * cc[3] / cc[2],
                3.0 - 4.0 * y * cc[4] / cc[3],
            ];
            d.map(|x| x.clamp(0.05, 2.9))
        })
        .collect();
    let disc = |n: usize, c: u32| -> f64 {
        let d = &discounts[n - 1];
        match c {
            0 => 0.0,
            1 => d[0],
            2 => d[1],
            _ => d[2],
        }
        .min(c as f64)
    };
    // Per context: the sum of adjusted counts and the mass the discounts free.
    let mut ctx_stats: Vec<HashMap<u128, (f64, f64)>> = Vec::with_capacity(n_max);
    for n in 1..=n_max {
        let mut m: HashMap<u128, (f64, f64)> = HashMap::new();
        for (&key, &c) in &adjusted[n - 1] {
            let e = m
                .entry(if n == 1 { 0 } else { prefix(key) })
                .or_insert((0.0, 0.0));
            e.0 += c as f64;
            e.1 += disc(n, c);
        }
        ctx_stats.push(m);
    }
    // Interpolated probabilities, order by order.
    let vocab_size = (words.len() - 1) as f64; // every unit but <s>
    let mut prob: Vec<HashMap<u128, f64>> = Vec::with_capacity(n_max);
    {
        let (total, freed) = ctx_stats[0][&0];
        let uniform = freed / total / vocab_size;
        let mut p1: HashMap<u128, f64> = HashMap::new();
        for (i, _) in words.iter().enumerate() {
            let i = i as u32;
            if i == bos {
                continue;
            }
            let key = pack(&[i]);
            let c = adjusted[0].get(&key).copied().unwrap_or(0);
            p1.insert(key, (c as f64 - disc(1, c)).max(0.0) / total + uniform);
        }
        prob.push(p1);
    }
    for n in 2..=n_max {
        let mut pn = HashMap::with_capacity(adjusted[n - 1].len());
        for (&key, &c) in &adjusted[n - 1] {
            let (total, freed) = ctx_stats[n - 1][&prefix(key)];
            let lower = prob[n - 2][&suffix(key, n)];
            pn.insert(key, (c as f64 - disc(n, c)) / total + freed / total * lower);
        }
        prob.push(pn);
    }
    // Pruning: an n-gram (order >= 2) stays when its raw count reaches the cutoff, or
    // when a kept longer n-gram needs it as context.
    let cutoff = |n: usize| -> u32 {
        s.cutoffs
            .get(n - 1)
            .or(s.cutoffs.last())
            .copied()
            .unwrap_or(1)
            .max(1)
    };
    let mut kept: Vec<BTreeSet<u128>> = vec![BTreeSet::new(); n_max];
    kept[0] = prob[0].keys().copied().collect();
    for n in (2..=n_max).rev() {
        let mut k: BTreeSet<u128> = counts[n - 1]
            .iter()
            .filter(|(_, &c)| c >= cutoff(n))
            .map(|(&key, _)| key)
            .collect();
        if n < n_max {
            let needed: Vec<u128> = kept[n].iter().map(|&key| prefix(key)).collect();
            k.extend(needed);
        }
        kept[n - 1] = k;
    }
    // <s> as a unigram context.
    kept[0].insert(pack(&[bos]));
    // Back-off weights renormalised over what is kept, lowest order first, so that the
    // pruned model's distributions still sum to one.
    let mut by_order: Vec<Vec<Entry>> = Vec::with_capacity(n_max);
    let mut probs_kept: Vec<HashMap<u128, f64>> = Vec::with_capacity(n_max);
    for n in 1..=n_max {
        let mut m = HashMap::with_capacity(kept[n - 1].len());
        for &key in &kept[n - 1] {
            let p = if n == 1 && key == pack(&[bos]) {
                0.0
            } else {
                prob[n - 1][&key]
            };
            m.insert(key, p);
        }
        probs_kept.push(m);
    }
    // Query of the pruned model below order `n`: p(w | context) by back-off.
    fn query(probs: &[HashMap<u128, f64>], bows: &[HashMap<u128, f64>], ids: &[u32]) -> f64 {
        let n = ids.len();
        if let Some(&p) = probs[n - 1].get(&pack(ids)) {
            return p;
        }
        if n == 1 {
            return 0.0;
        }
        let b = bows[n - 2]
            .get(&pack(&ids[..n - 1]))
            .copied()
            .unwrap_or(1.0);
        b * query(probs, bows, &ids[1..])
    }
    let mut bows: Vec<HashMap<u128, f64>> = vec![HashMap::new(); n_max];
    for n in 1..n_max {
        // For each context h of order n with kept extensions hw at order n+1.
        let mut sums: HashMap<u128, (f64, f64)> = HashMap::new();
        for &key in &kept[n] {
            let ids = unpack(key, n + 1);
            let p = probs_kept[n][&key];
            let lower = query(&probs_kept, &bows, &ids[1..]);
            let e = sums.entry(prefix(key)).or_insert((0.0, 0.0));
            e.0 += p;
            e.1 += lower;
        }
        let mut b = HashMap::with_capacity(sums.len());
        for (h, (hi, lo)) in sums {
            let num = (1.0 - hi).max(1e-12);
            let den = (1.0 - lo).max(1e-12);
            b.insert(h, num / den);
        }
        bows[n - 1] = b;
    }
    for n in 1..=n_max {
        let mut entries: Vec<Entry> = kept[n - 1]
            .iter()
            .map(|&key| {
                let ids = unpack(key, n);
                let p = probs_kept[n - 1][&key];
                let bow = if n < n_max {
                    bows[n - 1].get(&key).copied().unwrap_or(1.0)
                } else {
                    1.0
                };
                Entry {
                    prob: if n == 1 && ids[0] == bos {
                        -99.0
                    } else {
                        log10(p)
                    },
                    bow: log10(bow),
                    ids,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.ids.cmp(&b.ids));
        by_order.push(entries);
    }
    NgramLm::from_entries(words, by_order).map_err(LmError::Tables)
}

/// Perplexity per unit (`</s>` included) of `sentences` under `lm`.
pub fn perplexity(lm: &NgramLm, sentences: &[String]) -> f64 {
    let (mut log10_sum, mut n) = (0f64, 0usize);
    for s in sentences {
        let units = units_of(s);
        log10_sum += lm.sentence_log10(&units) as f64;
        n += units.len() + 1;
    }
    10f64.powf(-log10_sum / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push("카드 한도가 낮아요".to_string());
            v.push("카드 발급이 늦어요".to_string());
            v.push("한도 올려 주세요".to_string());
        }
        v.push("요금이 많이 나왔어요".to_string());
        v
    }

    #[test]
    fn every_context_sums_to_one() {
        let lm = build(
            &corpus(),
            &BuildSettings {
                order: 3,
                cutoffs: vec![1, 1, 1],
            },
        )
        .unwrap();
        let units: Vec<u32> = (0..lm.units() as u32).filter(|&i| i != lm.bos()).collect();
        let contexts: Vec<Vec<u32>> = vec![
            vec![lm.bos()],
            vec![lm.id("카").unwrap()],
            vec![lm.bos(), lm.id("카").unwrap()],
            vec![lm.id("한").unwrap(), lm.id("도").unwrap()],
            vec![lm.id("요").unwrap(), lm.id("카").unwrap()], // unseen context
        ];
        for ctx in contexts {
            let sum: f64 = units
                .iter()
                .map(|&w| 10f64.powf(lm.log10_prob(&ctx, Some(w)) as f64))
                .sum();
            assert!((sum - 1.0).abs() < 1e-3, "{ctx:?}: {sum}");
        }
    }

    #[test]
    fn pruned_models_still_sum_to_one_and_are_smaller() {
        let full = build(
            &corpus(),
            &BuildSettings {
                order: 4,
                cutoffs: vec![1],
            },
        )
        .unwrap();
        let pruned = build(
            &corpus(),
            &BuildSettings {
                order: 4,
                cutoffs: vec![1, 2, 5, 30],
            },
        )
        .unwrap();
        assert!(pruned.counts().iter().sum::<usize>() < full.counts().iter().sum::<usize>());
        let units: Vec<u32> = (0..pruned.units() as u32)
            .filter(|&i| i != pruned.bos())
            .collect();
        for ctx in [
            vec![pruned.bos()],
            vec![
                pruned.id("요").unwrap(),
                pruned.id("금").unwrap(),
                pruned.id("이").unwrap(),
            ],
        ] {
            let sum: f64 = units
                .iter()
                .map(|&w| 10f64.powf(pruned.log10_prob(&ctx, Some(w)) as f64))
                .sum();
            assert!((sum - 1.0).abs() < 1e-3, "{ctx:?}: {sum}");
        }
    }

    #[test]
    fn frequent_spellings_win() {
        let lm = build(&corpus(), &BuildSettings::default()).unwrap();
        let seen = lm.sentence_log10(&units_of("카드 한도가 낮아요"));
        let misspelt = lm.sentence_log10(&units_of("카드 한도가 낟아요"));
        assert!(seen > misspelt + 2.0, "{seen} vs {misspelt}");
        assert!(perplexity(&lm, &["카드 한도가 낮아요".into()]) < 3.0);
    }
}
