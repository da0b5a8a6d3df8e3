//! Upstream sync: the box's aggregates and recommendations to the hub, store-and-forward.
//!
//! 1. **Build.** For every whole UTC day not yet built (up to yesterday), one
//!    [`sangdam_wire::Batch`]: the day's counters, the customers' sentiment histogram,
//!    complaint and praise keywords (log-odds over that day's calls), the newest drivers
//!    and recommendations, and redacted transcripts only if `sync.transcripts` is on. Never
//!    audio. The batch is encoded, and written to the `outbox` tree together with the
//!    sequence counter in one sled transaction, before any attempt to send.
//! 2. **Bound.** The outbox holds at most `sync.outbox_max_batches`. Beyond that the two
//!    oldest periods are merged into one coarser batch (counters and histograms added,
//!    keywords combined), so a box offline for months still delivers every count. Only a
//!    batch that cannot be merged is lost, and that is counted and sent in the next batch.
//! 3. **Send.** Oldest first: the frame as the body, the device id and the HMAC-SHA256
//!    of the body in headers. A batch leaves the outbox only when the hub acknowledges its
//!    sequence number (200, or 409 "already stored") with an Ack signed under this box's
//!    key over its sequence number and the SHA-256 of the body sent
//!    (`sangdam_wire::Ack::check`). An unsigned or wrongly signed answer, or one for
//!    another batch or body, stops the run and keeps the batch: anyone on the path who
//!    answers 200 could otherwise make the box delete its batches. A 409 with a signed
//!    conflict (`sangdam_wire::Conflict`: the hub holds this sequence number with another
//!    batch, because this box's store was rebuilt or the box re-imaged and it numbers
//!    from 1 again) renumbers the waiting batches from the hub's next free number and
//!    sends them again; a conflict answer that does not verify is a failed send that
//!    changes nothing. Server errors and timeouts are
//!    retried with exponential backoff and jitter, then the run ends and the next one
//!    resumes; the upload rate is held under `sync.max_kbps`. A key or registry problem
//!    (401/403) or a hub that refuses the format (400) stops the run and keeps the batch.
//!
//! The hub is reached over `https://` (the system's roots, or `sync.ca_file`). A plain
//! `http://` `sync.hub_url` is refused by validation unless `sync.allow_plain_http` is
//! set (a hub on a trusted network, and the loopback tests), and then warned about when
//! sync starts.
//!
//! Batches are built in the newest wire version (`sangdam_wire::WIRE_VERSION`, which
//! carries the neutral counts); those an older build left in the outbox are sent as they
//! are re-encoded in the new one before they are sent (only a newest-version batch is
//! answered with a signed Ack) and when merged.
//!
//! A Pi has no real-time clock: until the clock is plausible (after 2025-01-01 and not
//! behind the last good time) no new period is built, but the outbox is still sent. The
//! hub's clock in a signed Ack advances the last good time only when it lies within a day
//! of the box's clock ([`plausible_hub_time`]), so that no answer can push the last good
//! time into the future and stop the box building.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use sangdam_wire::{self as wire, Batch, Header, Period, Report};

use crate::insights::keywords::Keywords;
use crate::insights::run::Insights;
use crate::insights::stats::{keyword_stats, Period as StatsPeriod};
use crate::store::{Day, Store};

mod config;
pub use config::{SyncConfig, FIELD_DOCS};

/// Unix time before which the box's clock is not believed (2025-01-01).
pub const MIN_PLAUSIBLE_UNIX: u64 = 1_735_689_600;
/// The most days one run builds (a box whose clock jumped years ahead must not flood).
const MAX_DAYS_PER_RUN: u32 = 400;
/// Keywords per list in a batch.
const KEYWORDS: usize = 15;
/// Renumberings one send run accepts. One is enough for a rebuilt or re-imaged box (the
/// hub names its highest stored seq + 1); more means another box sends under the same
/// device id, and the run stops instead of racing it.
const MAX_RENUMBERS_PER_RUN: usize = 3;

/// What sync keeps between runs (the `sync` tree), written with every outbox change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// The next sequence number; never reused.
    pub next_seq: u64,
    /// The newest day built into a batch.
    pub last_built_day: Option<u32>,
    /// When the hub last acknowledged a batch (box clock).
    pub last_sync_unix: Option<u64>,
    /// The newest time known good (box clock when plausible, the hub's in its acks).
    pub last_good_unix: u64,
    pub delivered: u64,
    /// Merges made because the outbox was full.
    pub merges: u64,
    /// Batches lost because they could not be merged (reported to the hub in the next).
    pub lost: u64,
    pub last_error: Option<String>,
    /// Batches renumbered after the hub's signed conflict answers. (Absent in states
    /// written before it existed.)
    #[serde(default)]
    pub renumbered: u64,
}

