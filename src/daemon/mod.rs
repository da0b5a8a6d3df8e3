//! `sangdam run`: the daemon that listens to the phone line all day.
//!
//! Threads: capture ([`crate::capture::run_source`], the real-time one), line
//! ([`crate::live::run_line`]: calls to the spool), analysis ([`crate::live::run_worker`]:
//! spool to store), and this one: the panel (LED, button, hook line) every 10 ms, the
//! status snapshot every second, systemd's watchdog, and signals.
//!
//! SIGTERM or SIGINT: capture stops, the call in progress is closed and its audio kept in
//! the spool, the analysis thread finishes the call it is on (the rest waits in the spool
//! for the next start), sled is flushed, and the process exits 0. systemd is told
//! `READY=1` once capture, models and store are up, and `WATCHDOG=1` only while the
//! capture thread's heartbeat moves, so a hung capture gets the daemon restarted.
//!
//! The daemon builds no device: [`crate::app`] makes the source, the panel and the sync
//! task from the config and hands them over in [`Daemon`].

pub mod notify;
pub mod status;
mod sync_task;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::asr::AsrEngine;
use crate::capture::{self, AudioSource, CaptureShared, SourceKind};
use crate::live::{self, LineSettings, LineShared, LiveConfig, Spool, WorkerShared};
use crate::panel::{PanelDriver, PanelEvent};
use crate::pipeline::Settings;
use crate::store::Store;
pub use status::{DaemonState, Status};
pub use sync_task::SyncTask;

/// Unix seconds by the box's clock.
pub use sangdam_wire::now_unix;

/// Everything the daemon runs on, built by [`crate::app::daemon`] from the config (or by
/// a test): the store, the recognition setup, and the devices.
pub struct Daemon {
    /// `[live]`: the spool, the call detector, which audio to keep, whether a finite
    /// source ends the run.
    pub live: LiveConfig,
    pub store: Store,
    pub engine: AsrEngine,
    pub settings: Settings,
    pub data_dir: PathBuf,
    pub source: Box<dyn AudioSource>,
    pub panel: Option<Box<dyn PanelDriver>>,
    /// Calls are found by the panel's off-hook line rather than by voice.
    pub hook_line: bool,
    pub background: Option<Box<dyn Background>>,
}

/// Why the daemon could not start or stop cleanly. While it runs, errors of the line,
/// the analysis and sync are logged and counted in the status instead: the daemon keeps
/// running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error("cannot install the signal handler: {0}")]
    Signals(std::io::Error),
    #[error("the spool: {0}")]
    Spool(#[from] live::spool::SpoolError),
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("flushing the store at shutdown: {0}")]
    Flush(crate::store::StoreError),
}

/// Periodic work run on its own thread by the daemon (upstream sync). `tick` is called
/// about every second; it decides itself when to act, and must return promptly when
/// `stop` is set.
pub trait Background: Send {
    fn tick(&mut self, stop: &AtomicBool);
    /// What to show in the status snapshot.
    fn status(&self, status: &mut Status);
}

/// What the threads share: the capture, line and analysis threads' counters, the spool,
/// the capture's last error and the background task.
struct Shared {
    cap: CaptureShared,
    line: LineShared,
    worker: WorkerShared,
    spool: Spool,
    last_error: Mutex<Option<String>>,
    background: Mutex<Option<Box<dyn Background>>>,
}

