//! Where accepted batches live. The HTTP side only sees the [`Storage`] trait; sled is the
//! one backend here, and a shared database (see the README's "Scaling past one machine")
//! would be another.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sangdam_wire::Batch;

/// What [`Storage::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The batch was not there before and is now durable.
    New,
    /// The same batch was stored before under this (device, seq) (and is durable);
    /// nothing was written. "The same" is the same body, or (a box that re-encoded its
    /// outbox after an update) a body of another wire version that decodes to the same
    /// batch.
    Duplicate,
    /// Another batch was stored before under this (device, seq): a box whose store was
    /// rebuilt, or that was re-imaged with the same key, numbering from 1 again. Nothing
    /// was written; the box's batch is new and must be sent again under a free number.
    Conflict {
        /// The device's highest stored seq + 1 (always above the batch's seq).
        next_seq: u64,
    },
}

/// A stored batch and, where the backend keeps it, the hub's clock when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub batch: Batch,
    pub received_unix: Option<u64>,
}

#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("cannot open the batch store in {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the batch store in {path} is in use by another process (is another sangdam-hub running with this --data directory?)")]
    Locked { path: PathBuf },
    #[error("the batch store failed: {0}")]
    Backend(String),
    #[error("stored batch {device} #{seq} cannot be read back: {reason}")]
    Corrupt {
        device: String,
        seq: u64,
        reason: String,
    },
}

/// The hub's batch store.
///
/// Implementations must make `(device, seq)` unique even when two copies of the same batch
/// arrive at once: exactly one caller gets [`Stored::New`]. A batch is identified by
/// (device, seq) and its content: the SHA-256 of its body ([`sangdam_wire::body_digest`])
/// tells a resend (the same body: [`Stored::Duplicate`]) from another batch under a
/// reused number ([`Stored::Conflict`]).
pub trait Storage: Send + Sync {
    /// Stores `body` (the frame `batch` was decoded from) under `(device, seq)`.
    ///
    /// Durable before it returns Ok. Same (device, seq) and the same batch →
    /// Ok(Stored::Duplicate), nothing written; that answer too waits until the earlier copy
    /// is durable, so that a box never drops a batch the hub could still lose. Same
    /// (device, seq) and another batch → Ok(Stored::Conflict) with the device's next free
    /// seq, nothing written.
    fn insert(&self, batch: &Batch, body: &[u8]) -> Result<Stored, StorageError>;

    /// Every stored batch, for the fleet page and tests.
    fn batches(&self) -> Result<Vec<Batch>, StorageError>;

    /// How many batches are stored.
    fn count(&self) -> Result<usize, StorageError>;

    fn contains(&self, device: &str, seq: u64) -> Result<bool, StorageError>;

