use super::*;

/// Seeded uniform noise (xorshift), so tests need no crate and repeat exactly.
fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
    let mut s = seed.max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

fn tone(n: usize, hz: f32, amp: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * std::f32::consts::TAU * hz / 16_000.0).sin() * amp)
        .collect()
}

/// A 300 Hz tone burst of `n` samples with 5 ms raised-cosine edges, so it starts and
/// stops like a sound rather than a step.
fn burst(n: usize, amp: f32) -> Vec<f32> {
    const EDGE: usize = 80;
    tone(n, 300.0, amp)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let from_edge = i.min(n - 1 - i);
            if from_edge < EDGE {
                let r = (from_edge as f32 + 0.5) / EDGE as f32;
                v * (r * std::f32::consts::FRAC_PI_2).sin().powi(2)
            } else {
                v
            }
        })
        .collect()
}

/// Samples in a syllable half: 120 ms, six 20 ms frames, so boundaries are frame-aligned.
const HALF: usize = 1_920;

/// `halves` alternating loud and 34 dB quieter stretches of 120 ms, starting loud, like
/// syllables. An odd count also ends loud, so the speech is exactly the whole signal.
fn syllables(halves: usize, amp: f32) -> Vec<f32> {
    let loud = burst(HALF, amp);
    let quiet = tone(HALF, 300.0, amp * 0.02);
    (0..halves)
        .flat_map(|h| {
            if h % 2 == 0 {
                loud.clone()
            } else {
                quiet.clone()
            }
        })
        .collect()
}

fn add(x: &mut [f32], at: usize, y: &[f32]) {
    for (a, b) in x[at..].iter_mut().zip(y) {
        *a += b;
    }
}

fn spans(u: &[Utterance]) -> Vec<(u64, u64)> {
    u.iter().map(|u| (u.start, u.end())).collect()
}

#[test]
fn silence_and_noise_give_nothing() {
    let cfg = VadConfig::default();
    assert!(segment_all(cfg.clone(), &[0.0; 48_000]).unwrap().is_empty());
    for amp in [0.0005, 0.01, 0.1] {
        let u = segment_all(cfg.clone(), &noise(160_000, amp, 3)).unwrap();
        assert!(u.is_empty(), "noise {amp}: {:?}", spans(&u));
    }
}

#[test]
fn click_of_100_ms_is_dropped_and_300_ms_is_kept() {
    let mut x = noise(48_000, 0.001, 5);
    add(&mut x, 16_000, &burst(1_600, 0.5));
    assert!(segment_all(VadConfig::default(), &x).unwrap().is_empty());

    let mut x = noise(48_000, 0.001, 5);
    add(&mut x, 16_000, &burst(4_800, 0.5));
    let u = segment_all(VadConfig::default(), &x).unwrap();
    // Speech 16000..20800 is frame-aligned, so the padding is exact.
    assert_eq!(spans(&u), [(16_000 - 3_200, 20_800 + 3_200)]);
}

#[test]
fn speech_from_sample_0_to_the_end_comes_out_of_finish() {
    let x = syllables(9, 0.3);
    let mut seg = Segmenter::new(VadConfig::default()).unwrap();
    for f in x.chunks(seg.frame_len()) {
        assert!(seg.push(f).is_none(), "nothing ends before the stream does");
    }
    let u = seg.finish().expect("finish flushes the open utterance");
    // No padding before sample 0, none past the end: exactly the input.
    assert_eq!((u.start, u.samples.as_slice()), (0, x.as_slice()));
    assert!(seg.finish().is_none());
    assert_eq!(segment_all(VadConfig::default(), &x).unwrap(), [u]);
}

#[test]
fn utterance_times() {
    let u = Utterance {
        start: 8_000,
        samples: vec![0.0; 24_000],
    };
    assert_eq!((u.end(), u.start_secs(), u.end_secs()), (32_000, 0.5, 2.0));
}

#[test]
fn steady_tone_becomes_the_floor() {
    // A dial tone or hum opens at most one utterance at the very start (no floor yet),
    // then is the floor and opens nothing more.
    let u = segment_all(VadConfig::default(), &tone(16_000 * 20, 425.0, 0.3)).unwrap();
    assert!(u.len() <= 1, "{:?}", spans(&u));
    assert!(u.iter().all(|u| u.end() < 16_000 * 4), "{:?}", spans(&u));
}

