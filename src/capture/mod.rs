//! Live capture: an [`AudioSource`] (ALSA, cpal, a WAV file replayed in real time, or a
//! signal generator) read by a capture thread into a fixed-capacity single-producer
//! single-consumer ring.
//!
//! # The real-time path
//!
//! [`capture_loop`] is the only code that runs once per period on the capture thread. It
//! reads one period into a buffer allocated before the loop, copies the samples into the
//! [`heapless::spsc`] ring and bumps atomic counters. It never allocates, locks, logs or
//! blocks on anything but the device (tests/noalloc.rs proves the first with a counting
//! allocator). When the ring is full (the consumer fell behind) the period's remaining
//! samples are dropped and counted as an overrun; ALSA's xruns are recovered by the
//! source and counted. Errors that stop the device (unplugged, missing, busy) leave the
//! loop, which the [`CaptureThread`] restarts with backoff; those paths may allocate and
//! log, since they happen once per failure, not per period.
//!
//! The consumer ([`crate::live`]) pops interleaved `i16` frames, follows
//! [`CaptureShared::generation`] to learn that the stream restarted (a gap in the audio),
//! and does everything that may allocate.

mod generator;
mod wav_source;

#[cfg(feature = "alsa")]
pub mod alsa;
#[cfg(feature = "cpal")]
pub mod cpal;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use heapless::spsc::{Consumer, Producer, Queue};
use serde::{Deserialize, Serialize};

pub use generator::{GeneratorSource, Segment, SegmentKind};
pub use wav_source::WavSource;

/// Samples (not frames) the ring holds: 4 s of a two-channel 8 kHz line, 2 s at 16 kHz.
pub const RING_SAMPLES: usize = 65_536;
/// The largest period a source may deliver, in samples (all channels).
pub const MAX_PERIOD_SAMPLES: usize = 8_192;

/// The ring between the capture thread and the consumer. Allocate it once (boxed: it is
/// 128 KiB) and split it.
pub type Ring = Queue<i16, RING_SAMPLES>;
pub type RingProducer<'a> = Producer<'a, i16>;
pub type RingConsumer<'a> = Consumer<'a, i16>;

/// A new, empty ring on the heap.
pub fn new_ring() -> Box<Ring> {
    Box::new(Queue::new())
}

/// What a source delivers once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamFormat {
    pub rate: u32,
    pub channels: u16,
    /// Frames per read.
    pub period_frames: usize,
}

impl StreamFormat {
    pub fn period_samples(&self) -> usize {
        self.period_frames * self.channels as usize
    }
}

/// Why a source stopped delivering. Each message says what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("audio device {0} not found: check that the USB telephone adapter is plugged in and that the name is right (arecord -L lists devices)")]
    Missing(String),
    #[error("audio device {0} is busy: another program holds it (fuser -v /dev/snd/*)")]
    Busy(String),
    #[error("audio device {0} was unplugged or stopped working: {1}")]
    Unplugged(String, String),
    #[error("audio device {device} cannot record {what}: change [live] in the config to what the device supports ({hint})")]
    Format {
        device: String,
        what: String,
        hint: String,
    },
    #[error("audio source {0}: {1}")]
    Other(String, String),
    /// A buffer overrun/underrun the source recovered from: the period is lost, the
    /// stream goes on. Carries nothing so that reporting it does not allocate.
    #[error("an xrun (the device's buffer overflowed); recovered")]
    Xrun,
}

impl SourceError {
    /// Whether retrying later can help (the device may come back).
    pub fn is_transient(&self) -> bool {
        !matches!(self, SourceError::Format { .. })
    }
}

/// A live audio input. Implementations block in [`AudioSource::read`] until a period is
/// there (or pace themselves to real time) and must not allocate there.
pub trait AudioSource: Send {
    /// A short name for logs and status ("alsa plughw:1,0", "wav calls/a.wav").
    fn describe(&self) -> String;
    /// Opens the device (again, after an error) and says what it delivers.
    fn start(&mut self) -> Result<StreamFormat, SourceError>;
    /// Fills `buf` (at least one period long) with interleaved frames and returns the
    /// number of samples written, a whole number of frames. `Ok(0)` is the end of a
    /// finite source (a WAV file); a device never ends.
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, SourceError>;
    /// Releases the device.
    fn stop(&mut self);
}

/// State the capture thread publishes, all atomics: read by the consumer, the daemon's
/// status and the watchdog without locks.
#[derive(Debug, Default)]
pub struct CaptureShared {
    /// Set by the daemon to end capture.
    pub stop: AtomicBool,
    /// Incremented each time the stream (re)starts: the consumer treats a change as a gap.
    pub generation: AtomicU32,
    /// Whether the device is delivering now.
    pub running: AtomicBool,
    /// The stream has ended (a finite source reached its end).
    pub finished: AtomicBool,
    pub periods: AtomicU64,
    pub frames: AtomicU64,
    /// Periods the ring could not take whole (the consumer fell behind).
    pub overruns: AtomicU64,
    /// Samples dropped by overruns.
    pub dropped_samples: AtomicU64,
    /// Xruns reported by the device and recovered.
    pub xruns: AtomicU64,
    /// Times the device failed and was reopened (or tried).
    pub device_errors: AtomicU64,
    /// The current format, packed: rate (u32) << 16 | channels; 0 until started.
    pub format: AtomicU64,
    /// Bumped on every loop turn, also while waiting to retry: the watchdog's heartbeat.
    pub heartbeat: AtomicU64,
}

