//! Korean keywords: tokens with particles and endings stripped, stop words removed.
//!
//! No Korean morphological analyser builds offline here (lindera's dictionary downloads
//! at build time; mecab would add a C library and a 50 MB dictionary to the box), so
//! this is a rule-based stripper, pinned by `tests/data/keywords-ko.tsv`. For each word
//! (after NFC, split on anything but Hangul, ASCII letters and digits), in order:
//!
//! 1. stop words (the shipped ranks.nl list, [`FILLERS`], the config's extra list) and
//!    numbers (`12월`, `3000원`) are not keywords; a word that starts with Latin letters
//!    gives its ASCII part lowercased (`LTE로` → `lte`, `5G` → `5g`);
//! 2. a noun + light verb (`하다`, `되다`, `받다`, `드리다`, `시키다`) gives the noun
//!    when it has two syllables or more (`변경했는데` → `변경`, `친절하게` → `친절`);
//!    a one-syllable root before `하다` is an adjective (`편하고`) and no keyword;
//! 3. a noun + copula (`입니다`, `예요`, `인데` …) gives the noun (`카드예요` → `카드`);
//! 4. other predicates (`좋아요`, `되나요`) are not keywords: they carry sentiment, not
//!    topics, and the sentiment model reads them already;
//! 5. one particle is stripped, longest first, when it agrees with the noun: `이 을 은
//!    과 으로` only after a final consonant, `가 를 는 와 로 랑` only after a vowel, so
//!    `사과` and `나이` keep their last syllable; one-syllable particles that agree with
//!    anything (`의 에 도 만 요`) need a stem of two syllables, so `회의` stays whole;
//! 6. an honorific `분` after `…원` goes (`상담원분` → `상담원`).

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;

/// The ranks.nl Korean stop-word list (MIT; see data/stopwords-ko).
pub const RANKS_NL: &str = include_str!("../../data/stopwords-ko/ranksnl-korean.txt");

/// Call-centre fillers, greetings and intensifiers that the ranks.nl list lacks.
pub const FILLERS: &[&str] = &[
    "네",
    "예",
    "아니요",
    "아니오",
    "여보세요",
    "안녕하세요",
    "안녕히",
    "감사합니다",
    "고맙습니다",
    "죄송합니다",
    "고객님",
    "너무",
    "정말",
    "진짜",
    "아주",
    "많이",
    "조금",
    "그냥",
    "혹시",
    "지금",
    "오늘",
    "어제",
    "내일",
    "이번",
    "다음",
    "근데",
    "그럼",
    "그래서",
    "하지만",
    "이거",
    "저거",
    "그거",
    "뭐",
    "안",
    "못",
    "수",
    "거",
    "더",
    "다",
    "잘",
    "주세요",
    "있어요",
    "없어요",
    "있는데",
    "없는데",
    "같아요",
    "같은",
    "있는",
    "없는",
    "하는",
    "되는",
    "언제",
    "얼마",
    "계속",
    "벌써",
    "아직",
    "이제",
    "한번",
    "다시",
    "돼요",
    "되요",
    "이렇게",
    "그렇게",
    "저렇게",
    "어떻게요",
    "왜요",
];

/// Light verbs after a noun: `변경` + `했는데`.
const LIGHT_VERBS: &[&str] = &[
    "하려는데",
    "하려고요",
    "했습니다",
    "했는데요",
    "해주세요",
    "되었어요",
    "됐는데요",
    "받았는데",
    "받았어요",
    "드립니다",
    "드렸는데",
    "시켰는데",
    "합니다",
    "했는데",
    "했어요",
    "하려고",
    "하는데",
    "해서요",
    "됐어요",
    "됐는데",
    "되나요",
    "드려요",
    "드리고",
    "드려서",
    "받고요",
    "했고",
    "했다",
    "해서",
    "해요",
    "하고",
    "하는",
    "하면",
    "하게",
    "하기",
    "하다",
    "해줘",
    "돼요",
    "되는",
    "되고",
    "받고",
    "받은",
    "받을",
    "시켜",
    "해",
    "한",
    "할",
    "된",
    "될",
];

