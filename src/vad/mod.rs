//! Voice-activity segmentation: cuts one channel of 16 kHz audio into utterances.
//!
//! Pure and IO-free: frames go in through [`Segmenter::push`], finished utterances come
//! out. The decision is energy-based, against a noise floor estimated as the minimum
//! frame energy of the last few seconds (speech always has pauses; line noise does not
//! rise 12 dB above itself), with hysteresis (a higher threshold to start than to go on),
//! a hangover of `end_silence_ms`, padding on both sides, a minimum speech length, and a
//! maximum utterance length (the recogniser's limit) at which long speech is split at its
//! quietest frame, so no utterance is longer than `max_samples` and no sample is lost.
//!
//! Memory is bounded: while silent only the padding is kept; while speaking, at most
//! `max_samples` plus one frame.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The segmenter works on 16 kHz audio.
pub const SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum VadError {
    #[error("vad.{field} = {value}: {why}")]
    Invalid {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

/// Settings of the segmenter. Times in milliseconds, levels in dB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VadConfig {
    pub frame_ms: u32,
    pub pad_ms: u32,
    pub min_speech_ms: u32,
    pub end_silence_ms: u32,
    pub max_samples: usize,
    pub start_db: f32,
    pub continue_db: f32,
    pub min_level_dbfs: f32,
    pub noise_window_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            frame_ms: 20,
            pad_ms: 200,
            min_speech_ms: 250,
            end_silence_ms: 500,
            max_samples: 246_000,
            start_db: 12.0,
            continue_db: 4.0,
            min_level_dbfs: -60.0,
            noise_window_ms: 3_000,
        }
    }
}

/// Documentation of each field, for `sangdam config --print-defaults`.
pub const FIELD_DOCS: &[(&str, &str)] = &[
    ("vad.frame_ms", "Analysis frame in ms (10-50)."),
    ("vad.pad_ms", "Audio kept before and after the detected speech, in ms."),
    ("vad.min_speech_ms", "Speech shorter than this (a click, a cough) is dropped, in ms."),
    ("vad.end_silence_ms", "Silence that ends an utterance, in ms."),
    ("vad.max_samples", "Longest utterance in 16 kHz samples (246000 = 15.4 s, the model's limit); longer speech is split at its quietest point."),
    ("vad.start_db", "Speech starts when a frame is this many dB above the noise floor."),
    ("vad.continue_db", "Speech goes on while frames stay this many dB above the noise floor."),
    ("vad.min_level_dbfs", "Frames quieter than this (dB full scale) are never speech."),
    ("vad.noise_window_ms", "The noise floor is the quietest frame of this last stretch, in ms."),
];

/// One utterance: its samples and where it starts in the channel's 16 kHz stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub start: u64,
    pub samples: Vec<f32>,
}

impl Utterance {
    pub fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }

    pub fn start_secs(&self) -> f64 {
        self.start as f64 / SAMPLE_RATE as f64
    }

    pub fn end_secs(&self) -> f64 {
        self.end() as f64 / SAMPLE_RATE as f64
    }
}

fn ms(ms: u32) -> usize {
    (ms as usize * SAMPLE_RATE as usize) / 1000
}

/// The segmenter of one channel.
#[derive(Debug)]
pub struct Segmenter {
    cfg: VadConfig,
    frame: usize,
    pad: usize,
    /// Recent frame energies (dB) for the noise floor.
    history: VecDeque<f32>,
    history_len: usize,
    /// Audio before the current utterance (at most `pad` samples).
    preroll: VecDeque<f32>,
    /// Samples pushed so far.
    pos: u64,
    active: Option<Active>,
    /// Utterances finished while another was being emitted (a split followed by an end).
    ready: VecDeque<Utterance>,
}

#[derive(Debug)]
struct Active {
    start: u64,
    samples: Vec<f32>,
    /// Energy of each whole frame in `samples`, with the offset of the frame.
    energies: Vec<(usize, f32)>,
    /// Offset (in `samples`) just past the last speech frame.
    speech_end: usize,
    /// Offset of the first speech frame.
    speech_start: usize,
    silence_run: usize,
}

