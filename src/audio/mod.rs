//! Audio input: recorded calls from WAV files, resampled to the 16 kHz the models use.
//!
//! [`CallFile`] streams a recording block by block (a two-hour call needs no more memory
//! than a short one), checks that it is mono or two-channel, and hands out 16 kHz
//! per-channel blocks. In a two-channel recording each channel is one side of the call,
//! mapped to a [`Speaker`] by the [`ChannelMap`] in the config.

mod resample;
pub mod wav;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use resample::Resampler;
pub use wav::{SampleFormat, WavReader, WavSpec, WavWriter};

/// The rate everything after the audio module works at.
pub const TARGET_RATE: u32 = 16_000;
/// Input frames per block: 0.5 s at 16 kHz, 0.25 s at 32 kHz...
const BLOCK_FRAMES: usize = 8_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("is a directory, not a WAV file")]
    IsDirectory,
    #[error("the file is empty (0 bytes): the recording was not written; check the recorder")]
    Empty,
    #[error("not a WAV file ({0}): convert it with `sox INPUT -b 16 OUTPUT.wav`")]
    NotWav(String),
    #[error(
        "the WAV file is truncated {0}: the copy is incomplete; copy it again from the recorder"
    )]
    Truncated(&'static str),
    #[error("the WAV header is damaged: {0}")]
    BadHeader(String),
    #[error("the WAV file has no audio data chunk: it is damaged or holds no audio")]
    NoData,
    #[error("unsupported WAV encoding (format tag {tag}, {bits} bits): supported are PCM 8/16/24/32-bit, float 32/64-bit, G.711 mu-law and A-law; convert with `sox INPUT -b 16 -e signed-integer OUTPUT.wav`")]
    Unsupported { tag: u16, bits: u16 },
    #[error("{0} channels: the box records mono or two channels (agent, customer); downmix with `sox INPUT OUTPUT.wav remix 1 2` (pick the two channels)")]
    TooManyChannels(u16),
    #[error("sample rate {0} Hz is outside 4000..=192000 Hz: the header is probably damaged")]
    BadRate(u32),
    #[error("resampling failed: {0}")]
    Resample(String),
}

/// Which side of the call a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// A mono recording: both sides mixed.
    Mono,
    Agent,
    Customer,
}

impl Speaker {
    /// The speaker of channel `ch` in a recording of `channels` channels.
    pub fn of_channel(ch: u16, channels: u16, map: ChannelMap) -> Speaker {
        if channels < 2 {
            Speaker::Mono
        } else if ch == map.customer {
            Speaker::Customer
        } else if ch == map.agent {
            Speaker::Agent
        } else {
            Speaker::Mono
        }
    }
}

impl std::fmt::Display for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Speaker::Mono => "mono",
            Speaker::Agent => "agent",
            Speaker::Customer => "customer",
        })
    }
}

/// Which channel of a two-channel recording is which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMap {
    pub agent: u16,
    pub customer: u16,
}

impl Default for ChannelMap {
    fn default() -> Self {
        ChannelMap {
            agent: 0,
            customer: 1,
        }
    }
}

/// A recorded call read as 16 kHz blocks, one Vec per channel.
pub struct CallFile<R: Read = BufReader<File>> {
    reader: WavReader<R>,
    resampler: Resampler,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
    finished: bool,
}

impl CallFile {
    /// Opens and checks a recording: WAV, mono or two channels, a plausible rate.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let reader = WavReader::open(path)?;
        Self::from_reader(reader)
    }
}

impl<R: Read> CallFile<R> {
    /// Wraps an already opened WAV stream (a pipe, a socket, a generated stream).
    pub fn from_reader(reader: WavReader<R>) -> Result<Self, AudioError> {
        let spec = reader.spec().clone();
        if spec.channels > 2 {
            return Err(AudioError::TooManyChannels(spec.channels));
        }
        if !(4_000..=192_000).contains(&spec.sample_rate) {
            return Err(AudioError::BadRate(spec.sample_rate));
        }
        let ch = spec.channels as usize;
        Ok(CallFile {
            resampler: Resampler::new(spec.sample_rate, TARGET_RATE, ch)?,
            reader,
            input: vec![Vec::with_capacity(BLOCK_FRAMES); ch],
            output: vec![Vec::with_capacity(BLOCK_FRAMES * 2); ch],
            finished: false,
        })
    }

    pub fn spec(&self) -> &WavSpec {
        self.reader.spec()
    }

    /// The next 16 kHz block, one slice per channel (all the same length), or None at
    /// the end. The block is valid until the next call.
    pub fn next_block(&mut self) -> Result<Option<&[Vec<f32>]>, AudioError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            for v in self.input.iter_mut().chain(self.output.iter_mut()) {
                v.clear();
            }
            let n = self.reader.read_frames(&mut self.input, BLOCK_FRAMES)?;
            if n == 0 {
                self.finished = true;
                self.resampler.finish(&mut self.output)?;
            } else {
                self.resampler.process(&self.input, &mut self.output)?;
            }
            if !self.output[0].is_empty() {
                return Ok(Some(&self.output));
            }
        }
    }

    /// Capacity held by the buffers; stays constant over a file of any length.
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
