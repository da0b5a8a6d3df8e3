//! `sangdam-host eval` as a library function ([`sangdam_host::eval::run`]): every model on
//! every set, in order, through the firmware's engine; the shipped speech model scored on
//! the real clip gives the CER its manifest records.

use std::path::Path;
use std::sync::Arc;

use sangdam_host::eval::{self, EvalRun};

#[test]
fn run_scores_each_set_and_reproduces_the_manifests_real_clip_cer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let real = root.join("../shared/data/speech-real");
    if !real.join("transcripts.tsv").exists() {
        eprintln!("SKIPPED: {} is not there", real.display());
        return;
    }
    let manifest = sangdam::models::Manifest::load(&root.join("models")).unwrap();
    let entry = manifest.get("asr-ko").unwrap();
    let recorded = entry.scores["cer_real_clip_int8"];
    let model = root.join("models").join(&entry.file);
    let vocab = root.join("models/asr-ko/vocab.json");

    // A split of `corpus index`'s format holding the same clip twice; limit keeps one.
    let dir = tempfile::tempdir().unwrap();
    let items = eval::real_clip_items(&real).unwrap();
    assert_eq!(items.len(), 1);
    let line = serde_json::to_string(&items[0]).unwrap();
    let split = dir.path().join("clip.jsonl");
    std::fs::write(&split, format!("{line}\n{line}\n")).unwrap();

    let rows = eval::run(&EvalRun {
        models: std::slice::from_ref(&model),
        vocab: &vocab,
        splits: std::slice::from_ref(&split),
        real: Some(&real),
        real_dev: None,
        limit: 1,
        decoder_name: "greedy",
        decoder: Arc::new(sangdam::asr::GreedyDecoder),
    })
    .unwrap();
    let sets: Vec<&str> = rows.iter().map(|r| r.set.as_str()).collect();
    assert_eq!(sets, ["clip", "real clip"]);
    for r in &rows {
        assert_eq!(r.utterances, 1, "{}", r.set);
        assert_eq!(r.decoder, "greedy");
        assert!(
            (r.cer - recorded).abs() < 5e-4,
            "{}: CER {} but the manifest records {recorded}",
            r.set,
            r.cer
        );
    }
    assert!(eval::table(&rows).contains("real clip"));
}
