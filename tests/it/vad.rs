//! The segmenter on real speech: espeak-ng Korean sentences placed between silences of
//! known length, with seeded line noise, at different recording levels.

use std::path::Path;
use std::process::Command;

use sangdam::vad::{energy_db, segment_all, Segmenter, Utterance, VadConfig};

const RATE: usize = 16_000;
/// Boundary tolerance: 100 ms.
const TOL: i64 = 1_600;

/// Runs `program`, failing the test with a message that says what to install.
fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| {
        panic!("{program} is needed by the vad tests and could not be run ({e}): install it (scripts/setup does)")
    });
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

/// Speaks `text` with espeak-ng and returns it as 16 kHz mono samples, trimmed to the
/// speech itself: from the first to the last sample above 2% of the clip's peak
/// (-34 dB), a threshold relative to the clip so the same span holds at every level.
fn speak(dir: &Path, text: &str, voice: &str) -> Vec<f32> {
    let wav = dir.join("speech.wav");
    let raw = dir.join("speech.raw");
    let (wav_s, raw_s) = (wav.to_str().unwrap(), raw.to_str().unwrap());
    run("espeak-ng", &["-v", voice, "-w", wav_s, text]);
    // espeak-ng writes 22050 Hz s16; sox resamples and writes headerless s16le.
    run(
        "sox",
        &[
            wav_s,
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
            raw_s,
        ],
    );
    let bytes = std::fs::read(&raw).unwrap();
    let x: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        peak > 0.1,
        "espeak-ng produced no audible speech for {text:?}"
    );
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

/// A recording: `clips` after the given silences (seconds, one more than the clips, the
/// last after the last clip), line noise of amplitude `noise_amp` over all of it, and
/// the whole scaled by `gain` (the recording level). Returns the signal and the true
/// (start, end) sample of each clip.
fn record(
    clips: &[Vec<f32>],
    silences: &[f64],
    noise_amp: f32,
    gain: f32,
    seed: u64,
) -> (Vec<f32>, Vec<(i64, i64)>) {
    assert_eq!(silences.len(), clips.len() + 1);
    let gap = |s: f64| std::iter::repeat_n(0.0, (s * RATE as f64).round() as usize);
    let mut x = Vec::new();
    let mut spans = Vec::new();
    for (clip, &silence) in clips.iter().zip(silences) {
        x.extend(gap(silence));
        let start = x.len() as i64;
        x.extend(clip);
        spans.push((start, x.len() as i64));
    }
    x.extend(gap(silences[clips.len()]));
    let line = noise(x.len(), noise_amp, seed);
    for (v, n) in x.iter_mut().zip(line) {
        *v = (*v + n) * gain;
    }
    (x, spans)
}

fn spans_secs(u: &[Utterance]) -> Vec<(f64, f64)> {
    u.iter().map(|u| (u.start_secs(), u.end_secs())).collect()
}

