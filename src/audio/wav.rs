//! A streaming RIFF/WAVE reader and a small writer.
//!
//! Our own parser rather than a crate: the box must say precisely what is wrong with a
//! recording (an MP3 renamed to .wav, a file cut short by a full disk, an ADPCM export from
//! a PBX) and must survive headers that lie: a data size of 0 or 0xFFFFFFFF from streaming
//! writers, or one larger than the file. Samples come out as f32 in [-1, 1], integer PCM
//! divided by its full scale (int16 / 32768) as soundfile does: the ASR normalisation is
//! checked against Python references computed that way.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::AudioError;

/// How one sample is stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// 8-bit PCM, unsigned (128 is silence), as WAV stores it.
    U8,
    I16,
    I24,
    I32,
    F32,
    F64,
    /// G.711 μ-law, 8 bits (format tag 7): telephone recordings.
    MuLaw,
    /// G.711 A-law, 8 bits (format tag 6): telephone recordings.
    ALaw,
}

impl SampleFormat {
    /// Bytes one sample of one channel takes.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavSpec {
    pub sample_rate: u32,
    pub channels: u16,
    pub format: SampleFormat,
    /// Frames according to the header; None when the header does not know (a streaming
    /// writer's 0 or 0xFFFFFFFF data size, or a size larger than the file).
    pub frames: Option<u64>,
}

impl WavSpec {
    /// Duration according to the header, in seconds.
    pub fn duration_secs(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / self.sample_rate as f64)
    }

    fn frame_bytes(&self) -> usize {
        self.format.bytes() * self.channels as usize
    }
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The part of a WAVE_FORMAT_EXTENSIBLE subformat GUID after the format tag
/// (`xxxxxxxx-0000-0010-8000-00aa00389b71`, the tag in the first two bytes).
const KSDATAFORMAT_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Reader-level limit: more channels than this is a damaged header, not a recording.
pub const MAX_CHANNELS: u16 = 64;

/// Largest read buffer, whatever `max_frames` a caller asks for, so a careless caller
/// cannot make the reader allocate in proportion to the file.
const MAX_READ_BYTES: usize = 1 << 20;

/// Human name of a WAV format tag, for error messages.
pub fn format_tag_name(tag: u16) -> &'static str {
    match tag {
        WAVE_FORMAT_PCM => "PCM",
        0x0002 => "MS ADPCM",
        WAVE_FORMAT_IEEE_FLOAT => "IEEE float",
        WAVE_FORMAT_ALAW => "G.711 A-law",
        WAVE_FORMAT_MULAW => "G.711 mu-law",
        0x0011 => "IMA ADPCM",
        0x0022 => "DSP TrueSpeech",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG",
        0x0055 => "MPEG layer 3 (MP3)",
        0x0064 => "G.726 ADPCM",
        0x0065 => "G.722 ADPCM",
        0x1600 => "AAC",
        WAVE_FORMAT_EXTENSIBLE => "extensible with an unknown subformat",
        _ => "unknown",
    }
}

/// The fmt chunk, checked.
#[derive(Debug, Clone, Copy)]
struct Fmt {
    format: SampleFormat,
    channels: u16,
    rate: u32,
}

/// Reads a WAV stream block by block; memory does not depend on the file's length.
pub struct WavReader<R: Read> {
    inner: R,
    spec: WavSpec,
    /// Bytes of sample data left according to the header; None: read to the end.
    remaining: Option<u64>,
    /// The data size the header claims, if it claims one.
    claimed: Option<u64>,
    buf: Vec<u8>,
    /// An error found after the last whole frames were handed out, reported next call.
    pending: Option<AudioError>,
    done: bool,
    frames_read: u64,
}

impl WavReader<BufReader<File>> {
    /// Opens a file and parses its header. A data size larger than the file is taken as
    /// "read what is there" (with a warning): recorders that die before patching the
    /// header leave such files, and their audio is still good.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let meta = std::fs::metadata(path).map_err(io_error)?;
        if meta.is_dir() {
            return Err(AudioError::IsDirectory);
        }
        let file = File::open(path).map_err(io_error)?;
        let mut counter = CountingRead {
            inner: BufReader::with_capacity(64 * 1024, file),
            count: 0,
        };
        let header = parse_header(&mut counter)?;
        let mut r = WavReader::from_header(counter.inner, header);
        let available = meta.len().saturating_sub(counter.count);
        if let Some(rem) = r.remaining {
            if rem > available {
                tracing::warn!(
                    "{}: the header claims {rem} bytes of audio but only {available} follow; reading to the end",
                    path.display()
                );
                r.spec.frames = Some(available / r.spec.frame_bytes() as u64);
                // Read to the end; a partial frame there is still reported as truncation.
                r.remaining = None;
            }
        }
        Ok(r)
    }
}

