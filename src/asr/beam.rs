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
use std::sync::Arc;

use tract_onnx::prelude::tract_ndarray::ArrayView2;

use super::ctc::{softmax_at, text_of, CtcDecoder, Transcript};
use super::lm::{NgramLm, BOUNDARY, UNK_UNIT};
use super::vocab::{Vocab, UNK, WORD_DELIMITER};
use crate::hangul::{compose_jamo_readable, decompose_jamo};

/// Prefix beam search over a CTC model's scores, with optional shallow fusion of an
/// n-gram language model and a bonus for hotwords (product names).
///
/// A hypothesis is ranked by its acoustic log-probability plus `alpha` times the LM's
/// natural-log probability of its syllables plus `beta` per syllable or word boundary
/// (the insertion bonus that keeps the LM from favouring short output), plus the
/// hotword bonus. Syllables are scored as they complete: in a jamo vocabulary, when the
/// next leading consonant, a word delimiter or the end arrives.
#[derive(Debug, Clone)]
pub struct BeamDecoder {
    /// Hypotheses kept after each frame. A beam of 1 keeps one path, so it sums no
    /// paths: it follows the best path, which is greedy decoding.
    pub beam: usize,
    /// Tokens whose log-probability is more than this below the frame's best are not
    /// expanded.
    pub prune: f32,
    /// At most this many tokens are expanded per frame.
    pub max_tokens: usize,
    /// The language model, if any, and its weight and insertion bonus.
    pub lm: Option<Arc<NgramLm>>,
    pub alpha: f32,
    pub beta: f32,
    /// Words and phrases to favour (product names); spaces inside them are optional.
    pub hotwords: Vec<String>,
    /// Natural-log bonus per token of a hotword matched so far; taken back when the
    /// match breaks off before the hotword's end.
    pub hotword_bonus: f32,
}

impl Default for BeamDecoder {
    fn default() -> Self {
        BeamDecoder {
            beam: 8,
            prune: 8.0,
            max_tokens: 8,
            lm: None,
            alpha: 0.5,
            beta: 1.0,
            hotwords: Vec::new(),
            hotword_bonus: 1.5,
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

/// What a vocabulary token does to the LM's units.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A leading consonant: starts a syllable (and so completes the one before).
    Lead,
    /// A vowel or trailing consonant: continues the open syllable.
    Inner,
    /// The word delimiter.
    Boundary,
    /// A token that is whole units by itself (a syllable vocabulary, `[UNK]`).
    Units(Vec<String>),
    /// The blank and anything that writes nothing.
    Nothing,
}

fn kind_of(tok: &str) -> Kind {
    let mut cs = tok.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) if ('\u{1100}'..='\u{1112}').contains(&c) => Kind::Lead,
        (Some(c), None) if ('\u{1161}'..='\u{11C2}').contains(&c) => Kind::Inner,
        _ if tok == WORD_DELIMITER => Kind::Boundary,
        _ if tok == UNK => Kind::Units(vec![UNK_UNIT.to_owned()]),
        _ if tok.is_empty() => Kind::Nothing,
        _ => Kind::Units(super::lm::units_of(tok)),
    }
}

/// Hotwords as a trie over token ids.
#[derive(Debug, Default)]
struct Trie {
    children: Vec<Vec<(u32, u32)>>,
    end: Vec<bool>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            children: vec![Vec::new()],
            end: vec![false],
        }
    }

    fn insert(&mut self, ids: &[u32]) {
        let mut node = 0u32;
        for &c in ids {
            node = match self.child(node, c) {
                Some(n) => n,
                None => {
                    let n = self.children.len() as u32;
                    self.children.push(Vec::new());
                    self.end.push(false);
                    self.children[node as usize].push((c, n));
                    n
                }
            };
        }
        self.end[node as usize] = true;
    }

    fn child(&self, node: u32, c: u32) -> Option<u32> {
        self.children[node as usize]
            .iter()
            .find(|x| x.0 == c)
            .map(|x| x.1)
    }
}

