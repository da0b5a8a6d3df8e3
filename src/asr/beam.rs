//! CTC prefix beam search: the most probable *labelling* rather than the most probable
//! frame path. Greedy decoding takes each frame's argmax; a labelling whose probability
//! is spread over many paths (a token said over frames where blank narrowly wins, say)
//! can be more likely than the best single path, and the beam finds it. Each hypothesis
//! keeps two log-probabilities, of its paths ending in blank and ending in its last
//! token, so that a repeated token is told apart from one token held over frames.
//!
//! Per frame only the tokens within `prune` (natural log) of the frame's best are
//! expanded, at most `max_tokens` of them; `beam` hypotheses survive each frame.

use std::collections::HashMap;

use tract_onnx::prelude::tract_ndarray::ArrayView2;

use super::ctc::{softmax_at, text_of, CtcDecoder, Transcript};
use super::vocab::Vocab;

/// Prefix beam search over a CTC model's scores.
#[derive(Debug, Clone, Copy)]
pub struct BeamDecoder {
    /// Hypotheses kept after each frame.
    pub beam: usize,
    /// Tokens whose log-probability is more than this below the frame's best are not
    /// expanded.
    pub prune: f32,
    /// At most this many tokens are expanded per frame.
    pub max_tokens: usize,
}

impl Default for BeamDecoder {
    fn default() -> Self {
        BeamDecoder {
            beam: 8,
            prune: 8.0,
            max_tokens: 8,
        }
    }
}

