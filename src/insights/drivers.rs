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

/// Bytes per entry of a `HashMap` of 16-24 byte entries at its worst load (hashbrown
/// doubles its buckets at 7/8 full; one control byte per bucket), and its fixed extra.
const MAP_ENTRY_BYTES: usize = 64;
const MAP_SLACK: usize = 1024;

fn map_bytes<K, V>(m: &HashMap<K, V>) -> usize {
    let buckets = if m.capacity() == 0 {
        0
    } else {
        (m.capacity() * 8 / 7 + 1).next_power_of_two()
    };
    buckets * (size_of::<(K, V)>() + 1) + 16
}

fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

/// The largest live working set seen, in bytes: `base` is what the caller holds while a
/// step adds its own scratch.
#[derive(Debug, Default)]
struct Footprint {
    base: usize,
    peak: usize,
}

impl Footprint {
    fn at(&mut self, extra: usize) {
        self.peak = self.peak.max(self.base + extra);
    }
}

/// Compressed sparse rows (or, transposed, columns): entry `(index, value)`.
#[derive(Debug, Default)]
struct Sparse {
    offsets: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl Sparse {
    fn line(&self, i: usize) -> &[(u32, f32)] {
        &self.entries[self.offsets[i]..self.offsets[i + 1]]
    }

    fn lines(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.offsets) + vec_bytes(&self.entries)
    }
}

struct Vocabulary<'a> {
    words: Vec<&'a str>,
    idf: Vec<f32>,
    index: HashMap<&'a str, u32>,
}

/// The `max_features` keywords of highest document frequency (ties: the smaller word)
/// among those in `min_df` calls or more, with their smooth idf.
fn vocabulary<'a>(docs: &[&'a Doc], s: &DriverSettings, fp: &mut Footprint) -> Vocabulary<'a> {
    // Document frequency, and the last call counted so repeats in a call count once.
    let mut df: HashMap<&str, (u32, u32)> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        for k in &d.keywords {
            let e = df.entry(k.as_str()).or_insert((0, u32::MAX));
            if e.1 != i as u32 {
                e.0 += 1;
                e.1 = i as u32;
            }
        }
    }
    let mut top: BinaryHeap<Reverse<(u32, Reverse<&str>)>> =
        BinaryHeap::with_capacity(s.max_features.min(df.len()) + 1);
    for (&word, &(n, _)) in &df {
        if (n as usize) < s.min_df || s.max_features == 0 {
            continue;
        }
        top.push(Reverse((n, Reverse(word))));
        if top.len() > s.max_features {
            top.pop();
        }
    }
    fp.at(map_bytes(&df) + top.capacity() * size_of::<Reverse<(u32, Reverse<&str>)>>());
    drop(df);
    let ranked: Vec<(u32, &str)> = top
        .into_sorted_vec()
        .into_iter()
        .map(|Reverse((n, Reverse(w)))| (n, w))
        .collect();
    let n = docs.len() as f32;
    let idf = ranked
        .iter()
        .map(|&(d, _)| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
        .collect();
    let words: Vec<&str> = ranked.iter().map(|&(_, w)| w).collect();
    let index = words
        .iter()
        .enumerate()
        .map(|(i, &w)| (w, i as u32))
        .collect();
    let v = Vocabulary { words, idf, index };
    fp.at(v.heap_bytes() + vec_bytes(&ranked));
    v
}

impl Vocabulary<'_> {
    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.words) + vec_bytes(&self.idf) + map_bytes(&self.index)
    }
}

/// Reusable per-call counting: term counts in a dense array, reset through `touched`.
struct Counter {
    counts: Vec<f32>,
    touched: Vec<u32>,
    row: Vec<(u32, f32)>,
}

impl Counter {
    fn new(features: usize) -> Self {
        Counter {
            counts: vec![0.0; features],
            touched: Vec::with_capacity(features),
            row: Vec::with_capacity(features),
        }
    }

