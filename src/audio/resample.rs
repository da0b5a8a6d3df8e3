//! Streaming sample-rate conversion with rubato's synchronous FFT resampler: the ratio is
//! fixed for a whole file, and the FFT method is band-limited and cheap on a small ARM
//! board. Rubato delays its output by half an FFT block; we drop that many frames at the
//! start and flush them out at the end, so output sample `n` is at the time of input
//! sample `n * in_rate / out_rate` and a file of `N` frames gives
//! `round(N * out_rate / in_rate)` frames. Utterance times in the store then match the
//! recording.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler as _, WindowFunction};

use super::AudioError;

/// Wanted input frames per FFT block (rounded up to what the rate pair allows). Larger
/// blocks put the anti-aliasing cutoff closer to Nyquist; the delay they add is removed.
const CHUNK_HINT: usize = 1024;

/// Converts per-channel blocks of any size from `in_rate` to `out_rate`.
pub struct Resampler {
    /// None when the rates are equal: samples pass through untouched, bit for bit.
    fft: Option<Box<Fft<f32>>>,
    channels: usize,
    in_rate: u32,
    out_rate: u32,
    /// Input frames per rubato call; each call then gives `chunk * out / in` frames.
    chunk: usize,
    /// Input waiting for a full chunk, per channel.
    pending: Vec<Vec<f32>>,
    /// Rubato's output for one chunk, per channel.
    scratch: Vec<Vec<f32>>,
    /// Output frames still to drop at the start (rubato's delay).
    to_skip: usize,
    frames_in: u64,
    frames_out: u64,
    finished: bool,
}

