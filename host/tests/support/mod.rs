//! Shared by the host tool's tests: paths into ../shared and a small `.npy` reader.
#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;

/// `../shared/...` from the workspace root; cargo runs these tests in `host/`.
pub fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from("../../shared").join(rel);
    assert!(
        p.exists(),
        "{} is missing (the tests need ../shared next to the checkout)",
        p.display()
    );
    p
}

/// Shape and values (widened to f64) of a little-endian C-order `.npy` of f4, f8 or i8.
pub fn npy(path: &std::path::Path) -> (Vec<usize>, Vec<f64>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let shape: Vec<usize> = h
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let body = &b[10 + hl..];
    let data = if h.contains("<f8") {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else if h.contains("<f4") {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect()
    } else if h.contains("<i8") {
        body.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect()
    } else {
        panic!("{}: dtype in {h}", path.display())
    };
    (shape, data)
}