    /// The call's TF-IDF row, l2-normalised over all its weights, then cut to its
    /// `keep` largest (ties: lower feature), in feature order.
    fn row(&mut self, d: &Doc, v: &Vocabulary, keep: usize) -> &[(u32, f32)] {
        for k in &d.keywords {
            if let Some(&j) = v.index.get(k.as_str()) {
                if self.counts[j as usize] == 0.0 {
                    self.touched.push(j);
                }
                self.counts[j as usize] += 1.0;
            }
        }
        self.row.clear();
        for &j in &self.touched {
            let c = std::mem::take(&mut self.counts[j as usize]);
            self.row.push((j, (1.0 + c.ln()) * v.idf[j as usize]));
        }
        self.touched.clear();
        // A fixed order before summing, so the norm does not depend on keyword order.
        self.row.sort_unstable_by_key(|&(j, _)| j);
        let norm = self.row.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
        if self.row.len() > keep {
            let by_weight =
                |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if keep > 0 {
                self.row.select_nth_unstable_by(keep - 1, by_weight);
            }
            self.row.truncate(keep);
            self.row.sort_unstable_by_key(|&(j, _)| j);
        }
        if norm > 0.0 {
            for (_, x) in &mut self.row {
                *x /= norm;
            }
        }
        &self.row
    }

    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.counts) + vec_bytes(&self.touched) + vec_bytes(&self.row)
    }
}

/// TF-IDF rows of `docs`, allocated exactly: a first pass sizes them.
fn vectorise(docs: &[&Doc], v: &Vocabulary, s: &DriverSettings, fp: &mut Footprint) -> Sparse {
    let keep = s.max_doc_features;
    let mut counter = Counter::new(v.words.len());
    let mut offsets = Vec::with_capacity(docs.len() + 1);
    offsets.push(0);
    let mut total = 0;
    for d in docs {
        total += counter.row(d, v, keep).len();
        offsets.push(total);
    }
    let mut entries = Vec::with_capacity(total);
    for d in docs {
        entries.extend_from_slice(counter.row(d, v, keep));
    }
    let rows = Sparse { offsets, entries };
    fp.at(rows.heap_bytes() + counter.heap_bytes());
    rows
}

/// The training rows as columns: per feature, (training row, weight) by weight, then row.
fn columns(rows: &Sparse, train: &[usize], features: usize, fp: &mut Footprint) -> Sparse {
    let mut offsets = vec![0usize; features + 1];
    for &i in train {
        for &(j, _) in rows.line(i) {
            offsets[j as usize + 1] += 1;
        }
    }
    for j in 0..features {
        offsets[j + 1] += offsets[j];
    }
    let mut cursor: Vec<usize> = offsets[..features].to_vec();
    let mut entries = vec![(0u32, 0.0f32); offsets[features]];
    for (r, &i) in train.iter().enumerate() {
        for &(j, x) in rows.line(i) {
            entries[cursor[j as usize]] = (r as u32, x);
            cursor[j as usize] += 1;
        }
    }
    fp.at(vec_bytes(&cursor) + vec_bytes(&offsets) + vec_bytes(&entries));
    drop(cursor);
    for j in 0..features {
        entries[offsets[j]..offsets[j + 1]]
            .sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    }
    Sparse { offsets, entries }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Leaf(f32),
    Split {
        feature: u32,
        /// Rows with a weight ≤ threshold (and rows without the feature) go left.
        threshold: f32,
        left: u32,
        right: u32,
    },
}

#[derive(Debug, Clone, Default)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, row: &[(u32, f32)]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf(w) => return f64::from(w),
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    let x = row
                        .binary_search_by_key(&feature, |&(j, _)| j)
                        .map(|k| row[k].1)
                        .unwrap_or(0.0);
                    i = if x <= threshold { left } else { right } as usize;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Best {
    gain: f64,
    feature: u32,
    threshold: f32,
}

/// Sums of gradients, hessians and rows.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: u32,
}

impl Sums {
    fn add(&mut self, g: f64, h: f64) {
        self.g += g;
        self.h += h;
        self.n += 1;
    }

