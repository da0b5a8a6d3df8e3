//! PII redaction of transcripts: resident registration numbers, card numbers, account
//! numbers, phone numbers and e-mail addresses, written or spoken.
//!
//! Transcripts come from speech, so numbers arrive as Korean digit words as often as in
//! digits: `공일공 일이삼사 오육칠팔`, `010 다시 1234 다시 5678`, `공일공에 1234에 5678`.
//! The redactor works on whitespace-separated words:
//!
//! 1. Each word is read as a number part when, after one trailing particle (`이에요`,
//!    `입니다`, `이고`, `에`, `요` …), it is made only of digits (ASCII, or the Sino-Korean
//!    digit syllables 공/영 일 이 삼 사 오 육/륙 칠 팔 구) and `-` or `.`. `다시`
//!    (what Koreans say for a hyphen) and a lone `-` join parts.
//! 2. Consecutive parts form a run. A run of 9 digits or more is personal data; so is
//!    a run of 7-8 digits in two groups or more (a local phone number), unless a unit
//!    follows (원, 개, 명 …). Shorter runs (amounts, dates, `오이`, `이사`) are left alone.
//!    Amounts written with commas (`1,500,000원`) are not number parts.
//! 3. The run is replaced by a tag chosen by its shape: `[주민등록번호]` (13 digits, 6 +
//!    7), `[카드번호]` (15-16), `[전화번호]` (0-prefixed 9-11, 7-8 in groups),
//!    `[계좌번호]` (other 10-14), `[번호]` (anything else that long). The last word's
//!    particle stays.
//! 4. E-mail addresses, written (`hong@naver.com`) or spoken (`hong 골뱅이 naver 점 com`),
//!    become `[이메일]`.
//!
//! The goal is recall (nothing personal leaves the box or reaches the store); the test
//! set in `tests/data` measures it and the false positives.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pii {
    ResidentNumber,
    CardNumber,
    PhoneNumber,
    AccountNumber,
    OtherNumber,
    Email,
}

impl Pii {
    pub fn tag(&self) -> &'static str {
        match self {
            Pii::ResidentNumber => "[주민등록번호]",
            Pii::CardNumber => "[카드번호]",
            Pii::PhoneNumber => "[전화번호]",
            Pii::AccountNumber => "[계좌번호]",
            Pii::OtherNumber => "[번호]",
            Pii::Email => "[이메일]",
        }
    }
}

/// A redacted text and what was found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub text: String,
    pub found: Vec<Pii>,
}

/// Particles and copulas that may follow a number, longest first.
const TRAILERS: &[&str] = &[
    "이었어요",
    "이에요",
    "이예요",
    "입니다",
    "이라고",
    "이고요",
    "이구요",
    "이었고",
    "예요",
    "이요",
    "이고",
    "이랑",
    "으로",
    "번이요",
    "번이고",
    "번",
    "에요",
    "에서",
    "이며",
    "이니",
    "이다",
    "는",
    "은",
    "가",
    "을",
    "를",
    "로",
    "에",
    "요",
    "고",
    "이",
    "과",
    "와",
    "도",
    "만",
];

/// Units after which a short number is a quantity, not an identifier.
const UNITS: &[&str] = &[
    "원",
    "만원",
    "천원",
    "달러",
    "개",
    "명",
    "건",
    "회",
    "번째",
    "년",
    "월",
    "일",
    "시",
    "분",
    "초",
    "점",
    "퍼센트",
    "프로",
    "살",
    "개월",
    "주",
    "박",
];

fn digit_of(c: char) -> Option<char> {
    Some(match c {
        '0'..='9' => c,
        '공' | '영' => '0',
        '일' => '1',
        '이' => '2',
        '삼' => '3',
        '사' => '4',
        '오' => '5',
        '육' | '륙' => '6',
        '칠' => '7',
        '팔' => '8',
        '구' => '9',
        _ => return None,
    })
}

/// A word read as a number part: its digits, the byte length of the number (the rest is
/// the trailer), its groups, and whether it was spoken (Korean digit syllables).
struct Part {
    digits: String,
    number_len: usize,
    groups: usize,
    spoken: bool,
}

