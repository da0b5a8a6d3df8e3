//! Drivers of call sentiment: TF-IDF, a decision tree and a gradient-boosted ensemble.
//!
//! The seed vectorised transcripts with TF-IDF, trained a decision tree and then XGBoost
//! to predict call sentiment, and read the top feature importances as the topics to act
//! on. The same here, on the box:
//!
//! 1. **TF-IDF** over the calls' keywords. The vocabulary is the `max_features` keywords
//!    with the highest document frequency among those in at least `min_df` calls;
//!    weights are sublinear (`1 + ln tf`) times smooth idf (`ln((1 + n)/(1 + df)) + 1`),
//!    each row scaled to unit length. Rows are sparse, and a call keeps at most
//!    `max_doc_features` of its weights (the largest; the norm is taken before the cut, so
//!    the kept weights are exact).
//! 2. A seeded shuffle splits the calls into training and validation sets.
//! 3. A **decision tree** (one regression tree on the logistic loss's gradient and
//!    hessian, depth [`DriverSettings::tree_depth`], no shrinkage: with a constant
//!    hessian at the root this is a variance-reduction CART) is the baseline.
//! 4. **Gradient-boosted trees** as XGBoost grows them: logistic loss, split gain
//!    `½ [G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)]`, leaf weight `−G/(H+λ)`, depth-limited
//!    trees, shrinkage, a minimum hessian per child.
//! 5. Importance is the total gain of a feature's splits as a share of all gain
//!    (XGBoost's `total_gain`, normalised). The top features are the drivers.
//!
//! A driver's **direction** ([`Toward`]) compares the positive share of the calls that
//! contain the keyword with the positive share of all calls used: higher or equal is
//! [`Toward::Positive`]. Gain says how much a keyword matters, not which way, and a
//! keyword's calls are what a manager would read. Its **examples** are utterances that
//! contain the keyword, from calls of its direction first, shortest first.
//!
//! The steps live in their own files: `tfidf.rs` (step 1), `trees.rs` (the grower and
//! the boosted model, steps 3 and 4), `memory.rs` (the accounting behind
//! [`DriverSettings::memory_bound`]); this file holds the settings, the report, the
//! split, the driver selection and the examples.
//!
//! # Why not a crate
//!
//! Checked for this module (crates.io versions via `cargo info`, repositories' history):
//!
//! - forust-ml 0.8.0: XGBoost's algorithm with `calculate_feature_importance(TotalGain)`,
//!   the closest fit. It takes a dense column-major `Matrix<f64>`: 50,000 calls × 2,000
//!   keywords is 800 MB before it bins them, on a box with 1-4 GB, for rows that are
//!   ~99% zeros. Its repository's default branch last changed on 2025-03-02 and still
//!   says 0.4.8; its author moved on to perpetual (3.0.0-rc.2; 2.3.0 needs nightly per
//!   ../shared/CRATES.md). 34 crates in its dependency tree (rayon, rand 0.8, thiserror 1).
//! - linfa-trees 0.8.1 (released 2025-12-23; rust-ml/linfa is active): a CART classifier
//!   with impurity-decrease importance but no boosting; dense `ndarray` input; 43 crates.
//! - smartcore 0.7.0: random forests, and an `XGRegressor` whose only objective is
//!   squared error, without importances; dense matrices; 16 crates.
//!
//! None boosts a classifier over sparse rows with gain importance, so the trees are
//! grown here. The splitter walks sparse columns: a call without a keyword has weight 0
//! and goes left with the smallest weights, so a split costs the number of calls that
//! have the keyword, not the number of calls.
//!
//! # Memory
//!
//! [`DriverSettings::memory_bound`] is an upper bound on the bytes this module allocates
//! while it runs, besides the input calls and the returned report: per kept call
//! `16·max_doc_features + 70` bytes (its sparse row and its transposed copy for training,
//! labels, margins, gradients), per feature about 170, per tree node 16 for the models,
//! and at most 64 per distinct keyword of the kept calls for counting document
//! frequencies. That map is the only part the settings do not bound; it is of the order
//! of the input's own keyword strings (each at least a 24-byte `String` and its text).
//! For the defaults (50,000 calls, 2,000 features, 128 weights per call, 100 rounds of
//! depth 4) and 100,000 distinct keywords the bound is 112.9 MB, reached only if every
//! call has 128 or more vocabulary keywords; calls with 30 need about a quarter of it.
//! The test `a_20k_call_run_stays_within_the_memory_bound` adds up the real structures'
//! sizes (capacities) at each step and checks the peak against the bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::mem::size_of;