impl Daemon {
    /// Runs until SIGTERM/SIGINT, or, for a finite source with `live.exit_at_end`, until
    /// the input has ended and every call is stored.
    pub fn run(self) -> Result<(), DaemonError> {
        let term = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, term.clone()).map_err(DaemonError::Signals)?;
        }
        self.run_until(&term)
    }

    /// [`Daemon::run`] with the stop flag given (tests set it themselves): starts the
    /// capture, line, analysis and background threads, then steps the panel, the status
    /// snapshot and the watchdog every 10 ms on this thread until it is time to stop.
    pub fn run_until(self, term: &AtomicBool) -> Result<(), DaemonError> {
        let Daemon {
            live: cfg,
            store,
            engine,
            settings,
            data_dir,
            mut source,
            panel,
            hook_line,
            background,
        } = self;
        let shared = Shared {
            cap: CaptureShared::default(),
            line: LineShared::default(),
            worker: WorkerShared::default(),
            spool: Spool::open(&data_dir.join("spool"), cfg.spool_max_mb * 1_000_000)?,
            last_error: Mutex::new(None),
            background: Mutex::new(background),
        };
        let line_settings = LineSettings {
            detector: cfg.detector.clone(),
            hook_line,
            line: source.describe(),
        };
        let finite = matches!(cfg.source, SourceKind::Wav)
            || (cfg.source == SourceKind::Generator && cfg.exit_at_end);
        let until_idle = finite && cfg.exit_at_end;
        let keep = live::KeepAudio {
            dir: data_dir.join("recordings"),
            marked: cfg.keep_marked_audio,
            all: cfg.keep_audio,
            max_bytes: cfg.keep_audio_max_mb * 1_000_000,
        };
        tracing::info!(
            "sangdam run: {} ({} Hz asked, {} ch), calls by {}, spool {} MB in {}",
            source.describe(),
            cfg.rate,
            cfg.channels,
            if hook_line {
                "the off-hook line"
            } else {
                "voice"
            },
            cfg.spool_max_mb,
            shared.spool.dir().display()
        );
        let mut steps = Steps {
            shared: &shared,
            notifier: notify::Notifier::from_env(),
            data_dir: &data_dir,
            panel,
            status: Status {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_unix: now_unix(),
                source: source.describe(),
                spool_max_bytes: cfg.spool_max_mb * 1_000_000,
                ..Default::default()
            },
            t0: Instant::now(),
            last_status: Instant::now() - Duration::from_secs(10),
            last_disk: Instant::now() - Duration::from_secs(60),
            last_watchdog: Instant::now(),
            last_heartbeat: u64::MAX,
            stopping: false,
        };
        let mut ring = capture::new_ring();
        let (mut producer, mut consumer) = ring.split();
        let bg_stop = AtomicBool::new(false);
        let thread = |name: &'static str| move |source| DaemonError::Thread { name, source };
        std::thread::scope(|s| -> Result<(), DaemonError> {
            let sh = &shared;
            let capture_thread = std::thread::Builder::new()
                .name("capture".into())
                .spawn_scoped(s, move || {
                    capture::run_source(source.as_mut(), &mut producer, &sh.cap, &mut |e| {
                        tracing::error!("{e}");
                        if let Ok(mut g) = sh.last_error.lock() {
                            *g = Some(e.to_string());
                        }
                    })
                })
                .map_err(thread("capture"))?;
            let (store, line_settings) = (&store, &line_settings);
            let line_thread = std::thread::Builder::new()
                .name("line".into())
                .spawn_scoped(s, move || {
                    live::run_line(
                        &mut consumer,
                        &sh.cap,
                        &sh.line,
                        &sh.spool,
                        store,
                        line_settings,
                        &now_unix,
                    )
                })
                .map_err(thread("line"))?;
            let (engine, settings, keep) = (&engine, &settings, &keep);
            let worker_thread = std::thread::Builder::new()
                .name("analysis".into())
                .spawn_scoped(s, move || {
                    live::run_worker(
                        &sh.spool,
                        store,
                        engine,
                        settings,
                        keep,
                        &sh.worker,
                        &sh.line.done,
                        until_idle,
                        &now_unix,
                    )
                })
                .map_err(thread("analysis"))?;
            let bg_stop = &bg_stop;
            let bg_thread = std::thread::Builder::new()
                .name("sync".into())
                .spawn_scoped(s, move || run_background(&sh.background, bg_stop))
                .map_err(thread("sync"))?;

            steps.notifier.notify("READY=1");
            loop {
                steps.signals(term);
                if (until_idle || steps.stopping) && worker_thread.is_finished() {
                    break;
                }
                steps.panel();
                steps.status();
                steps.watchdog(capture_thread.is_finished());
                std::thread::sleep(Duration::from_millis(10));
            }
            sh.cap.stop.store(true, Ordering::Release);
            sh.worker.stop.store(true, Ordering::Release);
            bg_stop.store(true, Ordering::Release);
            sh.spool.wake();
            let _ = capture_thread.join();
            let _ = line_thread.join();
            let _ = worker_thread.join();
            let _ = bg_thread.join();
            if let Some(p) = steps.panel.as_mut() {
                p.off();
            }
            Ok(())
        })?;
        store.flush().map_err(DaemonError::Flush)?;
        steps.stopped();
        Ok(())
    }
}

