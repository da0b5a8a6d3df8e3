//! Korean keywords: tokens with particles and endings stripped, stop words removed.
//!
//! No Korean morphological analyser builds offline here (lindera's dictionary downloads
//! at build time; mecab would add a C library and a 50 MB dictionary to the box), so
//! this is a rule-based stripper, pinned by `tests/data/keywords-ko.tsv` (precision is
//! printed by `cargo test --lib insights::keywords -- --nocapture`).
//!
//! A text is NFC-normalised and split on anything but Hangul syllables, ASCII letters
//! and digits. Each word then goes through these stages; the first that decides wins:
//!
//! 1. **Stop words and numbers.** The shipped ranks.nl list, [`FILLERS`] and the config's
//!    extra list, checked on the raw word and again on the stem. Numbers are no topics:
//!    `3000원`, `12월`, `삼만원이`, `다섯`.
//! 2. **Latin.** A word that starts with an ASCII letter or digit gives its ASCII part,
//!    lowercased so `KT`/`kt` count as one (`LTE로` → `lte`, `5G가` → `5g`,
//!    `iPhone` → `iphone`); digits alone, single letters and one letter repeated
//!    (`oo`, a masked name) are dropped. A Hangul
//!    name glued to Latin keeps both (`갤럭시S24로` → `갤럭시s24`).
//! 3. **Protected nouns.** [`PROTECTED`] nouns end in a syllable that looks like a
//!    particle or an ending (`사과`, `회의`, `한도`, `제한`, `이해`): the bare noun, or
//!    the noun plus any known suffix, gives the noun. [`COMPOUND_HEADS`] also protect
//!    compounds that end in them (`신용한도`, `전화문의`), when the rest has two
//!    syllables or more (so `약속도` is still `약속` + `도`).
//! 4. **Light verbs.** A noun + `하다`, `되다`, `받다`, `드리다` or `시키다` in any of the
//!    generated forms gives the noun when it has two syllables or more
//!    (`변경했는데` → `변경`, `친절하시고` → `친절`, `불편해요` → `불편`). With a
//!    one-syllable root the word is an adjective or an idiom (`편하고`, `안돼요`) and no
//!    keyword.
//! 5. **Predicates are not keywords.** They carry sentiment, not topics, and the
//!    sentiment model reads them already. Caught by a small lexicon of frequent verbs
//!    and adjectives, conjugated when the extractor is built (`느리고`, `바꿀`,
//!    `빠르게`), and by what no noun has: a past-tense `ㅆ` syllable (`왔는데`), `없`
//!    (`재미없다`), `…니다`, `…ㄴ데`, `…나요`, `…세요`, `…으면`, a plain `…다` after a
//!    consonant (`아깝다`), infinitives (`느려요`, `끊겨서`, `몰라요`, and before a
//!    light verb: `알려드릴게요`), and reduplicated adverbs (`쏙쏙`, `차근차근`). The
//!    one exception is step 4: a `하다` root of two syllables is kept,
//!    because those roots are Sino-Korean nouns (`불편`, `만족`, `친절`) that callers
//!    also use as nouns.
//! 6. **Copulas.** Noun + `입니다`, `예요`, `였어요`, `라서`, `인데`, `다` … gives the
//!    noun (`영화다` → `영화`).
//! 7. **Particles.** One particle (or particle + `요`) is stripped, longest first, when
//!    it agrees with the noun: `이 을 은 과 으로` only after a final consonant,
//!    `가 를 는 와 랑` only after a vowel, `로` after a vowel or `ㄹ`. One-syllable
//!    particles that attach to anything (`의 에 도 만 요 께`, and `나`, `다`) need a
//!    stem of two syllables, or one of the [`ONE_SYLLABLE_NOUNS`], so `정도` stays whole; a
//!    one-syllable stem + `요` is a predicate (`커요`, `가요`). The suffix `째` is
//!    stripped the same way (`일주일째`).
//! 8. **Plural and honorifics.** `들` goes after a stem of two syllables or more;
//!    `님`/`분` go after job titles ending in `원`, `사` or `장` (`상담원분들이` →
//!    `상담원`, `상담사님` → `상담사`), while `선생님` stays whole.
//!
//! One-syllable keywords are kept only from [`ONE_SYLLABLE_NOUNS`]: most one-syllable
//! words are counters, adverbs or verb stems. `상담원` is a keyword (complaints about
//! the agent are a topic); `고객님`, the agent's form of address, is a filler.
//!
//! Every stage looks at a bounded number of suffixes (suffix sets are built once in
//! [`Keywords::new`]), and words longer than [`MAX_WORD_CHARS`] are dropped, so
//! extraction is linear in the text.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;