use serde::{Deserialize, Serialize};

use super::Doc;

mod memory;
mod tfidf;
mod trees;

use memory::{map_bytes, vec_bytes, Footprint, MAP_ENTRY_BYTES, MAP_SLACK};
use tfidf::{columns, vectorise, vocabulary, Sparse};
use trees::{fit, Model, Node, NodeStats, Tree};

/// How drivers are computed. The defaults suit a box with 1 GB or more (see the module
/// docs for the memory bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriverSettings {
    /// Keywords kept as features, by document frequency.
    pub max_features: usize,
    /// A keyword must occur in this many calls to be a feature.
    pub min_df: usize,
    /// Share of the calls held out to measure accuracy.
    pub validation_fraction: f64,
    /// Seeds the training/validation shuffle; the same seed gives the same report.
    pub seed: u64,
    /// Drivers reported.
    pub top: usize,
    /// Example utterances per driver.
    pub examples: usize,
    /// The newest calls used (by `at`, then by position): bounds memory and time.
    pub max_docs: usize,
    /// Most TF-IDF weights a call keeps (its largest): bounds a row's memory.
    pub max_doc_features: usize,
    /// Boosting rounds (trees of the ensemble).
    pub rounds: usize,
    /// Depth of each boosted tree.
    pub depth: usize,
    /// Shrinkage of each boosted tree's leaf weights.
    pub learning_rate: f64,
    /// L2 penalty on leaf weights (XGBoost's λ).
    pub lambda: f64,
    /// Minimum sum of hessians in a child (XGBoost's `min_child_weight`).
    pub min_child_weight: f64,
    /// Depth of the single decision tree.
    pub tree_depth: usize,
}

impl Default for DriverSettings {
    fn default() -> Self {
        DriverSettings {
            max_features: 2000,
            min_df: 3,
            validation_fraction: 0.2,
            seed: 42,
            top: 30,
            examples: 3,
            max_docs: 50_000,
            max_doc_features: 128,
            rounds: 100,
            depth: 4,
            learning_rate: 0.2,
            lambda: 1.0,
            min_child_weight: 1.0,
            tree_depth: 6,
        }
    }
}

impl DriverSettings {
    /// Upper bound, in bytes, of what [`drivers`] allocates besides its input and the
    /// report it returns, when the kept calls hold `distinct_keywords` different
    /// keywords. Counts capacities, not just lengths.
    pub fn memory_bound(&self, distinct_keywords: usize) -> usize {
        let n = self.max_docs.min(u32::MAX as usize);
        let f = self.max_features;
        let k = self.max_doc_features.min(f);
        let nodes = self.max_nodes(n);
        let trees = self.rounds.saturating_add(1);
        let map = |entries: usize| entries.saturating_mul(MAP_ENTRY_BYTES) + MAP_SLACK;
        let per_doc = 8 // &Doc
            + 16 // newest-first heap entry
            + 8 // row offset
            + 1 + 1 // labels, training labels
            + 8 // shuffled order
            + 28 // margin, gradient, hessian, leaf of a training row
            ;
        let per_feature = 24 // top-features heap
            + 16 + 4 // vocabulary, idf
            + 16 // mark and count scratch
            + 8 // row scratch
            + 8 + 8 // column offsets, fill cursors
            + 2 * 8 // gains of both models
            ;
        let per_node = size_of::<NodeStats>() + 3 * 4 + trees.saturating_mul(size_of::<Node>());
        let slots = self.top.saturating_mul(2);
        let per_slot = size_of::<Slot>() + self.examples.saturating_add(1).saturating_mul(2 * 16);
        n.saturating_mul(per_doc + 2 * 8 * k)
            .saturating_add(8 + 8 + 8) // offsets' extra ends
            .saturating_add(f.saturating_mul(per_feature))
            .saturating_add(map(f))
            .saturating_add(map(distinct_keywords))
            .saturating_add(nodes.saturating_mul(per_node))
            .saturating_add(trees.saturating_mul(size_of::<Tree>()))
            .saturating_add(slots.saturating_mul(per_slot))
            .saturating_add(map(slots))
    }

