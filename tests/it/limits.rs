//! Resource limits through `sangdam analyze`: a header that claims 4 GB of data over one
//! second of audio, a 10-hour file (sparse, so it costs no disk), and 64 channels. Each
//! ends in a defined result or a clear error, never an abort. Peak memory for these is
//! measured in RELIABILITY.md, not asserted here.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::support::fixture_models;

fn header(channels: u16, rate: u32, data_bytes: u32, riff_bytes: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff_bytes.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
    h.extend_from_slice(&(channels * 2).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    h
}

fn analyze(root: &Path, file: &Path) -> (Option<i32>, String) {
    let models = fixture_models(root, "model.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_sangdam"))
        .env("SANGDAM_DATA", root.join("data"))
        .env("SANGDAM_MODELS", models)
        .env_remove("RUST_LOG")
        .arg("analyze")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_4gb_claim_over_one_second_is_read_to_the_end_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("claim.wav");
    let mut b = header(1, 8_000, 0xFFFF_FFF0, 0xFFFF_FFFF);
    b.extend(std::iter::repeat_n(0u8, 16_000));
    std::fs::write(&p, b).unwrap();
    let (code, stderr) = analyze(tmp.path(), &p);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("(1.0 s,"), "{stderr}");
}

#[test]
fn a_ten_hour_file_streams_through() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ten-hours.wav");
    let bytes: u32 = 36_000 * 8_000 * 2;
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(&header(1, 8_000, bytes, 36 + bytes)).unwrap();
    f.set_len(44 + bytes as u64).unwrap(); // sparse: ten hours of digital silence
    drop(f);
    let (code, stderr) = analyze(tmp.path(), &p);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("(36000.0 s, 0 utterances)"), "{stderr}");
}

#[test]
fn sixty_four_channels_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("wide.wav");
    let data = 8_000 * 64 * 2;
    let mut b = header(64, 8_000, data, 36 + data);
    b.extend(std::iter::repeat_n(0u8, data as usize));
    std::fs::write(&p, b).unwrap();
    let (code, stderr) = analyze(tmp.path(), &p);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("64 channels") && stderr.contains("sox"),
        "{stderr}"
    );
}
