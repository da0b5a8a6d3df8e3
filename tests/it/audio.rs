//! The audio module from the outside: every WAV encoding read back exactly (hand-made
//! headers and files written by sox), resampling to 16 kHz that keeps pitch, length and
//! timing, every kind of bad input, bounded memory over a two-hour call, and the real
//! clips in ../shared.

use std::f64::consts::PI;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use sangdam::audio::{
    AudioError, CallFile, SampleFormat, WavReader, WavSpec, WavWriter, WriteFormat,
};

// ---------------------------------------------------------------------------------------
// Building WAV files byte by byte.

/// A RIFF chunk: id, size, body, and the pad byte after an odd size.
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = id.to_vec();
    c.extend_from_slice(&(body.len() as u32).to_le_bytes());
    c.extend_from_slice(body);
    if body.len() % 2 == 1 {
        c.push(0);
    }
    c
}

fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
    f.extend_from_slice(b"WAVE");
    f.extend_from_slice(&body);
    f
}

fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let block = channels * bits.div_ceil(8);
    let mut b = Vec::new();
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * block as u32).to_le_bytes());
    b.extend_from_slice(&block.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b
}

/// A plain fmt chunk (16 bytes for PCM, 18 with cbSize = 0 otherwise, as writers do).
fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let mut b = fmt_body(tag, channels, rate, bits);
    if tag != 1 {
        b.extend_from_slice(&0u16.to_le_bytes());
    }
    chunk(b"fmt ", &b)
}

/// A WAVE_FORMAT_EXTENSIBLE fmt chunk whose subformat GUID carries `subtag`.
fn fmt_ext(subtag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let mut b = fmt_body(0xFFFE, channels, rate, bits);
    b.extend_from_slice(&22u16.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes()); // valid bits
    b.extend_from_slice(&3u32.to_le_bytes()); // channel mask: front left, right
    b.extend_from_slice(&subtag.to_le_bytes());
    b.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    chunk(b"fmt ", &b)
}

fn data(bytes: &[u8]) -> Vec<u8> {
    chunk(b"data", bytes)
}

/// Little-endian bytes of 16-bit samples.
fn i16_bytes(v: &[i16]) -> Vec<u8> {
    v.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Reads a whole stream through `read_frames` in small, odd-sized steps.
fn read_all<R: Read>(r: &mut WavReader<R>) -> Result<Vec<Vec<f32>>, AudioError> {
    let mut out = vec![Vec::new(); r.spec().channels as usize];
    while r.read_frames(&mut out, 7)? > 0 {}
    Ok(out)
}

fn read_bytes(bytes: Vec<u8>) -> Result<(WavSpec, Vec<Vec<f32>>), AudioError> {
    let mut r = WavReader::new(Cursor::new(bytes))?;
    let chans = read_all(&mut r)?;
    Ok((r.spec().clone(), chans))
}

/// All 16 kHz output of a call file, per channel.
fn call_samples<R: Read>(mut f: CallFile<R>) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::new(); f.spec().channels as usize];
    while let Some(block) = f.next_block().unwrap() {
        for (o, b) in out.iter_mut().zip(block) {
            o.extend_from_slice(b);
        }
    }
    out
}

fn call_bytes(bytes: Vec<u8>) -> Vec<Vec<f32>> {
    call_samples(CallFile::from_reader(WavReader::new(Cursor::new(bytes)).unwrap()).unwrap())
}

// ---------------------------------------------------------------------------------------
// Signal measurements.