impl Part {
    /// Whether the run goes on after this word: no particle, or `에` (said between the
    /// groups of a phone number: 공일공에 일이삼사에 …).
    fn open(&self, word: &str) -> bool {
        matches!(&word[self.number_len..], "" | "에")
    }
}

fn number_part(word: &str) -> Option<Part> {
    let read = |core: &str| -> Option<Part> {
        if core.is_empty() || core.starts_with(['-', '.']) || core.ends_with(['-', '.']) {
            return None;
        }
        let mut digits = String::new();
        let mut groups = 1;
        for c in core.chars() {
            match c {
                '-' | '.' => groups += 1,
                c => digits.push(digit_of(c)?),
            }
        }
        Some(Part {
            digits,
            number_len: core.len(),
            groups,
            spoken: !core.is_ascii(),
        })
    };
    if let Some(p) = read(word) {
        return Some(p);
    }
    for t in TRAILERS {
        if let Some(core) = word.strip_suffix(t) {
            // One digit syllable before a particle is a word (이에요, 사는), not a number.
            if core.chars().count() == 1 && !core.is_ascii() {
                continue;
            }
            if let Some(p) = read(core) {
                return Some(p);
            }
        }
    }
    None
}

fn is_joiner(word: &str) -> bool {
    matches!(word, "다시" | "-" | "–" | "대시" | "하이픈")
}

fn classify(digits: &str, groups: usize, first_group: usize) -> Pii {
    let n = digits.len();
    if n == 13 && (first_group == 6 || groups == 1) {
        Pii::ResidentNumber
    } else if n == 15 || n == 16 {
        Pii::CardNumber
    } else if (digits.starts_with('0') && (9..=11).contains(&n)) || n <= 8 {
        Pii::PhoneNumber
    } else if (10..=14).contains(&n) {
        Pii::AccountNumber
    } else {
        Pii::OtherNumber
    }
}

/// Words with their byte ranges.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

fn is_email_word(w: &str) -> bool {
    let Some((user, host)) = w.split_once('@') else {
        return false;
    };
    !user.is_empty() && host.contains('.') && !host.starts_with('.')
}

fn latinish(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

/// Redacts `text`.
pub fn redact(text: &str) -> Redacted {
    let ws = words(text);
    let w = |i: usize| &text[ws[i].0..ws[i].1];
    // Replacements: (byte start, byte end, tag).
    let mut cuts: Vec<(usize, usize, Pii)> = Vec::new();
    let mut i = 0;
    while i < ws.len() {
        // Written e-mail, possibly with a particle after it.
        if w(i).contains('@') {
            let word = w(i);
            let end = word
                .char_indices()
                .find(|&(k, c)| {
                    k > word.find('@').unwrap_or(0)
                        && !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@'))
                })
                .map(|(k, _)| k)
                .unwrap_or(word.len());
            let addr = word[..end].trim_end_matches('.');
            if is_email_word(addr) {
                cuts.push((ws[i].0, ws[i].0 + addr.len(), Pii::Email));
                i += 1;
                continue;
            }
        }
        // Spoken e-mail: user 골뱅이 host (점|닷|dot) tld.
        if latinish(w(i)) && i + 2 < ws.len() && matches!(w(i + 1), "골뱅이" | "at" | "앳") {
            let mut j = i + 2;
            while j + 2 < ws.len() && matches!(w(j + 1), "점" | "닷" | "dot" | ".") {
                j += 2;
            }
            let mut end = ws[j].1;
            // Keep a particle glued to the last part.
            let last = w(j);
            let glued = last
                .char_indices()
                .find(|&(_, c)| !c.is_ascii_alphanumeric())
                .map(|(k, _)| k);
            if let Some(k) = glued {
                end = ws[j].0 + k;
            }
            cuts.push((ws[i].0, end, Pii::Email));
            i = j + 1;
            continue;
        }
        // Number runs.
        let Some(first) = number_part(w(i)) else {
            i += 1;
            continue;
        };
        let mut digits = first.digits.clone();
        let mut groups = first.groups;
        let first_group = if first.groups == 1 {
            first.digits.len()
        } else {
            w(i).split(['-', '.'])
                .next()
                .map(|g| g.chars().count())
                .unwrap_or(0)
        };
        let mut last = i;
        let mut last_len = first.number_len;
        let mut j = i + 1;
        // A part with a trailer ends the run (the particle closes the number).
        let mut open = first.open(w(i));
        // Spoken runs made of short words only (오이 사이 구이 이사) are ordinary speech
        // unless a zero (공, 영) is said: numbers are read in groups of three or four.
        let mut spoken_only = first.spoken;
        let mut longest = first.digits.len();
        let mut zero = first.spoken && first.digits.contains('0');
        while open && j < ws.len() {
            let k = if is_joiner(w(j)) && j + 1 < ws.len() {
                j + 1
            } else {
                j
            };
            match number_part(w(k)) {
                Some(p) => {
                    digits.push_str(&p.digits);
                    groups += p.groups;
                    open = p.open(w(k));
                    spoken_only &= p.spoken;
                    longest = longest.max(p.digits.len());
                    zero |= p.spoken && p.digits.contains('0');
                    last = k;
                    last_len = p.number_len;
                    j = k + 1;
                }
                None => break,
            }
        }
        let n = digits.len();
        let next_word = if last + 1 < ws.len() { w(last + 1) } else { "" };
        let trailer = &w(last)[last_len..];
        let unit = UNITS
            .iter()
            .any(|u| next_word.starts_with(u) || trailer.starts_with(u));
        let speechlike = spoken_only && longest < 3 && !zero;
        let pii = !speechlike && (n >= 9 || ((7..=8).contains(&n) && groups >= 2 && !unit));
        if pii {
            cuts.push((
                ws[i].0,
                ws[last].0 + last_len,
                classify(&digits, groups, first_group),
            ));
        }
        i = last + 1;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut found = Vec::new();
    for (s, e, p) in cuts {
        out.push_str(&text[at..s]);
        out.push_str(p.tag());
        found.push(p);
        at = e;
    }
    out.push_str(&text[at..]);
    Redacted { text: out, found }
}

/// `[privacy]` in the config file: what is taken out of transcripts before they are
/// stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    pub redact_transcripts: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            redact_transcripts: true,
        }
    }
}

