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

pub mod notify;
pub mod status;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::asr::AsrEngine;
use crate::capture::{
    self, AudioSource, CaptureShared, GeneratorSource, Segment, SegmentKind, SourceKind, WavSource,
};
use crate::config::{Config, PanelBackend};
use crate::live::{self, LineSettings, LineShared, Spool, WorkerShared};
use crate::panel::{LedState, Panel, PanelEvent};
use crate::pipeline::Settings;
use crate::store::Store;
pub use status::Status;

/// Unix seconds by the box's clock.
pub use sangdam_wire::now_unix;

/// The source `[live]` asks for.
pub fn make_source(config: &Config) -> Result<Box<dyn AudioSource>> {
    let l = &config.live;
    Ok(match l.source {
        SourceKind::Wav => {
            anyhow::ensure!(
                !l.wav.as_os_str().is_empty(),
                "live.source = \"wav\" needs live.wav, the file to replay"
            );
            Box::new(WavSource::new(&l.wav, l.wav_speed))
        }
        SourceKind::Generator => {
            let schedule = if l.generator.is_empty() {
                // A call every 20 s: 8 s of talk, then silence.
                vec![
                    Segment::new(SegmentKind::Talk, 8.0),
                    Segment::new(SegmentKind::Silence, 12.0),
                ]
            } else {
                l.generator.clone()
            };
            Box::new(
                GeneratorSource::new(l.generator_rate, l.channels, schedule)
                    .speed(l.wav_speed)
                    .repeat(!l.exit_at_end),
            )
        }
        SourceKind::Alsa => alsa_source(config)?,
        SourceKind::Cpal => cpal_source(config)?,
    })
}

#[cfg(feature = "alsa")]
fn alsa_source(config: &Config) -> Result<Box<dyn AudioSource>> {
    let l = &config.live;
    Ok(Box::new(capture::alsa::AlsaSource::new(
        capture::alsa::AlsaSettings {
            device: l.device.clone(),
            rate: l.rate,
            channels: l.channels,
            period_frames: l.period_frames,
            buffer_frames: l.buffer_frames,
        },
    )))
}

#[cfg(not(feature = "alsa"))]
fn alsa_source(_: &Config) -> Result<Box<dyn AudioSource>> {
    anyhow::bail!(
        "this sangdam was built without ALSA: build the device binary with `cargo build --release --features device`, or set live.source = \"wav\" or \"generator\" to try the daemon on this machine"
    )
}

#[cfg(feature = "cpal")]
fn cpal_source(config: &Config) -> Result<Box<dyn AudioSource>> {
    let l = &config.live;
    Ok(Box::new(capture::cpal::CpalSource::new(
        capture::cpal::CpalSettings {
            device: l.device.clone(),
            rate: l.rate,
            channels: l.channels,
            period_frames: l.period_frames,
        },
    )))
}

#[cfg(not(feature = "cpal"))]
fn cpal_source(_: &Config) -> Result<Box<dyn AudioSource>> {
    anyhow::bail!(
        "this sangdam was built without cpal: build with `--features device` (or `--features cpal`), or use live.source = \"alsa\""
    )
}

/// The panel, whatever its pins are.
trait PanelDriver {
    fn tick(&mut self, now_ms: u64) -> Result<Option<PanelEvent>, String>;
    fn set_state(&mut self, state: LedState, now_ms: u64);
    fn off(&mut self);
}

impl<L, B, H, E> PanelDriver for Panel<L, B, H>
where
    L: embedded_hal::digital::OutputPin + embedded_hal::digital::ErrorType<Error = E>,
    B: embedded_hal::digital::InputPin + embedded_hal::digital::ErrorType<Error = E>,
    H: embedded_hal::digital::InputPin + embedded_hal::digital::ErrorType<Error = E>,
    E: std::fmt::Debug,
{
    fn tick(&mut self, now_ms: u64) -> Result<Option<PanelEvent>, String> {
        Panel::tick(self, now_ms).map_err(|e| e.to_string())
    }
    fn set_state(&mut self, state: LedState, now_ms: u64) {
        Panel::set_state(self, state, now_ms)
    }
    fn off(&mut self) {
        let _ = Panel::off(self);
    }
}

fn make_panel(config: &Config) -> Result<Option<Box<dyn PanelDriver>>> {
    let p = &config.panel;
    match p.backend {
        PanelBackend::None => Ok(None),
        PanelBackend::File => {
            let (led, button, hook) = crate::panel::file_pins(&p.file_dir);
            let hook = p.hook().map(|_| hook);
            Ok(Some(Box::new(Panel::new(
                led,
                button,
                hook,
                p.hook_active_high,
                p.timing(),
            ))))
        }
        PanelBackend::Gpio => gpio_panel(config),
    }
}

