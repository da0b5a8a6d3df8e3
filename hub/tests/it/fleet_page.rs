//! The fleet page: its numbers (from /v1/summary) and the page itself in headless
//! Chromium. SANGDAM_KEEP_SCREENSHOTS=1 keeps the screenshot (its path is printed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sangdam_wire::{Batch, Counters, Header, Keyword, Period, Recommendation, Report};

use crate::common::*;

const DAY: u32 = 20_758; // 2026-11-01

fn kw(term: &str, calls: u32) -> Keyword {
    Keyword {
        term: term.into(),
        calls,
        z: 2.0,
    }
}

fn rec(priority: u8, text: &str) -> Recommendation {
    Recommendation {
        priority,
        text: text.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn made(
    device: &str,
    seq: u64,
    day: u32,
    days: u16,
    calls: u64,
    positive: u64,
    complaints: Vec<Keyword>,
    recommendations: Vec<Recommendation>,
) -> Batch {
    Batch {
        header: Header {
            device: device.into(),
            seq,
            period: Period {
                first_day: sangdam_wire::Day(day),
                days,
            },
            schema: sangdam_wire::SCHEMA_VERSION,
            created_unix: u64::from(day) * 86_400,
            last_good_unix: 0,
        },
        report: Report {
            counters: Counters {
                calls,
                positive_calls: positive,
                negative_calls: calls - positive,
                ..Counters::default()
            },
            complaints,
            recommendations,
            merged: u32::from(days - 1),
            ..Report::default()
        },
    }
}

/// Two branches: 부산 3지점 (busan-03, busan-04) and 서울 강남지점 (seoul-01, one merged
/// two-day period, seq 1 missing).
fn fleet() -> Vec<Batch> {
    vec![
        made(
            "busan-03",
            1,
            DAY,
            1,
            100,
            60,
            vec![kw("카드한도", 12)],
            vec![rec(1, "오래된 권고")],
        ),
        made(
            "busan-04",
            1,
            DAY,
            1,
            50,
            20,
            vec![kw("카드한도", 5)],
            vec![rec(1, "지난 기간 권고")],
        ),
        made(
            "busan-03",
            2,
            DAY + 1,
            1,
            100,
            90,
            vec![kw("대기시간", 30)],
            vec![
                rec(2, "대기 안내 문자를 보내세요"),
                rec(1, "한도 상향 절차를 안내하세요"),
            ],
        ),
        made(
            "seoul-01",
            2,
            DAY,
            2,
            40,
            10,
            vec![kw("카드한도", 3), kw("해지 방어", 1)],
            vec![rec(1, "해지 문의에 혜택 안내를 먼저 하세요")],
        ),
    ]
}

fn stored_fleet() -> TestHub {
    let t = TestHub::start();
    for b in fleet() {
        assert_eq!(upload(t.addr(), &b).status, 200);
    }
    t
}

#[test]
fn summary_numbers() {
    let t = stored_fleet();
    let reply = t.view("/v1/summary");
    assert_eq!(reply.status, 200);
    let s: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(s["batches"], 4);
    let branches = s["branches"].as_array().unwrap();
    let names: Vec<&str> = branches
        .iter()
        .map(|b| b["branch"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["부산 3지점", "서울 강남지점"]);

    let busan = &branches[0];
    let trend = busan["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 2);
    assert_eq!(trend[0]["date"], "2026-11-01");
    assert!((trend[0]["positive_share"].as_f64().unwrap() - 80.0 / 150.0).abs() < 1e-9);
    assert!((trend[1]["positive_share"].as_f64().unwrap() - 0.9).abs() < 1e-9);
    // Newest period's recommendations only (busan-04's day is older), most urgent first.
    assert_eq!(busan["newest_period"], "2026-11-02");
    let recs: Vec<&str> = busan["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        recs,
        ["한도 상향 절차를 안내하세요", "대기 안내 문자를 보내세요"]
    );

    // The merged two-day period counts half on each day.
    let seoul = &branches[1];
    let trend = seoul["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 2);
    assert_eq!(trend[1]["calls"], 20.0);
    assert!((trend[1]["positive_share"].as_f64().unwrap() - 0.25).abs() < 1e-9);
    assert_eq!(seoul["newest_period"], "2026-11-01 ~ 2026-11-02");

    // Complaints summed over the fleet.
    let top = s["top_complaints"].as_array().unwrap();
    assert_eq!(top[0]["term"], "대기시간");
    assert_eq!(top[0]["calls"], 30);
    assert_eq!(top[1]["term"], "카드한도");
    assert_eq!(top[1]["calls"], 20);
    assert_eq!(top[1]["branches"], 2);

    let devices = s["devices"].as_array().unwrap();
    let seoul01 = devices.iter().find(|d| d["device"] == "seoul-01").unwrap();
    assert_eq!(seoul01["last_seq"], 2);
    assert_eq!(seoul01["missing_seqs"], 1);
    assert_eq!(seoul01["merged"], 1);
    assert!(seoul01["last_seen_unix"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn neutral_calls_in_the_summary_and_on_the_page() {
    let t = TestHub::start();
    // Without neutral calls the trend has no neutral line, and the header says 0%.
    assert_eq!(
        upload(
            t.addr(),
            &made("seoul-01", 1, DAY, 1, 10, 6, vec![], vec![])
        )
        .status,
        200
    );
    let page = t.view("/").text();
    assert!(page.contains("중립 0%"), "{page}");
    assert!(!page.contains("class=\"neutral\""));
    // 부산: 100 calls = 50 positive + 30 neutral + 20 negative, then 40 = 10 + 20 + 10.
    for (seq, day, calls, positive, neutral) in [(1, DAY, 100, 50, 30), (2, DAY + 1, 40, 10, 20)] {
        let mut b = made("busan-03", seq, day, 1, calls, positive, vec![], vec![]);
        b.report.counters.neutral_calls = neutral;
        b.report.counters.negative_calls = calls - positive - neutral;
        assert_eq!(upload(t.addr(), &b).status, 200);
    }
    let s: serde_json::Value = serde_json::from_slice(&t.view("/v1/summary").body).unwrap();
    let busan = &s["branches"][0];
    assert_eq!(busan["branch"], "부산 3지점");
    assert_eq!(
        (
            &busan["calls"],
            &busan["positive_calls"],
            &busan["neutral_calls"],
            &busan["negative_calls"]
        ),
        (&140.into(), &60.into(), &50.into(), &30.into())
    );
    let trend = busan["trend"].as_array().unwrap();
    assert_eq!(trend[0]["neutral_calls"], 30.0);
    assert!((trend[0]["neutral_share"].as_f64().unwrap() - 0.3).abs() < 1e-9);
    assert!((trend[1]["neutral_share"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!((trend[1]["positive_share"].as_f64().unwrap() - 0.25).abs() < 1e-9);
    let page = t.view("/").text();
    assert!(
        page.contains("통화 140건 · 긍정 43% · 중립 36% · 부정 21%"),
        "{page}"
    );
    assert_eq!(
        page.matches("class=\"neutral\"").count(),
        1,
        "one neutral line, 부산's"
    );
    assert!(page.contains("중립 비율"));
    assert!(page.contains("2026-11-02 긍정 25% · 중립 50%"), "{page}");
}

#[test]
fn page_is_self_contained_and_escaped() {
    let t = TestHub::start();
    let empty = t.view("/");
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains("아직 받은 배치가 없습니다"));
    let mut b = made(
        "busan-03",
        1,
        DAY,
        1,
        10,
        5,
        vec![kw("<script>alert(1)</script>", 2)],
        vec![],
    );
    b.report.recommendations.push(rec(1, "\"따옴표\" & <b>"));
    assert_eq!(upload(t.addr(), &b).status, 200);
    let page = t.view("/").text();
    assert!(!page.contains("<script"), "box text must be escaped");
    assert!(page.contains("&lt;script&gt;"));
    assert!(page.contains("&quot;따옴표&quot; &amp; &lt;b&gt;"));
    let outside = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!outside.contains("http"), "the page fetches nothing");
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium with `args` and the URL; returns its stdout.
fn run_chromium(browser: &Path, profile: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).ok();
        out
    });
    let end = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium ran over 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn fleet_page_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED fleet_page_in_headless_chromium: no chromium on PATH (scripts/setup installs it)");
        return;
    };
    let t = stored_fleet();
    let work = tempfile::tempdir().unwrap();
    // The page as a logged-in viewer gets it, opened from a file: a browser cannot be
    // handed the session cookie on its command line.
    let page = t.view("/");
    assert_eq!(page.status, 200);
    let file = work.path().join("fleet.html");
    std::fs::write(&file, &page.body).unwrap();
    let url = format!("file://{}", file.display());
    let shot = work.path().join("fleet.png");
    // The DOM and a screenshot, side by side (Chromium is slow to start).
    let (dom, _) = std::thread::scope(|s| {
        let dom = s.spawn(|| {
            run_chromium(
                &browser,
                &work.path().join("p1"),
                &["--dump-dom".into()],
                &url,
            )
        });
        let png = s.spawn(|| {
            run_chromium(
                &browser,
                &work.path().join("p2"),
                &[
                    "--window-size=1100,1600".into(),
                    format!("--screenshot={}", shot.display()),
                ],
                &url,
            )
        });
        (dom.join().unwrap(), png.join().unwrap())
    });
    for text in [
        "부산 3지점",
        "서울 강남지점",
        "카드한도",
        "대기시간",
        "한도 상향 절차를 안내하세요",
        "해지 문의에 혜택 안내를 먼저 하세요",
        "지점별 긍정 통화 비율 추이",
    ] {
        assert!(
            dom.contains(text),
            "{text:?} missing from Chromium's DOM:\n{dom}"
        );
    }
    assert!(
        !dom.contains("오래된 권고"),
        "an older period's recommendation is shown"
    );
    assert_eq!(
        dom.matches("<svg class=\"trend\"").count(),
        2,
        "one trend per branch:\n{dom}"
    );
    assert!(dom.contains("<polyline"), "the trend has a line:\n{dom}");
    assert!(dom.contains("<svg class=\"complaints\""));

    // The screenshot is not blank: the charts put ink on it.
    let decoder =
        png::Decoder::new(std::fs::File::open(&shot).expect("chromium made no screenshot"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    let inked = buf
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    let positive_green = buf
        .chunks(channels)
        .filter(|p| channels >= 3 && p[0] == 0x2f && p[1] == 0x7d && p[2] == 0x4f)
        .count();
    eprintln!(
        "screenshot {}x{}: {inked} inked pixels, {positive_green} in the trend's green",
        info.width, info.height
    );
    if std::env::var_os("SANGDAM_KEEP_SCREENSHOTS").is_some() {
        eprintln!(
            "screenshot kept: {}",
            work.keep().join("fleet.png").display()
        );
    }
    assert!(inked > 5_000, "the page looks empty ({inked} inked pixels)");
    assert!(
        positive_green > 50,
        "no trend line drawn ({positive_green} green pixels)"
    );
}
