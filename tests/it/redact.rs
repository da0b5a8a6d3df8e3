//! PII redaction measured on a set of call-centre sentences written for this test: 150
//! with personal data (phone, card, resident registration and account numbers, e-mail
//! addresses; written, spoken as Korean digits, or mixed) and 100 without (amounts,
//! dates, times, plan names, words made of digit syllables such as 오이 or 이사).
//! Recall must reach 99%; false positives are counted and bounded.

use crate::support::Rng;
use sangdam::redact::{redact, Pii};

const SPOKEN: [&str; 10] = ["공", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"];

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

/// A number's groups in one of the ways people say or type them.
fn render(rng: &mut Rng, groups: &[String]) -> String {
    let spoken = |g: &str| -> String {
        g.chars()
            .map(|c| SPOKEN[c.to_digit(10).unwrap() as usize])
            .collect()
    };
    match rng.below(6) {
        0 => groups.join("-"),
        1 => groups.join(" "),
        2 => groups.concat(),
        3 => groups
            .iter()
            .map(|g| spoken(g))
            .collect::<Vec<_>>()
            .join(" "),
        4 => groups.join(" 다시 "),
        _ => groups
            .iter()
            .enumerate()
            .map(|(i, g)| if i % 2 == 0 { spoken(g) } else { g.clone() })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn pii(rng: &mut Rng, kind: u64) -> (String, Pii) {
    match kind {
        0 => {
            let g = vec![
                format!("01{}", rng.below(10)),
                digits(rng, 4),
                digits(rng, 4),
            ];
            (render(rng, &g), Pii::PhoneNumber)
        }
        1 => {
            let g = vec![
                digits(rng, 4),
                digits(rng, 4),
                digits(rng, 4),
                digits(rng, 4),
            ];
            (render(rng, &g), Pii::CardNumber)
        }
        2 => {
            let g = vec![
                format!(
                    "{:02}{:02}{:02}",
                    60 + rng.below(40),
                    1 + rng.below(12),
                    1 + rng.below(28)
                ),
                format!("{}{}", 1 + rng.below(4), digits(rng, 6)),
            ];
            (render(rng, &g), Pii::ResidentNumber)
        }
        3 => {
            let g = vec![digits(rng, 3), digits(rng, 3), digits(rng, 6)];
            (render(rng, &g), Pii::AccountNumber)
        }
        _ => {
            let user = ["hong", "kim.minji", "lee_97", "park2024", "choi.s"][rng.below(5) as usize];
            let host = ["naver.com", "gmail.com", "daum.net", "kakao.com"][rng.below(4) as usize];
            let text = if rng.below(2) == 0 {
                format!("{user}@{host}")
            } else {
                let (h, tld) = host.split_once('.').unwrap();
                format!("{user} 골뱅이 {h} 점 {tld}")
            };
            (text, Pii::Email)
        }
    }
}

const WITH: &[&str] = &[
    "제 번호는 {}이에요",
    "연락처는 {} 입니다",
    "{}로 문자 보내 주세요",
    "네 {} 맞습니다",
    "혹시 {} 로 확인 가능할까요",
    "아 그게 {}요",
    "등록된 정보가 {} 인데요",
    "{} 이걸로 변경해 주세요",
];

const WITHOUT: &[&str] = &[
    "카드 한도가 {a}원이에요",
    "{m}월 {d}일에 결제됐는데요",
    "{h}시 {mi}분쯤 전화했어요",
    "이번 달 요금이 {k}만원 나왔어요",
    "{y}년 약정이 남았대요",
    "5G 요금제로 바꾸고 싶어요",
    "오이 사이 구이 이사 일이 많네요",
    "카드 뒷자리 {l} 맞아요",
    "포인트가 {p}점 적립됐어요",
    "{n}개월 할부로 해 주세요",
    "이십만 원 정도예요",
    "상담원 {s}번으로 연결해 주세요",
    "삼 개월 전에 가입했어요",
    "오늘 일이 많아서 구일에 갈게요",
    "2024년 {m}월부터 {m}월까지요",
    "사이즈가 이십오 센티예요",
];

#[test]
fn recall_and_false_positives_on_the_test_set() {
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut found = 0usize;
    let mut right_tag = 0usize;
    let mut total = 0usize;
    let mut misses = Vec::new();
    for k in 0..150u64 {
        let (value, kind) = pii(&mut rng, k % 5);
        let sentence = WITH[rng.below(WITH.len() as u64) as usize].replace("{}", &value);
        let r = redact(&sentence);
        total += 1;
        let gone = !r.text.contains(&value)
            && r.text.contains('[')
            && !value
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|part| part.len() >= 3 && r.text.contains(part));
        if gone {
            found += 1;
            if r.found.contains(&kind) {
                right_tag += 1;
            }
        } else {
            misses.push(format!("{sentence} -> {}", r.text));
        }
    }
    let mut fp = 0usize;
    let mut negatives = 0usize;
    let mut false_hits = Vec::new();
    for k in 0..100u64 {
        let t = WITHOUT[(k as usize) % WITHOUT.len()]
            .replace(
                "{a}",
                &format!("{},{:03},000", 1 + rng.below(9), rng.below(1000)),
            )
            .replace("{m}", &(1 + rng.below(12)).to_string())
            .replace("{d}", &(1 + rng.below(28)).to_string())
            .replace("{h}", &(1 + rng.below(12)).to_string())
            .replace("{mi}", &(rng.below(60)).to_string())
            .replace("{k}", &(1 + rng.below(30)).to_string())
            .replace("{y}", &(1 + rng.below(3)).to_string())
            .replace("{l}", &digits(&mut rng, 4))
            .replace("{p}", &(100 + rng.below(9000)).to_string())
            .replace("{n}", &(2 + rng.below(22)).to_string())
            .replace("{s}", &(1 + rng.below(9)).to_string());
        negatives += 1;
        let r = redact(&t);
        if r.text != t {
            fp += 1;
            false_hits.push(format!("{t} -> {}", r.text));
        }
    }
    let recall = found as f64 / total as f64;
    eprintln!(
        "PII recall {found}/{total} = {:.1}% (right kind {right_tag}); false positives {fp}/{negatives}",
        recall * 100.0
    );
    for m in &misses {
        eprintln!("missed: {m}");
    }
    for f in &false_hits {
        eprintln!("false positive: {f}");
    }
    assert!(total + negatives >= 200);
    assert!(recall >= 0.99, "recall {recall}");
    assert!(
        fp * 100 <= negatives * 2,
        "{fp} false positives of {negatives}"
    );
}
