//! Voice-activity segmentation: cuts one channel of 16 kHz audio into utterances.
//!
//! Pure and IO-free: frames go in through [`Segmenter::push`], finished utterances come
//! out; [`segment_all`] does the same for audio already in memory.
//!
//! # How a frame is judged
//!
//! Each frame's power (dBFS, after a filter that removes DC and mains hum) is compared
//! with an adaptive noise floor: the quietest frame of the last `noise_window_ms`, never
//! below `floor_min_dbfs`. Comparing with the floor rather than a fixed level is what lets
//! one setting work for a quiet headset and a loud, hissy line. Hysteresis: speech starts
//! at `start_db` above the floor but goes on down to `continue_db` above it, so the soft
//! end of a word does not cut the utterance, and an utterance ends only after
//! `end_silence_ms` below that (the hangover).
//!
//! # What an utterance holds
//!
//! The detected speech plus `pad_ms` of audio on each side (less where the stream begins
//! or where the previous utterance ended closer than that: utterances never overlap).
//! Speech shorter than `min_speech_ms` (a click, a cough) is dropped. No utterance is
//! longer than `max_samples`, the recogniser's limit: longer speech is cut at its quietest
//! stretch in the second half of the window, the part before the cut is emitted, and the
//! next part starts exactly at the cut, so no sample is lost between parts.
//!
//! # Cost
//!
//! A few operations per sample, fit for a Raspberry Pi per 20 ms frame. Memory is bounded:
//! at most `max_samples` of audio while speaking; while silent only `pad_ms` of audio and
//! the floor's window of frame levels, however long the stream.

pub mod config;
mod level;
pub mod talk;

use std::collections::VecDeque;

pub use config::{VadConfig, FIELD_DOCS};
pub use level::energy_db;
use level::{HumFilter, NoiseFloor};

/// The segmenter works on 16 kHz mono audio (the recogniser's rate).
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples per millisecond at [`SAMPLE_RATE`].
const PER_MS: usize = (SAMPLE_RATE / 1000) as usize;

/// The longest `max_samples` accepted: ten minutes. Far above any recogniser's input, it
/// only stops a typo from asking for gigabytes.
const MAX_MAX_SAMPLES: usize = 600 * SAMPLE_RATE as usize;

/// The longest accepted duration setting, in ms.
const MAX_MS: u32 = 60_000;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum VadError {
    /// A setting in the `[vad]` section is out of range.
    #[error("[vad] {field} = {value} cannot be used: {fix}")]
    Invalid {
        field: &'static str,
        value: String,
        fix: String,
    },
}

/// One utterance: its samples and where it starts in the channel's 16 kHz stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Index of the first sample in the channel's stream (sample 0 is the first pushed).
    pub start: u64,
    /// The audio, unchanged from the input.
    pub samples: Vec<f32>,
}