    /// Every device's fleet-page aggregate. Backends keep them up to date in the insert's
    /// transaction, so that a page reads one bounded record per device; the default folds
    /// every stored record (as a backend without its own aggregates must).
    fn aggregates(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::fleet::DeviceAggregate>, StorageError>
    {
        Ok(crate::fleet::aggregate(&self.records()?))
    }

    /// Every stored batch with its arrival time. The default has no times.
    fn records(&self) -> Result<Vec<Record>, StorageError> {
        Ok(self
            .batches()?
            .into_iter()
            .map(|batch| Record {
                batch,
                received_unix: None,
            })
            .collect())
    }
}

/// `device ++ 0x00 ++ seq (u64 big-endian)`: a device's batches sort together, by seq.
/// Device ids never contain NUL, so no two (device, seq) pairs share a key.
pub fn key(device: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + 9);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The inverse of [`key`].
pub fn parse_key(k: &[u8]) -> Option<(String, u64)> {
    if k.len() < 10 {
        return None;
    }
    let (device, rest) = k.split_at(k.len() - 9);
    if rest[0] != 0 {
        return None;
    }
    let seq = u64::from_be_bytes(rest[1..].try_into().ok()?);
    Some((String::from_utf8(device.to_vec()).ok()?, seq))
}

pub(crate) use sangdam_wire::now_unix;

/// Batches in a sled database: tree `batches` maps [`key`] to the raw body, tree
/// `received` maps the same key to the hub's clock at arrival (u64 big-endian). The
/// batch's digest is not stored apart: it is the SHA-256 of the stored body, so batches
/// stored before digests mattered compare the same way as new ones. Tree `aggregates`
/// maps a device id to its [`crate::fleet::DeviceAggregate`] (JSON), written in the same
/// sled transaction as the batch, so the fleet page reads one bounded record per device.
/// A store written before the aggregates existed gets them folded from its batches when
/// it is opened (tree `meta`, key `aggregates` marks them complete).
///
/// Durability uses group commit: a request inserts, then waits for an fsync that *started
/// after* its insert. One flusher thread runs those fsyncs back to back, each covering
/// every request that arrived while the previous one ran, so a thousand concurrent
/// uploads cost a handful of fsyncs rather than a thousand.
pub struct SledStorage {
    path: PathBuf,
    batches: sled::Tree,
    received: sled::Tree,
    aggregates: sled::Tree,
    commit: Arc<GroupCommit>,
    flusher: Option<JoinHandle<()>>,
    // Dropped last (fields drop in order), after the flusher has stopped.
    _db: sled::Db,
}

struct GroupCommit {
    state: Mutex<CommitState>,
    /// Wakes the flusher: a request is waiting, or stop.
    work: Condvar,
    /// Wakes the requests: a flush finished.
    done: Condvar,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out: the n-th request to wait gets n.
    requested: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// Set when a flush failed: every later wait fails too (the database is unusable).
    failed: Option<String>,
    stop: bool,
    flushes: u64,
}

fn lock(m: &Mutex<CommitState>) -> MutexGuard<'_, CommitState> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GroupCommit {
    /// Blocks until a flush that started after this call has finished.
    fn wait_durable(&self) -> Result<(), StorageError> {
        let mut s = lock(&self.state);
        s.requested += 1;
        let ticket = s.requested;
        self.work.notify_one();
        while s.durable < ticket && s.failed.is_none() {
            s = self
                .done
                .wait(s)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        match &s.failed {
            Some(reason) if s.durable < ticket => Err(StorageError::Backend(format!(
                "flushing to disk failed: {reason}"
            ))),
            _ => Ok(()),
        }
    }

    fn run(&self, db: &sled::Db, log: &std::fs::File) {
        loop {
            let target = {
                let mut s = lock(&self.state);
                while s.requested == s.durable && !s.stop {
                    s = self
                        .work
                        .wait(s)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                if s.requested == s.durable {
                    return; // stop, and nobody waits
                }
                s.requested
            };
            // Everything inserted before `target` was handed out is in sled's buffers now.
            // sled's flush writes them but only calls sync_file_range(2), which neither
            // commits the file's metadata nor flushes the drive's cache; fdatasync(2) on the
            // log file afterwards does both.
            let result = db
                .flush()
                .map_err(|e| e.to_string())
                .and_then(|_| log.sync_data().map_err(|e| format!("fdatasync: {e}")));
            let mut s = lock(&self.state);
            match result {
                Ok(_) => {
                    s.durable = target;
                    s.flushes += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "flushing the batch store failed; refusing batches from now on");
                    s.failed = Some(e);
                    self.done.notify_all();
                    return;
                }
            }
            self.done.notify_all();
        }
    }
}

impl SledStorage {
    /// Opens (or creates) the store in `dir`. A store closed a moment ago may still be
    /// locked by sled's threads: this waits up to 3 s for it before reporting
    /// [`StorageError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match Self::open_once(dir) {
                Err(StorageError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.to_owned();
        let open_err = |e: sled::Error| StorageError::Open {
            path: path.clone(),
            reason: e.to_string(),
        };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 << 20)
            // Durability comes from our own flusher; sled's timer would only add fsyncs.
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                let locked = matches!(&e, sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock"));
                if locked {
                    StorageError::Locked { path: path.clone() }
                } else {
                    open_err(e)
                }
            })?;
        let batches = db.open_tree("batches").map_err(open_err)?;
        let received = db.open_tree("received").map_err(open_err)?;
        let aggregates = db.open_tree("aggregates").map_err(open_err)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        if meta.get(AGGREGATES_DONE).map_err(open_err)?.is_none() {
            rebuild_aggregates(&batches, &received, &aggregates, &path)?;
            meta.insert(AGGREGATES_DONE, &[1u8]).map_err(open_err)?;
        }
        // sled keeps its log in `db`; the flusher fdatasyncs it. The folder is synced once
        // so that a store created just now keeps its files' names after a crash.
        let io_err = |what: &str, e: std::io::Error| StorageError::Open {
            path: path.clone(),
            reason: format!("{what}: {e}"),
        };
        let log = std::fs::File::open(dir.join("db"))
            .map_err(|e| io_err("cannot open sled's log file", e))?;
        db.flush().map_err(open_err)?;
        log.sync_data().map_err(|e| io_err("fdatasync", e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync the store's folder", e))?;
        let commit = Arc::new(GroupCommit {
            state: Mutex::new(CommitState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let flusher = {
            let (commit, db) = (commit.clone(), db.clone());
            std::thread::Builder::new()
                .name("hub-flusher".into())
                .spawn(move || commit.run(&db, &log))
                .map_err(|e| StorageError::Open {
                    path: path.clone(),
                    reason: format!("cannot start the flusher thread: {e}"),
                })?
        };
        Ok(SledStorage {
            path,
            batches,
            received,
            aggregates,
            commit,
            flusher: Some(flusher),
            _db: db,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`Stored::Conflict`] naming the device's highest stored seq + 1 (at least
    /// `seq + 1`: `seq` itself is stored).
    fn next_seq(&self, device: &str, seq: u64) -> Result<Stored, StorageError> {
        let mut prefix = device.as_bytes().to_vec();
        prefix.push(0);
        let highest = match self.batches.scan_prefix(&prefix).next_back() {
            Some(item) => parse_key(&item.map_err(backend)?.0).map_or(seq, |(_, s)| s),
            None => seq,
        };
        Ok(Stored::Conflict {
            next_seq: highest.max(seq).saturating_add(1),
        })
    }

    /// How many fsyncs the group commit has run (each covers every batch waiting then).
    pub fn flushes(&self) -> u64 {
        lock(&self.commit.state).flushes
    }
}

impl Drop for SledStorage {
    fn drop(&mut self) {
        lock(&self.commit.state).stop = true;
        self.commit.work.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
    }
}

/// Whether `body` (decoded: `batch`) is the batch already stored as `current` (a
/// duplicate), or another one (a conflict). The same bytes (the same digest) are the
/// same batch; so is a body of another wire version that decodes to an equal batch (a
/// box re-encodes its outbox in the newest version after an update, and may resend a
/// batch the hub stored before in the old one). A stored body that no longer decodes is
/// a conflict: the box's batch then goes in under a new number, and nothing is lost.
pub(crate) fn same_batch(batch: &Batch, body: &[u8], current: Option<&[u8]>) -> bool {
    current.is_some_and(|current| {
        sangdam_wire::body_digest(current) == sangdam_wire::body_digest(body)
            || Batch::decode(current).is_ok_and(|stored| &stored == batch)
    })
}

fn backend(e: sled::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

/// Key in tree `meta`: present once every stored batch is in tree `aggregates`.
const AGGREGATES_DONE: &[u8] = b"aggregates";

/// Folds every stored batch into tree `aggregates` (a store of a hub from before the
/// aggregates, or one whose fold was cut off: it starts again from empty).
fn rebuild_aggregates(
    batches: &sled::Tree,
    received: &sled::Tree,
    aggregates: &sled::Tree,
    path: &Path,
) -> Result<(), StorageError> {
    let fail = |reason: String| StorageError::Open {
        path: path.to_owned(),
        reason: format!("cannot build the fleet aggregates: {reason}"),
    };
    aggregates.clear().map_err(|e| fail(e.to_string()))?;
    if batches.is_empty() {
        return Ok(());
    }
    tracing::info!(
        batches = batches.len(),
        "folding the stored batches into per-device aggregates (once)"
    );
    let all = crate::fleet::aggregate(&read_records(batches, received)?);
    for (device, agg) in all {
        let json = serde_json::to_vec(&agg).map_err(|e| fail(e.to_string()))?;
        aggregates
            .insert(device.as_bytes(), json)
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Every stored batch, decoded, with its arrival time.
fn read_records(batches: &sled::Tree, received: &sled::Tree) -> Result<Vec<Record>, StorageError> {
    let mut out = Vec::new();
    for item in batches.iter() {
        let (k, body) = item.map_err(backend)?;
        let (device, seq) = parse_key(&k).unwrap_or_else(|| ("?".into(), 0));
        let batch = Batch::decode(&body).map_err(|e| StorageError::Corrupt {
            device: device.clone(),
            seq,
            reason: e.to_string(),
        })?;
        let received_unix = received
            .get(&k)
            .map_err(backend)?
            .and_then(|v| Some(u64::from_be_bytes(v.as_ref().try_into().ok()?)));
        out.push(Record {
            batch,
            received_unix,
        });
    }
    Ok(out)
}

/// Why a sled insert transaction stopped.
enum Abort {
    /// The key is taken: the body stored under it.
    Taken(sled::IVec),
    /// The device's stored aggregate does not decode.
    Aggregate(String),
}

impl Storage for SledStorage {
    fn insert(&self, batch: &Batch, body: &[u8]) -> Result<Stored, StorageError> {
        use sled::transaction::{ConflictableTransactionError as Cte, TransactionError};
        use sled::Transactional;
        let device = batch.header.device.as_str();
        let k = key(device, batch.header.seq);
        let now = now_unix();
        // One serializable sled transaction: the key must be absent (of two concurrent
        // copies exactly one commits, the other retries and finds it), and the batch, its
        // arrival time and its device's aggregate are written together.
        let outcome = (&self.batches, &self.received, &self.aggregates).transaction(
            |(batches, received, aggregates)| {
                if let Some(current) = batches.get(&k)? {
                    return Err(Cte::Abort(Abort::Taken(current)));
                }
                let mut agg: crate::fleet::DeviceAggregate = match aggregates.get(device)? {
                    Some(json) => serde_json::from_slice(&json)
                        .map_err(|e| Cte::Abort(Abort::Aggregate(e.to_string())))?,
                    None => Default::default(),
                };
                agg.add(batch, Some(now));
                let json = serde_json::to_vec(&agg)
                    .map_err(|e| Cte::Abort(Abort::Aggregate(e.to_string())))?;
                batches.insert(k.as_slice(), body)?;
                received.insert(k.as_slice(), &now.to_be_bytes())?;
                aggregates.insert(device.as_bytes(), json)?;
                Ok(())
            },
        );
        let stored = match outcome {
            Ok(()) => Stored::New,
            Err(TransactionError::Abort(Abort::Taken(current))) => {
                if same_batch(batch, body, Some(&current)) {
                    Stored::Duplicate
                } else {
                    self.next_seq(device, batch.header.seq)?
                }
            }
            Err(TransactionError::Abort(Abort::Aggregate(reason))) => {
                return Err(StorageError::Corrupt {
                    device: device.to_owned(),
                    seq: batch.header.seq,
                    reason: format!("its device's aggregate does not decode: {reason}"),
                })
            }
            Err(TransactionError::Storage(e)) => return Err(backend(e)),
        };
        // Also for a duplicate: the first copy may still be waiting for its fsync.
        self.commit.wait_durable()?;
        Ok(stored)
    }

    fn aggregates(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::fleet::DeviceAggregate>, StorageError>
    {
        let mut out = std::collections::BTreeMap::new();
        for item in self.aggregates.iter() {
            let (k, json) = item.map_err(backend)?;
            let device = String::from_utf8_lossy(&k).into_owned();
            let agg = serde_json::from_slice(&json).map_err(|e| StorageError::Corrupt {
                device: device.clone(),
                seq: 0,
                reason: format!("its aggregate does not decode: {e}"),
            })?;
            out.insert(device, agg);
        }
        Ok(out)
    }

    fn batches(&self) -> Result<Vec<Batch>, StorageError> {
        Ok(self.records()?.into_iter().map(|r| r.batch).collect())
    }

    fn count(&self) -> Result<usize, StorageError> {
        Ok(self.batches.len())
    }

    fn contains(&self, device: &str, seq: u64) -> Result<bool, StorageError> {
        self.batches.contains_key(key(device, seq)).map_err(backend)
    }

    fn records(&self) -> Result<Vec<Record>, StorageError> {
        read_records(&self.batches, &self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_seq() {
        let a = key("busan-03", 2);
        let b = key("busan-03", 256);
        assert!(a < b);
        assert_eq!(parse_key(&b), Some(("busan-03".into(), 256)));
        assert_eq!(parse_key(b"x"), None);
        // "busan-03" with seq 1 and "busan-03\0..." cannot collide: ids hold no NUL.
        assert!(key("a", 1) < key("a-", 0));
    }
}