/// The background task's thread: a tick about every second until `stop`.
fn run_background(background: &Mutex<Option<Box<dyn Background>>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        if let Ok(mut g) = background.lock() {
            if let Some(b) = g.as_mut() {
                b.tick(stop);
            }
        }
        for _ in 0..10 {
            if stop.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The daemon's own thread between its 10 ms steps: signals, the panel, the status
/// snapshot and systemd's watchdog.
struct Steps<'a> {
    shared: &'a Shared,
    notifier: notify::Notifier,
    data_dir: &'a Path,
    panel: Option<Box<dyn PanelDriver>>,
    status: Status,
    t0: Instant,
    last_status: Instant,
    last_disk: Instant,
    last_watchdog: Instant,
    last_heartbeat: u64,
    stopping: bool,
}

impl Steps<'_> {
    /// SIGTERM or SIGINT: capture stops (the line thread then closes the call in
    /// progress); once the line is done, the analysis thread is told to stop after the
    /// call it is on.
    fn signals(&mut self, term: &AtomicBool) {
        let sh = self.shared;
        if term.load(Ordering::Acquire) && !self.stopping {
            self.stopping = true;
            tracing::info!(
                "stopping: closing the call in progress, finishing the call being analysed"
            );
            self.notifier.notify("STOPPING=1");
            sh.cap.stop.store(true, Ordering::Release);
        }
        if self.stopping && sh.line.done.load(Ordering::Acquire) {
            sh.worker.stop.store(true, Ordering::Release);
            sh.spool.wake();
        }
    }

    /// The LED shows the state; the button marks or mutes, the hook line starts and ends
    /// calls. A panel that fails is dropped (recording goes on).
    fn panel(&mut self) {
        let Some(p) = self.panel.as_mut() else {
            return;
        };
        let line = &self.shared.line;
        let now_ms = self.t0.elapsed().as_millis() as u64;
        p.set_state(self.status.led(), now_ms);
        match p.tick(now_ms) {
            Ok(Some(PanelEvent::MarkForReview)) => {
                line.mark_request.store(true, Ordering::Release);
                tracing::info!("button: call marked for review");
            }
            Ok(Some(PanelEvent::ToggleMute)) => {
                let muted = !line.muted.load(Ordering::Acquire);
                line.muted.store(muted, Ordering::Release);
                tracing::info!(
                    "button: recording {}",
                    if muted { "muted" } else { "resumed" }
                );
            }
            Ok(Some(PanelEvent::Hook(off))) => line.off_hook.store(off, Ordering::Release),
            Ok(None) => {}
            Err(e) => {
                tracing::error!("panel: {e}; running without it");
                self.panel = None;
            }
        }
    }

    /// The status snapshot, once a second (the disk use every 10 s).
    fn status(&mut self) {
        if self.last_status.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_status = Instant::now();
        let sh = self.shared;
        fill_status(&mut self.status, sh, self.stopping);
        if self.last_disk.elapsed() >= Duration::from_secs(10) {
            self.last_disk = Instant::now();
            self.status.data_bytes = status::dir_bytes(self.data_dir);
            self.status.disk_free_bytes = status::disk_free(self.data_dir);
        }
        if let Ok(g) = sh.background.try_lock() {
            if let Some(b) = g.as_ref() {
                b.status(&mut self.status);
            }
        }
        if let Err(e) = self.status.write(self.data_dir) {
            tracing::debug!("cannot write the status file: {e}");
        }
        self.notifier.notify(&format!(
            "STATUS={}, {} calls recorded, {} waiting",
            self.status.state, self.status.calls_recorded, self.status.backlog_calls
        ));
    }

    /// systemd's watchdog, kicked only while the capture thread's heartbeat moves (or it
    /// has ended, as a finite source does).
    fn watchdog(&mut self, capture_finished: bool) {
        let Some(every) = self.notifier.watchdog_interval() else {
            return;
        };
        if self.last_watchdog.elapsed() < every {
            return;
        }
        let hb = self.shared.cap.heartbeat.load(Ordering::Relaxed);
        if hb != self.last_heartbeat || capture_finished {
            self.notifier.notify("WATCHDOG=1");
            self.last_watchdog = Instant::now();
        } else {
            tracing::warn!("capture thread has not moved for {every:?}; withholding the watchdog");
        }
        self.last_heartbeat = hb;
    }

    /// The last snapshot, once every thread has ended and the store is flushed.
    fn stopped(mut self) {
        let sh = self.shared;
        fill_status(&mut self.status, sh, true);
        self.status.state = DaemonState::Stopped;
        if let Ok(g) = sh.background.lock() {
            if let Some(b) = g.as_ref() {
                b.status(&mut self.status);
            }
        }
        let _ = self.status.write(self.data_dir);
        tracing::info!(
            "stopped: {} calls recorded, {} analysed, {} waiting in the spool",
            self.status.calls_recorded,
            self.status.calls_analysed,
            self.status.backlog_calls
        );
    }
}

