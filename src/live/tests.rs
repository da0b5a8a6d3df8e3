use super::*;
use crate::capture::{new_ring, run_source, CaptureShared, GeneratorSource, Segment, SegmentKind};

fn talk(seconds: f64) -> Segment {
    Segment::new(SegmentKind::Talk, seconds)
}
fn silence(seconds: f64) -> Segment {
    Segment::new(SegmentKind::Silence, seconds)
}

fn settings(hook: bool) -> LineSettings {
    LineSettings {
        detector: DetectorConfig {
            silence_timeout_s: 2.0,
            ..Default::default()
        },
        hook_line: hook,
        line: "generator".into(),
    }
}

/// Runs a generator schedule through capture and the line thread; returns the spool.
fn run(
    schedule: Vec<Segment>,
    channels: u16,
    max_bytes: u64,
) -> (tempfile::TempDir, Spool, Store, LineShared) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool"), max_bytes).unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let shared = LineShared::default();
    let cap = CaptureShared::default();
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    // Ten times real time: fast, and slow enough for the line thread to keep up
    // (asserted below: an overrun would make the test meaningless).
    let mut src = GeneratorSource::new(8000, channels, schedule).speed(10.0);
    std::thread::scope(|s| {
        s.spawn(|| run_source(&mut src, &mut prod, &cap, &mut |e| panic!("{e}")));
        run_line(
            &mut cons,
            &cap,
            &shared,
            &spool,
            &store,
            &settings(false),
            &|| 1_700_000_000,
        );
    });
    assert_eq!(
        cap.overruns.load(Ordering::Relaxed),
        0,
        "the line thread fell behind"
    );
    (dir, spool, store, shared)
}

#[test]
fn voice_finds_two_calls_in_a_stream() {
    let (_d, spool, _store, shared) = run(
        vec![
            silence(3.0),
            talk(4.0),
            silence(1.0),
            talk(2.0),
            silence(5.0),
            talk(3.0),
            silence(1.0),
        ],
        1,
        100_000_000,
    );
    // The 1 s pause stays inside the first call; the 5 s one ends it; the last call ends
    // with the stream.
    assert_eq!(shared.calls.load(Ordering::Relaxed), 2);
    let (_, first) = spool.take(Duration::ZERO).unwrap();
    assert_eq!(first.ended_by, Some(EndReason::Silence));
    // 7 s of talk and pause, the pre-roll and 1 s of tail: about 8.5 s.
    let d = first.duration_s();
    assert!((8.0..9.5).contains(&d), "{d}");
    spool.done(first.seq);
    let (_, second) = spool.take(Duration::ZERO).unwrap();
    assert_eq!(second.ended_by, Some(EndReason::EndOfStream));
    assert!(shared.done.load(Ordering::Acquire));
}

#[test]
fn a_full_spool_keeps_the_calls_as_counted_records() {
    // Three calls of 4.5 s recorded (pre-roll, 3 s of talk, tail) at 8 kHz mono, 72 kB
    // each, into a 160 kB spool: the third evicts the first.
    let mut sched = Vec::new();
    for _ in 0..3 {
        sched.extend([talk(3.0), silence(3.0)]);
    }
    let (_d, spool, store, shared) = run(sched, 1, 160_000);
    assert_eq!(shared.calls.load(Ordering::Relaxed), 3);
    assert_eq!(shared.calls_without_audio.load(Ordering::Relaxed), 1);
    assert_eq!(spool.stats().dropped, 1);
    assert_eq!(spool.stats().queued, 2);
    let calls = store.calls().unwrap();
    assert_eq!(calls.len(), 1);
    let live = calls[0].live.as_ref().unwrap();
    assert!(live.audio_dropped);
    assert!(calls[0].duration_s > 3.0);
    let day = store.days().unwrap();
    assert_eq!(day[0].1.audio_dropped, 1);
    assert_eq!(day[0].1.calls, 1);
}