/// Amplitude of the `freq` component (Goertzel), for a sine of amplitude A about A.
fn tone_amplitude(x: &[f32], rate: f64, freq: f64) -> f64 {
    let c = 2.0 * (2.0 * PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = v as f64 + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}

/// Frequency from the rising zero crossings (interpolated between samples).
fn zero_crossing_freq(x: &[f32], rate: f64) -> f64 {
    let mut crossings = Vec::new();
    for i in 1..x.len() {
        let (a, b) = (x[i - 1] as f64, x[i] as f64);
        if a < 0.0 && b >= 0.0 {
            crossings.push(i as f64 - 1.0 + a / (a - b));
        }
    }
    assert!(crossings.len() > 10, "no tone found");
    let span = crossings[crossings.len() - 1] - crossings[0];
    (crossings.len() - 1) as f64 * rate / span
}

/// Index of the first sample whose magnitude reaches `level`.
fn first_above(x: &[f32], level: f32) -> usize {
    x.iter()
        .position(|v| v.abs() >= level)
        .expect("signal never reaches the level")
}

fn peak_index(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if v.abs() > x[best].abs() {
            best = i;
        }
    }
    best
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// A 16-bit WAV of per-channel signals (functions of time in seconds) written with our
/// writer; the samples are quantised to 16 bits.
fn pcm16_wav(rate: u32, frames: usize, signals: &[&dyn Fn(f64) -> f64]) -> Vec<u8> {
    let ch = signals.len() as u16;
    let mut w = WavWriter::new(Cursor::new(Vec::new()), rate, ch, WriteFormat::Pcm16).unwrap();
    let mut inter = Vec::with_capacity(frames * signals.len());
    for i in 0..frames {
        let t = i as f64 / rate as f64;
        inter.extend(signals.iter().map(|s| s(t) as f32));
    }
    w.write_interleaved(&inter).unwrap();
    w.finish().unwrap().into_inner()
}

fn sine(freq: f64, amp: f64, from: f64, to: f64) -> impl Fn(f64) -> f64 {
    move |t| {
        if t >= from && t < to {
            amp * (2.0 * PI * freq * (t - from)).sin()
        } else {
            0.0
        }
    }
}

// ---------------------------------------------------------------------------------------
// Every encoding.

/// Stereo test data for one encoding: channel 0 gets `codes` in order, channel 1 reversed,
/// so a deinterleaving mistake shows.
fn stereo_case(bytes_per_sample: usize, codes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (a, b) in codes.iter().zip(codes.iter().rev()) {
        assert_eq!(a.len(), bytes_per_sample);
        out.extend_from_slice(a);
        out.extend_from_slice(b);
    }
    out
}

#[test]
fn every_encoding_reads_back_exact_values_plain_and_extensible() {
    struct Case {
        tag: u16,
        bits: u16,
        format: SampleFormat,
        codes: Vec<Vec<u8>>,
        want: Vec<f32>,
    }
    let s = 32_768.0f32;
    let cases = [
        Case {
            tag: 1,
            bits: 8,
            format: SampleFormat::U8,
            codes: [0u8, 64, 128, 192, 255].iter().map(|b| vec![*b]).collect(),
            want: vec![-1.0, -0.5, 0.0, 0.5, 127.0 / 128.0],
        },
        Case {
            tag: 1,
            bits: 16,
            format: SampleFormat::I16,
            codes: [i16::MIN, -16_384, 0, 1, i16::MAX]
                .iter()
                .map(|v| v.to_le_bytes().to_vec())
                .collect(),
            want: vec![-1.0, -0.5, 0.0, 1.0 / s, 32_767.0 / s],
        },
        Case {
            tag: 1,
            bits: 24,
            format: SampleFormat::I24,
            codes: [-8_388_608i32, -1, 0, 1, 8_388_607]
                .iter()
                .map(|v| v.to_le_bytes()[..3].to_vec())
                .collect(),
            want: vec![
                -1.0,
                -1.0 / 8_388_608.0,
                0.0,
                1.0 / 8_388_608.0,
                8_388_607.0 / 8_388_608.0,
            ],
        },
        Case {
            tag: 1,
            bits: 32,
            format: SampleFormat::I32,
            codes: [i32::MIN, -65_536, 0, 65_536, 1 << 30]
                .iter()
                .map(|v| v.to_le_bytes().to_vec())
                .collect(),
            want: vec![-1.0, -1.0 / s, 0.0, 1.0 / s, 0.5],
        },
        Case {
            tag: 3,
            bits: 32,
            format: SampleFormat::F32,
            // Overs are clipped and NaN is silenced: downstream code assumes [-1, 1].
            codes: [-1.0f32, -0.25, f32::NAN, 0.3, 1.5]
                .iter()
                .map(|v| v.to_le_bytes().to_vec())
                .collect(),
            want: vec![-1.0, -0.25, 0.0, 0.3, 1.0],
        },
        Case {
            tag: 3,
            bits: 64,
            format: SampleFormat::F64,
            codes: [-1.0f64, 0.125, 1.0 / 3.0, -2.0]
                .iter()
                .map(|v| v.to_le_bytes().to_vec())
                .collect(),
            want: vec![-1.0, 0.125, (1.0f64 / 3.0) as f32, -1.0],
        },
        Case {
            tag: 7,
            bits: 8,
            format: SampleFormat::MuLaw,
            // ITU-T G.711 table values.
            codes: [0x00u8, 0x80, 0xFF, 0x7F, 0xF0, 0x70]
                .iter()
                .map(|b| vec![*b])
                .collect(),
            want: vec![-32_124.0 / s, 32_124.0 / s, 0.0, 0.0, 120.0 / s, -120.0 / s],
        },
        Case {
            tag: 6,
            bits: 8,
            format: SampleFormat::ALaw,
            codes: [0xD5u8, 0x55, 0xAA, 0x2A, 0x80]
                .iter()
                .map(|b| vec![*b])
                .collect(),
            want: vec![8.0 / s, -8.0 / s, 32_256.0 / s, -32_256.0 / s, 5_504.0 / s],
        },
    ];
    for c in &cases {
        let bps = c.format.bytes();
        let payload = stereo_case(bps, &c.codes);
        for extensible in [false, true] {
            let f = if extensible {
                fmt_ext(c.tag, 2, 8_000, c.bits)
            } else {
                fmt(c.tag, 2, 8_000, c.bits)
            };
            let (spec, chans) = read_bytes(riff(&[f, data(&payload)]))
                .unwrap_or_else(|e| panic!("{} ext={extensible}: {e}", c.format));
            assert_eq!(
                spec,
                WavSpec {
                    sample_rate: 8_000,
                    channels: 2,
                    format: c.format,
                    frames: Some(c.codes.len() as u64),
                },
                "{} ext={extensible}",
                c.format
            );
            let rev: Vec<f32> = c.want.iter().rev().copied().collect();
            assert_eq!(chans[0], c.want, "{} ext={extensible}", c.format);
            assert_eq!(chans[1], rev, "{} ext={extensible}", c.format);
        }
    }
}

fn sox(args: &[&str]) {
    let out = Command::new("sox").args(args).output().unwrap_or_else(|e| {
        panic!("this test needs sox (apt-get install sox): cannot run it: {e}")
    });
    assert!(
        out.status.success(),
        "sox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_path(p: &Path) -> (WavSpec, Vec<Vec<f32>>) {
    let mut r = WavReader::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let chans = read_all(&mut r).unwrap();
    (r.spec().clone(), chans)
}

/// Files written by another program (sox: fact chunks, WAVE_FORMAT_EXTENSIBLE for 24/32
/// bits and 3 channels, its own G.711 tables) read as sox itself decodes them.
#[test]
fn files_written_by_sox_decode_as_sox_decodes_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    // A 16-bit stereo reference that reaches full scale at both ends.
    let frames = 4_000;
    let mut inter = Vec::new();
    for i in 0..frames {
        let t = i as f64 / 8_000.0;
        let a = (2.0 * PI * 440.0 * t).sin() * (i as f64 / frames as f64);
        let b = (2.0 * PI * 1_230.0 * t).sin() * 0.3;
        inter.push(if i == 100 { -1.0 } else { a as f32 });
        inter.push(if i == 200 {
            32_767.0 / 32_768.0
        } else {
            b as f32
        });
    }
    let mut w = WavWriter::create(Path::new(&p("ref.wav")), 8_000, 2, WriteFormat::Pcm16).unwrap();
    w.write_interleaved(&inter).unwrap();
    w.finish().unwrap();
    let (_, reference) = read_path(Path::new(&p("ref.wav")));
    assert_eq!(reference[0][100], -1.0);

    let encodings: [(&str, &[&str], SampleFormat, bool); 8] = [
        (
            "u8",
            &["-b", "8", "-e", "unsigned-integer"],
            SampleFormat::U8,
            false,
        ),
        ("s24", &["-b", "24"], SampleFormat::I24, true),
        ("s32", &["-b", "32"], SampleFormat::I32, true),
        (
            "f32",
            &["-e", "floating-point", "-b", "32"],
            SampleFormat::F32,
            true,
        ),
        (
            "f64",
            &["-e", "floating-point", "-b", "64"],
            SampleFormat::F64,
            true,
        ),
        ("ulaw", &["-e", "u-law"], SampleFormat::MuLaw, false),
        ("alaw", &["-e", "a-law"], SampleFormat::ALaw, false),
        ("3ch", &["-c", "3", "-b", "16"], SampleFormat::I16, false),
    ];
    let mut saw_extensible = false;
    for (name, args, format, lossless) in encodings {
        let enc = p(&format!("{name}.wav"));
        let back = p(&format!("{name}-back.wav"));
        let src = p("ref.wav");
        let mut a = vec!["-D", &src[..]];
        a.extend_from_slice(args);
        a.push(&enc);
        sox(&a);
        sox(&["-D", &enc, "-b", "16", "-e", "signed-integer", &back]);
        saw_extensible |= std::fs::read(&enc).unwrap()[20..22] == [0xFE, 0xFF];

        let (spec, ours) = read_path(Path::new(&enc));
        let (_, sox_decoded) = read_path(Path::new(&back));
        assert_eq!(spec.format, format, "{name}");
        assert_eq!(spec.frames, Some(frames as u64), "{name}");
        assert_eq!(ours.len(), sox_decoded.len(), "{name}");
        for (c, (o, s)) in ours.iter().zip(&sox_decoded).enumerate() {
            assert_eq!(o.len(), frames, "{name}");
            assert!(
                o == s,
                "{name} channel {c}: our decoding differs from sox's"
            );
        }
        if lossless {
            assert_eq!(ours, reference, "{name} must keep 16-bit values exactly");
        }
    }
    assert!(saw_extensible, "sox wrote no WAVE_FORMAT_EXTENSIBLE file");
}

#[test]
fn writer_header_bytes_are_pinned() {
    let mut w = WavWriter::new(Cursor::new(Vec::new()), 8_000, 2, WriteFormat::Pcm16).unwrap();
    w.write_channels(&[vec![0.5f32, -1.0], vec![-0.5f32, 1.0]])
        .unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let mut want = b"RIFF".to_vec();
    want.extend_from_slice(&44u32.to_le_bytes()); // 36 + 8 data bytes
    want.extend_from_slice(b"WAVEfmt ");
    want.extend_from_slice(&[16, 0, 0, 0, 1, 0, 2, 0]); // size 16, PCM, 2 channels
    want.extend_from_slice(&8_000u32.to_le_bytes());
    want.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
    want.extend_from_slice(&[4, 0, 16, 0]); // block align 4, 16 bits
    want.extend_from_slice(b"data");
    want.extend_from_slice(&8u32.to_le_bytes());
    // 0.5 -> 16384, -0.5 -> -16384, -1 -> -32768, +1 clips to 32767.
    want.extend_from_slice(&i16_bytes(&[16_384, -16_384, -32_768, 32_767]));
    assert_eq!(bytes, want);

    let mut w = WavWriter::new(Cursor::new(Vec::new()), 16_000, 1, WriteFormat::F32).unwrap();
    w.write_interleaved(&[0.25]).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert_eq!(&bytes[20..22], &[3, 0], "IEEE float tag");
    assert_eq!(&bytes[34..36], &[32, 0], "32 bits");
    assert_eq!(&bytes[44..], &0.25f32.to_le_bytes());
}

// ---------------------------------------------------------------------------------------
// Chunks and sizes that real writers produce.

#[test]
fn unknown_chunks_and_pad_bytes_are_skipped() {
    let pcm = i16_bytes(&[1, 2, 3, 4, 5]);
    let file = riff(&[
        chunk(b"LIST", b"INFOISFT\x03\0\0\0sox"), // odd size: a pad byte follows
        fmt(1, 1, 16_000, 16),
        chunk(b"fact", &5u32.to_le_bytes()),
        chunk(b"JUNK", &[0xAB; 7]),
        data(&pcm),
        chunk(b"LIST", b"trailing chunk, not audio"),
    ]);
    let (spec, chans) = read_bytes(file).unwrap();
    assert_eq!(spec.frames, Some(5));
    assert_eq!(chans[0], [1.0, 2.0, 3.0, 4.0, 5.0].map(|v| v / 32_768.0));
}

/// A data chunk whose size is patched in the header bytes.
fn with_data_size(pcm: &[u8], size: u32) -> Vec<u8> {
    let mut f = riff(&[fmt(1, 2, 8_000, 16), data(pcm)]);
    let at = f.windows(4).position(|w| w == b"data").unwrap() + 4;
    f[at..at + 4].copy_from_slice(&size.to_le_bytes());
    f
}

#[test]
fn streaming_writers_sizes_read_to_the_end() {
    let pcm = i16_bytes(&[10, -10, 20, -20, 30, -30]);
    for size in [0u32, u32::MAX] {
        let (spec, chans) = read_bytes(with_data_size(&pcm, size)).unwrap();
        assert_eq!(spec.frames, None, "size {size:#x}");
        assert_eq!(chans[0].len(), 3, "size {size:#x}");
        assert_eq!(chans[1][2], -30.0 / 32_768.0);
    }
}

#[test]
fn a_size_larger_than_the_file_is_accepted_at_a_frame_boundary_only() {
    let pcm = i16_bytes(&[10, -10, 20, -20, 30, -30]);
    // Ends at a frame boundary: the audio that is there is good.
    let (spec, chans) = read_bytes(with_data_size(&pcm, 4_000)).unwrap();
    assert_eq!(
        spec.frames,
        Some(1_000),
        "the header's claim, from a stream"
    );
    assert_eq!(chans[0].len(), 3);

    // From a file, the spec is corrected to what the file holds.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.wav");
    std::fs::write(&path, with_data_size(&pcm, 4_000)).unwrap();
    let mut r = WavReader::open(&path).unwrap();
    assert_eq!(r.spec().frames, Some(3));
    assert_eq!(read_all(&mut r).unwrap()[1].len(), 3);

    // Ends inside a frame: the whole frames come first, then the truncation.
    let mut cut = with_data_size(&pcm, 4_000);
    cut.extend_from_slice(&[0x11, 0x22]); // half of a stereo frame
    let mut r = WavReader::new(Cursor::new(cut.clone())).unwrap();
    let mut out = vec![Vec::new(), Vec::new()];
    assert_eq!(r.read_frames(&mut out, 100).unwrap(), 3);
    let e = r.read_frames(&mut out, 100).unwrap_err();
    assert!(matches!(e, AudioError::Truncated(_)), "{e:?}");
    assert!(e.to_string().contains("middle of a sample frame"), "{e}");
    assert_eq!(
        r.read_frames(&mut out, 100).unwrap(),
        0,
        "over after the error"
    );
    std::fs::write(&path, cut).unwrap();
    let mut f = CallFile::open(&path).unwrap();
    let e = loop {
        match f.next_block() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a cut frame must be reported"),
            Err(e) => break e,
        }
    };
    assert!(matches!(e, AudioError::Truncated(_)), "{e:?}");

    // A header size that is not a whole number of frames, with nothing missing: the
    // writer's mistake, the stray bytes are dropped.
    let mut odd = pcm.clone();
    odd.push(0x7F);
    let (_, chans) = read_bytes(riff(&[fmt(1, 2, 8_000, 16), data(&odd)])).unwrap();
    assert_eq!(chans[0].len(), 3);
}