/// `ln(e^a + e^b)` without overflow; `-inf` is the log of zero.
fn log_add(a: f32, b: f32) -> f32 {
    if a == f32::NEG_INFINITY {
        return b;
    }
    if b == f32::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

#[derive(Debug, Clone)]
struct Hyp {
    /// Emitted tokens with the frame of each.
    tokens: Vec<(u32, u32)>,
    /// Log-probability of the paths ending in blank / in the last token.
    blank: f32,
    last: f32,
}

impl Hyp {
    fn total(&self) -> f32 {
        log_add(self.blank, self.last)
    }
}

impl CtcDecoder for BeamDecoder {
    fn decode(&self, scores: ArrayView2<'_, f32>, vocab: &Vocab) -> Transcript {
        let blank = vocab.blank();
        let mut hyps = vec![Hyp {
            tokens: Vec::new(),
            blank: 0.0,
            last: f32::NEG_INFINITY,
        }];
        let mut logp = Vec::new();
        let mut order: Vec<u32> = Vec::new();
        let mut next: HashMap<Vec<u32>, Hyp> = HashMap::new();
        for (t, row) in scores.outer_iter().enumerate() {
            // Log-softmax of the frame (the model gives logits).
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let denom = row.iter().map(|v| (v - max).exp()).sum::<f32>().ln() + max;
            logp.clear();
            logp.extend(row.iter().map(|v| v - denom));
            order.clear();
            order.extend(0..logp.len() as u32);
            order.sort_by(|&a, &b| logp[b as usize].total_cmp(&logp[a as usize]));
            let best = logp[order[0] as usize];
            order.retain(|&c| logp[c as usize] >= best - self.prune);
            order.truncate(self.max_tokens.max(1));

            next.clear();
            for h in &hyps {
                let key: Vec<u32> = h.tokens.iter().map(|x| x.0).collect();
                let prev = key.last().copied();
                for &c in &order {
                    let p = logp[c as usize];
                    if c == blank {
                        let e = entry(&mut next, &key, h);
                        e.blank = log_add(e.blank, h.total() + p);
                        continue;
                    }
                    let mut longer = key.clone();
                    longer.push(c);
                    let mut tokens = h.tokens.clone();
                    tokens.push((c, t as u32));
                    let from = if prev == Some(c) {
                        // The same token again: only after a blank is it a new one;
                        // otherwise it is the last one held.
                        let e = entry(&mut next, &key, h);
                        e.last = log_add(e.last, h.last + p);
                        h.blank + p
                    } else {
                        h.total() + p
                    };
                    let e = next.entry(longer).or_insert_with(|| Hyp {
                        tokens,
                        blank: f32::NEG_INFINITY,
                        last: f32::NEG_INFINITY,
                    });
                    e.last = log_add(e.last, from);
                }
            }
            hyps = next.drain().map(|(_, h)| h).collect();
            hyps.sort_by(|a, b| {
                b.total()
                    .total_cmp(&a.total())
                    .then_with(|| a.tokens.len().cmp(&b.tokens.len()))
            });
            hyps.truncate(self.beam.max(1));
        }
        let best = hyps
            .into_iter()
            .next()
            .map(|h| h.tokens)
            .unwrap_or_default();
        // Confidence as the greedy decoder gives it: the mean probability of each
        // emitted token at the frame it was emitted.
        let mut prob_sum = 0.0;
        for &(c, t) in &best {
            let row = scores.row(t as usize);
            prob_sum += softmax_at(row.iter().copied(), row[c as usize]);
        }
        let confidence = if best.is_empty() {
            0.0
        } else {
            prob_sum / best.len() as f32
        };
        Transcript {
            text: text_of(best.iter().map(|x| x.0), vocab),
            tokens: best,
            confidence,
        }
    }
}

/// The hypothesis for `key` in `next`, created empty (with `h`'s tokens) if new.
fn entry<'a>(next: &'a mut HashMap<Vec<u32>, Hyp>, key: &[u32], h: &Hyp) -> &'a mut Hyp {
    next.entry(key.to_vec()).or_insert_with(|| Hyp {
        tokens: h.tokens.clone(),
        blank: f32::NEG_INFINITY,
        last: f32::NEG_INFINITY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::ctc::tests::vocab;
    use crate::asr::GreedyDecoder;
    use tract_onnx::prelude::tract_ndarray::Array2;

    /// Scores whose softmax is `probs` (rows of probabilities).
    fn from_probs(probs: &[&[f32]]) -> Array2<f32> {
        let n = probs[0].len();
        let mut a = Array2::zeros((probs.len(), n));
        for (t, row) in probs.iter().enumerate() {
            for (i, p) in row.iter().enumerate() {
                a[[t, i]] = p.max(1e-9).ln();
            }
        }
        a
    }

    #[test]
    fn agrees_with_greedy_where_the_best_path_dominates() {
        // Clear frames: the best path carries nearly all the probability.
        let ids = [1, 1, 4, 1, 2, 2, 0, 0, 1, 4, 4, 2];
        let mut a = Array2::from_elem((ids.len(), 5), 0.0f32);
        for (t, &i) in ids.iter().enumerate() {
            a[[t, i]] = 9.0;
        }
        let g = GreedyDecoder.decode(a.view(), &vocab());
        for beam in [1, 2, 8] {
            let b = BeamDecoder {
                beam,
                ..Default::default()
            }
            .decode(a.view(), &vocab());
            assert_eq!(b.text, g.text, "beam {beam}");
            assert_eq!(b.tokens, g.tokens, "beam {beam}");
        }
        assert_eq!(g.text, "카카드 카드");
    }

    #[test]
    fn finds_the_labelling_spread_over_paths() {
        // Two frames, each 카 0.4 / blank 0.6. Greedy reads blank, blank: nothing. But
        // P(카) = 0.4·0.4 + 0.4·0.6 + 0.6·0.4 = 0.64 > P(nothing) = 0.36.
        let s = from_probs(&[&[0.0, 0.4, 0.0, 0.0, 0.6], &[0.0, 0.4, 0.0, 0.0, 0.6]]);
        assert_eq!(GreedyDecoder.decode(s.view(), &vocab()).text, "");
        let b = BeamDecoder::default().decode(s.view(), &vocab());
        assert_eq!(b.text, "카");
        assert_eq!(b.tokens.len(), 1);
    }

    #[test]
    fn a_repeat_needs_a_blank_between() {
        // 카 카 with no blank is one 카; 카 blank 카 is two.
        let held = from_probs(&[&[0.0, 0.9, 0.0, 0.0, 0.1], &[0.0, 0.9, 0.0, 0.0, 0.1]]);
        assert_eq!(
            BeamDecoder::default().decode(held.view(), &vocab()).text,
            "카"
        );
        let twice = from_probs(&[
            &[0.0, 0.9, 0.0, 0.0, 0.1],
            &[0.0, 0.05, 0.0, 0.0, 0.95],
            &[0.0, 0.9, 0.0, 0.0, 0.1],
        ]);
        assert_eq!(
            BeamDecoder::default().decode(twice.view(), &vocab()).text,
            "카카"
        );
    }

    #[test]
    fn log_add_is_the_log_of_a_sum() {
        let v = log_add(0.25f32.ln(), 0.5f32.ln());
        assert!((v - 0.75f32.ln()).abs() < 1e-6);
        assert_eq!(log_add(f32::NEG_INFINITY, -1.0), -1.0);
    }
}
