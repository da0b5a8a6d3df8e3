//! Insights end to end: a store of calls whose customer utterances were labelled by the
//! shipped sentiment model, then `sangdam insights`, `recommend`, `report --html` and
//! `serve` over it, as a branch manager would run them.

use std::path::Path;

use crate::cli::{run, sangdam};
use crate::support::{shipped_sentiment, Rng};
use sangdam::audio::Speaker;
use sangdam::sentiment::{CallSentiment, Scored, SentimentEngine};
use sangdam::store::{CallId, CallRecord, Store, UtteranceRecord};

const COMPLAINTS: &[&str] = &[
    "카드 한도가 너무 낮아서 불편해요",
    "한도 상향이 안 된다니 정말 실망입니다",
    "연체 이자가 너무 비싸요 화가 나네요",
    "본인 확인 절차가 너무 복잡하고 짜증나요",
    "수수료가 왜 이렇게 많이 나왔는지 이해가 안 돼요",
    "카드론 이자가 너무 높아요 최악이에요",
    "결제일 변경이 안 된다니 답답합니다",
];

const PRAISE: &[&str] = &[
    "쉐어링 카드 혜택이 정말 좋아요 감사합니다",
    "모바일 앱이 편하고 빨라서 만족해요",
    "상담원분이 친절하게 설명해 주셔서 감사합니다",
    "포인트 적립이 많아서 좋네요",
    "쉐어링카드 덕분에 할인을 많이 받았어요 최고예요",
    "체크카드 발급이 빨라서 좋았어요 고맙습니다",
];

const AGENT: &str = "안녕하세요 고객님 무엇을 도와드릴까요";

/// `n` calls over 40 days, about half of them complaints, stored with the shipped
/// model's labels.
pub(crate) fn fill_store(data: &Path, n: u64) {
    let engine = {
        let m = shipped_sentiment();
        SentimentEngine::load(&m.file, m.vocab.as_deref().unwrap()).unwrap()
    };
    let store = Store::open(data).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for k in 0..n {
        let unhappy = rng.below(100) < 50;
        let pool = if unhappy { COMPLAINTS } else { PRAISE };
        let mut texts = vec![
            pool[rng.below(pool.len() as u64) as usize],
            pool[rng.below(pool.len() as u64) as usize],
        ];
        if rng.below(10) == 0 {
            // Now and then a call that mixes both.
            let other = if unhappy { PRAISE } else { COMPLAINTS };
            texts.push(other[rng.below(other.len() as u64) as usize]);
        }
        let mut utts = vec![UtteranceRecord {
            channel: 0,
            speaker: Speaker::Agent,
            start_s: 0.0,
            end_s: 2.0,
            text: AGENT.into(),
            sentiment: Some(engine.classify(AGENT).unwrap()),
        }];
        for (i, t) in texts.iter().enumerate() {
            utts.push(UtteranceRecord {
                channel: 1,
                speaker: Speaker::Customer,
                start_s: 3.0 + i as f64 * 3.0,
                end_s: 5.0 + i as f64 * 3.0,
                text: (*t).into(),
                sentiment: Some(engine.classify(t).unwrap()),
            });
        }
        let scored: Vec<Scored> = utts
            .iter()
            .map(|u| Scored {
                speaker: u.speaker,
                start_s: u.start_s,
                end_s: u.end_s,
                sentiment: u.sentiment.unwrap(),
            })
            .collect();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(k + 1).to_be_bytes());
        let duration = 3.0 + texts.len() as f64 * 3.0;
        let call = CallRecord {
            id: CallId(id),
            source: format!("/rec/{k}.wav"),
            duration_s: duration,
            sample_rate: 8_000,
            channels: 2,
            analysed_at: 1_764_000_000 + (k * 40 / n) * 86_400 + k,
            utterance_count: utts.len() as u32,
            asr_model: "asr-ko@test".into(),
            sentiment: Some(CallSentiment::summarize(
                "sentiment-ko@test",
                duration,
                &scored,
            )),
            talk: None,
            live: None,
        };
        store.insert_call(&call, &utts).unwrap();
    }
}

