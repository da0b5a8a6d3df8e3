//! The segmenter on real speech: espeak-ng Korean sentences placed between silences of
//! known length, with seeded background noise, at two recording levels.

use std::path::Path;
use std::process::Command;

use sangdam::vad::{energy_db, segment_all, Utterance, VadConfig};

const RATE: usize = 16_000;
/// Boundary tolerance: 100 ms.
const TOL: i64 = 1_600;

/// Speaks `text` with espeak-ng and returns 16 kHz mono samples trimmed to the speech
/// itself: first to last sample above 2% of the clip's peak (-34 dB), so the same
/// boundaries hold at every recording level.
fn speak(dir: &Path, text: &str, voice: &str, n: usize) -> Vec<f32> {
    let wav = dir.join(format!("s{n}.wav"));
    let raw = dir.join(format!("s{n}.raw"));
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is needed by this test (scripts/setup installs it)");
    assert!(ok.success());
    let ok = Command::new("sox")
        .arg(&wav)
        .args([
            "-r",
            "16000",
            "-c",
            "1",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-t",
            "raw",
        ])
        .arg(&raw)
        .status()
        .expect("sox is needed by this test (scripts/setup installs it)");
    assert!(ok.success());
    let bytes = std::fs::read(&raw).unwrap();
    let x: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect();
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let first = x.iter().position(|v| v.abs() > 0.02 * peak).unwrap();
    let last = x.iter().rposition(|v| v.abs() > 0.02 * peak).unwrap();
    x[first..=last].to_vec()
}

/// Seeded uniform noise (xorshift).
fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

/// Lays out `clips` after the given silences (seconds); returns the signal and the
/// true (start, end) sample of each clip.
fn layout(
    clips: &[Vec<f32>],
    silences: &[f64],
    gain: f32,
    seed: u64,
) -> (Vec<f32>, Vec<(i64, i64)>) {
    let mut x = Vec::new();
    let mut spans = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        x.extend(std::iter::repeat_n(
            0.0,
            (silences[i] * RATE as f64) as usize,
        ));
        let start = x.len() as i64;
        x.extend(clip.iter().map(|v| v * gain));
        spans.push((start, x.len() as i64));
    }
    x.extend(std::iter::repeat_n(
        0.0,
        (silences[clips.len()] * RATE as f64) as usize,
    ));
    let n = noise(x.len(), 0.002, seed);
    for (v, n) in x.iter_mut().zip(n) {
        *v += n;
    }
    (x, spans)
}

#[test]
fn boundaries_of_espeak_speech_within_100_ms() {
    let dir = tempfile::tempdir().unwrap();
    let clips = vec![
        speak(dir.path(), "카드 한도를 올리고 싶은데요", "ko", 0),
        speak(dir.path(), "네 고객님 확인해 드리겠습니다", "ko+f2", 1),
        speak(dir.path(), "감사합니다", "ko+m3", 2),
    ];
    let cfg = VadConfig::default();
    let pad = (cfg.pad_ms as usize * RATE / 1000) as i64;
    for (gain, seed) in [(1.0f32, 11u64), (0.25, 12)] {
        let (x, spans) = layout(&clips, &[1.0, 0.7, 2.0, 1.0], gain, seed);
        let utts = segment_all(cfg.clone(), &x).unwrap();
        assert_eq!(
            utts.len(),
            spans.len(),
            "gain {gain}: {:?}",
            starts_ends(&utts)
        );
        let mut worst = 0;
        for (u, &(s, e)) in utts.iter().zip(&spans) {
            // The utterance carries `pad` before and after the detected speech.
            let (ds, de) = (u.start as i64 + pad, u.end() as i64 - pad);
            worst = worst.max((ds - s).abs()).max((de - e).abs());
            assert!((ds - s).abs() <= TOL, "gain {gain}: start {ds} vs {s}");
            assert!((de - e).abs() <= TOL, "gain {gain}: end {de} vs {e}");
            assert!(u.samples.len() <= cfg.max_samples);
        }
        eprintln!(
            "gain {gain}: worst boundary error {} ms",
            worst * 1000 / RATE as i64
        );
    }
}

fn starts_ends(u: &[Utterance]) -> Vec<(f64, f64)> {
    u.iter().map(|u| (u.start_secs(), u.end_secs())).collect()
}

#[test]
fn long_speech_is_split_at_a_quiet_point_without_losing_audio() {
    let dir = tempfile::tempdir().unwrap();
    let sentences = [
        "안녕하세요 고객님 무엇을 도와드릴까요",
        "지난달 요금이 두 번 청구되어서 확인하고 싶습니다",
        "카드 한도를 올리고 싶은데 어떻게 해야 하나요",
        "본인 확인을 위해 생년월일을 말씀해 주시겠어요",
        "결제일을 변경하고 싶고 자동이체도 신청하고 싶어요",
        "상담해 주셔서 정말 감사합니다 좋은 하루 보내세요",
        "다음 달부터는 새로운 요금제로 바꿔 주세요",
        "인터넷 속도가 너무 느려서 불편합니다",
    ];
    let mut clips = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        clips.push(speak(dir.path(), s, "ko", i));
    }
    // Gaps of 150 ms: shorter than end_silence, so it is one long stretch of speech.
    let mut silences = vec![0.5];
    silences.extend(std::iter::repeat_n(0.15, clips.len() - 1));
    silences.push(0.5);
    let (x, spans) = layout(&clips, &silences, 1.0, 7);
    let speech = (spans[0].0, spans.last().unwrap().1);
    assert!(
        speech.1 - speech.0 > 246_000,
        "test speech must exceed 15.4 s, is {} samples",
        speech.1 - speech.0
    );
    let cfg = VadConfig::default();
    let utts = segment_all(cfg.clone(), &x).unwrap();
    assert!(utts.len() >= 2, "{:?}", starts_ends(&utts));
    for w in utts.windows(2) {
        // Contiguous: the split loses no sample between the parts.
        assert_eq!(w[0].end(), w[1].start, "{:?}", starts_ends(&utts));
        // The cut is at a quiet point: the frame after the cut is quieter than the
        // median frame of the part before it.
        let frame = cfg.frame_ms as usize * RATE / 1000;
        let cut_energy = energy_db(&w[1].samples[..frame]);
        let mut energies: Vec<f32> = w[0].samples.chunks(frame).map(energy_db).collect();
        energies.sort_by(f32::total_cmp);
        let median = energies[energies.len() / 2];
        assert!(
            cut_energy < median,
            "cut at {cut_energy} dB, median {median} dB"
        );
    }
    for u in &utts {
        assert!(
            u.samples.len() <= cfg.max_samples,
            "{} samples",
            u.samples.len()
        );
    }
    // All speech is covered.
    assert!(utts[0].start as i64 <= speech.0);
    assert!(utts.last().unwrap().end() as i64 >= speech.1);
}