// ---------------------------------------------------------------------------------------
// Bad input.

fn good_wav() -> Vec<u8> {
    riff(&[
        fmt(1, 2, 8_000, 16),
        data(&i16_bytes(&[100, -100, 200, -200, 300, -300, 400, -400])),
    ])
}

/// Opens `bytes` as a file through `CallFile::open` and reads it to the end.
fn open_error(dir: &Path, name: &str, bytes: &[u8]) -> AudioError {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    open_path_error(&path)
}

fn open_path_error(path: &Path) -> AudioError {
    let mut f = match CallFile::open(path) {
        Ok(f) => f,
        Err(e) => return e,
    };
    loop {
        match f.next_block() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("{}: read without error", path.display()),
            Err(e) => return e,
        }
    }
}

fn assert_msg(e: &AudioError, parts: &[&str]) {
    let m = e.to_string();
    assert!(!m.contains('\n'), "one line: {m}");
    for p in parts {
        assert!(m.contains(p), "expected {p:?} in: {m}");
    }
}

#[test]
fn bad_headers_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = good_wav();

    let mut b = good.clone();
    b[..4].copy_from_slice(b"RIFX");
    let e = open_error(d, "rifx.wav", &b);
    assert!(matches!(e, AudioError::NotWav(_)), "{e:?}");
    assert_msg(&e, &["not a WAV file", "RIFX", "sox"]);

    let mut b = good.clone();
    b[8..12].copy_from_slice(b"AVI ");
    let e = open_error(d, "avi.wav", &b);
    assert!(matches!(e, AudioError::NotWav(_)), "{e:?}");
    assert_msg(&e, &["not WAVE"]);

    let mut b = good.clone();
    b[16..20].copy_from_slice(&8u32.to_le_bytes()); // fmt chunk of 8 bytes
    let e = open_error(d, "fmtsize.wav", &b);
    assert!(matches!(e, AudioError::BadHeader(_)), "{e:?}");
    assert_msg(&e, &["damaged", "fmt chunk is 8 bytes"]);

    let mut b = good.clone();
    b[22..24].copy_from_slice(&0u16.to_le_bytes());
    let e = open_error(d, "nochan.wav", &b);
    assert!(matches!(e, AudioError::BadHeader(_)), "{e:?}");
    assert_msg(&e, &["0 channels"]);

    let mut b = good.clone();
    b[22..24].copy_from_slice(&300u16.to_le_bytes());
    let e = open_error(d, "manychan.wav", &b);
    assert!(matches!(e, AudioError::BadHeader(_)), "{e:?}");
    assert_msg(&e, &["300 channels"]);

    let mut b = good.clone();
    b[24..28].copy_from_slice(&0u32.to_le_bytes());
    let e = open_error(d, "norate.wav", &b);
    assert!(matches!(e, AudioError::BadHeader(_)), "{e:?}");
    assert_msg(&e, &["sample rate of 0 Hz"]);

    let e = open_error(d, "nodata.wav", &riff(&[fmt(1, 1, 8_000, 16)]));
    assert!(matches!(e, AudioError::MissingChunk("data")), "{e:?}");
    assert_msg(&e, &["no data chunk"]);

    let e = open_error(
        d,
        "nofmt.wav",
        &riff(&[chunk(b"LIST", b"ab"), data(&[0, 0])]),
    );
    assert!(matches!(e, AudioError::MissingChunk("fmt")), "{e:?}");
    assert_msg(&e, &["no fmt chunk"]);
}