impl CaptureShared {
    pub fn format(&self) -> Option<(u32, u16)> {
        let f = self.format.load(Ordering::Acquire);
        (f != 0).then_some(((f >> 16) as u32, (f & 0xffff) as u16))
    }

    /// Publishes the stream format (done by [`run_source`] on each start).
    pub fn set_format(&self, rate: u32, channels: u16) {
        self.format.store(
            (u64::from(rate) << 16) | u64::from(channels),
            Ordering::Release,
        );
    }
}

/// How one run of [`capture_loop`] ended.
#[derive(Debug)]
pub enum LoopEnd {
    /// `stop` was set.
    Stopped,
    /// The source has no more audio.
    EndOfStream,
    /// The device failed; the caller may restart it.
    Failed(SourceError),
}

/// The real-time loop: reads periods from a started source into the ring until stopped,
/// at the end of the stream, or on a device error. `period` must hold one period; it is
/// allocated by the caller, once. Nothing in here allocates.
pub fn capture_loop(
    source: &mut dyn AudioSource,
    ring: &mut RingProducer<'_>,
    shared: &CaptureShared,
    period: &mut [i16],
) -> LoopEnd {
    let channels = shared.format().map_or(1, |(_, c)| c.max(1)) as u64;
    loop {
        shared.heartbeat.fetch_add(1, Ordering::Relaxed);
        if shared.stop.load(Ordering::Acquire) {
            return LoopEnd::Stopped;
        }
        let n = match source.read(period) {
            Ok(0) => return LoopEnd::EndOfStream,
            Ok(n) => n.min(period.len()),
            Err(SourceError::Xrun) => {
                shared.xruns.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e) => return LoopEnd::Failed(e),
        };
        // Only whole frames go in, so the consumer never sees the channels swap.
        let free = ring.capacity().saturating_sub(ring.len());
        let fit = if free >= n {
            n
        } else {
            free / channels as usize * channels as usize
        };
        let mut written = 0;
        for &s in &period[..fit] {
            if ring.enqueue(s).is_err() {
                break;
            }
            written += 1;
        }
        if written < n {
            shared.overruns.fetch_add(1, Ordering::Relaxed);
            shared
                .dropped_samples
                .fetch_add((n - written) as u64, Ordering::Relaxed);
        }
        shared.periods.fetch_add(1, Ordering::Relaxed);
        shared
            .frames
            .fetch_add(n as u64 / channels, Ordering::Relaxed);
    }
}

/// Restarts after device errors: 0.5 s, doubling, at most this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs a source on the current thread until `shared.stop` is set or a finite source
/// ends: starts it, runs [`capture_loop`], and after a device error reopens it with
/// exponential backoff. `on_error` sees each failure (for the log and the LED).
pub fn run_source(
    source: &mut dyn AudioSource,
    ring: &mut RingProducer<'_>,
    shared: &CaptureShared,
    on_error: &mut dyn FnMut(&SourceError),
) {
    let mut period = vec![0i16; MAX_PERIOD_SAMPLES];
    let mut backoff = Duration::from_millis(500);
    while !shared.stop.load(Ordering::Acquire) {
        shared.heartbeat.fetch_add(1, Ordering::Relaxed);
        match source.start() {
            Ok(fmt) => {
                if fmt.period_samples() > period.len() || fmt.channels == 0 {
                    let e = SourceError::Format {
                        device: source.describe(),
                        what: format!(
                            "{} frames per period at {} channels",
                            fmt.period_frames, fmt.channels
                        ),
                        hint: format!("at most {} samples per period", MAX_PERIOD_SAMPLES),
                    };
                    on_error(&e);
                    source.stop();
                    shared.finished.store(true, Ordering::Release);
                    return;
                }
                shared.set_format(fmt.rate, fmt.channels);
                shared.generation.fetch_add(1, Ordering::AcqRel);
                shared.running.store(true, Ordering::Release);
                backoff = Duration::from_millis(500);
                let end = capture_loop(source, ring, shared, &mut period[..fmt.period_samples()]);
                shared.running.store(false, Ordering::Release);
                source.stop();
                match end {
                    LoopEnd::Stopped => return,
                    LoopEnd::EndOfStream => {
                        shared.finished.store(true, Ordering::Release);
                        return;
                    }
                    LoopEnd::Failed(e) => {
                        shared.device_errors.fetch_add(1, Ordering::Relaxed);
                        on_error(&e);
                    }
                }
            }
            Err(e) => {
                shared.device_errors.fetch_add(1, Ordering::Relaxed);
                on_error(&e);
                if !e.is_transient() {
                    shared.finished.store(true, Ordering::Release);
                    return;
                }
            }
        }
        // Wait, in short steps so that a stop request is seen at once.
        let until = std::time::Instant::now() + backoff;
        while std::time::Instant::now() < until && !shared.stop.load(Ordering::Acquire) {
            shared.heartbeat.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Paces a finite source to real time: sleeps until `frames` frames at `rate` have been
/// due since `start`. `speed` 0 means no pacing (as fast as the consumer takes it).
pub(crate) fn pace(start: std::time::Instant, frames: u64, rate: u32, speed: f64) {
    if speed <= 0.0 {
        return;
    }
    let due = Duration::from_secs_f64(frames as f64 / rate as f64 / speed);
    let elapsed = start.elapsed();
    if due > elapsed {
        std::thread::sleep(due - elapsed);
    }
}

/// Which source the daemon reads, from `[live]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Alsa,
    Cpal,
    Wav,
    Generator,
}

#[cfg(test)]
mod tests;
