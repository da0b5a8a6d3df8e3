//! A damaged store: sled's files truncated, bit-flipped or emptied after calls were
//! acknowledged. sled itself opens such stores silently with calls missing (measured,
//! RELIABILITY.md); the journal of acknowledged calls must catch it, keep the damaged
//! files aside, rebuild every acknowledged call, and the next start must be clean.

use std::path::Path;

use sangdam::audio::Speaker;
use sangdam::store::journal::JOURNAL_FILE;
use sangdam::store::{CallId, CallRecord, Inserted, Store, UtteranceRecord};

fn call(k: u64) -> (CallRecord, Vec<UtteranceRecord>) {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(k + 1).to_be_bytes());
    let utts: Vec<UtteranceRecord> = (0..3)
        .map(|i| UtteranceRecord {
            channel: (i % 2) as u16,
            speaker: if i % 2 == 0 {
                Speaker::Agent
            } else {
                Speaker::Customer
            },
            start_s: i as f64,
            end_s: i as f64 + 0.8,
            text: format!("카드 한도 문의 {k} {i} {}", "가".repeat(200)),
            sentiment: None,
        })
        .collect();
    let rec = CallRecord {
        id: CallId(id),
        source: format!("/rec/{k}.wav"),
        duration_s: 30.0,
        sample_rate: 8_000,
        channels: 2,
        analysed_at: 1_764_000_000 + (k % 3) * 86_400,
        utterance_count: 3,
        asr_model: "asr-ko@test".into(),
        sentiment: None,
        talk: None,
        live: None,
    };
    (rec, utts)
}

const CALLS: u64 = 60;

fn fill(dir: &Path) {
    let s = Store::open(dir).unwrap();
    for k in 0..CALLS {
        let (c, u) = call(k);
        assert_eq!(s.insert_call(&c, &u).unwrap(), Inserted::New);
    }
}

fn check_complete(s: &Store) {
    let calls = s.calls().unwrap();
    assert_eq!(calls.len() as u64, CALLS);
    for c in &calls {
        assert_eq!(s.utterances(&c.id).unwrap().len(), 3);
    }
    let counted: u64 = s.days().unwrap().iter().map(|(_, d)| d.calls).sum();
    assert_eq!(counted, CALLS);
}

fn damage_and_recover(name: &str, damage: impl Fn(&Path)) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fill(&dir);
    damage(&dir);
    let s = Store::open(&dir).unwrap_or_else(|e| panic!("{name}: does not start: {e}"));
    let r = s
        .recovery()
        .unwrap_or_else(|| panic!("{name}: damage not detected"));
    eprintln!("{name}: {r:?}");
    assert!(r.kept_at.exists(), "{name}: damaged copy not kept");
    assert!(r.kept_at.join("db").exists() || r.kept_at.join(JOURNAL_FILE).exists());
    check_complete(&s);
    drop(s);
    // The next start finds a healthy store: no recovery loop.
    let s = Store::open(&dir).unwrap();
    assert!(
        s.recovery().is_none(),
        "{name}: recovered again on the next start"
    );
    check_complete(&s);
}

#[test]
fn truncated_db_is_detected_and_rebuilt() {
    damage_and_recover("truncated to 4 KiB", |d| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("db"))
            .unwrap();
        f.set_len(4096).unwrap();
    });
}

#[test]
fn tail_cut_db_loses_nothing() {
    // Cutting the end of sled's file may only remove preallocated space; either way
    // every acknowledged call must be there after the start.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fill(&dir);
    let p = dir.join("db");
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len.saturating_sub(8192)).unwrap();
    drop(f);
    let s = Store::open(&dir).unwrap();
    eprintln!("last 8 KiB of {len} cut: recovery {:?}", s.recovery());
    check_complete(&s);
}

#[test]
fn flipped_page_is_detected_and_rebuilt() {
    damage_and_recover("a flipped page", |d| {
        let p = d.join("db");
        let mut b = std::fs::read(&p).unwrap();
        let end = 4096.min(b.len());
        for x in &mut b[64..end] {
            *x ^= 0xff;
        }
        std::fs::write(&p, b).unwrap();
    });
}

#[test]
fn emptied_store_files_are_detected_and_rebuilt() {
    damage_and_recover("db emptied, snapshots removed", |d| {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("snap.") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        std::fs::write(d.join("db"), b"").unwrap();
    });
}

#[test]
fn torn_journal_tail_is_skipped_and_a_healthy_store_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fill(&dir);
    // A power cut in the middle of appending (never acknowledged): half a line.
    let j = dir.join(JOURNAL_FILE);
    let mut bytes = std::fs::read(&j).unwrap();
    bytes.extend_from_slice(b"0123456789abcdef {\"call\":{\"id\"");
    std::fs::write(&j, bytes).unwrap();
    let s = Store::open(&dir).unwrap();
    assert!(s.recovery().is_none());
    check_complete(&s);
}
