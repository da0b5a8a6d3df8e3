//! The store against a model: after any sequence of inserts and restarts, sled holds
//! exactly what a `BTreeMap` would, and the day counters equal the sums of the calls.

use std::collections::BTreeMap;

use crate::support::Rng;
use sangdam::audio::Speaker;
use sangdam::sentiment::{CallSentiment, Label, Scored, Sentiment};
use sangdam::store::{
    CallId, CallRecord, Day, DayCounters, Inserted, Store, StoreError, UtteranceRecord,
    SCHEMA_VERSION,
};

/// xorshift: a seeded sequence without a crate.
fn call(rng: &mut Rng, pool: u64) -> (CallRecord, Vec<UtteranceRecord>) {
    let k = rng.below(pool);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&k.to_be_bytes());
    id[8] = (k * 31) as u8;
    let n = (k % 5) as usize;
    let utts = (0..n)
        .map(|i| UtteranceRecord {
            channel: (i % 2) as u16,
            speaker: if i % 2 == 0 {
                Speaker::Agent
            } else {
                Speaker::Customer
            },
            start_s: i as f64 * 2.0,
            end_s: i as f64 * 2.0 + 1.5,
            text: format!("발화 {k} {i}"),
            // Some utterances labelled each way (neutral too), some empty, some never
            // classified.
            sentiment: match (k + i as u64) % 5 {
                0 => None,
                1 => Some(Sentiment::EMPTY),
                p => Some(Sentiment {
                    label: match p {
                        2 => Label::Positive,
                        3 => Label::Negative,
                        _ => Label::Neutral,
                    },
                    p_positive: [0.9, 0.2, 0.55][p as usize - 2],
                    truncated_chars: 0,
                }),
            },
        })
        .collect::<Vec<_>>();
    let scored: Vec<Scored> = utts
        .iter()
        .filter_map(|u| {
            u.sentiment.map(|sentiment| Scored {
                speaker: u.speaker,
                start_s: u.start_s,
                end_s: u.end_s,
                sentiment,
            })
        })
        .collect();
    let rec = CallRecord {
        id: CallId(id),
        source: format!("/rec/{k}.wav"),
        duration_s: 10.0 + k as f64,
        sample_rate: 8_000,
        channels: 2,
        // Spread over a few days, a fixed function of the key.
        analysed_at: 1_764_000_000 + (k % 4) * 86_400 + k,
        utterance_count: n as u32,
        asr_model: "asr-ko@0123456789ab".into(),
        sentiment: (k % 3 != 0)
            .then(|| CallSentiment::summarize("sentiment-ko@0123", 10.0 + k as f64, &scored)),
        talk: None,
        live: None,
    };
    (rec, utts)
}

#[test]
fn behaves_like_a_btreemap_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_1234);
    let mut model: BTreeMap<CallId, (CallRecord, Vec<UtteranceRecord>)> = BTreeMap::new();
    let mut store = Store::open(dir.path()).unwrap();
    for step in 0..300 {
        if rng.below(25) == 0 {
            drop(store);
            store = Store::open(dir.path()).unwrap();
        } else {
            let (c, u) = call(&mut rng, 60);
            let expected = if model.contains_key(&c.id) {
                Inserted::AlreadyPresent
            } else {
                Inserted::New
            };
            assert_eq!(store.insert_call(&c, &u).unwrap(), expected, "step {step}");
            model.entry(c.id).or_insert((c, u));
        }
        if step % 20 == 0 || step == 299 {
            check(&store, &model);
        }
    }
    drop(store);
    check(&Store::open(dir.path()).unwrap(), &model);
}

