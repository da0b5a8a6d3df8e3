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
