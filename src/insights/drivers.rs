//! Drivers of call sentiment: TF-IDF, a decision tree and a gradient-boosted ensemble.
//!
//! The seed vectorised transcripts with TF-IDF, trained a decision tree and then XGBoost
//! to predict call sentiment, and read the top feature importances as the topics to act
//! on. The same here, on the box: TF-IDF over the calls' keywords (sublinear tf, smooth
//! idf, l2 rows), then
//!
//! - a **decision tree** (one regression tree on the logistic gradient, depth
//!   [`DriverSettings::tree_depth`], no shrinkage): the baseline;
//! - **gradient-boosted trees** as XGBoost builds them: second-order logistic loss,
//!   gain `½ [G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)]`, leaf weight `−G/(H+λ)`,
//!   shrinkage, a minimum hessian per child.
//!
//! Importance is the total gain of a feature's splits, as a share of all gain (XGBoost's
//! `total_gain`). A driver's direction compares the positive share of the calls that
//! contain it with that of all calls.
//!
//! **Why not a crate.** The trial build recorded in ../shared/CRATES.md found
//! forust-ml 0.8 (gradient boosting with gain importance; its author's successor,
//! perpetual, needs nightly), linfa-trees 0.8 (a decision tree only, no boosting) and
//! smartcore 0.7 (random forests). All of them take dense `ndarray`/matrix input: 50,000
//! calls × 2,000 keyword features is 400 MB of f32 on a box with 1-4 GB, for rows that
//! are 99% zeros. The splitter here walks sparse columns (a call with no mention of a
//! keyword goes left), so memory is bounded by the number of (call, keyword) pairs:
//! about 16 bytes each, 8 MB for 50,000 calls of 10 distinct keywords, plus the
//! documents themselves. It is about 300 lines, tested below against data whose drivers
//! are known.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Doc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverSettings {
    /// Keywords kept as features, by document frequency.
    pub max_features: usize,
    /// A keyword must occur in this many calls to be a feature.
    pub min_df: usize,
    pub validation_fraction: f64,
    pub seed: u64,
    /// Drivers reported.
    pub top: usize,
    /// Example utterances per driver.
    pub examples: usize,
    /// The newest calls used (bounds memory and time).
    pub max_docs: usize,
    /// Boosting rounds, tree depth, shrinkage, L2 on leaf weights, minimum hessian per
    /// child.
    pub rounds: usize,
    pub depth: usize,
    pub learning_rate: f64,
    pub lambda: f64,
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
            rounds: 100,
            depth: 4,
            learning_rate: 0.2,
            lambda: 1.0,
            min_child_weight: 1.0,
            tree_depth: 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Toward {
    Negative,
    Positive,
}

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
    pub docs: usize,
    pub features: usize,
    pub train_docs: usize,
    pub validation_docs: usize,
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

type Row = Vec<(u32, f32)>;

/// TF-IDF rows over the vocabulary.
fn vectorise(docs: &[&Doc], s: &DriverSettings) -> (Vec<String>, Vec<Row>) {
    let mut df: HashMap<&str, usize> = HashMap::new();
    for d in docs {
        let mut seen: Vec<&str> = d.keywords.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for k in seen {
            *df.entry(k).or_default() += 1;
        }
    }
    let mut vocab: Vec<(&str, usize)> = df.into_iter().filter(|&(_, n)| n >= s.min_df).collect();
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    vocab.truncate(s.max_features);
    let index: HashMap<&str, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i as u32))
        .collect();
    let n = docs.len() as f32;
    let idf: Vec<f32> = vocab
        .iter()
        .map(|&(_, d)| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
        .collect();
    let rows = docs
        .iter()
        .map(|d| {
            let mut counts: HashMap<u32, f32> = HashMap::new();
            for k in &d.keywords {
                if let Some(&j) = index.get(k.as_str()) {
                    *counts.entry(j).or_default() += 1.0;
                }
            }
            let mut row: Row = counts
                .into_iter()
                .map(|(j, c)| (j, (1.0 + c.ln()) * idf[j as usize]))
                .collect();
            row.sort_unstable_by_key(|&(j, _)| j);
            let norm = row.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                for (_, x) in &mut row {
                    *x /= norm;
                }
            }
            row
        })
        .collect();
    (vocab.into_iter().map(|(k, _)| k.to_owned()).collect(), rows)
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(f64),
    Split {
        feature: u32,
        /// Rows with value ≤ threshold (and rows without the feature) go left.
        threshold: f32,
        left: usize,
        right: usize,
    },
}