impl<R: Read> WavReader<R> {
    /// Parses the header from any stream (a file, a pipe, a generated stream); the reader
    /// is left at the first sample.
    pub fn new(mut inner: R) -> Result<Self, AudioError> {
        let header = parse_header(&mut inner)?;
        Ok(WavReader::from_header(inner, header))
    }

    fn from_header(inner: R, (fmt, data_size): (Fmt, Option<u64>)) -> Self {
        let frame = fmt.format.bytes() as u64 * fmt.channels as u64;
        WavReader {
            inner,
            spec: WavSpec {
                sample_rate: fmt.rate,
                channels: fmt.channels,
                format: fmt.format,
                frames: data_size.map(|d| d / frame),
            },
            remaining: data_size,
            claimed: data_size,
            buf: Vec::new(),
            pending: None,
            done: false,
            frames_read: 0,
        }
    }

    pub fn spec(&self) -> &WavSpec {
        &self.spec
    }

    /// Frames handed out so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Appends up to `max_frames` frames to `out` (one Vec per channel) and returns how
    /// many were read; 0 at the end. A stream that ends inside a frame first gives the
    /// whole frames before it, then `Truncated` on the next call.
    pub fn read_frames(
        &mut self,
        out: &mut [Vec<f32>],
        max_frames: usize,
    ) -> Result<usize, AudioError> {
        let ch = self.spec.channels as usize;
        if out.len() != ch {
            return Err(AudioError::Misuse(format!(
                "{} channel buffers given for a {ch}-channel file",
                out.len()
            )));
        }
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Err(e);
        }
        if self.done || max_frames == 0 {
            return Ok(0);
        }
        let frame = self.spec.frame_bytes();
        let mut want = max_frames.min((MAX_READ_BYTES / frame).max(1)) * frame;
        if let Some(rem) = self.remaining {
            want = want.min(usize::try_from(rem).unwrap_or(usize::MAX));
        }
        self.buf.resize(want, 0);
        let got = read_up_to(&mut self.inner, &mut self.buf[..want]).map_err(AudioError::Io)?;
        if let Some(rem) = self.remaining.as_mut() {
            *rem -= got as u64;
        }
        let whole = got / frame;
        let partial = got % frame != 0;
        if got < want {
            // The end of the stream.
            self.done = true;
            if partial {
                self.pending = Some(AudioError::Truncated("in the middle of a sample frame"));
            } else if whole == 0 && self.frames_read == 0 && self.claimed.is_some_and(|c| c > 0) {
                // Nothing at all where the header promised audio: not a short recording.
                self.pending = Some(AudioError::Truncated(
                    "right after the header: the audio data is missing",
                ));
            } else if let Some(rem) = self.remaining.filter(|&r| r > 0) {
                tracing::warn!(
                    "the audio data ends {rem} bytes before the size in the WAV header says; the end of the recording may be missing"
                );
            }
        } else if self.remaining == Some(0) {
            self.done = true;
            if partial {
                // The header's own size is not a whole number of frames: the writer's
                // mistake, and nothing is missing. Drop the stray bytes.
                tracing::warn!(
                    "the WAV data size is not a whole number of frames; ignoring the last {} bytes",
                    got % frame
                );
            }
        }
        decode_into(self.spec.format, &self.buf[..whole * frame], out);
        self.frames_read += whole as u64;
        if whole == 0 {
            if let Some(e) = self.pending.take() {
                return Err(e);
            }
        }
        Ok(whole)
    }

    /// Bytes held by the reader's own buffer: bounded by the largest block asked for
    /// (and never over 1 MiB), whatever the file's length.
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

fn io_error(e: std::io::Error) -> AudioError {
    match e.kind() {
        ErrorKind::NotFound => AudioError::NotFound,
        ErrorKind::IsADirectory => AudioError::IsDirectory,
        _ => AudioError::Io(e),
    }
}