/// The token ids of each hotword (and of its form without spaces) in `vocab`; a hotword
/// with a character the vocabulary cannot write is left out.
pub fn hotword_tokens(hotwords: &[String], vocab: &Vocab) -> (Vec<Vec<u32>>, Vec<String>) {
    let ids: HashMap<&str, u32> = (0..vocab.len() as u32)
        .filter_map(|i| vocab.token(i).map(|t| (t, i)))
        .collect();
    let jamo = ids.keys().any(|t| kind_of(t) == Kind::Lead);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for w in hotwords {
        let w = w.split_whitespace().collect::<Vec<_>>().join(" ");
        if w.is_empty() {
            continue;
        }
        let mut forms = vec![w.clone()];
        if w.contains(' ') {
            forms.push(w.replace(' ', ""));
        }
        for f in forms {
            let text = if jamo { decompose_jamo(&f) } else { f.clone() };
            let toks: Option<Vec<u32>> = text
                .chars()
                .map(|c| {
                    if c == ' ' {
                        ids.get(WORD_DELIMITER).copied()
                    } else {
                        ids.get(c.to_string().as_str()).copied()
                    }
                })
                .collect();
            match toks {
                Some(t) if !t.is_empty() => out.push(t),
                _ => {
                    if !skipped.contains(&w) {
                        skipped.push(w.clone());
                    }
                }
            }
        }
    }
    (out, skipped)
}

#[derive(Debug, Clone)]
struct Hyp {
    /// Emitted tokens with the frame of each.
    tokens: Vec<(u32, u32)>,
    /// Log-probability of the paths ending in blank / in the last token.
    blank: f32,
    last: f32,
    /// LM units so far (ids; the last order-1 matter), tokens of the open syllable,
    /// and the fused LM score.
    ctx: Vec<u32>,
    pending: Vec<u32>,
    lm: f32,
    /// Hotword trie node, bonus of the match in progress, total bonus.
    hot_node: u32,
    hot_partial: f32,
    hot: f32,
}

impl Hyp {
    fn acoustic(&self) -> f32 {
        log_add(self.blank, self.last)
    }
}

/// Everything one decode needs beside the scores.
struct Search<'a> {
    d: &'a BeamDecoder,
    vocab: &'a Vocab,
    kinds: Vec<Kind>,
    trie: Trie,
    /// ln(10) * alpha.
    weight: f32,
}