#[test]
fn stereo_calls_keep_both_channels() {
    let sched = vec![
        silence(1.0),
        talk(2.0).on_channel(0),
        talk(2.0).on_channel(1),
        silence(3.0),
    ];
    let (_d, spool, _s, shared) = run(sched, 2, 100_000_000);
    assert_eq!(shared.calls.load(Ordering::Relaxed), 1);
    let (path, meta) = spool.take(Duration::ZERO).unwrap();
    assert_eq!(meta.channels, 2);
    let mut r = crate::audio::WavReader::open(&path).unwrap();
    let mut ch = vec![Vec::new(), Vec::new()];
    while r.read_frames(&mut ch, 100_000).unwrap() > 0 {}
    let energy = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
    // The call starts 0.3 s into the agent's talk with 0.5 s of pre-roll: the file holds
    // 0.2 s of silence, the agent for 2 s, then the customer for 2 s.
    let (agent, customer) = (2_400..16_800, 18_400..32_000);
    assert!(ch[0].len() > 32_000);
    assert!(energy(&ch[0][agent.clone()]) > 10.0 * energy(&ch[1][agent]));
    assert!(energy(&ch[1][customer.clone()]) > 10.0 * energy(&ch[0][customer]));
}

#[test]
fn clicks_are_not_calls() {
    let (_d, spool, _s, shared) = run(vec![silence(1.0), talk(0.4), silence(3.0)], 1, 100_000_000);
    assert_eq!(shared.calls.load(Ordering::Relaxed), 0);
    assert_eq!(shared.short_calls.load(Ordering::Relaxed), 1);
    assert_eq!(spool.stats().queued, 0);
}

/// A line that talks, is unplugged mid-call, and comes back.
struct Unplugged {
    gen: GeneratorSource,
    reads: u32,
    starts: u32,
}

impl crate::capture::AudioSource for Unplugged {
    fn describe(&self) -> String {
        "unplugged".into()
    }
    fn start(&mut self) -> Result<crate::capture::StreamFormat, crate::capture::SourceError> {
        self.starts += 1;
        self.gen.start()
    }
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, crate::capture::SourceError> {
        self.reads += 1;
        // 3 s into the first stream (150 periods of 20 ms), the adapter is pulled.
        if self.starts == 1 && self.reads == 150 {
            return Err(crate::capture::SourceError::Unplugged(
                "unplugged".into(),
                "ENODEV".into(),
            ));
        }
        self.gen.read(buf)
    }
    fn stop(&mut self) {}
}

#[test]
fn an_unplugged_device_closes_the_call_keeps_it_and_capture_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool"), 100_000_000).unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let shared = LineShared::default();
    let cap = CaptureShared::default();
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    // Talk all along: the first call is cut by the unplugging, the second starts when the
    // device is back and ends with the stream.
    let mut src = Unplugged {
        gen: GeneratorSource::new(8000, 1, vec![talk(1000.0)]).speed(10.0),
        reads: 0,
        starts: 0,
    };
    let mut errors = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::capture::run_source(&mut src, &mut prod, &cap, &mut |e| {
                errors.push(e.to_string());
                if errors.len() > 1 {
                    cap.stop.store(true, Ordering::Release);
                }
            });
        });
        s.spawn(|| {
            // Stop once the second stream has run for a while.
            while cap.generation.load(Ordering::Acquire) < 2
                || cap.frames.load(Ordering::Relaxed) < 8000 * 6
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            cap.stop.store(true, Ordering::Release);
        });
        run_line(
            &mut cons,
            &cap,
            &shared,
            &spool,
            &store,
            &settings(false),
            &|| 1_700_000_000,
        );
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("unplugged"), "{errors:?}");
    assert_eq!(shared.gaps.load(Ordering::Relaxed), 1);
    assert_eq!(shared.calls.load(Ordering::Relaxed), 2);
    let (_, first) = spool.take(Duration::ZERO).unwrap();
    assert_eq!(first.ended_by, Some(EndReason::DeviceLost));
    assert!(
        first.duration_s() > 2.0,
        "the audio before the unplugging is kept"
    );
    spool.done(first.seq);
    let (_, second) = spool.take(Duration::ZERO).unwrap();
    assert_eq!(second.ended_by, Some(EndReason::Shutdown));
}