#[test]
fn dc_offset_and_mains_hum_do_not_hide_speech() {
    // A DC offset of 0.1 and 50 Hz hum at -33 dBFS carry ten times the power of the
    // speech (-29 dBFS in its loud halves): measured raw, the speech would vanish.
    let mut x: Vec<f32> = tone(16_000 * 6, 50.0, 0.03)
        .into_iter()
        .map(|v| v + 0.1)
        .collect();
    let speech = syllables(9, 0.05);
    add(&mut x, 32_000, &speech);
    let u = segment_all(VadConfig::default(), &x).unwrap();
    assert_eq!(spans(&u), [(32_000 - 3_200, 32_000 + 9 * 1_920 + 3_200)]);
}

#[test]
fn floor_follows_the_line_level() {
    // The same speech on a quiet line and, later, on a line 30 dB noisier: found on both.
    let mut x = noise(16_000 * 14, 0.0005, 9);
    add(&mut x, 16_000 * 7, &noise(16_000 * 7, 0.015, 10));
    let speech = syllables(9, 0.3);
    add(&mut x, 16_000 * 2, &speech);
    add(&mut x, 16_000 * 11, &speech);
    let u = segment_all(VadConfig::default(), &x).unwrap();
    let got = spans(&u);
    let n = speech.len() as u64;
    // Right after the noise steps up at 7 s, the floor still is the quiet line's, so the
    // louder noise may look like speech until the 3 s window has passed (at most one
    // such utterance); the speech before and after is found exactly.
    assert_eq!(got.first(), Some(&(28_800, 32_000 + n + 3_200)), "{got:?}");
    assert_eq!(got.last(), Some(&(172_800, 176_000 + n + 3_200)), "{got:?}");
    assert!(got.len() <= 3, "{got:?}");
    if got.len() == 3 {
        assert!(
            got[1].0 >= 16_000 * 7 - 3_200 && got[1].1 <= 16_000 * 11,
            "{got:?}"
        );
    }
}

#[test]
fn digital_silence_does_not_make_line_noise_speech() {
    // Hold or mute: exact zeros, then line noise at about -56 dBFS comes back.
    let mut x = vec![0.0; 16_000 * 3];
    x.extend(noise(16_000 * 4, 0.0027, 4));
    assert!(segment_all(VadConfig::default(), &x).unwrap().is_empty());
}

#[test]
fn long_speech_is_split_in_its_pause_and_nothing_is_lost() {
    // 20.04 s of syllables from 1 s, with one 120 ms pause (shorter than end_silence)
    // in place of the quiet half that starts at 12.04 s.
    let mut x = noise(16_000 * 23, 0.001, 8);
    let mut speech = syllables(167, 0.3);
    let pause = 16_000 + 93 * HALF..16_000 + 94 * HALF;
    speech[pause.start - 16_000..pause.end - 16_000].fill(0.0);
    add(&mut x, 16_000, &speech);
    let end = 16_000 + speech.len();
    let cfg = VadConfig::default();
    let u = segment_all(cfg.clone(), &x).unwrap();
    // Opens at 1 s minus padding; the window fills at 246000 samples (15.4 s) with the
    // pause in its second half, where the cut falls: strictly inside, with a quiet frame
    // on either side. The rest runs to the end of the speech plus padding.
    assert_eq!(u.len(), 2, "{:?}", spans(&u));
    let cut = u[0].end() as usize;
    assert!(
        pause.start + 320 <= cut && cut + 2 * 320 <= pause.end,
        "cut at {cut}, pause {pause:?}"
    );
    assert_eq!(
        spans(&u),
        [(12_800, cut as u64), (cut as u64, end as u64 + 3_200)]
    );
    for u in &u {
        assert!(u.samples.len() <= cfg.max_samples);
        assert_eq!(u.samples, x[u.start as usize..u.end() as usize]);
    }
}

#[test]
fn short_speech_after_a_split_is_kept_as_the_rest_of_the_utterance() {
    // 14.28 s of syllables, a 300 ms pause of digital silence, a 160 ms word, silence.
    // The window fills during the hangover after the word and is cut in the pause: the
    // word alone is shorter than min_speech_ms, but it is the end of a longer utterance
    // and must not be lost.
    let mut x = noise(16_000 * 20, 0.001, 12);
    let speech = syllables(119, 0.3);
    add(&mut x, 16_000, &speech);
    let pause = 16_000 + speech.len()..16_000 + speech.len() + 4_800;
    x[pause.clone()].fill(0.0);
    let word = pause.end..pause.end + 2_560;
    add(&mut x, word.start, &burst(word.len(), 0.3));
    let u = segment_all(VadConfig::default(), &x).unwrap();
    assert_eq!(u.len(), 2, "{:?}", spans(&u));
    let cut = u[0].end() as usize;
    assert!(pause.contains(&cut), "cut at {cut}, pause {pause:?}");
    assert_eq!(
        spans(&u),
        [(12_800, cut as u64), (cut as u64, word.end as u64 + 3_200)]
    );
}