    fn minus(self, o: Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// A node's state while its level is grown.
#[derive(Debug, Clone, Copy, Default)]
struct NodeStats {
    total: Sums,
    /// Of the current feature: rows that have it, and rows left of the candidate.
    with: Sums,
    left: Sums,
    /// The last run of equal weights that touched the node.
    run: usize,
    active: bool,
    best: Option<Best>,
}

/// Buffers reused by every tree of a fit.
#[derive(Debug, Default)]
struct Scratch {
    /// The node each training row is in.
    node_of: Vec<u32>,
    stats: Vec<NodeStats>,
    active: Vec<u32>,
    next: Vec<u32>,
    touched: Vec<u32>,
}

impl Scratch {
    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.node_of)
            + vec_bytes(&self.stats)
            + vec_bytes(&self.active)
            + vec_bytes(&self.next)
            + vec_bytes(&self.touched)
    }
}

struct Grower<'a> {
    cols: &'a Sparse,
    lambda: f64,
    min_child_weight: f64,
    depth: usize,
    /// Nodes a tree may have (scratch is sized for it).
    max_nodes: usize,
    /// Shrinkage of leaf weights.
    eta: f64,
}

impl Grower<'_> {
    fn score(&self, s: Sums) -> f64 {
        s.g * s.g / (s.h + self.lambda)
    }

    fn consider(&self, st: &mut NodeStats, feature: u32, threshold: f32) {
        let (l, r) = (st.left, st.total.minus(st.left));
        if l.n == 0 || r.n == 0 || l.h < self.min_child_weight || r.h < self.min_child_weight {
            return;
        }
        let gain = 0.5 * (self.score(l) + self.score(r) - self.score(st.total));
        if gain > 1e-9 && st.best.is_none_or(|b| gain > b.gain) {
            st.best = Some(Best {
                gain,
                feature,
                threshold,
            });
        }
    }

    /// Grows one tree level by level on gradients `g` and hessians `h`, adding each
    /// split's gain to `gains`; leaf weights are scaled by `eta`. Leaves each training
    /// row's leaf in `x.node_of`.
    fn grow(&self, g: &[f64], h: &[f64], gains: &mut [f64], x: &mut Scratch) -> Tree {
        let (n, depth, max_nodes) = (g.len(), self.depth, self.max_nodes);
        x.node_of.clear();
        x.node_of.resize(n, 0);
        x.stats.clear();
        x.stats.push(NodeStats::default());
        x.active.clear();
        x.active.push(0);
        let mut nodes = Vec::with_capacity(max_nodes);
        nodes.push(Node::Leaf(0.0));
        let mut run = 0usize;
        for level in 0..=depth {
            for st in x.stats.iter_mut() {
                *st = NodeStats {
                    run: st.run,
                    ..NodeStats::default()
                };
            }
            for &a in &x.active {
                x.stats[a as usize].active = true;
            }
            for i in 0..n {
                x.stats[x.node_of[i] as usize].total.add(g[i], h[i]);
            }
            // Room for two children per active node.
            let can_split = level < depth && nodes.len() + 2 * x.active.len() <= max_nodes;
            if can_split {
                for f in 0..self.cols.lines() {
                    let col = self.cols.line(f);
                    if col.is_empty() {
                        continue;
                    }
                    for &a in &x.active {
                        x.stats[a as usize].with = Sums::default();
                    }
                    for &(r, _) in col {
                        let st = &mut x.stats[x.node_of[r as usize] as usize];
                        if st.active {
                            st.with.add(g[r as usize], h[r as usize]);
                        }
                    }
                    // Left starts as the rows without the feature: weight 0.
                    for &a in &x.active {
                        let st = &mut x.stats[a as usize];
                        st.left = st.total.minus(st.with);
                        if st.with.n > 0 {
                            self.consider(st, f as u32, 0.0);
                        }
                    }
                    let mut k = 0;
                    while k < col.len() {
                        let v = col[k].1;
                        run += 1;
                        x.touched.clear();
                        while k < col.len() && col[k].1 == v {
                            let r = col[k].0 as usize;
                            let node = x.node_of[r];
                            let st = &mut x.stats[node as usize];
                            if st.active {
                                st.left.add(g[r], h[r]);
                                if st.run != run {
                                    st.run = run;
                                    x.touched.push(node);
                                }
                            }
                            k += 1;
                        }
                        for &node in &x.touched {
                            self.consider(&mut x.stats[node as usize], f as u32, v);
                        }
                    }
                }
            }
            x.next.clear();
            for &a in &x.active {
                let st = x.stats[a as usize];
                match st.best {
                    Some(b) => {
                        gains[b.feature as usize] += b.gain;
                        let l = nodes.len() as u32;
                        nodes.push(Node::Leaf(0.0));
                        nodes.push(Node::Leaf(0.0));
                        x.stats.push(NodeStats::default());
                        x.stats.push(NodeStats::default());
                        nodes[a as usize] = Node::Split {
                            feature: b.feature,
                            threshold: b.threshold,
                            left: l,
                            right: l + 1,
                        };
                        x.next.push(l);
                        x.next.push(l + 1);
                    }
                    None => {
                        let w = -st.total.g / (st.total.h + self.lambda) * self.eta;
                        nodes[a as usize] = Node::Leaf(w as f32);
                    }
                }
            }
            if x.next.is_empty() {
                break;
            }
            // Rows above a new split's threshold go right; then every row still in a
            // split node (the rest of its rows, including those without the feature)
            // goes left.
            for &a in &x.active {
                if let Node::Split {
                    feature,
                    threshold,
                    right,
                    ..
                } = nodes[a as usize]
                {
                    for &(r, v) in self.cols.line(feature as usize) {
                        let at = &mut x.node_of[r as usize];
                        if *at == a && v > threshold {
                            *at = right;
                        }
                    }
                }
            }
            for at in x.node_of.iter_mut() {
                if let Node::Split { left, .. } = nodes[*at as usize] {
                    *at = left;
                }
            }
            std::mem::swap(&mut x.active, &mut x.next);
        }
        nodes.shrink_to_fit();
        Tree { nodes }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// An additive model of trees over a base margin, with each feature's total gain.
#[derive(Debug)]
struct Model {
    base: f64,
    trees: Vec<Tree>,
    gains: Vec<f64>,
}

impl Model {
    fn margin(&self, row: &[(u32, f32)]) -> f64 {
        self.base + self.trees.iter().map(|t| t.predict(row)).sum::<f64>()
    }

    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.gains)
            + vec_bytes(&self.trees)
            + self
                .trees
                .iter()
                .map(|t| vec_bytes(&t.nodes))
                .sum::<usize>()
    }
}

