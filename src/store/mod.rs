//! The box's local store: analysed calls, their utterances and per-day counters, in sled.
//!
//! # Trees and key encoding
//!
//! | tree         | key                                              | value                    |
//! |--------------|--------------------------------------------------|--------------------------|
//! | `calls`      | call id, 16 bytes                                | [`CallRecord`], JSON     |
//! | `utterances` | call id (16 bytes) ++ index (u32 big-endian)     | [`UtteranceRecord`], JSON|
//! | `counters`   | day (u32 big-endian, days since 1970-01-01, in the store's time zone) | [`DayCounters`], JSON |
//! | `meta`       | `schema_version`                                 | u32 big-endian           |
//! | `meta`       | `time_zone`: the zone the counters are cut in    | IANA name, UTF-8         |
//! | `insights`   | `latest`                                         | insights report, JSON    |
//! | `outbox`     | sequence number (u64 big-endian)                 | a signed batch frame for the hub (postcard, [`sangdam_wire`]) |
//! | `sync`       | `state`                                          | the sync state ([`crate::sync::SyncState`]), JSON |
//!
//! Big-endian integers make sled's byte order the numeric order, so a prefix scan over a
//! call id returns its utterances in order and a range over `counters` walks the days.
//! Values are JSON: readable with any tool, and fields added later are defaulted by newer
//! readers (`#[serde(default)]`).
//!
//! # Schema versions
//!
//! | version | what changed |
//! |---------|--------------|
//! | 1 | the first layout |
//! | 2 | the neutral sentiment class: labels may be `"neutral"`, [`DayCounters`] has `neutral_calls` and `neutral_utterances`, summaries count neutral utterances |
//! | 3 | days in the box's time zone (`store.time_zone`): `meta` records the zone the counters were cut in; older stores counted UTC days |
//!
//! # Days
//!
//! A call counts on the day of its `analysed_at` in the store's time zone
//! ([`Store::open_in`]; Asia/Seoul by default), so a Korean branch's morning calls count
//! on their own date. When the zone recorded in `meta` is not the one the store is
//! opened with (a version-2 store, cut in UTC, or a technician who changed
//! `store.time_zone`), every day's counters are counted again from the stored calls in
//! one transaction before the store is used.
//!
//! A store of an older schema is brought up to date at open ([`migrate`]); version 1's
//! values read as they are (the new fields default to 0, and a version-1 build never made
//! a neutral call), so its step only records the new version. The version matters to
//! older builds: a version-1 build cannot read a `"neutral"` label, and would count the
//! journal's lines that hold one as torn, so it refuses the store as newer instead of
//! losing calls (`tests/data/store-v1` is a store the version-1 build wrote).
//!
//! # Durability
//!
//! [`Store::insert_call`] writes the call, all its utterances and the day's counters in
//! one sled transaction and then flushes, so a call is either wholly there or absent,
//! and once the function returns it survives a power cut. Before sled is written the
//! call is appended to an fsynced journal ([`journal`]); at start-up every journalled
//! call must be in sled, and when sled lost calls (a damaged file) or cannot be opened
//! as a database, the damaged store is moved aside for inspection and rebuilt from the
//! journal plus whatever sled still returned ([`Store::recovery`]).
//!
//! The `insights` tree holds derived data (keywords, drivers, recommendations computed
//! from the calls): it is not journalled, since it can always be computed again. The
//! `outbox` and `sync` trees change together, in one transaction and then a flush
//! ([`Store::outbox_update`]), so the sequence counter and the batches waiting for the
//! hub never disagree; they are not journalled: when they are lost, the days are built again
//! from the calls, and the hub's signed conflict answer renumbers a box that counts from
//! 1 again ([`crate::sync`]).

pub mod config;
pub mod journal;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

pub use config::StoreConfig;
pub use sangdam_wire::day::{Day, TimeZone};

/// The layout version this build writes. Stores written by a newer build are refused.
pub const SCHEMA_VERSION: u32 = 3;

/// The time zone a store cuts its days in unless the config says otherwise.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Seoul";