fn any_of(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

#[test]
fn insights_recommendations_and_the_page_from_stored_calls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill_store(&data, 160);
    let models = Path::new("models");

    let mut c = sangdam(&data, models);
    c.args(["insights", "--refresh"]);
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    eprintln!("{stdout}");
    assert!(stdout.contains("insights over 160 calls"), "{stdout}");
    // The lists of the whole period (the last block).
    let all = stdout.split("== all:").nth(1).expect("an all-period block");
    let section = |name: &str| -> String {
        all.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
            .to_owned()
    };
    // The complaints' and the praise's topics land on their sides.
    let neg = section("more negative");
    let pos = section("more positive");
    assert!(any_of(&neg, &["한도", "이자", "수수료", "연체"]), "{neg}");
    assert!(any_of(&pos, &["혜택", "친절", "포인트", "할인"]), "{pos}");
    assert!(!any_of(&neg, &["혜택", "친절"]), "{neg}");
    assert!(stdout.contains("== drivers:"), "{stdout}");
    assert!(stdout.contains("single decision tree"), "{stdout}");

    // Stored: the JSON report is the same computation, reused without --refresh.
    let mut c = sangdam(&data, models);
    c.args(["insights", "--json"]);
    let (out, json, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["calls"], 160);
    let drivers = v["drivers"]["drivers"].as_array().expect("drivers");
    assert!(!drivers.is_empty());
    let ensemble = v["drivers"]["ensemble_accuracy"].as_f64().unwrap();
    let majority = v["drivers"]["majority_accuracy"].as_f64().unwrap();
    assert!(
        ensemble > majority,
        "ensemble {ensemble} vs majority {majority}"
    );
    let toward = |word: &[&str], side: &str| {
        drivers.iter().any(|d| {
            any_of(d["feature"].as_str().unwrap(), word) && d["toward"].as_str() == Some(side)
        })
    };
    assert!(
        toward(&["한도", "이자", "수수료", "연체", "복잡"], "Negative"),
        "{json}"
    );
    assert!(
        toward(&["혜택", "친절", "포인트", "할인", "만족"], "Positive"),
        "{json}"
    );

    let mut c = sangdam(&data, models);
    c.arg("recommend");
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    eprintln!("{stdout}");
    assert!(stdout.contains("improve: "), "{stdout}");
    assert!(stdout.contains("promote: 쉐어링 카드"), "{stdout}");
    assert!(stdout.contains("per call"), "{stdout}");

    let page = dir.path().join("report.html");
    let mut c = sangdam(&data, models);
    c.args(["report", "--html", page.to_str().unwrap()]);
    let (out, _, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.matches("<svg").count() >= 5, "charts missing");
    assert!(html.contains("한도") && html.contains("쉐어링 카드"));
    // Self-contained: nothing is fetched from elsewhere.
    for bad in ["<script src", "<link", "src=\"http", "url(http"] {
        assert!(!html.contains(bad), "the page loads {bad}");
    }
}

#[test]
fn serve_answers_on_localhost_and_stops_when_killed() {
    use crate::security::{add_test_viewer, Served};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill_store(&data, 40);
    add_test_viewer(&data);
    let mut c = sangdam(&data, Path::new("models"));
    c.args(["serve", "--addr", "127.0.0.1:0"]);
    let mut served = Served::start(c);
    let token = served.login();
    let page = served.get("/", "localhost", Some(&token));
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("<svg") && page.contains("한도"));
    assert!(served
        .get("/nope", "localhost", Some(&token))
        .starts_with("HTTP/1.1 404"));
    let child = served.child();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_empty_store_says_why_there_is_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut c = sangdam(&data, Path::new("models"));
    c.arg("insights");
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("insights over 0 calls"), "{stdout}");
    assert!(stdout.contains("drivers: none:"), "{stdout}");
    let mut c = sangdam(&data, Path::new("models"));
    c.arg("recommend");
    let (out, stdout, _) = run(c);
    assert!(out.status.success());
    assert!(stdout.contains("no recommendations yet"), "{stdout}");
}