impl Search<'_> {
    fn merge(&self, a: f32, b: f32) -> f32 {
        if self.d.beam <= 1 {
            a.max(b)
        } else {
            log_add(a, b)
        }
    }

    fn total(&self, h: &Hyp) -> f32 {
        let acoustic = if self.d.beam <= 1 {
            h.blank.max(h.last)
        } else {
            h.acoustic()
        };
        acoustic + h.lm + h.hot
    }

    /// Scores one LM unit onto `ctx` (`None`: a unit the LM does not know).
    fn score_unit(&self, lm: &NgramLm, ctx: &mut Vec<u32>, unit: &str) -> f32 {
        let id = lm.id(unit);
        let p = lm.log10_prob(ctx, id);
        ctx.push(id.unwrap_or(u32::MAX));
        let keep = lm.order().saturating_sub(1);
        if ctx.len() > keep {
            ctx.drain(..ctx.len() - keep);
        }
        self.weight * p + self.d.beta
    }

    /// Scores the open syllable, if any, and empties it.
    fn flush(&self, lm: &NgramLm, ctx: &mut Vec<u32>, pending: &mut Vec<u32>) -> f32 {
        if pending.is_empty() {
            return 0.0;
        }
        let text: String = pending
            .iter()
            .filter_map(|&i| self.vocab.token(i))
            .collect();
        pending.clear();
        let mut s = 0.0;
        for c in compose_jamo_readable(&text).chars() {
            s += self.score_unit(lm, ctx, &c.to_string());
        }
        s
    }

    /// The LM state and score of `h` extended by token `c`.
    fn extend_lm(&self, h: &Hyp, c: u32) -> (Vec<u32>, Vec<u32>, f32) {
        let (mut ctx, mut pending) = (h.ctx.clone(), h.pending.clone());
        let Some(lm) = self.d.lm.as_deref() else {
            return (ctx, pending, h.lm);
        };
        let mut add = 0.0;
        match &self.kinds[c as usize] {
            Kind::Lead => {
                add += self.flush(lm, &mut ctx, &mut pending);
                pending.push(c);
            }
            Kind::Inner => pending.push(c),
            Kind::Boundary => {
                add += self.flush(lm, &mut ctx, &mut pending);
                add += self.score_unit(lm, &mut ctx, BOUNDARY);
            }
            Kind::Units(units) => {
                add += self.flush(lm, &mut ctx, &mut pending);
                for u in units {
                    add += self.score_unit(lm, &mut ctx, u);
                }
            }
            Kind::Nothing => {}
        }
        (ctx, pending, h.lm + add)
    }

    /// The hotword state of `h` extended by token `c`.
    fn extend_hot(&self, h: &Hyp, c: u32) -> (u32, f32, f32) {
        let bonus = self.d.hotword_bonus;
        let (mut node, mut partial, mut hot) = (h.hot_node, h.hot_partial, h.hot);
        let step = |from: u32, partial: &mut f32, hot: &mut f32| -> Option<u32> {
            let n = self.trie.child(from, c)?;
            // The first token earns nothing yet: a word that merely starts like a
            // hotword (혜택 heard as ᄋ... beside 어플) must not push the beam's other
            // hypotheses out before its second token can tell.
            let b = if from == 0 { 0.0 } else { bonus };
            *partial += b;
            *hot += b;
            if self.trie.end[n as usize] {
                // A whole hotword: its bonus stays.
                *partial = 0.0;
            }
            Some(if self.trie.children[n as usize].is_empty() {
                0
            } else {
                n
            })
        };
        // A hotword is a word: a match starts only where a word does, so that a short
        // name (앱) does not pull every syllable that begins like it.
        let word_start = h
            .tokens
            .last()
            .is_none_or(|&(t, _)| self.kinds[t as usize] == Kind::Boundary);
        if node == 0 && !word_start {
            return (0, 0.0, hot);
        }
        match step(node, &mut partial, &mut hot) {
            Some(n) => node = n,
            None => {
                // The match broke off: take its bonus back, and try afresh if a word
                // starts here.
                hot -= partial;
                partial = 0.0;
                node = if node != 0 && word_start {
                    step(0, &mut partial, &mut hot).unwrap_or(0)
                } else {
                    0
                };
            }
        }
        (node, partial, hot)
    }

    fn extended(&self, h: &Hyp, c: u32, t: usize) -> Hyp {
        let (ctx, pending, lm) = self.extend_lm(h, c);
        let (hot_node, hot_partial, hot) = if self.trie.children[0].is_empty() {
            (0, 0.0, 0.0)
        } else {
            self.extend_hot(h, c)
        };
        let mut tokens = h.tokens.clone();
        tokens.push((c, t as u32));
        Hyp {
            tokens,
            blank: f32::NEG_INFINITY,
            last: f32::NEG_INFINITY,
            ctx,
            pending,
            lm,
            hot_node,
            hot_partial,
            hot,
        }
    }

    /// The end of the utterance: the open syllable, `</s>`, and unfinished hotword
    /// matches taken back.
    fn finish(&self, h: &mut Hyp) {
        if let Some(lm) = self.d.lm.as_deref() {
            let (mut ctx, mut pending) =
                (std::mem::take(&mut h.ctx), std::mem::take(&mut h.pending));
            let mut add = self.flush(lm, &mut ctx, &mut pending);
            add += self.weight * lm.log10_prob(&ctx, Some(lm.eos()));
            h.lm += add;
        }
        h.hot -= h.hot_partial;
        h.hot_partial = 0.0;
    }
}

