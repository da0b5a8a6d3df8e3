//! SVG charts with Korean text, drawn on the box without a plotting library: bars,
//! feature importance, a word cloud, the sentiment split and sentiment per day. Plain
//! data in, an `<svg>` string out; every text is escaped; empty data draws "no data".
//!
//! Colours are the Okabe-Ito palette (safe for colour-blind readers): negative
//! vermilion, positive blue. Text uses the Korean fonts that scripts/setup installs
//! (NanumGothic), with the usual CJK fallbacks.

use std::fmt::Write;

pub const NEGATIVE: &str = "#d55e00";
pub const POSITIVE: &str = "#0072b2";
pub const NEUTRAL: &str = "#999999";
pub const FONT: &str =
    "NanumGothic, 'Nanum Gothic', 'Noto Sans CJK KR', 'Noto Sans KR', sans-serif";

/// XML text escaping.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// A finite number for SVG attributes.
fn f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "0".into()
    }
}

fn open(width: u32, height: u32, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"{}\" role=\"img\"><title>{}</title><rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/><text x=\"8\" y=\"20\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\">{}</text>",
        esc(FONT),
        esc(title),
        esc(title)
    )
}

fn no_data(width: u32, height: u32, title: &str) -> String {
    let mut s = open(width, height, title);
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"14\" fill=\"#666\" text-anchor=\"middle\">no data</text></svg>",
        width / 2,
        height / 2 + 10
    );
    s
}

/// Rough rendered width of a text at `size` px: Hangul and other wide characters about
/// one em, the rest about 0.6 em.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| if (c as u32) >= 0x1100 { 1.0 } else { 0.6 })
        .sum::<f64>()
        * size
}

fn max_of(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|x| x.is_finite()).fold(0.0, f64::max)
}

/// Horizontal bars: label left, value right.
pub fn bar_chart(title: &str, items: &[(String, f64)], color: &str, width: u32) -> String {
    let row = 22.0;
    let height = (40.0 + row * items.len() as f64).max(80.0) as u32;
    if items.is_empty() {
        return no_data(width, 80, title);
    }
    let label_w =
        max_of(items.iter().map(|(l, _)| text_width(l, 13.0))).min(width as f64 * 0.4) + 16.0;
    let value_w = 60.0;
    let bar_max = (width as f64 - label_w - value_w).max(10.0);
    let top = max_of(items.iter().map(|(_, v)| *v)).max(1e-12);
    let mut s = open(width, height, title);
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let w = (v.max(0.0) / top * bar_max).max(1.0);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"end\" fill=\"#222\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#444\">{}</text>",
            f(label_w - 8.0),
            f(y + 14.0),
            esc(label),
            f(label_w),
            f(y + 3.0),
            f(w),
            f(row - 6.0),
            esc(color),
            f(label_w + w + 4.0),
            f(y + 14.0),
            esc(&trim_number(*v))
        );
    }
    s.push_str("</svg>");
    s
}