impl Segmenter {
    pub fn new(cfg: VadConfig) -> Result<Self, VadError> {
        let invalid = |field, value: String, why| VadError::Invalid { field, value, why };
        if !(10..=50).contains(&cfg.frame_ms) {
            return Err(invalid(
                "frame_ms",
                cfg.frame_ms.to_string(),
                "must be 10 to 50",
            ));
        }
        if cfg.end_silence_ms < cfg.frame_ms {
            return Err(invalid(
                "end_silence_ms",
                cfg.end_silence_ms.to_string(),
                "must be at least one frame",
            ));
        }
        if cfg.max_samples < ms(cfg.min_speech_ms) + 2 * ms(cfg.pad_ms) + 2 * ms(cfg.frame_ms) {
            return Err(invalid(
                "max_samples",
                cfg.max_samples.to_string(),
                "must exceed min_speech_ms plus twice pad_ms",
            ));
        }
        if !(cfg.continue_db >= 0.0 && cfg.start_db >= cfg.continue_db) {
            return Err(invalid(
                "start_db",
                format!("{} (continue_db {})", cfg.start_db, cfg.continue_db),
                "needs start_db >= continue_db >= 0",
            ));
        }
        if cfg.noise_window_ms < 10 * cfg.frame_ms {
            return Err(invalid(
                "noise_window_ms",
                cfg.noise_window_ms.to_string(),
                "must span at least 10 frames",
            ));
        }
        let frame = ms(cfg.frame_ms);
        Ok(Segmenter {
            frame,
            pad: ms(cfg.pad_ms),
            history_len: (cfg.noise_window_ms / cfg.frame_ms) as usize,
            history: VecDeque::new(),
            preroll: VecDeque::new(),
            pos: 0,
            active: None,
            ready: VecDeque::new(),
            cfg,
        })
    }

    /// Samples per [`push`](Self::push).
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    /// Feeds one frame (`frame_len()` samples; the last frame of a stream may be
    /// shorter) and returns an utterance if one was completed.
    pub fn push(&mut self, frame: &[f32]) -> Option<Utterance> {
        let frame = &frame[..frame.len().min(self.frame)];
        if frame.is_empty() {
            return self.ready.pop_front();
        }
        let e = energy_db(frame);
        let noise = self.history.iter().copied().fold(f32::INFINITY, f32::min);
        let noise = if noise.is_finite() {
            noise
        } else {
            e.min(self.cfg.min_level_dbfs)
        };
        let starts = e > self.cfg.min_level_dbfs && e > noise + self.cfg.start_db;
        let goes_on = e > self.cfg.min_level_dbfs && e > noise + self.cfg.continue_db;
        // Every frame feeds the floor: a steady tone or hum becomes its own floor and is
        // not speech, while speech keeps dipping between syllables and stays above it.
        self.history.push_back(e);
        if self.history.len() > self.history_len {
            self.history.pop_front();
        }
        let frame_pos = self.pos;
        self.pos += frame.len() as u64;

        match self.active.as_mut() {
            None => {
                if starts {
                    let mut samples = Vec::with_capacity(self.cfg.max_samples + self.frame);
                    samples.extend(self.preroll.drain(..));
                    let off = samples.len();
                    samples.extend_from_slice(frame);
                    self.active = Some(Active {
                        start: frame_pos - off as u64,
                        energies: vec![(off, e)],
                        speech_start: off,
                        speech_end: off + frame.len(),
                        silence_run: 0,
                        samples,
                    });
                } else {
                    self.preroll.extend(frame.iter().copied());
                    while self.preroll.len() > self.pad {
                        self.preroll.pop_front();
                    }
                }
            }
            Some(a) => {
                let off = a.samples.len();
                a.samples.extend_from_slice(frame);
                a.energies.push((off, e));
                if goes_on {
                    a.silence_run = 0;
                    a.speech_end = off + frame.len();
                } else {
                    a.silence_run += frame.len();
                }
                if a.silence_run >= ms(self.cfg.end_silence_ms) {
                    self.close();
                } else if a.samples.len() >= self.cfg.max_samples {
                    self.split();
                }
            }
        }
        self.ready.pop_front()
    }

    /// Ends the stream: returns what is left, one utterance per call, then None.
    pub fn finish(&mut self) -> Option<Utterance> {
        if self.active.is_some() {
            self.close();
        }
        self.ready.pop_front()
    }

