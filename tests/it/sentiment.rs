//! The shipped sentiment model through tract: its manifest entry, its accuracy on a slice
//! of the NSMC-like test split, hostile texts, `sangdam sentiment`, and calls analysed
//! with it (labels per utterance, per-speaker scores, trend, day counters), with and
//! without a neutral band in its manifest entry.

use std::io::Write;
use std::process::Stdio;

use sangdam::sentiment::{Label, Sentiment, SentimentEngine};

use crate::cli::{make_call, run, sangdam};
use crate::support::{add_shipped_sentiment, fixture_models, shipped_sentiment};

fn engine() -> SentimentEngine {
    let m = shipped_sentiment();
    SentimentEngine::load(&m.file, m.vocab.as_ref().unwrap()).unwrap()
}

#[test]
fn shipped_model_is_small_int8_and_scored() {
    let m = shipped_sentiment();
    assert!(
        m.entry.bytes <= 5_000_000,
        "{} bytes: over the 5 MB budget",
        m.entry.bytes
    );
    assert_eq!(m.entry.quantization.as_deref(), Some("int8"));
    assert_eq!(
        m.entry.labels.as_deref(),
        Some(&["negative".to_string(), "positive".to_string()][..])
    );
    let acc = m.entry.scores["accuracy_nsmc_like_test_int8"];
    let f32_acc = m.entry.scores["accuracy_nsmc_like_test_f32"];
    assert!(acc >= 0.87, "recorded int8 accuracy {acc}");
    assert!(
        (acc - f32_acc).abs() <= 0.005,
        "int8 {acc} vs f32 {f32_acc}"
    );
}

#[test]
fn accuracy_on_a_slice_of_the_test_split() {
    let text = std::fs::read_to_string("../shared/data/nsmc-like/test.tsv")
        .expect("../shared/data/nsmc-like/test.tsv next to the checkout");
    let rows: Vec<(String, bool)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut p = l.split('\t');
            let (_, doc, label) = (p.next()?, p.next()?, p.next()?);
            Some((doc.to_string(), label.trim() == "1"))
        })
        .take(3000)
        .collect();
    let e = engine();
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let mut right = 0;
    for (chunk, labels) in texts.chunks(64).zip(rows.chunks(64)) {
        for (s, (_, positive)) in e.classify_batch(chunk).unwrap().iter().zip(labels) {
            right += usize::from((s.label == Label::Positive) == *positive);
        }
    }
    let acc = right as f64 / rows.len() as f64;
    // The whole 50k split is measured in BENCHMARKS.md; a 3000-row slice varies by about
    // a point around it.
    assert!(acc > 0.85, "accuracy {acc} on the first 3000 test rows");
}

#[test]
fn clear_sentences_get_the_obvious_label() {
    let e = engine();
    let positive = [
        "정말 재미있고 감동적인 영화였어요",
        "최고예요 강력 추천합니다",
        "친절하게 설명해 주셔서 정말 감사합니다",
        "배우들 연기가 너무 좋았다 ㅋㅋㅋ",
    ];
    let negative = [
        "최악이다 돈이 아깝다",
        "너무 지루하고 재미없어요",
        "시간 낭비였다 다시는 안 본다",
        "짜증나고 실망스럽네요",
    ];
    for t in positive {
        let s = e.classify(t).unwrap();
        assert_eq!(s.label, Label::Positive, "{t}: {s:?}");
    }
    for t in negative {
        let s = e.classify(t).unwrap();
        assert_eq!(s.label, Label::Negative, "{t}: {s:?}");
    }
}

#[test]
fn hostile_texts_have_defined_results() {
    let e = engine();
    assert_eq!(e.classify("").unwrap(), Sentiment::EMPTY);
    assert_eq!(e.classify(" \t\n\u{200B} ").unwrap(), Sentiment::EMPTY);
    for t in [
        "this movie is great",
        "12345",
        "😀😀😀🎉",
        "ㅋㅋㅋㅋㅋㅋㅋ",
        "?!",
        "\u{0}\u{1}x",
    ] {
        let s = e.classify(t).unwrap();
        assert!(s.label != Label::Empty, "{t:?}");
        assert!((0.0..=1.0).contains(&s.p_positive), "{t:?}: {s:?}");
        assert_eq!(s.truncated_chars, 0);
    }
    // 1 MB of text: cut at the model's limit, the cut counted, memory bounded by the limit.
    let limit = e.tokenizer().data().max_chars;
    let long = "정말 재미없다 ".repeat(1_000_000 / "정말 재미없다 ".len());
    assert!(long.len() >= 990_000);
    let s = e.classify(&long).unwrap();
    assert_eq!(s.label, Label::Negative);
    assert_eq!(s.truncated_chars, long.trim_end().chars().count() - limit);
    // Batches mixing all of them.
    let out = e.classify_batch(&["", "좋다", &long, "😀"]).unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[0].label, Label::Empty);
}

