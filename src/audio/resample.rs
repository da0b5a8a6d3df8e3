//! Streaming sample-rate conversion to 16 kHz with rubato's synchronous FFT resampler
//! (a fixed ratio, band-limited, fast), with the resampler's delay removed so that sample
//! `n` of the output is at the time of input sample `n * in_rate / out_rate`.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use super::AudioError;

/// Input frames per FFT chunk: about 64 ms at 16 kHz; memory per channel stays a few KiB.
const CHUNK: usize = 1024;

enum Inner {
    Passthrough,
    Fft(Box<Fft<f32>>),
}

/// Converts per-channel blocks of any size from `in_rate` to `out_rate`.
pub struct Resampler {
    inner: Inner,
    channels: usize,
    in_rate: u32,
    out_rate: u32,
    /// Input waiting for a full chunk, per channel.
    pending: Vec<Vec<f32>>,
    /// Output of the last chunk, per channel.
    scratch: Vec<Vec<f32>>,
    /// Output frames still to drop at the start (the resampler's delay).
    to_skip: usize,
    frames_in: u64,
    frames_out: u64,
}

impl Resampler {
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self, AudioError> {
        let inner = if in_rate == out_rate {
            Inner::Passthrough
        } else {
            let fft = Fft::<f32>::new(
                in_rate as usize,
                out_rate as usize,
                CHUNK,
                channels,
                FixedSync::Input,
            )
            .map_err(|e| AudioError::Resample(e.to_string()))?;
            Inner::Fft(Box::new(fft))
        };
        let (to_skip, out_max) = match &inner {
            Inner::Passthrough => (0, 0),
            Inner::Fft(f) => (f.output_delay(), f.output_frames_max()),
        };
        Ok(Resampler {
            inner,
            channels,
            in_rate,
            out_rate,
            pending: vec![Vec::with_capacity(CHUNK); channels],
            scratch: vec![vec![0.0; out_max]; channels],
            to_skip,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Resamples `input` (one slice per channel, equal lengths) and appends the result
    /// to `output` (one Vec per channel).
    pub fn process(
        &mut self,
        input: &[Vec<f32>],
        output: &mut [Vec<f32>],
    ) -> Result<(), AudioError> {
        let n = input.first().map_or(0, Vec::len);
        self.frames_in += n as u64;
        if matches!(self.inner, Inner::Passthrough) {
            for (o, i) in output.iter_mut().zip(input) {
                o.extend_from_slice(i);
            }
            self.frames_out += n as u64;
            return Ok(());
        }
        let mut offset = 0;
        while offset < n {
            let need = CHUNK - self.pending[0].len();
            let take = need.min(n - offset);
            for (p, i) in self.pending.iter_mut().zip(input) {
                p.extend_from_slice(&i[offset..offset + take]);
            }
            offset += take;
            if self.pending[0].len() == CHUNK {
                self.run_chunk(CHUNK, output)?;
                for p in &mut self.pending {
                    p.clear();
                }
            }
        }
        Ok(())
    }

    /// Flushes what is left; the total output is then `round(frames_in * ratio)`.
    pub fn finish(&mut self, output: &mut [Vec<f32>]) -> Result<(), AudioError> {
        if matches!(self.inner, Inner::Passthrough) {
            return Ok(());
        }
        let expected =
            (self.frames_in as f64 * self.out_rate as f64 / self.in_rate as f64).round() as u64;
        let mut partial = self.pending[0].len();
        // Feed the rest, then silence, until the delayed tail has come out.
        let mut guard = 0;
        while self.frames_out < expected && guard < 64 {
            for p in &mut self.pending {
                p.resize(CHUNK, 0.0);
            }
            self.run_chunk_limited(partial, output, expected)?;
            for p in &mut self.pending {
                p.clear();
            }
            partial = 0;
            guard += 1;
        }
        Ok(())
    }

    fn run_chunk(&mut self, valid: usize, output: &mut [Vec<f32>]) -> Result<(), AudioError> {
        self.run_chunk_limited(valid, output, u64::MAX)
    }

    fn run_chunk_limited(
        &mut self,
        valid: usize,
        output: &mut [Vec<f32>],
        limit: u64,
    ) -> Result<(), AudioError> {
        let Inner::Fft(fft) = &mut self.inner else {
            return Ok(());
        };
        let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
        let input =
            SequentialSliceOfVecs::new(&self.pending, self.channels, CHUNK).map_err(|e| err(&e))?;
        let out_frames = self.scratch[0].len();
        let mut out = SequentialSliceOfVecs::new_mut(&mut self.scratch, self.channels, out_frames)
            .map_err(|e| err(&e))?;
        let indexing = Indexing::new().partial_len(valid);
        let (_, produced) = fft
            .process_into_buffer(&input, &mut out, Some(&indexing))
            .map_err(|e| err(&e))?;
        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let room = limit.saturating_sub(self.frames_out) as usize;
        let take = (produced - skip).min(room);
        for (o, s) in output.iter_mut().zip(&self.scratch) {
            o.extend_from_slice(&s[skip..skip + take]);
        }
        self.frames_out += take as u64;
        Ok(())
    }

    /// Bytes-independent measure of the buffers held (for the bounded-memory test).
    pub fn buffered_capacity(&self) -> usize {
        self.pending
            .iter()
            .chain(&self.scratch)
            .map(Vec::capacity)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(in_rate: u32, input: &[f32], block: usize) -> Vec<f32> {
        let mut r = Resampler::new(in_rate, 16_000, 1).unwrap();
        let mut out = vec![Vec::new()];
        for c in input.chunks(block) {
            r.process(&[c.to_vec()], &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out.pop().unwrap()
    }

    #[test]
    fn passthrough_is_bit_exact() {
        let x: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.37).sin()).collect();
        assert_eq!(run(16_000, &x, 333), x);
    }

    #[test]
    fn length_and_alignment() {
        for (rate, block) in [
            (8_000u32, 100usize),
            (44_100, 4410),
            (48_000, 777),
            (22_050, 1),
        ] {
            let n = rate as usize; // one second
            let mut x = vec![0.0f32; n];
            // A click at 0.5 s.
            x[n / 2] = 1.0;
            let y = run(rate, &x, block);
            assert!(
                (y.len() as i64 - 16_000).abs() <= 1,
                "{rate}: {} samples",
                y.len()
            );
            let peak = y
                .iter()
                .enumerate()
                .fold(
                    (0, 0.0f32),
                    |b, (i, &v)| if v.abs() > b.1 { (i, v.abs()) } else { b },
                )
                .0;
            assert!(
                (peak as i64 - 8_000).abs() <= 16,
                "{rate}: click at {peak}, expected 8000"
            );
        }
    }
}
