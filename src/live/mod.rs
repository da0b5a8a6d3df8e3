//! The live line: what happens to captured audio after the ring.
//!
//! - [`run_line`] (the line thread) pops frames from the capture ring, finds calls with the
//!   [`CallDetector`] (off-hook line or voice), records each call to the [`Spool`] as it
//!   happens, and queues it when it ends. Calls whose audio the spool had to discard are
//!   stored at once as counted calls without a transcript.
//! - [`run_worker`] (the analysis thread) takes queued calls oldest first and runs them
//!   through the same pipeline as `sangdam analyze` ([`crate::pipeline::analyze_call`]),
//!   then deletes their audio. It is allowed to fall behind: the spool is the backlog.
//!
//! Both threads only talk through atomics ([`LineShared`], [`WorkerShared`]) and the spool,
//! so the daemon's status and LED never wait on them.

pub mod config;
pub mod detector;
pub mod spool;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use config::LiveConfig;
pub use detector::{Action, CallDetector, DetectorConfig, EndReason};
pub use spool::{Recording, Spool, SpoolMeta, SpoolStats};

use crate::asr::AsrEngine;
use crate::capture::{CaptureShared, RingConsumer};
use crate::clock::Clock;
use crate::pipeline::{self, Outcome, PipelineError, Settings};
use crate::store::{CallRecord, LiveCall, Store};

/// Line state shared with the daemon (status, LED, button).
#[derive(Debug, Default)]
pub struct LineShared {
    /// The panel's debounced off-hook line, if one is configured.
    pub off_hook: AtomicBool,
    /// Privacy mute from the desk button: nothing is recorded while set.
    pub muted: AtomicBool,
    /// Set by the button: mark the current (or the last) call for review.
    pub mark_request: AtomicBool,
    pub in_call: AtomicBool,
    /// Recording is paused by a write error (disk full) right now.
    pub recording_paused: AtomicBool,
    pub calls: AtomicU64,
    /// Calls stored without audio (spool full or not recordable).
    pub calls_without_audio: AtomicU64,
    /// Calls shorter than `min_call_s`, not kept.
    pub short_calls: AtomicU64,
    /// Gaps in the stream (the device restarted).
    pub gaps: AtomicU64,
    /// Store writes that failed (the records are retried by nobody: logged and counted).
    pub store_errors: AtomicU64,
    /// The line thread has finished (the source ended or stop was requested).
    pub done: AtomicBool,
}

/// Analysis state shared with the daemon.
#[derive(Debug, Default)]
pub struct WorkerShared {
    pub stop: AtomicBool,
    pub busy: AtomicBool,
    pub analysed: AtomicU64,
    pub errors: AtomicU64,
    /// (finished at, audio seconds, processing seconds) of recent calls, for the RTF.
    pub recent: Mutex<VecDeque<(Instant, f64, f64)>>,
    pub last_error: Mutex<Option<String>>,
}

impl WorkerShared {
    /// Processing time over audio time of the calls finished in the last `window`.
    pub fn rtf(&self, window: Duration) -> Option<f64> {
        let g = self.recent.lock().ok()?;
        let (mut audio, mut proc) = (0.0, 0.0);
        for (at, a, p) in g.iter() {
            if at.elapsed() <= window {
                audio += a;
                proc += p;
            }
        }
        (audio > 0.0).then(|| proc / audio)
    }
}

/// Settings of the line thread.
#[derive(Debug, Clone)]
pub struct LineSettings {
    pub detector: DetectorConfig,
    /// An off-hook line decides calls (else voice activity).
    pub hook_line: bool,
    /// The source's name, stored with each call.
    pub line: String,
}

