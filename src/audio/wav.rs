//! A streaming RIFF/WAVE reader and a small writer.
//!
//! Our own parser rather than a crate: the box must say precisely what is wrong with a
//! recording (an MP3 renamed to .wav, a file cut by a full disk, an ADPCM export from a
//! PBX) and must survive headers that lie (a data size of 0 or 0xFFFFFFFF from streaming
//! writers, or one larger than the file). Samples come out as f32 in [-1, 1], integer PCM
//! divided by its full scale (int16 / 32768) as soundfile does, which the ASR reference
//! normalisation was computed from.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::AudioError;

/// How one sample is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    U8,
    I16,
    I24,
    I32,
    F32,
    F64,
    /// G.711 μ-law, 8 bits.
    MuLaw,
    /// G.711 A-law, 8 bits.
    ALaw,
}

impl SampleFormat {
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 | SampleFormat::MuLaw | SampleFormat::ALaw => 1,
            SampleFormat::I16 => 2,
            SampleFormat::I24 => 3,
            SampleFormat::I32 | SampleFormat::F32 => 4,
            SampleFormat::F64 => 8,
        }
    }
}

impl std::fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SampleFormat::U8 => "8-bit PCM",
            SampleFormat::I16 => "16-bit PCM",
            SampleFormat::I24 => "24-bit PCM",
            SampleFormat::I32 => "32-bit PCM",
            SampleFormat::F32 => "32-bit float",
            SampleFormat::F64 => "64-bit float",
            SampleFormat::MuLaw => "G.711 mu-law",
            SampleFormat::ALaw => "G.711 A-law",
        })
    }
}

/// What the header says about the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct WavSpec {
    pub sample_rate: u32,
    pub channels: u16,
    pub format: SampleFormat,
    /// Frames according to the header; None when the header does not know (streamed).
    pub frames: Option<u64>,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Refuse absurd channel counts before allocating per-channel buffers.
pub const MAX_CHANNELS: u16 = 64;

/// Reads a WAV file block by block; memory does not depend on the file's length.
pub struct WavReader<R: Read> {
    inner: R,
    spec: WavSpec,
    /// Bytes of sample data left according to the header; None: read to the end.
    remaining: Option<u64>,
    buf: Vec<u8>,
    done: bool,
}

impl WavReader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        if path.is_dir() {
            return Err(AudioError::IsDirectory);
        }
        let file = File::open(path).map_err(AudioError::Io)?;
        let len = file.metadata().map(|m| m.len()).ok();
        let mut r = WavReader::new(BufReader::with_capacity(64 * 1024, file))?;
        // A data size larger than the file: read what is there (checked at the end).
        if let (Some(rem), Some(len)) = (r.remaining, len) {
            if rem > len {
                tracing::warn!(
                    "{}: header claims {rem} bytes of audio but the file has {len}; reading to the end",
                    path.display()
                );
                r.remaining = None;
                r.spec.frames = None;
            }
        }
        Ok(r)
    }
}