    /// Nodes a tree of `n` training calls can have: a full tree of the deeper depth, or
    /// two per call (every child holds a call).
    fn max_nodes(&self, n: usize) -> usize {
        let depth = self.depth.max(self.tree_depth);
        let full = if depth >= usize::BITS as usize - 2 {
            usize::MAX
        } else {
            (1usize << (depth + 1)) - 1
        };
        full.min(n.saturating_mul(2).max(1))
    }
}

/// Which way a driver pulls: its calls are more often positive or negative than calls
/// overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Toward {
    Negative,
    Positive,
}

/// One keyword that the model leans on, with what its calls are like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub feature: String,
    /// Share of the model's total split gain, 0..1.
    pub gain: f64,
    pub toward: Toward,
    /// Calls containing the keyword, and how they split.
    pub docs: usize,
    pub negative_docs: usize,
    pub positive_docs: usize,
    /// Utterances containing it, from calls of its direction first, shortest first.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriversReport {
    /// Calls used (the newest `max_docs`).
    pub docs: usize,
    /// Keywords in the vocabulary.
    pub features: usize,
    pub train_docs: usize,
    pub validation_docs: usize,
    /// Validation accuracy of always answering the training set's majority sentiment.
    pub majority_accuracy: f64,
    pub tree_accuracy: f64,
    pub ensemble_accuracy: f64,
    /// What the ensemble is.
    pub ensemble: String,
    pub drivers: Vec<Driver>,
    /// The single tree's top features, for comparison.
    pub tree_drivers: Vec<Driver>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum DriversError {
    #[error("need at least {need} calls with sentiment to find drivers, have {have}")]
    TooFew { have: usize, need: usize },
    #[error(
        "need calls of both sentiments to find drivers: {positive} positive, {negative} negative"
    )]
    OneClass { positive: usize, negative: usize },
    #[error("no keyword occurs in {min_df} calls or more; nothing to learn from yet")]
    NoFeatures { min_df: usize },
}

/// Calls needed before drivers are computed.
pub const MIN_DOCS: usize = 20;

fn accuracy(model: &Model, rows: &Sparse, docs: &[&Doc], ix: &[usize]) -> f64 {
    let right = ix
        .iter()
        .filter(|&&i| (model.margin(rows.line(i)) >= 0.0) == docs[i].positive)
        .count();
    right as f64 / ix.len().max(1) as f64
}

fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// The newest `max` calls, by `at` then position, oldest first.
fn newest<'a>(docs: &'a [Doc], max: usize, fp: &mut Footprint) -> Vec<&'a Doc> {
    if docs.len() <= max {
        return docs.iter().collect();
    }
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::with_capacity(max + 1);
    for (i, d) in docs.iter().enumerate() {
        heap.push(Reverse((d.at, i)));
        if heap.len() > max {
            heap.pop();
        }
    }
    fp.at(heap.capacity() * size_of::<Reverse<(u64, usize)>>() + max * size_of::<&Doc>());
    let mut kept: Vec<(u64, usize)> = heap.into_iter().map(|Reverse(k)| k).collect();
    kept.sort_unstable();
    kept.into_iter().map(|(_, i)| &docs[i]).collect()
}