    /// Ends the active utterance at its last speech frame plus padding.
    fn close(&mut self) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        let cut = (a.speech_end + self.pad).min(a.samples.len());
        // What follows the cut is silence: it becomes the next utterance's preroll.
        let tail_from = cut.max(a.samples.len().saturating_sub(self.pad));
        self.preroll.clear();
        self.preroll.extend(a.samples[tail_from..].iter().copied());
        a.samples.truncate(cut);
        if a.speech_end.saturating_sub(a.speech_start) >= ms(self.cfg.min_speech_ms) {
            self.ready.push_back(Utterance {
                start: a.start,
                samples: a.samples,
            });
        }
    }

    /// The active utterance reached `max_samples`: emit it up to its quietest frame in
    /// the second half, and go on with the rest as a new utterance.
    fn split(&mut self) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let half = a.samples.len() / 2;
        let (cut, _) = a
            .energies
            .iter()
            .filter(|(off, _)| *off >= half && *off > a.speech_start)
            .fold(
                (a.samples.len() - self.frame, f32::INFINITY),
                |best, &(off, e)| {
                    if e < best.1 {
                        (off, e)
                    } else {
                        best
                    }
                },
            );
        let rest: Vec<f32> = a.samples[cut..].to_vec();
        let mut first = std::mem::take(&mut a.samples);
        first.truncate(cut);
        let start = a.start;
        a.start += cut as u64;
        a.samples = Vec::with_capacity(self.cfg.max_samples + self.frame);
        a.samples.extend_from_slice(&rest);
        a.energies = a
            .energies
            .iter()
            .filter(|(off, _)| *off >= cut)
            .map(|&(off, e)| (off - cut, e))
            .collect();
        a.speech_start = 0;
        a.speech_end = a
            .speech_end
            .saturating_sub(cut)
            .max(a.samples.len().min(self.frame));
        self.ready.push_back(Utterance {
            start,
            samples: first,
        });
    }
}

/// Mean power of a frame in dB full scale (a full-scale sine is about -3 dB).
pub fn energy_db(frame: &[f32]) -> f32 {
    let p = frame.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / frame.len().max(1) as f64;
    (10.0 * (p + 1e-12).log10()) as f32
}

/// Segments a whole in-memory channel.
pub fn segment_all(cfg: VadConfig, samples: &[f32]) -> Result<Vec<Utterance>, VadError> {
    let mut seg = Segmenter::new(cfg)?;
    let mut out = Vec::new();
    for frame in samples.chunks(seg.frame_len()) {
        if let Some(u) = seg.push(frame) {
            out.push(u);
        }
    }
    while let Some(u) = seg.finish() {
        out.push(u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise source (xorshift), so tests need no crate.
    fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
            })
            .collect()
    }

    fn tone(n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 300.0 / 16000.0).sin() * amp)
            .collect()
    }

    /// A tone switched on and off four times a second, like syllables.
    fn syllables(n: usize, amp: f32) -> Vec<f32> {
        tone(n, amp)
            .into_iter()
            .enumerate()
            .map(|(i, v)| if (i / 2_000) % 2 == 0 { v } else { v * 0.02 })
            .collect()
    }

    #[test]
    fn silence_and_steady_noise_give_nothing() {
        assert!(segment_all(VadConfig::default(), &vec![0.0; 48_000])
            .unwrap()
            .is_empty());
        assert!(segment_all(VadConfig::default(), &noise(160_000, 0.05, 3))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn click_is_too_short() {
        let mut x = noise(32_000, 0.001, 5);
        for (i, v) in tone(1_600, 0.5).into_iter().enumerate() {
            x[16_000 + i] += v;
        }
        assert!(segment_all(VadConfig::default(), &x).unwrap().is_empty());
    }

    #[test]
    fn speech_at_zero_and_to_the_end() {
        let x = syllables(16_000, 0.3);
        let u = segment_all(VadConfig::default(), &x).unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].start, 0);
        assert_eq!(u[0].end(), 16_000);
    }

    #[test]
    fn steady_tone_is_not_speech_after_the_noise_window() {
        // A dial tone or hum: it may open one utterance at the very start of a stream
        // (no floor yet), but then becomes the floor and never opens another.
        let u = segment_all(VadConfig::default(), &tone(16_000 * 20, 0.3)).unwrap();
        assert!(u.len() <= 1, "{} utterances", u.len());
        assert!(u.iter().all(|u| u.end() < 16_000 * 5));
    }

    #[test]
    fn config_validation() {
        let bad = VadConfig {
            frame_ms: 5,
            ..VadConfig::default()
        };
        assert!(matches!(
            Segmenter::new(bad),
            Err(VadError::Invalid {
                field: "frame_ms",
                ..
            })
        ));
        let bad = VadConfig {
            max_samples: 1_000,
            ..VadConfig::default()
        };
        assert!(matches!(
            Segmenter::new(bad),
            Err(VadError::Invalid {
                field: "max_samples",
                ..
            })
        ));
        let bad = VadConfig {
            start_db: 3.0,
            continue_db: 4.0,
            ..VadConfig::default()
        };
        assert!(Segmenter::new(bad).is_err());
    }
}