impl<R: Read> WavReader<R> {
    /// Parses the header; the reader is left at the first sample.
    pub fn new(mut inner: R) -> Result<Self, AudioError> {
        let mut riff = [0u8; 12];
        let got = read_up_to(&mut inner, &mut riff).map_err(AudioError::Io)?;
        if got == 0 {
            return Err(AudioError::Empty);
        }
        if got < 12 || &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
            if got >= 4
                && (&riff[0..4] == b"RIFF" || &riff[0..4] == b"RIFX" || &riff[0..4] == b"RF64")
                && got < 12
            {
                return Err(AudioError::Truncated("in the RIFF header"));
            }
            return Err(AudioError::NotWav(sniff(&riff[..got])));
        }
        let mut fmt: Option<(u16, u16, u32, u16, u16)> = None;
        loop {
            let mut hdr = [0u8; 8];
            let n = read_up_to(&mut inner, &mut hdr).map_err(AudioError::Io)?;
            if n < 8 {
                return Err(if fmt.is_none() {
                    AudioError::Truncated("before the fmt chunk")
                } else {
                    AudioError::NoData
                });
            }
            let id = [hdr[0], hdr[1], hdr[2], hdr[3]];
            let size = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
            match &id {
                b"fmt " => {
                    if size < 16 || size > 1024 {
                        return Err(AudioError::BadHeader(format!("fmt chunk of {size} bytes")));
                    }
                    let mut b = vec![0u8; size as usize + (size as usize & 1)];
                    let n = read_up_to(&mut inner, &mut b).map_err(AudioError::Io)?;
                    if n < size as usize {
                        return Err(AudioError::Truncated("in the fmt chunk"));
                    }
                    let u16at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
                    let mut tag = u16at(0);
                    let channels = u16at(2);
                    let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                    let block_align = u16at(12);
                    let bits = u16at(14);
                    if tag == WAVE_FORMAT_EXTENSIBLE {
                        if size < 40 {
                            return Err(AudioError::BadHeader(
                                "WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes".into(),
                            ));
                        }
                        // The subformat GUID starts with the plain format tag.
                        tag = u16at(24);
                    }
                    fmt = Some((tag, channels, rate, block_align, bits));
                }
                b"data" => {
                    let Some((tag, channels, rate, block_align, bits)) = fmt else {
                        return Err(AudioError::BadHeader(
                            "data chunk before the fmt chunk".into(),
                        ));
                    };
                    let format = match (tag, bits) {
                        (WAVE_FORMAT_PCM, 8) => SampleFormat::U8,
                        (WAVE_FORMAT_PCM, 16) => SampleFormat::I16,
                        (WAVE_FORMAT_PCM, 24) => SampleFormat::I24,
                        (WAVE_FORMAT_PCM, 32) => SampleFormat::I32,
                        (WAVE_FORMAT_IEEE_FLOAT, 32) => SampleFormat::F32,
                        (WAVE_FORMAT_IEEE_FLOAT, 64) => SampleFormat::F64,
                        (WAVE_FORMAT_MULAW, 8) => SampleFormat::MuLaw,
                        (WAVE_FORMAT_ALAW, 8) => SampleFormat::ALaw,
                        _ => return Err(AudioError::Unsupported { tag, bits }),
                    };
                    if channels == 0 {
                        return Err(AudioError::BadHeader("0 channels".into()));
                    }
                    if channels > MAX_CHANNELS {
                        return Err(AudioError::TooManyChannels(channels));
                    }
                    if rate == 0 {
                        return Err(AudioError::BadHeader("sample rate 0".into()));
                    }
                    let frame = format.bytes() * channels as usize;
                    if block_align as usize != frame {
                        return Err(AudioError::BadHeader(format!(
                            "block align {block_align} does not match {channels} channel(s) of {format}"
                        )));
                    }
                    let remaining = match size {
                        0 | u32::MAX => None,
                        s => Some(s as u64),
                    };
                    return Ok(WavReader {
                        inner,
                        spec: WavSpec {
                            sample_rate: rate,
                            channels,
                            format,
                            frames: remaining.map(|r| r / frame as u64),
                        },
                        remaining,
                        buf: Vec::new(),
                        done: false,
                    });
                }
                _ => {
                    // LIST, fact, cue, ...: skip, with RIFF's pad byte for odd sizes.
                    let skip = size as u64 + (size as u64 & 1);
                    let n = std::io::copy(&mut (&mut inner).take(skip), &mut std::io::sink())
                        .map_err(AudioError::Io)?;
                    if n < skip {
                        return Err(if fmt.is_none() {
                            AudioError::Truncated("before the fmt chunk")
                        } else {
                            AudioError::NoData
                        });
                    }
                }
            }
        }
    }

    pub fn spec(&self) -> &WavSpec {
        &self.spec
    }

    /// Appends up to `max_frames` frames to `out` (one Vec per channel) and returns how
    /// many were read; 0 at the end. A file that ends inside a frame is an error.
    pub fn read_frames(
        &mut self,
        out: &mut [Vec<f32>],
        max_frames: usize,
    ) -> Result<usize, AudioError> {
        let ch = self.spec.channels as usize;
        if out.len() != ch {
            return Err(AudioError::BadHeader(format!(
                "caller gave {} channel buffers for {ch} channels",
                out.len()
            )));
        }
        if self.done || max_frames == 0 {
            return Ok(0);
        }
        let frame = self.spec.format.bytes() * ch;
        let mut want = max_frames * frame;
        if let Some(rem) = self.remaining {
            want = want.min(rem as usize);
        }
        self.buf.resize(want, 0);
        let got = read_up_to(&mut self.inner, &mut self.buf[..want]).map_err(AudioError::Io)?;
        if let Some(rem) = self.remaining.as_mut() {
            *rem -= got as u64;
        }
        if got < want || self.remaining == Some(0) {
            self.done = true;
        }
        let whole = got / frame;
        if got % frame != 0 {
            return Err(AudioError::Truncated("in the middle of a sample frame"));
        }
        if self.done && got < want && self.remaining.is_some_and(|r| r > 0) {
            // The header promised more: say so, but keep what was read.
            tracing::warn!(
                "audio data ended {} bytes before the size in the header",
                self.remaining.unwrap_or(0)
            );
        }
        let fmt = self.spec.format;
        let bps = fmt.bytes();
        for f in 0..whole {
            for (c, dst) in out.iter_mut().enumerate() {
                let o = f * frame + c * bps;
                dst.push(decode(fmt, &self.buf[o..o + bps]));
            }
        }
        Ok(whole)
    }

    /// Capacity of the internal byte buffer (bounded by the largest block asked for).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