fn check(store: &Store, model: &BTreeMap<CallId, (CallRecord, Vec<UtteranceRecord>)>) {
    let calls = store.calls().unwrap();
    assert_eq!(calls.len(), model.len());
    let mut days: BTreeMap<Day, DayCounters> = BTreeMap::new();
    for c in &calls {
        let (mc, mu) = &model[&c.id];
        assert_eq!(c, mc);
        assert_eq!(&store.utterances(&c.id).unwrap(), mu);
        let d = days.entry(store.day_of(c.analysed_at)).or_default();
        d.calls += 1;
        d.utterances += mu.len() as u64;
        d.audio_seconds += c.duration_s;
        match c.sentiment.as_ref().map(|s| s.overall) {
            Some(Label::Positive) => d.positive_calls += 1,
            Some(Label::Negative) => d.negative_calls += 1,
            Some(Label::Neutral) => d.neutral_calls += 1,
            _ => {}
        }
        for u in mu {
            match u.sentiment.map(|s| s.label) {
                Some(Label::Positive) => d.positive_utterances += 1,
                Some(Label::Negative) => d.negative_utterances += 1,
                Some(Label::Neutral) => d.neutral_utterances += 1,
                _ => {}
            }
        }
    }
    let labelled: u64 = days
        .values()
        .map(|d| d.positive_calls + d.negative_calls)
        .sum();
    assert!(
        calls.len() < 10 || labelled > 0,
        "the generator labels calls"
    );
    let neutral: u64 = days.values().map(|d| d.neutral_utterances).sum();
    assert!(
        calls.len() < 10 || neutral > 0,
        "the generator labels utterances neutral"
    );
    let stored: BTreeMap<Day, DayCounters> = store.days().unwrap().into_iter().collect();
    assert_eq!(stored.len(), days.len());
    for (day, c) in &days {
        let s = &stored[day];
        assert_eq!((s.calls, s.utterances), (c.calls, c.utterances), "{day}");
        assert_eq!(
            (
                s.positive_calls,
                s.negative_calls,
                s.positive_utterances,
                s.negative_utterances
            ),
            (
                c.positive_calls,
                c.negative_calls,
                c.positive_utterances,
                c.negative_utterances
            ),
            "{day}"
        );
        assert_eq!(
            (s.neutral_calls, s.neutral_utterances),
            (c.neutral_calls, c.neutral_utterances),
            "{day}"
        );
        assert!((s.audio_seconds - c.audio_seconds).abs() < 1e-6, "{day}");
        assert_eq!(store.day(*day).unwrap(), *s);
    }
    // Calls come out oldest first.
    assert!(calls
        .windows(2)
        .all(|w| w[0].analysed_at <= w[1].analysed_at));
}

#[test]
fn same_call_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (c, u) = call(&mut Rng(99), 10);
    assert_eq!(store.insert_call(&c, &u).unwrap(), Inserted::New);
    let day = store.day_of(c.analysed_at);
    let before = store.day(day).unwrap();
    assert_eq!(store.insert_call(&c, &u).unwrap(), Inserted::AlreadyPresent);
    assert_eq!(store.day(day).unwrap(), before);
    assert_eq!(before.calls, 1);
}

#[test]
fn newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        // sled's flusher thread can hold the dropped store's file lock for a moment
        // after the drop: wait for it rather than fail on the race.
        let mut tries = 0;
        let db = loop {
            match sled::open(dir.path()) {
                Ok(db) => break db,
                Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let mut tries = 0;
    let e = loop {
        let e = Store::open(dir.path()).unwrap_err();
        if tries < 100 && e.to_string().contains("could not acquire lock") {
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        break e;
    };
    assert!(
        matches!(e, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("newer sangdam") && msg.contains("--data"),
        "{msg}"
    );
}

#[test]
fn damaged_value_is_an_error_naming_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (c, u) = call(&mut Rng(5), 10);
    {
        let store = Store::open(dir.path()).unwrap();
        store.insert_call(&c, &u).unwrap();
    }
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("calls")
            .unwrap()
            .insert(c.id.0, b"{not json".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let e = store.call(&c.id).unwrap_err();
    assert!(
        matches!(&e, StoreError::Corrupt { tree: "calls", key, .. } if *key == c.id.to_hex()),
        "{e}"
    );
    assert!(store.calls().is_err());
}

#[test]
fn resolve_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut a = call(&mut Rng(1), 1000);
    let mut b = call(&mut Rng(2), 1000);
    a.0.id = "abcd000000000000000000000000000a".parse().unwrap();
    b.0.id = "abcd100000000000000000000000000b".parse().unwrap();
    store.insert_call(&a.0, &a.1).unwrap();
    store.insert_call(&b.0, &b.1).unwrap();
    assert_eq!(store.resolve("abcd0").unwrap(), a.0.id);
    assert_eq!(store.resolve("ABCD1").unwrap(), b.0.id);
    assert!(matches!(
        store.resolve("abcd"),
        Err(StoreError::Ambiguous { .. })
    ));
    assert!(matches!(
        store.resolve("ffff"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.resolve("xyz!"), Err(StoreError::BadId(_))));
    assert!(matches!(store.resolve("ab"), Err(StoreError::BadId(_))));
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    // sled takes an exclusive file lock; a second handle in the same process fails to get it.
    match Store::open(dir.path()) {
        Err(e) => {
            assert!(matches!(e, StoreError::Locked { .. }), "{e}");
            assert!(e.to_string().contains("another sangdam"), "{e}");
        }
        Ok(_) => panic!("a second open of a locked store succeeded"),
    }
}
