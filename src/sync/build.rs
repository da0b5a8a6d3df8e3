//! Step 1 of sync: the batch of every whole day not yet built, written to the outbox
//! with the sequence counter in one transaction.

use super::SyncError;

use sangdam_wire::{self as wire, Batch, Header, Period, Report};

use super::{Syncer, MAX_DAYS_PER_RUN, MIN_PLAUSIBLE_UNIX};
use crate::insights::run::Insights;
use crate::insights::stats::{keyword_stats, Period as StatsPeriod};
use crate::store::Day;

impl Syncer {
    /// Builds the batches of the whole days not yet built. Returns (built, merged).
    pub fn build(&self, now: u64) -> Result<(usize, usize), SyncError> {
        let mut state = self.state()?;
        if now < MIN_PLAUSIBLE_UNIX || now + 86_400 < state.last_good_unix {
            tracing::warn!(
                "sync: the clock says {} but the last good time is {}: not building new periods until the clock is set (NTP); the outbox is still sent",
                crate::store::format_unix(now),
                crate::store::format_unix(state.last_good_unix)
            );
            return Ok((0, 0));
        }
        state.last_good_unix = state.last_good_unix.max(now);
        let today = self.store.day_of(now).0;
        let days = self.store.days()?;
        let first = match state.last_built_day {
            Some(d) => d + 1,
            None => match days.first() {
                Some((d, _)) => d.0,
                None => today.saturating_sub(1),
            },
        };
        let last = today.saturating_sub(1);
        if first > last {
            return Ok((0, 0));
        }
        let first = first.max(last.saturating_sub(MAX_DAYS_PER_RUN - 1));
        let (docs, _) =
            crate::insights::run::docs_from_store(&self.store, &self.keywords, usize::MAX)?;
        let insights: Option<Insights> = self.store.insights().unwrap_or(None);
        let calls = self.store.calls()?;
        let (mut built, mut merged) = (0, 0);
        for day in first..=last {
            let counters = days
                .iter()
                .find(|(d, _)| d.0 == day)
                .map(|(_, c)| counters_of(c))
                .unwrap_or_default();
            let mut hist = [0u32; 10];
            let mut transcripts = Vec::new();
            for c in calls
                .iter()
                .filter(|c| self.store.day_of(c.analysed_at).0 == day)
            {
                if let Some(s) = &c.sentiment {
                    hist[((s.score * 10.0) as usize).min(9)] += 1;
                }
                if self.cfg.transcripts {
                    let lines = self
                        .store
                        .utterances(&c.id)?
                        .into_iter()
                        .map(|u| {
                            let who = match u.speaker {
                                crate::audio::Speaker::Mono => 0,
                                crate::audio::Speaker::Agent => 1,
                                crate::audio::Speaker::Customer => 2,
                            };
                            (who, crate::redact::redact(&u.text).text)
                        })
                        .collect();
                    transcripts.push(wire::Transcript {
                        call: c.id.0,
                        started_unix: c.live.as_ref().map_or(c.analysed_at, |l| l.started_at),
                        lines,
                    });
                }
            }
            let stats = keyword_stats(&docs, StatsPeriod::Day(Day(day)), self.top);
            let kw = |cs: &[crate::insights::stats::Contrast], neg: bool| -> Vec<wire::Keyword> {
                cs.iter()
                    .take(self.top)
                    .map(|c| wire::Keyword {
                        term: c.keyword.clone(),
                        calls: if neg {
                            c.negative_calls
                        } else {
                            c.positive_calls
                        } as u32,
                        // The wire refuses non-finite numbers; a degenerate z is 0.
                        z: if c.z.is_finite() { c.z as f32 } else { 0.0 },
                    })
                    .collect()
            };
            let (drivers, recommendations) = match &insights {
                Some(i) => (
                    i.drivers
                        .as_ref()
                        .map(|d| {
                            d.drivers
                                .iter()
                                .take(self.top)
                                .map(|x| wire::Driver {
                                    term: x.feature.clone(),
                                    share: if x.gain.is_finite() {
                                        x.gain as f32
                                    } else {
                                        0.0
                                    },
                                    direction: match x.toward {
                                        crate::insights::drivers::Toward::Positive => 1,
                                        crate::insights::drivers::Toward::Negative => -1,
                                    },
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    i.recommendations
                        .iter()
                        .take(5)
                        .enumerate()
                        .map(|(k, r)| wire::Recommendation {
                            priority: (k + 1) as u8,
                            text: r.headline.clone(),
                        })
                        .collect(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            let seq = state.next_seq;
            let mut batch = Batch {
                header: Header {
                    device: self.cfg.device_id.clone(),
                    seq,
                    period: Period::day(Day(day)),
                    schema: wire::SCHEMA_VERSION,
                    created_unix: now,
                    last_good_unix: state.last_good_unix,
                },
                report: Report {
                    counters,
                    sentiment_histogram: hist,
                    complaints: kw(&stats.over_negative, true),
                    praise: kw(&stats.over_positive, false),
                    drivers,
                    recommendations,
                    transcripts,
                    merged: 0,
                    lost: state.lost.min(u64::from(u32::MAX)) as u32,
                },
            };
            let frame = loop {
                match batch.encode() {
                    Ok(f) => break f,
                    // Too large: transcripts go first, then list entries.
                    Err(wire::WireError::TooLarge(_)) if !batch.report.transcripts.is_empty() => {
                        let n = batch.report.transcripts.len();
                        batch.report.transcripts.truncate(n / 2);
                    }
                    Err(source) => {
                        return Err(SyncError::Build {
                            day: Day(day),
                            source,
                        })
                    }
                }
            };
            state.next_seq += 1;
            state.last_built_day = Some(day);
            state.lost = 0;
            self.store.outbox_update(&[], &[(seq, frame)], &state)?;
            built += 1;
            merged += self.bound(&mut state, now)?;
        }
        Ok((built, merged))
    }
}

pub(super) fn counters_of(d: &crate::store::DayCounters) -> wire::Counters {
    wire::Counters {
        calls: d.calls,
        utterances: d.utterances,
        audio_ms: (d.audio_seconds * 1000.0).round() as u64,
        positive_calls: d.positive_calls,
        negative_calls: d.negative_calls,
        positive_utterances: d.positive_utterances,
        negative_utterances: d.negative_utterances,
        audio_dropped: d.audio_dropped,
        marked: d.marked,
        neutral_calls: d.neutral_calls,
        neutral_utterances: d.neutral_utterances,
    }
}
