//! The daemon end to end (`sangdam run` on a replayed line and on the generator), its
//! shutdown and systemd notifications, `sangdam status`, and the ALSA backend through
//! ALSA's own file plugin (no sound card needed).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sangdam::audio::{CallFile, WavWriter, WriteFormat};
use sangdam::daemon::{DaemonState, Status};
use sangdam::live::EndReason;
use sangdam::store::Store;
use sangdam_hub::Storage;

use crate::cli::sangdam;
use crate::support::{add_shipped_sentiment, fixture, fixture_models};

/// The fixture's speech at 8 kHz.
fn speech_8k() -> Vec<f32> {
    let mut speech = Vec::new();
    let mut r = CallFile::open(&fixture("utt0.wav")).unwrap();
    while let Some(b) = r.next_block().unwrap() {
        speech.extend_from_slice(&b[0]);
    }
    speech.iter().step_by(2).copied().collect()
}

/// A two-channel 8 kHz "phone line" with `calls` calls: 3 s of silence, the customer
/// speaks, a 1 s pause, the agent answers; 6 s of silence at the end.
fn line_wav(dir: &Path, calls: usize) -> PathBuf {
    let speech = speech_8k();
    let mut inter: Vec<f32> = Vec::new();
    let silence = |inter: &mut Vec<f32>, s: f64| {
        inter.extend(std::iter::repeat_n(0.0, (s * 8000.0) as usize * 2))
    };
    for _ in 0..calls {
        silence(&mut inter, 3.0);
        for &x in &speech {
            inter.extend([0.0, x]);
        }
        silence(&mut inter, 1.0);
        for &x in &speech {
            inter.extend([x * 0.8, 0.0]);
        }
    }
    silence(&mut inter, 6.0);
    let p = dir.join("line.wav");
    let mut w = WavWriter::create(&p, 8_000, 2, WriteFormat::Pcm16).unwrap();
    w.write_interleaved(&inter).unwrap();
    w.finish().unwrap();
    p
}

fn models(dir: &Path) -> PathBuf {
    let m = fixture_models(dir, "model.onnx");
    add_shipped_sentiment(&m);
    m
}

/// Waits for a child with a deadline; kills it and fails past it.
fn wait(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn daemon_records_a_replayed_line_and_stores_what_analyze_would() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    let wav = line_wav(tmp.path(), 2);
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("sangdam.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsource = \"wav\"\nwav = {:?}\nwav_speed = 8.0\nkeep_audio = true\n\n[live.detector]\nsilence_timeout_s = 3.0\n",
            wav
        ),
    )
    .unwrap();
    let mut c = sangdam(&data, &models);
    c.arg("--config")
        .arg(&cfg)
        .arg("run")
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let st = wait(
        &mut child,
        Duration::from_secs(180),
        "sangdam run on a wav source",
    );
    let log = stderr_of(&mut child);
    assert!(st.success(), "{log}");
    assert!(
        log.contains("call 1 started") && log.contains("call 2 ended"),
        "{log}"
    );

    let status = Status::read(&data).unwrap();
    assert_eq!(status.state, DaemonState::Stopped);
    assert_eq!(status.calls_recorded, 2, "{status:?}");
    assert_eq!(status.calls_analysed, 2);
    assert_eq!(
        status.ring_overruns, 0,
        "the line thread fell behind: {status:?}"
    );
    assert_eq!(status.backlog_calls, 0);

    let store = Store::open(&data).unwrap();
    let mut calls = store.calls().unwrap();
    calls.sort_by_key(|c| c.live.as_ref().unwrap().seq);
    assert_eq!(calls.len(), 2);
    let speech_s = speech_8k().len() as f64 / 8000.0;
    for (i, call) in calls.iter().enumerate() {
        let live = call.live.as_ref().unwrap();
        // Both calls end by the silence timeout (the line ends with 6 s of silence).
        assert_eq!(live.ended_by, EndReason::Silence, "call {i}");
        assert!(!live.audio_dropped);
        assert_eq!(call.channels, 2);
        assert_eq!(call.sample_rate, 8000);
        // Pre-roll + speech + pause + speech + 1 s of tail.
        assert!(
            (call.duration_s - (2.0 * speech_s + 1.0 + 1.5)).abs() < 1.0,
            "{} vs speech {speech_s}",
            call.duration_s
        );
        let talk = call.talk.as_ref().unwrap();
        assert!(
            talk.customer_s > 0.5 * speech_s && talk.agent_s > 0.5 * speech_s,
            "{talk:?}"
        );
        assert!(talk.overlap_s < 0.2, "{talk:?}");
        assert!(call.sentiment.is_some());
    }
    let days = store.days().unwrap();
    assert_eq!(days.iter().map(|d| d.1.calls).sum::<u64>(), 2);

    // The kept recordings through `sangdam analyze`: the same transcripts.
    let rec_dir = data.join("recordings");
    let recs: Vec<PathBuf> = calls
        .iter()
        .map(|c| rec_dir.join(format!("{}.wav", c.id.to_hex())))
        .collect();
    let data2 = tmp.path().join("data2");
    let mut c = sangdam(&data2, &models);
    c.arg("analyze").args(&recs);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(store);
    let store = Store::open(&data).unwrap();
    let store2 = Store::open(&data2).unwrap();
    for call in &calls {
        let live_utts = store.utterances(&call.id).unwrap();
        let id2 = sangdam::pipeline::call_id_of(&rec_dir.join(format!("{}.wav", call.id.to_hex())))
            .unwrap();
        let file_utts = store2.utterances(&id2).unwrap();
        assert!(!live_utts.is_empty());
        assert_eq!(live_utts, file_utts, "the daemon and analyze disagree");
    }
}

