//! The report page in a real browser: headless Chromium renders the page with every
//! chart, and the Korean text comes out as glyphs, not tofu boxes.
//!
//! The check compares screenshots. The page is rendered as it is and again with every
//! Hangul syllable replaced by 가. With a Korean font the two differ in many pixels
//! (different glyphs in the same places); without one, both show the same empty boxes
//! and hardly differ. The same comparison made with only the charts' text replaced
//! shows that the SVG text, not just the HTML headings, finds the font. A control
//! proves the method can see tofu at all: the page with Private Use Area characters
//! (which no installed font has) in place of the syllables, against the same page with
//! one PUA character everywhere, must come out (nearly) identical.
//!
//! Chromium is required, not optional: scripts/setup installs it with fonts-nanum.
//! Set SANGDAM_KEEP_SCREENSHOTS=1 to keep the screenshots (they are kept anyway when
//! the test fails); their folder is printed on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sangdam::insights::charts;
use sangdam::insights::report::{render, table, ReportPage, Section};

/// Tall enough for the whole page, so that every chart is in the picture.
const WINDOW: (u32, u32) = (1200, 2200);

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed by this test and was not found on PATH \
         (chromium, chromium-browser or google-chrome): run scripts/setup, which installs \
         chromium and the Korean font fonts-nanum"
    );
}

fn words(list: &[&str]) -> Vec<(String, f64)> {
    list.iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), 60.0 - 4.0 * i as f64))
        .collect()
}

/// A report page with every kind of chart, all with Korean text.
fn page() -> String {
    let negative = words(&[
        "한도",
        "카드",
        "결제",
        "상담",
        "연체",
        "수수료",
        "환불",
        "요금제",
        "해지",
        "대기",
        "오류",
        "분실",
        "재발급",
        "이자",
    ]);
    let positive = words(&[
        "친절",
        "앱",
        "포인트",
        "혜택",
        "감사",
        "빠른",
        "설명",
        "할인",
        "적립",
        "편리",
    ]);
    let importance: Vec<(String, f64, bool)> = negative
        .iter()
        .zip(&positive)
        .enumerate()
        .map(|(i, (n, p))| {
            let (w, v) = if i % 2 == 0 { n } else { p };
            (w.clone(), v / 10.0, i % 2 == 1)
        })
        .collect();
    let days: Vec<(String, u64, u64)> = (1..=14)
        .map(|d| (format!("2026-11-{d:02}"), 5 + d % 4, 2 + (d * 7) % 5))
        .collect();
    render(&ReportPage {
        title: "상담 분석 보고서 (강남 지점)".into(),
        generated: "2026-11-24 오후 4시".into(),
        period: "최근 2주".into(),
        sections: vec![
            Section {
                heading: "통화 감정 분포".into(),
                svg: Some(charts::sentiment_distribution("통화 감정", 82, 35, 640)),
                html: String::new(),
            },
            Section {
                heading: "부정 통화의 키워드".into(),
                svg: Some(format!(
                    "{}{}",
                    charts::bar_chart("부정 키워드 상위", &negative[..8], charts::NEGATIVE, 560),
                    charts::word_cloud("부정 키워드", &negative, charts::NEGATIVE, 560, 300, 1)
                )),
                html: table(
                    &["키워드", "통화 수"],
                    &[
                        vec!["한도".into(), "41".into()],
                        vec!["수수료".into(), "17".into()],
                    ],
                ),
            },
            Section {
                heading: "긍정 통화의 키워드".into(),
                svg: Some(charts::word_cloud(
                    "긍정 키워드",
                    &positive,
                    charts::POSITIVE,
                    560,
                    260,
                    2,
                )),
                html: String::new(),
            },
            Section {
                heading: "만족도 요인".into(),
                svg: Some(charts::importance_chart("요인별 중요도", &importance, 700)),
                html: String::new(),
            },
            Section {
                heading: "일별 감정".into(),
                svg: Some(charts::daily_lines("일별 긍정과 부정", &days, 800, 260)),
                html: String::new(),
            },
        ],
    })
}

fn is_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// `html` with every Hangul syllable mapped by `f`.
fn map_hangul(html: &str, f: impl Fn(char) -> char) -> String {
    html.chars()
        .map(|c| if is_syllable(c) { f(c) } else { c })
        .collect()
}

/// `html` with the Hangul syllables inside `<svg>` elements mapped by `f`, and the
/// rest left alone.
fn map_hangul_in_charts(html: &str, f: impl Fn(char) -> char) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("svg closed") + start;
        out.push_str(&rest[..start]);
        out.push_str(&map_hangul(&rest[start..end], &f));
        rest = &rest[end..];
    }
    out + rest
}

