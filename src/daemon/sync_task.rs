//! The daemon's sync task: runs [`Syncer::run_once`] every `sync.interval_minutes`, at
//! once when `sangdam sync --now` drops [`REQUEST_FILE`], and sooner (backing off) after a
//! failed run; it reports the last sync and the outbox in the status file.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::sync::{RunReport, SyncState, Syncer, REQUEST_FILE};

use super::{now_unix, Background, DaemonState, Status};

/// Sync on the daemon's schedule ([`Background`]).
pub struct SyncTask {
    syncer: Syncer,
    data_dir: std::path::PathBuf,
    next_run: Instant,
    retry_in: Duration,
    interval: Duration,
    last: Option<RunReport>,
    state: SyncState,
    syncing: bool,
}

impl SyncTask {
    pub fn new(syncer: Syncer, data_dir: &Path) -> SyncTask {
        let interval = syncer.interval();
        let state = syncer.state().unwrap_or_default();
        SyncTask {
            syncer,
            data_dir: data_dir.to_owned(),
            // The first run a minute after start: the line first.
            next_run: Instant::now() + Duration::from_secs(60),
            retry_in: Duration::from_secs(60),
            interval,
            last: None,
            state,
            syncing: false,
        }
    }
}

impl Background for SyncTask {
    fn tick(&mut self, stop: &AtomicBool) {
        let request = self.data_dir.join(REQUEST_FILE);
        let asked = request.exists();
        if !asked && Instant::now() < self.next_run {
            return;
        }
        self.syncing = true;
        let r = self.syncer.run_once(&now_unix, stop);
        self.syncing = false;
        let _ = std::fs::remove_file(&request);
        match r {
            Ok(r) => {
                tracing::info!("sync: {r}");
                if r.error.is_some() {
                    self.next_run = Instant::now() + self.retry_in;
                    self.retry_in = (self.retry_in * 2).min(self.interval);
                } else {
                    self.next_run = Instant::now() + self.interval;
                    self.retry_in = Duration::from_secs(60);
                }
                self.last = Some(r);
            }
            Err(e) => {
                tracing::error!("sync: {e:#}");
                self.next_run = Instant::now() + self.retry_in;
                self.retry_in = (self.retry_in * 2).min(self.interval);
            }
        }
        if let Ok(s) = self.syncer.state() {
            self.state = s;
        }
    }

    fn status(&self, status: &mut Status) {
        status.last_sync_unix = self.state.last_sync_unix;
        status.outbox_batches = Some(self.syncer.outbox_len() as u64);
        status.sync_error = self.state.last_error.clone();
        if self.syncing && status.state == DaemonState::Idle {
            status.state = DaemonState::Syncing;
        }
    }
}