#[test]
fn truncated_files_say_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = good_wav();
    for (name, len, place) in [
        ("riff8.wav", 8, "in the RIFF header"),
        ("fmt30.wav", 30, "in the fmt chunk"),
        ("chunkhdr.wav", 40, "in a chunk header"),
        ("header-only.wav", 44, "audio data is missing"),
        ("half-frame.wav", 46, "middle of a sample frame"),
        ("frame-and-a-half.wav", 50, "middle of a sample frame"),
    ] {
        let e = open_error(d, name, &good[..len]);
        assert!(matches!(e, AudioError::Truncated(_)), "{name}: {e:?}");
        assert_msg(&e, &["truncated", place, "copy it again"]);
    }
    // The RIFF size says more chunks follow the fmt chunk, but the file ends.
    let mut b = riff(&[fmt(1, 1, 8_000, 16)]);
    b[4..8].copy_from_slice(&1_000u32.to_le_bytes());
    let e = open_error(d, "cut-before-data.wav", &b);
    assert!(matches!(e, AudioError::Truncated(_)), "{e:?}");
    assert_msg(&e, &["before the data chunk"]);
}

#[test]
fn unsupported_encodings_name_the_format_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let payload = [0u8; 64];
    for (name, f, tag, bits, words) in [
        ("adpcm.wav", fmt(2, 1, 8_000, 4), 2u16, 4u16, "MS ADPCM"),
        ("gsm.wav", fmt(0x31, 1, 8_000, 0), 0x31, 0, "GSM 6.10"),
        ("pcm12.wav", fmt(1, 1, 8_000, 12), 1, 12, "PCM"),
        ("float16.wav", fmt(3, 1, 8_000, 16), 3, 16, "IEEE float"),
        ("ext-adpcm.wav", fmt_ext(2, 2, 8_000, 4), 2, 4, "MS ADPCM"),
    ] {
        let e = open_error(d, name, &riff(&[f, data(&payload)]));
        match e {
            AudioError::Unsupported { tag: t, bits: b } => {
                assert_eq!((t, b), (tag, bits), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_msg(
            &e,
            &[
                "unsupported WAV encoding",
                &format!("format tag {tag} ({words}), {bits} bits"),
                "convert with: sox in.wav -b 16 -e signed-integer out.wav",
            ],
        );
    }
    // An extensible file whose subformat GUID is not a plain format tag.
    let mut f = fmt_ext(1, 1, 8_000, 16);
    let n = f.len();
    f[n - 1] ^= 0xFF;
    let e = open_error(d, "ext-guid.wav", &riff(&[f, data(&payload)]));
    assert!(
        matches!(
            e,
            AudioError::Unsupported {
                tag: 0xFFFE,
                bits: 16
            }
        ),
        "{e:?}"
    );
    assert_msg(&e, &["extensible with an unknown subformat"]);
}

#[test]
fn files_that_are_not_wav_say_what_they_look_like() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let e = open_error(d, "empty.wav", &[]);
    assert!(matches!(e, AudioError::Empty), "{e:?}");
    assert_msg(&e, &["empty (0 bytes)"]);

    let e = open_error(d, "notes.wav", b"this is a text file, not audio\n");
    assert!(
        matches!(e, AudioError::NotWav("it looks like text")),
        "{e:?}"
    );
    assert_msg(&e, &["not a WAV file (it looks like text)"]);

    let e = open_error(d, "memo.wav", "고객 통화 메모입니다".as_bytes());
    assert!(
        matches!(e, AudioError::NotWav("it looks like text")),
        "{e:?}"
    );

    let mut mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x21".to_vec();
    mp3.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0]);
    let e = open_error(d, "song.wav", &mp3);
    assert_msg(&e, &["not a WAV file (it looks like MP3"]);
    let e = open_error(
        d,
        "bare.wav",
        &[0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_msg(&e, &["MP3"]);

    let e = open_error(
        d,
        "call.ogg.wav",
        b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
    );
    assert_msg(&e, &["Ogg"]);
    let e = open_error(d, "call.flac.wav", b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00");
    assert_msg(&e, &["FLAC"]);

    let e = open_path_error(&d.join("does-not-exist.wav"));
    assert!(matches!(e, AudioError::NotFound), "{e:?}");
    assert_msg(&e, &["does not exist", "check the path"]);
    let e = WavReader::open(&d.join("does-not-exist.wav"))
        .err()
        .unwrap();
    assert!(matches!(e, AudioError::NotFound), "{e:?}");

    let e = open_path_error(d);
    assert!(matches!(e, AudioError::IsDirectory), "{e:?}");
    assert_msg(&e, &["directory"]);
}

#[test]
fn calls_must_be_mono_or_stereo_at_a_plausible_rate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let four = riff(&[fmt(1, 4, 8_000, 16), data(&[0u8; 16])]);
    // The reader itself takes up to 64 channels...
    let (spec, chans) = read_bytes(four.clone()).unwrap();
    assert_eq!((spec.channels, chans.len(), chans[3].len()), (4, 4, 2));
    // ...but a call is one or two sides.
    let e = open_error(d, "four.wav", &four);
    assert!(matches!(e, AudioError::TooManyChannels(4)), "{e:?}");
    assert_msg(
        &e,
        &[
            "4 channels",
            "mono or two channels (agent, customer)",
            "sox in.wav out.wav remix 1 2",
        ],
    );
    for rate in [2_000u32, 3_999, 192_001, 1_000_000] {
        let e = open_error(
            d,
            "rate.wav",
            &riff(&[fmt(1, 1, rate, 16), data(&[0u8; 4])]),
        );
        assert!(matches!(e, AudioError::BadRate(r) if r == rate), "{e:?}");
        assert_msg(&e, &[&format!("{rate} Hz"), "4000..=192000"]);
    }
}

// ---------------------------------------------------------------------------------------
// Resampling to 16 kHz.

/// A 1 kHz tone from 0.5 s to 2.0 s in a 2.5 s file at `rate`, through `CallFile`: the
/// pitch, the length and the onset time survive resampling, and no image appears.
fn check_tone_through(rate: u32) {
    let frames = (rate as usize * 5).div_ceil(2);
    let out = call_bytes(pcm16_wav(rate, frames, &[&sine(1_000.0, 0.5, 0.5, 2.0)]));
    let y = &out[0];
    let want_len = (frames as f64 * 16_000.0 / rate as f64).round() as usize;
    assert!(
        (y.len() as i64 - want_len as i64).abs() <= 1,
        "{rate} Hz: {} frames, expected {want_len}",
        y.len()
    );
    // Pitch, in the steady part.
    let steady = &y[12_000..28_000];
    let f = zero_crossing_freq(steady, 16_000.0);
    assert!((f - 1_000.0).abs() < 0.1, "{rate} Hz: tone at {f} Hz");
    let a = tone_amplitude(steady, 16_000.0, 1_000.0);
    assert!((a - 0.5).abs() < 0.01, "{rate} Hz: amplitude {a}");
    // Nothing else: the upsampling image (8 kHz - 1 kHz = 7 kHz) and aliases stay far down.
    for other in [500.0, 3_000.0, 7_000.0] {
        let r = tone_amplitude(steady, 16_000.0, other) / a;
        assert!(db(r) < -60.0, "{rate} Hz: {other} Hz at {:.1} dB", db(r));
    }
    // Timing: the tone starts at 0.5 s = sample 8000 and stops at 2.0 s = 32000, within
    // 1 ms (16 samples).
    let on = first_above(y, 0.25);
    assert!((on as i64 - 8_000).abs() <= 16, "{rate} Hz: onset at {on}");
    let off = y.len() - first_above(&y.iter().rev().copied().collect::<Vec<_>>(), 0.25);
    assert!(
        (off as i64 - 32_000).abs() <= 16,
        "{rate} Hz: tone ends at {off}"
    );
    // Silence before the onset stays (nearly) silent: no early leak of the tone.
    let pre = y[..7_900].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(pre < 1e-3, "{rate} Hz: {pre} before the tone");
}

#[test]
fn telephone_8khz_is_upsampled_keeping_pitch_length_and_timing() {
    check_tone_through(8_000);
}

#[test]
fn cd_and_studio_rates_are_downsampled_keeping_pitch_length_and_timing() {
    check_tone_through(44_100);
    check_tone_through(48_000);
    check_tone_through(11_025);
}

#[test]
fn a_click_lands_on_the_right_16khz_sample() {
    for rate in [8_000u32, 22_050, 44_100, 48_000] {
        let frames = rate as usize * 2;
        // A click at 1.2345 s (snapped to the input grid).
        let at = (1.2345 * rate as f64).round() as usize;
        let mut pcm = vec![0i16; frames];
        pcm[at] = 30_000;
        let out = call_bytes(riff(&[fmt(1, 1, rate, 16), data(&i16_bytes(&pcm))]));
        let want = at as f64 * 16_000.0 / rate as f64;
        let got = peak_index(&out[0]);
        // The nearest 16 kHz sample: no delay left over, no drift.
        assert!(
            (got as f64 - want).abs() <= 0.5,
            "{rate} Hz: click at {got}, expected {want:.2}"
        );
    }
}

#[test]
fn sixteen_khz_passes_through_bit_exact() {
    let pcm: Vec<i16> = (0..20_000)
        .map(|i| ((i * 7919) % 65_536 - 32_768) as i16)
        .collect();
    let out = call_bytes(riff(&[fmt(1, 1, 16_000, 16), data(&i16_bytes(&pcm))]));
    let want: Vec<f32> = pcm.iter().map(|&v| v as f32 / 32_768.0).collect();
    assert_eq!(out[0], want);
}

#[test]
fn stereo_sides_stay_apart() {
    for rate in [8_000u32, 48_000] {
        let frames = rate as usize * 2;
        let bytes = pcm16_wav(
            rate,
            frames,
            &[&sine(500.0, 0.4, 0.0, 9.0), &sine(1_500.0, 0.4, 0.0, 9.0)],
        );
        let out = call_bytes(bytes);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 32_000);
        assert_eq!(out[1].len(), 32_000);
        let (l, r) = (&out[0][4_000..28_000], &out[1][4_000..28_000]);
        let l_own = tone_amplitude(l, 16_000.0, 500.0);
        let r_own = tone_amplitude(r, 16_000.0, 1_500.0);
        assert!((l_own - 0.4).abs() < 0.01 && (r_own - 0.4).abs() < 0.01);
        let l_leak = db(tone_amplitude(l, 16_000.0, 1_500.0) / l_own);
        let r_leak = db(tone_amplitude(r, 16_000.0, 500.0) / r_own);
        assert!(
            l_leak < -80.0,
            "{rate} Hz: right tone in left at {l_leak:.1} dB"
        );
        assert!(
            r_leak < -80.0,
            "{rate} Hz: left tone in right at {r_leak:.1} dB"
        );
    }
}