#[test]
fn espeak_utterances_are_found_within_100_ms_at_any_level() {
    let dir = tempfile::tempdir().unwrap();
    let clips = [
        speak(dir.path(), "카드 한도를 올리고 싶은데요", "ko"),
        speak(dir.path(), "네 고객님 확인해 드리겠습니다", "ko+f2"),
        speak(dir.path(), "감사합니다", "ko+m3"),
    ];
    let cfg = VadConfig::default();
    let pad = i64::from(cfg.pad_ms) * RATE as i64 / 1000;
    // (line noise amplitude, recording gain): a quiet line at full level; the same 14 dB
    // down (its noise then below the floor's lower bound); a hissy line (-45 dBFS).
    for (noise_amp, gain, seed) in [(0.003f32, 1.0f32, 11u64), (0.003, 0.2, 12), (0.01, 1.0, 13)] {
        let (x, spans) = record(&clips, &[1.0, 0.7, 2.0, 1.0], noise_amp, gain, seed);
        let utts = segment_all(cfg.clone(), &x).unwrap();
        let ctx = format!("noise {noise_amp} gain {gain}: {:?}", spans_secs(&utts));
        assert_eq!(utts.len(), spans.len(), "{ctx}");
        let mut worst = 0;
        for (u, &(s, e)) in utts.iter().zip(&spans) {
            // Each utterance is the detected speech plus `pad` on both sides (the
            // silences here are all longer than end_silence_ms + pad_ms, so the padding
            // is whole), and its samples are the recording's, unchanged.
            let (ds, de) = (u.start as i64 + pad, u.end() as i64 - pad);
            worst = worst.max((ds - s).abs()).max((de - e).abs());
            assert!(
                (ds - s).abs() <= TOL,
                "{ctx}: speech starts {ds}, truly {s}"
            );
            assert!((de - e).abs() <= TOL, "{ctx}: speech ends {de}, truly {e}");
            assert_eq!(u.samples, x[u.start as usize..u.end() as usize], "{ctx}");
        }
        eprintln!(
            "noise {noise_amp} gain {gain}: worst boundary error {} ms",
            worst * 1000 / RATE as i64
        );
    }
}

#[test]
fn espeak_speech_from_sample_0_to_the_end_is_flushed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let clip = speak(dir.path(), "여보세요 들리세요", "ko");
    let (x, _) = record(&[clip], &[0.0, 0.0], 0.003, 1.0, 5);
    let mut seg = Segmenter::new(VadConfig::default()).unwrap();
    for f in x.chunks(seg.frame_len()) {
        assert!(
            seg.push(f).is_none(),
            "the speech runs to the end of the stream"
        );
    }
    let u = seg.finish().expect("finish flushes the speech");
    assert!(seg.finish().is_none());
    // No padding before sample 0 and none invented past the end.
    assert_eq!((u.start, u.samples.len()), (0, x.len()));
}

#[test]
fn long_espeak_speech_is_split_at_a_quiet_point_without_losing_audio() {
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
    let clips: Vec<Vec<f32>> = sentences
        .iter()
        .map(|s| speak(dir.path(), s, "ko"))
        .collect();
    // Gaps of 150 ms, shorter than end_silence_ms: one long stretch of speech.
    let mut silences = vec![0.5];
    silences.extend(std::iter::repeat_n(0.15, clips.len() - 1));
    silences.push(0.5);
    let (x, spans) = record(&clips, &silences, 0.003, 1.0, 7);
    let speech = (spans[0].0 as u64, spans[clips.len() - 1].1 as u64);
    let cfg = VadConfig::default();
    assert!(
        speech.1 - speech.0 > cfg.max_samples as u64,
        "the test speech must be longer than 15.4 s, is {} samples",
        speech.1 - speech.0
    );
    let utts = segment_all(cfg.clone(), &x).unwrap();
    let ctx = format!("{:?}", spans_secs(&utts));
    assert!(utts.len() >= 2, "{ctx}");
    // The parts cover the whole speech and tile it: no sample lost or repeated at a cut.
    assert!(utts[0].start <= speech.0, "{ctx}");
    assert!(utts[utts.len() - 1].end() >= speech.1, "{ctx}");
    let frame = cfg.frame_ms as usize * RATE / 1000;
    for w in utts.windows(2) {
        assert_eq!(w[0].end(), w[1].start, "{ctx}");
        // The cut is at a quiet point: the frame after it is quieter than the median
        // frame of the utterance it ends.
        let at_cut = energy_db(&w[1].samples[..frame]);
        let mut levels: Vec<f32> = w[0].samples.chunks(frame).map(energy_db).collect();
        levels.sort_by(f32::total_cmp);
        let median = levels[levels.len() / 2];
        assert!(
            at_cut < median,
            "cut at {at_cut} dB, median {median} dB; {ctx}"
        );
    }
    for u in &utts {
        assert!(u.samples.len() <= cfg.max_samples, "{ctx}");
        assert_eq!(u.samples, x[u.start as usize..u.end() as usize]);
    }
}
