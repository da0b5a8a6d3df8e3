//! Replays a WAV file as if it were the phone line: at its own rate and channel count,
//! paced to real time (or faster), for demos and end-to-end tests.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{pace, AudioSource, SourceError, StreamFormat};
use crate::audio::{WavReader, MAX_CALL_CHANNELS, MAX_CALL_RATE, MIN_CALL_RATE};

pub struct WavSource {
    path: PathBuf,
    speed: f64,
    reader: Option<WavReader<BufReader<std::fs::File>>>,
    chans: Vec<Vec<f32>>,
    period_frames: usize,
    frames: u64,
    started: Option<Instant>,
    rate: u32,
    /// Played once: after the end, `start` reports the end again instead of replaying.
    done: bool,
}

impl WavSource {
    /// `speed` 1.0 plays in real time, 0 as fast as the consumer takes it.
    pub fn new(path: &Path, speed: f64) -> WavSource {
        WavSource {
            path: path.to_owned(),
            speed,
            reader: None,
            chans: Vec::new(),
            period_frames: 0,
            frames: 0,
            started: None,
            rate: 0,
            done: false,
        }
    }
}

impl AudioSource for WavSource {
    fn describe(&self) -> String {
        format!("wav {}", self.path.display())
    }

    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        if self.done {
            return Err(SourceError::Other(
                self.describe(),
                "the file was played to its end".into(),
            ));
        }
        let reader = WavReader::open(&self.path).map_err(|e| SourceError::Format {
            device: self.describe(),
            what: "this file".into(),
            hint: e.to_string(),
        })?;
        let spec = reader.spec().clone();
        if spec.channels > MAX_CALL_CHANNELS
            || !(MIN_CALL_RATE..=MAX_CALL_RATE).contains(&spec.sample_rate)
        {
            return Err(SourceError::Format {
                device: self.describe(),
                what: format!("{} channels at {} Hz", spec.channels, spec.sample_rate),
                hint: "mono or two channels at 8000 or 16000 Hz".into(),
            });
        }
        self.rate = spec.sample_rate;
        self.period_frames = (spec.sample_rate / 50) as usize; // 20 ms
                                                               // Sized once here; `read` reuses them.
        self.chans = (0..spec.channels)
            .map(|_| Vec::with_capacity(self.period_frames))
            .collect();
        self.reader = Some(reader);
        self.frames = 0;
        self.started = Some(Instant::now());
        Ok(StreamFormat {
            rate: spec.sample_rate,
            channels: spec.channels,
            period_frames: self.period_frames,
        })
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, SourceError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(0);
        };
        let ch = self.chans.len();
        let want = (buf.len() / ch).min(self.period_frames);
        for c in &mut self.chans {
            c.clear();
        }
        let got = match reader.read_frames(&mut self.chans, want) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Err(SourceError::Other(
                    self.path.display().to_string(),
                    e.to_string(),
                ));
            }
        };
        if got == 0 {
            self.done = true;
            return Ok(0);
        }
        for f in 0..got {
            for c in 0..ch {
                buf[f * ch + c] = (self.chans[c][f].clamp(-1.0, 1.0) * 32767.0) as i16;
            }
        }
        self.frames += got as u64;
        if let Some(start) = self.started {
            pace(start, self.frames, self.rate, self.speed);
        }
        Ok(got * ch)
    }

    fn stop(&mut self) {
        self.reader = None;
    }
}