#[cfg(feature = "gpio")]
fn gpio_panel(config: &Config) -> Result<Option<Box<dyn PanelDriver>>> {
    let p = &config.panel;
    let pins = crate::panel::gpio::GpioPins {
        chip: p.chip.clone(),
        led: p.led_line,
        button: p.button_line,
        hook: p.hook(),
        hook_active_high: p.hook_active_high,
    };
    Ok(Some(Box::new(crate::panel::gpio::open(&pins, p.timing())?)))
}

#[cfg(not(feature = "gpio"))]
fn gpio_panel(_: &Config) -> Result<Option<Box<dyn PanelDriver>>> {
    anyhow::bail!(
        "this sangdam was built without GPIO: build the device binary with `--features device`, or set panel.backend = \"none\" or \"file\""
    )
}

/// Everything the daemon needs that `main` loads: the store and the recognition setup.
pub struct Daemon {
    pub config: Config,
    pub store: Store,
    pub engine: AsrEngine,
    pub settings: Settings,
    pub data_dir: PathBuf,
}

/// Periodic work run on its own thread by the daemon (upstream sync). `tick` is called
/// about every second; it decides itself when to act, and must return promptly when
/// `stop` is set.
pub trait Background: Send {
    fn tick(&mut self, stop: &AtomicBool);
    /// What to show in the status snapshot.
    fn status(&self, status: &mut Status);
}