impl CtcDecoder for BeamDecoder {
    fn decode(&self, scores: ArrayView2<'_, f32>, vocab: &Vocab) -> Transcript {
        let blank = vocab.blank();
        let kinds: Vec<Kind> = (0..vocab.len() as u32)
            .map(|i| {
                if i == blank {
                    Kind::Nothing
                } else {
                    vocab.token(i).map_or(Kind::Nothing, kind_of)
                }
            })
            .collect();
        let mut trie = Trie::new();
        for t in hotword_tokens(&self.hotwords, vocab).0 {
            trie.insert(&t);
        }
        let search = Search {
            d: self,
            vocab,
            kinds,
            trie,
            weight: self.alpha * std::f32::consts::LN_10,
        };
        let mut hyps = vec![Hyp {
            tokens: Vec::new(),
            blank: 0.0,
            last: f32::NEG_INFINITY,
            ctx: self
                .lm
                .as_deref()
                .map(|lm| vec![lm.bos()])
                .unwrap_or_default(),
            pending: Vec::new(),
            lm: 0.0,
            hot_node: 0,
            hot_partial: 0.0,
            hot: 0.0,
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
                let h_total = search.merge(h.blank, h.last);
                for &c in &order {
                    let p = logp[c as usize];
                    if c == blank {
                        let e = same(&mut next, &key, h);
                        e.blank = search.merge(e.blank, h_total + p);
                        continue;
                    }
                    let from = if prev == Some(c) {
                        // The same token again: only after a blank is it a new one;
                        // otherwise it is the last one held.
                        let e = same(&mut next, &key, h);
                        e.last = search.merge(e.last, h.last + p);
                        h.blank + p
                    } else {
                        h_total + p
                    };
                    let mut longer = key.clone();
                    longer.push(c);
                    let e = next
                        .entry(longer)
                        .or_insert_with(|| search.extended(h, c, t));
                    e.last = search.merge(e.last, from);
                }
            }
            hyps = next.drain().map(|(_, h)| h).collect();
            sort(&search, &mut hyps);
            hyps.truncate(self.beam.max(1));
        }
        if self.lm.is_some() || !search.trie.children[0].is_empty() {
            for h in &mut hyps {
                search.finish(h);
            }
            sort(&search, &mut hyps);
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

/// Best first; among equals, the shorter.
fn sort(search: &Search<'_>, hyps: &mut [Hyp]) {
    hyps.sort_by(|a, b| {
        search
            .total(b)
            .total_cmp(&search.total(a))
            .then_with(|| a.tokens.len().cmp(&b.tokens.len()))
    });
}

/// The hypothesis for `key` in `next` (the same prefix as `h`), created with `h`'s
/// state and no probability yet if new.
fn same<'a>(next: &'a mut HashMap<Vec<u32>, Hyp>, key: &[u32], h: &Hyp) -> &'a mut Hyp {
    next.entry(key.to_vec()).or_insert_with(|| Hyp {
        blank: f32::NEG_INFINITY,
        last: f32::NEG_INFINITY,
        ..h.clone()
    })
}

#[cfg(test)]
pub(crate) mod tests {
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
    fn beam_one_is_greedy_decoding_exactly() {
        // Random scores with a strong blank, as a CTC model gives: 300 frames, 40 draws.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for draw in 0..40 {
            let mut a = Array2::zeros((300, 5));
            for t in 0..300 {
                for i in 0..5 {
                    a[[t, i]] = rand() * 6.0 + if i == 4 { 2.0 } else { 0.0 };
                }
            }
            let g = GreedyDecoder.decode(a.view(), &vocab());
            let b = BeamDecoder {
                beam: 1,
                ..Default::default()
            }
            .decode(a.view(), &vocab());
            assert_eq!(b.tokens, g.tokens, "draw {draw}");
            assert_eq!(b.text, g.text, "draw {draw}");
            assert!((b.confidence - g.confidence).abs() < 1e-6);
        }
    }

    /// A jamo vocabulary for 함/합 니: ᄒ ᅡ ᆷ ᆸ ᄂ ᅵ | [PAD] (the decoder-choice
    /// tests share it).
    pub(crate) fn jamo_vocab() -> Vocab {
        let toks = [
            "\u{1112}", "\u{1161}", "\u{11B7}", "\u{11B8}", "\u{1102}", "\u{1175}", "|", "[PAD]",
        ];
        Vocab::from_map(
            toks.iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect(),
        )
        .unwrap()
    }

