//! SVG charts with Korean text, drawn on the box without a plotting library: bars,
//! feature importance, a word cloud, the sentiment split and sentiment per day. Plain
//! data in, an `<svg>` string out, no IO. Every text is escaped, every number written is
//! finite, and empty (or wholly non-finite) data draws "no data" instead of failing, so
//! a report page can always be made.
//!
//! Colours are the Okabe-Ito palette ([`Palette::OKABE_ITO`]), which colour-blind
//! readers can tell apart. Text names the Korean font that scripts/setup installs
//! (NanumGothic, from `fonts-nanum`) first, then those of Windows and macOS and the
//! usual CJK fallbacks ([`FONT`]); no font is embedded.
//!
//! Text widths cannot be measured without the font, so layout uses an estimate
//! ([`text_width`]): a Hangul syllable (or other wide character) is one em, anything
//! else 0.6 em. NanumGothic's syllables are a little narrower than an em and its Latin
//! letters average about half an em, so the estimate errs on the roomy side.

use std::collections::HashSet;
use std::fmt::Write;

/// The three colours of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Negative calls and keywords that push towards negative.
    pub negative: &'static str,
    /// Positive calls and keywords that push towards positive.
    pub positive: &'static str,
    /// Everything without a direction.
    pub neutral: &'static str,
}

impl Palette {
    /// Okabe and Ito's colour-blind-safe set: vermilion against blue differ in hue for
    /// every common colour-vision deficiency and in lightness for grey-scale printing.
    pub const OKABE_ITO: Palette = Palette {
        negative: "#d55e00",
        positive: "#0072b2",
        neutral: "#999999",
    };
}

impl Default for Palette {
    fn default() -> Self {
        Palette::OKABE_ITO
    }
}

pub const NEGATIVE: &str = Palette::OKABE_ITO.negative;
pub const POSITIVE: &str = Palette::OKABE_ITO.positive;
pub const NEUTRAL: &str = Palette::OKABE_ITO.neutral;
/// The font stack of every chart (and of the report page): the box's font first, then
/// the Korean fonts that Windows and macOS ship, for the page opened on an office PC.
pub const FONT: &str = "NanumGothic, 'Nanum Gothic', 'Malgun Gothic', 'Apple SD Gothic Neo', 'Noto Sans CJK KR', 'Noto Sans KR', sans-serif";

/// Canvas limits: smaller sizes are raised (the layout needs room for a title and
/// labels), larger ones lowered (the word cloud's search grows with the area).
const MIN_WIDTH: u32 = 200;
const MIN_HEIGHT: u32 = 100;
const MAX_SIDE: u32 = 4000;
/// The title's band at the top of every chart.
const TITLE_BAND: f64 = 28.0;

/// XML escaping for text and attribute values. Characters XML 1.0 does not allow
/// (C0 controls other than tab and newline, U+FFFE, U+FFFF) are dropped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => o.push(c),
        }
    }
    o
}

/// A coordinate for an attribute: one decimal, never NaN or infinite.
fn f(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", (x * 10.0).round() / 10.0 + 0.0)
    } else {
        "0".into()
    }
}

/// A value as people read it: whole numbers without decimals, others with a precision
/// that suits their size; "-" for what is not a number.
fn number(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 1e15 {
        format!("{v:.2e}")
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Estimated rendered width of `text` at `size` px: Hangul and other wide characters
/// one em, everything else 0.6 em.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().map(em).sum::<f64>() * size
}

fn em(c: char) -> f64 {
    if (c as u32) >= 0x1100 {
        1.0
    } else {
        0.6
    }
}

/// `text` cut (with an ellipsis) so that it is at most `max` px wide at `size` px.
fn fit(text: &str, size: f64, max: f64) -> String {
    if text_width(text, size) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = em('…') * size;
    for c in text.chars() {
        used += em(c) * size;
        if used > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

fn canvas(width: u32, height: u32) -> (u32, u32) {
    (
        width.clamp(MIN_WIDTH, MAX_SIDE),
        height.clamp(MIN_HEIGHT, MAX_SIDE),
    )
}

/// The `<svg>` start tag, the `<title>`, a white background and the visible title.
fn open(width: u32, height: u32, title: &str) -> String {
    let shown = fit(title, 15.0, width as f64 - 16.0);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"{}\" role=\"img\"><title>{}</title><rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/><text x=\"8\" y=\"20\" font-size=\"15\" font-weight=\"bold\" fill=\"#222222\">{}</text>",
        esc(FONT),
        esc(title),
        esc(&shown)
    )
}

fn no_data(width: u32, height: u32, title: &str) -> String {
    let mut s = open(width, height, title);
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"14\" fill=\"#666666\" text-anchor=\"middle\">no data</text></svg>",
        width / 2,
        (height as f64 + TITLE_BAND) / 2.0
    );
    s
}

/// A row of coloured squares with their names, from `x` along the baseline `y`.
fn legend(s: &mut String, mut x: f64, y: f64, entries: &[(&str, &str)]) {
    for (name, color) in entries {
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"11\" height=\"11\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#222222\">{}</text>",
            f(x),
            f(y - 10.0),
            esc(color),
            f(x + 15.0),
            f(y),
            esc(name)
        );
        x += 15.0 + text_width(name, 12.0) + 18.0;
    }
}

