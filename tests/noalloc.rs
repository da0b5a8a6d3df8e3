//! The capture thread's per-period path never allocates: a counting global allocator
//! counts allocations made on the capture thread while [`capture_loop`] runs, for the
//! generator, the WAV replay and (with the `alsa` feature) the ALSA backend reading
//! through ALSA's file plugin. Overruns (a consumer that falls behind) are part of the
//! run: that path must not allocate either.
//!
//! Its own test binary, because a global allocator is per binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use sangdam::capture::{
    capture_loop, new_ring, AudioSource, CaptureShared, GeneratorSource, LoopEnd, Segment,
    SegmentKind, WavSource, MAX_PERIOD_SAMPLES,
};

struct Counting;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` on this thread with counting on; returns the allocations it made.
fn count_allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    TRACK.with(|t| t.set(true));
    f();
    TRACK.with(|t| t.set(false));
    COUNT.with(|c| c.get())
}

/// Starts `source`, then runs the real-time loop with counting on, while another thread
/// drains the ring slowly enough that overruns happen too. Returns (allocations, periods,
/// overruns).
fn run_counted(source: &mut dyn AudioSource) -> (u64, u64, u64) {
    let fmt = source.start().expect("source starts");
    let shared = CaptureShared::default();
    shared.set_format(fmt.rate, fmt.channels);
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    let mut period = vec![0i16; MAX_PERIOD_SAMPLES];
    let done = AtomicBool::new(false);
    let mut allocs = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                for _ in 0..1000 {
                    let _ = cons.dequeue();
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        allocs = count_allocations(|| {
            let end = capture_loop(
                source,
                &mut prod,
                &shared,
                &mut period[..fmt.period_samples()],
            );
            assert!(matches!(end, LoopEnd::EndOfStream | LoopEnd::Stopped));
        });
        done.store(true, Ordering::Release);
    });
    source.stop();
    (
        allocs,
        shared.periods.load(Ordering::Relaxed),
        shared.overruns.load(Ordering::Relaxed),
    )
}

#[test]
fn the_counter_counts() {
    // Without this the other tests could pass by counting nothing.
    let n = count_allocations(|| {
        let v: Vec<u64> = (0..100).collect();
        std::hint::black_box(v);
    });
    assert!(n >= 2, "{n}");
}

#[test]
fn generator_capture_path_does_not_allocate() {
    let sched = vec![
        Segment::new(SegmentKind::Talk, 20.0),
        Segment::new(SegmentKind::Noise, 20.0).on_channel(1),
    ];
    let mut src = GeneratorSource::new(16_000, 2, sched).speed(0.0);
    let (allocs, periods, overruns) = run_counted(&mut src);
    assert_eq!(periods, 2_000, "40 s of 20 ms periods");
    assert!(
        overruns > 0,
        "the slow consumer should have caused overruns"
    );
    assert_eq!(
        allocs, 0,
        "the capture loop allocated {allocs} times in {periods} periods"
    );
}

#[test]
fn wav_replay_capture_path_does_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("line.wav");
    let mut w = sangdam::audio::WavWriter::create(&p, 8_000, 1, sangdam::audio::WriteFormat::Pcm16)
        .unwrap();
    let samples: Vec<f32> = (0..8_000 * 30)
        .map(|i| (i as f32 * 0.07).sin() * 0.3)
        .collect();
    w.write_interleaved(&samples).unwrap();
    w.finish().unwrap();
    // The first read sizes the reader's buffers (once per stream); it happens in
    // `start` here, outside the counted loop.
    let mut src = WavSourceWarm::new(&p);
    let (allocs, periods, _) = run_counted(&mut src);
    assert!(periods >= 1_499, "{periods}");
    assert_eq!(
        allocs, 0,
        "the WAV replay allocated {allocs} times in {periods} periods"
    );
}

/// A [`WavSource`] whose first read (which sizes its buffers) happens in `start`.
struct WavSourceWarm {
    inner: WavSource,
    first: Vec<i16>,
    first_n: Option<usize>,
}

impl WavSourceWarm {
    fn new(p: &std::path::Path) -> Self {
        WavSourceWarm {
            inner: WavSource::new(p, 0.0),
            first: Vec::new(),
            first_n: None,
        }
    }
}

impl AudioSource for WavSourceWarm {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn start(&mut self) -> Result<sangdam::capture::StreamFormat, sangdam::capture::SourceError> {
        let fmt = self.inner.start()?;
        self.first = vec![0; fmt.period_samples()];
        self.first_n = Some(self.inner.read(&mut self.first)?);
        Ok(fmt)
    }
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, sangdam::capture::SourceError> {
        if let Some(n) = self.first_n.take() {
            buf[..n].copy_from_slice(&self.first[..n]);
            return Ok(n);
        }
        self.inner.read(buf)
    }
    fn stop(&mut self) {
        self.inner.stop()
    }
}

#[cfg(feature = "alsa")]
#[test]
fn alsa_capture_path_does_not_allocate() {
    use sangdam::capture::alsa::{AlsaSettings, AlsaSource};
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("line.raw");
    let bytes: Vec<u8> = (0..8_000 * 10)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 9000.0) as i16).to_le_bytes())
        .collect();
    std::fs::write(&raw, bytes).unwrap();
    let conf = dir.path().join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "pcm.sangdam_line {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n",
            raw.display()
        ),
    )
    .unwrap();
    std::env::set_var(
        "ALSA_CONFIG_PATH",
        format!("/usr/share/alsa/alsa.conf:{}", conf.display()),
    );
    // The null device never ends: stop after 2,000 periods from the consumer side.
    struct Limited(AlsaSource, u32);
    impl AudioSource for Limited {
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn start(
            &mut self,
        ) -> Result<sangdam::capture::StreamFormat, sangdam::capture::SourceError> {
            self.0.start()
        }
        fn read(&mut self, buf: &mut [i16]) -> Result<usize, sangdam::capture::SourceError> {
            if self.1 == 0 {
                return Ok(0);
            }
            self.1 -= 1;
            self.0.read(buf)
        }
        fn stop(&mut self) {
            self.0.stop()
        }
    }
    let mut src = Limited(
        AlsaSource::new(AlsaSettings {
            device: "sangdam_line".into(),
            rate: 8_000,
            channels: 1,
            period_frames: 160,
            buffer_frames: 1_600,
        }),
        2_000,
    );
    let (allocs, periods, _) = run_counted(&mut src);
    assert_eq!(periods, 2_000);
    assert_eq!(
        allocs, 0,
        "the ALSA read path allocated {allocs} times in {periods} periods"
    );
}