/// Runs Chromium on `html` and returns the screenshot as RGB pixels.
fn shot(browser: &Path, dir: &Path, name: &str, html: &str) -> Vec<[u8; 3]> {
    let file = dir.join(format!("{name}.html"));
    let png_path = dir.join(format!("{name}.png"));
    std::fs::write(&file, html).unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("profile-{name}")).display()
        ))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let end = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over 2 minutes for one screenshot");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        png_path.exists(),
        "chromium made no screenshot ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), WINDOW, "screenshot size");
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit screenshot");
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    buf.chunks(channels)
        .map(|p| match channels {
            1 | 2 => [p[0]; 3],
            _ => [p[0], p[1], p[2]],
        })
        .collect()
}

/// Pixels that differ noticeably (anti-aliasing noise below 16 levels is ignored).
fn differing(a: &[[u8; 3]], b: &[[u8; 3]]) -> usize {
    assert_eq!(a.len(), b.len(), "screenshots of different sizes");
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.iter().zip(y.iter()).any(|(p, q)| p.abs_diff(*q) >= 16))
        .count()
}

/// Pixels that are not (nearly) white: how much was drawn.
fn inked(a: &[[u8; 3]]) -> usize {
    a.iter().filter(|p| p.iter().any(|&c| c < 240)).count()
}

#[test]
fn korean_text_renders_as_glyphs_not_tofu() {
    let browser = chromium();
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("sangdam-report-shots-")
        .tempdir()
        .unwrap();
    let real = page();
    let pua = |c: char| char::from_u32(0xE000 + (c as u32 % 64)).unwrap();
    let pages = [
        ("real", real.clone()),
        ("all-ga", map_hangul(&real, |_| '가')),
        ("charts-ga", map_hangul_in_charts(&real, |_| '가')),
        ("pua", map_hangul(&real, pua)),
        ("pua-one", map_hangul(&real, |_| '\u{E000}')),
    ];
    // Chromium is slow to start; the five run side by side.
    let shots: Vec<Vec<[u8; 3]>> = std::thread::scope(|s| {
        let handles: Vec<_> = pages
            .iter()
            .map(|(name, html)| {
                let (browser, dir) = (&browser, dir.path());
                s.spawn(move || shot(browser, dir, name, html))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let [real_px, ga, charts_ga, pua_px, pua_one] = &shots[..] else {
        unreachable!()
    };
    let glyphs = differing(real_px, ga);
    let chart_glyphs = differing(real_px, charts_ga);
    let tofu = differing(pua_px, pua_one);
    let vs_tofu = differing(real_px, pua_px);
    let ink = inked(real_px);
    let report = format!(
        "differing pixels of {}x{}: real vs all-가 {glyphs}, real vs charts-only-가 {chart_glyphs}, \
         PUA vs one PUA (tofu control) {tofu}, real vs PUA {vs_tofu}; inked pixels {ink}; \
         5 screenshots in {:.1} s",
        WINDOW.0,
        WINDOW.1,
        started.elapsed().as_secs_f64()
    );
    eprintln!("{report}");
    let ok =
        ink > 50_000 && tofu < 100 && glyphs > 10_000 && chart_glyphs > 5_000 && vs_tofu > 10_000;
    let keep = !ok || std::env::var_os("SANGDAM_KEEP_SCREENSHOTS").is_some();
    let where_ = if keep {
        let kept = dir.keep();
        format!(
            "screenshots kept: {} (e.g. {})",
            kept.display(),
            kept.join("real.png").display()
        )
    } else {
        format!(
            "example screenshot: {} (removed at the end; SANGDAM_KEEP_SCREENSHOTS=1 keeps it)",
            dir.path().join("real.png").display()
        )
    };
    eprintln!("{where_}");
    assert!(ink > 50_000, "the page looks empty: {report}; {where_}");
    assert!(
        tofu < 100,
        "the control should render identical tofu boxes: {report}; {where_}"
    );
    assert!(
        glyphs > 10_000,
        "Korean syllables all look alike, as tofu does: is a Korean font installed \
         (scripts/setup installs fonts-nanum)? {report}; {where_}"
    );
    assert!(
        chart_glyphs > 5_000,
        "the charts' Korean text looks alike (tofu in the SVG?): {report}; {where_}"
    );
    assert!(
        vs_tofu > 10_000,
        "the Korean page looks like the tofu page: {report}; {where_}"
    );
}

#[test]
fn the_page_is_one_file_with_every_chart() {
    let html = page();
    assert_eq!(html.matches("<svg ").count(), 6);
    assert_eq!(html.matches("<section").count(), 5);
    assert!(!html.contains("no data"));
    for word in [
        "한도",
        "친절",
        "요인별 중요도",
        "일별 긍정과 부정",
        "강남 지점",
    ] {
        assert!(html.contains(word), "{word}");
    }
    let nothing_fetched = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!nothing_fetched.contains("http") && !nothing_fetched.contains("<script"));
}