fn legend_width(entries: &[(&str, &str)]) -> f64 {
    entries
        .iter()
        .map(|(name, _)| 15.0 + text_width(name, 12.0) + 18.0)
        .sum()
}

/// One horizontal bar.
struct Bar<'a> {
    label: &'a str,
    value: f64,
    color: &'a str,
}

/// Horizontal bars with labels on the left and values on the right, scaled to the
/// largest finite value; a legend row under the title when `keys` is not empty.
fn bars(title: &str, rows: &[Bar], width: u32, keys: &[(&str, &str)]) -> String {
    const ROW: f64 = 22.0;
    const LABEL: f64 = 13.0;
    const VALUE: f64 = 12.0;
    let (width, _) = canvas(width, 0);
    if rows.is_empty() {
        return no_data(width, 90, title);
    }
    let w = width as f64;
    let top_y = if keys.is_empty() { 32.0 } else { 50.0 };
    let height = (top_y + ROW * rows.len() as f64 + 8.0).ceil() as u32;
    let label_w = rows
        .iter()
        .map(|b| text_width(b.label, LABEL))
        .fold(0.0, f64::max)
        .min(w * 0.4);
    let value_w = rows
        .iter()
        .map(|b| text_width(&number(b.value), VALUE))
        .fold(24.0, f64::max);
    let bar_x = 8.0 + label_w + 8.0;
    let bar_max = (w - bar_x - value_w - 12.0).max(10.0);
    let top = rows
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut s = open(width, height, title);
    if !keys.is_empty() {
        let x = (w - 8.0 - legend_width(keys)).max(8.0);
        legend(&mut s, x, 40.0, keys);
    }
    for (i, b) in rows.iter().enumerate() {
        let y = top_y + ROW * i as f64;
        let share = if top > 0.0 && b.value.is_finite() {
            (b.value / top).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let len = if share > 0.0 {
            (share * bar_max).max(1.0)
        } else {
            0.0
        };
        let _ = write!(
            s,
            "<g><title>{}: {}</title><text x=\"{}\" y=\"{}\" font-size=\"{LABEL}\" text-anchor=\"end\" fill=\"#222222\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"{VALUE}\" fill=\"#444444\">{}</text></g>",
            esc(b.label),
            esc(&number(b.value)),
            f(bar_x - 8.0),
            f(y + 15.0),
            esc(&fit(b.label, LABEL, label_w)),
            f(bar_x),
            f(y + 3.0),
            f(len),
            f(ROW - 6.0),
            esc(b.color),
            f(bar_x + len + 4.0),
            f(y + 15.0),
            esc(&number(b.value))
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars in one colour: label left, value right.
pub fn bar_chart(title: &str, items: &[(String, f64)], color: &str, width: u32) -> String {
    let rows: Vec<Bar> = items
        .iter()
        .map(|(label, value)| Bar {
            label,
            value: *value,
            color,
        })
        .collect();
    bars(title, &rows, width, &[])
}

/// Importance bars coloured by the direction each feature pushes (true: towards
/// positive), with a legend.
pub fn importance_chart(title: &str, items: &[(String, f64, bool)], width: u32) -> String {
    let p = Palette::OKABE_ITO;
    let rows: Vec<Bar> = items
        .iter()
        .map(|(label, value, positive)| Bar {
            label,
            value: *value,
            color: if *positive { p.positive } else { p.negative },
        })
        .collect();
    bars(
        title,
        &rows,
        width,
        &[
            ("부정 쪽 (towards negative)", p.negative),
            ("긍정 쪽 (towards positive)", p.positive),
        ],
    )
}

/// The word cloud's largest and smallest font sizes, px.
const CLOUD_MAX: f64 = 44.0;
const CLOUD_MIN: f64 = 12.0;
/// More words than this make an unreadable cloud.
const CLOUD_WORDS: usize = 60;
/// A word's box: its estimated width by `LINE` em; the baseline sits `ASCENT` em down.
const LINE: f64 = 1.1;
const ASCENT: f64 = 0.9;
/// Room kept free around every word, px.
const PAD: f64 = 1.5;

/// A 64-bit mix (SplitMix64's finaliser), so that nearby seeds start far apart.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A word cloud: heavier words are bigger, placed in order of weight along a spiral
/// from the centre at the first spot where their estimated box overlaps no earlier
/// one; words that find no spot are left out. The heaviest word always fits (its size
/// is capped so that it does), and the same words and `seed` give the same picture.
pub fn word_cloud(
    title: &str,
    words: &[(String, f64)],
    color: &str,
    width: u32,
    height: u32,
    seed: u64,
) -> String {
    let (width, height) = canvas(width, height);
    let mut seen = HashSet::new();
    let mut list: Vec<(String, f64)> = Vec::new();
    let mut sorted: Vec<(&str, f64)> = words
        .iter()
        .map(|(w, v)| (w.trim(), *v))
        .filter(|(w, v)| !w.is_empty() && v.is_finite() && *v > 0.0)
        .collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for (w, v) in sorted {
        if seen.insert(w) && list.len() < CLOUD_WORDS {
            // Keywords are short; a runaway one is cut rather than shrinking the cloud.
            list.push((fit(w, 1.0, 16.0), v));
        }
    }
    if list.is_empty() {
        return no_data(width, height, title);
    }
    // The area words may use.
    let (left, top, right, bottom) = (
        6.0,
        TITLE_BAND + 4.0,
        width as f64 - 6.0,
        height as f64 - 6.0,
    );
    let (aw, ah) = (right - left, bottom - top);
    let (cx, cy) = (left + aw / 2.0, top + ah / 2.0);
    let heaviest = list[0].1;
    let big = CLOUD_MAX
        .min(aw / text_width(&list[0].0, 1.0))
        .min(ah / LINE)
        * 0.99;
    let small = CLOUD_MIN.min(big);
    // An Archimedean spiral r = a·θ, squashed to the area's shape (y scaled by `k`).
    // Turns lie at most 2πa·max(1, k) ≈ 8 px apart and successive points about 4 px,
    // finer than the smallest word, and it ends once it has swept the whole area.
    let k = ah / aw;
    let a = 1.3 / k.max(1.0);
    let r_end = aw / std::f64::consts::SQRT_2 + CLOUD_MAX;
    let m = mix(seed);
    let start = (m % 3600) as f64 / 3600.0 * std::f64::consts::TAU;
    let turn = if (m >> 32) & 1 == 0 { 1.0 } else { -1.0 };
    let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
    // Boxes that found no spot: a box at least as large in both directions cannot either.
    let mut failed: Vec<(f64, f64)> = Vec::new();
    let mut s = open(width, height, title);
    for (word, v) in &list {
        let share = v / heaviest;
        // Rounded down to what the SVG says, so that the boxes are the ones drawn.
        let size = ((small + (big - small) * share.sqrt()) * 10.0)
            .floor()
            .max(10.0)
            / 10.0;
        let (bw, bh) = (text_width(word, size), size * LINE);
        if failed.iter().any(|&(fw, fh)| fw <= bw && fh <= bh) {
            continue;
        }
        let mut theta = 0.0f64;
        let mut spot = None;
        loop {
            let r = a * theta;
            if r > r_end {
                break;
            }
            let angle = start + turn * theta;
            let x = ((cx + r * angle.cos() - bw / 2.0) * 10.0).round() / 10.0;
            let y = ((cy + k * r * angle.sin() - bh / 2.0) * 10.0).round() / 10.0;
            theta += (4.0 / (r * k.max(1.0)).max(4.0)).min(0.5);
            if x < left || y < top || x + bw > right || y + bh > bottom {
                continue;
            }
            let clear = placed.iter().all(|&(px, py, pw, ph)| {
                x >= px + pw + PAD || px >= x + bw + PAD || y >= py + ph + PAD || py >= y + bh + PAD
            });
            if clear {
                spot = Some((x, y));
                break;
            }
        }
        let Some((x, y)) = spot else {
            failed.push((bw, bh));
            continue;
        };
        placed.push((x, y, bw, bh));
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"{}\" fill-opacity=\"{}\">{}</text>",
            f(x),
            f(y + size * ASCENT),
            f(size),
            esc(color),
            f(0.55 + 0.45 * share),
            esc(word)
        );
    }
    s.push_str("</svg>");
    s
}

/// Whole percentages of `a` and `b` in `a + b` (not both zero) that add up to 100; a
/// share that is not zero never shows as 0%.
fn percentages(a: u64, b: u64) -> (String, String) {
    let p = (100.0 * (a as f64 / (a as f64 + b as f64))).round() as u64;
    if a > 0 && p == 0 {
        ("<1%".into(), ">99%".into())
    } else if b > 0 && p >= 100 {
        (">99%".into(), "<1%".into())
    } else {
        (format!("{p}%"), format!("{}%", 100 - p))
    }
}

/// Whole percentages of `parts` in their sum (not all zero) that add up to 100 (largest
/// remainders round up); a part that is not zero never shows as 0%, nor one that is not
/// the whole as 100%.
fn percentages_of(parts: &[u64]) -> Vec<String> {
    let total: f64 = parts.iter().map(|&x| x as f64).sum();
    let exact: Vec<f64> = parts.iter().map(|&x| 100.0 * x as f64 / total).collect();
    let mut whole: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let short = 100u64.saturating_sub(whole.iter().sum());
    for &i in order.iter().take(short as usize) {
        whole[i] += 1;
    }
    parts
        .iter()
        .zip(&whole)
        .map(|(&x, &p)| {
            if x > 0 && p == 0 {
                "<1%".to_owned()
            } else if p >= 100 && parts.iter().filter(|&&y| y > 0).count() > 1 {
                ">99%".to_owned()
            } else {
                format!("{p}%")
            }
        })
        .collect()
}

/// Positive, neutral and negative calls as one stacked bar (neutral, grey, in the
/// middle) with counts and percentages. With no neutral call it is
/// [`sentiment_distribution`]'s two-part bar.
pub fn sentiment_split(
    title: &str,
    positive: u64,
    neutral: u64,
    negative: u64,
    width: u32,
) -> String {
    if neutral == 0 {
        return sentiment_distribution(title, positive, negative, width);
    }
    let (width, height) = (canvas(width, 0).0, 112);
    let p = Palette::OKABE_ITO;
    let inner = width as f64 - 20.0;
    let total = positive as f64 + neutral as f64 + negative as f64;
    let pw = inner * positive as f64 / total;
    let nw = inner * neutral as f64 / total;
    let pct = percentages_of(&[positive, neutral, negative]);
    let mut s = open(width, height, title);
    let segments = [
        ("긍정 positive", positive, &pct[0], 10.0, pw, p.positive),
        ("중립 neutral", neutral, &pct[1], 10.0 + pw, nw, p.neutral),
        (
            "부정 negative",
            negative,
            &pct[2],
            10.0 + pw + nw,
            inner - pw - nw,
            p.negative,
        ),
    ];
    for (name, n, share, x, w, color) in segments {
        let _ = write!(
            s,
            "<g><title>{name} {n} ({})</title><rect x=\"{}\" y=\"36\" width=\"{}\" height=\"34\" fill=\"{}\"/></g>",
            esc(share),
            f(x),
            f(w),
            color
        );
    }
    let total = positive.saturating_add(neutral).saturating_add(negative);
    let _ = write!(
        s,
        "<text x=\"10\" y=\"92\" font-size=\"13\" fill=\"{}\">긍정 positive {positive} ({})</text><text x=\"{}\" y=\"92\" font-size=\"13\" text-anchor=\"middle\" fill=\"#666666\">중립 neutral {neutral} ({})</text><text x=\"{}\" y=\"92\" font-size=\"13\" text-anchor=\"end\" fill=\"{}\">부정 negative {negative} ({})</text><text x=\"{}\" y=\"107\" font-size=\"11\" text-anchor=\"middle\" fill=\"#666666\">{total} calls</text></svg>",
        p.positive,
        esc(&pct[0]),
        width / 2,
        esc(&pct[1]),
        width - 10,
        p.negative,
        esc(&pct[2]),
        width / 2
    );
    s
}

/// Positive and negative calls as one stacked bar with counts and percentages.
pub fn sentiment_distribution(title: &str, positive: u64, negative: u64, width: u32) -> String {
    let (width, height) = (canvas(width, 0).0, 112);
    let total = positive.saturating_add(negative);
    if total == 0 {
        return no_data(width, height, title);
    }
    let p = Palette::OKABE_ITO;
    let inner = width as f64 - 20.0;
    let pw = inner * (positive as f64 / (positive as f64 + negative as f64));
    let (pos_pct, neg_pct) = percentages(positive, negative);
    let mut s = open(width, height, title);
    let _ = write!(
        s,
        "<g><title>긍정 positive {positive} ({})</title><rect x=\"10\" y=\"36\" width=\"{}\" height=\"34\" fill=\"{}\"/></g><g><title>부정 negative {negative} ({})</title><rect x=\"{}\" y=\"36\" width=\"{}\" height=\"34\" fill=\"{}\"/></g><text x=\"10\" y=\"92\" font-size=\"13\" fill=\"{}\">긍정 positive {positive} ({})</text><text x=\"{}\" y=\"92\" font-size=\"13\" text-anchor=\"end\" fill=\"{}\">부정 negative {negative} ({})</text><text x=\"{}\" y=\"107\" font-size=\"11\" text-anchor=\"middle\" fill=\"#666666\">{total} calls</text></svg>",
        esc(&pos_pct),
        f(pw),
        p.positive,
        esc(&neg_pct),
        f(10.0 + pw),
        f(inner - pw),
        p.negative,
        p.positive,
        esc(&pos_pct),
        width - 10,
        p.negative,
        esc(&neg_pct),
        width / 2
    );
    s
}

/// Positive and negative calls per day as two lines with dots, a value axis and up to
/// eight day labels (MM-DD). Days are drawn in date order, evenly spaced.
pub fn daily_lines(title: &str, days: &[(String, u64, u64)], width: u32, height: u32) -> String {
    let days: Vec<(String, u64, u64, u64)> = days
        .iter()
        .map(|(d, pos, neg)| (d.clone(), *pos, *neg, 0))
        .collect();
    daily_sentiment_lines(title, &days, width, height)
}

/// [`daily_lines`] with neutral calls: `(day, positive, negative, neutral)`. The neutral
/// line (grey, dashed) and its legend entry are drawn when some day has neutral calls.
pub fn daily_sentiment_lines(
    title: &str,
    days: &[(String, u64, u64, u64)],
    width: u32,
    height: u32,
) -> String {
    let (width, height) = canvas(width, height.max(160));
    if days.is_empty() {
        return no_data(width, height, title);
    }
    let mut days: Vec<&(String, u64, u64, u64)> = days.iter().collect();
    days.sort_by(|a, b| a.0.cmp(&b.0));
    let neutral = days.iter().any(|d| d.3 > 0);
    let p = Palette::OKABE_ITO;
    let (l, r, t, b) = (48.0, 14.0, 38.0, 44.0);
    let (w, h) = (width as f64 - l - r, height as f64 - t - b);
    let top = days
        .iter()
        .map(|d| d.1.max(d.2).max(d.3))
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| {
        l + if days.len() == 1 {
            w / 2.0
        } else {
            w * i as f64 / (days.len() - 1) as f64
        }
    };
    let y = |v: u64| t + h - h * (v as f64 / top as f64);
    let mut s = open(width, height, title);
    // Value axis: 0, the middle and the top, with faint grid lines.
    let mut ticks = vec![0, top];
    if top >= 2 {
        ticks.push(top / 2);
    }
    for v in ticks {
        let _ = write!(
            s,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#444444\">{v}</text>",
            f(l),
            f(y(v)),
            f(l + w),
            f(y(v)),
            f(l - 5.0),
            f(y(v) + 4.0)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888888\"/><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888888\"/>",
        f(l),
        f(t + h),
        f(l + w),
        f(t + h),
        f(l),
        f(t),
        f(l),
        f(t + h)
    );
    let mut series: Vec<(&str, usize, &str)> = vec![(p.positive, 1, ""), (p.negative, 2, "")];
    if neutral {
        series.insert(0, (p.neutral, 3, " stroke-dasharray=\"5 3\""));
    }
    for (color, which, dash) in series {
        let value = |d: &(String, u64, u64, u64)| match which {
            1 => d.1,
            2 => d.2,
            _ => d.3,
        };
        let points: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{},{}", f(x(i)), f(y(value(d)))))
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
            points.join(" ")
        );
        for (i, d) in days.iter().enumerate() {
            let _ = write!(
                s,
                "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{color}\"><title>{} {}</title></circle>",
                f(x(i)),
                f(y(value(d))),
                esc(&d.0),
                value(d)
            );
        }
    }
    let mut keys = vec![("긍정 positive", p.positive), ("부정 negative", p.negative)];
    if neutral {
        keys.push(("중립 neutral", p.neutral));
    }
    legend(&mut s, l, height as f64 - 6.0, &keys);
    let every = days.len().div_ceil(8);
    for (i, d) in days.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let label = d.0.get(5..).filter(|m| !m.is_empty()).unwrap_or(&d.0);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444444\">{}</text>",
            f(x(i)),
            f(t + h + 14.0),
            esc(&fit(label, 10.0, 60.0))
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small well-formedness check: tags nest and close, attribute values are quoted,
    /// and every `&` starts one of the entities `esc` writes.
    fn well_formed(svg: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        let entities = ["&lt;", "&gt;", "&amp;", "&quot;", "&#39;"];
        let check_text = |text: &str| -> Result<(), String> {
            if text.contains('>') {
                return Err(format!("raw > in {text:?}"));
            }
            for (i, _) in text.match_indices('&') {
                if !entities.iter().any(|e| text[i..].starts_with(e)) {
                    return Err(format!("stray & in {text:?}"));
                }
            }
            Ok(())
        };
        if !svg.starts_with("<svg ") {
            return Err("does not start with <svg".into());
        }
        while let Some(i) = rest.find('<') {
            check_text(&rest[..i])?;
            let j = rest[i..].find('>').ok_or("unclosed tag")?;
            let tag = &rest[i + 1..i + j];
            rest = &rest[i + j + 1..];
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            for attr in tag.split('"').step_by(2).skip(1) {
                // Between two quoted values: ` name=` only.
                if attr.contains('<') || attr.contains('&') {
                    return Err(format!("odd attribute syntax in <{tag}>"));
                }
            }
            for value in tag.split('"').skip(1).step_by(2) {
                check_text(value)?;
                if value.contains('<') {
                    return Err(format!("raw < in attribute of <{tag}>"));
                }
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop() != Some(name) {
                    return Err(format!("</{name}> closes the wrong tag"));
                }
                if stack.is_empty() && !rest.is_empty() {
                    return Err("content after the root".into());
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or(""));
            }
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed {stack:?}"))
        }
    }

    fn assert_sound(svg: &str) {
        if let Err(e) = well_formed(svg) {
            panic!("{e}: {svg}");
        }
        for bad in ["NaN", "inf", "<b>", "-0.0"] {
            assert!(!svg.contains(bad), "{bad} in {svg}");
        }
        assert!(svg.contains("<title>"), "{svg}");
        assert!(svg.contains(&esc(FONT)), "{svg}");
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

    fn all_charts(seed: u64) -> Vec<String> {
        vec![
            bar_chart("막대 <차트>", &words(), NEGATIVE, 600),
            importance_chart(
                "중요도 & \"gain\"",
                &words()
                    .into_iter()
                    .enumerate()
                    .map(|(i, (w, v))| (w, v / 100.0, i % 2 == 0))
                    .collect::<Vec<_>>(),
                700,
            ),
            word_cloud("구름", &words(), POSITIVE, 500, 300, seed),
            sentiment_distribution("분포", 30, 12, 500),
            daily_lines(
                "일별",
                &[
                    ("2026-11-02".into(), 0, 5),
                    ("2026-11-01".into(), 3, 1),
                    ("<x>".into(), 2, 2),
                ],
                600,
                260,
            ),
        ]
    }

    #[test]
    fn charts_are_well_formed_escaped_finite_and_deterministic() {
        let all = all_charts(1);
        for svg in &all {
            assert_sound(svg);
        }
        assert!(all[0].contains("<title>막대 &lt;차트&gt;</title>"));
        assert!(all[1].contains("중요도 &amp; &quot;gain&quot;"));
        assert!(all[0].contains("&lt;b&gt;&amp;&quot;x&quot;"));
        assert!(all[4].contains(">&lt;x&gt;</text>"));
        assert_eq!(all, all_charts(1));
    }

    #[test]
    fn palette_colours_are_distinct_and_used() {
        let p = Palette::default();
        assert_eq!(p, Palette::OKABE_ITO);
        assert!(p.negative != p.positive && p.positive != p.neutral && p.negative != p.neutral);
        let imp = importance_chart(
            "t",
            &[("a".into(), 2.0, true), ("b".into(), 1.0, false)],
            400,
        );
        // Each bar in its own colour, and both in the legend.
        assert_eq!(imp.matches(&format!("fill=\"{}\"", p.positive)).count(), 2);
        assert_eq!(imp.matches(&format!("fill=\"{}\"", p.negative)).count(), 2);
        assert!(imp.contains("towards positive") && imp.contains("towards negative"));
    }

    #[test]
    fn empty_input_draws_no_data() {
        for svg in [
            bar_chart("t", &[], NEGATIVE, 400),
            importance_chart("t", &[], 400),
            word_cloud("t", &[], NEGATIVE, 400, 200, 0),
            word_cloud(
                "t",
                &[("x".into(), f64::NAN), (" ".into(), 3.0)],
                NEGATIVE,
                400,
                200,
                0,
            ),
            word_cloud(
                "t",
                &[("x".into(), 0.0), ("y".into(), -1.0)],
                NEGATIVE,
                400,
                200,
                0,
            ),
            sentiment_distribution("t", 0, 0, 400),
            daily_lines("t", &[], 400, 200),
        ] {
            assert_sound(&svg);
            assert!(svg.contains(">no data</text>"), "{svg}");
        }
    }

    #[test]
    fn odd_numbers_and_sizes_stay_finite() {
        let odd: Vec<(String, f64)> = vec![
            ("nan".into(), f64::NAN),
            ("big".into(), f64::INFINITY),
            ("neg".into(), -3.0),
            ("tiny".into(), 1e-300),
            ("huge".into(), 1e300),
            ("zero".into(), 0.0),
        ];
        for (w, h) in [(0, 0), (1, 1), (u32::MAX, 50), (300, u32::MAX)] {
            for svg in [
                bar_chart("t", &odd, NEUTRAL, w),
                importance_chart(
                    "t",
                    &odd.iter()
                        .map(|(l, v)| (l.clone(), *v, true))
                        .collect::<Vec<_>>(),
                    w,
                ),
                word_cloud("t", &odd, NEGATIVE, w, h, u64::MAX),
                sentiment_distribution("t", u64::MAX, u64::MAX, w),
                sentiment_distribution("t", 1, 999, w),
                daily_lines("t", &[("2026-01-01".into(), u64::MAX, 0)], w, h),
            ] {
                assert_sound(&svg);
            }
        }
    }

    #[test]
    fn percentages_add_up_and_small_shares_show() {
        assert_eq!(percentages(1, 2), ("33%".into(), "67%".into()));
        assert_eq!(percentages(1, 999), ("<1%".into(), ">99%".into()));
        assert_eq!(percentages(999, 1), (">99%".into(), "<1%".into()));
        assert_eq!(percentages(0, 5), ("0%".into(), "100%".into()));
        assert_eq!(percentages(5, 0), ("100%".into(), "0%".into()));
        assert_eq!(
            percentages(u64::MAX, u64::MAX),
            ("50%".into(), "50%".into())
        );
        let svg = sentiment_distribution("t", 30, 12, 500);
        assert!(svg.contains("긍정 positive 30 (71%)") && svg.contains("부정 negative 12 (29%)"));
        assert_eq!(percentages_of(&[1, 1, 1]), ["34%", "33%", "33%"]);
        assert_eq!(percentages_of(&[30, 12, 0]), ["71%", "29%", "0%"]);
        assert_eq!(percentages_of(&[1, 998, 1]), ["<1%", ">99%", "<1%"]);
        assert_eq!(percentages_of(&[0, 7, 0]), ["0%", "100%", "0%"]);
    }

    #[test]
    fn neutral_calls_get_their_own_segment_and_line() {
        let p = Palette::OKABE_ITO;
        // No neutral call: the two-part bar and the two lines of before.
        assert_eq!(
            sentiment_split("t", 30, 0, 12, 500),
            sentiment_distribution("t", 30, 12, 500)
        );
        let two = [("2026-11-01".to_string(), 3, 1)];
        let four = [("2026-11-01".to_string(), 3, 1, 0)];
        assert_eq!(
            daily_lines("t", &two, 600, 260),
            daily_sentiment_lines("t", &four, 600, 260)
        );
        assert!(!daily_lines("t", &two, 600, 260).contains("중립"));
        // With neutral calls: a grey middle segment, its count and share.
        let svg = sentiment_split("분포", 30, 50, 20, 640);
        assert_sound(&svg);
        assert!(svg.contains("중립 neutral 50 (50%)"), "{svg}");
        assert!(svg.contains("긍정 positive 30 (30%)") && svg.contains("부정 negative 20 (20%)"));
        assert!(svg.contains(">100 calls</text>"));
        assert_eq!(svg.matches(&format!("fill=\"{}\"", p.neutral)).count(), 1);
        let days = [
            ("2026-11-01".to_string(), 3, 1, 9),
            ("2026-11-02".to_string(), 2, 2, 0),
        ];
        let svg = daily_sentiment_lines("일별", &days, 600, 260);
        assert_sound(&svg);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains(&format!("stroke=\"{}\"", p.neutral)));
        assert!(svg.contains("중립 neutral"));
        // The value axis reaches the neutral peak.
        assert!(svg.contains(">9</text>"), "{svg}");
        for svg in [
            sentiment_split("t", u64::MAX, u64::MAX, u64::MAX, 200),
            sentiment_split("t", 0, 5, 0, 200),
            daily_sentiment_lines("t", &[("x".into(), 0, 0, u64::MAX)], 200, 100),
        ] {
            assert_sound(&svg);
        }
    }

    #[test]
    fn long_labels_are_cut_with_their_full_text_in_a_tooltip() {
        let long = "아주 긴 상품 이름 ".repeat(10);
        let svg = bar_chart("t", &[(long.clone(), 1.0)], NEGATIVE, 400);
        assert_sound(&svg);
        assert!(svg.contains(&format!("<title>{}: 1</title>", esc(&long))));
        assert!(svg.contains("…</text>"));
    }

    /// The boxes of the placed words, recovered from the SVG the same way the layout
    /// computed them.
    fn cloud_boxes(svg: &str) -> Vec<(String, f64, f64, f64, f64)> {
        let mut boxes = Vec::new();
        for part in svg.split("<text x=\"").skip(2) {
            let nums: Vec<f64> = part
                .split('"')
                .filter_map(|t| t.parse::<f64>().ok())
                .take(3)
                .collect();
            let word = part.split('>').nth(1).unwrap().trim_end_matches("</text");
            let (x, y, size) = (nums[0], nums[1], nums[2]);
            let word = word
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
                .replace("&quot;", "\"");
            let w = text_width(&word, size);
            boxes.push((word, x, y - size * ASCENT, w, size * LINE));
        }
        boxes
    }

    #[test]
    fn the_word_cloud_places_the_heaviest_word_without_overlaps() {
        let many: Vec<(String, f64)> = (0..80)
            .map(|i| (format!("키워드{i}"), 100.0 / (1.0 + i as f64)))
            .chain(words())
            .collect();
        let long = vec![
            ("아주아주아주긴단어입니다아주아주긴단어".to_string(), 10.0),
            ("짧은".to_string(), 5.0),
        ];
        let mut total = 0;
        for (list, w, h) in [
            (&words(), 500, 300),
            (&many, 560, 320),
            (&many, 300, 600),
            (&long, 220, 120),
        ] {
            for seed in 0..4 {
                let svg = word_cloud("구름", list, POSITIVE, w, h, seed);
                assert_sound(&svg);
                assert_eq!(svg, word_cloud("구름", list, POSITIVE, w, h, seed));
                let boxes = cloud_boxes(&svg);
                let heaviest = fit(list[0].0.as_str(), 1.0, 16.0);
                assert_eq!(boxes[0].0, heaviest, "{svg}");
                total += boxes.len();
                for (i, a) in boxes.iter().enumerate() {
                    assert!(
                        a.1 >= 0.0
                            && a.2 >= TITLE_BAND
                            && a.1 + a.3 <= w as f64
                            && a.2 + a.4 <= h as f64,
                        "outside the canvas: {a:?}"
                    );
                    for b in &boxes[i + 1..] {
                        let overlap = a.1 < b.1 + b.3 - 0.2
                            && b.1 < a.1 + a.3 - 0.2
                            && a.2 < b.2 + b.4 - 0.2
                            && b.2 < a.2 + a.4 - 0.2;
                        assert!(!overlap, "{a:?} overlaps {b:?}");
                    }
                }
            }
        }
        // The clouds are full, not sparse: most of the 60 words of `many` find a spot.
        let svg = word_cloud("구름", &many, POSITIVE, 560, 320, 1);
        assert!(cloud_boxes(&svg).len() >= 35, "{}", cloud_boxes(&svg).len());
        assert!(total > 100);
        // Another seed, another layout.
        assert_ne!(svg, word_cloud("구름", &many, POSITIVE, 560, 320, 2));
    }
}