fn decode(fmt: SampleFormat, b: &[u8]) -> f32 {
    match fmt {
        SampleFormat::U8 => (b[0] as f32 - 128.0) / 128.0,
        SampleFormat::I16 => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
        SampleFormat::I24 => {
            let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
            v as f32 / 8_388_608.0
        }
        SampleFormat::I32 => {
            (i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64 / 2_147_483_648.0) as f32
        }
        SampleFormat::F32 => {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if v.is_finite() {
                v.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        }
        SampleFormat::F64 => {
            let v = f64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
            if v.is_finite() {
                v.clamp(-1.0, 1.0) as f32
            } else {
                0.0
            }
        }
        SampleFormat::MuLaw => mulaw_to_linear(b[0]) as f32 / 32768.0,
        SampleFormat::ALaw => alaw_to_linear(b[0]) as f32 / 32768.0,
    }
}

/// G.711 μ-law expansion (ITU-T G.711), to 16-bit linear.
pub fn mulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law expansion (ITU-T G.711), to 16-bit linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let sign = a & 0x80;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A guess at what a non-WAV file is, from its first bytes, for the error message.
fn sniff(head: &[u8]) -> String {
    let what = if head.starts_with(b"ID3")
        || head.starts_with(&[0xff, 0xfb])
        || head.starts_with(&[0xff, 0xf3])
    {
        "it looks like MP3"
    } else if head.starts_with(b"OggS") {
        "it looks like Ogg"
    } else if head.starts_with(b"fLaC") {
        "it looks like FLAC"
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        "it looks like MP4/M4A"
    } else if head.starts_with(b"RIFX") {
        "it is big-endian RIFX, not RIFF"
    } else if head.starts_with(b"RF64") {
        "it is RF64 (over-4-GB WAV), which is not supported"
    } else if head.starts_with(b"RIFF") {
        "it is a RIFF file but not WAVE"
    } else if !head.is_empty()
        && head
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "it looks like text"
    } else {
        "unknown content"
    };
    what.to_owned()
}

/// Writes 16-bit PCM or 32-bit float WAV files: for tests, sample calls, and spilled audio.
pub struct WavWriter<W: Write + Seek> {
    out: W,
    channels: u16,
    float: bool,
    data_bytes: u64,
}

impl WavWriter<BufWriter<File>> {
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: u16,
        float: bool,
    ) -> std::io::Result<Self> {
        WavWriter::new(
            BufWriter::new(File::create(path)?),
            sample_rate,
            channels,
            float,
        )
    }
}

impl<W: Write + Seek> WavWriter<W> {
    pub fn new(mut out: W, sample_rate: u32, channels: u16, float: bool) -> std::io::Result<Self> {
        let (tag, bits) = if float {
            (WAVE_FORMAT_IEEE_FLOAT, 32u16)
        } else {
            (WAVE_FORMAT_PCM, 16u16)
        };
        let block = channels * bits / 8;
        out.write_all(b"RIFF\0\0\0\0WAVEfmt ")?;
        out.write_all(&16u32.to_le_bytes())?;
        out.write_all(&tag.to_le_bytes())?;
        out.write_all(&channels.to_le_bytes())?;
        out.write_all(&sample_rate.to_le_bytes())?;
        out.write_all(&(sample_rate * block as u32).to_le_bytes())?;
        out.write_all(&block.to_le_bytes())?;
        out.write_all(&bits.to_le_bytes())?;
        out.write_all(b"data\0\0\0\0")?;
        Ok(WavWriter {
            out,
            channels,
            float,
            data_bytes: 0,
        })
    }

    /// Writes interleaved samples in [-1, 1] (clipped).
    pub fn write_interleaved(&mut self, samples: &[f32]) -> std::io::Result<()> {
        for &s in samples {
            let s = s.clamp(-1.0, 1.0);
            if self.float {
                self.out.write_all(&s.to_le_bytes())?;
                self.data_bytes += 4;
            } else {
                let v = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                self.out.write_all(&v.to_le_bytes())?;
                self.data_bytes += 2;
            }
        }
        Ok(())
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Patches the sizes into the header and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        let data = u32::try_from(self.data_bytes).unwrap_or(u32::MAX);
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&data.saturating_add(36).to_le_bytes())?;
        self.out.seek(SeekFrom::Start(40))?;
        self.out.write_all(&data.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn g711_tables_match_reference_points() {
        // Known values of the ITU-T G.711 expansion.
        assert_eq!(mulaw_to_linear(0xff), 0);
        assert_eq!(mulaw_to_linear(0x7f), 0);
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
    }

    #[test]
    fn writer_reader_round_trip_pcm16_and_float() {
        for float in [false, true] {
            let mut w = WavWriter::new(Cursor::new(Vec::new()), 8000, 2, float).unwrap();
            let x: Vec<f32> = (0..200).map(|i| ((i as f32) * 0.05).sin() * 0.5).collect();
            w.write_interleaved(&x).unwrap();
            let bytes = w.finish().unwrap().into_inner();
            let mut r = WavReader::new(Cursor::new(bytes)).unwrap();
            assert_eq!(r.spec().sample_rate, 8000);
            assert_eq!(r.spec().frames, Some(100));
            let mut out = vec![Vec::new(), Vec::new()];
            assert_eq!(r.read_frames(&mut out, 1000).unwrap(), 100);
            assert_eq!(r.read_frames(&mut out, 1000).unwrap(), 0);
            for (i, v) in x.iter().enumerate() {
                let got = out[i % 2][i / 2];
                assert!((got - v).abs() < 1.0 / 32768.0 + 1e-7, "{i}: {got} vs {v}");
            }
        }
    }
}