use crate::hangul::{
    compose, final_consonant, is_syllable, parts, with_final, FINAL_B, FINAL_L, FINAL_N, FINAL_SS,
    INITIAL_IEUNG, INITIAL_RIEUL, V_A, V_EO, V_EU, V_I, V_O, V_OE, V_U, V_WA, V_WAE, V_WO, V_YEO,
};

mod words;
use words::*;
pub use words::{COMPOUND_HEADS, FILLERS, MAX_WORD_CHARS, ONE_SYLLABLE_NOUNS, PROTECTED, RANKS_NL};

fn agrees(stem: &str, after: After) -> bool {
    let Some(f) = stem.chars().last().and_then(final_consonant) else {
        return false;
    };
    match after {
        After::Consonant => f != 0,
        After::Vowel => f == 0,
        After::VowelOrRieul => f == 0 || f == FINAL_L,
        After::Any => true,
    }
}

fn syllables(s: &str) -> usize {
    s.chars().filter(|&c| is_syllable(c)).count()
}

/// `s` without its last `k` characters, and those characters.
fn split_back(s: &str, k: usize) -> Option<(&str, &str)> {
    if k == 0 {
        return Some((s, ""));
    }
    let (at, _) = s.char_indices().rev().nth(k - 1)?;
    Some(s.split_at(at))
}

/// `s` with its last character replaced by `c`.
fn replace_last(s: &str, c: char) -> String {
    let cut = s.char_indices().next_back().map_or(0, |(at, _)| at);
    format!("{}{c}", &s[..cut])
}

/// The infinitive (`-아/어` form) of a stem: `느리` → `느려`, `바꾸` → `바꿔`,
/// `좋` → `좋아`, `빠르` → `빨라`, `어렵` → `어려워`, `하` → `해`.
fn infinitive(stem: &Stem) -> String {
    let s = stem.text;
    let chars: Vec<char> = s.chars().collect();
    let last = *chars.last().expect("a non-empty stem");
    let (i, v, f) = parts(last).expect("a Hangul stem");
    let prev_bright = chars
        .len()
        .checked_sub(2)
        .and_then(|p| parts(chars[p]))
        .is_some_and(|(_, pv, _)| pv == V_A || pv == V_O);
    if stem.b_irregular {
        return format!("{}워", replace_last(s, compose(i, v, 0)));
    }
    if f != 0 {
        let bright = v == V_A || v == V_O;
        return format!("{s}{}", if bright { '아' } else { '어' });
    }
    if s == "하" {
        return "해".to_owned();
    }
    match v {
        V_I => replace_last(s, compose(i, V_YEO, 0)),
        V_U => replace_last(s, compose(i, V_WO, 0)),
        V_O => replace_last(s, compose(i, V_WA, 0)),
        V_OE => replace_last(s, compose(i, V_WAE, 0)),
        V_EU if i == INITIAL_RIEUL && chars.len() >= 2 => {
            // 르-irregular: 빠르 → 빨라, 모르 → 몰라, 다르 → 달라.
            let head: String = chars[..chars.len() - 2].iter().collect();
            let prev = with_final(chars[chars.len() - 2], FINAL_L);
            let tail = if prev_bright { '라' } else { '러' };
            format!("{head}{prev}{tail}")
        }
        V_EU => {
            let vowel = if prev_bright { V_A } else { V_EO };
            replace_last(s, compose(i, vowel, 0))
        }
        _ => s.to_owned(),
    }
}

