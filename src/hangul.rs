//! Hangul arithmetic for the whole firmware: precomposed syllables and conjoining jamo.
//!
//! A precomposed syllable (U+AC00..U+D7A3) is `0xAC00 + (initial * 21 + vowel) * 28 +
//! final`. The syllable helpers ([`parts`], [`compose`], [`with_final`], ...) are what the
//! keyword stemmer conjugates with ([`crate::insights::keywords`]); the jamo helpers are
//! the recogniser's.
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

/// Final-consonant indices (0 is none).
pub const FINAL_N: u32 = 4;
pub const FINAL_L: u32 = 8;
pub const FINAL_B: u32 = 17;
pub const FINAL_SS: u32 = 20;
/// Vowel indices.
pub const V_A: u32 = 0;
pub const V_EO: u32 = 4;
pub const V_YEO: u32 = 6;
pub const V_O: u32 = 8;
pub const V_WA: u32 = 9;
pub const V_WAE: u32 = 10;
pub const V_OE: u32 = 11;
pub const V_U: u32 = 13;
pub const V_WO: u32 = 14;
pub const V_EU: u32 = 18;
pub const V_I: u32 = 20;
/// Initial-consonant indices.
pub const INITIAL_IEUNG: u32 = 11;
pub const INITIAL_RIEUL: u32 = 5;

/// Whether `c` is a precomposed Hangul syllable.
pub fn is_syllable(c: char) -> bool {
    (S_BASE..S_BASE + L_COUNT * V_COUNT * T_COUNT).contains(&(c as u32))
}

/// (initial, vowel, final) of a syllable.
pub fn parts(c: char) -> Option<(u32, u32, u32)> {
    let i = (c as u32).checked_sub(S_BASE).filter(|_| is_syllable(c))?;
    Some((
        i / (V_COUNT * T_COUNT),
        (i % (V_COUNT * T_COUNT)) / T_COUNT,
        i % T_COUNT,
    ))
}

/// The syllable of `initial`, `vowel` and `fin` (indices in range).
pub fn compose(initial: u32, vowel: u32, fin: u32) -> char {
    char::from_u32(S_BASE + (initial * V_COUNT + vowel) * T_COUNT + fin).expect("a Hangul syllable")
}

/// Syllable `c` with its final consonant replaced by `fin`.
pub fn with_final(c: char, fin: u32) -> char {
    let (i, v, _) = parts(c).expect("a Hangul syllable");
    compose(i, v, fin)
}

/// The final-consonant index of a syllable (0: none); `None` for anything else.
pub fn final_consonant(c: char) -> Option<u32> {
    parts(c).map(|(_, _, f)| f)
}

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
            out.push(compose(l, v, t.unwrap_or(0)));
            i += if t.is_some() { 3 } else { 2 };
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// [`compose_jamo`] for people to read: what a recogniser writes when it misses a jamo.
/// A vowel without a leading consonant takes the silent ᄋ (which is how a vowel-initial
/// syllable is written, and the one consonant that is not heard); a trailing consonant
/// right after an open syllable closes it; a consonant that still belongs to no
/// syllable is dropped, since a lone jamo is no Korean word. Other text is kept.
pub fn compose_jamo_readable(text: &str) -> String {
    const SILENT_L: u32 = 11; // ᄋ
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let syllable = |l: u32, v: u32, next: Option<char>| {
            let t = next.and_then(trailing);
            (compose(l, v, t.unwrap_or(0)), t.is_some())
        };
        if let (Some(l), Some(v)) = (leading(c), chars.get(i + 1).copied().and_then(vowel)) {
            let (s, closed) = syllable(l, v, chars.get(i + 2).copied());
            out.push(s);
            i += if closed { 3 } else { 2 };
        } else if let Some(v) = vowel(c) {
            let (s, closed) = syllable(SILENT_L, v, chars.get(i + 1).copied());
            out.push(s);
            i += if closed { 2 } else { 1 };
        } else if let Some(t) = trailing(c) {
            let open = out
                .chars()
                .last()
                .filter(|&p| final_consonant(p) == Some(0));
            if let Some(p) = open {
                out.pop();
                out.push(with_final(p, t));
            }
            i += 1;
        } else if leading(c).is_some() {
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    // Dropped jamo may leave doubled or edge spaces.
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits precomposed syllables into conjoining jamo: the inverse of [`compose_jamo`],
/// used to build jamo transcripts for training.
pub fn decompose_jamo(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for c in text.chars() {
        if let Some((l, v, t)) = parts(c) {
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

    #[test]
    fn readable_composition_repairs_or_drops_stray_jamo() {
        // Whole syllables compose as compose_jamo does.
        let s = "카드 한도가 3백만 원, OK";
        assert_eq!(compose_jamo_readable(&decompose_jamo(s)), s);
        // A lone vowel takes the silent ᄋ: ᅭ -> 요, ᅡ ᆫ -> 안.
        assert_eq!(compose_jamo_readable("\u{116D}"), "요");
        assert_eq!(compose_jamo_readable("\u{1161}\u{11AB}"), "안");
        // A stray trailing consonant closes the open syllable before it: 하 + ᆸ -> 합.
        assert_eq!(
            compose_jamo_readable("\u{1112}\u{1161}\u{11B8}\u{11B8}\u{1102}\u{1175}"),
            "합니"
        );
        // One after a space, or after a closed syllable, is dropped, as is a consonant
        // without a vowel; the spaces it leaves collapse.
        assert_eq!(compose_jamo_readable("네 \u{11B8} 감사\u{1100}"), "네 감사");
        assert_eq!(
            compose_jamo_readable("\u{1100}\u{1161}\u{11A8}\u{11A8}"),
            "각"
        );
        assert_eq!(compose_jamo_readable("\u{1100} 네"), "네");
    }
}