/// Copula endings after a noun: `카드` + `예요`.
const COPULAS: &[&str] = &[
    "이었는데",
    "이었어요",
    "이었습니다",
    "였는데",
    "였어요",
    "입니다",
    "이에요",
    "인데요",
    "이라서",
    "이라고",
    "이지만",
    "이네요",
    "예요",
    "인데",
    "라서",
    "라고",
    "이고",
    "이죠",
    "이야",
    "였다",
    "이다",
];

/// Endings of predicates that are not noun + light verb.
const PREDICATES: &[&str] = &[
    "습니다",
    "았어요",
    "었어요",
    "였어요",
    "겠어요",
    "거든요",
    "잖아요",
    "는데요",
    "을까요",
    "아요",
    "어요",
    "워요",
    "와요",
    "여요",
    "네요",
    "나요",
    "세요",
    "지만",
    "군요",
    "았다",
    "었다",
    "셔서",
    "어서",
    "아서",
    "니까",
    "라서",
    "다니",
    "는지",
    "죠",
];

#[derive(Clone, Copy, PartialEq)]
enum After {
    Consonant,
    Vowel,
    /// Also after ㄹ (`로`).
    VowelOrRieul,
    Any,
}

/// Particles, longest first within the table's order of use.
const PARTICLES: &[(&str, After)] = &[
    ("에서부터", After::Any),
    ("으로부터", After::Consonant),
    ("에게서는", After::Any),
    ("로부터", After::VowelOrRieul),
    ("에게서", After::Any),
    ("한테서", After::Any),
    ("에서는", After::Any),
    ("에서도", After::Any),
    ("에서만", After::Any),
    ("에서의", After::Any),
    ("으로는", After::Consonant),
    ("으로도", After::Consonant),
    ("으로만", After::Consonant),
    ("에게는", After::Any),
    ("에게도", After::Any),
    ("까지는", After::Any),
    ("까지도", After::Any),
    ("까지만", After::Any),
    ("부터는", After::Any),
    ("보다는", After::Any),
    ("이랑은", After::Consonant),
    ("에서", After::Any),
    ("으로", After::Consonant),
    ("에게", After::Any),
    ("한테", After::Any),
    ("께서", After::Any),
    ("까지", After::Any),
    ("부터", After::Any),
    ("보다", After::Any),
    ("처럼", After::Any),
    ("마저", After::Any),
    ("조차", After::Any),
    ("이랑", After::Consonant),
    ("이나", After::Consonant),
    ("에는", After::Any),
    ("에도", After::Any),
    ("에만", After::Any),
    ("로는", After::VowelOrRieul),
    ("로도", After::VowelOrRieul),
    ("로만", After::VowelOrRieul),
    ("은", After::Consonant),
    ("이", After::Consonant),
    ("을", After::Consonant),
    ("과", After::Consonant),
    ("는", After::Vowel),
    ("가", After::Vowel),
    ("를", After::Vowel),
    ("와", After::Vowel),
    ("랑", After::Vowel),
    ("로", After::VowelOrRieul),
    ("의", After::Any),
    ("에", After::Any),
    ("도", After::Any),
    ("만", After::Any),
    ("요", After::Any),
    ("께", After::Any),
];

fn is_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// The final consonant index of a syllable (0: none, 8: ㄹ).
fn final_consonant(c: char) -> Option<u32> {
    is_syllable(c).then(|| (c as u32 - 0xAC00) % 28)
}

fn agrees(stem: &str, after: After) -> bool {
    let Some(last) = stem.chars().last() else {
        return false;
    };
    let Some(f) = final_consonant(last) else {
        return false;
    };
    match after {
        After::Consonant => f != 0,
        After::Vowel => f == 0,
        After::VowelOrRieul => f == 0 || f == 8,
        After::Any => true,
    }
}

fn syllables(s: &str) -> usize {
    s.chars().filter(|&c| is_syllable(c)).count()
}