/// Documentation of `[privacy]` and its fields, printed above them by
/// `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("privacy", "Personal data in transcripts."),
    ("privacy.redact_transcripts", "Replace resident registration, card, account and phone numbers and e-mail addresses (written or spoken as Korean digits) with tags such as [전화번호] before transcripts are stored. On by default."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_spoken_numbers() {
        let cases = [
            (
                "제 번호는 010-1234-5678이에요",
                "제 번호는 [전화번호]이에요",
            ),
            (
                "공일공 일이삼사 오육칠팔로 연락 주세요",
                "[전화번호]로 연락 주세요",
            ),
            ("010 다시 1234 다시 5678", "[전화번호]"),
            (
                "주민번호는 900101-1234567 입니다",
                "주민번호는 [주민등록번호] 입니다",
            ),
            (
                "카드 번호 1234 5678 9012 3456 맞나요",
                "카드 번호 [카드번호] 맞나요",
            ),
            ("계좌는 110-234-567890 이에요", "계좌는 [계좌번호] 이에요"),
            (
                "메일은 hong.gildong@naver.com 입니다",
                "메일은 [이메일] 입니다",
            ),
            (
                "hong 골뱅이 naver 점 com 으로 보내 주세요",
                "[이메일] 으로 보내 주세요",
            ),
            ("02-345-6789로 전화했어요", "[전화번호]로 전화했어요"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input).text, want, "{input}");
        }
    }

    #[test]
    fn ordinary_numbers_and_words_stay() {
        for t in [
            "오이 사이 구이 이사 일이 많아요",
            "12월 25일 3시 30분에 방문했어요",
            "한도가 1,500,000원이에요",
            "카드 뒷자리 1234 맞아요",
            "5G 요금제 2년 약정",
            "이십만 원 결제했어요",
            "1577-1234 상담센터",
        ] {
            let r = redact(t);
            if t.starts_with("1577") {
                // Eight digits in two groups: a phone number (a call centre's).
                assert_eq!(r.found, vec![Pii::PhoneNumber]);
            } else {
                assert_eq!(r.text, t, "changed: {t}");
            }
        }
    }
}