#[test]
fn sigterm_closes_the_call_keeps_it_and_tells_systemd() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("sangdam.toml");
    std::fs::write(
        &cfg,
        "[live]\nsource = \"generator\"\nexit_at_end = false\nchannels = 1\n\n\
         [[live.generator]]\nkind = \"silence\"\nseconds = 1.0\n\n\
         [[live.generator]]\nkind = \"talk\"\nseconds = 60.0\n",
    )
    .unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut c = sangdam(&data, &models);
    c.arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    let t = Instant::now();
    // Wait until the daemon is in a call.
    loop {
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if Status::read(&data).is_ok_and(|s| s.state == DaemonState::InCall) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "never in a call: {messages:?}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited early: {}",
            stderr_of(&mut child)
        );
    }
    // A few watchdog periods in the call.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let st = wait(
        &mut child,
        Duration::from_secs(120),
        "sangdam run after SIGTERM",
    );
    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let log = stderr_of(&mut child);
    assert!(st.success(), "exit {st:?}: {log}");
    assert_eq!(
        messages.first().map(String::as_str),
        Some("READY=1"),
        "{messages:?}"
    );
    assert!(
        messages.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("STATUS=")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m == "STOPPING=1"), "{messages:?}");

    let status = Status::read(&data).unwrap();
    assert_eq!(status.state, DaemonState::Stopped);
    assert_eq!(status.calls_recorded, 1, "{status:?}");
    // The call is kept: stored, or waiting in the spool for the next start.
    let store = Store::open(&data).unwrap();
    let stored = store
        .calls()
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.live
                .as_ref()
                .is_some_and(|l| l.ended_by == EndReason::Shutdown)
        })
        .count();
    let spooled = std::fs::read_dir(data.join("spool"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.path().extension().is_some_and(|x| x == "json")
                && std::fs::read_to_string(e.path())
                    .unwrap()
                    .contains("\"shutdown\"")
        })
        .count();
    assert_eq!(stored + spooled, 1, "stored {stored}, spooled {spooled}");
    let (_, out, _) = crate::cli::run({
        let mut c = sangdam(&data, &models);
        c.arg("status");
        c
    });
    assert!(out.contains("not running"), "{out}");
}

#[test]
fn status_without_a_daemon_says_how_to_start_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = sangdam(&tmp.path().join("data"), tmp.path());
    c.arg("status");
    let (out, _, err) = crate::cli::run(c);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        err.contains("not running") && err.contains("sangdam run"),
        "{err}"
    );
}

#[test]
fn a_source_the_build_lacks_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    let cfg = tmp.path().join("sangdam.toml");
    std::fs::write(&cfg, "[live]\nsource = \"wav\"\n").unwrap();
    let mut c = sangdam(&tmp.path().join("data"), &models);
    c.arg("--config").arg(&cfg).arg("run");
    let (out, _, err) = crate::cli::run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("live.wav"), "{err}");
    std::fs::write(&cfg, "[live]\nrate = 44100\n").unwrap();
    let mut c = sangdam(&tmp.path().join("data"), &models);
    c.arg("--config").arg(&cfg).arg("run");
    let (_, _, err) = crate::cli::run(c);
    assert!(
        err.contains("live.rate = 44100: use 8000 or 16000"),
        "{err}"
    );
}

#[cfg(feature = "alsa")]
mod alsa {
    use super::*;
    use sangdam::capture::alsa::{AlsaSettings, AlsaSource};
    use sangdam::capture::{AudioSource, SourceError};