/// The keyword extractor: stop words loaded once.
#[derive(Debug, Clone)]
pub struct Keywords {
    stop: HashSet<String>,
}

impl Keywords {
    /// The shipped stop-word list and [`FILLERS`], plus `extra` (user words from the
    /// config).
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
            .collect();
        Keywords { stop }
    }

    pub fn is_stopword(&self, w: &str) -> bool {
        self.stop.contains(w)
    }

    /// Keywords of one text, in order of appearance, repeats kept.
    pub fn extract(&self, text: &str) -> Vec<String> {
        let text: String = text.nfc().collect();
        text.split(|c: char| !(is_syllable(c) || c.is_ascii_alphanumeric()))
            .filter(|w| !w.is_empty())
            .filter_map(|w| self.keyword(w))
            .collect()
    }

    /// The keyword of one word form, or None if it is not one.
    pub fn keyword(&self, word: &str) -> Option<String> {
        let word: String = word.nfc().collect();
        let word = word.as_str();
        if word.is_empty() || self.is_stopword(word) {
            return None;
        }
        let first = word.chars().next()?;
        if first.is_ascii_digit() {
            // Numbers, amounts and dates are not topics; "5G" is.
            let ascii: String = word
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            return ascii
                .chars()
                .any(|c| c.is_ascii_alphabetic())
                .then(|| ascii.to_ascii_lowercase());
        }
        if first.is_ascii_alphabetic() {
            let ascii: String = word
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            return (ascii.len() >= 2 && !self.is_stopword(&ascii)).then_some(ascii);
        }
        if !word.chars().all(is_syllable) {
            return None;
        }
        let stem = self.stem(word)?;
        let stem = match stem.strip_suffix('분') {
            Some(s) if s.ends_with('원') && syllables(s) >= 2 => s.to_owned(),
            _ => stem,
        };
        (!stem.is_empty() && !self.is_stopword(&stem)).then_some(stem)
    }

    fn stem(&self, word: &str) -> Option<String> {
        for lv in LIGHT_VERBS {
            if let Some(noun) = word.strip_suffix(lv) {
                match syllables(noun) {
                    0 => {}
                    // 편하고, 착해서: a one-syllable root is an adjective, not a topic.
                    1 if lv.starts_with('하') || lv.starts_with('해') || lv.starts_with('했') => {
                        return None
                    }
                    1 => {}
                    _ => return Some(noun.to_owned()),
                }
            }
        }
        for cop in COPULAS {
            if let Some(noun) = word.strip_suffix(cop) {
                let needs_vowel =
                    cop.starts_with('예') || cop.starts_with('라') || cop.starts_with('였');
                if !noun.is_empty() && (!needs_vowel || agrees(noun, After::Vowel)) {
                    return Some(noun.to_owned());
                }
            }
        }
        if PREDICATES.iter().any(|p| word.ends_with(p) && word != *p) {
            return None;
        }
        for (p, after) in PARTICLES {
            if let Some(noun) = word.strip_suffix(p) {
                if noun.is_empty() || !agrees(noun, *after) {
                    continue;
                }
                if *after == After::Any && p.chars().count() == 1 && syllables(noun) < 2 {
                    continue;
                }
                return Some(noun.to_owned());
            }
        }
        Some(word.to_owned())
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
        include_str!("../../tests/data/keywords-ko.tsv")
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
    }

    #[test]
    fn stop_words_extra_words_and_normal_forms() {
        let k = Keywords::new(&["포인트".to_string()]);
        assert!(k.extract("포인트가 그리고 네 정말").is_empty());
        let nfd: String = "카드가".nfd().collect();
        assert_eq!(Keywords::new(&[]).extract(&nfd), ["카드"]);
    }

    #[test]
    fn degenerate_texts() {
        let k = Keywords::new(&[]);
        for t in ["", "   ", "😀😀", "!!!???", "12 34 5678"] {
            assert!(k.extract(t).is_empty(), "{t:?}");
        }
        let long = "카드 한도가 ".repeat(100_000);
        assert_eq!(k.extract(&long).len(), 200_000);
    }
}
