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
//!
//! The steps are in their own files: [`build`](self) in `build.rs`, the bound and the
//! renumbering in `outbox.rs`, sending in `send.rs`; the `[sync]` settings in
//! `config.rs`. This file holds the [`Syncer`], its state and its report.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::insights::keywords::Keywords;
use crate::store::Store;

mod build;
mod config;
mod outbox;
mod send;

pub use config::{SyncConfig, FIELD_DOCS};
pub use outbox::merge;
pub use send::{backoff, pace_delay, plausible_hub_time, HUB_CLOCK_WINDOW_S};

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

/// Why a sync run, or setting sync up, failed. Each names the setting or file and the
/// fix. A send that the hub refuses or that cannot reach it is not an error: the run
/// ends with the batch kept and [`RunReport::error`] says why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A `[sync]` setting that cannot work.
    #[error("{0}")]
    Setting(String),
    /// The device key file is not private ([`crate::secret::check_private`]).
    #[error(transparent)]
    KeyFile(#[from] crate::secret::SecretFileError),
    #[error("cannot read sync.key_file {} (it must be readable by the user sangdam runs as: `chown sangdam {}`): {source}", path.display(), path.display())]
    KeyUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sync.key_file {} is empty: put the key from `sangdam-hub add-device` in it (on the box: /etc/sangdam/sync.key, see board/INSTALL.md)", path.display())]
    KeyEmpty { path: PathBuf },
    #[error("sync key: {0}")]
    Key(String),
    #[error("cannot read sync.ca_file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sync.ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot build the batch for day {day}: {source}")]
    Build {
        day: crate::store::Day,
        source: sangdam_wire::WireError,
    },
    #[error("cannot renumber batch {seq} as {next}: {source}")]
    Renumber {
        seq: u64,
        next: u64,
        source: sangdam_wire::WireError,
    },
    #[error("the hub named a next sequence number at the end of the range")]
    SequenceEnd,
}

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

impl Syncer {
    /// A syncer for the `[sync]` settings `cfg`, over `store`; `extra_stopwords`
    /// (`insights.extra_stopwords`) are left out of the batches' keywords as they are
    /// out of the report page's.
    pub fn new(
        cfg: &SyncConfig,
        extra_stopwords: &[String],
        store: Store,
    ) -> Result<Syncer, SyncError> {
        let cfg = cfg.clone();
        cfg.validate().map_err(|e| SyncError::Setting(e.message))?;
        if cfg.hub_url.is_empty() {
            return Err(SyncError::Setting(
                "sync.hub_url is not set: configure [sync] (see `sangdam config --print-defaults`)"
                    .into(),
            ));
        }
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
            let pem = std::fs::read(&cfg.ca_file).map_err(|source| SyncError::CaFile {
                path: cfg.ca_file.clone(),
                source,
            })?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(SyncError::NoCertificate {
                    path: cfg.ca_file.clone(),
                });
            }
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

    pub fn state(&self) -> Result<SyncState, SyncError> {
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

    /// Build, then send.
    pub fn run_once(&self, now: &dyn Clock, stop: &AtomicBool) -> Result<RunReport, SyncError> {
        let (built, merged) = self.build(now.now_unix())?;
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
    use super::build::counters_of;
    use super::*;
    use crate::store::Day;
    use sangdam_wire::{self as wire, Batch, Header, Period, Report};

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