fn trim_number(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Importance bars coloured by direction (true: towards positive), with a legend.
pub fn importance_chart(title: &str, items: &[(String, f64, bool)], width: u32) -> String {
    if items.is_empty() {
        return no_data(width, 80, title);
    }
    let plain: Vec<(String, f64)> = items.iter().map(|(l, v, _)| (l.clone(), *v)).collect();
    // Draw as bars, then recolour each bar by its direction.
    let mut s = bar_chart(title, &plain, NEUTRAL, width);
    for (_, _, pos) in items {
        let c = if *pos { POSITIVE } else { NEGATIVE };
        s = s.replacen(&format!("fill=\"{NEUTRAL}\""), &format!("fill=\"{c}\""), 1);
    }
    let x = width.saturating_sub(250);
    let legend = format!(
        "<rect x=\"{x}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{NEGATIVE}\"/><text x=\"{}\" y=\"19\" font-size=\"12\">towards negative</text><rect x=\"{}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{POSITIVE}\"/><text x=\"{}\" y=\"19\" font-size=\"12\">towards positive</text></svg>",
        x + 16,
        x + 130,
        x + 146,
    );
    s.truncate(s.len() - "</svg>".len());
    s + &legend
}

/// A word cloud: heavier words bigger, placed on a spiral from the centre without
/// overlapping; words that do not fit are left out. Deterministic for a `seed`.
pub fn word_cloud(
    title: &str,
    words: &[(String, f64)],
    color: &str,
    width: u32,
    height: u32,
    seed: u64,
) -> String {
    let mut list: Vec<&(String, f64)> = words
        .iter()
        .filter(|(w, v)| !w.is_empty() && v.is_finite() && *v > 0.0)
        .collect();
    if list.is_empty() {
        return no_data(width, height, title);
    }
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    list.truncate(60);
    let top = list[0].1;
    let (w, h) = (width as f64, height as f64);
    let (cx, cy) = (w / 2.0, (h + 28.0) / 2.0);
    let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut s = open(width, height, title);
    let turn = 0.35 + (seed % 7) as f64 * 0.05;
    for (word, v) in list {
        let size = 12.0 + 30.0 * (v / top).sqrt();
        let bw = text_width(word, size);
        let bh = size * 1.1;
        let mut spot = None;
        for step in 0..1500 {
            let t = step as f64 * turn;
            let r = 2.0 * t;
            let x = cx + r * t.cos() - bw / 2.0;
            let y = cy + 0.6 * r * t.sin() - bh / 2.0;
            if x < 4.0 || y < 28.0 || x + bw > w - 4.0 || y + bh > h - 4.0 {
                if r > w.max(h) {
                    break;
                }
                continue;
            }
            let hit = placed
                .iter()
                .any(|&(px, py, pw, ph)| x < px + pw && px < x + bw && y < py + ph && py < y + bh);
            if !hit {
                spot = Some((x, y));
                break;
            }
        }
        if let Some((x, y)) = spot {
            placed.push((x, y, bw, bh));
            let opacity = 0.55 + 0.45 * (v / top);
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"{}\" fill-opacity=\"{}\">{}</text>",
                f(x),
                f(y + size * 0.9),
                f(size),
                esc(color),
                f(opacity.min(1.0)),
                esc(word)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Positive vs negative calls as one stacked bar with counts and percentages.
pub fn sentiment_distribution(title: &str, positive: u64, negative: u64, width: u32) -> String {
    let total = positive + negative;
    if total == 0 {
        return no_data(width, 110, title);
    }
    let inner = width as f64 - 20.0;
    let pw = inner * positive as f64 / total as f64;
    let mut s = open(width, 110, title);
    let pct = |n: u64| 100.0 * n as f64 / total as f64;
    let _ = write!(
        s,
        "<rect x=\"10\" y=\"34\" width=\"{}\" height=\"36\" fill=\"{POSITIVE}\"/><rect x=\"{}\" y=\"34\" width=\"{}\" height=\"36\" fill=\"{NEGATIVE}\"/><text x=\"10\" y=\"92\" font-size=\"13\" fill=\"{POSITIVE}\">긍정 positive {} ({:.0}%)</text><text x=\"{}\" y=\"92\" font-size=\"13\" text-anchor=\"end\" fill=\"{NEGATIVE}\">부정 negative {} ({:.0}%)</text></svg>",
        f(pw),
        f(10.0 + pw),
        f(inner - pw),
        positive,
        pct(positive),
        width - 10,
        negative,
        pct(negative)
    );
    s
}

/// Positive and negative calls per day as two lines, with day labels.
pub fn daily_lines(title: &str, days: &[(String, u64, u64)], width: u32, height: u32) -> String {
    if days.is_empty() {
        return no_data(width, height, title);
    }
    let (l, r, t, b) = (44.0, 12.0, 36.0, 40.0);
    let (w, h) = (width as f64 - l - r, height as f64 - t - b);
    let top = days.iter().map(|d| d.1.max(d.2)).max().unwrap_or(0).max(1) as f64;
    let x = |i: usize| {
        l + if days.len() == 1 {
            w / 2.0
        } else {
            w * i as f64 / (days.len() - 1) as f64
        }
    };
    let y = |v: u64| t + h - h * v as f64 / top;
    let mut s = open(width, height, title);
    let _ = write!(
        s,
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/><line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\" stroke=\"#888\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        f(t + h),
        f(l + w),
        f(t + h),
        f(t + h),
        f(l - 4.0),
        f(t + 4.0),
        top as u64,
        f(l - 4.0),
        f(t + h)
    );
    for (color, pick, name) in [
        (POSITIVE, 1usize, "긍정 positive"),
        (NEGATIVE, 2, "부정 negative"),
    ] {
        let pts: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{},{}", f(x(i)), f(y(if pick == 1 { d.1 } else { d.2 }))))
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                s,
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"2.5\" fill=\"{color}\"/>"
            );
        }
        let lx = if pick == 1 { l + 8.0 } else { l + 130.0 };
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{name}</text>",
            f(lx),
            f(height as f64 - 14.0),
            f(lx + 14.0),
            f(height as f64 - 5.0)
        );
    }
    // Up to eight day labels.
    let every = days.len().div_ceil(8).max(1);
    for (i, d) in days.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
            f(x(i)),
            f(t + h + 14.0),
            esc(d.0.get(5..).unwrap_or(&d.0))
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags open and close in order (a small well-formedness check).
    fn balanced(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let Some(j) = rest[i..].find('>') else {
                return false;
            };
            let tag = &rest[i + 1..i + j];
            rest = &rest[i + j + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
        stack.is_empty()
    }

    fn words() -> Vec<(String, f64)> {
        [
            "한도",
            "카드",
            "결제",
            "상담",
            "친절",
            "앱",
            "포인트",
            "수수료",
            "<b>&\"x\"",
        ]
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), 50.0 - 5.0 * i as f64))
        .collect()
    }

    #[test]
    fn charts_are_well_formed_escaped_and_finite() {
        let all = [
            bar_chart("막대 <차트>", &words(), NEGATIVE, 600),
            importance_chart(
                "중요도",
                &words()
                    .into_iter()
                    .enumerate()
                    .map(|(i, (w, v))| (w, v, i % 2 == 0))
                    .collect::<Vec<_>>(),
                700,
            ),
            word_cloud("구름", &words(), POSITIVE, 500, 300, 1),
            sentiment_distribution("분포", 30, 12, 500),
            daily_lines(
                "일별",
                &[("2026-11-01".into(), 3, 1), ("2026-11-02".into(), 0, 5)],
                600,
                260,
            ),
        ];
        for svg in &all {
            assert!(balanced(svg), "{svg}");
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert!(!svg.contains("<b>"), "unescaped text");
        }
        assert!(all[0].contains("&lt;차트&gt;"));
        assert!(all[1].contains(NEGATIVE) && all[1].contains(POSITIVE));
    }

    #[test]
    fn empty_input_draws_no_data() {
        for svg in [
            bar_chart("t", &[], NEGATIVE, 400),
            importance_chart("t", &[], 400),
            word_cloud("t", &[], NEGATIVE, 400, 200, 0),
            sentiment_distribution("t", 0, 0, 400),
            daily_lines("t", &[], 400, 200),
            word_cloud("t", &[("x".into(), f64::NAN)], NEGATIVE, 400, 200, 0),
        ] {
            assert!(svg.contains("no data") && balanced(&svg), "{svg}");
        }
    }

    #[test]
    fn the_word_cloud_places_the_heaviest_word_without_overlaps() {
        let plain: Vec<(String, f64)> = words().into_iter().take(8).collect();
        let svg = word_cloud("구름", &plain, POSITIVE, 500, 300, 3);
        assert_eq!(svg, word_cloud("구름", &plain, POSITIVE, 500, 300, 3));
        assert!(svg.contains(">한도</text>"));
        // Recover the boxes and check them pairwise.
        let mut boxes = Vec::new();
        for part in svg.split("<text x=\"").skip(2) {
            let nums: Vec<f64> = part
                .split('"')
                .filter_map(|t| t.parse::<f64>().ok())
                .take(3)
                .collect();
            let word = part.split('>').nth(1).unwrap().trim_end_matches("</text");
            let (x, y, size) = (nums[0], nums[1], nums[2]);
            boxes.push((x, y - size * 0.9, text_width(word, size), size * 1.1));
        }
        assert!(boxes.len() >= 5);
        for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                let (a, b) = (boxes[i], boxes[j]);
                let overlap = a.0 < b.0 + b.2 - 0.2
                    && b.0 < a.0 + a.2 - 0.2
                    && a.1 < b.1 + b.3 - 0.2
                    && b.1 < a.1 + a.3 - 0.2;
                assert!(!overlap, "{a:?} {b:?}");
            }
        }
    }
}
