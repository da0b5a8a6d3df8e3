//! CTC decoding.
//!
//! [`GreedyDecoder`] reproduces `Wav2Vec2CTCTokenizer.decode` on the argmax ids: collapse
//! repeats, drop the blank, map `|` to a space, keep `[UNK]` visible, strip the ends.
//! A beam search with a lexicon implements the same [`CtcDecoder`] trait; it gets the
//! full score matrix, so the engine does not change.

use tract_onnx::prelude::tract_ndarray::ArrayView2;

use super::vocab::{Vocab, WORD_DELIMITER};

/// A decoded utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// Emitted token ids with the frame at which each was first emitted, after collapsing
    /// and dropping blanks (for word timings and for a later rescoring pass).
    pub tokens: Vec<(u32, u32)>,
    /// Mean over emitted tokens of the frame's best log-probability margin; a cheap
    /// confidence that stays comparable across utterances of different length.
    pub confidence: f32,
}

/// Turns `[frames, vocab]` scores (logits or log-probabilities) into text.
pub trait CtcDecoder: Send + Sync {
    fn decode(&self, scores: ArrayView2<'_, f32>, vocab: &Vocab) -> Transcript;
}

/// Best path decoding: the argmax of every frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreedyDecoder;

impl CtcDecoder for GreedyDecoder {
    fn decode(&self, scores: ArrayView2<'_, f32>, vocab: &Vocab) -> Transcript {
        let blank = vocab.blank();
        let mut tokens = Vec::new();
        let mut prob_sum = 0.0f32;
        let mut prev: Option<u32> = None;
        for (t, row) in scores.outer_iter().enumerate() {
            let (best, best_score) = argmax(row.iter().copied());
            if prev != Some(best) && best != blank {
                tokens.push((best, t as u32));
                prob_sum += softmax_at(row.iter().copied(), best_score);
            }
            prev = Some(best);
        }
        let confidence = if tokens.is_empty() {
            0.0
        } else {
            prob_sum / tokens.len() as f32
        };
        Transcript {
            text: text_of(tokens.iter().map(|t| t.0), vocab),
            tokens,
            confidence,
        }
    }
}

/// The text of emitted token ids: `|` is a space, jamo compose into syllables (stray
/// ones repaired or dropped), the ends are trimmed.
pub(crate) fn text_of(ids: impl Iterator<Item = u32>, vocab: &Vocab) -> String {
    let mut text = String::new();
    for id in ids {
        match vocab.token(id) {
            Some(WORD_DELIMITER) => text.push(' '),
            Some(tok) => text.push_str(tok),
            None => {}
        }
    }
    crate::hangul::compose_jamo_readable(text.trim())
}

/// Index and value of the largest score; the first one wins ties, as numpy's argmax.
fn argmax(row: impl Iterator<Item = f32>) -> (u32, f32) {
    let mut best = (0u32, f32::NEG_INFINITY);
    for (i, v) in row.enumerate() {
        if v > best.1 {
            best = (i as u32, v);
        }
    }
    best
}

/// Softmax probability of the best entry, given its score.
pub(crate) fn softmax_at(row: impl Iterator<Item = f32>, best: f32) -> f32 {
    let denom: f32 = row.map(|v| (v - best).exp()).sum();
    if denom > 0.0 {
        1.0 / denom
    } else {
        0.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;
    use tract_onnx::prelude::tract_ndarray::Array2;

    /// The five-token vocabulary the decoder tests share (also the beam search's).
    pub(crate) fn vocab() -> Vocab {
        let m: HashMap<String, u32> = [("|", 0), ("카", 1), ("드", 2), ("[UNK]", 3), ("[PAD]", 4)]
            .iter()
            .map(|(t, i)| (t.to_string(), *i))
            .collect();
        Vocab::from_map(m).unwrap()
    }

    fn one_hot(ids: &[usize], n: usize) -> Array2<f32> {
        let mut a = Array2::zeros((ids.len(), n));
        for (t, &i) in ids.iter().enumerate() {
            a[[t, i]] = 5.0;
        }
        a
    }

    #[test]
    fn collapses_repeats_and_drops_blanks() {
        // 카 카 PAD 카 드 드 | | 카 PAD -> "카카드 카"
        let s = one_hot(&[1, 1, 4, 1, 2, 2, 0, 0, 1, 4], 5);
        let t = GreedyDecoder.decode(s.view(), &vocab());
        assert_eq!(t.text, "카카드 카");
        assert_eq!(t.tokens, vec![(1, 0), (1, 3), (2, 4), (0, 6), (1, 8)]);
        assert!(t.confidence > 0.9 && t.confidence <= 1.0);
    }

    #[test]
    fn keeps_unknown_visible_and_strips_edges() {
        let s = one_hot(&[0, 3, 4, 1, 0], 5);
        assert_eq!(GreedyDecoder.decode(s.view(), &vocab()).text, "[UNK]카");
    }

    #[test]
    fn all_blank_is_empty() {
        let s = one_hot(&[4, 4, 4], 5);
        let t = GreedyDecoder.decode(s.view(), &vocab());
        assert_eq!(t.text, "");
        assert_eq!(t.confidence, 0.0);
    }
}