#[test]
fn g711_telephone_recording_reaches_16khz() {
    // A typical PBX export: 8 kHz mono mu-law with a fact chunk.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.wav");
    let ulaw = dir.path().join("ulaw.wav");
    std::fs::write(
        &src,
        pcm16_wav(8_000, 8_000, &[&sine(1_000.0, 0.5, 0.0, 9.0)]),
    )
    .unwrap();
    sox(&[
        "-D",
        src.to_str().unwrap(),
        "-e",
        "u-law",
        ulaw.to_str().unwrap(),
    ]);
    let f = CallFile::open(&ulaw).unwrap();
    assert_eq!(f.spec().format, SampleFormat::MuLaw);
    assert_eq!(f.spec().duration_secs(), Some(1.0));
    let y = &call_samples(f)[0];
    assert_eq!(y.len(), 16_000);
    let f = zero_crossing_freq(&y[2_000..14_000], 16_000.0);
    assert!((f - 1_000.0).abs() < 0.5, "tone at {f} Hz");
}

// ---------------------------------------------------------------------------------------
// Bounded memory over a long call.

/// A long 8 kHz stereo 16-bit WAV produced on the fly: no file, no big buffer. Left is a
/// 500 Hz tone, right a 1500 Hz tone (whole periods per second, so one second repeats).
struct LongCall {
    header: Vec<u8>,
    second: Vec<u8>,
    data_len: u64,
    pos: u64,
}