/// Every form of a stem the extractor recognises (without nouns in front).
fn conjugate(stem: &Stem, out: &mut HashSet<String>) {
    let s = stem.text;
    let last = s.chars().last().expect("a non-empty stem");
    let (_, _, fin) = parts(last).expect("a Hangul stem");
    let long = syllables(s) >= 2;
    let mut add = |base: &str, endings: &[&str]| {
        for e in endings {
            out.insert(format!("{base}{e}"));
        }
    };
    if stem.b_irregular {
        // 어렵 + 고, 어려운, 어려우면.
        let base = replace_last(s, with_final(last, 0));
        add(
            s,
            &[
                "고",
                "고요",
                "지",
                "지만",
                "죠",
                "게",
                "다",
                "네요",
                "습니다",
                "던",
            ],
        );
        add(&base, &["운", "운데", "울", "우면", "우니까"]);
    } else if fin == FINAL_L {
        // ㄹ drops before ㄴ, ㅂ, ㅅ: 길 + 고, 긴, 아는, 깁니다.
        let base = replace_last(s, with_final(last, 0));
        add(
            s,
            &[
                "고", "고요", "지", "지만", "죠", "게", "다", "면", "려고", "러", "던",
            ],
        );
        add(
            &base,
            &["는", "는데", "니까", "세요", "시고", "네요", "나요"],
        );
        add(&replace_last(s, with_final(last, FINAL_N)), AFTER_N);
        add(&replace_last(s, with_final(last, FINAL_B)), AFTER_B);
    } else if fin != 0 {
        add(s, AFTER_CONSONANT);
    } else {
        add(s, AFTER_VOWEL);
        add(&replace_last(s, with_final(last, FINAL_N)), AFTER_N);
        add(&replace_last(s, with_final(last, FINAL_L)), AFTER_L);
        add(&replace_last(s, with_final(last, FINAL_B)), AFTER_B);
    }
    if long {
        add(s, NOMINAL);
    }
    add(s, &["겠"]);
    for e in AFTER_WILL {
        out.insert(format!("{s}겠{e}"));
    }
    let inf = infinitive(stem);
    for t in INFINITIVE_TAILS {
        out.insert(format!("{inf}{t}"));
    }
    let inf_last = inf.chars().last().expect("a non-empty infinitive");
    let past = replace_last(&inf, with_final(inf_last, FINAL_SS));
    for e in AFTER_PAST {
        out.insert(format!("{past}{e}"));
    }
}

/// The light-verb forms: `하`, `되`, `받`, `드리`, `시키` conjugated, plus their
/// honorifics (`하시`, `되시`, `받으시`) and `되어`.
fn light_verb_forms() -> HashSet<String> {
    let mut out = HashSet::new();
    for stem in LIGHT_VERB_STEMS {
        conjugate(stem, &mut out);
    }
    for hon in ["하시", "되시", "받으시", "드리시"] {
        conjugate(&Stem::plain(hon), &mut out);
    }
    for t in INFINITIVE_TAILS {
        out.insert(format!("되어{t}"));
    }
    for e in AFTER_PAST {
        out.insert(format!("되었{e}"));
    }
    out
}

/// The conjugated forms of [`PREDICATE_STEMS`], less the protected nouns.
fn predicate_forms() -> HashSet<String> {
    let mut out = HashSet::new();
    for stem in PREDICATE_STEMS {
        conjugate(stem, &mut out);
    }
    for p in PROTECTED {
        out.remove(*p);
    }
    out
}

/// Whether `stem` ends in an infinitive: a vowel `ㅕ`, `ㅝ` or `ㅙ` (`느려`, `바꿔`,
/// `돼`, but not `여` as in `참여`, `대여`), `봐`, `놔`, or a one-syllable verb whose
/// infinitive is itself (`가`, `내`). `와` (`나와서`) and a `르`-irregular `ㄹ라`/`ㄹ러`
/// (`몰라요`, `빨라서`) count only before a tail (`bare` false): bare, they are the
/// particle `와` (`한도와`) or nouns (`콜라`).
fn ends_in_infinitive(stem: &str, bare: bool) -> bool {
    let mut rev = stem.chars().rev();
    let Some((i, v, f)) = rev.next().and_then(parts) else {
        return false;
    };
    if f != 0 {
        return false;
    }
    let prev = rev.next();
    if (v == V_YEO && i != INITIAL_IEUNG) || v == V_WO || v == V_WAE {
        return true;
    }
    if matches!(stem.chars().last(), Some('봐' | '놔')) || (!bare && stem.ends_with('와')) {
        return true;
    }
    if !bare && i == INITIAL_RIEUL && (v == V_A || v == V_EO) {
        if let Some(p) = prev {
            return final_consonant(p) == Some(FINAL_L);
        }
    }
    prev.is_none()
        && matches!(
            stem,
            "가" | "내" | "타" | "자" | "사" | "서" | "나" | "커" | "떠"
        )
}

