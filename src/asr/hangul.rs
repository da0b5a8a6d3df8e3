//! Hangul jamo composition for jamo vocabularies.
//!
//! A model trained on a jamo vocabulary (68 conjoining jamo instead of ~2,000
//! syllables; see `sangdam-host corpus index --jamo`) emits leading consonants, vowels
//! and trailing consonants from the U+1100 block. [`compose_jamo`] turns a run of them
//! back into precomposed syllables (U+AC00..U+D7A3), as Unicode's canonical composition
//! does, and leaves everything else alone; a syllable-vocabulary transcript passes
//! through unchanged.

const L_BASE: u32 = 0x1100;
const V_BASE: u32 = 0x1161;
const T_BASE: u32 = 0x11A7;
const S_BASE: u32 = 0xAC00;
const L_COUNT: u32 = 19;
const V_COUNT: u32 = 21;
const T_COUNT: u32 = 28;

fn leading(c: char) -> Option<u32> {
    (c as u32).checked_sub(L_BASE).filter(|&i| i < L_COUNT)
}

fn vowel(c: char) -> Option<u32> {
    (c as u32).checked_sub(V_BASE).filter(|&i| i < V_COUNT)
}

fn trailing(c: char) -> Option<u32> {
    (c as u32)
        .checked_sub(T_BASE)
        .filter(|&i| i > 0 && i < T_COUNT)
}

/// Composes leading + vowel (+ trailing) conjoining jamo into syllables. A jamo that
/// cannot start or finish a syllable (a vowel without a consonant, say) is kept as is.
pub fn compose_jamo(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let (Some(l), Some(v)) = (leading(chars[i]), chars.get(i + 1).copied().and_then(vowel)) {
            let t = chars.get(i + 2).copied().and_then(trailing);
            let s = S_BASE + (l * V_COUNT + v) * T_COUNT + t.unwrap_or(0);
            out.extend(char::from_u32(s));
            i += if t.is_some() { 3 } else { 2 };
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Splits precomposed syllables into conjoining jamo: the inverse of [`compose_jamo`],
/// used to build jamo transcripts for training.
pub fn decompose_jamo(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for c in text.chars() {
        let u = c as u32;
        if (S_BASE..S_BASE + L_COUNT * V_COUNT * T_COUNT).contains(&u) {
            let s = u - S_BASE;
            let (l, v, t) = (
                s / (V_COUNT * T_COUNT),
                (s % (V_COUNT * T_COUNT)) / T_COUNT,
                s % T_COUNT,
            );
            out.extend(char::from_u32(L_BASE + l));
            out.extend(char::from_u32(V_BASE + v));
            if t > 0 {
                out.extend(char::from_u32(T_BASE + t));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_over_every_syllable() {
        let all: String = (S_BASE..S_BASE + 11_172)
            .filter_map(char::from_u32)
            .collect();
        let jamo = decompose_jamo(&all);
        assert!(jamo.chars().count() > all.chars().count() * 2);
        assert_eq!(compose_jamo(&jamo), all);
    }

    #[test]
    fn mixed_text_and_stray_jamo() {
        let s = "카드 한도가 3백만 원, OK";
        assert_eq!(compose_jamo(&decompose_jamo(s)), s);
        // A stray vowel, a lone consonant and a trailing consonant after a space stay.
        let odd = "\u{1161}\u{1100} \u{11A8}";
        assert_eq!(compose_jamo(odd), odd);
        // 한 = ᄒ ᅡ ᆫ; ᄒ ᅡ then ᄂ (a leading consonant) makes 하 + ᄂ.
        assert_eq!(compose_jamo("\u{1112}\u{1161}\u{11AB}"), "한");
        assert_eq!(compose_jamo("\u{1112}\u{1161}\u{1102}"), "하\u{1102}");
    }
}
