//! Frame level measurement: a DC and hum blocking filter, and the adaptive noise floor.

use std::collections::VecDeque;

/// Mean power of `frame` in dB full scale (a full-scale square wave is 0 dB, a full-scale
/// sine about -3 dB; digital silence gives -120 dB rather than minus infinity).
pub fn energy_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return SILENCE_DB;
    }
    let sum: f64 = frame.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    power_db(sum / frame.len() as f64)
}

/// The level reported for digital silence.
pub(crate) const SILENCE_DB: f32 = -120.0;

fn power_db(p: f64) -> f32 {
    if p.is_finite() {
        (10.0 * (p + 1e-12).log10()) as f32
    } else {
        // A NaN or infinite sample is a decoder fault, not speech; treat it as silence so
        // one bad block cannot open an utterance or poison the floor.
        SILENCE_DB
    }
}

/// First-order high-pass at about 200 Hz, applied only to the level measurement (the
/// utterance keeps the original samples).
///
/// Why: recordings from analogue phone taps often carry a DC offset or 50/60 Hz mains hum
/// that adds a constant to every frame's power and so squeezes the gap between speech and
/// floor. Telephone speech has nothing below 300 Hz, so removing that band costs nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct HumFilter {
    prev_in: f32,
    prev_out: f32,
}

/// Pole of the filter: exp(-2π · 200 Hz / 16 kHz).
const HUM_POLE: f32 = 0.924_465;
/// Gain that makes the filter's response 1 at the top of the band (Nyquist).
const HUM_GAIN: f32 = (1.0 + HUM_POLE) / 2.0;

impl HumFilter {
    /// Power of `frame` after the filter, in dBFS. The filter state carries over to the
    /// next frame, so frame edges leave no step.
    pub(crate) fn frame_db(&mut self, frame: &[f32]) -> f32 {
        if frame.is_empty() {
            return SILENCE_DB;
        }
        let mut sum = 0.0f64;
        for &x in frame {
            let x = if x.is_finite() { x } else { 0.0 };
            let y = HUM_POLE * self.prev_out + HUM_GAIN * (x - self.prev_in);
            self.prev_in = x;
            self.prev_out = y;
            sum += f64::from(y) * f64::from(y);
        }
        power_db(sum / frame.len() as f64)
    }
}

/// The quietest frame level of the last `window` frames (minimum statistics), never
/// below `lowest`.
///
/// Why a minimum: speech always has short pauses between words and syllables, so over a
/// few seconds the quietest frame is background noise even while someone talks, and the
/// floor follows a louder or quieter line within one window. Why a lower bound: during
/// digital silence (hold, mute, codec start-up) the minimum would fall to -120 dB, and the
/// line noise that returns afterwards would look like speech for a whole window.
///
/// A monotonic queue keeps the minimum in O(1) per frame and at most `window` entries.
#[derive(Debug, Clone)]
pub(crate) struct NoiseFloor {
    window: u64,
    lowest: f32,
    /// (frame number, level), levels increasing from front to back.
    queue: VecDeque<(u64, f32)>,
    next: u64,
}

impl NoiseFloor {
    pub(crate) fn new(window: usize, lowest: f32) -> Self {
        NoiseFloor {
            window: window.max(1) as u64,
            lowest,
            queue: VecDeque::with_capacity(window.max(1)),
            next: 0,
        }
    }

    /// The floor over the frames seen so far (`lowest` before the first frame).
    pub(crate) fn get(&self) -> f32 {
        self.queue
            .front()
            .map_or(self.lowest, |&(_, db)| db.max(self.lowest))
    }

    pub(crate) fn push(&mut self, db: f32) {
        while self.queue.back().is_some_and(|&(_, b)| b >= db) {
            self.queue.pop_back();
        }
        self.queue.push_back((self.next, db));
        self.next += 1;
        while self
            .queue
            .front()
            .is_some_and(|&(i, _)| i + self.window < self.next)
        {
            self.queue.pop_front();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_of_known_signals() {
        assert_eq!(energy_db(&[0.0; 320]), -120.0);
        assert!((energy_db(&[0.5; 320]) - (-6.0206)).abs() < 1e-3);
        assert!((energy_db(&[1.0, -1.0]) - 0.0).abs() < 1e-6);
        assert_eq!(energy_db(&[f32::NAN; 4]), SILENCE_DB);
        assert_eq!(energy_db(&[]), SILENCE_DB);
    }

    #[test]
    fn floor_is_the_sliding_minimum_with_a_lower_bound() {
        let mut f = NoiseFloor::new(3, -60.0);
        assert_eq!(f.get(), -60.0);
        let mut seen = Vec::new();
        for db in [
            -30.0, -40.0, -20.0, -25.0, -35.0, -10.0, -10.0, -10.0, -90.0,
        ] {
            f.push(db);
            seen.push(f.get());
            assert!(f.len() <= 3);
        }
        assert_eq!(
            seen,
            [-30.0, -40.0, -40.0, -40.0, -35.0, -35.0, -35.0, -10.0, -60.0]
        );
    }

    #[test]
    fn hum_filter_removes_dc_and_mains_hum_but_keeps_speech_band() {
        let tone = |hz: f32, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| 0.5 * (i as f32 * std::f32::consts::TAU * hz / 16_000.0).sin())
                .collect()
        };
        let settle = |x: &[f32]| {
            let mut h = HumFilter::default();
            for f in x.chunks(320).take(x.len() / 320 - 1) {
                h.frame_db(f);
            }
            h.frame_db(&x[x.len() - 320..])
        };
        // DC: gone.
        assert!(settle(&[0.5; 16_000]) < -60.0);
        // 50 Hz hum: at least 10 dB down from its -9 dB.
        assert!(settle(&tone(50.0, 16_000)) < -19.0);
        // 1 kHz (speech): within 0.5 dB of its -9 dB.
        assert!((settle(&tone(1_000.0, 16_000)) - energy_db(&tone(1_000.0, 320))).abs() < 0.5);
    }
}