impl LongCall {
    fn new(seconds: u64) -> Self {
        let data_len = seconds * 8_000 * 4;
        let mut header = riff(&[fmt(1, 2, 8_000, 16)]);
        header.extend_from_slice(b"data");
        header.extend_from_slice(&(data_len as u32).to_le_bytes());
        let riff_size = (header.len() as u64 - 8 + data_len) as u32;
        header[4..8].copy_from_slice(&riff_size.to_le_bytes());
        let mut second = Vec::with_capacity(32_000);
        for i in 0..8_000 {
            let t = i as f64 / 8_000.0;
            for f in [500.0, 1_500.0] {
                let v = (0.4 * (2.0 * PI * f * t).sin() * 32_768.0).round() as i16;
                second.extend_from_slice(&v.to_le_bytes());
            }
        }
        LongCall {
            header,
            second,
            data_len,
            pos: 0,
        }
    }
}

impl Read for LongCall {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let h = self.header.len() as u64;
        let n = if self.pos < h {
            let src = &self.header[self.pos as usize..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            n
        } else {
            let d = self.pos - h;
            if d >= self.data_len {
                return Ok(0);
            }
            let i = (d % self.second.len() as u64) as usize;
            let n = buf
                .len()
                .min(self.second.len() - i)
                .min((self.data_len - d) as usize);
            buf[..n].copy_from_slice(&self.second[i..i + n]);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// Streams `seconds` of a call through the reader and the resampler and checks that no
/// buffer grows after the first minute: a Vec that grew with the file would change
/// capacity again and again over the call.
fn check_bounded_memory(seconds: u64) {
    let reader = WavReader::new(LongCall::new(seconds)).unwrap();
    assert_eq!(reader.spec().frames, Some(seconds * 8_000));
    let mut f = CallFile::from_reader(reader).unwrap();
    let start = f.buffered_capacity();
    let mut after_a_minute = None;
    let mut most = start;
    let mut blocks = 0u64;
    let mut last = (Vec::new(), Vec::new());
    while let Some(b) = f.next_block().unwrap() {
        blocks += 1;
        if b[0].len() >= 4_000 {
            last = (b[0][..4_000].to_vec(), b[1][..4_000].to_vec());
        }
        let cap = f.buffered_capacity();
        most = most.max(cap);
        let out = f.frames_out();
        match after_a_minute {
            None if out >= 60 * 16_000 => after_a_minute = Some(cap),
            Some(c) => assert_eq!(
                cap,
                c,
                "buffers grew after {:.0} s of audio",
                f.seconds_out()
            ),
            None => {}
        }
    }
    // All of it in, exactly as long out, in ~0.5 s blocks.
    assert_eq!(f.frames_in(), seconds * 8_000);
    assert_eq!(f.frames_out(), seconds * 16_000);
    assert!(blocks >= seconds * 2 - 2, "{blocks} blocks");
    // The buffers hold about a second of audio (two hours are 2 x 115 million samples).
    assert!(most < 200_000, "buffers reached {most}");
    assert!(after_a_minute.is_some());
    // Still the right signal at the very end.
    let l = tone_amplitude(&last.0, 16_000.0, 500.0);
    let r = tone_amplitude(&last.1, 16_000.0, 1_500.0);
    assert!((l - 0.4).abs() < 0.02 && (r - 0.4).abs() < 0.02, "{l} {r}");
}

#[test]
fn a_long_call_streams_in_bounded_memory() {
    // Ten minutes: long enough that any per-block growth shows many times over.
    check_bounded_memory(10 * 60);
}

/// The full two hours (about 7 s with the dev profile's opt-level 1).
#[test]
fn a_two_hour_call_streams_in_bounded_memory() {
    check_bounded_memory(2 * 3600);
}

// ---------------------------------------------------------------------------------------
// Real recordings.

fn shared(p: &str) -> PathBuf {
    let path = PathBuf::from("../shared").join(p);
    assert!(
        path.is_file(),
        "{} is missing (the tests need ../shared next to the checkout)",
        path.display()
    );
    path
}

#[test]
fn real_korean_clip_reads_as_recorded() {
    let path = shared("data/speech-real/leopard-ko.wav");
    let f = CallFile::open(&path).unwrap();
    assert_eq!(
        f.spec(),
        &WavSpec {
            sample_rate: 16_000,
            channels: 1,
            format: SampleFormat::I16,
            frames: Some(62_208),
        }
    );
    let y = call_samples(f).remove(0);
    assert_eq!(y.len(), 62_208);
    // int16 / 32768 exactly, as soundfile gives them: the first samples are 0, 1, -3, 5.
    assert_eq!(
        &y[..4],
        &[0.0, 1.0 / 32_768.0, -3.0 / 32_768.0, 5.0 / 32_768.0]
    );
    let bytes = std::fs::read(&path).unwrap();
    let raw: Vec<f32> = bytes[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32_768.0)
        .collect();
    assert_eq!(y, raw);
}

#[test]
fn conformance_fixture_utterance_has_the_reference_length() {
    let dir = shared("fixtures/wav2vec2-hf-tiny/fixture.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dir).unwrap()).unwrap();
    let want = json["cases"][0]["samples"].as_u64().unwrap();
    assert_eq!(json["cases"][0]["name"], "utt0");
    assert_eq!(want, 38_928);
    let f = CallFile::open(&shared("fixtures/wav2vec2-hf-tiny/utt0.wav")).unwrap();
    assert_eq!(f.spec().sample_rate, 16_000);
    assert_eq!(f.spec().channels, 1);
    assert_eq!(f.spec().frames, Some(want));
    let y = call_samples(f).remove(0);
    assert_eq!(y.len() as u64, want);
    assert!(y.iter().all(|v| (-1.0..1.0).contains(v)));
    assert!(
        y.iter().any(|v| v.abs() > 0.05),
        "utt0 is speech, not silence"
    );
}
