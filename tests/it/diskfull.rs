//! A full disk: the store lives on a small tmpfs (mounted by the test; skipped with a
//! printed reason where mounting is not allowed). When the disk fills, `analyze` stops
//! storing with an error that names the store and free space, nothing stored before is
//! lost, and once space returns the same command stores the rest.

use std::path::{Path, PathBuf};
use std::process::Command;

use sangdam::store::Store;

use crate::crash::make_calls;
use crate::support::fixture_models;

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output();
    match st {
        Ok(o) if o.status.success() => Some(Mount(dir.to_owned())),
        Ok(o) => {
            eprintln!(
                "SKIPPED disk-full test: cannot mount a tmpfs here ({}); run as root on Linux",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED disk-full test: no mount command ({e})");
            None
        }
    }
}

fn fill(dir: &Path) -> PathBuf {
    // Write until the filesystem refuses: the disk is then full.
    use std::io::Write;
    let p = dir.join("ballast");
    let mut f = std::fs::File::create(&p).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    p
}

#[test]
fn full_disk_stops_storing_loses_nothing_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let Some(_mount) = mount_tmpfs(&mnt, "4m") else {
        return;
    };
    let models = fixture_models(tmp.path(), "model.onnx");
    let calls = make_calls(tmp.path(), 6);
    let data = mnt.join("data");
    let analyze = |files: &[PathBuf]| {
        Command::new(env!("CARGO_BIN_EXE_sangdam"))
            .env("SANGDAM_DATA", &data)
            .env("SANGDAM_MODELS", &models)
            .env_remove("RUST_LOG")
            .arg("analyze")
            .args(files)
            .output()
            .unwrap()
    };
    let out = analyze(&calls[..3]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ballast = fill(&mnt);
    let out = analyze(&calls[3..]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("with the disk full: exit {:?}\n{stderr}", out.status.code());
    assert!(!out.status.success(), "storing on a full disk must fail");
    assert_ne!(out.status.code(), Some(101), "it panicked: {stderr}");
    assert!(
        stderr.contains("No space left") && stderr.contains("free space"),
        "the error must say the disk is full: {stderr}"
    );

    // Space comes back: what was stored is still there, and the rest goes in.
    std::fs::remove_file(&ballast).unwrap();
    {
        let store = Store::open(&data).unwrap();
        assert_eq!(
            store.calls().unwrap().len(),
            3,
            "calls stored before the disk filled were lost"
        );
    }
    let out = analyze(&calls);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&data).unwrap();
    let stored = store.calls().unwrap();
    assert_eq!(stored.len(), 6);
    let counted: u64 = store.days().unwrap().iter().map(|(_, d)| d.calls).sum();
    assert_eq!(counted, 6);
}

/// The daemon's spool on a full disk: recording pauses with a clear reason, what was
/// recorded stays a valid WAV, the call is still counted, and a call that cannot be
/// recorded at all is returned to be stored without audio.
#[test]
fn a_full_disk_pauses_recording_and_keeps_the_calls() {
    use sangdam::live::{EndReason, Spool};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("small");
    let Some(_m) = mount_tmpfs(&dir, "256k") else {
        return;
    };
    let spool = Spool::open(&dir.join("spool"), 1_000_000_000).unwrap();
    let mut rec = spool.begin(1, "test", 8000, 1);
    let period: Vec<i16> = (0..160)
        .map(|i| ((i as f32 * 0.3).sin() * 9000.0) as i16)
        .collect();
    // 30 s of audio (480 kB) into 256 kB.
    for _ in 0..1500 {
        spool.write(&mut rec, &period);
    }
    assert!(rec.is_paused());
    let why = rec.error.clone().unwrap();
    assert!(why.contains("space"), "{why}");
    let (recorded, unrecorded) = (rec.meta.recorded_frames, rec.meta.unrecorded_frames);
    assert!(
        recorded > 8000 && unrecorded > 8000,
        "{recorded} {unrecorded}"
    );
    assert_eq!(recorded + unrecorded, 1500 * 160);
    let seq = rec.meta.seq;
    // The meta and the sealed audio are on the full disk already: commit keeps them.
    let without_audio = spool.commit(rec, EndReason::Silence).unwrap();
    assert!(without_audio.is_empty(), "the partial recording is kept");
    let (path, meta) = spool.take(std::time::Duration::ZERO).unwrap();
    assert_eq!(meta.seq, seq);
    assert!((meta.unrecorded_s() - unrecorded as f64 / 8000.0).abs() < 1e-9);
    let mut r = sangdam::audio::WavReader::open(&path).unwrap();
    let mut ch = vec![Vec::new()];
    let mut n = 0;
    loop {
        let k = r.read_frames(&mut ch, 1 << 16).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    assert_eq!(
        n, recorded,
        "the sealed file holds exactly the recorded frames"
    );
    spool.release();
    // The next call cannot even start a file: it is tracked without audio.
    let mut next = spool.begin(2, "test", 8000, 1);
    spool.write(&mut next, &period);
    assert!(next.is_paused());
    let out = spool.commit(next, EndReason::Silence).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].started_at, 2);
    assert_eq!(out[0].unrecorded_frames, 160);
}
