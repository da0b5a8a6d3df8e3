//! `sangdam-host corpus index` on a small AI Hub-style tree with the awkward cases:
//! separate audio/label trees, raw .pcm, CP949 and BOM-prefixed UTF-8 transcripts, dual
//! spellings and noise tags, unpaired files on both sides, a duplicated key, a transcript
//! that is only noise tags, and a damaged WAV.

use std::path::Path;
use std::process::Command;

use sangdam::audio::{WavWriter, WriteFormat};
use sangdam_host::corpus::{self, SpeakerFrom, Spelling};

fn wav(path: &Path, seconds: f64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = WavWriter::create(path, 16_000, 1, WriteFormat::Pcm16).unwrap();
    let n = (seconds * 16_000.0) as usize;
    let x: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect();
    w.write_interleaved(&x).unwrap();
    w.finish().unwrap();
}

fn text(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn build(root: &Path) {
    let a = root.join("원천데이터/상담/SPK001");
    let b = root.join("원천데이터/상담/SPK002");
    let l = root.join("라벨링데이터/상담");
    wav(&a.join("SPK001_0001.wav"), 1.0);
    text(
        &l.join("SPK001/SPK001_0001.txt"),
        "b/ 카드 (3만원)/(삼 만 원) 결제했어요 n/\n".as_bytes(),
    );
    // Raw 16 kHz s16le, 0.5 s.
    std::fs::write(a.join("SPK001_0002.pcm"), vec![0u8; 16_000]).unwrap();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice("음/ 한도+ 한도 올려 주세요*".as_bytes());
    text(&l.join("SPK001/SPK001_0002.txt"), &bom);
    // CP949: "감사합니다" encoded by encoding_rs's EUC-KR encoder (CP949 superset).
    wav(&b.join("SPK002_0001.wav"), 2.0);
    let (cp949, _, _) = encoding_rs::EUC_KR.encode("감사합니다");
    text(&l.join("SPK002/SPK002_0001.txt"), &cp949);
    // Only noise tags: skipped.
    wav(&b.join("SPK002_0002.wav"), 1.0);
    text(&l.join("SPK002/SPK002_0002.txt"), b"b/ n/ l/");
    // Unpaired on both sides.
    wav(&b.join("SPK002_0003.wav"), 1.0);
    text(&l.join("SPK002/SPK002_0099.txt"), "없는 음성".as_bytes());
    // Duplicate key in two folders.
    wav(&a.join("DUP_0001.wav"), 1.0);
    wav(&b.join("DUP_0001.wav"), 1.0);
    text(&l.join("DUP_0001.txt"), "중복".as_bytes());
    // Damaged audio.
    text(&b.join("SPK002_0004.wav"), b"RIFF\x10\0\0\0WAVEjunk");
    text(&l.join("SPK002/SPK002_0004.txt"), "망가진 파일".as_bytes());
}

#[test]
fn index_pairs_reads_and_normalises() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let idx = corpus::index(dir.path(), Spelling::Orthographic, SpeakerFrom::Folder).unwrap();
    let by_key = |k: &str| {
        idx.items
            .iter()
            .find(|i| i.key == k)
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    assert_eq!(idx.items.len(), 3, "{:#?}", idx.items);
    assert_eq!(by_key("SPK001_0001").text, "카드 3만원 결제했어요");
    assert_eq!(by_key("SPK001_0001").speaker, "SPK001");
    assert!((by_key("SPK001_0001").seconds - 1.0).abs() < 1e-9);
    assert_eq!(by_key("SPK001_0002").text, "음 한도 한도 올려 주세요");
    assert!((by_key("SPK001_0002").seconds - 0.5).abs() < 1e-9);
    assert_eq!(by_key("SPK002_0001").text, "감사합니다");
    assert_eq!(idx.audio_without_text.len(), 1);
    assert!(idx.audio_without_text[0].ends_with("SPK002_0003.wav"));
    assert_eq!(idx.text_without_audio.len(), 1);
    assert!(idx.text_without_audio[0].ends_with("SPK002_0099.txt"));
    let reasons: Vec<&str> = idx.problems.iter().map(|p| p.reason.as_str()).collect();
    assert_eq!(idx.problems.len(), 3, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("keys must be unique")));
    assert!(reasons.iter().any(|r| r.contains("empty")));
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("WAV") || r.contains("truncated")),
        "{reasons:?}"
    );

    let phonetic = corpus::index(dir.path(), Spelling::Phonetic, SpeakerFrom::StemPrefix).unwrap();
    let it = phonetic
        .items
        .iter()
        .find(|i| i.key == "SPK001_0001")
        .unwrap();
    assert_eq!(it.text, "카드 삼 만 원 결제했어요");
    assert_eq!(it.speaker, "SPK001");
}