const TIME_ZONE_KEY: &[u8] = b"time_zone";
/// What a store without a recorded zone (schema 2 and older) counted in.
const LEGACY_TIME_ZONE: &str = "UTC";
const SCHEMA_KEY: &[u8] = b"schema_version";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the store in {path} cannot cut days: store.time_zone {message}")]
    TimeZone { path: PathBuf, message: String },
    #[error("the store in {path} was written by a newer sangdam (schema {found}; this build reads up to {supported}): upgrade sangdam, or point --data / SANGDAM_DATA at another directory")]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the store in {path} is in use by another sangdam process (sled holds a lock on it): stop that process, or point --data / SANGDAM_DATA at another directory")]
    Locked { path: PathBuf },
    #[error("the store in {path} cannot be opened: {source} (check the directory's permissions and free space)")]
    Open { path: PathBuf, source: sled::Error },
    #[error("writing to the store in {path} failed: {source} (free space on that disk or lower the retention; nothing already stored is lost)")]
    Write { path: PathBuf, source: sled::Error },
    #[error("reading the store in {path} failed: {source}")]
    Read { path: PathBuf, source: sled::Error },
    #[error("the store in {path} holds a damaged value in tree {tree}, key {key}: {message}")]
    Corrupt {
        path: PathBuf,
        tree: &'static str,
        key: String,
        message: String,
    },
    #[error("no stored call matches {0:?}: `sangdam calls` lists the stored ids")]
    NotFound(String),
    #[error("{prefix:?} matches several calls ({candidates}): give more digits")]
    Ambiguous { prefix: String, candidates: String },
    #[error("{0:?} is not a call id: ids are hexadecimal, give at least 4 digits")]
    BadId(String),
    #[error("the store in {path} is damaged and could not be rebuilt: {message} (move the directory away to start empty; the journal calls.journal in it holds the acknowledged calls)")]
    Recover { path: PathBuf, message: String },
    #[error("cannot write the journal {path}: {source} (free space on that disk; nothing already stored is lost)")]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What start-up did about a damaged store.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// Why the store was judged damaged.
    pub reason: String,
    /// Where the damaged files were moved, untouched, for inspection.
    pub kept_at: PathBuf,
    /// Calls rebuilt from the journal.
    pub from_journal: usize,
    /// Calls that were only in sled (stored before the journal existed) and could
    /// still be read.
    pub salvaged: usize,
    /// Journal lines skipped (torn by a power cut mid-write).
    pub bad_journal_lines: usize,
}

pub use crate::record::{CallId, CallRecord, DayCounters, LiveCall, UtteranceRecord};

impl From<crate::record::BadCallId> for StoreError {
    fn from(e: crate::record::BadCallId) -> Self {
        StoreError::BadId(e.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    AlreadyPresent,
}

/// The sled database and its trees.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    calls: sled::Tree,
    utterances: sled::Tree,
    counters: sled::Tree,
    insights: sled::Tree,
    outbox: sled::Tree,
    sync: sled::Tree,
    path: PathBuf,
    journal: PathBuf,
    recovery: Option<Recovery>,
    tz: TimeZone,
    tz_name: String,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, checks its schema version, and
    /// checks it against the journal of acknowledged calls. A store that lost calls or
    /// that sled cannot open is kept aside as `DIR.damaged-<unix time>` and rebuilt; the
    /// result says so in [`Store::recovery`] (and in the log). Only a store that is
    /// locked, of a newer schema, or on a full or unwritable disk is an error.
    ///
    /// Days are cut in [`DEFAULT_TIME_ZONE`]; [`Store::open_in`] takes another zone.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_in(dir, DEFAULT_TIME_ZONE)
    }

    /// [`Store::open`] with days cut in the time zone `zone` (an IANA name such as
    /// `Asia/Seoul`, or `UTC`). Counters cut in another zone are counted again first.
    pub fn open_in(dir: &Path, zone: &str) -> Result<Store, StoreError> {
        let tz = sangdam_wire::day::time_zone(zone).map_err(|message| StoreError::TimeZone {
            path: dir.to_owned(),
            message,
        })?;
        let zone = (zone, &tz);
        let journal_path = dir.join(journal::JOURNAL_FILE);
        let contents = journal::read(&journal_path).map_err(|e| StoreError::Recover {
            path: dir.to_owned(),
            message: format!("cannot read {}: {e}", journal_path.display()),
        })?;
        match Self::open_sled(dir, zone) {
            Ok(store) => {
                let mut missing = Vec::new();
                for (i, e) in contents.entries.iter().enumerate() {
                    let whole = store.contains(&e.call.id)?
                        && store.utterances(&e.call.id)?.len() == e.utterances.len();
                    if !whole {
                        missing.push(i);
                    }
                }
                // A power cut between the journal's fsync and sled's flush leaves the
                // newest entry alone missing (it was never acknowledged): replay it.
                let n = contents.entries.len();
                if missing.is_empty() || missing == [n - 1] {
                    for &i in &missing {
                        let e = &contents.entries[i];
                        store.insert_sled(&e.call, &e.utterances)?;
                    }
                    return Ok(store);
                }
                let reason = format!(
                    "{} of {} acknowledged calls are missing or incomplete in sled",
                    missing.len(),
                    n
                );
                let readable = store.readable_calls();
                drop(store);
                Self::rebuild(dir, zone, contents, readable, reason)
            }
            Err(e @ (StoreError::Locked { .. } | StoreError::NewerSchema { .. })) => Err(e),
            // A full, read-only or forbidden disk is not damage: say so and change nothing.
            Err(StoreError::Open {
                source: sled::Error::Io(io),
                path,
            }) if io.kind() == std::io::ErrorKind::PermissionDenied
                || matches!(io.raw_os_error(), Some(28 | 30)) =>
            {
                Err(StoreError::Open {
                    path,
                    source: sled::Error::Io(io),
                })
            }
            Err(e) => {
                let reason = e.to_string();
                Self::rebuild(dir, zone, contents, Vec::new(), reason)
            }
        }
        .map(|mut s| {
            s.journal = journal_path.clone();
            s
        })
    }