/// Boosts `rounds` trees of `depth` on the logistic loss; `cols` holds the training
/// rows transposed, `y` their labels.
fn fit(
    cols: &Sparse,
    y: &[bool],
    rounds: usize,
    depth: usize,
    eta: f64,
    s: &DriverSettings,
    fp: &mut Footprint,
) -> Model {
    let n = y.len();
    let max_nodes = s.max_nodes(n);
    let grower = Grower {
        cols,
        lambda: s.lambda,
        min_child_weight: s.min_child_weight,
        depth,
        max_nodes,
        eta,
    };
    let pos = (y.iter().filter(|&&b| b).count() as f64 / n.max(1) as f64).clamp(1e-3, 1.0 - 1e-3);
    let mut model = Model {
        base: (pos / (1.0 - pos)).ln(),
        trees: Vec::with_capacity(rounds),
        gains: vec![0.0; cols.lines()],
    };
    let mut margin = vec![model.base; n];
    let mut g = vec![0.0; n];
    let mut h = vec![0.0; n];
    let mut x = Scratch {
        node_of: Vec::with_capacity(n),
        stats: Vec::with_capacity(max_nodes),
        active: Vec::with_capacity(max_nodes),
        next: Vec::with_capacity(max_nodes),
        touched: Vec::with_capacity(max_nodes),
    };
    for _ in 0..rounds {
        for i in 0..n {
            let p = sigmoid(margin[i]);
            g[i] = p - f64::from(u8::from(y[i]));
            h[i] = (p * (1.0 - p)).max(1e-6);
        }
        let tree = grower.grow(&g, &h, &mut model.gains, &mut x);
        for (m, &leaf) in margin.iter_mut().zip(&x.node_of) {
            if let Node::Leaf(w) = tree.nodes[leaf as usize] {
                *m += f64::from(w);
            }
        }
        model.trees.push(tree);
        fp.at(3 * vec_bytes(&margin) + x.heap_bytes() + model.heap_bytes());
    }
    model
}

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