/// Counts bytes read, so `open` knows where the samples start in the file.
struct CountingRead<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads chunks up to the data chunk; returns the format and the data size (None: read to
/// the end).
fn parse_header<R: Read>(r: &mut R) -> Result<(Fmt, Option<u64>), AudioError> {
    let mut riff = [0u8; 12];
    let got = read_up_to(r, &mut riff).map_err(AudioError::Io)?;
    if got == 0 {
        return Err(AudioError::Empty);
    }
    let head = &riff[..got];
    let magic_ok = |m: &[u8; 4]| head.len() >= 4 && &head[..4] == m;
    let is_rf64 = magic_ok(b"RF64");
    if got < 12 {
        let prefix = &head[..got.min(4)];
        if b"RIFF".starts_with(prefix) || b"RF64".starts_with(prefix) {
            return Err(AudioError::Truncated("in the RIFF header"));
        }
        return Err(AudioError::NotWav(sniff(head)));
    }
    if !(magic_ok(b"RIFF") || is_rf64) {
        return Err(AudioError::NotWav(sniff(head)));
    }
    if &riff[8..12] != b"WAVE" {
        return Err(AudioError::NotWav(
            "a RIFF file but not WAVE audio (AVI or similar)",
        ));
    }
    // Where the RIFF chunk says the file ends; None when the size is not meaningful.
    let riff_size = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);
    let riff_end = match riff_size {
        0 | u32::MAX => None,
        _ if is_rf64 => None,
        s => Some(8 + s as u64),
    };
    let mut pos = 12u64;
    let mut fmt: Option<Fmt> = None;
    let mut ds64_data: Option<u64> = None;
    loop {
        let mut hdr = [0u8; 8];
        let n = read_up_to(r, &mut hdr).map_err(AudioError::Io)?;
        pos += n as u64;
        if n == 0 {
            // A clean end between chunks: truncated if the RIFF size promised more.
            let cut = riff_end.is_some_and(|e| pos < e);
            return Err(match (fmt.is_some(), cut) {
                (false, true) => AudioError::Truncated("before the fmt chunk"),
                (true, true) => AudioError::Truncated("before the data chunk"),
                (false, false) => AudioError::MissingChunk("fmt"),
                (true, false) => AudioError::MissingChunk("data"),
            });
        }
        if n < 8 {
            return Err(AudioError::Truncated("in a chunk header"));
        }
        let id = [hdr[0], hdr[1], hdr[2], hdr[3]];
        let size = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        match &id {
            b"fmt " => {
                if !(16..=1024).contains(&size) {
                    return Err(AudioError::BadHeader(format!(
                        "the fmt chunk is {size} bytes long (expected 16 to 40)"
                    )));
                }
                let len = size as usize + (size as usize & 1);
                let mut b = vec![0u8; len];
                let n = read_up_to(r, &mut b).map_err(AudioError::Io)?;
                pos += n as u64;
                if n < size as usize {
                    return Err(AudioError::Truncated("in the fmt chunk"));
                }
                fmt = Some(parse_fmt(&b[..size as usize])?);
            }
            b"ds64" if is_rf64 => {
                // RF64's 64-bit sizes: riff size, data size, sample count, table.
                let len = size as u64 + (size as u64 & 1);
                let mut b = [0u8; 16];
                let want = (len as usize).min(16);
                let n = read_up_to(r, &mut b[..want]).map_err(AudioError::Io)?;
                pos += n as u64;
                if n < want || size < 16 {
                    return Err(AudioError::Truncated("in the ds64 chunk"));
                }
                skip(r, len - 16, &mut pos)?;
                ds64_data = Some(u64::from_le_bytes([
                    b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
                ]));
            }
            b"data" => {
                let Some(fmt) = fmt else {
                    return Err(AudioError::MissingChunk("fmt"));
                };
                let data_size = match size {
                    u32::MAX if ds64_data.is_some() => ds64_data,
                    0 | u32::MAX => None,
                    s => Some(s as u64),
                };
                return Ok((fmt, data_size));
            }
            _ => {
                // LIST, fact, cue, JUNK, ...: skip, with RIFF's pad byte after odd sizes.
                skip(r, size as u64 + (size as u64 & 1), &mut pos)?;
            }
        }
    }
}

fn skip<R: Read>(r: &mut R, n: u64, pos: &mut u64) -> Result<(), AudioError> {
    let got = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(AudioError::Io)?;
    *pos += got;
    if got < n {
        return Err(AudioError::Truncated(
            "inside a chunk before the audio data",
        ));
    }
    Ok(())
}

