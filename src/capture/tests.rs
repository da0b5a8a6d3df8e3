use super::*;
use std::sync::atomic::Ordering;

fn talk_and_silence() -> Vec<Segment> {
    vec![
        Segment::new(SegmentKind::Silence, 0.2),
        Segment::new(SegmentKind::Tone, 0.3),
    ]
}

#[test]
fn generator_frames_reach_the_consumer_in_order() {
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    let shared = CaptureShared::default();
    let mut src = GeneratorSource::new(8000, 2, talk_and_silence()).speed(0.0);
    let mut errors = 0;
    run_source(&mut src, &mut prod, &shared, &mut |_| errors += 1);
    assert_eq!(errors, 0);
    assert!(shared.finished.load(Ordering::Acquire));
    assert_eq!(shared.format(), Some((8000, 2)));
    assert_eq!(shared.frames.load(Ordering::Relaxed), 4000);
    let mut got = Vec::new();
    while let Some(x) = cons.dequeue() {
        got.push(x);
    }
    assert_eq!(got.len(), 8000);
    // 0.2 s of silence, then the tone on both channels.
    assert!(got[..3200].iter().all(|&x| x == 0));
    assert!(got[3200..].iter().any(|&x| x.abs() > 1000));
    assert_eq!(got[4000], got[4001], "both channels carry the tone");
    assert_eq!(shared.overruns.load(Ordering::Relaxed), 0);
}

#[test]
fn a_full_ring_counts_overruns_and_keeps_frames_whole() {
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    let shared = CaptureShared::default();
    // 10 s of stereo 16 kHz = 320,000 samples into a ring of 65,535 nobody reads.
    let sched = vec![Segment::new(SegmentKind::Noise, 10.0).on_channel(1)];
    let mut src = GeneratorSource::new(16000, 2, sched).speed(0.0);
    run_source(&mut src, &mut prod, &shared, &mut |_| {});
    let dropped = shared.dropped_samples.load(Ordering::Relaxed);
    assert!(shared.overruns.load(Ordering::Relaxed) > 0);
    let mut kept = 0u64;
    let mut left_nonzero = 0;
    let mut i = 0u64;
    while let Some(x) = cons.dequeue() {
        if i % 2 == 0 && x != 0 {
            left_nonzero += 1;
        }
        kept += 1;
        i += 1;
    }
    assert_eq!(
        kept + dropped,
        320_000,
        "every sample is either kept or counted"
    );
    assert_eq!(kept % 2, 0, "whole frames only");
    assert_eq!(left_nonzero, 0, "the channels never swapped");
}

struct Flaky {
    starts: u32,
    reads: u32,
}

impl AudioSource for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }
    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        self.starts += 1;
        if self.starts == 1 {
            return Err(SourceError::Missing("flaky".into()));
        }
        Ok(StreamFormat {
            rate: 8000,
            channels: 1,
            period_frames: 160,
        })
    }
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, SourceError> {
        self.reads += 1;
        match self.reads {
            3 => Err(SourceError::Xrun),
            5 => Err(SourceError::Unplugged("flaky".into(), "gone".into())),
            n if n > 8 => Ok(0),
            _ => {
                buf[..160].fill(7);
                Ok(160)
            }
        }
    }
    fn stop(&mut self) {}
}

#[test]
fn missing_devices_are_retried_and_xruns_counted() {
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    let shared = CaptureShared::default();
    let mut src = Flaky {
        starts: 0,
        reads: 0,
    };
    let mut seen = Vec::new();
    run_source(&mut src, &mut prod, &shared, &mut |e| {
        seen.push(e.to_string())
    });
    assert_eq!(src.starts, 3, "missing at first, then unplugged once");
    assert_eq!(shared.xruns.load(Ordering::Relaxed), 1);
    assert_eq!(shared.device_errors.load(Ordering::Relaxed), 2);
    assert_eq!(shared.generation.load(Ordering::Relaxed), 2);
    assert!(
        seen[0].contains("not found") && seen[0].contains("arecord -L"),
        "{seen:?}"
    );
    assert!(seen[1].contains("unplugged"), "{seen:?}");
    let mut n = 0;
    while cons.dequeue().is_some() {
        n += 1;
    }
    // Reads 1, 2, 4, 6, 7, 8 delivered a period each.
    assert_eq!(n, 6 * 160);
}

#[test]
fn stop_ends_a_live_source_promptly() {
    let mut ring = new_ring();
    let (mut prod, _cons) = ring.split();
    let shared = CaptureShared::default();
    let mut src =
        GeneratorSource::new(8000, 1, vec![Segment::new(SegmentKind::Silence, 1.0)]).repeat(true);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            shared.stop.store(true, Ordering::Release);
        });
        run_source(&mut src, &mut prod, &shared, &mut |_| {});
    });
    assert!(!shared.finished.load(Ordering::Acquire));
    assert!(shared.frames.load(Ordering::Relaxed) > 0);
}