#[test]
fn continuous_speech_longer_than_two_windows_splits_into_full_parts() {
    // No pause at all: cuts fall in the quiet halves of the syllables; every part but
    // the last is more than half a window, and the parts tile the speech.
    let mut x = noise(16_000 * 40, 0.001, 8);
    let speech = syllables(315, 0.3);
    add(&mut x, 16_000, &speech);
    let cfg = VadConfig::default();
    let u = segment_all(cfg.clone(), &x).unwrap();
    assert!(u.len() >= 3, "{:?}", spans(&u));
    assert_eq!(u[0].start, 12_800);
    assert_eq!(
        u.last().unwrap().end() as usize,
        16_000 + speech.len() + 3_200
    );
    for w in u.windows(2) {
        assert_eq!(w[0].end(), w[1].start);
        assert!(w[0].samples.len() > cfg.max_samples / 2);
        let at = w[1].start as usize - 16_000;
        assert!((at / HALF) % 2 == 1, "cut at {at} is in a loud half");
    }
    for u in &u {
        assert!(u.samples.len() <= cfg.max_samples);
    }
}

/// Bursts of syllables of random length, gap and level over noise of random level.
fn random_signal(seed: u64, len: usize) -> Vec<f32> {
    let mut r = seed | 1;
    let mut next = |m: usize| {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        (r % m as u64) as usize
    };
    let mut x = noise(len, [0.0, 0.0005, 0.003][next(3)], seed);
    let mut at = next(16_000);
    while at < len {
        let amp = [0.02, 0.1, 0.5][next(3)];
        let mut s = syllables(1 + next(160), amp);
        s.truncate(len - at);
        add(&mut x, at, &s);
        at += s.len() + next(16_000 * 2);
    }
    x
}

fn configs() -> Vec<VadConfig> {
    vec![
        VadConfig::default(),
        VadConfig {
            frame_ms: 30,
            pad_ms: 300,
            end_silence_ms: 300,
            max_samples: 48_000,
            ..VadConfig::default()
        },
        VadConfig {
            frame_ms: 10,
            pad_ms: 0,
            min_speech_ms: 0,
            end_silence_ms: 10,
            max_samples: 4_000,
            start_db: 6.0,
            continue_db: 6.0,
            ..VadConfig::default()
        },
    ]
}

#[test]
fn invariants_on_random_streams() {
    for (c, cfg) in configs().into_iter().enumerate() {
        // Splits seen (an utterance starting where the previous ended), so the test
        // knows it exercised them.
        let mut splits = 0;
        for seed in 1..=4u64 {
            let x = random_signal(seed * 7 + c as u64, 16_000 * 30);
            let mut seg = Segmenter::new(cfg.clone()).unwrap();
            let pad = seg.pad;
            let window = (cfg.noise_window_ms / cfg.frame_ms) as usize;
            let mut got = Vec::new();
            for f in x.chunks(seg.frame_len()) {
                got.extend(seg.push(f));
                // Bounded memory: padding while silent, max_samples while speaking.
                assert!(seg.preroll.len() <= pad);
                assert!(seg
                    .active
                    .as_ref()
                    .is_none_or(|a| a.samples.len() <= cfg.max_samples));
                assert!(seg.floor.len() <= window);
                assert!(seg.ready.len() <= 1);
            }
            while let Some(u) = seg.finish() {
                got.push(u);
            }
            assert_eq!(seg.position(), x.len() as u64);
            let ctx = format!("config {c} seed {seed}: {:?}", spans(&got));
            let mut last_end = 0;
            for u in &got {
                assert!(!u.samples.is_empty(), "{ctx}");
                assert!(u.samples.len() <= cfg.max_samples, "{ctx}");
                assert!(u.start >= last_end, "overlap: {ctx}");
                assert!(u.end() <= x.len() as u64, "{ctx}");
                assert_eq!(u.samples, x[u.start as usize..u.end() as usize], "{ctx}");
                splits += usize::from(u.start == last_end && last_end > 0);
                last_end = u.end();
            }
            // Whole slices are taken frame by frame: the same utterances come out.
            let mut seg = Segmenter::new(cfg.clone()).unwrap();
            let mut whole = Vec::new();
            for block in x.chunks(seg.frame_len() * 37) {
                whole.extend(seg.push(block));
            }
            while let Some(u) = seg.finish() {
                whole.push(u);
            }
            assert_eq!(whole, got, "{ctx}");
        }
        assert!(splits > 0, "config {c}: no split happened");
    }
}