/// One run's outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    pub built: usize,
    pub merged: usize,
    pub delivered: usize,
    /// Of `delivered`, how many the hub had already (409).
    pub duplicates: usize,
    /// Batches given new sequence numbers because the hub holds theirs with other
    /// batches (a rebuilt or re-imaged box; see [`Syncer::send`]).
    pub renumbered: usize,
    pub remaining: usize,
    pub bytes: u64,
    pub error: Option<String>,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} batches built, {} merged, {} delivered ({} already at the hub), {} waiting, {} bytes sent",
            self.built, self.merged, self.delivered, self.duplicates, self.remaining, self.bytes
        )?;
        if self.renumbered > 0 {
            write!(
                f,
                ", {} renumbered (the hub held their sequence numbers with other batches)",
                self.renumbered
            )?;
        }
        if let Some(e) = &self.error {
            write!(f, "; stopped: {e}")?;
        }
        Ok(())
    }
}

pub struct Syncer {
    cfg: SyncConfig,
    key: Vec<u8>,
    agent: ureq::Agent,
    store: Store,
    keywords: Keywords,
    top: usize,
    rng: std::cell::Cell<u64>,
}

/// How far the hub's clock in a signed Ack may be from the box's own (seconds) to be
/// taken as a good time.
pub const HUB_CLOCK_WINDOW_S: u64 = 86_400;

/// `hub_unix` when it lies within [`HUB_CLOCK_WINDOW_S`] of the box's clock `now`, else
/// None. The box never builds a period while its clock is behind its last good time, so
/// one far-future time taken from an answer would stop it building for good; a hub time
/// outside the window is logged and ignored (the batch is still acknowledged: the
/// signature says the hub has it). A box whose clock is far off (no NTP yet) therefore
/// gets no time from the hub, and builds nothing until its clock is set (`sangdam
/// status` shows the clock).
pub fn plausible_hub_time(hub_unix: u64, now: u64) -> Option<u64> {
    (hub_unix.abs_diff(now) <= HUB_CLOCK_WINDOW_S).then_some(hub_unix)
}

/// A frame in [`wire::WIRE_VERSION`]: one an older build left in the outbox is
/// re-encoded before it is sent, because only a batch in the newest version is answered
/// with a signed Ack (the hub answers in the batch's version). A frame that does not
/// decode is sent as it is (the hub refuses it, and says why).
fn current_version(frame: Vec<u8>) -> Vec<u8> {
    if frame.first() == Some(&wire::WIRE_VERSION) {
        return frame;
    }
    match Batch::decode(&frame).and_then(|b| b.encode()) {
        Ok(f) => f,
        Err(_) => frame,
    }
}

/// How long to wait after sending `bytes` in `elapsed` to stay under `bytes_per_s`.
pub fn pace_delay(bytes: u64, elapsed: Duration, bytes_per_s: u64) -> Duration {
    let due = Duration::from_secs_f64(bytes as f64 / bytes_per_s.max(1) as f64);
    due.saturating_sub(elapsed)
}

/// The wait before attempt `attempt` (0-based): 1 s doubling, times a jitter in
/// [0.5, 1.5) from `unit` in [0, 1).
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let base = 1u64 << attempt.min(8);
    Duration::from_secs_f64(base as f64 * (0.5 + unit))
}