/// Neutral calls and utterances go into neither side of the keyword split: they are
/// counted beside it (per period, per day, on the page), but their keywords are in no
/// list, and the drivers and recommendations see only the polar calls.
#[test]
fn the_keyword_split_leaves_neutral_calls_and_utterances_out() {
    use sangdam::insights::keywords::Keywords;
    use sangdam::insights::report::render;
    use sangdam::insights::run::{load_docs, load_or_refresh, page};
    use sangdam::sentiment::{Label, Sentiment};

    const NEGATIVE: &str = "카드 한도가 너무 낮아서 불편해요";
    const POSITIVE: &str = "상담원분이 친절하게 설명해 주셔서 감사합니다";
    // Said in every kind of call, always neutral: its words must be on no side.
    const ASIDE: &str = "주민등록번호 뒷자리 불러 드릴게요";
    // Only in the neutral calls.
    const NEUTRAL_ONLY: &str = "배송지 주소 확인 부탁드립니다";
    let keywords = Keywords::new(&[]);
    let aside_words = keywords.extract(ASIDE);
    let neutral_words = keywords.extract(NEUTRAL_ONLY);
    assert!(!aside_words.is_empty() && !neutral_words.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let label = |label: Label, p: f32| {
        Some(Sentiment {
            label,
            p_positive: p,
            truncated_chars: 0,
        })
    };
    let (mut polar, mut neutral) = (0, 0);
    for k in 0u64..60 {
        // Every third call neutral; the others alternate negative and positive.
        let kind = if k % 3 == 2 { None } else { Some(k % 2 == 0) };
        let mut utts = vec![UtteranceRecord {
            channel: 1,
            speaker: Speaker::Customer,
            start_s: 0.0,
            end_s: 2.0,
            text: ASIDE.into(),
            sentiment: label(Label::Neutral, 0.52),
        }];
        utts.push(UtteranceRecord {
            channel: 1,
            speaker: Speaker::Customer,
            start_s: 3.0,
            end_s: 5.0,
            text: match kind {
                Some(true) => NEGATIVE,
                Some(false) => POSITIVE,
                None => NEUTRAL_ONLY,
            }
            .into(),
            sentiment: match kind {
                Some(true) => label(Label::Negative, 0.08),
                Some(false) => label(Label::Positive, 0.93),
                None => label(Label::Neutral, 0.47),
            },
        });
        let scored: Vec<Scored> = utts
            .iter()
            .map(|u| Scored {
                speaker: u.speaker,
                start_s: u.start_s,
                end_s: u.end_s,
                sentiment: u.sentiment.unwrap(),
            })
            .collect();
        let summary = CallSentiment::summarize("sentiment-ko@test", 6.0, &scored);
        match kind {
            Some(_) => polar += 1,
            None => {
                assert_eq!(summary.overall, Label::Neutral);
                neutral += 1;
            }
        }
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(k + 1).to_be_bytes());
        let call = CallRecord {
            id: CallId(id),
            source: format!("/rec/n{k}.wav"),
            duration_s: 6.0,
            sample_rate: 8_000,
            channels: 2,
            analysed_at: 1_764_000_000 + (k % 3) * 86_400 + k,
            utterance_count: utts.len() as u32,
            asr_model: "asr-ko@test".into(),
            sentiment: Some(summary),
            talk: None,
            live: None,
        };
        store.insert_call(&call, &utts).unwrap();
    }

    let d = load_docs(&store, &keywords, usize::MAX).unwrap();
    assert_eq!(
        (d.docs.len(), d.neutral.len(), d.left_out),
        (polar, neutral, 0)
    );
    for doc in &d.docs {
        assert!(
            !doc.keywords.iter().any(|k| aside_words.contains(k)),
            "a neutral utterance's keywords in a polar call: {:?}",
            doc.keywords
        );
        // Its text is still there for examples and product mentions.
        assert!(doc.texts.iter().any(|t| t == ASIDE));
    }

    let cfg = sangdam::config::InsightsConfig::default();
    let (i, _) = load_or_refresh(&store, &cfg, true, 1_764_400_000).unwrap();
    assert_eq!(
        (i.calls, i.neutral_calls, i.calls_left_out),
        (polar, neutral, 0)
    );
    let all = i.periods.last().unwrap();
    assert_eq!(
        (
            all.calls,
            all.negative_calls,
            all.positive_calls,
            all.neutral_calls
        ),
        (polar as u64, 20, 20, neutral as u64)
    );
    let listed: Vec<&str> = all
        .top
        .iter()
        .chain(&all.top_negative)
        .chain(&all.top_positive)
        .map(|k| k.keyword.as_str())
        .chain(all.over_negative.iter().map(|c| c.keyword.as_str()))
        .chain(all.over_positive.iter().map(|c| c.keyword.as_str()))
        .collect();
    assert!(!listed.is_empty());
    for w in aside_words.iter().chain(&neutral_words) {
        assert!(!listed.contains(&w.as_str()), "{w} listed: {listed:?}");
    }
    // The complaint side is the negative calls' words.
    assert!(keywords
        .extract(NEGATIVE)
        .iter()
        .any(|w| all.top_negative.iter().any(|k| &k.keyword == w)));
    let neutral_per_day: u64 = i.neutral_days.iter().map(|(_, n)| n).sum();
    assert_eq!(neutral_per_day, neutral as u64);
    // Stored and read back, the insights are not recomputed: the neutral calls count
    // among the calls they cover.
    let (again, recomputed) = load_or_refresh(&store, &cfg, false, 1_764_400_000).unwrap();
    assert!(!recomputed);
    assert_eq!(
        (again.calls, again.neutral_calls, &again.neutral_days),
        (i.calls, i.neutral_calls, &i.neutral_days)
    );
    // The page shows the neutral segment and says what the split is over.
    let html = render(&page(&i, "t"));
    assert!(
        html.contains(&format!("중립 neutral {neutral} (")),
        "{html}"
    );
    assert!(html.contains(&format!(
        "{polar} polar calls (positive or negative) and {neutral} neutral calls"
    )));
    assert!(html.contains("Positive, negative and neutral calls per day"));
    let text = sangdam::insights::run::insights_text(&i);
    assert!(text.contains(&format!("; {neutral} neutral")), "{text}");
}
