//! Sino-Korean numbers written as they are read, so that synthetic transcripts say
//! exactly what the speech synthesiser speaks (35000 → 삼만 오천).

const DIGITS: [&str; 10] = ["영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"];

/// Reads `n` (0 ..= 9,999,999,999,999) the Sino-Korean way: 만 groups, and no 일 before
/// 십, 백, 천 or a leading 만.
pub fn sino(n: u64) -> String {
    if n == 0 {
        return DIGITS[0].to_owned();
    }
    let groups = [
        (1_000_000_000_000u64, "조"),
        (100_000_000, "억"),
        (10_000, "만"),
        (1, ""),
    ];
    let mut out = Vec::new();
    let mut rest = n;
    for (unit, name) in groups {
        let g = rest / unit;
        rest %= unit;
        if g == 0 {
            continue;
        }
        let mut word = below_10000(g);
        if word == "일" && name == "만" {
            word.clear();
        }
        out.push(format!("{word}{name}"));
    }
    out.join(" ")
}

fn below_10000(n: u64) -> String {
    let mut s = String::new();
    for (unit, name) in [(1000u64, "천"), (100, "백"), (10, "십")] {
        let d = (n / unit) % 10;
        if d > 0 {
            if d > 1 {
                s.push_str(DIGITS[d as usize]);
            }
            s.push_str(name);
        }
    }
    let d = n % 10;
    if d > 0 {
        s.push_str(DIGITS[d as usize]);
    }
    s
}

/// A month as read: 유월 and 시월 drop the final consonant of 육 and 십.
pub fn month(m: u32) -> String {
    match m {
        6 => "유월".into(),
        10 => "시월".into(),
        _ => format!("{}월", sino(m as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_korean_speaker() {
        assert_eq!(sino(35_000), "삼만 오천");
        assert_eq!(sino(10_000), "만");
        assert_eq!(sino(11), "십일");
        assert_eq!(sino(1_250_000), "백이십오만");
        assert_eq!(sino(300_000_000), "삼억");
        assert_eq!(sino(1_001), "천일");
        assert_eq!(month(6), "유월");
        assert_eq!(month(10), "시월");
        assert_eq!(month(3), "삼월");
    }
}