impl Utterance {
    /// Index just past the last sample.
    pub fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }

    pub fn start_secs(&self) -> f64 {
        self.start as f64 / f64::from(SAMPLE_RATE)
    }

    pub fn end_secs(&self) -> f64 {
        self.end() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// Milliseconds to samples. Callers pass values checked against [`MAX_MS`], so this
/// cannot overflow even where `usize` has 32 bits.
fn ms(ms: u32) -> usize {
    ms as usize * PER_MS
}

/// The segmenter of one channel. Feed it with [`push`](Self::push), end the stream with
/// [`finish`](Self::finish).
#[derive(Debug)]
pub struct Segmenter {
    cfg: VadConfig,
    frame: usize,
    pad: usize,
    min_speech: usize,
    end_silence: usize,
    hum: HumFilter,
    floor: NoiseFloor,
    /// Audio just before the next utterance (at most `pad` samples).
    preroll: VecDeque<f32>,
    /// Samples pushed so far.
    pos: u64,
    active: Option<Active>,
    /// Utterances ready to hand out: a split and an end can fall in one frame, and a
    /// push of more than one frame can finish several.
    ready: VecDeque<Utterance>,
}

/// The utterance being collected.
#[derive(Debug)]
struct Active {
    start: u64,
    samples: Vec<f32>,
    /// Every frame pushed since the utterance opened (the preroll before it is not
    /// framed), for the split search.
    frames: Vec<Frame>,
    /// First and one-past-last sample (offsets in `samples`) of the speech frames, if any.
    speech: Option<(usize, usize)>,
    /// Samples since the last speech frame.
    silence_run: usize,
    /// This part continues speech split at `max_samples`: keep it even if its own speech
    /// is shorter than `min_speech_ms`, since it is the rest of a longer utterance.
    continued: bool,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Offset in `Active::samples`.
    off: usize,
    len: usize,
    db: f32,
    speech: bool,
}

impl Segmenter {
    /// A segmenter with `cfg`, checked: every error names the setting and says what to
    /// change.
    pub fn new(cfg: VadConfig) -> Result<Self, VadError> {
        validate(&cfg)?;
        let frame = ms(cfg.frame_ms);
        let window = (cfg.noise_window_ms / cfg.frame_ms) as usize;
        Ok(Segmenter {
            frame,
            pad: ms(cfg.pad_ms),
            min_speech: ms(cfg.min_speech_ms),
            end_silence: ms(cfg.end_silence_ms),
            hum: HumFilter::default(),
            floor: NoiseFloor::new(window, cfg.floor_min_dbfs),
            preroll: VecDeque::with_capacity(ms(cfg.pad_ms) + frame),
            pos: 0,
            active: None,
            ready: VecDeque::new(),
            cfg,
        })
    }

    /// Samples per [`push`](Self::push): `frame_ms` at 16 kHz (320 for 20 ms).
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    /// The settings this segmenter was built with.
    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    /// Samples pushed so far: the stream position of the next sample.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds the next `frame_len()` samples (the last frame of a stream may be shorter)
    /// and returns an utterance if one was completed.
    ///
    /// A longer slice is taken as several frames rather than truncated, so no audio is
    /// ever dropped; if that completes more than one utterance, the others come out of
    /// the next `push` or `finish`.
    pub fn push(&mut self, frame: &[f32]) -> Option<Utterance> {
        for f in frame.chunks(self.frame) {
            self.step(f);
        }
        self.ready.pop_front()
    }

    /// Ends the stream: closes speech that runs to the end, and returns the utterances
    /// still held, one per call, then `None`. The segmenter can then take a new stream
    /// whose positions continue from this one.
    pub fn finish(&mut self) -> Option<Utterance> {
        self.close();
        self.ready.pop_front()
    }

    fn step(&mut self, frame: &[f32]) {
        let db = self.hum.frame_db(frame);
        let floor = self.floor.get();
        let starts = db >= floor + self.cfg.start_db;
        let goes_on = db >= floor + self.cfg.continue_db;
        // Every frame feeds the floor, speech included: its pauses are what keep the
        // minimum at the noise, and a steady tone or hum becomes its own floor.
        self.floor.push(db);
        let at = self.pos;
        self.pos += frame.len() as u64;

        let Some(a) = self.active.as_mut() else {
            if starts {
                let mut samples = Vec::with_capacity(self.preroll.len() + 4 * self.frame);
                samples.extend(self.preroll.drain(..));
                let off = samples.len();
                samples.extend_from_slice(frame);
                self.active = Some(Active {
                    start: at - off as u64,
                    frames: vec![Frame {
                        off,
                        len: frame.len(),
                        db,
                        speech: true,
                    }],
                    speech: Some((off, off + frame.len())),
                    silence_run: 0,
                    continued: false,
                    samples,
                });
            } else {
                self.preroll.extend(frame);
                let excess = self.preroll.len().saturating_sub(self.pad);
                self.preroll.drain(..excess);
            }
            return;
        };

        let off = a.samples.len();
        a.samples.extend_from_slice(frame);
        a.frames.push(Frame {
            off,
            len: frame.len(),
            db,
            speech: goes_on,
        });
        if goes_on {
            let first = a.speech.map_or(off, |(s, _)| s);
            a.speech = Some((first, off + frame.len()));
            a.silence_run = 0;
        } else {
            a.silence_run += frame.len();
        }
        if a.silence_run >= self.end_silence {
            self.close();
        } else if a.samples.len() + self.frame > self.cfg.max_samples {
            // One more frame could overflow: split now, so no utterance ever exceeds
            // `max_samples` and the buffer never grows past it.
            self.split();
        }
    }

    /// Ends the active utterance at its last speech frame plus padding; what follows the
    /// cut is silence and becomes the next utterance's preroll.
    fn close(&mut self) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        let len = a.samples.len();
        let (cut, keep) = match a.speech {
            Some((s, e)) => (
                (e + self.pad).min(len),
                a.continued || e - s >= self.min_speech,
            ),
            None => (0, false),
        };
        let tail = cut.max(len.saturating_sub(self.pad));
        self.preroll.clear();
        self.preroll.extend(&a.samples[tail..]);
        if keep {
            a.samples.truncate(cut);
            self.ready.push_back(Utterance {
                start: a.start,
                samples: a.samples,
            });
        }
    }

    /// The active utterance is at `max_samples`: cut it at the quietest stretch of its
    /// second half, emit the part before, and go on with the rest.
    fn split(&mut self) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let len = a.samples.len();
        let cut = quietest_cut(&a.frames, len / 2).unwrap_or(len / 2);

        let mut rest = Vec::with_capacity((len - cut + 4 * self.frame).min(self.cfg.max_samples));
        rest.extend_from_slice(&a.samples[cut..]);
        let mut first = std::mem::replace(&mut a.samples, rest);
        first.truncate(cut);
        let first_start = a.start;
        let first_has_speech = a.speech.is_some_and(|(s, _)| s < cut);

        a.start += cut as u64;
        a.frames.retain(|f| f.off >= cut);
        for f in &mut a.frames {
            f.off -= cut;
        }
        a.speech = speech_span(&a.frames);
        a.continued = first_has_speech;
        if first_has_speech {
            self.ready.push_back(Utterance {
                start: first_start,
                samples: first,
            });
        }
    }
}