    /// An asoundrc with a capture PCM that reads `raw` through ALSA's file plugin over
    /// the null device, loaded after the system's alsa.conf.
    fn asoundrc(dir: &Path, raw: &Path) -> String {
        let conf = dir.join("asound-test.conf");
        std::fs::write(
            &conf,
            format!(
                "pcm.sangdam_line {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n  hint.description \"sangdam test line\"\n}}\n",
                raw.display()
            ),
        )
        .unwrap();
        format!("/usr/share/alsa/alsa.conf:{}", conf.display())
    }

    #[test]
    fn alsa_backend_captures_a_known_call_and_transcripts_match_analyze() {
        let tmp = tempfile::tempdir().unwrap();
        let models = models(tmp.path());
        // One call: the line file's first call, as 8 kHz stereo s16le raw.
        let line = line_wav(tmp.path(), 1);
        let mut r = sangdam::audio::WavReader::open(&line).unwrap();
        let mut ch = vec![Vec::new(), Vec::new()];
        while r.read_frames(&mut ch, 1 << 20).unwrap() > 0 {}
        let frames = ch[0].len();
        let mut raw = Vec::with_capacity(frames * 4);
        let mut want = Vec::with_capacity(frames * 2);
        for f in 0..frames {
            for c in &ch {
                let v = (c[f] * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                want.push(v);
                raw.extend_from_slice(&v.to_le_bytes());
            }
        }
        let raw_path = tmp.path().join("line.raw");
        std::fs::write(&raw_path, &raw).unwrap();
        // ALSA reads its configuration once per process: this test alone sets it.
        std::env::set_var("ALSA_CONFIG_PATH", asoundrc(tmp.path(), &raw_path));

        let mut src = AlsaSource::new(AlsaSettings {
            device: "sangdam_line".into(),
            rate: 8000,
            channels: 2,
            period_frames: 160,
            buffer_frames: 1600,
        });
        let fmt = src
            .start()
            .expect("the file plugin opens like a sound card");
        assert_eq!((fmt.rate, fmt.channels), (8000, 2));
        let mut got: Vec<i16> = Vec::new();
        let mut buf = vec![0i16; fmt.period_samples()];
        while got.len() < want.len() {
            let n = src.read(&mut buf).unwrap();
            assert!(n > 0 && n % 2 == 0);
            got.extend_from_slice(&buf[..n]);
        }
        src.stop();
        got.truncate(want.len());
        assert_eq!(got, want, "ALSA delivered different samples");

        // What ALSA captured, analysed, equals the file analysed.
        let captured = tmp.path().join("captured.wav");
        let mut w = WavWriter::create(&captured, 8000, 2, WriteFormat::Pcm16).unwrap();
        let f: Vec<f32> = got.iter().map(|&x| f32::from(x) / 32768.0).collect();
        w.write_interleaved(&f).unwrap();
        w.finish().unwrap();
        let transcripts = |data: &Path, wav: &Path| {
            let mut c = sangdam(data, &models);
            c.arg("analyze").arg(wav);
            let out = c.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let store = Store::open(data).unwrap();
            let calls = store.calls().unwrap();
            store.utterances(&calls[0].id).unwrap()
        };
        let a = transcripts(&tmp.path().join("d1"), &line);
        let b = transcripts(&tmp.path().join("d2"), &captured);
        assert!(!a.is_empty());
        assert_eq!(a, b);

        // The second backend: cpal finds the same PCM by its ALSA name and delivers the
        // same samples. (The file plugin is not paced, so cpal's callback outruns the
        // reader: only the first ring-full is compared.)
        #[cfg(feature = "cpal")]
        {
            use sangdam::capture::cpal::{CpalSettings, CpalSource};
            let mut src = CpalSource::new(CpalSettings {
                device: "sangdam_line".into(),
                rate: 8000,
                channels: 2,
                period_frames: 160,
            });
            let fmt = src.start().expect("cpal opens the file plugin");
            let mut got: Vec<i16> = Vec::new();
            let mut buf = vec![0i16; fmt.period_samples()];
            while got.len() < 32_000 {
                let n = src.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            src.stop();
            got.truncate(32_000);
            assert_eq!(got, want[..32_000], "cpal delivered different samples");
        }

        // A device that does not exist is "not found" with the fix, not a panic.
        let mut missing = AlsaSource::new(AlsaSettings {
            device: "hw:97,0".into(),
            rate: 8000,
            channels: 1,
            period_frames: 160,
            buffer_frames: 1600,
        });
        match missing.start() {
            Err(e @ SourceError::Missing(_)) => {
                assert!(e.to_string().contains("arecord -L"), "{e}")
            }
            other => panic!("expected Missing, got {:?}", other.map(|_| ())),
        }

        // board/asound.conf parses and names the PCMs sangdam.toml uses.
        let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("board/asound.conf");
        std::env::set_var(
            "ALSA_CONFIG_PATH",
            format!("/usr/share/alsa/alsa.conf:{}", board.display()),
        );
        let names: Vec<String> = ::alsa::device_name::HintIter::new_str(None, "pcm")
            .expect("board/asound.conf parses")
            .filter_map(|h| h.name)
            .collect();
        for pcm in ["phone_line", "phone_line_mono"] {
            assert!(names.iter().any(|n| n == pcm), "{pcm} not in {names:?}");
        }
    }
}

/// The off-hook line through the panel's file backend: a call is exactly the time the
/// handset is off the hook, the LED is on during it; and `sangdam sync --now` asks the
/// running daemon to sync (its store is locked by the daemon) and reports the result.
#[test]
fn hook_line_decides_calls_and_sync_now_goes_through_the_running_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let models = models(tmp.path());
    let data = tmp.path().join("data");
    // Calls of past days for the outbox.
    crate::insights::fill_store(&data, 8);
    let hub_dir = tmp.path().join("hub");
    let storage = std::sync::Arc::new(sangdam_hub::SledStorage::open(&hub_dir).unwrap());
    let key = "22".repeat(32);
    let mut reg = sangdam_hub::Registry::new();
    reg.insert(
        "desk-7",
        sangdam_wire::parse_key(&key).unwrap(),
        "대구 1지점",
    );
    let hub = sangdam_hub::serve(
        sangdam_hub::HubConfig::new("127.0.0.1:0".parse().unwrap()),
        reg,
        storage.clone(),
    )
    .unwrap();
    let panel = tmp.path().join("panel");
    let cfg = tmp.path().join("sangdam.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsource = \"generator\"\nexit_at_end = false\n\n[[live.generator]]\nkind = \"talk\"\nseconds = 600.0\n\n\
             [panel]\nbackend = \"file\"\nfile_dir = {panel:?}\nhook_line = 22\n\n\
             [sync]\nenabled = true\nhub_url = \"{}\"\nallow_plain_http = true\ndevice_id = \"desk-7\"\nkey = \"{key}\"\n",
            hub.url()
        ),
    )
    .unwrap();
    // A config holding the key must not be readable by others (it is refused).
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let mut c = sangdam(&data, &models);
    c.arg("--config")
        .arg(&cfg)
        .arg("run")
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let wait_for = |what: &str, f: &dyn Fn(&Status) -> bool| {
        let t = Instant::now();
        loop {
            if Status::read(&data).is_ok_and(|s| f(&s)) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Talk on the line, but on the hook: no call.
    wait_for("capture", &|s| s.device_running);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(Status::read(&data).unwrap().state, DaemonState::Idle);
    std::fs::write(panel.join("hook"), "1").unwrap();
    wait_for("the call", &|s| s.state == DaemonState::InCall);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(panel.join("led")).unwrap().trim(),
        "1",
        "LED on in a call"
    );
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(panel.join("hook"), "0").unwrap();
    wait_for("the call to be stored", &|s| s.calls_analysed == 1);

    // sync --now while the daemon holds the store.
    let (out, stdout, stderr) = crate::cli::run({
        let mut c = sangdam(&data, &models);
        c.arg("--config").arg(&cfg).args(["sync", "--now"]);
        c
    });
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("asked the running daemon"), "{stderr}");
    assert!(stdout.contains("0 batches waiting"), "{stdout}");
    let batches = storage.batches().unwrap();
    assert!(!batches.is_empty());
    assert_eq!(
        batches.iter().map(|b| b.report.counters.calls).sum::<u64>(),
        8
    );

    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let st = wait(
        &mut child,
        Duration::from_secs(60),
        "sangdam run after SIGTERM",
    );
    let log = stderr_of(&mut child);
    assert!(st.success(), "{log}");
    let store = Store::open(&data).unwrap();
    let live: Vec<_> = store
        .calls()
        .unwrap()
        .into_iter()
        .filter_map(|c| c.live.map(|l| (l, c.duration_s)))
        .collect();
    assert_eq!(live.len(), 1, "{log}");
    assert_eq!(live[0].0.ended_by, EndReason::OnHook);
    assert!(
        (1.5..4.0).contains(&live[0].1),
        "off the hook for about 2.3 s: {}",
        live[0].1
    );
    hub.stop();
}