impl Daemon {
    /// Runs until SIGTERM/SIGINT, or, for a finite source with `live.exit_at_end`, until
    /// the input has ended and every call is stored.
    pub fn run(self, background: Option<Box<dyn Background>>) -> Result<()> {
        let term = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, term.clone())
                .context("cannot install the signal handler")?;
        }
        self.run_until(&term, background)
    }

    /// [`Daemon::run`] with the stop flag given (tests set it themselves).
    pub fn run_until(
        self,
        term: &AtomicBool,
        background: Option<Box<dyn Background>>,
    ) -> Result<()> {
        let Daemon {
            config,
            store,
            engine,
            settings,
            data_dir,
        } = self;
        let notifier = notify::Notifier::from_env();
        let spool = Spool::open(
            &data_dir.join("spool"),
            config.live.spool_max_mb * 1_000_000,
        )?;
        let mut source = make_source(&config)?;
        let mut panel = match make_panel(&config) {
            Ok(p) => p,
            Err(e) => {
                // The line matters more than the LED: record without the panel.
                tracing::error!("panel: {e:#}; running without it");
                None
            }
        };
        let hook_line = config.panel.backend != PanelBackend::None && config.panel.hook().is_some();
        let line_settings = LineSettings {
            detector: config.live.detector.clone(),
            hook_line,
            line: source.describe(),
        };
        let cap = CaptureShared::default();
        let line = LineShared::default();
        let worker = WorkerShared::default();
        let last_error: Mutex<Option<String>> = Mutex::new(None);
        let finite = matches!(config.live.source, SourceKind::Wav)
            || (config.live.source == SourceKind::Generator && config.live.exit_at_end);
        let until_idle = finite && config.live.exit_at_end;
        let started_unix = now_unix();
        let bg_stop = AtomicBool::new(false);
        let background = Mutex::new(background);
        let mut ring = capture::new_ring();
        let (mut producer, mut consumer) = ring.split();
        let mut status = Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_unix,
            source: source.describe(),
            spool_max_bytes: config.live.spool_max_mb * 1_000_000,
            ..Default::default()
        };
        tracing::info!(
            "sangdam run: {} ({} Hz asked, {} ch), calls by {}, spool {} MB in {}",
            source.describe(),
            config.live.rate,
            config.live.channels,
            if hook_line {
                "the off-hook line"
            } else {
                "voice"
            },
            config.live.spool_max_mb,
            spool.dir().display()
        );

        let keep = live::KeepAudio {
            dir: data_dir.join("recordings"),
            marked: config.live.keep_marked_audio,
            all: config.live.keep_audio,
            max_bytes: config.live.keep_audio_max_mb * 1_000_000,
        };
        std::thread::scope(|s| -> Result<()> {
            let cap = &cap;
            let line = &line;
            let worker = &worker;
            let spool = &spool;
            let store_ref = &store;
            let last_error = &last_error;
            let capture_thread = std::thread::Builder::new()
                .name("capture".into())
                .spawn_scoped(s, move || {
                    capture::run_source(source.as_mut(), &mut producer, cap, &mut |e| {
                        tracing::error!("{e}");
                        if let Ok(mut g) = last_error.lock() {
                            *g = Some(e.to_string());
                        }
                    })
                })?;
            let line_thread = std::thread::Builder::new()
                .name("line".into())
                .spawn_scoped(s, move || {
                    live::run_line(
                        &mut consumer,
                        cap,
                        line,
                        spool,
                        store_ref,
                        &line_settings,
                        &now_unix,
                    )
                })?;
            let engine = &engine;
            let settings = &settings;
            let keep = &keep;
            let worker_thread = std::thread::Builder::new()
                .name("analysis".into())
                .spawn_scoped(s, move || {
                    live::run_worker(
                        spool, store_ref, engine, settings, keep, worker, &line.done, until_idle,
                        &now_unix,
                    )
                })?;
            let bg_thread = {
                let background = &background;
                let bg_stop = &bg_stop;
                std::thread::Builder::new()
                    .name("sync".into())
                    .spawn_scoped(s, move || {
                        while !bg_stop.load(Ordering::Acquire) {
                            if let Ok(mut g) = background.lock() {
                                if let Some(b) = g.as_mut() {
                                    b.tick(bg_stop);
                                }
                            }
                            for _ in 0..10 {
                                if bg_stop.load(Ordering::Acquire) {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    })?
            };

            notifier.notify("READY=1");
            let t0 = Instant::now();
            let mut last_status = Instant::now() - Duration::from_secs(10);
            let mut last_disk = Instant::now() - Duration::from_secs(60);
            let mut last_watchdog = Instant::now();
            let mut last_heartbeat = u64::MAX;
            let mut stopping = false;
            loop {
                let now_ms = t0.elapsed().as_millis() as u64;
                if term.load(Ordering::Acquire) && !stopping {
                    stopping = true;
                    tracing::info!(
                        "stopping: closing the call in progress, finishing the call being analysed"
                    );
                    notifier.notify("STOPPING=1");
                    cap.stop.store(true, Ordering::Release);
                }
                if stopping && line.done.load(Ordering::Acquire) {
                    worker.stop.store(true, Ordering::Release);
                    spool.wake();
                }
                if until_idle && worker_thread.is_finished() {
                    break;
                }
                if stopping && worker_thread.is_finished() {
                    break;
                }
                // The panel.
                if let Some(p) = panel.as_mut() {
                    p.set_state(status.led(), now_ms);
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
                        Ok(Some(PanelEvent::Hook(off))) => {
                            line.off_hook.store(off, Ordering::Release)
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!("panel: {e}; running without it");
                            panel = None;
                        }
                    }
                }
                // The status snapshot, once a second.
                if last_status.elapsed() >= Duration::from_secs(1) {
                    last_status = Instant::now();
                    fill_status(&mut status, cap, line, worker, spool, last_error, stopping);
                    if last_disk.elapsed() >= Duration::from_secs(10) {
                        last_disk = Instant::now();
                        status.data_bytes = status::dir_bytes(&data_dir);
                        status.disk_free_bytes = status::disk_free(&data_dir);
                    }
                    if let Ok(g) = background.try_lock() {
                        if let Some(b) = g.as_ref() {
                            b.status(&mut status);
                        }
                    }
                    if let Err(e) = status.write(&data_dir) {
                        tracing::debug!("cannot write the status file: {e}");
                    }
                    notifier.notify(&format!(
                        "STATUS={}, {} calls recorded, {} waiting",
                        status.state, status.calls_recorded, status.backlog_calls
                    ));
                }
                // The watchdog: only while the capture thread is alive.
                if let Some(every) = notifier.watchdog_interval() {
                    if last_watchdog.elapsed() >= every {
                        let hb = cap.heartbeat.load(Ordering::Relaxed);
                        if hb != last_heartbeat || capture_thread.is_finished() {
                            notifier.notify("WATCHDOG=1");
                            last_watchdog = Instant::now();
                        } else {
                            tracing::warn!("capture thread has not moved for {every:?}; withholding the watchdog");
                        }
                        last_heartbeat = hb;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            cap.stop.store(true, Ordering::Release);
            worker.stop.store(true, Ordering::Release);
            bg_stop.store(true, Ordering::Release);
            spool.wake();
            let _ = capture_thread.join();
            let _ = line_thread.join();
            let _ = worker_thread.join();
            let _ = bg_thread.join();
            if let Some(p) = panel.as_mut() {
                p.off();
            }
            Ok(())
        })?;
        store.flush().context("flushing the store at shutdown")?;
        fill_status(&mut status, &cap, &line, &worker, &spool, &last_error, true);
        status.state = "stopped".into();
        if let Ok(g) = background.lock() {
            if let Some(b) = g.as_ref() {
                b.status(&mut status);
            }
        }
        let _ = status.write(&data_dir);
        tracing::info!(
            "stopped: {} calls recorded, {} analysed, {} waiting in the spool",
            status.calls_recorded,
            status.calls_analysed,
            status.backlog_calls
        );
        Ok(())
    }
}

fn fill_status(
    s: &mut Status,
    cap: &CaptureShared,
    line: &LineShared,
    worker: &WorkerShared,
    spool: &Spool,
    last_error: &Mutex<Option<String>>,
    stopping: bool,
) {
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
        "stopping"
    } else if device_down || s.recording_paused {
        "error"
    } else if s.muted {
        "muted"
    } else if line.in_call.load(r) {
        "in_call"
    } else if s.backlog_calls > 0 || worker.busy.load(r) {
        "backlog"
    } else {
        "idle"
    }
    .to_owned();
    if s.device_running && cap_err.is_some() {
        // The device came back: the error is history.
        if let Ok(mut g) = last_error.lock() {
            *g = None;
        }
    }
}