fn parse_fmt(b: &[u8]) -> Result<Fmt, AudioError> {
    let u16at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let mut tag = u16at(0);
    let channels = u16at(2);
    let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let block_align = u16at(12);
    let bits = u16at(14);
    if tag == WAVE_FORMAT_EXTENSIBLE {
        if b.len() < 40 {
            return Err(AudioError::BadHeader(format!(
                "a WAVE_FORMAT_EXTENSIBLE fmt chunk of {} bytes (needs 40)",
                b.len()
            )));
        }
        // The subformat GUID holds the plain format tag in its first two bytes.
        if b[26..40] != KSDATAFORMAT_TAIL {
            return Err(AudioError::Unsupported { tag, bits });
        }
        tag = u16at(24);
    }
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
        return Err(AudioError::BadHeader("it says 0 channels".into()));
    }
    if channels > MAX_CHANNELS {
        return Err(AudioError::BadHeader(format!(
            "it says {channels} channels (more than {MAX_CHANNELS})"
        )));
    }
    if rate == 0 {
        return Err(AudioError::BadHeader(
            "it says a sample rate of 0 Hz".into(),
        ));
    }
    let frame = format.bytes() * channels as usize;
    if block_align as usize != frame {
        // libsndfile also carries on here: writers get this field wrong more often than
        // the sample layout, which the format and channel count already determine.
        tracing::warn!(
            "WAV block align is {block_align} but {channels} channel(s) of {format} take {frame} bytes; using {frame}"
        );
    }
    Ok(Fmt {
        format,
        channels,
        rate,
    })
}

/// Appends the samples of whole frames in `bytes` to the per-channel vectors. One loop
/// per format, so the format is matched once per block, not once per sample.
fn decode_into(fmt: SampleFormat, bytes: &[u8], out: &mut [Vec<f32>]) {
    match fmt {
        SampleFormat::U8 => deinterleave::<1>(bytes, out, |b| (b[0] as f32 - 128.0) / 128.0),
        SampleFormat::I16 => {
            deinterleave::<2>(bytes, out, |b| i16::from_le_bytes(b) as f32 / 32_768.0)
        }
        SampleFormat::I24 => deinterleave::<3>(bytes, out, |b| {
            (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
        }),
        SampleFormat::I32 => deinterleave::<4>(bytes, out, |b| {
            // Through f64: f32 has too few bits to divide a 32-bit integer exactly.
            (i32::from_le_bytes(b) as f64 / 2_147_483_648.0) as f32
        }),
        SampleFormat::F32 => deinterleave::<4>(bytes, out, |b| clean(f32::from_le_bytes(b))),
        SampleFormat::F64 => deinterleave::<8>(bytes, out, |b| clean(f64::from_le_bytes(b) as f32)),
        SampleFormat::MuLaw => deinterleave::<1>(bytes, out, |b| MULAW[b[0] as usize]),
        SampleFormat::ALaw => deinterleave::<1>(bytes, out, |b| ALAW[b[0] as usize]),
    }
}

/// Float files may hold overs and NaNs; downstream code assumes [-1, 1].
fn clean(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-1.0, 1.0)
    }
}

fn deinterleave<const B: usize>(bytes: &[u8], out: &mut [Vec<f32>], conv: impl Fn([u8; B]) -> f32) {
    let sample = |s: &[u8]| {
        let mut a = [0u8; B];
        a.copy_from_slice(s);
        conv(a)
    };
    if let [mono] = out {
        mono.extend(bytes.chunks_exact(B).map(sample));
        return;
    }
    let ch = out.len();
    let frames = bytes.len() / (B * ch);
    for dst in out.iter_mut() {
        dst.reserve(frames);
    }
    for frame in bytes.chunks_exact(B * ch) {
        for (dst, s) in out.iter_mut().zip(frame.chunks_exact(B)) {
            dst.push(sample(s));
        }
    }
}

/// G.711 μ-law expansion (ITU-T G.711) to 16-bit linear.
pub const fn mulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law expansion (ITU-T G.711) to 16-bit linear.
pub const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

const fn g711_table(mu: bool) -> [f32; 256] {
    let mut t = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        let v = if mu {
            mulaw_to_linear(i as u8)
        } else {
            alaw_to_linear(i as u8)
        };
        t[i] = v as f32 / 32_768.0;
        i += 1;
    }
    t
}