    /// What start-up recovered, if the store was found damaged.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Every call sled can still return with its utterances (errors skipped).
    fn readable_calls(&self) -> Vec<(CallRecord, Vec<UtteranceRecord>)> {
        let mut out = Vec::new();
        for (_, v) in self.calls.iter().flatten() {
            if let Ok(c) = serde_json::from_slice::<CallRecord>(&v) {
                if let Ok(u) = self.utterances(&c.id) {
                    if u.len() == c.utterance_count as usize {
                        out.push((c, u));
                    }
                }
            }
        }
        out
    }

    fn rebuild(
        dir: &Path,
        zone: (&str, &TimeZone),
        contents: journal::Contents,
        readable: Vec<(CallRecord, Vec<UtteranceRecord>)>,
        reason: String,
    ) -> Result<Store, StoreError> {
        let fail = |message: String| StoreError::Recover {
            path: dir.to_owned(),
            message,
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = dir
            .file_name()
            .map_or("store".into(), |n| n.to_string_lossy().into_owned());
        let mut kept_at = dir.with_file_name(format!("{name}.damaged-{unix}"));
        let mut k = 1;
        while kept_at.exists() {
            kept_at = dir.with_file_name(format!("{name}.damaged-{unix}-{k}"));
            k += 1;
        }
        std::fs::rename(dir, &kept_at)
            .map_err(|e| fail(format!("cannot move it to {}: {e}", kept_at.display())))?;
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot recreate it: {e}")))?;
        let journal_path = dir.join(journal::JOURNAL_FILE);
        let old_journal = kept_at.join(journal::JOURNAL_FILE);
        if old_journal.exists() {
            std::fs::copy(&old_journal, &journal_path)
                .map_err(|e| fail(format!("cannot copy the journal back: {e}")))?;
        }
        let mut store = Self::open_sled(dir, zone)?;
        store.journal = journal_path;
        let mut from_journal = 0;
        for e in &contents.entries {
            if store.insert_sled(&e.call, &e.utterances)? == Inserted::New {
                from_journal += 1;
            }
        }
        let mut salvaged = 0;
        for (c, u) in &readable {
            if store.insert_call(c, u)? == Inserted::New {
                salvaged += 1;
            }
        }
        let recovery = Recovery {
            reason,
            kept_at,
            from_journal,
            salvaged,
            bad_journal_lines: contents.bad_lines,
        };
        tracing::warn!(
            store = %dir.display(),
            kept_at = %recovery.kept_at.display(),
            reason = %recovery.reason,
            from_journal,
            salvaged,
            "the store was damaged: kept the damaged copy aside and rebuilt it from the journal"
        );
        store.recovery = Some(recovery);
        Ok(store)
    }

    fn open_sled(dir: &Path, zone: (&str, &TimeZone)) -> Result<Store, StoreError> {
        // A store closed a moment ago can still be locked: sled's flusher thread holds the
        // database until it wakes and exits. Wait for it a little before saying "locked".
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match Self::open_sled_once(dir, zone) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn open_sled_once(dir: &Path, zone: (&str, &TimeZone)) -> Result<Store, StoreError> {
        let path = dir.to_owned();
        let db = sled::Config::new().path(dir).open().map_err(|source| {
            let locked = matches!(&source, sled::Error::Io(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("lock"));
            if locked {
                StoreError::Locked { path: path.clone() }
            } else {
                StoreError::Open {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let meta = db.open_tree("meta").map_err(open_err)?;
        match meta.get(SCHEMA_KEY).map_err(open_err)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(open_err)?;
                db.flush().map_err(open_err)?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        path: path.clone(),
                        tree: "meta",
                        key: "schema_version".into(),
                        message: format!("{} bytes instead of 4", v.len()),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                migrate(&db, &meta, &path, found)?;
            }
        }
        let store = Store {
            calls: db.open_tree("calls").map_err(open_err)?,
            utterances: db.open_tree("utterances").map_err(open_err)?,
            counters: db.open_tree("counters").map_err(open_err)?,
            insights: db.open_tree("insights").map_err(open_err)?,
            outbox: db.open_tree("outbox").map_err(open_err)?,
            sync: db.open_tree("sync").map_err(open_err)?,
            db,
            journal: path.join(journal::JOURNAL_FILE),
            path,
            recovery: None,
            tz: zone.1.clone(),
            tz_name: zone.0.to_owned(),
        };
        store.recut_days(&meta)?;
        Ok(store)
    }

    /// Counts every day again in the store's zone when the counters were cut in another
    /// one (schema 2 and older: UTC). One transaction: a power cut leaves either the old
    /// counters with the old zone or the new ones with the new zone.
    fn recut_days(&self, meta: &sled::Tree) -> Result<(), StoreError> {
        let recorded = meta.get(TIME_ZONE_KEY).map_err(|e| self.read_err(e))?;
        let recorded = match &recorded {
            Some(v) => String::from_utf8_lossy(v).into_owned(),
            None if self.calls.is_empty() && self.counters.is_empty() => {
                meta.insert(TIME_ZONE_KEY, self.tz_name.as_bytes())
                    .map_err(|e| self.write_err(e))?;
                return self.flush();
            }
            None => LEGACY_TIME_ZONE.to_owned(),
        };
        if recorded == self.tz_name {
            return Ok(());
        }
        let mut days: std::collections::BTreeMap<Day, DayCounters> = Default::default();
        let mut calls = 0usize;
        for call in self.calls()? {
            let utterances = self.utterances(&call.id)?;
            days.entry(self.day_of(call.analysed_at))
                .or_default()
                .add(&call, &utterances);
            calls += 1;
        }
        let old_keys: Vec<sled::IVec> = self
            .counters
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.read_err(e))?;
        let new: Vec<([u8; 4], Vec<u8>)> = days
            .iter()
            .map(|(d, c)| (d.0.to_be_bytes(), to_json(c)))
            .collect();
        (&self.counters, meta)
            .transaction(|(counters, meta)| {
                for k in &old_keys {
                    counters.remove(k)?;
                }
                for (k, v) in &new {
                    counters.insert(k, v.as_slice())?;
                }
                meta.insert(TIME_ZONE_KEY, self.tz_name.as_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => self.write_err(e),
                TransactionError::Abort(()) => unreachable!("the recount never aborts"),
            })?;
        self.flush()?;
        tracing::info!(
            store = %self.path.display(),
            from = %recorded,
            to = %self.tz_name,
            calls,
            days = days.len(),
            "day counters counted again in the configured time zone"
        );
        Ok(())
    }

    /// The time zone this store cuts days in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The IANA name of [`Store::time_zone`].
    pub fn time_zone_name(&self) -> &str {
        &self.tz_name
    }

    /// The day the moment `unix` falls on in the store's time zone.
    pub fn day_of(&self, unix: u64) -> Day {
        Day::of_unix(unix, &self.tz)
    }

    /// `YYYY-MM-DD HH:MM:SS ZZZ` of `unix` in the store's time zone.
    pub fn format_unix(&self, unix: u64) -> String {
        sangdam_wire::day::format_unix(unix, &self.tz)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a call with its utterances and counts it in the day of `analysed_at`, in
    /// one transaction, then flushes: when this returns `Ok` the call is durable. A call
    /// whose id is already stored changes nothing.
    pub fn insert_call(
        &self,
        call: &CallRecord,
        utterances: &[UtteranceRecord],
    ) -> Result<Inserted, StoreError> {
        if self.contains(&call.id)? {
            return Ok(Inserted::AlreadyPresent);
        }
        let entry = journal::Entry {
            call: call.clone(),
            utterances: utterances.to_vec(),
        };
        journal::append(&self.journal, &entry).map_err(|source| StoreError::Journal {
            path: self.journal.clone(),
            source,
        })?;
        self.insert_sled(call, utterances)
    }

    /// The sled half of [`Store::insert_call`]: one transaction, then a flush.
    fn insert_sled(
        &self,
        call: &CallRecord,
        utterances: &[UtteranceRecord],
    ) -> Result<Inserted, StoreError> {
        let call_json = to_json(call);
        let utt_json: Vec<(Vec<u8>, Vec<u8>)> = utterances
            .iter()
            .enumerate()
            .map(|(i, u)| (utterance_key(&call.id, i as u32).to_vec(), to_json(u)))
            .collect();
        let day_key = self.day_of(call.analysed_at).0.to_be_bytes();
        let result = (&self.calls, &self.utterances, &self.counters).transaction(
            |(calls, utts, counters)| {
                if calls.get(call.id.0)?.is_some() {
                    return Ok(Inserted::AlreadyPresent);
                }
                calls.insert(&call.id.0, call_json.as_slice())?;
                for (k, v) in &utt_json {
                    utts.insert(k.as_slice(), v.as_slice())?;
                }
                let mut day: DayCounters = match counters.get(day_key)? {
                    Some(v) => serde_json::from_slice(&v).map_err(|e| {
                        ConflictableTransactionError::Abort(format!(
                            "counters for {}: {e}",
                            Day(u32::from_be_bytes(day_key))
                        ))
                    })?,
                    None => DayCounters::default(),
                };
                day.add(call, utterances);
                counters.insert(&day_key, to_json(&day))?;
                Ok(Inserted::New)
            },
        );
        let inserted = match result {
            Ok(i) => i,
            Err(TransactionError::Abort(message)) => {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    tree: "counters",
                    key: self.day_of(call.analysed_at).to_string(),
                    message,
                })
            }
            Err(TransactionError::Storage(source)) => return Err(self.write_err(source)),
        };
        if inserted == Inserted::New {
            self.flush()?;
        }
        Ok(inserted)
    }

    /// How many calls are stored (keys only; nothing is decoded).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    pub fn contains(&self, id: &CallId) -> Result<bool, StoreError> {
        self.calls.contains_key(id.0).map_err(|e| self.read_err(e))
    }

    pub fn call(&self, id: &CallId) -> Result<Option<CallRecord>, StoreError> {
        match self.calls.get(id.0).map_err(|e| self.read_err(e))? {
            Some(v) => self.decode("calls", &id.to_hex(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Finds the one call whose id starts with `prefix` (at least 4 hex digits).
    pub fn resolve(&self, prefix: &str) -> Result<CallId, StoreError> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.len() < 4 || p.len() > 32 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BadId(prefix.to_owned()));
        }
        // Scan on the whole bytes of the prefix, then filter on the odd digit if any.
        let whole = crate::record::parse_hex(&p[..p.len() - p.len() % 2]).unwrap_or_default();
        let mut found = Vec::new();
        for item in self.calls.scan_prefix(&whole) {
            let (k, _) = item.map_err(|e| self.read_err(e))?;
            let id = CallId::from_digest(&k);
            if id.to_hex().starts_with(&p) {
                found.push(id);
            }
            if found.len() > 5 {
                break;
            }
        }
        match found.len() {
            0 => Err(StoreError::NotFound(prefix.to_owned())),
            1 => Ok(found[0]),
            _ => Err(StoreError::Ambiguous {
                prefix: prefix.to_owned(),
                candidates: found
                    .iter()
                    .map(CallId::short)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// All calls, oldest analysis first (ties by id).
    pub fn calls(&self) -> Result<Vec<CallRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.calls.iter() {
            let (k, v) = item.map_err(|e| self.read_err(e))?;
            out.push(self.decode::<CallRecord>("calls", &crate::models::hex(&k), &v)?);
        }
        out.sort_by(|a, b| a.analysed_at.cmp(&b.analysed_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// A call's utterances in stored (time) order.
    pub fn utterances(&self, id: &CallId) -> Result<Vec<UtteranceRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.utterances.scan_prefix(id.0) {
            let (k, v) = item.map_err(|e| self.read_err(e))?;
            out.push(self.decode("utterances", &crate::models::hex(&k), &v)?);
        }
        Ok(out)
    }

    pub fn day(&self, day: Day) -> Result<DayCounters, StoreError> {
        match self
            .counters
            .get(day.0.to_be_bytes())
            .map_err(|e| self.read_err(e))?
        {
            Some(v) => self.decode("counters", &day.to_string(), &v),
            None => Ok(DayCounters::default()),
        }
    }

    /// Every day with counters, in date order.
    pub fn days(&self) -> Result<Vec<(Day, DayCounters)>, StoreError> {
        let mut out = Vec::new();
        for item in self.counters.iter() {
            let (k, v) = item.map_err(|e| self.read_err(e))?;
            let day = <[u8; 4]>::try_from(k.as_ref())
                .map(|b| Day(u32::from_be_bytes(b)))
                .map_err(|_| StoreError::Corrupt {
                    path: self.path.clone(),
                    tree: "counters",
                    key: crate::models::hex(&k),
                    message: "key is not a 4-byte day".into(),
                })?;
            out.push((day, self.decode("counters", &day.to_string(), &v)?));
        }
        Ok(out)
    }

    /// The upstream outbox: signed batches by sequence number, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.outbox.iter() {
            let (k, v) = kv.map_err(|e| self.read_err(e))?;
            let mut seq = [0u8; 8];
            if k.len() == 8 {
                seq.copy_from_slice(&k);
                out.push((u64::from_be_bytes(seq), v.to_vec()));
            }
        }
        Ok(out)
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The sync state (JSON under `sync/state`), if any was written.
    pub fn sync_state<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StoreError> {
        match self.sync.get(b"state").map_err(|e| self.read_err(e))? {
            Some(v) => Ok(Some(self.decode("sync", "state", &v)?)),
            None => Ok(None),
        }
    }

    /// In one transaction: removes the outbox entries `remove`, adds `add`, and writes
    /// the sync state; then flushes. Batches enter the outbox, are merged and leave it
    /// only through this, so the state's sequence counter and the outbox never disagree.
    pub fn outbox_update<T: Serialize>(
        &self,
        remove: &[u64],
        add: &[(u64, Vec<u8>)],
        state: &T,
    ) -> Result<(), StoreError> {
        let state_json = to_json(state);
        (&self.outbox, &self.sync)
            .transaction(|(outbox, sync)| {
                for seq in remove {
                    outbox.remove(&seq.to_be_bytes())?;
                }
                for (seq, frame) in add {
                    outbox.insert(&seq.to_be_bytes(), frame.as_slice())?;
                }
                sync.insert(b"state", state_json.as_slice())?;
                Ok::<(), ConflictableTransactionError<String>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(m) => StoreError::Corrupt {
                    path: self.path.clone(),
                    tree: "outbox",
                    key: String::new(),
                    message: m,
                },
                TransactionError::Storage(e) => self.write_err(e),
            })?;
        self.db.flush().map_err(|e| self.write_err(e))?;
        Ok(())
    }

    /// Replaces the stored insights report (any serialisable value) and flushes.
    pub fn put_insights<T: Serialize>(&self, report: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(report).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            tree: "insights",
            key: "latest".into(),
            message: e.to_string(),
        })?;
        self.insights
            .insert(INSIGHTS_KEY, bytes)
            .map_err(|e| self.write_err(e))?;
        self.flush()
    }

    /// The stored insights report, if any.
    pub fn insights<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StoreError> {
        match self
            .insights
            .get(INSIGHTS_KEY)
            .map_err(|e| self.read_err(e))?
        {
            Some(v) => self.decode("insights", "latest", &v).map(Some),
            None => Ok(None),
        }
    }

    /// Forces everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.write_err(e))
    }

    fn decode<T: for<'de> Deserialize<'de>>(
        &self,
        tree: &'static str,
        key: &str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            tree,
            key: key.to_owned(),
            message: e.to_string(),
        })
    }

    fn read_err(&self, source: sled::Error) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            source,
        }
    }

    fn write_err(&self, source: sled::Error) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// Brings a store of schema `from` up to [`SCHEMA_VERSION`], one step per version, and
/// records the new version.
///
/// - 1 → 2 (the neutral class): nothing to rewrite. Version-1 values decode as they are:
///   every field added since is `#[serde(default)]`, and a version-1 build never labelled
///   anything neutral, so the zeros it reads as are the truth.
/// - 2 → 3 (days in the box's time zone): nothing to rewrite here; the store has no
///   `time_zone` in `meta`, so [`Store::recut_days`] reads its counters as UTC days and
///   counts them again in the configured zone right after.
fn migrate(db: &sled::Db, meta: &sled::Tree, path: &Path, from: u32) -> Result<(), StoreError> {
    debug_assert!(from <= SCHEMA_VERSION);
    if from == SCHEMA_VERSION {
        return Ok(());
    }
    let write_err = |source| StoreError::Write {
        path: path.to_owned(),
        source,
    };
    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
        .map_err(write_err)?;
    db.flush().map_err(write_err)?;
    tracing::info!(
        store = %path.display(),
        from,
        to = SCHEMA_VERSION,
        "store schema upgraded"
    );
    Ok(())
}

const INSIGHTS_KEY: &[u8] = b"latest";

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (logs; pages use [`Store::format_unix`]).
pub fn format_unix(unix: u64) -> String {
    sangdam_wire::day::format_unix(unix, &TimeZone::UTC)
}

fn utterance_key(id: &CallId, index: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id.0);
    k[16..].copy_from_slice(&index.to_be_bytes());
    k
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain records cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Speaker;
    use crate::sentiment::{CallSentiment, Label, Sentiment};

    #[test]
    fn call_id_hex_round_trip() {
        let id = CallId::from_digest(&[0xab; 32]);
        assert_eq!(id.to_hex(), "ab".repeat(16));
        assert_eq!(id.short().len(), 12);
        assert_eq!(id.to_hex().parse::<CallId>().unwrap(), id);
        assert!("xyz".parse::<CallId>().is_err());
    }

    #[test]
    fn utterance_keys_sort_by_index() {
        let id = CallId([7; 16]);
        assert!(utterance_key(&id, 2) < utterance_key(&id, 10));
        assert!(utterance_key(&id, 255) < utterance_key(&id, 256));
    }

    /// The store the schema-1 build wrote (tests/data/store-v1/README.md).
    const V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/store-v1");

    fn v1_store_copy(into: &Path) -> PathBuf {
        let dir = into.join("store");
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        for f in ["conf", "db", journal::JOURNAL_FILE] {
            std::fs::copy(Path::new(V1).join("sled").join(f), dir.join(f)).unwrap();
        }
        dir
    }

    fn s(label: Label, p: f32) -> Option<Sentiment> {
        Some(Sentiment {
            label,
            p_positive: p,
            truncated_chars: 0,
        })
    }

    /// A call stored by this build: a customer who said only neutral things.
    fn neutral_call(at: u64) -> (CallRecord, Vec<UtteranceRecord>) {
        let utts = vec![
            UtteranceRecord {
                channel: 1,
                speaker: Speaker::Customer,
                start_s: 0.5,
                end_s: 1.0,
                text: "네".into(),
                sentiment: s(Label::Neutral, 0.52),
            },
            UtteranceRecord {
                channel: 0,
                speaker: Speaker::Agent,
                start_s: 1.5,
                end_s: 3.0,
                text: "잠시만요 확인해 드릴게요".into(),
                sentiment: s(Label::Neutral, 0.61),
            },
            UtteranceRecord {
                channel: 1,
                speaker: Speaker::Customer,
                start_s: 4.0,
                end_s: 6.0,
                text: "카드 번호 불러 드릴게요".into(),
                sentiment: s(Label::Neutral, 0.47),
            },
        ];
        let scored: Vec<crate::sentiment::Scored> = utts
            .iter()
            .map(|u| crate::sentiment::Scored {
                speaker: u.speaker,
                start_s: u.start_s,
                end_s: u.end_s,
                sentiment: u.sentiment.unwrap(),
            })
            .collect();
        let call = CallRecord {
            id: CallId([0x11; 16]),
            source: "neutral.wav".into(),
            duration_s: 6.0,
            sample_rate: 8000,
            channels: 2,
            analysed_at: at,
            utterance_count: utts.len() as u32,
            asr_model: "asr-ko@0123456789ab".into(),
            sentiment: Some(CallSentiment::summarize("sentiment-ko@x", 6.0, &scored)),
            talk: None,
            live: None,
        };
        (call, utts)
    }

    #[test]
    fn schema_1_store_opens_migrates_and_keeps_counting() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = v1_store_copy(tmp.path());
        let store = Store::open(&dir).unwrap();
        assert!(store.recovery().is_none(), "{:?}", store.recovery());
        let meta = store.db.open_tree("meta").unwrap();
        assert_eq!(
            meta.get(SCHEMA_KEY).unwrap().as_deref(),
            Some(&3u32.to_be_bytes()[..]),
            "the migration records schema 3"
        );
        drop(meta);
        // The old call, its utterances and its day, as the old build stored them.
        let calls = store.calls().unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(c.id, CallId([0x5a; 16]));
        assert!(c.live.as_ref().is_some_and(|l| l.marked && l.seq == 41));
        let sentiment = c.sentiment.as_ref().unwrap();
        assert_eq!(
            (sentiment.overall, sentiment.basis),
            (Label::Negative, Speaker::Customer)
        );
        assert_eq!(sentiment.speakers[0].neutral, 0);
        assert_eq!(sentiment.neutral_utterances, 0);
        let labels: Vec<Label> = store
            .utterances(&c.id)
            .unwrap()
            .iter()
            .map(|u| u.sentiment.unwrap().label)
            .collect();
        assert_eq!(
            labels,
            [
                Label::Positive,
                Label::Negative,
                Label::Empty,
                Label::Positive
            ]
        );
        // The version-1 build counted the call on its UTC day; opened here its day is the
        // one in Asia/Seoul.
        let day = store.day_of(c.analysed_at);
        let old_day = DayCounters {
            calls: 1,
            utterances: 4,
            audio_seconds: 24.0,
            positive_calls: 0,
            negative_calls: 1,
            neutral_calls: 0,
            positive_utterances: 2,
            negative_utterances: 1,
            neutral_utterances: 0,
            audio_dropped: 0,
            marked: 1,
        };
        assert_eq!(store.day(day).unwrap(), old_day);
        // A neutral call of the same day adds to the old counters.
        let (call, utts) = neutral_call(c.analysed_at + 60);
        assert_eq!(call.sentiment.as_ref().unwrap().overall, Label::Neutral);
        assert_eq!(store.insert_call(&call, &utts).unwrap(), Inserted::New);
        let want = DayCounters {
            calls: 2,
            utterances: 7,
            audio_seconds: 30.0,
            neutral_calls: 1,
            neutral_utterances: 3,
            ..old_day.clone()
        };
        assert_eq!(store.day(day).unwrap(), want);
        drop(store);
        // Reopened (schema 3 now, the journal holding both calls): nothing to repair.
        let store = Store::open(&dir).unwrap();
        assert!(store.recovery().is_none(), "{:?}", store.recovery());
        assert_eq!(store.calls().unwrap().len(), 2);
        assert_eq!(store.days().unwrap(), vec![(day, want)]);
        let journal = journal::read(&dir.join(journal::JOURNAL_FILE)).unwrap();
        assert_eq!((journal.entries.len(), journal.bad_lines), (2, 0));
    }