#[test]
fn cli_writes_splits_and_a_vocab_the_firmware_loads() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let out = dir.path().join("index");
    let o = Command::new(env!("CARGO_BIN_EXE_sangdam-host"))
        .args(["corpus", "index"])
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .args(["--dev", "0", "--test", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("unpaired audio") && stderr.contains("unpaired transcript"),
        "{stderr}"
    );
    let train = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    assert_eq!(train.lines().count(), 3);
    // The firmware's own Vocab loader accepts it: dense ids, [PAD] present, '|' at 0.
    let v = sangdam::asr::Vocab::load(&out.join("vocab.json")).unwrap();
    assert_eq!(v.delimiter(), Some(0));
    assert_eq!(v.token(v.blank()), Some("[PAD]"));
    assert_eq!(v.token(v.blank() - 1), Some("[UNK]"));
}

#[test]
fn synth_writes_an_ai_hub_tree_that_index_reads_with_held_out_test() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synth");
    let o = Command::new(env!("CARGO_BIN_EXE_sangdam-host"))
        .args([
            "corpus",
            "synth",
            "--count",
            "24",
            "--seed",
            "5",
            "--test-fraction",
            "0.3",
            "--out",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: corpus::synth::SynthSummary =
        serde_json::from_str(&std::fs::read_to_string(root.join("synth.json")).unwrap()).unwrap();
    assert_eq!(summary.utterances, 24);
    assert!(summary.test_utterances > 0 && summary.test_utterances < 24);
    let idx = corpus::index(&root, Spelling::Orthographic, SpeakerFrom::Folder).unwrap();
    assert_eq!(idx.items.len(), 24, "{:?}", idx.problems);
    assert!(idx.audio_without_text.is_empty() && idx.text_without_audio.is_empty());
    let splits = corpus::split_with_test_speakers(&idx.items, 0.0, 0.0, &summary.test_speakers);
    let test = &splits["test"];
    let train = &splits["train"];
    assert_eq!(test.len(), summary.test_utterances);
    // Held out twice: no test sentence and no test voice appears in train.
    for t in test {
        assert!(
            train.iter().all(|r| r.text != t.text),
            "{} is in train too",
            t.text
        );
        assert!(train.iter().all(|r| r.speaker != t.speaker));
    }
    // Written back at 16 kHz mono, with a plausible length for one sentence.
    for it in &idx.items {
        assert!(
            it.seconds > 0.5 && it.seconds < 10.0,
            "{}: {} s",
            it.key,
            it.seconds
        );
        let f = sangdam::audio::CallFile::open(&it.audio).unwrap();
        assert_eq!((f.spec().sample_rate, f.spec().channels), (16_000, 1));
    }
}

/// The language model's text (`lm build` as scripts/build-lm-ko runs it, minus the
/// corpus-specific --exclude files) holds none of the synthetic corpus's test
/// sentences, so the LM's gain on the test split is not a memorised answer.
#[test]
fn the_language_models_text_holds_no_test_sentence() {
    use sangdam_host::corpus::synth;
    let tsv = Path::new("../../shared/data/nsmc-like/train.tsv");
    let tsv = if tsv.exists() {
        tsv.to_path_buf()
    } else {
        Path::new("../shared/data/nsmc-like/train.tsv").to_path_buf()
    };
    let settings = synth::SynthSettings {
        count: 24_000,
        seed: 1,
        extra_sentences: synth::sentences_from_tsv(&tsv).unwrap(),
        extra_fraction: 0.3,
        ..Default::default()
    };
    let test: std::collections::BTreeSet<String> = synth::planned_sentences(&settings)
        .into_iter()
        .filter(|(_, t)| *t)
        .map(|(s, _)| s.replace(' ', ""))
        .collect();
    assert!(test.len() > 300, "{} test sentences", test.len());
    let src = |test_fraction| sangdam_host::lm::TextSources {
        templates: 300_000,
        template_seed: 7,
        tsv: vec![tsv.clone()],
        test_fraction,
        ..Default::default()
    };
    let (text, dropped) = sangdam_host::lm::gather(&src(0.1)).unwrap();
    assert!(dropped > 0 && text.len() > 100_000);
    let leaked = text
        .iter()
        .filter(|s| test.contains(&s.replace(' ', "")))
        .count();
    assert_eq!(leaked, 0, "test sentences in the LM's text");
    // Without the hash rule they would be there: the check above can fail.
    let (all, _) = sangdam_host::lm::gather(&src(0.0)).unwrap();
    assert!(all.iter().any(|s| test.contains(&s.replace(' ', ""))));
}

/// `lm build` writes the binary and ARPA forms; `lm convert` turns the ARPA back into
/// the same model (to ARPA's six decimals); --exclude leaves sentences out; a cut file
/// is refused by name.
#[test]
fn lm_build_convert_and_exclude() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("mine.txt");
    std::fs::write(
        &text,
        "쉐어링 카드 한도를 올려 주세요\n쉐어링 카드 발급이 늦어요\n요금이 많이 나왔어요\n가족 결합 할인 문의드려요\n",
    )
    .unwrap();
    let skip = dir.path().join("skip.txt");
    std::fs::write(&skip, "가족 결합 할인 문의드려요\n").unwrap();
    let bin = dir.path().join("lm.bin");
    let arpa = dir.path().join("lm.arpa");
    let o = Command::new(env!("CARGO_BIN_EXE_sangdam-host"))
        .args([
            "lm",
            "build",
            "--order",
            "3",
            "--cutoffs",
            "1",
            "--test-fraction",
            "0",
            "--text",
        ])
        .arg(&text)
        .arg("--exclude")
        .arg(&skip)
        .arg("--out")
        .arg(&bin)
        .arg("--arpa")
        .arg(&arpa)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("3 sentences (1 held out)"), "{stdout}");
    let lm = sangdam::asr::NgramLm::load(&bin).unwrap();
    assert_eq!(lm.order(), 3);
    assert!(
        lm.id("결").is_none(),
        "an excluded sentence's syllable is in the LM"
    );
    let converted = dir.path().join("converted.bin");
    let o = Command::new(env!("CARGO_BIN_EXE_sangdam-host"))
        .args(["lm", "convert"])
        .arg(&arpa)
        .arg("--out")
        .arg(&converted)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let back = sangdam::asr::NgramLm::load(&converted).unwrap();
    assert_eq!(back.counts(), lm.counts());
    let units = sangdam::asr::lm::units_of("쉐어링 카드 한도를 올려 주세요");
    assert!((back.sentence_log10(&units) - lm.sentence_log10(&units)).abs() < 1e-3);
    // Cut short: refused, by name.
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() - 10]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sangdam-host"))
        .args(["lm", "convert"])
        .arg(&bin)
        .arg("--out")
        .arg(dir.path().join("x.bin"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("lm.bin"), "{stderr}");
}