/// The setting a config is rejected for, or "accepted".
fn rejected(cfg: VadConfig) -> &'static str {
    match Segmenter::new(cfg) {
        Err(VadError::Invalid { field, .. }) => field,
        Ok(_) => "accepted",
    }
}

#[test]
fn config_validation_names_the_setting() {
    let d = VadConfig::default;
    let cases: Vec<(VadConfig, &str)> = vec![
        (VadConfig { frame_ms: 5, ..d() }, "frame_ms"),
        (
            VadConfig {
                frame_ms: 60,
                ..d()
            },
            "frame_ms",
        ),
        (VadConfig { pad_ms: 600, ..d() }, "pad_ms"),
        (
            VadConfig {
                pad_ms: u32::MAX,
                ..d()
            },
            "pad_ms",
        ),
        (
            VadConfig {
                min_speech_ms: u32::MAX,
                ..d()
            },
            "min_speech_ms",
        ),
        (
            VadConfig {
                end_silence_ms: 10,
                ..d()
            },
            "end_silence_ms",
        ),
        (
            VadConfig {
                noise_window_ms: 100,
                ..d()
            },
            "noise_window_ms",
        ),
        (
            VadConfig {
                max_samples: 20_000,
                ..d()
            },
            "max_samples",
        ),
        (
            VadConfig {
                max_samples: usize::MAX,
                ..d()
            },
            "max_samples",
        ),
        (
            VadConfig {
                continue_db: -1.0,
                ..d()
            },
            "continue_db",
        ),
        (
            VadConfig {
                continue_db: f32::NAN,
                ..d()
            },
            "continue_db",
        ),
        (
            VadConfig {
                start_db: 3.0,
                ..d()
            },
            "start_db",
        ),
        (
            VadConfig {
                start_db: f32::INFINITY,
                ..d()
            },
            "start_db",
        ),
        (
            VadConfig {
                floor_min_dbfs: 3.0,
                ..d()
            },
            "floor_min_dbfs",
        ),
        (
            VadConfig {
                floor_min_dbfs: f32::NAN,
                ..d()
            },
            "floor_min_dbfs",
        ),
    ];
    for (cfg, field) in cases {
        assert_eq!(rejected(cfg.clone()), field, "{cfg:?}");
    }
    // The smallest max_samples accepted with the defaults, and the message.
    assert!(Segmenter::new(VadConfig {
        max_samples: 22_080,
        ..d()
    })
    .is_ok());
    let e = Segmenter::new(VadConfig {
        max_samples: 22_079,
        ..d()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[vad] max_samples = 22079 cannot be used: set it between 22080 (twice min_speech_ms \
         + 2 x pad_ms + 2 frames) and 9600000 samples; 246000 (15.4 s) is the recogniser's limit"
    );
    assert_eq!(Segmenter::new(d()).unwrap().frame_len(), 320);
    assert_eq!(
        Segmenter::new(VadConfig {
            frame_ms: 30,
            ..d()
        })
        .unwrap()
        .frame_len(),
        480
    );
}

#[test]
fn field_docs_cover_every_field_and_state_the_default() {
    let defaults = serde_json::to_value(VadConfig::default()).unwrap();
    let fields = defaults.as_object().unwrap();
    assert_eq!(FIELD_DOCS.len(), fields.len());
    for (key, value) in fields {
        let doc = FIELD_DOCS
            .iter()
            .find(|(k, _)| *k == format!("vad.{key}"))
            .unwrap_or_else(|| panic!("vad.{key} has no doc"))
            .1;
        assert!(doc.contains(&format!("default {value}")), "{key}: {doc}");
    }
}

#[test]
fn config_reads_from_toml_with_defaults_and_rejects_unknown_keys() {
    let c: VadConfig = toml::from_str("pad_ms = 150\nmax_samples = 160000\n").unwrap();
    assert_eq!(
        c,
        VadConfig {
            pad_ms: 150,
            max_samples: 160_000,
            ..VadConfig::default()
        }
    );
    assert!(toml::from_str::<VadConfig>("pad = 150\n").is_err());
}
