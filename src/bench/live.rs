//! `sangdam bench --live`: CPU of the capture path alone, and CPU and peak memory of the
//! whole daemon at 1x real-time input with both models loaded. Prints two tables.
//!
//! 1. **Capture alone**: the generator source paced to real time through
//!    [`crate::capture::run_source`] into the ring, drained by a second thread; the
//!    capture thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) over wall time.
//! 2. **Daemon**: `sangdam run` in a child process on a `wav` source replayed at 1x (a
//!    two-channel 8 kHz line of calls made from the fixture speech), with the models of
//!    `--models`/`SANGDAM_MODELS` (an `asr-ko` stand-in is made from the conformance
//!    fixture when none is installed, and said so); the child's user+system CPU and peak
//!    RSS from `wait4`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{BenchError, Result};
use crate::audio::{CallFile, WavWriter, WriteFormat};
use crate::capture::{new_ring, run_source, CaptureShared, GeneratorSource, Segment, SegmentKind};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// (capture thread CPU, consumer CPU, wall, periods, overruns) for `seconds` of a line.
fn capture_alone(
    rate: u32,
    channels: u16,
    seconds: f64,
) -> (Duration, Duration, Duration, u64, u64) {
    let sched = vec![
        Segment::new(SegmentKind::Talk, seconds / 2.0),
        Segment::new(SegmentKind::Noise, seconds / 2.0),
    ];
    let mut src = GeneratorSource::new(rate, channels, sched).speed(1.0);
    let shared = CaptureShared::default();
    let mut ring = new_ring();
    let (mut prod, mut cons) = ring.split();
    let done = AtomicBool::new(false);
    let t0 = Instant::now();
    let (mut cap_cpu, mut cons_cpu) = (Duration::ZERO, Duration::ZERO);
    std::thread::scope(|s| {
        let c = s.spawn(|| {
            let start = thread_cpu();
            let mut n = 0u64;
            while !done.load(Ordering::Acquire) || !cons.is_empty() {
                match cons.dequeue() {
                    Some(x) => n = n.wrapping_add(x as u64),
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            std::hint::black_box(n);
            thread_cpu() - start
        });
        let start = thread_cpu();
        run_source(&mut src, &mut prod, &shared, &mut |_| {});
        cap_cpu = thread_cpu() - start;
        done.store(true, Ordering::Release);
        cons_cpu = c.join().unwrap_or_default();
    });
    (
        cap_cpu,
        cons_cpu,
        t0.elapsed(),
        shared.periods.load(Ordering::Relaxed),
        shared.overruns.load(Ordering::Relaxed),
    )
}

fn sha256(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).map_err(BenchError::read(p))?;
    Ok(sangdam_wire::hex(&Sha256::digest(&bytes)))
}

/// A models folder with the installed models, plus the fixture as `asr-ko` if there is
/// no speech model. Returns the folder and a note on what the ASR model is.
fn models_dir(installed: &Path, tmp: &Path) -> Result<(PathBuf, String)> {
    let manifest = crate::models::Manifest::load(installed)?;
    if let Ok(m) = manifest.verified(crate::models::ModelKind::AsrCtc, "asr-ko") {
        return Ok((installed.to_owned(), m.label()));
    }
    let dir = tmp.join("models");
    create_dir_all(&dir.join("asr-ko"))?;
    let manifest_path = installed.join("manifest.toml");
    let mut text =
        std::fs::read_to_string(&manifest_path).map_err(BenchError::read(&manifest_path))?;
    for m in &manifest.models {
        let dst = dir.join(&m.file);
        create_dir_all(dst.parent().unwrap_or(&dir))?;
        copy(&installed.join(&m.file), &dst)?;
        if let Some(v) = &m.vocab {
            copy(&installed.join(v), &dir.join(v))?;
        }
    }
    let fixture = Path::new(super::FIXTURE_DIR);
    let (model, vocab) = (dir.join("asr-ko/model.onnx"), dir.join("asr-ko/vocab.json"));
    std::fs::copy(fixture.join("model.onnx"), &model).map_err(|source| BenchError::StandIn {
        fixture: fixture.to_owned(),
        source,
    })?;
    copy(&fixture.join("vocab.json"), &vocab)?;
    text.push_str(&format!(
        "\n[[model]]\nname = \"asr-ko\"\nkind = \"asr-ctc\"\nfile = \"asr-ko/model.onnx\"\nsha256 = \"{}\"\nbytes = {}\nvocab = \"asr-ko/vocab.json\"\nvocab_sha256 = \"{}\"\nsample_rate = 16000\nmade = \"bench stand-in: the conformance fixture\"\n",
        sha256(&model)?,
        std::fs::metadata(&model).map_err(BenchError::read(&model))?.len(),
        sha256(&vocab)?
    ));
    let written = dir.join("manifest.toml");
    std::fs::write(&written, text).map_err(BenchError::write(&written))?;
    Ok((
        dir,
        "STAND-IN: conformance fixture (no asr-ko installed)".into(),
    ))
}

fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| BenchError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|source| BenchError::Copy {
            from: from.to_owned(),
            to: to.to_owned(),
            source,
        })
}