#[test]
fn sentiment_command_reads_arguments_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let models = std::path::Path::new("models");
    let mut c = sangdam(&dir.path().join("data"), models);
    c.args([
        "sentiment",
        "정말 최고의 상담이었어요 감사합니다",
        "최악이다 돈 아깝다",
    ]);
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("positive\t"), "{stdout}");
    assert!(lines[1].starts_with("negative\t"), "{stdout}");
    let p: f64 = lines[1].split('\t').nth(1).unwrap().parse().unwrap();
    assert!((0.5..=1.0).contains(&p));
    assert!(lines[1].ends_with("최악이다 돈 아깝다"));

    let mut child = sangdam(&dir.path().join("data"), models)
        .arg("sentiment")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("재미있어요\n\n지루해요\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[1].starts_with("empty\t"), "{stdout}");
}

#[test]
fn analysed_calls_carry_sentiment_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let models = fixture_models(root, "model.onnx");
    add_shipped_sentiment(&models);
    let data = root.join("data");
    let call = make_call(
        root,
        "s1",
        "안녕하세요 상담원입니다",
        "카드 한도가 너무 낮아요",
    );
    let mut c = sangdam(&data, &models);
    c.arg("analyze").arg(&call);
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sentiment "), "{stderr}");
    assert!(stderr.contains("today ("), "{stderr}");

    let mut c = sangdam(&data, &models);
    c.args(["export", "--format", "jsonl"]);
    let (_, stdout_export, _) = run(c);
    let o: serde_json::Value = serde_json::from_str(stdout_export.lines().next().unwrap()).unwrap();
    let s = &o["sentiment"];
    assert!(
        s["model"].as_str().unwrap().starts_with("sentiment-ko@"),
        "{o}"
    );
    let utts = o["utterances"].as_array().unwrap();
    let (mut pos, mut neg, mut neu) = (0u64, 0u64, 0u64);
    for u in utts {
        // The fixture ASR model has random weights, so the texts are arbitrary; each
        // utterance still gets a defined label and probability.
        let label = u["sentiment"]["label"].as_str().unwrap();
        let p = u["sentiment"]["p_positive"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        match label {
            "positive" => pos += 1,
            "negative" => neg += 1,
            "neutral" => neu += 1,
            "empty" => assert!(u["text"].as_str().unwrap().trim().is_empty()),
            other => panic!("label {other}"),
        }
    }
    let overall = s["overall"].as_str().unwrap();
    assert!(["positive", "negative", "neutral", "empty"].contains(&overall));

    let id = o["id"].as_str().unwrap();
    let mut c = sangdam(&data, &models);
    c.args(["show", &id[..8]]);
    let (out, show, _) = run(c);
    assert!(out.status.success());
    assert!(show.contains(&format!("sentiment {overall}")), "{show}");
    assert!(show.contains("trend"), "{show}");
    let calls_pos = u64::from(overall == "positive");
    let calls_neg = u64::from(overall == "negative");
    let calls_neu = u64::from(overall == "neutral");
    assert!(
        show.contains(&format!(
            "1 calls ({calls_pos} positive, {calls_neg} negative, {calls_neu} neutral), {} utterances ({pos} positive, {neg} negative, {neu} neutral)",
            utts.len()
        )),
        "{show}"
    );
    let _ = stdout;
}