/// G.711 decoded to f32 once, at compile time: decoding is then one lookup per sample.
static MULAW: [f32; 256] = g711_table(true);
static ALAW: [f32; 256] = g711_table(false);

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
fn sniff(head: &[u8]) -> &'static str {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        "it looks like MP3 or AAC"
    } else if starts(b"OggS") {
        "it looks like Ogg (Vorbis or Opus)"
    } else if starts(b"fLaC") {
        "it looks like FLAC"
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        "it looks like MP4/M4A"
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "it looks like WebM/Matroska"
    } else if starts(b"#!AMR") {
        "it looks like AMR"
    } else if starts(b"FORM") {
        "it looks like AIFF"
    } else if starts(b"RIFX") {
        "it is big-endian RIFX, which is not supported"
    } else if starts(b"PK\x03\x04") {
        "it looks like a ZIP archive"
    } else if looks_like_text(head) {
        "it looks like text"
    } else {
        "the first bytes match no audio format"
    }
}

/// Printable UTF-8 (Korean included), allowing a character cut at the end of `head`.
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
}

/// How [`WavWriter`] stores samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFormat {
    /// 16-bit PCM: what recorders and the models' training data use.
    Pcm16,
    /// 32-bit float: keeps intermediate audio exactly.
    F32,
}

/// Writes 16-bit PCM or 32-bit float WAV files: test signals, sample calls, spilled audio.
/// The sizes are patched into the header by [`WavWriter::finish`]; a file left without it
/// (a crash) has data size 0, which [`WavReader`] reads to the end.
pub struct WavWriter<W: Write + Seek> {
    out: W,
    channels: u16,
    format: WriteFormat,
    data_bytes: u64,
    scratch: Vec<u8>,
}

impl WavWriter<BufWriter<File>> {
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: u16,
        format: WriteFormat,
    ) -> Result<Self, AudioError> {
        let f = File::create(path).map_err(AudioError::Write)?;
        WavWriter::new(BufWriter::new(f), sample_rate, channels, format)
    }
}

