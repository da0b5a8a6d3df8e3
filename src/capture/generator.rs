//! A signal generator source: a schedule of tones, noise and silence, per channel, for
//! tests and for checking a box without a phone line.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{pace, AudioSource, SourceError, StreamFormat};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    Silence,
    /// A sine at `freq_hz`.
    Tone,
    /// White noise.
    Noise,
    /// A tone whose level is switched on and off every 180 ms: crude speech-like
    /// syllables that voice-activity detection takes for talk.
    Talk,
}

/// One step of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub kind: SegmentKind,
    pub seconds: f64,
    /// Level in dB full scale (for tone, noise and talk).
    #[serde(default = "default_level")]
    pub level_dbfs: f32,
    #[serde(default = "default_freq")]
    pub freq_hz: f32,
    /// Which channel plays it in a two-channel stream; `None` plays it on all.
    #[serde(default)]
    pub channel: Option<u16>,
}

fn default_level() -> f32 {
    -20.0
}
fn default_freq() -> f32 {
    440.0
}

impl Segment {
    pub fn new(kind: SegmentKind, seconds: f64) -> Segment {
        Segment {
            kind,
            seconds,
            level_dbfs: default_level(),
            freq_hz: default_freq(),
            channel: None,
        }
    }

    pub fn on_channel(mut self, ch: u16) -> Segment {
        self.channel = Some(ch);
        self
    }
}

/// Plays the schedule once (then the stream ends) or forever (`repeat`), paced to real
/// time unless `speed` is 0.
pub struct GeneratorSource {
    rate: u32,
    channels: u16,
    period_frames: usize,
    schedule: Vec<Segment>,
    repeat: bool,
    speed: f64,
    // Position.
    seg: usize,
    seg_frame: u64,
    total_frames: u64,
    started: Option<Instant>,
    rng: u64,
}

impl GeneratorSource {
    pub fn new(rate: u32, channels: u16, schedule: Vec<Segment>) -> GeneratorSource {
        GeneratorSource {
            rate,
            channels: channels.max(1),
            period_frames: (rate / 50) as usize,
            schedule,
            repeat: false,
            speed: 1.0,
            seg: 0,
            seg_frame: 0,
            total_frames: 0,
            started: None,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    pub fn repeat(mut self, on: bool) -> Self {
        self.repeat = on;
        self
    }

    /// 1.0 is real time; 0 is as fast as it is read.
    pub fn speed(mut self, speed: f64) -> Self {
        self.speed = speed;
        self
    }

    pub fn period_frames(mut self, frames: usize) -> Self {
        self.period_frames = frames.max(1);
        self
    }

    fn noise(&mut self) -> f32 {
        // xorshift64*: cheap, deterministic, no allocation.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let v = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (v >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

impl AudioSource for GeneratorSource {
    fn describe(&self) -> String {
        format!(
            "generator ({} segments, {} Hz, {} ch)",
            self.schedule.len(),
            self.rate,
            self.channels
        )
    }

    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        if self.schedule.is_empty() {
            return Err(SourceError::Format {
                device: self.describe(),
                what: "an empty schedule".into(),
                hint: "give at least one [[live.generator]] segment".into(),
            });
        }
        self.started = Some(Instant::now());
        self.total_frames = 0;
        Ok(StreamFormat {
            rate: self.rate,
            channels: self.channels,
            period_frames: self.period_frames,
        })
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, SourceError> {
        let ch = self.channels as usize;
        let frames = (buf.len() / ch).min(self.period_frames);
        let mut out = 0;
        while out < frames {
            if self.seg >= self.schedule.len() {
                if !self.repeat {
                    break;
                }
                self.seg = 0;
            }
            let seg = self.schedule[self.seg];
            let seg_len = (seg.seconds * self.rate as f64).round() as u64;
            if self.seg_frame >= seg_len {
                self.seg += 1;
                self.seg_frame = 0;
                continue;
            }
            let amp = 10f32.powf(seg.level_dbfs / 20.0);
            let t = self.seg_frame as f32 / self.rate as f32;
            let v = match seg.kind {
                SegmentKind::Silence => 0.0,
                SegmentKind::Tone => amp * (std::f32::consts::TAU * seg.freq_hz * t).sin(),
                SegmentKind::Noise => amp * self.noise(),
                SegmentKind::Talk => {
                    let on = (t / 0.18) as u32 % 4 != 3;
                    let wobble = 1.0 + 0.3 * (std::f32::consts::TAU * 3.0 * t).sin();
                    if on {
                        amp * (std::f32::consts::TAU * seg.freq_hz * wobble * t).sin()
                            + 0.1 * amp * self.noise()
                    } else {
                        0.0
                    }
                }
            };
            let s = (v.clamp(-1.0, 1.0) * 32767.0) as i16;
            for c in 0..ch {
                let on = seg.channel.is_none_or(|only| only as usize == c);
                buf[out * ch + c] = if on { s } else { 0 };
            }
            out += 1;
            self.seg_frame += 1;
        }
        self.total_frames += out as u64;
        if let Some(start) = self.started {
            pace(start, self.total_frames, self.rate, self.speed);
        }
        Ok(out * ch)
    }

    fn stop(&mut self) {}
}