fn fill_status(s: &mut Status, sh: &Shared, stopping: bool) {
    let Shared {
        cap,
        line,
        worker,
        spool,
        last_error,
        ..
    } = sh;
    let r = Ordering::Relaxed;
    let sp = spool.stats();
    s.updated_unix = now_unix();
    s.device_running = cap.running.load(r);
    if let Some((rate, ch)) = cap.format() {
        s.rate = rate;
        s.channels = ch;
    }
    s.muted = line.muted.load(r);
    s.backlog_calls = sp.queued;
    s.backlog_bytes = sp.bytes;
    s.audio_dropped_calls = sp.dropped;
    s.failed_calls = sp.failed;
    s.rtf_last_hour = worker.rtf(Duration::from_secs(3600));
    s.calls_recorded = line.calls.load(r);
    s.calls_analysed = worker.analysed.load(r);
    s.calls_without_audio = line.calls_without_audio.load(r);
    s.short_calls_ignored = line.short_calls.load(r);
    s.ring_overruns = cap.overruns.load(r);
    s.dropped_samples = cap.dropped_samples.load(r);
    s.xruns = cap.xruns.load(r);
    s.device_errors = cap.device_errors.load(r);
    s.stream_gaps = line.gaps.load(r);
    s.analysis_errors = worker.errors.load(r);
    s.store_errors = line.store_errors.load(r);
    s.recording_paused = line.recording_paused.load(r);
    let cap_err = last_error.lock().ok().and_then(|g| g.clone());
    let work_err = worker.last_error.lock().ok().and_then(|g| g.clone());
    s.last_error = cap_err.clone().or(work_err);
    let device_down = !s.device_running && s.device_errors > 0 && !cap.finished.load(r);
    s.state = if stopping {
        DaemonState::Stopping
    } else if device_down || s.recording_paused {
        DaemonState::Error
    } else if s.muted {
        DaemonState::Muted
    } else if line.in_call.load(r) {
        DaemonState::InCall
    } else if s.backlog_calls > 0 || worker.busy.load(r) {
        DaemonState::Backlog
    } else {
        DaemonState::Idle
    };
    if s.device_running && cap_err.is_some() {
        // The device came back: the error is history.
        if let Ok(mut g) = last_error.lock() {
            *g = None;
        }
    }
}