    /// A call analysed at 2026-12-02 20:30 UTC = 2026-12-03 05:30 KST, and one at noon.
    fn night_and_noon_calls() -> Vec<(CallRecord, Vec<UtteranceRecord>)> {
        let night = Day::from_ymd(2026, 12, 2)
            .unwrap()
            .start_unix(&TimeZone::UTC)
            + 20 * 3600
            + 1800;
        let noon = night + 15 * 3600 + 1800;
        let (mut a, u) = neutral_call(night);
        a.id = CallId([7; 16]);
        let (mut b, v) = neutral_call(noon);
        b.id = CallId([8; 16]);
        vec![(a, u), (b, v)]
    }

    #[test]
    fn days_are_cut_in_the_store_zone_and_recut_when_it_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let calls = night_and_noon_calls();
        let dec2 = Day::from_ymd(2026, 12, 2).unwrap();
        let dec3 = Day::from_ymd(2026, 12, 3).unwrap();
        let mut second = calls[1].0.clone();
        second.id = CallId([9; 16]);
        {
            let store = Store::open(&dir).unwrap();
            assert_eq!(store.time_zone_name(), DEFAULT_TIME_ZONE);
            for (c, u) in &calls {
                store.insert_call(c, u).unwrap();
            }
            // Both calls fall on 3 December in Seoul.
            let days = store.days().unwrap();
            assert_eq!(days.len(), 1, "{days:?}");
            assert_eq!((days[0].0, days[0].1.calls), (dec3, 2));
            assert_eq!(
                store.format_unix(calls[0].0.analysed_at),
                "2026-12-03 05:30:00 KST"
            );
        }
        // The same store opened in UTC: the night call moves back to 2 December.
        {
            let store = Store::open_in(&dir, "UTC").unwrap();
            let days: Vec<(Day, u64)> = store
                .days()
                .unwrap()
                .into_iter()
                .map(|(d, c)| (d, c.calls))
                .collect();
            assert_eq!(days, vec![(dec2, 1), (dec3, 1)]);
            let meta = store.db.open_tree("meta").unwrap();
            assert_eq!(
                meta.get(TIME_ZONE_KEY).unwrap().as_deref(),
                Some(&b"UTC"[..])
            );
            // New calls count in the zone the store is open in.
            store.insert_call(&second, &calls[1].1).unwrap();
            assert_eq!(store.day(dec3).unwrap().calls, 2);
        }
        // And back: everything on 3 December, nothing counted twice.
        let store = Store::open(&dir).unwrap();
        let days = store.days().unwrap();
        assert_eq!(days.len(), 1, "{days:?}");
        assert_eq!((days[0].0, days[0].1.calls), (dec3, 3));
        let mut want = DayCounters::default();
        for (c, u) in calls
            .iter()
            .chain([(second.clone(), calls[1].1.clone())].iter())
        {
            want.add(c, u);
        }
        assert_eq!(days[0].1, want);
    }

    #[test]
    fn a_schema_2_store_counted_in_utc_is_recounted_in_seoul() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let calls = night_and_noon_calls();
        {
            // What a schema-2 build leaves: UTC days, no zone in meta.
            let store = Store::open_in(&dir, "UTC").unwrap();
            for (c, u) in &calls {
                store.insert_call(c, u).unwrap();
            }
            let meta = store.db.open_tree("meta").unwrap();
            meta.remove(TIME_ZONE_KEY).unwrap();
            meta.insert(SCHEMA_KEY, &2u32.to_be_bytes()).unwrap();
            store.flush().unwrap();
            assert_eq!(store.days().unwrap().len(), 2);
        }
        let store = Store::open(&dir).unwrap();
        assert!(store.recovery().is_none(), "{:?}", store.recovery());
        let meta = store.db.open_tree("meta").unwrap();
        assert_eq!(
            meta.get(SCHEMA_KEY).unwrap().as_deref(),
            Some(&SCHEMA_VERSION.to_be_bytes()[..])
        );
        assert_eq!(
            meta.get(TIME_ZONE_KEY).unwrap().as_deref(),
            Some(DEFAULT_TIME_ZONE.as_bytes())
        );
        let days = store.days().unwrap();
        assert_eq!(days.len(), 1, "{days:?}");
        assert_eq!(days[0].0, Day::from_ymd(2026, 12, 3).unwrap());
        assert_eq!(days[0].1.calls, 2);
        assert_eq!(store.calls().unwrap().len(), 2);
    }

    #[test]
    fn an_unknown_zone_is_an_error_naming_the_setting() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Store::open_in(&tmp.path().join("store"), "Asia/Busan").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("store.time_zone")
                && text.contains("Asia/Busan")
                && text.contains("Asia/Seoul"),
            "{text}"
        );
    }

    #[test]
    fn schema_1_values_decode() {
        let rows = |name: &str| -> Vec<(String, String)> {
            std::fs::read_to_string(Path::new(V1).join(name))
                .unwrap()
                .lines()
                .map(|l| {
                    let (k, v) = l.split_once('\t').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect()
        };
        let calls = rows("calls.tsv");
        assert_eq!(calls.len(), 1);
        let call: CallRecord = serde_json::from_str(&calls[0].1).unwrap();
        assert_eq!(call.id.to_hex(), calls[0].0);
        let utts: Vec<UtteranceRecord> = rows("utterances.tsv")
            .iter()
            .map(|(_, v)| serde_json::from_str(v).unwrap())
            .collect();
        assert_eq!(utts.len(), 4);
        let counters = rows("counters.tsv");
        let day: DayCounters = serde_json::from_str(&counters[0].1).unwrap();
        assert_eq!(
            counters[0].0,
            crate::models::hex(
                &Day::of_unix(call.analysed_at, &TimeZone::UTC)
                    .0
                    .to_be_bytes()
            )
        );
        assert_eq!((day.neutral_calls, day.neutral_utterances), (0, 0));
        // Counting the old call again with this build gives the old build's counters.
        let mut again = DayCounters::default();
        again.add(&call, &utts);
        assert_eq!(again, day);
        // The journal's line (checksummed JSON of the call and its utterances) as well.
        let journal =
            journal::read(&Path::new(V1).join("sled").join(journal::JOURNAL_FILE)).unwrap();
        assert_eq!(journal.bad_lines, 0);
        assert_eq!(
            journal.entries,
            vec![journal::Entry {
                call,
                utterances: utts
            }]
        );
    }

    #[test]
    fn day_counters_count_neutral_calls_and_utterances() {
        let (call, utts) = neutral_call(1_763_942_400);
        let mut d = DayCounters::default();
        d.add(&call, &utts);
        assert_eq!(
            (d.calls, d.positive_calls, d.neutral_calls, d.negative_calls),
            (1, 0, 1, 0)
        );
        assert_eq!(
            (
                d.positive_utterances,
                d.neutral_utterances,
                d.negative_utterances
            ),
            (0, 3, 0)
        );
    }
}