    /// ᄒ ᅡ (ᆷ `m` / ᆸ 1-m) ᄂ ᅵ, each jamo a frame, blanks between.
    fn ham_or_hap(m: f32) -> Array2<f32> {
        let one = |i: usize| {
            let mut r = vec![0.0; 8];
            r[i] = 0.96;
            r[7] = 0.04;
            r
        };
        let blank = {
            let mut r = vec![0.0; 8];
            r[7] = 1.0;
            r
        };
        let mut tail = vec![0.0; 8];
        tail[2] = m * 0.96;
        tail[3] = (1.0 - m) * 0.96;
        tail[7] = 0.04;
        let rows = [
            one(0),
            blank.clone(),
            one(1),
            blank.clone(),
            tail,
            blank.clone(),
            one(4),
            blank.clone(),
            one(5),
            blank,
        ];
        let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        from_probs(&refs)
    }

    #[test]
    fn the_language_model_spells_what_the_ear_confuses() {
        // Acoustically 함니 (0.6) beats 합니 (0.4); the LM knows 합 니.
        let arpa = "\\data\\\nngram 1=6\nngram 2=2\n\n\\1-grams:\n-99\t<s>\t0\n-1\t</s>\t0\n-1\t합\t0\n-1\t함\t0\n-1\t니\t0\n-1\t|\t0\n\n\\2-grams:\n-0.05\t합 니\n-3\t함 니\n\n\\end\\\n";
        let lm = Arc::new(NgramLm::from_arpa(arpa).unwrap());
        let s = ham_or_hap(0.6);
        let v = jamo_vocab();
        assert_eq!(GreedyDecoder.decode(s.view(), &v).text, "함니");
        assert_eq!(BeamDecoder::default().decode(s.view(), &v).text, "함니");
        let fused = BeamDecoder {
            lm: Some(lm.clone()),
            alpha: 0.5,
            beta: 0.0,
            ..Default::default()
        };
        assert_eq!(fused.decode(s.view(), &v).text, "합니");
        // A weight of zero is no LM at all.
        let off = BeamDecoder {
            lm: Some(lm),
            alpha: 0.0,
            beta: 0.0,
            ..Default::default()
        };
        assert_eq!(off.decode(s.view(), &v).text, "함니");
    }

    #[test]
    fn hotwords_are_boosted_and_broken_matches_pay_back() {
        let s = ham_or_hap(0.6);
        let v = jamo_vocab();
        let boosted = |words: &[&str]| BeamDecoder {
            hotwords: words.iter().map(|w| w.to_string()).collect(),
            hotword_bonus: 1.5,
            ..Default::default()
        };
        assert_eq!(boosted(&["합니"]).decode(s.view(), &v).text, "합니");
        // 함 followed by 하 is not what was said: the bonus the partial match 함 earned
        // is taken back at ᄂ, so the acoustics decide (함 at 0.6 would win anyway; with
        // 합 favoured acoustically, a kept bonus would wrongly give 함).
        let s2 = ham_or_hap(0.4);
        assert_eq!(boosted(&["함하"]).decode(s2.view(), &v).text, "합니");
        assert_eq!(boosted(&[]).decode(s2.view(), &v).text, "합니");
        // A hotword the vocabulary cannot write is left out and reported.
        let (toks, skipped) = hotword_tokens(&["5G 요금제".into(), "합 니".into()], &v);
        assert_eq!(skipped, vec!["5G 요금제".to_string()]);
        assert_eq!(toks.len(), 2, "with and without the space");
    }

    #[test]
    fn tokens_map_to_lm_units() {
        assert_eq!(kind_of("\u{1100}"), Kind::Lead);
        assert_eq!(kind_of("\u{1161}"), Kind::Inner);
        assert_eq!(kind_of("\u{11A8}"), Kind::Inner);
        assert_eq!(kind_of("|"), Kind::Boundary);
        // [UNK] is one unknown unit, not five characters of one.
        assert_eq!(kind_of("[UNK]"), Kind::Units(vec!["<unk>".into()]));
        assert_eq!(kind_of("카드"), Kind::Units(vec!["카".into(), "드".into()]));
    }

    #[test]
    fn log_add_is_the_log_of_a_sum() {
        let v = log_add(0.25f32.ln(), 0.5f32.ln());
        assert!((v - 0.75f32.ln()).abs() < 1e-6);
        assert_eq!(log_add(f32::NEG_INFINITY, -1.0), -1.0);
    }
}