/// What is gathered about one reported keyword.
#[derive(Debug, Default)]
struct Slot<'a> {
    docs: usize,
    positive: usize,
    /// The doc that last counted, so a call counts once.
    last: usize,
    /// The shortest utterances containing the keyword, from positive and negative calls.
    from_positive: Vec<&'a str>,
    from_negative: Vec<&'a str>,
}

fn shortest_first(t: &str) -> (usize, &str) {
    (t.chars().count(), t)
}

/// Keeps `best` the `keep` shortest distinct texts (ties: the smaller text); `best` has
/// room for `keep + 1`.
fn offer<'a>(best: &mut Vec<&'a str>, text: &'a str, keep: usize) {
    let k = shortest_first(text);
    if let Err(i) = best.binary_search_by(|b| shortest_first(b).cmp(&k)) {
        if i < keep {
            best.insert(i, text);
            best.truncate(keep);
        }
    }
}

/// Drivers of both models: their top features by gain share, with what their calls are
/// like. One pass over the calls serves both lists.
fn drivers_of<'a>(
    models: [&[f64]; 2],
    words: &[&'a str],
    docs: &[&'a Doc],
    s: &DriverSettings,
    fp: &mut Footprint,
) -> [Vec<Driver>; 2] {
    let tops = models.map(|gains| {
        let mut order: Vec<usize> = (0..gains.len()).filter(|&j| gains[j] > 0.0).collect();
        order.sort_by(|&a, &b| gains[b].total_cmp(&gains[a]).then(a.cmp(&b)));
        order.truncate(s.top);
        order
    });
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    for &j in tops.iter().flatten() {
        let next = slot_of.len();
        slot_of.entry(words[j]).or_insert(next);
    }
    let mut slots: Vec<Slot> = (0..slot_of.len())
        .map(|_| Slot {
            last: usize::MAX,
            from_positive: Vec::with_capacity(s.examples + 1),
            from_negative: Vec::with_capacity(s.examples + 1),
            ..Slot::default()
        })
        .collect();
    for (i, d) in docs.iter().enumerate() {
        for k in &d.keywords {
            let Some((&word, &si)) = slot_of.get_key_value(k.as_str()) else {
                continue;
            };
            let slot = &mut slots[si];
            if slot.last == i {
                continue;
            }
            slot.last = i;
            slot.docs += 1;
            slot.positive += usize::from(d.positive);
            for t in d.texts.iter().filter(|t| t.contains(word)) {
                let best = if d.positive {
                    &mut slot.from_positive
                } else {
                    &mut slot.from_negative
                };
                offer(best, t, s.examples);
            }
        }
    }
    fp.at(map_bytes(&slot_of)
        + vec_bytes(&slots)
        + slots
            .iter()
            .map(|s| vec_bytes(&s.from_positive) + vec_bytes(&s.from_negative))
            .sum::<usize>());
    let overall = docs.iter().filter(|d| d.positive).count() as f64 / docs.len().max(1) as f64;
    [0, 1].map(|m| {
        let gains = models[m];
        let total: f64 = gains.iter().sum();
        tops[m]
            .iter()
            .map(|&j| {
                let slot = &slots[slot_of[words[j]]];
                let share = slot.positive as f64 / slot.docs.max(1) as f64;
                let toward = if share >= overall {
                    Toward::Positive
                } else {
                    Toward::Negative
                };
                let (first, then) = match toward {
                    Toward::Positive => (&slot.from_positive, &slot.from_negative),
                    Toward::Negative => (&slot.from_negative, &slot.from_positive),
                };
                let mut examples: Vec<String> = Vec::with_capacity(s.examples);
                for t in first.iter().chain(then) {
                    if examples.len() < s.examples && !examples.iter().any(|e| e == t) {
                        examples.push((*t).to_owned());
                    }
                }
                Driver {
                    feature: words[j].to_owned(),
                    gain: gains[j] / total,
                    toward,
                    docs: slot.docs,
                    negative_docs: slot.docs - slot.positive,
                    positive_docs: slot.positive,
                    examples,
                }
            })
            .collect()
    })
}

/// Trains the decision tree and the boosted ensemble on the newest `max_docs` calls and
/// reports their validation accuracy and drivers. Deterministic for a given seed.
pub fn drivers(docs: &[Doc], s: &DriverSettings) -> Result<DriversReport, DriversError> {
    drivers_measured(docs, s, &mut Footprint::default())
}

fn drivers_measured(
    all: &[Doc],
    s: &DriverSettings,
    fp: &mut Footprint,
) -> Result<DriversReport, DriversError> {
    let docs = newest(all, s.max_docs.min(u32::MAX as usize), fp);
    if docs.len() < MIN_DOCS {
        return Err(DriversError::TooFew {
            have: docs.len(),
            need: MIN_DOCS,
        });
    }
    let positive = docs.iter().filter(|d| d.positive).count();
    if positive == 0 || positive == docs.len() {
        return Err(DriversError::OneClass {
            positive,
            negative: docs.len() - positive,
        });
    }
    fp.base = vec_bytes(&docs);
    let vocab = vocabulary(&docs, s, fp);
    if vocab.words.is_empty() {
        return Err(DriversError::NoFeatures { min_df: s.min_df });
    }
    fp.base += vocab.heap_bytes();
    let rows = vectorise(&docs, &vocab, s, fp);
    fp.base += rows.heap_bytes();

    let mut order: Vec<usize> = (0..docs.len()).collect();
    shuffle(&mut order, s.seed);
    let n_val =
        ((docs.len() as f64 * s.validation_fraction).round() as usize).clamp(1, docs.len() - 1);
    let (val, train) = order.split_at(n_val);
    let y: Vec<bool> = train.iter().map(|&i| docs[i].positive).collect();
    fp.base += vec_bytes(&order) + vec_bytes(&y);
    let cols = columns(&rows, train, vocab.words.len(), fp);
    fp.base += cols.heap_bytes();
    let tree = fit(&cols, &y, 1, s.tree_depth, 1.0, s, fp);
    fp.base += tree.heap_bytes();
    let ensemble = fit(&cols, &y, s.rounds, s.depth, s.learning_rate, s, fp);
    fp.base += ensemble.heap_bytes();
    drop(cols);

    let majority = 2 * y.iter().filter(|&&t| t).count() >= y.len();
    let majority_accuracy = val
        .iter()
        .filter(|&&i| docs[i].positive == majority)
        .count() as f64
        / val.len() as f64;
    let [drivers, tree_drivers] =
        drivers_of([&ensemble.gains, &tree.gains], &vocab.words, &docs, s, fp);
    Ok(DriversReport {
        docs: docs.len(),
        features: vocab.words.len(),
        train_docs: train.len(),
        validation_docs: val.len(),
        majority_accuracy,
        tree_accuracy: accuracy(&tree, &rows, &docs, val),
        ensemble_accuracy: accuracy(&ensemble, &rows, &docs, val),
        ensemble: format!(
            "gradient-boosted trees, logistic loss (sangdam's sparse XGBoost-style splitter): \
             {} rounds, depth {}, learning rate {}",
            s.rounds, s.depth, s.learning_rate
        ),
        drivers,
        tree_drivers,
    })
}

#[cfg(test)]
mod tests {
    use super::memory::*;
    use super::tfidf::*;
    use super::*;

    /// A small deterministic generator for the synthetic calls.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn chance(&mut self, per_mille: u64) -> bool {
            self.below(1000) < per_mille
        }
    }

    const NOISE: [&str; 24] = [
        "문의", "확인", "고객", "번호", "결제", "상담", "변경", "신청", "요금", "주소", "방문",
        "해지", "안내", "연락", "접수", "처리", "기간", "금액", "서류", "명의", "등록", "조회",
        "발급", "일정",
    ];

    /// Calls where 한도 (credit limit) mostly comes up in negative calls and 앱 in
    /// positive ones; 카드 in nearly every call; noise words everywhere. 45% positive.
    /// Each keyword occurrence is an utterance "<keyword> 관련해서 말씀드릴게요" (or a
    /// shorter one for the drivers), so examples can be checked.
    fn synthetic(n: usize, seed: u64) -> Vec<Doc> {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
        (0..n)
            .map(|i| {
                let positive = rng.chance(450);
                let mut kw: Vec<String> = Vec::new();
                let mut texts: Vec<String> = Vec::new();
                if rng.chance(950) {
                    kw.push("카드".into());
                    texts.push("카드 관련해서 전화드렸어요".into());
                }
                if rng.chance(if positive { 100 } else { 750 }) {
                    for _ in 0..=rng.below(3) {
                        kw.push("한도".into());
                    }
                    texts.push(if positive {
                        "한도는 괜찮아요".into()
                    } else {
                        "한도가 또 줄었어요".into()
                    });
                }
                if rng.chance(if positive { 650 } else { 100 }) {
                    kw.push("앱".into());
                    texts.push(if positive {
                        "앱으로 하니까 편하네요".into()
                    } else {
                        "앱이 안 돼요".into()
                    });
                }
                for _ in 0..3 + rng.below(10) {
                    let w = NOISE[rng.below(NOISE.len() as u64) as usize];
                    kw.push(w.into());
                    texts.push(format!("{w} 관련해서 말씀드릴게요"));
                }
                Doc {
                    id: format!("{i:05}"),
                    at: 1_700_000_000 + i as u64 * 60,
                    day: crate::store::Day::of_unix(
                        1_700_000_000 + i as u64 * 60,
                        &crate::store::TimeZone::UTC,
                    ),
                    keywords: kw,
                    positive,
                    texts,
                }
            })
            .collect()
    }

    fn find<'a>(list: &'a [Driver], word: &str) -> &'a Driver {
        list.iter()
            .find(|d| d.feature == word)
            .unwrap_or_else(|| panic!("{word} not among {list:?}"))
    }

    #[test]
    fn known_drivers_are_found_with_their_direction() {
        let docs = synthetic(1000, 7);
        let r = drivers(&docs, &DriverSettings::default()).unwrap();
        eprintln!(
            "majority {:.3} tree {:.3} ensemble {:.3}; top {:?}",
            r.majority_accuracy,
            r.tree_accuracy,
            r.ensemble_accuracy,
            r.drivers
                .iter()
                .take(4)
                .map(|d| (&d.feature, d.gain))
                .collect::<Vec<_>>()
        );
        let top2: Vec<&str> = r.drivers[..2].iter().map(|d| d.feature.as_str()).collect();
        assert!(top2.contains(&"한도") && top2.contains(&"앱"), "{top2:?}");
        for list in [&r.drivers, &r.tree_drivers] {
            assert_eq!(find(list, "한도").toward, Toward::Negative);
            assert_eq!(find(list, "앱").toward, Toward::Positive);
        }
        let limit = find(&r.drivers, "한도");
        assert_eq!(limit.docs, limit.negative_docs + limit.positive_docs);
        assert!(limit.negative_docs > 3 * limit.positive_docs, "{limit:?}");
        assert!(r.ensemble_accuracy > r.majority_accuracy + 0.2, "{r:?}");
        assert!(r.tree_accuracy > r.majority_accuracy + 0.1, "{r:?}");
        let total: f64 = r.drivers.iter().map(|d| d.gain).sum();
        assert!(total <= 1.0 + 1e-9 && r.drivers.iter().all(|d| d.gain > 0.0));
        assert!(r.drivers.windows(2).all(|w| w[0].gain >= w[1].gain));
        assert_eq!((r.docs, r.train_docs, r.validation_docs), (1000, 800, 200));
        assert_eq!(r.features, 3 + NOISE.len());
    }

    #[test]
    fn examples_contain_the_keyword_and_favour_its_direction() {
        let docs = synthetic(400, 11);
        let r = drivers(&docs, &DriverSettings::default()).unwrap();
        // Negative calls say "한도가 또 줄었어요", positive ones "한도는 괜찮아요".
        assert_eq!(
            find(&r.drivers, "한도").examples,
            ["한도가 또 줄었어요", "한도는 괜찮아요"]
        );
        assert_eq!(
            find(&r.drivers, "앱").examples,
            ["앱으로 하니까 편하네요", "앱이 안 돼요"]
        );
        let s = DriverSettings {
            examples: 1,
            ..DriverSettings::default()
        };
        let r = drivers(&docs, &s).unwrap();
        assert!(r.drivers.iter().all(|d| d.examples.len() <= 1));
        for d in &r.drivers {
            assert!(d.examples.iter().all(|e| e.contains(&d.feature)), "{d:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_report() {
        let docs = synthetic(300, 3);
        let s = DriverSettings::default();
        let a = drivers(&docs, &s).unwrap();
        assert_eq!(a, drivers(&docs, &s).unwrap());
        // Keyword order within a call changes nothing either.
        let mut reordered = docs.clone();
        for d in &mut reordered {
            d.keywords.reverse();
        }
        assert_eq!(a, drivers(&reordered, &s).unwrap());
        let other = drivers(
            &docs,
            &DriverSettings {
                seed: 43,
                ..s.clone()
            },
        )
        .unwrap();
        assert_eq!(other.docs, a.docs);
        assert!(other.drivers[..2].iter().any(|d| d.feature == "한도"));
    }

    #[test]
    fn only_the_newest_calls_are_used() {
        // Older calls where 한도 comes with positive calls, then newer ones where it is a
        // complaint, given out of order.
        let mut docs = synthetic(600, 5);
        for d in &mut docs[..300] {
            d.positive = !d.positive;
            d.at -= 1_000_000;
        }
        docs.reverse();
        let s = DriverSettings {
            max_docs: 300,
            ..DriverSettings::default()
        };
        let r = drivers(&docs, &s).unwrap();
        assert_eq!(r.docs, 300);
        assert_eq!(find(&r.drivers, "한도").toward, Toward::Negative);
        let old = drivers(&docs[300..], &s).unwrap();
        assert_eq!(find(&old.drivers, "한도").toward, Toward::Positive);
    }

    #[test]
    fn tf_idf_rows_are_sublinear_unit_and_capped() {
        let doc = |keywords: &[&str]| Doc {
            id: String::new(),
            at: 0,
            day: crate::store::Day(0),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            positive: true,
            texts: Vec::new(),
        };
        let docs = [
            doc(&["가", "가", "가", "가", "나"]),
            doc(&["가", "다"]),
            doc(&["나", "다", "라"]),
        ];
        let refs: Vec<&Doc> = docs.iter().collect();
        let s = DriverSettings {
            min_df: 2,
            ..DriverSettings::default()
        };
        let mut fp = Footprint::default();
        let v = vocabulary(&refs, &s, &mut fp);
        // df 2 each, ties by word; 라 occurs once.
        assert_eq!(v.words, ["가", "나", "다"]);
        let rows = vectorise(&refs, &v, &s, &mut fp);
        let idf = (4.0f32 / 3.0).ln() + 1.0;
        let (a, b) = ((1.0 + 4f32.ln()) * idf, idf);
        let norm = (a * a + b * b).sqrt();
        let first = rows.line(0);
        assert_eq!(first.len(), 2);
        assert!((first[0].1 - a / norm).abs() < 1e-6 && (first[1].1 - b / norm).abs() < 1e-6);
        for i in 0..3 {
            let n2: f32 = rows.line(i).iter().map(|(_, x)| x * x).sum();
            assert!((n2 - 1.0).abs() < 1e-5);
        }
        // Cut to one weight: the larger (가), with its value from the full norm.
        let cut = vectorise(
            &refs,
            &v,
            &DriverSettings {
                max_doc_features: 1,
                ..s
            },
            &mut fp,
        );
        assert_eq!(cut.line(0), &first[..1]);
        assert_eq!(cut.entries.len(), 3);
    }

    #[test]
    fn a_perfect_keyword_takes_all_the_gain() {
        let mut docs = synthetic(200, 9);
        for d in &mut docs {
            d.keywords.retain(|k| NOISE.contains(&k.as_str()));
            if !d.positive {
                d.keywords.push("불만".into());
            }
        }
        let r = drivers(&docs, &DriverSettings::default()).unwrap();
        assert_eq!(r.tree_accuracy, 1.0);
        assert_eq!(r.tree_drivers[0].feature, "불만");
        assert!(r.tree_drivers[0].gain > 0.99, "{:?}", r.tree_drivers[0]);
        assert_eq!(r.tree_drivers[0].toward, Toward::Negative);
        assert_eq!(r.ensemble_accuracy, 1.0);
        assert_eq!(r.drivers[0].feature, "불만");
    }

    #[test]
    fn too_little_or_one_sided_data_is_a_clear_error() {
        let s = DriverSettings::default();
        let e = drivers(&synthetic(10, 1), &s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "need at least 20 calls with sentiment to find drivers, have 10"
        );
        let mut docs = synthetic(37, 1);
        for d in &mut docs {
            d.positive = true;
        }
        let e = drivers(&docs, &s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "need calls of both sentiments to find drivers: 37 positive, 0 negative"
        );
        let docs: Vec<Doc> = synthetic(50, 2)
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                d.keywords = vec![format!("유일{i}")];
                d
            })
            .collect();
        assert_eq!(
            drivers(&docs, &s),
            Err(DriversError::NoFeatures { min_df: 3 })
        );
        // max_docs below the minimum is the same as too few calls.
        let e = drivers(&synthetic(100, 1), &DriverSettings { max_docs: 5, ..s });
        assert_eq!(e, Err(DriversError::TooFew { have: 5, need: 20 }));
    }

    #[test]
    fn a_20k_call_run_stays_within_the_memory_bound() {
        let mut docs = synthetic(20_000, 5);
        // Some long calls with far more vocabulary keywords than a row keeps.
        for (i, d) in docs.iter_mut().enumerate().step_by(50) {
            d.keywords
                .extend((0..300).map(|j| format!("주제{}", (i + j) % 400)));
        }
        let s = DriverSettings {
            max_docs: 15_000,
            max_doc_features: 64,
            rounds: 20,
            ..DriverSettings::default()
        };
        let mut fp = Footprint::default();
        let r = drivers_measured(&docs, &s, &mut fp).unwrap();
        assert_eq!(r.docs, 15_000);
        let kept = &docs[5_000..];
        let mut distinct: Vec<&str> = kept
            .iter()
            .flat_map(|d| d.keywords.iter().map(String::as_str))
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        let bound = s.memory_bound(distinct.len());
        eprintln!(
            "{} features, {} distinct keywords: peak {} bytes, bound {} bytes",
            r.features,
            distinct.len(),
            fp.peak,
            bound
        );
        assert!(fp.peak > 15_000 * 8 * 10, "the footprint counts the rows");
        assert!(fp.peak <= bound, "peak {} > bound {bound}", fp.peak);
        // Rows that all reach the cap come close to the bound.
        let tight = DriverSettings {
            max_doc_features: 4,
            ..s
        };
        let mut fp = Footprint::default();
        drivers_measured(&docs, &tight, &mut fp).unwrap();
        let bound = tight.memory_bound(distinct.len());
        eprintln!("capped at 4: peak {} bytes, bound {bound} bytes", fp.peak);
        assert!(
            fp.peak <= bound && fp.peak > bound / 2,
            "{} {bound}",
            fp.peak
        );
        // The figure the module docs give for the defaults.
        let defaults = DriverSettings::default().memory_bound(100_000);
        assert!((112_000_000..114_000_000).contains(&defaults), "{defaults}");
    }
}