#[test]
fn index_as_a_function_writes_the_splits_and_reports_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let out = dir.path().join("index");
    let r = corpus::write_index(
        dir.path(),
        &out,
        &corpus::IndexSettings {
            test_speakers: vec!["SPK002".into()],
            ..Default::default()
        },
    )
    .unwrap();
    // SPK001's two utterances train, SPK002's one is the named test speaker's.
    let counts: Vec<(&str, usize)> = r.splits.iter().map(|(s, n, _)| (*s, *n)).collect();
    assert_eq!(counts, [("test", 1), ("train", 2)], "{:?}", r.splits);
    let hours: f64 = r.splits.iter().map(|(_, _, h)| h).sum();
    assert!((hours * 3600.0 - 3.5).abs() < 1e-6, "{hours}");
    for name in ["train", "test"] {
        let text = std::fs::read_to_string(out.join(format!("{name}.jsonl"))).unwrap();
        let n = r.splits.iter().find(|(s, _, _)| *s == name).unwrap().1;
        assert_eq!(text.lines().count(), n, "{name}");
    }
    // The vocabulary is the training split's and the firmware loads it.
    let v = sangdam::asr::Vocab::load(&r.vocab_path).unwrap();
    assert_eq!(v.len(), r.vocab_tokens);
    assert_eq!(r.index.audio_without_text.len(), 1);
    assert_eq!(r.index.text_without_audio.len(), 1);
    assert_eq!(r.index.problems.len(), 3);
    // The jamo option decomposes what it writes.
    let jamo_out = dir.path().join("jamo");
    let j = corpus::write_index(
        dir.path(),
        &jamo_out,
        &corpus::IndexSettings {
            jamo: true,
            ..Default::default()
        },
    )
    .unwrap();
    let train = std::fs::read_to_string(jamo_out.join("train.jsonl")).unwrap();
    assert!(
        !train.contains("카드") && train.contains("\u{110F}\u{1161}\u{1103}\u{1173}"),
        "{train}"
    );
    let vocab = std::fs::read_to_string(&j.vocab_path).unwrap();
    assert!(
        !vocab.contains("\"카\"") && vocab.contains("\"\u{110F}\""),
        "{vocab}"
    );
}
