//! Step 2 of sync: the outbox kept under `sync.outbox_max_batches` by merging the two
//! oldest periods, old-version frames brought to the current one, and renumbering after
//! the hub's signed conflict.

use super::SyncError;

use sangdam_wire::{self as wire, Batch, Header, Period, Report};

use super::{SyncState, Syncer, KEYWORDS};

/// A frame in [`wire::WIRE_VERSION`]: one an older build left in the outbox is
/// re-encoded before it is sent, because only a batch in the newest version is answered
/// with a signed Ack (the hub answers in the batch's version). A frame that does not
/// decode is sent as it is (the hub refuses it, and says why).
pub(super) fn current_version(frame: Vec<u8>) -> Vec<u8> {
    if frame.first() == Some(&wire::WIRE_VERSION) {
        return frame;
    }
    match Batch::decode(&frame).and_then(|b| b.encode()) {
        Ok(f) => f,
        Err(_) => frame,
    }
}

pub(super) fn merge_keywords(a: &[wire::Keyword], b: &[wire::Keyword]) -> Vec<wire::Keyword> {
    let mut all: Vec<wire::Keyword> = Vec::new();
    for k in a.iter().chain(b) {
        match all.iter_mut().find(|x| x.term == k.term) {
            Some(x) => {
                x.calls += k.calls;
                x.z = x.z.max(k.z);
            }
            None => all.push(k.clone()),
        }
    }
    all.sort_by(|x, y| y.calls.cmp(&x.calls).then(y.z.total_cmp(&x.z)));
    all.truncate(2 * KEYWORDS);
    all
}

/// One coarser batch from two (`a` the older): counts add up, lists combine, the newer
/// drivers and recommendations win.
pub fn merge(a: &Batch, b: &Batch, seq: u64, now: u64, last_good: u64) -> Batch {
    let first = a.header.period.first_day.min(b.header.period.first_day);
    let end = a.header.period.end_day().max(b.header.period.end_day());
    let mut counters = a.report.counters.clone();
    counters.add(&b.report.counters);
    let mut hist = a.report.sentiment_histogram;
    for (h, x) in hist.iter_mut().zip(b.report.sentiment_histogram) {
        *h += x;
    }
    let mut transcripts = a.report.transcripts.clone();
    transcripts.extend(b.report.transcripts.iter().cloned());
    Batch {
        header: Header {
            device: b.header.device.clone(),
            seq,
            period: Period {
                first_day: first,
                days: (end.0 - first.0).min(u32::from(u16::MAX)) as u16,
            },
            schema: wire::SCHEMA_VERSION,
            created_unix: now,
            last_good_unix: last_good,
        },
        report: Report {
            counters,
            sentiment_histogram: hist,
            complaints: merge_keywords(&a.report.complaints, &b.report.complaints),
            praise: merge_keywords(&a.report.praise, &b.report.praise),
            drivers: b.report.drivers.clone(),
            recommendations: b.report.recommendations.clone(),
            transcripts,
            merged: a.report.merged.max(1) + b.report.merged.max(1),
            lost: a.report.lost + b.report.lost,
        },
    }
}

impl Syncer {
    /// Merges the two oldest periods while the outbox is over its bound.
    pub(super) fn bound(&self, state: &mut SyncState, now: u64) -> Result<usize, SyncError> {
        let mut merges = 0;
        while self.store.outbox_len() > self.cfg.outbox_max_batches {
            let mut entries: Vec<(u64, Batch)> = Vec::new();
            let mut undecodable = Vec::new();
            for (seq, frame) in self.store.outbox()? {
                match Batch::decode(&frame) {
                    Ok(b) => entries.push((seq, b)),
                    Err(_) => undecodable.push(seq),
                }
            }
            if !undecodable.is_empty() {
                // Cannot happen unless the store is damaged: count it, never loop on it.
                state.lost += undecodable.len() as u64;
                self.store.outbox_update(&undecodable, &[], state)?;
                continue;
            }
            entries.sort_by_key(|(_, b)| (b.header.period.first_day, b.header.seq));
            if entries.len() < 2 {
                break;
            }
            let (sa, a) = &entries[0];
            let (sb, b) = &entries[1];
            let seq = state.next_seq;
            let m = merge(a, b, seq, now, state.last_good_unix);
            match m.encode() {
                Ok(frame) => {
                    state.next_seq += 1;
                    state.merges += 1;
                    self.store
                        .outbox_update(&[*sa, *sb], &[(seq, frame)], state)?;
                    merges += 1;
                }
                Err(e) => {
                    // Too large to merge: the older batch is lost, and that is counted.
                    tracing::error!(
                        "sync: outbox full and batch {sa} cannot be merged ({e}); dropping it"
                    );
                    state.lost += 1;
                    self.store.outbox_update(&[*sa], &[], state)?;
                }
            }
        }
        if merges > 0 {
            tracing::warn!(
                "sync: the outbox was full ({} batches); merged the oldest periods {merges} time(s)",
                self.cfg.outbox_max_batches
            );
        }
        Ok(merges)
    }

    /// Gives the outbox's batches, in their order, the sequence numbers from `from` on
    /// (each re-encoded; the signature is made when it is sent) and raises the state's
    /// next sequence number past them, in one transaction. Returns how many. A frame that
    /// does not decode (a damaged store) cannot be renumbered: it is dropped and counted
    /// as lost, as when merging.
    pub(super) fn renumber(&self, from: u64) -> Result<usize, SyncError> {
        let mut state = self.state()?;
        let outbox = self.store.outbox()?;
        let mut remove = Vec::with_capacity(outbox.len());
        let mut add = Vec::with_capacity(outbox.len());
        let mut next = from;
        for (seq, frame) in outbox {
            remove.push(seq);
            match Batch::decode(&frame) {
                Ok(mut batch) => {
                    batch.header.seq = next;
                    let frame = batch.encode().map_err(|source| SyncError::Renumber {
                        seq,
                        next,
                        source,
                    })?;
                    add.push((next, frame));
                    next = next.checked_add(1).ok_or(SyncError::SequenceEnd)?;
                }
                Err(e) => {
                    tracing::error!(
                        "sync: batch {seq} in the outbox does not decode ({e}); dropping it"
                    );
                    state.lost += 1;
                }
            }
        }
        state.next_seq = state.next_seq.max(next);
        state.renumbered += add.len() as u64;
        self.store.outbox_update(&remove, &add, &state)?;
        Ok(add.len())
    }
}