fn counters_of(d: &crate::store::DayCounters) -> wire::Counters {
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

fn merge_keywords(a: &[wire::Keyword], b: &[wire::Keyword]) -> Vec<wire::Keyword> {
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
    /// A syncer for the `[sync]` settings `cfg`, over `store`; `extra_stopwords`
    /// (`insights.extra_stopwords`) are left out of the batches' keywords as they are
    /// out of the report page's.
    pub fn new(cfg: &SyncConfig, extra_stopwords: &[String], store: Store) -> Result<Syncer> {
        let cfg = cfg.clone();
        cfg.validate().map_err(|e| anyhow::anyhow!(e))?;
        anyhow::ensure!(
            !cfg.hub_url.is_empty(),
            "sync.hub_url is not set: configure [sync] (see `sangdam config --print-defaults`)"
        );
        let key = cfg.load_key()?;
        if cfg.plain_http() {
            tracing::warn!(
                "sync: sync.hub_url {} is plain http:// (sync.allow_plain_http = true): what this box sends can be read on the way; use https:// unless the network is trusted",
                cfg.hub_url
            );
        }
        let t = Some(Duration::from_secs(u64::from(cfg.timeout_s.max(1))));
        let mut tls = ureq::tls::TlsConfig::builder();
        if !cfg.ca_file.as_os_str().is_empty() {
            let pem = std::fs::read(&cfg.ca_file)
                .with_context(|| format!("cannot read sync.ca_file {}", cfg.ca_file.display()))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            anyhow::ensure!(
                !certs.is_empty(),
                "sync.ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                cfg.ca_file.display()
            );
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        // Only per-phase timeouts: a global one makes ureq start a thread per request.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_send_body(t)
            .timeout_recv_response(t)
            .timeout_recv_body(t)
            .tls_config(tls.build())
            .build()
            .into();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
            | 1;
        Ok(Syncer {
            cfg,
            key,
            agent,
            store,
            keywords: Keywords::new(extra_stopwords),
            top: KEYWORDS,
            rng: std::cell::Cell::new(seed),
        })
    }

    fn unit(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn state(&self) -> Result<SyncState> {
        let mut s: SyncState = self.store.sync_state()?.unwrap_or_default();
        s.next_seq = s.next_seq.max(1);
        Ok(s)
    }

    /// `sync.interval_minutes`: the time between scheduled runs.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.cfg.interval_minutes) * 60)
    }

    pub fn outbox_len(&self) -> usize {
        self.store.outbox_len()
    }

    /// Builds the batches of the whole days not yet built. Returns (built, merged).
    pub fn build(&self, now: u64) -> Result<(usize, usize)> {
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
                    Err(e) => bail!("cannot build the batch for day {}: {e}", Day(day)),
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

    /// Merges the two oldest periods while the outbox is over its bound.
    fn bound(&self, state: &mut SyncState, now: u64) -> Result<usize> {
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
    fn renumber(&self, from: u64) -> Result<usize> {
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
                    let frame = batch
                        .encode()
                        .with_context(|| format!("cannot renumber batch {seq} as {next}"))?;
                    add.push((next, frame));
                    next = next
                        .checked_add(1)
                        .context("the hub named a next sequence number at the end of the range")?;
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

    /// Sends the outbox, oldest first, until it is empty, a batch fails after its
    /// retries, or `stop` is set. A batch whose sequence number the hub holds with
    /// another batch (a box whose store was rebuilt, or re-imaged with the same key,
    /// numbers from 1 again) is answered with a signed conflict naming the hub's next
    /// free number: the outbox is renumbered from there ([`Syncer::renumber`]) and sent
    /// again; nothing is dropped. An unsigned or forged conflict answer is a failed send
    /// that changes nothing.
    pub fn send(&self, now: &dyn Fn() -> u64, stop: &AtomicBool) -> Result<RunReport> {
        let mut report = RunReport::default();
        let url = format!(
            "{}{}",
            self.cfg.hub_url.trim_end_matches('/'),
            wire::BATCH_PATH
        );
        let bytes_per_s = u64::from(self.cfg.max_kbps) * 1000 / 8;
        let started = Instant::now();
        let mut renumbers = 0;
        loop {
            // Set when the hub's signed conflict answer renumbered the outbox: send it again.
            let mut again = false;
            'batches: for (seq, frame) in self.store.outbox()? {
                let frame = current_version(frame);
                let signature = wire::sign(&self.key, &frame);
                let mut attempt = 0;
                loop {
                    if stop.load(Ordering::Acquire) {
                        break 'batches;
                    }
                    let result = self
                        .agent
                        .post(&url)
                        .header(wire::DEVICE_HEADER, &self.cfg.device_id)
                        .header(wire::SIGNATURE_HEADER, &signature)
                        .header("Content-Type", "application/octet-stream")
                        .send(&frame[..]);
                    report.bytes += frame.len() as u64;
                    let failure = match result {
                        Ok(mut resp) => {
                            let status = resp.status().as_u16();
                            let body = resp
                                .body_mut()
                                .with_config()
                                .limit(64 * 1024)
                                .read_to_vec()
                                .unwrap_or_default();
                            match status {
                                200 | 409 => match wire::Answer::decode_versioned(&body) {
                                    Ok((wire::Answer::Conflict(c), version)) => {
                                        match c.check(
                                            version,
                                            &self.key,
                                            &self.cfg.device_id,
                                            seq,
                                            &frame,
                                        ) {
                                            Ok(next) if renumbers < MAX_RENUMBERS_PER_RUN => {
                                                let n = self.renumber(next)?;
                                                renumbers += 1;
                                                report.renumbered += n;
                                                tracing::warn!(
                                                "sync: the hub holds batch {seq} of {} with another batch (was this box's store rebuilt, or the box re-imaged?): renumbered the {n} waiting batch(es) from {next} and sending again",
                                                self.cfg.device_id
                                            );
                                                again = true;
                                                break 'batches;
                                            }
                                            Ok(_) => {
                                                report.error = Some(format!(
                                                "batch {seq}: the hub answered {renumbers} times in one run that this box's sequence numbers are taken by other batches: is another box sending as sync.device_id = {:?}? The batches are kept",
                                                self.cfg.device_id
                                            ));
                                                break 'batches;
                                            }
                                            Err(e) => {
                                                // A forged conflict answer changes nothing.
                                                report.error = Some(format!(
                                                    "batch {seq}: conflict answer: {e}"
                                                ));
                                                break 'batches;
                                            }
                                        }
                                    }
                                    Ok((wire::Answer::Ack(ack), version)) => match ack.check(
                                        version,
                                        &self.key,
                                        &self.cfg.device_id,
                                        seq,
                                        &frame,
                                    ) {
                                        Ok(()) => {
                                            let mut state = self.state()?;
                                            let now = now();
                                            state.delivered += 1;
                                            state.last_sync_unix = Some(now);
                                            if let Some(t) = plausible_hub_time(ack.hub_unix, now) {
                                                state.last_good_unix = state.last_good_unix.max(t);
                                            } else {
                                                tracing::warn!(
                                                "sync: the hub's clock ({}) is more than a day from this box's ({}): not taken as a good time; check the clocks",
                                                crate::store::format_unix(ack.hub_unix),
                                                crate::store::format_unix(now)
                                            );
                                            }
                                            state.last_error = None;
                                            self.store.outbox_update(&[seq], &[], &state)?;
                                            report.delivered += 1;
                                            report.duplicates += usize::from(ack.duplicate);
                                            let wait = pace_delay(
                                                report.bytes,
                                                started.elapsed(),
                                                bytes_per_s,
                                            );
                                            if !wait.is_zero() {
                                                std::thread::sleep(wait);
                                            }
                                            continue 'batches;
                                        }
                                        Err(e) => {
                                            // Not a hiccup to retry: whoever answered will answer
                                            // the same way again.
                                            report.error = Some(format!("batch {seq}: {e}"));
                                            break 'batches;
                                        }
                                    },
                                    Err(e) => {
                                        report.error = Some(format!(
                                        "batch {seq}: HTTP {status} without a valid signed acknowledgement ({e}): hub answer not signed with this box's key: check sync.hub_url points at the hub; the batch is kept"
                                    ));
                                        break 'batches;
                                    }
                                },
                                401 | 403 => {
                                    report.error = Some(format!(
                                    "the hub refused this box (HTTP {status}: {}): check sync.device_id and sync.key against the hub's registry (sangdam-hub add-device)",
                                    String::from_utf8_lossy(&body).trim()
                                ));
                                    break 'batches;
                                }
                                400..=499 => {
                                    report.error = Some(format!(
                                    "the hub refused batch {seq} (HTTP {status}: {}): update the hub or the box so both speak the same version; the batch is kept",
                                    String::from_utf8_lossy(&body).trim()
                                ));
                                    break 'batches;
                                }
                                _ => format!("HTTP {status} from the hub"),
                            }
                        }
                        Err(e) => format!("cannot reach the hub at {}: {e}", self.cfg.hub_url),
                    };
                    attempt += 1;
                    if attempt >= self.cfg.retries.max(1) {
                        report.error = Some(format!(
                        "{failure} (after {attempt} attempts; batches are kept for the next run)"
                    ));
                        break 'batches;
                    }
                    let wait = backoff(attempt - 1, self.unit());
                    tracing::warn!(
                        "sync: batch {seq}: {failure}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
            if !again {
                break;
            }
        }
        report.remaining = self.store.outbox_len();
        if let Some(e) = &report.error {
            let mut state = self.state()?;
            state.last_error = Some(e.clone());
            self.store.outbox_update(&[], &[], &state)?;
        }
        Ok(report)
    }

    /// Build, then send.
    pub fn run_once(&self, now: &dyn Fn() -> u64, stop: &AtomicBool) -> Result<RunReport> {
        let (built, merged) = self.build(now())?;
        let mut r = self.send(now, stop)?;
        r.built = built;
        r.merged = merged;
        Ok(r)
    }
}

/// The file `sangdam sync --now` drops for the running daemon (its
/// [`crate::daemon::SyncTask`] runs at once when it finds it).
pub const REQUEST_FILE: &str = "sync-now";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_and_backoff() {
        // 32 kB at 16 kB/s must take 2 s; 0.5 s have passed.
        assert_eq!(
            pace_delay(32_000, Duration::from_millis(500), 16_000),
            Duration::from_millis(1500)
        );
        assert_eq!(
            pace_delay(1_000, Duration::from_secs(5), 16_000),
            Duration::ZERO
        );
        assert_eq!(backoff(0, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(3, 0.5), Duration::from_secs(8));
        assert!(
            backoff(3, 0.0) >= Duration::from_secs(4)
                && backoff(3, 0.999) < Duration::from_secs(12)
        );
    }

    fn batch(day: u32, seq: u64, calls: u64, kw: &[(&str, u32)]) -> Batch {
        Batch {
            header: Header {
                device: "d".into(),
                seq,
                period: Period::day(Day(day)),
                schema: wire::SCHEMA_VERSION,
                created_unix: 1,
                last_good_unix: 1,
            },
            report: Report {
                counters: wire::Counters {
                    calls,
                    ..Default::default()
                },
                sentiment_histogram: [calls as u32; 10],
                complaints: kw
                    .iter()
                    .map(|(t, c)| wire::Keyword {
                        term: t.to_string(),
                        calls: *c,
                        z: 1.0,
                    })
                    .collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn merging_adds_counts_and_spans_both_periods() {
        let a = batch(100, 1, 3, &[("환불", 2), ("요금", 1)]);
        let b = batch(102, 2, 4, &[("환불", 1)]);
        let m = merge(&a, &b, 9, 5, 6);
        assert_eq!(m.header.seq, 9);
        assert_eq!(
            m.header.period,
            Period {
                first_day: Day(100),
                days: 3
            }
        );
        assert_eq!(m.report.counters.calls, 7);
        assert_eq!(m.report.sentiment_histogram, [7; 10]);
        assert_eq!(m.report.merged, 2);
        assert_eq!(m.report.complaints[0].term, "환불");
        assert_eq!(m.report.complaints[0].calls, 3);
        let m2 = merge(&m, &batch(103, 3, 1, &[]), 10, 5, 6);
        assert_eq!(m2.report.merged, 3);
        assert_eq!(m2.header.period.days, 4);
    }

    #[test]
    fn a_version_1_frame_left_in_the_outbox_merges_with_new_ones() {
        // A box updated with batches of the old version in its outbox: they decode (no
        // neutral counts), merge with new ones, and leave as the new version.
        let old = Batch::decode(include_bytes!("../../wire/fixtures/v1-full.bin")).unwrap();
        let mut new = batch(20_413, 42, 4, &[("환불", 1)]);
        new.header.device = old.header.device.clone();
        new.report.counters.neutral_calls = 3;
        new.report.counters.neutral_utterances = 12;
        let m = merge(&old, &new, 43, 5, 6);
        assert_eq!(
            m.header.period,
            Period {
                first_day: Day(20_410),
                days: 4
            }
        );
        assert_eq!(m.report.counters.calls, 7 + 4);
        assert_eq!(m.report.counters.positive_calls, 3);
        assert_eq!(
            (
                m.report.counters.neutral_calls,
                m.report.counters.neutral_utterances
            ),
            (3, 12)
        );
        let frame = m.encode().unwrap();
        assert_eq!(frame[0], wire::WIRE_VERSION);
        assert_eq!(Batch::decode(&frame).unwrap(), m);
    }

    #[test]
    fn day_counters_go_on_the_wire_with_their_neutral_counts() {
        let d = crate::store::DayCounters {
            calls: 5,
            positive_calls: 1,
            negative_calls: 2,
            neutral_calls: 2,
            neutral_utterances: 17,
            audio_seconds: 1.5,
            ..Default::default()
        };
        let c = counters_of(&d);
        assert_eq!(
            (c.calls, c.positive_calls, c.negative_calls, c.neutral_calls),
            (5, 1, 2, 2)
        );
        assert_eq!((c.neutral_utterances, c.audio_ms), (17, 1500));
    }
}