/// A two-channel 8 kHz line of about `seconds`: calls of fixture speech on each side.
fn line(path: &Path, seconds: f64) -> Result<()> {
    let mut speech = Vec::new();
    let utt = Path::new(super::FIXTURE_DIR).join("utt0.wav");
    let mut r = CallFile::open(&utt).map_err(BenchError::audio(&utt))?;
    while let Some(b) = r.next_block().map_err(BenchError::audio(&utt))? {
        speech.extend_from_slice(&b[0]);
    }
    let speech: Vec<f32> = speech.iter().step_by(2).copied().collect();
    let mut w =
        WavWriter::create(path, 8_000, 2, WriteFormat::Pcm16).map_err(BenchError::audio(path))?;
    let mut frames = 0usize;
    let total = (seconds * 8_000.0) as usize;
    while frames < total {
        let mut inter = vec![0.0f32; 2 * 8_000 * 3];
        for &x in &speech {
            inter.extend([0.0, x]);
        }
        inter.extend(std::iter::repeat_n(0.0, 2 * 8_000));
        for &x in &speech {
            inter.extend([x * 0.8, 0.0]);
        }
        inter.extend(std::iter::repeat_n(0.0, 2 * 8_000 * 9));
        frames += inter.len() / 2;
        w.write_interleaved(&inter)
            .map_err(BenchError::audio(path))?;
    }
    w.finish().map_err(BenchError::audio(path))?;
    Ok(())
}

pub fn run(seconds: f64) -> Result<()> {
    let seconds = seconds.max(10.0);
    println!("## Capture path alone (generator paced to real time, {seconds:.0} s per row)\n");
    println!(
        "| line | capture thread CPU ms | % of one core | consumer CPU ms | periods | overruns |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (rate, ch) in [(8_000u32, 2u16), (16_000, 2)] {
        let (cap, cons, wall, periods, overruns) = capture_alone(rate, ch, seconds);
        println!(
            "| {} kHz x {ch} | {:.1} | {:.3}% | {:.1} | {periods} | {overruns} |",
            rate / 1000,
            cap.as_secs_f64() * 1e3,
            100.0 * cap.as_secs_f64() / wall.as_secs_f64(),
            cons.as_secs_f64() * 1e3,
        );
    }

    let tmp = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let installed = std::env::var_os("SANGDAM_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| "models".into());
    let (models, asr_note) = models_dir(&installed, tmp.path())?;
    let wav = tmp.path().join("line.wav");
    line(&wav, seconds)?;
    let cfg = tmp.path().join("sangdam.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsource = \"wav\"\nwav = {:?}\nwav_speed = 1.0\n\n[live.detector]\nsilence_timeout_s = 4.0\n",
            wav
        ),
    )
    .map_err(BenchError::write(&cfg))?;
    let exe = std::env::current_exe().map_err(BenchError::CurrentExe)?;
    let t0 = Instant::now();
    let child = std::process::Command::new(exe)
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(tmp.path().join("data"))
        .arg("--models")
        .arg(&models)
        .arg("run")
        .env("RUST_LOG", "warn")
        .spawn()
        .map_err(BenchError::DaemonStart)?;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter; the pid is our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    if r <= 0 {
        return Err(BenchError::DaemonWait(std::io::Error::last_os_error()));
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = ru.ru_utime.tv_sec as f64
        + ru.ru_utime.tv_usec as f64 / 1e6
        + ru.ru_stime.tv_sec as f64
        + ru.ru_stime.tv_usec as f64 / 1e6;
    let st = crate::daemon::Status::read(&tmp.path().join("data")).ok();
    println!("\n## Whole daemon at 1x real time (`sangdam run` on a replayed line, both models loaded)\n");
    println!("ASR model: {asr_note}\n");
    println!("| audio s | wall s | CPU s (user+sys) | % of one core | peak RSS MiB | calls stored | overruns |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let audio_s = crate::audio::WavReader::open(&wav)
        .map_err(BenchError::audio(&wav))?
        .spec()
        .duration_secs()
        .unwrap_or(0.0);
    println!(
        "| {audio_s:.1} | {wall:.1} | {cpu:.2} | {:.1}% | {:.1} | {} | {} |",
        100.0 * cpu / wall,
        ru.ru_maxrss as f64 / 1024.0,
        st.as_ref().map_or(0, |s| s.calls_analysed),
        st.as_ref().map_or(0, |s| s.ring_overruns),
    );
    Ok(())
}