impl Resampler {
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self, AudioError> {
        if in_rate == 0 || out_rate == 0 || channels == 0 {
            return Err(AudioError::Misuse(format!(
                "a resampler from {in_rate} Hz to {out_rate} Hz for {channels} channels"
            )));
        }
        let (fft, chunk, to_skip, out_max) = if in_rate == out_rate {
            (None, 0, 0, 0)
        } else {
            // One FFT block per chunk: the smallest block the rate pair allows is
            // in_rate / gcd frames (441 for 44.1 kHz -> 16 kHz), so round up to a multiple.
            let min_block = (in_rate / gcd(in_rate, out_rate)) as usize;
            let chunk = CHUNK_HINT.div_ceil(min_block) * min_block;
            let fft = Fft::<f32>::new_custom(
                in_rate as usize,
                out_rate as usize,
                chunk,
                1,
                channels,
                WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(|e| AudioError::Resample(e.to_string()))?;
            let chunk = fft.input_frames_next();
            let (delay, out_max) = (fft.output_delay(), fft.output_frames_max());
            (Some(Box::new(fft)), chunk, delay, out_max)
        };
        Ok(Resampler {
            fft,
            channels,
            in_rate,
            out_rate,
            chunk,
            pending: vec![Vec::with_capacity(chunk); channels],
            scratch: vec![vec![0.0; out_max]; channels],
            to_skip,
            frames_in: 0,
            frames_out: 0,
            finished: false,
        })
    }

    /// Resamples `input` (one slice per channel, equal lengths, any length) and appends
    /// the result to `output` (one Vec per channel). Output lags input by up to one chunk
    /// (64 ms at 16 kHz); [`finish`](Self::finish) gives the rest.
    pub fn process<S: AsRef<[f32]>>(
        &mut self,
        input: &[S],
        output: &mut [Vec<f32>],
    ) -> Result<(), AudioError> {
        let n = self.check(input, output)?;
        self.frames_in += n as u64;
        if self.fft.is_none() {
            for (o, i) in output.iter_mut().zip(input) {
                o.extend_from_slice(i.as_ref());
            }
            self.frames_out += n as u64;
            return Ok(());
        }
        let mut offset = 0;
        while offset < n {
            let take = (self.chunk - self.pending[0].len()).min(n - offset);
            for (p, i) in self.pending.iter_mut().zip(input) {
                p.extend_from_slice(&i.as_ref()[offset..offset + take]);
            }
            offset += take;
            if self.pending[0].len() == self.chunk {
                self.run_chunk(output, u64::MAX)?;
            }
        }
        Ok(())
    }

    /// Flushes the tail: after this the output holds `round(frames_in * out / in)` frames
    /// in all. Later calls to `process` are refused; `finish` again does nothing.
    pub fn finish(&mut self, output: &mut [Vec<f32>]) -> Result<(), AudioError> {
        if output.len() != self.channels {
            return Err(AudioError::Misuse(format!(
                "the resampler has {} channels, finish got {} output buffers",
                self.channels,
                output.len()
            )));
        }
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.fft.is_none() {
            return Ok(());
        }
        let expected = self.expected_total();
        let per_chunk = (self.chunk as u64 * self.out_rate as u64 / self.in_rate as u64).max(1);
        let still = expected.saturating_sub(self.frames_out) + self.to_skip as u64;
        let rounds = still / per_chunk + 2;
        for _ in 0..rounds {
            if self.frames_out >= expected {
                break;
            }
            // The last partial chunk, then silence, until the delayed tail is out.
            for p in &mut self.pending {
                p.resize(self.chunk, 0.0);
            }
            self.run_chunk(output, expected)?;
        }
        if self.frames_out < expected {
            return Err(AudioError::Resample(format!(
                "the flush gave {} of {expected} frames",
                self.frames_out
            )));
        }
        Ok(())
    }

    /// Total output frames for the input so far, rounded to nearest (ties up).
    fn expected_total(&self) -> u64 {
        let num = self.frames_in as u128 * self.out_rate as u128 * 2 + self.in_rate as u128;
        (num / (2 * self.in_rate as u128)) as u64
    }

    /// Checks the buffers; returns the input length.
    fn check<S: AsRef<[f32]>>(
        &self,
        input: &[S],
        output: &[Vec<f32>],
    ) -> Result<usize, AudioError> {
        let n = input.first().map_or(0, |c| c.as_ref().len());
        if input.len() != self.channels
            || output.len() != self.channels
            || input.iter().any(|c| c.as_ref().len() != n)
        {
            return Err(AudioError::Misuse(format!(
                "the resampler takes {} channels of equal length (got {} in, {} out)",
                self.channels,
                input.len(),
                output.len()
            )));
        }
        if self.finished {
            return Err(AudioError::Misuse("resampler used after finish".into()));
        }
        Ok(n)
    }

    /// Runs rubato on the full `pending` chunk, appends at most up to `limit` total output
    /// frames, and empties `pending`.
    fn run_chunk(&mut self, output: &mut [Vec<f32>], limit: u64) -> Result<(), AudioError> {
        let Some(fft) = self.fft.as_mut() else {
            return Ok(());
        };
        let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
        let input = SequentialSliceOfVecs::new(&self.pending, self.channels, self.chunk)
            .map_err(|e| err(&e))?;
        let out_len = self.scratch[0].len();
        let mut out = SequentialSliceOfVecs::new_mut(&mut self.scratch, self.channels, out_len)
            .map_err(|e| err(&e))?;
        let (_, produced) = fft
            .process_into_buffer(&input, &mut out, None)
            .map_err(|e| err(&e))?;
        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let room = usize::try_from(limit.saturating_sub(self.frames_out)).unwrap_or(usize::MAX);
        let take = (produced - skip).min(room);
        for (o, s) in output.iter_mut().zip(&self.scratch) {
            o.extend_from_slice(&s[skip..skip + take]);
        }
        self.frames_out += take as u64;
        for p in &mut self.pending {
            p.clear();
        }
        Ok(())
    }

    /// True when the rates are equal and samples pass through unchanged.
    pub fn is_passthrough(&self) -> bool {
        self.fft.is_none()
    }

    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    pub fn frames_out(&self) -> u64 {
        self.frames_out
    }

    /// Samples of capacity held in our buffers (rubato's own are fixed at construction):
    /// for the bounded-memory test.
    pub fn buffered_capacity(&self) -> usize {
        self.pending
            .iter()
            .chain(&self.scratch)
            .map(Vec::capacity)
            .sum()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(in_rate: u32, input: &[f32], block: usize) -> Vec<f32> {
        let mut r = Resampler::new(in_rate, 16_000, 1).unwrap();
        let mut out = vec![Vec::new()];
        for c in input.chunks(block) {
            r.process(&[c], &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(r.frames_out(), out[0].len() as u64);
        out.pop().unwrap()
    }

    fn peak(y: &[f32]) -> usize {
        y.iter()
            .enumerate()
            .fold(
                (0, 0.0f32),
                |b, (i, &v)| if v.abs() > b.1 { (i, v.abs()) } else { b },
            )
            .0
    }

    #[test]
    fn passthrough_is_bit_exact() {
        let x: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut r = Resampler::new(16_000, 16_000, 1).unwrap();
        assert!(r.is_passthrough());
        let mut out = vec![Vec::new()];
        for c in x.chunks(333) {
            r.process(&[c], &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(out[0], x);
    }

    #[test]
    fn length_is_rounded_ratio_whatever_the_block_size() {
        for (rate, n, block) in [
            (8_000u32, 12_345usize, 100usize),
            (8_000, 1, 1),
            (44_100, 44_101, 4410),
            (48_000, 7, 3),
            (22_050, 22_050, 1),
            (11_025, 3_333, 1_000_000),
            (7_999, 20_000, 512),
        ] {
            let x = vec![0.1f32; n];
            let y = run(rate, &x, block);
            let want = (n as f64 * 16_000.0 / rate as f64).round() as usize;
            assert_eq!(y.len(), want, "{rate} Hz, {n} frames");
        }
        assert!(run(8_000, &[], 10).is_empty());
    }

    #[test]
    fn a_click_lands_where_it_should() {
        for (rate, block) in [
            (8_000u32, 100usize),
            (44_100, 4410),
            (48_000, 777),
            (22_050, 1),
        ] {
            let n = rate as usize; // one second
            let mut x = vec![0.0f32; n];
            let at = n * 3 / 10;
            x[at] = 1.0;
            let y = run(rate, &x, block);
            let want = at as f64 * 16_000.0 / rate as f64;
            let got = peak(&y);
            assert!(
                (got as f64 - want).abs() <= 1.0,
                "{rate} Hz: click at {got}, expected {want}"
            );
        }
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut r = Resampler::new(8_000, 16_000, 2).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        let one = [vec![0.0f32; 10]];
        assert!(matches!(
            r.process(&one, &mut out),
            Err(AudioError::Misuse(_))
        ));
        let uneven = [vec![0.0f32; 10], vec![0.0f32; 9]];
        assert!(matches!(
            r.process(&uneven, &mut out),
            Err(AudioError::Misuse(_))
        ));
        r.finish(&mut out).unwrap();
        let ok = [vec![0.0f32; 10], vec![0.0f32; 10]];
        assert!(matches!(
            r.process(&ok, &mut out),
            Err(AudioError::Misuse(_))
        ));
        assert!(Resampler::new(0, 16_000, 1).is_err());
    }
}