impl<W: Write + Seek> WavWriter<W> {
    pub fn new(
        mut out: W,
        sample_rate: u32,
        channels: u16,
        format: WriteFormat,
    ) -> Result<Self, AudioError> {
        if channels == 0 || channels > MAX_CHANNELS || sample_rate == 0 {
            return Err(AudioError::Misuse(format!(
                "cannot write a WAV file of {channels} channels at {sample_rate} Hz"
            )));
        }
        let (tag, bits) = match format {
            WriteFormat::Pcm16 => (WAVE_FORMAT_PCM, 16u16),
            WriteFormat::F32 => (WAVE_FORMAT_IEEE_FLOAT, 32u16),
        };
        let block = channels * bits / 8;
        let mut h = Vec::with_capacity(44);
        h.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&tag.to_le_bytes());
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&sample_rate.to_le_bytes());
        h.extend_from_slice(&sample_rate.saturating_mul(block as u32).to_le_bytes());
        h.extend_from_slice(&block.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        h.extend_from_slice(b"data\0\0\0\0");
        out.write_all(&h).map_err(AudioError::Write)?;
        Ok(WavWriter {
            out,
            channels,
            format,
            data_bytes: 0,
            scratch: Vec::new(),
        })
    }

    /// Pushes buffered samples to the file (the header still says size 0 until
    /// [`WavWriter::finish`]; readers then read to the end of the file).
    pub fn flush(&mut self) -> Result<(), AudioError> {
        self.out.flush().map_err(AudioError::Write)
    }

    /// Writes interleaved samples in [-1, 1] (clipped); a whole number of frames.
    pub fn write_interleaved(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        if samples.len() % self.channels as usize != 0 {
            return Err(AudioError::Misuse(format!(
                "{} interleaved samples is not a whole number of {}-channel frames",
                samples.len(),
                self.channels
            )));
        }
        self.scratch.clear();
        for &s in samples {
            let s = clean(s);
            match self.format {
                WriteFormat::F32 => self.scratch.extend_from_slice(&s.to_le_bytes()),
                WriteFormat::Pcm16 => {
                    let v = (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
                    self.scratch.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        self.out
            .write_all(&self.scratch)
            .map_err(AudioError::Write)?;
        self.data_bytes += self.scratch.len() as u64;
        Ok(())
    }

    /// Writes per-channel blocks (as [`WavReader::read_frames`] gives them).
    pub fn write_channels<S: AsRef<[f32]>>(&mut self, chans: &[S]) -> Result<(), AudioError> {
        let n = chans.first().map_or(0, |c| c.as_ref().len());
        if chans.len() != self.channels as usize || chans.iter().any(|c| c.as_ref().len() != n) {
            return Err(AudioError::Misuse(format!(
                "write_channels needs {} channels of equal length",
                self.channels
            )));
        }
        let mut inter = Vec::with_capacity(n * chans.len());
        for i in 0..n {
            inter.extend(chans.iter().map(|c| c.as_ref()[i]));
        }
        self.write_interleaved(&inter)
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        let bytes = match self.format {
            WriteFormat::Pcm16 => 2,
            WriteFormat::F32 => 4,
        };
        self.data_bytes / (bytes * self.channels as u64)
    }

    /// Patches the sizes into the header, flushes, and returns the inner writer. Over
    /// 4 GiB of data the sizes say 0xFFFFFFFF ("unknown"), as streaming writers do.
    pub fn finish(mut self) -> Result<W, AudioError> {
        let data = u32::try_from(self.data_bytes)
            .ok()
            .filter(|&d| d <= u32::MAX - 36)
            .unwrap_or(u32::MAX);
        let riff = if data == u32::MAX {
            u32::MAX
        } else {
            data + 36
        };
        let mut patch = |at: u64, v: u32| -> std::io::Result<()> {
            self.out.seek(SeekFrom::Start(at))?;
            self.out.write_all(&v.to_le_bytes())
        };
        patch(4, riff).map_err(AudioError::Write)?;
        patch(40, data).map_err(AudioError::Write)?;
        self.out.seek(SeekFrom::End(0)).map_err(AudioError::Write)?;
        self.out.flush().map_err(AudioError::Write)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn g711_tables_match_reference_points() {
        // Values of the ITU-T G.711 expansion tables.
        assert_eq!(mulaw_to_linear(0xff), 0);
        assert_eq!(mulaw_to_linear(0x7f), 0);
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
        assert_eq!(mulaw_to_linear(0xf0), 120);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(MULAW[0x80], 32124.0 / 32768.0);
        assert_eq!(ALAW[0x2a], -32256.0 / 32768.0);
    }

    #[test]
    fn writer_reader_round_trip_pcm16_and_float() {
        for format in [WriteFormat::Pcm16, WriteFormat::F32] {
            let mut w = WavWriter::new(Cursor::new(Vec::new()), 8000, 2, format).unwrap();
            let x: Vec<f32> = (0..200).map(|i| ((i as f32) * 0.05).sin() * 0.5).collect();
            w.write_interleaved(&x).unwrap();
            assert_eq!(w.frames(), 100);
            let bytes = w.finish().unwrap().into_inner();
            let mut r = WavReader::new(Cursor::new(bytes)).unwrap();
            assert_eq!(r.spec().sample_rate, 8000);
            assert_eq!(r.spec().frames, Some(100));
            let mut out = vec![Vec::new(), Vec::new()];
            assert_eq!(r.read_frames(&mut out, 1000).unwrap(), 100);
            assert_eq!(r.read_frames(&mut out, 1000).unwrap(), 0);
            for (i, v) in x.iter().enumerate() {
                let got = out[i % 2][i / 2];
                let want = match format {
                    WriteFormat::F32 => *v,
                    WriteFormat::Pcm16 => (v * 32768.0).round() / 32768.0,
                };
                assert_eq!(got, want, "{format:?} sample {i}");
            }
        }
    }

    #[test]
    fn sniff_names_common_formats() {
        assert_eq!(
            sniff(b"ID3\x04\0\0\0\0\0\0\0\0"),
            "it looks like MP3 or AAC"
        );
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), "it looks like MP3 or AAC");
        assert_eq!(
            sniff(b"OggS\0\x02\0\0\0\0\0\0"),
            "it looks like Ogg (Vorbis or Opus)"
        );
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), "it looks like FLAC");
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), "it looks like MP4/M4A");
        assert_eq!(sniff("통화 녹음 메모".as_bytes()), "it looks like text");
        // A Korean character cut by the 12-byte sniff window is still text.
        assert_eq!(sniff(&"안녕하세요".as_bytes()[..11]), "it looks like text");
        assert_eq!(
            sniff(&[0, 1, 2, 3, 200, 201]),
            "the first bytes match no audio format"
        );
    }
}