/// A call the spool could not keep the audio of: stored at once, counted, no transcript.
pub fn store_without_audio(
    store: &Store,
    meta: &SpoolMeta,
    now: u64,
) -> Result<(), crate::store::StoreError> {
    let live = LiveCall {
        started_at: meta.started_at,
        ended_by: meta.ended_by.unwrap_or(EndReason::Interrupted),
        line: meta.line.clone(),
        seq: meta.seq,
        marked: meta.marked,
        audio_dropped: true,
        unrecorded_s: meta.duration_s(),
    };
    let call = CallRecord {
        id: pipeline::live_call_id(b"", &live),
        source: format!("{} call {}", meta.line, meta.seq),
        duration_s: meta.duration_s(),
        sample_rate: meta.rate,
        channels: meta.channels,
        analysed_at: now,
        utterance_count: 0,
        asr_model: String::new(),
        sentiment: None,
        talk: None,
        live: Some(live),
    };
    store.insert_call(&call, &[]).map(|_| ())
}

/// The line thread: runs until the capture has ended or stopped and the ring is empty.
/// `clock` gives unix seconds.
pub fn run_line(
    ring: &mut RingConsumer<'_>,
    cap: &CaptureShared,
    shared: &LineShared,
    spool: &Spool,
    store: &Store,
    settings: &LineSettings,
    clock: &dyn Clock,
) {
    let mut generation = 0u32;
    let mut format = (16_000u32, 1u16);
    let mut detector = CallDetector::new(settings.detector.clone(), 1, settings.hook_line);
    let mut frame: Vec<i16> = Vec::with_capacity(2 * 320);
    let mut frame_len = 320usize;
    let mut preroll: VecDeque<Vec<i16>> = VecDeque::new();
    let mut held: VecDeque<Vec<i16>> = VecDeque::new();
    let mut rec: Option<Recording> = None;

    let store_dropped = |meta: &SpoolMeta| {
        shared.calls_without_audio.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = store_without_audio(store, meta, clock.now_unix()) {
            shared.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!("call {} could not be stored: {e}", meta.seq);
        }
    };
    let finish = |rec: &mut Option<Recording>,
                  reason: EndReason,
                  keep: &[Vec<i16>],
                  detector: &CallDetector| {
        let Some(mut r) = rec.take() else { return };
        for f in keep {
            spool.write(&mut r, f);
        }
        shared.in_call.store(false, Ordering::Release);
        shared.recording_paused.store(false, Ordering::Release);
        let frames = r.meta.recorded_frames + r.meta.unrecorded_frames;
        if !detector.long_enough() {
            shared.short_calls.fetch_add(1, Ordering::Relaxed);
            spool.discard(r);
            return;
        }
        shared.calls.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "call {} ended ({reason}): {:.1} s{}",
            r.meta.seq,
            frames as f64 / f64::from(r.meta.rate),
            r.error
                .as_deref()
                .map(|e| format!(", recording paused: {e}"))
                .unwrap_or_default()
        );
        match spool.commit(r, reason) {
            Ok(dropped) => {
                for meta in dropped {
                    store_dropped(&meta);
                }
            }
            Err(e) => {
                shared.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{e}");
            }
        }
    };

    loop {
        // A (re)started stream is a gap: close the call it interrupted.
        let g = cap.generation.load(Ordering::Acquire);
        if g != generation {
            if rec.is_some() {
                if let Some(Action::End { keep_held, .. }) =
                    detector.force_end(EndReason::DeviceLost)
                {
                    let keep: Vec<Vec<i16>> = held.drain(..).take(keep_held).collect();
                    finish(&mut rec, EndReason::DeviceLost, &keep, &detector);
                }
            }
            if generation != 0 {
                shared.gaps.fetch_add(1, Ordering::Relaxed);
            }
            generation = g;
            if let Some(f) = cap.format() {
                format = f;
            }
            detector = CallDetector::new(settings.detector.clone(), format.1, settings.hook_line);
            frame_len = (format.0 / 50) as usize * format.1 as usize;
            frame.clear();
            preroll.clear();
            held.clear();
        }
        // Fill one 20 ms frame.
        while frame.len() < frame_len {
            match ring.dequeue() {
                Some(x) => frame.push(x),
                None => break,
            }
        }
        if frame.len() < frame_len {
            let ended = cap.finished.load(Ordering::Acquire)
                || (cap.stop.load(Ordering::Acquire) && !cap.running.load(Ordering::Acquire));
            if ended && ring.is_empty() {
                let reason = if cap.finished.load(Ordering::Acquire) {
                    EndReason::EndOfStream
                } else {
                    EndReason::Shutdown
                };
                if let Some(Action::End { keep_held, .. }) = detector.force_end(reason) {
                    let keep: Vec<Vec<i16>> = held.drain(..).take(keep_held).collect();
                    finish(&mut rec, reason, &keep, &detector);
                }
                break;
            }
            // The device went away mid-call: close the call now, not when it returns.
            if !cap.running.load(Ordering::Acquire) && ring.is_empty() && rec.is_some() {
                if let Some(Action::End { keep_held, .. }) =
                    detector.force_end(EndReason::DeviceLost)
                {
                    let keep: Vec<Vec<i16>> = held.drain(..).take(keep_held).collect();
                    finish(&mut rec, EndReason::DeviceLost, &keep, &detector);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }

        if shared.mark_request.swap(false, Ordering::AcqRel) {
            match rec.as_mut() {
                Some(r) => r.meta.marked = true,
                None => {
                    if let Some(seq) = spool.mark_newest() {
                        tracing::info!("call {seq} marked for review");
                    }
                }
            }
        }
        if shared.muted.load(Ordering::Acquire) {
            if let Some(Action::End { keep_held, .. }) = detector.force_end(EndReason::Muted) {
                let keep: Vec<Vec<i16>> = held.drain(..).take(keep_held).collect();
                finish(&mut rec, EndReason::Muted, &keep, &detector);
            }
            preroll.clear();
            frame.clear();
            continue;
        }
        detector.set_hook(shared.off_hook.load(Ordering::Acquire));
        match detector.push(&frame) {
            Action::Idle => {
                // Idle is most of the day: reuse the oldest pre-roll frame's buffer
                // instead of allocating one per 20 ms.
                let mut buf = if preroll.len() >= detector.preroll_frames() {
                    preroll.pop_front().unwrap_or_default()
                } else {
                    Vec::with_capacity(frame.len())
                };
                buf.clear();
                buf.extend_from_slice(&frame);
                preroll.push_back(buf);
                while preroll.len() > detector.preroll_frames() {
                    preroll.pop_front();
                }
            }
            Action::Start => {
                let pre = preroll.len() as u64 * 20 / 1000;
                let mut r = spool.begin(
                    clock.now_unix().saturating_sub(pre),
                    &settings.line,
                    format.0,
                    format.1,
                );
                for f in preroll.drain(..) {
                    spool.write(&mut r, &f);
                }
                spool.write(&mut r, &frame);
                tracing::info!("call {} started", r.meta.seq);
                shared.in_call.store(true, Ordering::Release);
                rec = Some(r);
            }
            Action::Record => {
                if let Some(r) = rec.as_mut() {
                    spool.write(r, &frame);
                }
            }
            Action::Hold => held.push_back(frame.clone()),
            Action::Resume => {
                if let Some(r) = rec.as_mut() {
                    for f in held.drain(..) {
                        spool.write(r, &f);
                    }
                    spool.write(r, &frame);
                }
            }
            Action::End { reason, keep_held } => {
                let keep: Vec<Vec<i16>> = held.drain(..).take(keep_held).collect();
                finish(&mut rec, reason, &keep, &detector);
                held.clear();
                preroll.push_back(frame.clone());
            }
        }
        if let Some(r) = rec.as_ref() {
            shared
                .recording_paused
                .store(r.is_paused(), Ordering::Release);
        }
        for meta in spool.take_evicted() {
            store_dropped(&meta);
        }
        frame.clear();
    }
    shared.in_call.store(false, Ordering::Release);
    shared.done.store(true, Ordering::Release);
}

/// What the analysis thread does with a call's audio once the call is stored.
#[derive(Debug, Clone)]
pub struct KeepAudio {
    /// Where kept recordings go (`DATA/recordings`).
    pub dir: std::path::PathBuf,
    /// Keep the audio of calls marked for review at the desk.
    pub marked: bool,
    /// Keep every call's audio.
    pub all: bool,
    /// The folder's bound; the oldest recordings go first.
    pub max_bytes: u64,
}

/// The analysis thread: stores queued calls until `shared.stop` is set, or, with
/// `until_idle`, until the line is done and the queue is empty.
#[allow(clippy::too_many_arguments)]
pub fn run_worker(
    spool: &Spool,
    store: &Store,
    engine: &AsrEngine,
    settings: &Settings,
    keep: &KeepAudio,
    shared: &WorkerShared,
    line_done: &AtomicBool,
    until_idle: bool,
    clock: &dyn Clock,
) {
    let mut backoff = Duration::from_secs(1);
    while !shared.stop.load(Ordering::Acquire) {
        let Some((path, meta)) = spool.take(Duration::from_millis(200)) else {
            if until_idle && line_done.load(Ordering::Acquire) && spool.stats().queued == 0 {
                break;
            }
            continue;
        };
        shared.busy.store(true, Ordering::Release);
        let live = LiveCall {
            started_at: meta.started_at,
            ended_by: meta.ended_by.unwrap_or(EndReason::Interrupted),
            line: meta.line.clone(),
            seq: meta.seq,
            marked: meta.marked,
            audio_dropped: false,
            unrecorded_s: meta.unrecorded_s(),
        };
        let t0 = Instant::now();
        let result = pipeline::analyze_call(
            &path,
            engine,
            store,
            settings,
            clock.now_unix(),
            Some(live),
            &mut |_| {},
        );
        shared.busy.store(false, Ordering::Release);
        match result {
            Ok(outcome) => {
                let call = outcome.call();
                if let Outcome::Stored { .. } = outcome {
                    tracing::info!(
                        "call {} stored as {}: {} utterances, {:.1} s{}",
                        meta.seq,
                        call.id.short(),
                        call.utterance_count,
                        call.duration_s,
                        call.sentiment
                            .as_ref()
                            .map(|s| format!(", {}", s.line()))
                            .unwrap_or_default()
                    );
                }
                if let Ok(mut g) = shared.recent.lock() {
                    g.push_back((Instant::now(), call.duration_s, t0.elapsed().as_secs_f64()));
                    while g
                        .front()
                        .is_some_and(|(at, _, _)| at.elapsed() > Duration::from_secs(3600))
                    {
                        g.pop_front();
                    }
                }
                shared.analysed.fetch_add(1, Ordering::Relaxed);
                if keep.all || (keep.marked && meta.marked) {
                    spool.done_keeping(meta.seq, &keep.dir, &call.id.to_hex(), keep.max_bytes);
                } else {
                    spool.done(meta.seq);
                }
                backoff = Duration::from_secs(1);
            }
            Err(e @ PipelineError::Store { .. }) => {
                // The disk is full or the store is unwell: keep the audio queued and retry.
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "call {}: {e}; kept in the spool, retrying in {} s",
                    meta.seq,
                    backoff.as_secs()
                );
                if let Ok(mut g) = shared.last_error.lock() {
                    *g = Some(e.to_string());
                }
                spool.release();
                let until = Instant::now() + backoff;
                while Instant::now() < until && !shared.stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(Duration::from_secs(300));
            }
            Err(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "call {}: {e}; its audio is kept in {}",
                    meta.seq,
                    spool.dir().join("failed").display()
                );
                if let Ok(mut g) = shared.last_error.lock() {
                    *g = Some(e.to_string());
                }
                spool.failed(meta.seq);
            }
        }
    }
    spool.release();
}

#[cfg(test)]
mod tests;
