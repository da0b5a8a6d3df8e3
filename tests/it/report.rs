//! The report page in a real browser: headless Chromium renders the charts, and the
//! Korean text comes out as glyphs, not tofu boxes.
//!
//! The check: render the page as it is, and again with every Hangul syllable replaced by
//! 가. With a Korean font the two screenshots differ in many pixels (different glyphs at
//! the same places); without one both show the same empty boxes. A control proves the
//! check can see tofu: the same pair made of Private Use Area characters, which no font
//! has, renders identically.

use std::path::{Path, PathBuf};
use std::process::Command;

use sangdam::insights::charts;
use sangdam::insights::report::{render, table, ReportPage, Section};

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("headless Chromium is needed by this test: run scripts/setup (it installs chromium and fonts-nanum)");
}

fn page() -> String {
    let words: Vec<(String, f64)> = [
        "한도",
        "카드",
        "결제",
        "상담",
        "친절",
        "앱",
        "포인트",
        "수수료",
        "연체",
        "혜택",
        "환불",
        "요금제",
    ]
    .iter()
    .enumerate()
    .map(|(i, w)| (w.to_string(), 60.0 - 4.0 * i as f64))
    .collect();
    let imp: Vec<(String, f64, bool)> = words
        .iter()
        .take(8)
        .enumerate()
        .map(|(i, (w, v))| (w.clone(), *v / 10.0, i % 2 == 1))
        .collect();
    render(&ReportPage {
        title: "상담 분석 보고서".into(),
        generated: "2026-11-24".into(),
        period: "전체".into(),
        sections: vec![
            Section {
                heading: "부정 통화의 키워드".into(),
                svg: Some(charts::word_cloud(
                    "부정 키워드",
                    &words,
                    charts::NEGATIVE,
                    700,
                    320,
                    1,
                )),
                html: table(&["키워드", "통화"], &[vec!["한도".into(), "41".into()]]),
            },
            Section {
                heading: "만족도 요인".into(),
                svg: Some(charts::importance_chart("중요도", &imp, 700)),
                html: String::new(),
            },
        ],
    })
}

fn map_hangul(html: &str, f: impl Fn(char) -> char) -> String {
    html.chars()
        .map(|c| {
            if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                f(c)
            } else {
                c
            }
        })
        .collect()
}

/// Screenshot of `html` as RGBA pixels.
fn shot(browser: &Path, dir: &Path, name: &str, html: &str) -> Vec<u8> {
    let file = dir.join(format!("{name}.html"));
    let png = dir.join(format!("{name}.png"));
    std::fs::write(&file, html).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=900,900",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("profile-{name}")).display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs");
    assert!(
        png.exists(),
        "chromium made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    buf.chunks(channels)
        .flat_map(|p| [p[0], p[1 % channels], p[2 % channels], 255])
        .collect()
}

fn differing(a: &[u8], b: &[u8]) -> usize {
    assert_eq!(a.len(), b.len(), "screenshots of different sizes");
    a.chunks(4).zip(b.chunks(4)).filter(|(x, y)| x != y).count()
}

#[test]
fn korean_text_renders_as_glyphs_not_tofu() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let real = page();
    let one_glyph = map_hangul(&real, |_| '가');
    let pua = map_hangul(&real, |c| char::from_u32(0xE000 + (c as u32 % 64)).unwrap());
    let pua_one = map_hangul(&real, |_| '\u{E000}');
    let a = shot(&browser, dir.path(), "real", &real);
    let b = shot(&browser, dir.path(), "one-glyph", &one_glyph);
    let c = shot(&browser, dir.path(), "pua", &pua);
    let d = shot(&browser, dir.path(), "pua-one", &pua_one);
    let glyphs = differing(&a, &b);
    let tofu = differing(&c, &d);
    let vs_tofu = differing(&a, &c);
    eprintln!(
        "differing pixels: real vs all-가 {glyphs}, PUA vs one PUA (tofu control) {tofu}, real vs PUA {vs_tofu}; screenshots in {}",
        dir.path().display()
    );
    assert!(
        tofu < 50,
        "the control should render identical tofu, differs in {tofu} pixels"
    );
    assert!(
        glyphs > 2_000,
        "Korean glyphs look alike ({glyphs} differing pixels): is a Korean font installed (scripts/setup: fonts-nanum)?"
    );
    assert!(
        vs_tofu > 2_000,
        "the Korean page looks like tofu ({vs_tofu} differing pixels)"
    );
    // Keep the real screenshot for humans when asked.
    if let Ok(keep) = std::env::var("SANGDAM_KEEP_SCREENSHOT") {
        std::fs::copy(dir.path().join("real.png"), keep).unwrap();
    }
}