/// The shipped model with a neutral band: the band labels, the probability stays.
#[test]
fn a_neutral_band_labels_the_shipped_models_middle_neutral() {
    let plain = engine();
    assert_eq!(plain.neutral_band(), None);
    let texts = [
        "네",
        "잠시만요",
        "카드 번호 불러 드릴게요",
        "정말 재미있고 감동적인 영화였어요",
        "최악이다 돈이 아깝다",
        "",
    ];
    let before = plain.classify_batch(&texts).unwrap();
    assert!(
        before.iter().all(|s| s.label != Label::Neutral),
        "no band, no neutral: {before:?}"
    );
    // A band around what the model gives "잠시만요": that text is neutral now, and so is
    // every text whose probability falls inside; the others keep their side.
    let p = before[1].p_positive;
    let band = [(p - 0.02).max(0.0), (p + 0.02).min(1.0)];
    let banded = engine().with_neutral_band(Some(band));
    assert_eq!(banded.neutral_band(), Some(band));
    let after = banded.classify_batch(&texts).unwrap();
    assert_eq!(after[1].label, Label::Neutral, "{:?}", after[1]);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            a.p_positive, b.p_positive,
            "the probability is still reported"
        );
        assert_eq!(a.truncated_chars, b.truncated_chars);
        let want = if b.label == Label::Empty {
            Label::Empty
        } else {
            Label::of(b.p_positive, Some(band))
        };
        assert_eq!(a.label, want, "{a:?}");
    }
    // One text alone gets the same label as in the batch.
    assert_eq!(banded.classify("잠시만요").unwrap().label, Label::Neutral);
    // The clear sentences are far outside a middle band of [0.3, 0.7].
    let wide = engine().with_neutral_band(Some([0.3, 0.7]));
    assert_eq!(
        wide.classify("정말 재미있고 감동적인 영화였어요")
            .unwrap()
            .label,
        Label::Positive
    );
    assert_eq!(
        wide.classify("최악이다 돈이 아깝다").unwrap().label,
        Label::Negative
    );
    assert_eq!(wide.classify("").unwrap(), Sentiment::EMPTY);
}

/// The band from the manifest reaches `sangdam sentiment` and `analyze`: with a band
/// covering every probability, every utterance with text and the call are neutral, and
/// the day counts them as such.
#[test]
fn the_manifests_neutral_band_reaches_the_commands_and_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let models = fixture_models(root, "model.onnx");
    add_shipped_sentiment(&models);
    let mut manifest = sangdam::models::Manifest::load(&models).unwrap();
    for m in &mut manifest.models {
        if m.name == "sentiment-ko" {
            m.neutral_band = Some([0.0, 1.0]);
        }
    }
    std::fs::write(
        models.join("manifest.toml"),
        toml::to_string(&manifest).unwrap(),
    )
    .unwrap();
    let data = root.join("data");
    let mut c = sangdam(&data, &models);
    c.args([
        "sentiment",
        "최악이다 돈 아깝다",
        "정말 최고의 상담이었어요",
    ]);
    let (out, stdout, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("neutral\t")), "{stdout}");

    let call = make_call(root, "n1", "잠시만요 확인해 드릴게요", "네 알겠습니다");
    let mut c = sangdam(&data, &models);
    c.arg("analyze").arg(&call);
    let (out, _, stderr) = run(c);
    assert!(out.status.success(), "{stderr}");
    let mut c = sangdam(&data, &models);
    c.args(["export", "--format", "jsonl"]);
    let (_, export, _) = run(c);
    let o: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    let utts = o["utterances"].as_array().unwrap();
    let mut neutral = 0;
    for u in utts {
        let label = u["sentiment"]["label"].as_str().unwrap();
        if u["text"].as_str().unwrap().trim().is_empty() {
            assert_eq!(label, "empty");
        } else {
            assert_eq!(label, "neutral", "{u}");
            neutral += 1;
        }
    }
    eprintln!(
        "{neutral} of {} utterances with text, all neutral",
        utts.len()
    );
    let overall = o["sentiment"]["overall"].as_str().unwrap();
    let calls_neutral = u64::from(overall == "neutral");
    if neutral > 0 {
        assert_eq!(overall, "neutral", "{o}");
    }
    let id = o["id"].as_str().unwrap();
    let mut c = sangdam(&data, &models);
    c.args(["show", &id[..8]]);
    let (out, show, _) = run(c);
    assert!(out.status.success());
    assert!(
        show.contains(&format!(
            "1 calls (0 positive, 0 negative, {calls_neutral} neutral), {} utterances (0 positive, 0 negative, {neutral} neutral)",
            utts.len()
        )),
        "{show}"
    );
}
