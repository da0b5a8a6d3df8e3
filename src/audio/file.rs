//! One recorded call, read as 16 kHz blocks.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{AudioError, Resampler, WavReader, WavSpec, TARGET_RATE};

/// A call has one channel (both sides mixed) or two (agent and customer).
pub const MAX_CALL_CHANNELS: u16 = 2;
/// Below this there is no speech left to recognise; a lower rate means a damaged header.
pub const MIN_CALL_RATE: u32 = 4_000;
/// The highest rate sound cards record at; anything higher is a damaged header.
pub const MAX_CALL_RATE: u32 = 192_000;

/// A recorded call streamed as 16 kHz blocks, one Vec per channel.
///
/// Every buffer is sized by the block length and the rate, never by the file: a two-hour
/// recording needs the same memory as a short one ([`CallFile::buffered_capacity`]).
pub struct CallFile<R: Read = BufReader<File>> {
    reader: WavReader<R>,
    resampler: Resampler,
    /// Input frames read per block: half a second at the file's rate.
    block_frames: usize,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
    finished: bool,
}

impl CallFile {
    /// Opens and checks a recording: a readable WAV, mono or two channels, a plausible
    /// rate. Errors do not name the path; the caller adds it.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        Self::from_reader(WavReader::open(path)?)
    }
}

impl<R: Read> CallFile<R> {
    /// Wraps an opened WAV stream (a file, a pipe, a generated stream) after the checks
    /// [`CallFile::open`] makes.
    pub fn from_reader(reader: WavReader<R>) -> Result<Self, AudioError> {
        let spec = reader.spec().clone();
        if spec.channels > MAX_CALL_CHANNELS {
            return Err(AudioError::TooManyChannels(spec.channels));
        }
        if !(MIN_CALL_RATE..=MAX_CALL_RATE).contains(&spec.sample_rate) {
            return Err(AudioError::BadRate(spec.sample_rate));
        }
        let ch = spec.channels as usize;
        let block_frames = (spec.sample_rate as usize).div_ceil(2);
        Ok(CallFile {
            resampler: Resampler::new(spec.sample_rate, TARGET_RATE, ch)?,
            reader,
            block_frames,
            input: vec![Vec::with_capacity(block_frames); ch],
            output: vec![Vec::new(); ch],
            finished: false,
        })
    }

    /// What the header says: rate, channels, encoding, and the length if known.
    pub fn spec(&self) -> &WavSpec {
        self.reader.spec()
    }

    /// The next 16 kHz block (about half a second), one slice per channel, all the same
    /// length and never empty; None at the end. The block is valid until the next call.
    /// After an error the stream is over: later calls return None.
    pub fn next_block(&mut self) -> Result<Option<&[Vec<f32>]>, AudioError> {
        for v in &mut self.output {
            v.clear();
        }
        while !self.finished && self.output[0].is_empty() {
            for v in &mut self.input {
                v.clear();
            }
            let step = self
                .reader
                .read_frames(&mut self.input, self.block_frames)
                .and_then(|n| {
                    if n == 0 {
                        self.finished = true;
                        self.resampler.finish(&mut self.output)
                    } else {
                        self.resampler.process(&self.input, &mut self.output)
                    }
                });
            if let Err(e) = step {
                self.finished = true;
                return Err(e);
            }
        }
        Ok(if self.output[0].is_empty() {
            None
        } else {
            Some(&self.output)
        })
    }

    /// 16 kHz frames handed out so far, per channel.
    pub fn frames_out(&self) -> u64 {
        self.resampler.frames_out()
    }

    /// Seconds of audio handed out so far: the running duration of the call.
    pub fn seconds_out(&self) -> f64 {
        self.frames_out() as f64 / TARGET_RATE as f64
    }

    /// Frames read from the file so far, at its own rate.
    pub fn frames_in(&self) -> u64 {
        self.reader.frames_read()
    }

    /// Samples (and bytes, for the reader's buffer) of capacity held by all buffers; it
    /// stops changing after the first blocks, whatever the file's length.
    pub fn buffered_capacity(&self) -> usize {
        self.input
            .iter()
            .chain(&self.output)
            .map(Vec::capacity)
            .sum::<usize>()
            + self.resampler.buffered_capacity()
            + self.reader.buffered_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{WavWriter, WriteFormat};
    use std::io::Cursor;

    fn wav(rate: u32, channels: u16, frames: usize) -> Vec<u8> {
        let mut w =
            WavWriter::new(Cursor::new(Vec::new()), rate, channels, WriteFormat::Pcm16).unwrap();
        let x: Vec<f32> = (0..frames * channels as usize)
            .map(|i| ((i % 50) as f32 - 25.0) / 100.0)
            .collect();
        w.write_interleaved(&x).unwrap();
        w.finish().unwrap().into_inner()
    }

    fn open(bytes: Vec<u8>) -> Result<CallFile<Cursor<Vec<u8>>>, AudioError> {
        CallFile::from_reader(WavReader::new(Cursor::new(bytes))?)
    }

    #[test]
    fn refuses_more_than_two_channels_and_odd_rates() {
        assert!(matches!(
            open(wav(8_000, 3, 10)),
            Err(AudioError::TooManyChannels(3))
        ));
        assert!(matches!(
            open(wav(3_999, 1, 10)),
            Err(AudioError::BadRate(3_999))
        ));
        assert!(matches!(
            open(wav(192_001, 1, 10)),
            Err(AudioError::BadRate(192_001))
        ));
        assert!(open(wav(4_000, 2, 10)).is_ok());
        assert!(open(wav(192_000, 1, 10)).is_ok());
    }

    #[test]
    fn blocks_are_nonempty_equal_and_add_up() {
        let mut f = open(wav(8_000, 2, 12_345)).unwrap();
        let mut total = 0;
        while let Some(b) = f.next_block().unwrap() {
            assert_eq!(b.len(), 2);
            assert!(!b[0].is_empty());
            assert_eq!(b[0].len(), b[1].len());
            assert!(b[0].len() <= 16_000, "block of {}", b[0].len());
            total += b[0].len();
        }
        assert_eq!(total, 24_690);
        assert_eq!(f.frames_out(), 24_690);
        assert_eq!(f.frames_in(), 12_345);
        assert!((f.seconds_out() - 1.543_125).abs() < 1e-9);
        assert!(f.next_block().unwrap().is_none());
    }
}