/// Whether `s` (a stem after particle stripping) is a number: Sino-Korean numerals
/// with a counter (`삼만원`, `십이월`), or native numerals (`다섯`, `두번`).
fn is_number(s: &str) -> bool {
    if let Some(rest) = NATIVE_NUMERALS.iter().find_map(|n| s.strip_prefix(n)) {
        return rest.is_empty() || COUNTERS.contains(&rest);
    }
    let native_counted = ["한", "두", "세", "네", "열"]
        .iter()
        .filter_map(|n| s.strip_prefix(n))
        .any(|rest| NATIVE_COUNTERS.contains(&rest));
    if native_counted {
        return true;
    }
    let digits: String = s.chars().take_while(|c| NUMERALS.contains(*c)).collect();
    if digits.is_empty() {
        return false;
    }
    let rest = &s[digits.len()..];
    if !(rest.is_empty() || COUNTERS.contains(&rest)) {
        return false;
    }
    digits.chars().any(|c| STRONG_NUMERALS.contains(c))
        || (digits.chars().count() >= 2 && !rest.is_empty())
}

/// The keyword extractor: stop words and suffix sets built once.
#[derive(Debug, Clone)]
pub struct Keywords {
    stop: HashSet<String>,
    protected: HashSet<&'static str>,
    one_syllable: HashSet<&'static str>,
    light_verbs: HashSet<String>,
    light_verb_max: usize,
    predicates: HashSet<String>,
    /// [`COPULAS`] and [`PARTICLES`], longest first.
    copulas: Vec<(&'static str, After)>,
    particles: Vec<(&'static str, After)>,
    /// Every particle, copula and light-verb form: what may follow a protected noun.
    suffixes: HashSet<String>,
    suffix_max: usize,
}

impl Keywords {
    /// The shipped stop-word list and [`FILLERS`], plus `extra` (user words from the
    /// config; NFC-normalised, trimmed and lowercased like the text).
    pub fn new(extra: &[String]) -> Keywords {
        let stop = RANKS_NL
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.nfc().collect::<String>())
            .chain(FILLERS.iter().map(|s| s.to_string()))
            .chain(
                extra
                    .iter()
                    .map(|s| s.trim().nfc().collect::<String>().to_lowercase()),
            )
            .filter(|s| !s.is_empty())
            .collect();
        let light_verbs = light_verb_forms();
        let suffixes: HashSet<String> = PARTICLES
            .iter()
            .chain(COPULAS)
            .map(|(s, _)| s.to_string())
            .chain(light_verbs.iter().cloned())
            .collect();
        let max_chars = |set: &HashSet<String>| set.iter().map(|s| s.chars().count()).max();
        let longest_first = |table: &[(&'static str, After)]| {
            let mut v = table.to_vec();
            v.sort_by_key(|(s, _)| std::cmp::Reverse(s.chars().count()));
            v
        };
        Keywords {
            stop,
            protected: PROTECTED.iter().copied().collect(),
            one_syllable: ONE_SYLLABLE_NOUNS.iter().copied().collect(),
            light_verb_max: max_chars(&light_verbs).unwrap_or(0),
            light_verbs,
            predicates: predicate_forms(),
            copulas: longest_first(COPULAS),
            particles: longest_first(PARTICLES),
            suffix_max: max_chars(&suffixes).unwrap_or(0),
            suffixes,
        }
    }

    pub fn is_stopword(&self, w: &str) -> bool {
        self.stop.contains(w)
    }

    /// Keywords of one text, in order of appearance, repeats kept.
    pub fn extract(&self, text: &str) -> Vec<String> {
        let text: String = text.nfc().collect();
        text.split(|c: char| !(is_syllable(c) || c.is_ascii_alphanumeric()))
            .filter(|w| !w.is_empty())
            .filter_map(|w| self.keyword_nfc(w))
            .collect()
    }

    /// The stem of one word form (particles and endings stripped), or None if the word
    /// is a stop word, a particle, a predicate, a number, or otherwise not a keyword.
    pub fn keyword(&self, word: &str) -> Option<String> {
        self.keyword_nfc(&word.nfc().collect::<String>())
    }

    fn keyword_nfc(&self, word: &str) -> Option<String> {
        if word.is_empty() || word.chars().count() > MAX_WORD_CHARS || self.is_stopword(word) {
            return None;
        }
        let first = word.chars().next()?;
        if first.is_ascii_alphanumeric() {
            let ascii: String = word
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            // `oo`, `xxx`: a masked name or a laugh, not a model.
            let one_letter = ascii.chars().all(|c| ascii.starts_with(c));
            let keep = ascii.len() >= 2
                && !one_letter
                && ascii.chars().any(|c| c.is_ascii_alphabetic())
                && !self.is_stopword(&ascii);
            return keep.then_some(ascii);
        }
        let hangul_end = word
            .char_indices()
            .find(|(_, c)| !is_syllable(*c))
            .map_or(word.len(), |(at, _)| at);
        let (hangul, rest) = word.split_at(hangul_end);
        if !rest.is_empty() {
            // 갤럭시S24로: a name glued to a model; what follows the Latin part is a
            // particle.
            let latin: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if latin.is_empty() || !rest[latin.len()..].chars().all(is_syllable) {
                return None;
            }
            return Some(format!("{hangul}{latin}"));
        }
        let stem = self.stem(word)?;
        self.finish(stem)
    }

    /// Stages 3 to 7 of the module docs, on a word of Hangul syllables.
    fn stem(&self, word: &str) -> Option<String> {
        let n = word.chars().count();
        // 3. Protected nouns, bare or with any suffix, then compounds ending in one.
        if self.protected.contains(word) {
            return Some(word.to_owned());
        }
        for k in 1..=self.suffix_max.min(n - 1) {
            let (stem, suffix) = split_back(word, k)?;
            if self.protected.contains(stem) && self.suffixes.contains(suffix) {
                return Some(stem.to_owned());
            }
        }
        if self.ends_in_compound_head(word) {
            return Some(word.to_owned());
        }
        // 4. Noun + light verb.
        for k in (1..=self.light_verb_max.min(n)).rev() {
            let (noun, lv) = split_back(word, k)?;
            if self.light_verbs.contains(lv) {
                // 돌려받을, 알려드릴게요: a verb before 받다/드리다 is no noun.
                let verb = !self.protected_stem(noun) && ends_in_infinitive(noun, false);
                return (syllables(noun) >= 2 && !verb).then(|| noun.to_owned());
            }
        }
        // 5. Conjugated predicates from the lexicon.
        if self.predicates.contains(word) {
            return None;
        }
        // 6. Noun + copula.
        for (cop, after) in &self.copulas {
            if let Some(noun) = word.strip_suffix(cop) {
                if !noun.is_empty() && agrees(noun, *after) {
                    return Some(noun.to_owned());
                }
            }
        }
        // 5, continued: predicates by their endings.
        if self.is_predicate(word) {
            return None;
        }
        // 7. One particle.
        for (p, after) in &self.particles {
            let Some(noun) = word.strip_suffix(p) else {
                continue;
            };
            if noun.is_empty() || !agrees(noun, *after) {
                continue;
            }
            let one_char = p.chars().count() == 1;
            let risky = one_char && (*after == After::Any || *p == "나" || *p == "다");
            if risky && syllables(noun) == 1 && !self.one_syllable.contains(noun) {
                if *p == "요" {
                    return None;
                }
                continue;
            }
            return Some(noun.to_owned());
        }
        // 쏙쏙, 차근차근, 빨리빨리: reduplicated adverbs.
        let half = word.len() / 2;
        if word.is_char_boundary(half) && word[..half] == word[half..] {
            return None;
        }
        Some(word.to_owned())
    }

    /// Whether the word ends in a [`COMPOUND_HEADS`] noun after two syllables or more.
    fn ends_in_compound_head(&self, word: &str) -> bool {
        COMPOUND_HEADS.iter().any(|h| {
            word.strip_suffix(h)
                .is_some_and(|front| syllables(front) >= 2)
        })
    }

    /// Whether the stem (the word less a suffix) is protected, alone or as a compound.
    fn protected_stem(&self, stem: &str) -> bool {
        self.protected.contains(stem) || self.ends_in_compound_head(stem)
    }

    fn is_predicate(&self, word: &str) -> bool {
        // A past tense (`왔는데`, `있어요`), or 없다 (`재미없다`, `상관없고`): no noun
        // has these syllables.
        if word
            .chars()
            .any(|c| final_consonant(c) == Some(FINAL_SS) || c == '없')
        {
            return true;
        }
        let mut rev = word.chars().rev();
        let (last, before) = (rev.next(), rev.next());
        // The plain form after a consonant: 좋다, 아깝다 (after a vowel it is the
        // copula, taken earlier).
        if last == Some('다') && before.and_then(final_consonant).is_some_and(|f| f != 0) {
            return true;
        }
        let n_de = |c: Option<char>| c.and_then(final_consonant) == Some(FINAL_N);
        if (last == Some('데') && n_de(before))
            || (word.ends_with("데요") && n_de(word.chars().rev().nth(2)))
        {
            return true;
        }
        if PREDICATE_ENDINGS.iter().any(|e| word.ends_with(e)) {
            return true;
        }
        INFINITIVE_TAILS.iter().any(|t| {
            word.strip_suffix(t).is_some_and(|stem| {
                !stem.is_empty()
                    && !self.protected_stem(stem)
                    && !self.one_syllable.contains(stem)
                    && ends_in_infinitive(stem, t.is_empty())
            })
        })
    }

    /// Stage 8 and the final checks.
    fn finish(&self, stem: String) -> Option<String> {
        let mut s = stem.as_str();
        if syllables(s) >= 3 {
            s = s.strip_suffix('들').unwrap_or(s);
        }
        if syllables(s) >= 3 {
            if let Some(title) = s.strip_suffix('님').or_else(|| s.strip_suffix('분')) {
                if title.ends_with(['원', '사', '장']) {
                    s = title;
                }
            }
        }
        let keep = !s.is_empty()
            && (syllables(s) >= 2 || self.one_syllable.contains(s))
            && !self.is_stopword(s)
            && !is_number(s);
        keep.then(|| s.to_owned())
    }
}

/// Precision of the stripper over (form, expected) pairs (`None`: not a keyword):
/// (correct, total).
pub fn score(k: &Keywords, pairs: &[(&str, Option<&str>)]) -> (usize, usize) {
    let right = pairs
        .iter()
        .filter(|(form, want)| k.keyword(form).as_deref() == *want)
        .count();
    (right, pairs.len())
}

#[cfg(test)]
mod tests {

    use super::*;

    fn pairs() -> Vec<(&'static str, Option<&'static str>)> {
        include_str!("../../../tests/data/keywords-ko.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (form, want) = l.split_once('\t').expect("form<TAB>expected");
                (form, (want != "-").then_some(want))
            })
            .collect()
    }

    #[test]
    fn precision_on_the_pinned_pairs() {
        let k = Keywords::new(&[]);
        let p = pairs();
        assert!(p.len() >= 100, "{} pairs", p.len());
        let (right, total) = score(&k, &p);
        for (form, want) in &p {
            let got = k.keyword(form);
            if got.as_deref() != *want {
                eprintln!("miss: {form} -> {got:?}, expected {want:?}");
            }
        }
        let precision = right as f64 / total as f64;
        eprintln!(
            "keyword precision: {right}/{total} = {:.1}%",
            precision * 100.0
        );
        assert!(precision >= 0.95, "precision {precision}");
    }

    #[test]
    fn sentences_give_their_topics() {
        let k = Keywords::new(&[]);
        assert_eq!(
            k.extract("카드 한도가 너무 낮아요. 한도 상향을 신청했는데 안 됐어요!"),
            ["카드", "한도", "한도", "상향", "신청"]
        );
        assert_eq!(
            k.extract("LTE 요금제를 5G 요금제로 변경하고 싶어요"),
            ["lte", "요금제", "5g", "요금제", "변경"]
        );
        assert_eq!(
            k.extract("상담원분이 친절하게 설명해 주셔서 감사합니다"),
            ["상담원", "친절", "설명"]
        );
        assert_eq!(
            k.extract("약정기간이 남아서 위약금까지 내야 되는데, 기기변경하려면 얼마예요?"),
            ["약정기간", "위약금", "기기변경"]
        );
        assert_eq!(
            k.extract("인터넷강의 진도가 너무 빨라서 환불받고 싶은데 교재비도 돌려주나요?"),
            ["인터넷강의", "진도", "환불", "교재비"]
        );
        assert_eq!(
            k.extract("통화가 자꾸 끊기고 데이터 속도도 느려요. 고객센터에 세 번 전화했어요."),
            ["통화", "데이터", "속도", "고객센터", "전화"]
        );
    }

    #[test]
    fn predicates_are_dropped_and_hada_roots_kept() {
        let k = Keywords::new(&[]);
        for w in [
            "좋아요",
            "좋았어요",
            "좋은데",
            "느려요",
            "느리고",
            "느린",
            "빨라요",
        ] {
            assert_eq!(k.keyword(w), None, "{w}");
        }
        for w in [
            "불편해요",
            "불편했어요",
            "불편하고",
            "불편한데",
            "불편합니다",
        ] {
            assert_eq!(k.keyword(w).as_deref(), Some("불편"), "{w}");
        }
        // A one-syllable root is an adjective, not a topic.
        for w in ["편해요", "편하고", "안돼요", "잘했어요"] {
            assert_eq!(k.keyword(w), None, "{w}");
        }
    }

    #[test]
    fn protected_nouns_stay_whole() {
        let k = Keywords::new(&[]);
        for noun in [
            "나라",
            "사과",
            "회의",
            "요금",
            "고객",
            "할인",
            "이용",
            "대기",
            "가입",
            "해지",
            "은행",
            "이자",
            "수수료",
            "상담원",
            "카드론",
            "무제한",
            "결과",
            "이해",
        ] {
            assert_eq!(k.keyword(noun).as_deref(), Some(noun));
            for suffix in ["은", "는", "이", "가", "을", "를", "도", "만", "요", "까지"]
            {
                let form = format!("{noun}{suffix}");
                assert_eq!(k.keyword(&form).as_deref(), Some(noun), "{form}");
            }
        }
        // No generated predicate or light-verb form is a protected noun.
        for p in PROTECTED {
            assert!(!k.predicates.contains(*p), "{p}");
            assert!(!k.light_verbs.contains(*p), "{p}");
        }
    }

    #[test]
    fn latin_tokens_are_lowercased() {
        let k = Keywords::new(&[]);
        assert_eq!(
            k.extract("KT에서 iPhone으로, 갤럭시S24로! 5G 10GB 2024 A"),
            ["kt", "iphone", "갤럭시s24", "5g", "10gb"]
        );
    }

    #[test]
    fn stop_words_extra_words_and_normal_forms() {
        let k = Keywords::new(&["포인트".to_string(), " 적립 ".to_string()]);
        assert!(k.extract("포인트가 그리고 네 정말 적립이").is_empty());
        assert!(k.is_stopword("그리고") && k.is_stopword("고객님"));
        // Stop words apply to stems too: 감사 + 해요.
        assert_eq!(k.keyword("감사해요"), None);
        let k = Keywords::new(&[]);
        let nfc = "카드가 한도를 변경했는데 환불은요?";
        let nfd: String = nfc.nfd().collect();
        assert_ne!(nfc, nfd);
        assert_eq!(k.extract(&nfd), k.extract(nfc));
        assert_eq!(k.extract(&nfd), ["카드", "한도", "변경", "환불"]);
    }

    #[test]
    fn degenerate_texts() {
        let k = Keywords::new(&[]);
        for t in [
            "",
            "   ",
            "😀😀",
            "!!!???",
            "12 34 5678",
            "ㅋㅋㅋ ㅠㅠ",
            "\u{0}\u{FEFF}",
        ] {
            assert!(k.extract(t).is_empty(), "{t:?}");
        }
        assert_eq!(k.keyword(""), None);
        assert_eq!(k.keyword("카드 한도"), None);
    }

    #[test]
    fn long_texts_give_every_keyword() {
        // Speed is measured in benchmarks, not asserted here; this checks the counts.
        let k = Keywords::new(&[]);
        let sentence = "카드 한도가 너무 낮아서 변경했는데요. ";
        let one_mb = sentence.repeat((1 << 20) / sentence.len() + 1);
        let n1 = k.extract(&one_mb).len();
        let n2 = k.extract(&one_mb.repeat(2)).len();
        assert_eq!(n2, 2 * n1);
        assert!(n1 > 50_000, "{n1}");
        // One 1 MB word, and a text of runaway words, are cheap and give nothing.
        assert!(k.extract(&"가".repeat(350_000)).is_empty());
        assert!(k.extract(&"한도가".repeat(20).repeat(1000)).is_empty());
    }
}
