//! Steps 3 and 4 of the drivers: regression trees grown on the logistic loss's gradient
//! and hessian over sparse columns, and the boosted model of them with each feature's
//! total gain.

use super::memory::{vec_bytes, Footprint};
use super::tfidf::Sparse;
use super::DriverSettings;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Node {
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
pub(super) struct Tree {
    pub(super) nodes: Vec<Node>,
}

impl Tree {
    pub(super) fn predict(&self, row: &[(u32, f32)]) -> f64 {
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
pub(super) struct Best {
    pub(super) gain: f64,
    pub(super) feature: u32,
    pub(super) threshold: f32,
}

/// Sums of gradients, hessians and rows.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sums {
    pub(super) g: f64,
    pub(super) h: f64,
    pub(super) n: u32,
}

impl Sums {
    pub(super) fn add(&mut self, g: f64, h: f64) {
        self.g += g;
        self.h += h;
        self.n += 1;
    }

    pub(super) fn minus(self, o: Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// A node's state while its level is grown.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NodeStats {
    pub(super) total: Sums,
    /// Of the current feature: rows that have it, and rows left of the candidate.
    pub(super) with: Sums,
    pub(super) left: Sums,
    /// The last run of equal weights that touched the node.
    pub(super) run: usize,
    pub(super) active: bool,
    pub(super) best: Option<Best>,
}

/// Buffers reused by every tree of a fit.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The node each training row is in.
    pub(super) node_of: Vec<u32>,
    pub(super) stats: Vec<NodeStats>,
    pub(super) active: Vec<u32>,
    pub(super) next: Vec<u32>,
    pub(super) touched: Vec<u32>,
}

impl Scratch {
    pub(super) fn heap_bytes(&self) -> usize {
        vec_bytes(&self.node_of)
            + vec_bytes(&self.stats)
            + vec_bytes(&self.active)
            + vec_bytes(&self.next)
            + vec_bytes(&self.touched)
    }
}

pub(super) struct Grower<'a> {
    pub(super) cols: &'a Sparse,
    pub(super) lambda: f64,
    pub(super) min_child_weight: f64,
    pub(super) depth: usize,
    /// Nodes a tree may have (scratch is sized for it).
    pub(super) max_nodes: usize,
    /// Shrinkage of leaf weights.
    pub(super) eta: f64,
}

impl Grower<'_> {
    pub(super) fn score(&self, s: Sums) -> f64 {
        s.g * s.g / (s.h + self.lambda)
    }

    pub(super) fn consider(&self, st: &mut NodeStats, feature: u32, threshold: f32) {
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
    pub(super) fn grow(&self, g: &[f64], h: &[f64], gains: &mut [f64], x: &mut Scratch) -> Tree {
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

pub(super) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// An additive model of trees over a base margin, with each feature's total gain.
#[derive(Debug)]
pub(super) struct Model {
    pub(super) base: f64,
    pub(super) trees: Vec<Tree>,
    pub(super) gains: Vec<f64>,
}

impl Model {
    pub(super) fn margin(&self, row: &[(u32, f32)]) -> f64 {
        self.base + self.trees.iter().map(|t| t.predict(row)).sum::<f64>()
    }

    pub(super) fn heap_bytes(&self) -> usize {
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
pub(super) fn fit(
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