#[derive(Debug, Clone, Default)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, row: &Row) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf(w) => return w,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    let v = row
                        .binary_search_by_key(&feature, |&(j, _)| j)
                        .map(|k| row[k].1)
                        .unwrap_or(0.0);
                    i = if v <= threshold { left } else { right };
                }
            }
        }
    }
}

/// Columns of the training rows: per feature, (row, value) sorted by value.
fn columns(rows: &[&Row], features: usize) -> Vec<Vec<(u32, f32)>> {
    let mut cols: Vec<Vec<(u32, f32)>> = vec![Vec::new(); features];
    for (i, r) in rows.iter().enumerate() {
        for &(j, v) in r.iter() {
            cols[j as usize].push((i as u32, v));
        }
    }
    for c in &mut cols {
        c.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    }
    cols
}

struct Grower<'a> {
    cols: &'a [Vec<(u32, f32)>],
    lambda: f64,
    min_child_weight: f64,
}

#[derive(Clone, Copy)]
struct Best {
    gain: f64,
    feature: u32,
    threshold: f32,
}

impl Grower<'_> {
    fn score(&self, g: f64, h: f64) -> f64 {
        g * g / (h + self.lambda)
    }

    /// Grows one tree level by level on gradients `g`, hessians `h`; adds each split's
    /// gain to `gains`. Leaf weights are scaled by `eta`.
    fn grow(&self, g: &[f64], h: &[f64], depth: usize, eta: f64, gains: &mut [f64]) -> Tree {
        let n = g.len();
        let max_nodes = (1usize << (depth + 1)).max(2);
        let mut node_of: Vec<usize> = vec![0; n];
        let mut tree = Tree {
            nodes: vec![Node::Leaf(0.0)],
        };
        let mut active: Vec<usize> = vec![0];
        // Per node id: totals, and scratch sums reused for every feature.
        let mut tot = vec![(0.0f64, 0.0f64); max_nodes];
        let mut is_active = vec![false; max_nodes];
        let mut nz = vec![(0.0f64, 0.0f64); max_nodes];
        let mut left = vec![(0.0f64, 0.0f64); max_nodes];
        let mut seen = vec![usize::MAX; max_nodes];
        for level in 0..=depth {
            tot.iter_mut().for_each(|t| *t = (0.0, 0.0));
            is_active.iter_mut().for_each(|a| *a = false);
            for &a in &active {
                is_active[a] = true;
            }
            for i in 0..n {
                let t = &mut tot[node_of[i]];
                t.0 += g[i];
                t.1 += h[i];
            }
            let mut best: Vec<Option<Best>> = vec![None; max_nodes];
            let consider = |node: usize,
                            f: usize,
                            threshold: f32,
                            l: (f64, f64),
                            best: &mut Vec<Option<Best>>| {
                let (tg, th) = tot[node];
                let r = (tg - l.0, th - l.1);
                if l.1 < self.min_child_weight || r.1 < self.min_child_weight {
                    return;
                }
                let gain = 0.5 * (self.score(l.0, l.1) + self.score(r.0, r.1) - self.score(tg, th));
                if gain > 1e-9 && best[node].is_none_or(|b| gain > b.gain) {
                    best[node] = Some(Best {
                        gain,
                        feature: f as u32,
                        threshold,
                    });
                }
            };
            if level < depth {
                for (f, col) in self.cols.iter().enumerate() {
                    for &a in &active {
                        nz[a] = (0.0, 0.0);
                    }
                    let mut any = false;
                    for &(r, _) in col {
                        let node = node_of[r as usize];
                        if is_active[node] {
                            nz[node].0 += g[r as usize];
                            nz[node].1 += h[r as usize];
                            any = true;
                        }
                    }
                    if !any {
                        continue;
                    }
                    // Left starts as the rows without the feature.
                    for &a in &active {
                        left[a] = (tot[a].0 - nz[a].0, tot[a].1 - nz[a].1);
                        if nz[a].1 > 0.0 {
                            consider(a, f, 0.0, left[a], &mut best);
                        }
                    }
                    let mut k = 0;
                    let mut touched: Vec<usize> = Vec::new();
                    while k < col.len() {
                        let v = col[k].1;
                        touched.clear();
                        while k < col.len() && col[k].1 == v {
                            let r = col[k].0 as usize;
                            let node = node_of[r];
                            if is_active[node] {
                                left[node].0 += g[r];
                                left[node].1 += h[r];
                                if seen[node] != k {
                                    touched.push(node);
                                }
                                seen[node] = k;
                            }
                            k += 1;
                        }
                        touched.sort_unstable();
                        touched.dedup();
                        for &node in &touched {
                            consider(node, f, v, left[node], &mut best);
                        }
                    }
                }
            }
            let mut next = Vec::new();
            let mut splits = Vec::new();
            for &a in &active {
                let (tg, th) = tot[a];
                match best[a] {
                    Some(b) => {
                        gains[b.feature as usize] += b.gain;
                        let l = tree.nodes.len();
                        tree.nodes.push(Node::Leaf(0.0));
                        tree.nodes.push(Node::Leaf(0.0));
                        tree.nodes[a] = Node::Split {
                            feature: b.feature,
                            threshold: b.threshold,
                            left: l,
                            right: l + 1,
                        };
                        splits.push((a, b, l));
                        next.push(l);
                        next.push(l + 1);
                    }
                    None => tree.nodes[a] = Node::Leaf(-tg / (th + self.lambda) * eta),
                }
            }
            if next.is_empty() {
                break;
            }
            // Send rows down the new splits: those above the threshold right, the rest
            // (including rows without the feature) left.
            for &(a, b, l) in &splits {
                for &(r, v) in &self.cols[b.feature as usize] {
                    if node_of[r as usize] == a && v > b.threshold {
                        node_of[r as usize] = l + 1;
                    }
                }
            }
            for node in node_of.iter_mut() {
                if let Node::Split { left, .. } = tree.nodes[*node] {
                    *node = left;
                }
            }
            active = next;
        }
        tree
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// An additive model of trees over a base score.
struct Model {
    base: f64,
    trees: Vec<Tree>,
    gains: Vec<f64>,
}

impl Model {
    fn margin(&self, row: &Row) -> f64 {
        self.base + self.trees.iter().map(|t| t.predict(row)).sum::<f64>()
    }
}

fn fit(
    rows: &[&Row],
    y: &[bool],
    features: usize,
    rounds: usize,
    depth: usize,
    eta: f64,
    s: &DriverSettings,
) -> Model {
    let cols = columns(rows, features);
    let grower = Grower {
        cols: &cols,
        lambda: s.lambda,
        min_child_weight: s.min_child_weight,
    };
    let pos = y.iter().filter(|&&b| b).count() as f64 / y.len().max(1) as f64;
    let base = (pos.clamp(1e-3, 1.0 - 1e-3) / (1.0 - pos.clamp(1e-3, 1.0 - 1e-3))).ln();
    let mut margin = vec![base; rows.len()];
    let mut gains = vec![0.0; features];
    let mut trees = Vec::new();
    for _ in 0..rounds {
        let p: Vec<f64> = margin.iter().map(|&m| sigmoid(m)).collect();
        let g: Vec<f64> = p
            .iter()
            .zip(y)
            .map(|(p, &t)| p - f64::from(u8::from(t)))
            .collect();
        let h: Vec<f64> = p.iter().map(|p| (p * (1.0 - p)).max(1e-6)).collect();
        let tree = grower.grow(&g, &h, depth, eta, &mut gains);
        for (m, r) in margin.iter_mut().zip(rows) {
            *m += tree.predict(r);
        }
        trees.push(tree);
    }
    Model { base, trees, gains }
}

fn accuracy(model: &Model, rows: &[&Row], y: &[bool]) -> f64 {
    let right = rows
        .iter()
        .zip(y)
        .filter(|(r, &t)| (model.margin(r) >= 0.0) == t)
        .count();
    right as f64 / rows.len().max(1) as f64
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

fn drivers_of(gains: &[f64], vocab: &[String], docs: &[&Doc], s: &DriverSettings) -> Vec<Driver> {
    let total: f64 = gains.iter().sum();
    let overall = docs.iter().filter(|d| d.positive).count() as f64 / docs.len().max(1) as f64;
    let mut order: Vec<usize> = (0..gains.len()).filter(|&j| gains[j] > 0.0).collect();
    order.sort_by(|&a, &b| gains[b].total_cmp(&gains[a]).then(vocab[a].cmp(&vocab[b])));
    order.truncate(s.top);
    order
        .into_iter()
        .map(|j| {
            let word = &vocab[j];
            let with: Vec<&&Doc> = docs.iter().filter(|d| d.keywords.contains(word)).collect();
            let positive_docs = with.iter().filter(|d| d.positive).count();
            let toward = if positive_docs as f64 / with.len().max(1) as f64 >= overall {
                Toward::Positive
            } else {
                Toward::Negative
            };
            let want = toward == Toward::Positive;
            let mut ex: Vec<&String> = with
                .iter()
                .filter(|d| d.positive == want)
                .chain(with.iter().filter(|d| d.positive != want))
                .flat_map(|d| d.texts.iter().filter(|t| t.contains(word.as_str())))
                .collect();
            ex.truncate(50);
            ex.sort_by_key(|t| t.chars().count());
            ex.dedup();
            Driver {
                feature: word.clone(),
                gain: if total > 0.0 { gains[j] / total } else { 0.0 },
                toward,
                docs: with.len(),
                negative_docs: with.len() - positive_docs,
                positive_docs,
                examples: ex.into_iter().take(s.examples).cloned().collect(),
            }
        })
        .collect()
}

/// Trains both models on the newest `max_docs` calls and reports their validation
/// accuracy and drivers.
pub fn drivers(docs: &[Doc], s: &DriverSettings) -> Result<DriversReport, DriversError> {
    let start = docs.len().saturating_sub(s.max_docs);
    let docs: Vec<&Doc> = docs[start..].iter().collect();
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
    let (vocab, rows) = vectorise(&docs, s);
    if vocab.is_empty() {
        return Err(DriversError::NoFeatures { min_df: s.min_df });
    }
    let mut order: Vec<usize> = (0..docs.len()).collect();
    shuffle(&mut order, s.seed);
    let n_val =
        ((docs.len() as f64 * s.validation_fraction).round() as usize).clamp(1, docs.len() - 1);
    let (val, train) = order.split_at(n_val);
    let pick = |ix: &[usize]| -> (Vec<&Row>, Vec<bool>) {
        (
            ix.iter().map(|&i| &rows[i]).collect(),
            ix.iter().map(|&i| docs[i].positive).collect(),
        )
    };
    let (tr, ty) = pick(train);
    let (vr, vy) = pick(val);
    let tree = fit(&tr, &ty, vocab.len(), 1, s.tree_depth, 1.0, s);
    let ensemble = fit(&tr, &ty, vocab.len(), s.rounds, s.depth, s.learning_rate, s);
    let majority = vy
        .iter()
        .filter(|&&t| t == (positive * 2 >= docs.len()))
        .count() as f64
        / vy.len() as f64;
    Ok(DriversReport {
        docs: docs.len(),
        features: vocab.len(),
        train_docs: tr.len(),
        validation_docs: vr.len(),
        majority_accuracy: majority,
        tree_accuracy: accuracy(&tree, &vr, &vy),
        ensemble_accuracy: accuracy(&ensemble, &vr, &vy),
        ensemble: format!(
            "gradient-boosted trees ({} rounds, depth {}, learning rate {})",
            s.rounds, s.depth, s.learning_rate
        ),
        drivers: drivers_of(&ensemble.gains, &vocab, &docs, s),
        tree_drivers: drivers_of(&tree.gains, &vocab, &docs, s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls where 한도 mostly comes with negative calls and 앱 with positive ones, 카드
    /// with both, and noise words everywhere.
    fn synthetic(n: usize, seed: u64) -> Vec<Doc> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 1000
        };
        (0..n)
            .map(|i| {
                let positive = next() < 500;
                let mut kw = vec!["카드".to_string()];
                let r = next();
                if (!positive && r < 800) || (positive && r < 100) {
                    kw.push("한도".into());
                }
                let r = next();
                if (positive && r < 700) || (!positive && r < 100) {
                    kw.push("앱".into());
                }
                for _ in 0..3 {
                    kw.push(format!("잡음{}", next() % 40));
                }
                Doc {
                    id: format!("{i}"),
                    at: i as u64,
                    texts: vec![kw.join(" ")],
                    keywords: kw,
                    positive,
                }
            })
            .collect()
    }

    #[test]
    fn known_drivers_are_found_with_their_direction() {
        let docs = synthetic(600, 7);
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
        let top2: Vec<&str> = r
            .drivers
            .iter()
            .take(2)
            .map(|d| d.feature.as_str())
            .collect();
        assert!(top2.contains(&"한도") && top2.contains(&"앱"), "{top2:?}");
        let find = |w: &str| r.drivers.iter().find(|d| d.feature == w).unwrap();
        assert_eq!(find("한도").toward, Toward::Negative);
        assert_eq!(find("앱").toward, Toward::Positive);
        assert!(find("한도").examples.iter().all(|e| e.contains("한도")));
        assert!(!find("한도").examples.is_empty());
        assert!(r.ensemble_accuracy > r.majority_accuracy + 0.2, "{r:?}");
        assert!(r.tree_accuracy > r.majority_accuracy + 0.1, "{r:?}");
        let total: f64 = r.drivers.iter().map(|d| d.gain).sum();
        assert!(total <= 1.0 + 1e-9);
        assert_eq!(r.train_docs + r.validation_docs, 600);
    }

    #[test]
    fn the_same_seed_gives_the_same_report() {
        let docs = synthetic(300, 3);
        let s = DriverSettings::default();
        assert_eq!(drivers(&docs, &s).unwrap(), drivers(&docs, &s).unwrap());
    }

    #[test]
    fn too_little_or_one_sided_data_is_a_clear_error() {
        let docs = synthetic(10, 1);
        let e = drivers(&docs, &DriverSettings::default()).unwrap_err();
        assert!(e.to_string().contains("at least 20 calls"), "{e}");
        let mut docs = synthetic(50, 1);
        for d in &mut docs {
            d.positive = true;
        }
        let e = drivers(&docs, &DriverSettings::default()).unwrap_err();
        assert!(e.to_string().contains("both sentiments"), "{e}");
        let docs: Vec<Doc> = synthetic(50, 2)
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                d.keywords = vec![format!("유일{i}")];
                d
            })
            .collect();
        assert!(matches!(
            drivers(&docs, &DriverSettings::default()),
            Err(DriversError::NoFeatures { .. })
        ));
    }

    #[test]
    fn memory_is_bounded_by_max_docs_and_mentions() {
        let docs = synthetic(20_000, 5);
        let s = DriverSettings {
            max_docs: 5_000,
            rounds: 5,
            ..DriverSettings::default()
        };
        let r = drivers(&docs, &s).unwrap();
        assert_eq!(r.docs, 5_000);
        // The sparse rows of the kept calls: at most 6 distinct keywords each.
        let kept: Vec<&Doc> = docs[15_000..].iter().collect();
        let (_, rows) = vectorise(&kept, &s);
        let pairs: usize = rows.iter().map(Vec::len).sum();
        assert!(pairs <= 6 * 5_000);
        assert!(pairs * std::mem::size_of::<(u32, f32)>() * 2 < 1 << 20);
    }
}