/// Offset of the start of the quietest frame at or after `from`, judged by the mean level
/// of it and its two neighbours, so a real pause between words beats a single quiet frame
/// inside one (the closure of a stop consonant).
fn quietest_cut(frames: &[Frame], from: usize) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, f) in frames.iter().enumerate() {
        if f.off < from || f.off == 0 {
            continue;
        }
        let lo = i.saturating_sub(1);
        let hi = (i + 2).min(frames.len());
        let near = &frames[lo..hi];
        let score = near.iter().map(|f| f.db).sum::<f32>() / near.len() as f32;
        // Strictly lower: among equals the earliest wins, leaving the most for the rest.
        if best.is_none_or(|(_, b)| score < b) {
            best = Some((f.off, score));
        }
    }
    best.map(|(off, _)| off)
}

fn speech_span(frames: &[Frame]) -> Option<(usize, usize)> {
    let first = frames.iter().find(|f| f.speech)?;
    let last = frames.iter().rev().find(|f| f.speech)?;
    Some((first.off, last.off + last.len))
}

fn validate(cfg: &VadConfig) -> Result<(), VadError> {
    let invalid = |field: &'static str, value: String, fix: String| {
        Err(VadError::Invalid { field, value, fix })
    };
    if !(10..=50).contains(&cfg.frame_ms) {
        return invalid(
            "frame_ms",
            cfg.frame_ms.to_string(),
            "set it to 10 to 50 ms (20 is usual)".into(),
        );
    }
    for (field, v) in [
        ("pad_ms", cfg.pad_ms),
        ("min_speech_ms", cfg.min_speech_ms),
        ("end_silence_ms", cfg.end_silence_ms),
        ("noise_window_ms", cfg.noise_window_ms),
    ] {
        if v > MAX_MS {
            return invalid(
                field,
                v.to_string(),
                format!("set it to at most {MAX_MS} ms"),
            );
        }
    }
    if cfg.end_silence_ms < cfg.frame_ms {
        return invalid(
            "end_silence_ms",
            cfg.end_silence_ms.to_string(),
            format!(
                "set it to at least one frame, {} ms (500 is usual)",
                cfg.frame_ms
            ),
        );
    }
    if cfg.pad_ms > cfg.end_silence_ms {
        return invalid(
            "pad_ms",
            cfg.pad_ms.to_string(),
            format!(
                "set it to at most end_silence_ms ({}): the padding after speech comes out of the silence that ends it",
                cfg.end_silence_ms
            ),
        );
    }
    if cfg.noise_window_ms < 10 * cfg.frame_ms {
        return invalid(
            "noise_window_ms",
            cfg.noise_window_ms.to_string(),
            format!(
                "set it to at least 10 frames, {} ms (3000 is usual)",
                10 * cfg.frame_ms
            ),
        );
    }
    // Speech that starts with full padding must still leave room for the shortest
    // speech and the trailing padding in the first half of a window, where no split can
    // fall.
    let least = 2 * (ms(cfg.min_speech_ms) + 2 * ms(cfg.pad_ms) + 2 * ms(cfg.frame_ms));
    if cfg.max_samples < least || cfg.max_samples > MAX_MAX_SAMPLES {
        return invalid(
            "max_samples",
            cfg.max_samples.to_string(),
            format!(
                "set it between {least} (twice min_speech_ms + 2 x pad_ms + 2 frames) and {MAX_MAX_SAMPLES} samples; 246000 (15.4 s) is the recogniser's limit"
            ),
        );
    }
    if !(cfg.continue_db.is_finite() && (0.0..=60.0).contains(&cfg.continue_db)) {
        return invalid(
            "continue_db",
            cfg.continue_db.to_string(),
            "set it to 0 to 60 dB (4 is usual)".into(),
        );
    }
    if !(cfg.start_db.is_finite() && cfg.start_db >= cfg.continue_db && cfg.start_db <= 60.0) {
        return invalid(
            "start_db",
            cfg.start_db.to_string(),
            format!(
                "set it between continue_db ({}) and 60 dB (12 is usual)",
                cfg.continue_db
            ),
        );
    }
    if !(cfg.floor_min_dbfs.is_finite() && (-120.0..=0.0).contains(&cfg.floor_min_dbfs)) {
        return invalid(
            "floor_min_dbfs",
            cfg.floor_min_dbfs.to_string(),
            "set it to -120 to 0 dBFS (-65 is usual)".into(),
        );
    }
    Ok(())
}

/// Segments a whole channel held in memory: pushes it frame by frame, then finishes.
pub fn segment_all(cfg: VadConfig, samples: &[f32]) -> Result<Vec<Utterance>, VadError> {
    let mut seg = Segmenter::new(cfg)?;
    let mut out = Vec::new();
    for frame in samples.chunks(seg.frame_len()) {
        out.extend(seg.push(frame));
    }
    while let Some(u) = seg.finish() {
        out.push(u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
