//! Batch identity in the store (issue 18): the same (device, seq) with the same batch is
//! a duplicate, with another batch a conflict naming the next free seq; concurrent
//! copies stay unique.

use std::sync::{Arc, Barrier};

use sangdam_hub::{SledStorage, Storage, Stored};
use sangdam_wire::Batch;

use crate::common::batch;

fn insert(s: &dyn Storage, b: &Batch) -> Stored {
    s.insert(b, &b.encode().unwrap()).unwrap()
}

#[test]
fn same_seq_same_body_is_a_duplicate_another_body_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    duplicates_and_conflicts(&SledStorage::open(dir.path()).unwrap());
}

/// Also run on PostgreSQL (`postgres::both_backends_tell_duplicates_from_conflicts`).
pub fn duplicates_and_conflicts(s: &dyn Storage) {
    for seq in 1..=5 {
        assert_eq!(insert(s, &batch("busan-03", seq)), Stored::New);
    }
    // Another device whose id starts with this one's, with higher seqs: not counted.
    assert_eq!(insert(s, &batch("busan-03-b", 90)), Stored::New);
    // A resend: the same body.
    assert_eq!(insert(s, &batch("busan-03", 2)), Stored::Duplicate);
    // A rebuilt box numbering from 1 again: its seq 2 is another batch.
    let mut rebuilt = batch("busan-03", 2);
    rebuilt.header.period.first_day.0 += 100;
    rebuilt.report.counters.calls += 1;
    assert_eq!(insert(s, &rebuilt), Stored::Conflict { next_seq: 6 });
    // Nothing was overwritten or added.
    assert_eq!(s.count().unwrap(), 6);
    let mut stored: Vec<Batch> = s
        .batches()
        .unwrap()
        .into_iter()
        .filter(|b| b.header.device == "busan-03")
        .collect();
    stored.sort_by_key(|b| b.header.seq);
    assert_eq!(stored[1], batch("busan-03", 2));
    // Under the next free number it is new; the conflict now names the seq after it.
    rebuilt.header.seq = 6;
    assert_eq!(insert(s, &rebuilt), Stored::New);
    rebuilt.header.seq = 1;
    assert_eq!(insert(s, &rebuilt), Stored::Conflict { next_seq: 7 });
    // The same batch sent again in an older wire version (a box that re-encoded its
    // outbox after an update): a duplicate, not a conflict to renumber and store twice.
    let b = batch("busan-03", 3);
    let mut v2 = b.encode().unwrap();
    v2[0] = 2;
    assert_eq!(Batch::decode(&v2).unwrap(), b);
    assert_eq!(s.insert(&b, &v2).unwrap(), Stored::Duplicate);
}

#[test]
fn concurrent_copies_are_stored_once_and_the_others_answered() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_copies(Arc::new(SledStorage::open(dir.path()).unwrap()));
}

/// Also run on PostgreSQL, with the copies spread over two stores on one database.
pub fn concurrent_copies(s: Arc<dyn Storage>) {
    let n = 8;
    // The same batch n times at once: one New, the rest duplicates.
    // n different batches under one seq at once: one New, the rest conflicts.
    for same in [true, false] {
        let seq = if same { 1 } else { 2 };
        let barrier = Arc::new(Barrier::new(n));
        let outcomes: Vec<Stored> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (s, barrier) = (s.clone(), barrier.clone());
                    scope.spawn(move || {
                        let mut b = batch("seoul-01", seq);
                        if !same {
                            b.report.counters.calls += i as u64;
                        }
                        let body = b.encode().unwrap();
                        barrier.wait();
                        s.insert(&b, &body).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let new = outcomes.iter().filter(|o| **o == Stored::New).count();
        assert_eq!(new, 1, "{outcomes:?}");
        let other = if same {
            Stored::Duplicate
        } else {
            Stored::Conflict { next_seq: 3 }
        };
        assert_eq!(
            outcomes.iter().filter(|o| **o == other).count(),
            n - 1,
            "{outcomes:?}"
        );
        assert_eq!(s.count().unwrap(), seq as usize);
    }
}
