//! Step 1 of the drivers: the TF-IDF vocabulary (document frequency, smooth idf), the
//! calls' sparse rows (sublinear tf, unit length, the largest weights kept), and their
//! transposed columns for the tree grower.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::memory::{map_bytes, vec_bytes, Footprint};
use super::{Doc, DriverSettings};

/// Compressed sparse rows (or, transposed, columns): entry `(index, value)`.
#[derive(Debug, Default)]
pub(super) struct Sparse {
    pub(super) offsets: Vec<usize>,
    pub(super) entries: Vec<(u32, f32)>,
}

impl Sparse {
    pub(super) fn line(&self, i: usize) -> &[(u32, f32)] {
        &self.entries[self.offsets[i]..self.offsets[i + 1]]
    }

    pub(super) fn lines(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        vec_bytes(&self.offsets) + vec_bytes(&self.entries)
    }
}

pub(super) struct Vocabulary<'a> {
    pub(super) words: Vec<&'a str>,
    pub(super) idf: Vec<f32>,
    pub(super) index: HashMap<&'a str, u32>,
}

/// The `max_features` keywords of highest document frequency (ties: the smaller word)
/// among those in `min_df` calls or more, with their smooth idf.
pub(super) fn vocabulary<'a>(
    docs: &[&'a Doc],
    s: &DriverSettings,
    fp: &mut Footprint,
) -> Vocabulary<'a> {
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
    pub(super) fn heap_bytes(&self) -> usize {
        vec_bytes(&self.words) + vec_bytes(&self.idf) + map_bytes(&self.index)
    }
}

/// Reusable per-call counting: term counts in a dense array, reset through `touched`.
pub(super) struct Counter {
    pub(super) counts: Vec<f32>,
    pub(super) touched: Vec<u32>,
    pub(super) row: Vec<(u32, f32)>,
}

impl Counter {
    pub(super) fn new(features: usize) -> Self {
        Counter {
            counts: vec![0.0; features],
            touched: Vec::with_capacity(features),
            row: Vec::with_capacity(features),
        }
    }

    /// The call's TF-IDF row, l2-normalised over all its weights, then cut to its
    /// `keep` largest (ties: lower feature), in feature order.
    pub(super) fn row(&mut self, d: &Doc, v: &Vocabulary, keep: usize) -> &[(u32, f32)] {
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

    pub(super) fn heap_bytes(&self) -> usize {
        vec_bytes(&self.counts) + vec_bytes(&self.touched) + vec_bytes(&self.row)
    }
}

/// TF-IDF rows of `docs`, allocated exactly: a first pass sizes them.
pub(super) fn vectorise(
    docs: &[&Doc],
    v: &Vocabulary,
    s: &DriverSettings,
    fp: &mut Footprint,
) -> Sparse {
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
pub(super) fn columns(
    rows: &Sparse,
    train: &[usize],
    features: usize,
    fp: &mut Footprint,
) -> Sparse {
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
