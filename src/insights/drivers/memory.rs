//! Memory accounting of the driver run: the bytes its structures hold (by capacity),
//! and the largest working set seen, checked against [`super::DriverSettings::memory_bound`].

use std::collections::HashMap;
use std::mem::size_of;

/// Bytes per entry of a `HashMap` of 16-24 byte entries at its worst load (hashbrown
/// doubles its buckets at 7/8 full; one control byte per bucket), and its fixed extra.
pub(super) const MAP_ENTRY_BYTES: usize = 64;
pub(super) const MAP_SLACK: usize = 1024;

pub(super) fn map_bytes<K, V>(m: &HashMap<K, V>) -> usize {
    let buckets = if m.capacity() == 0 {
        0
    } else {
        (m.capacity() * 8 / 7 + 1).next_power_of_two()
    };
    buckets * (size_of::<(K, V)>() + 1) + 16
}

pub(super) fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

/// The largest live working set seen, in bytes: `base` is what the caller holds while a
/// step adds its own scratch.
#[derive(Debug, Default)]
pub(super) struct Footprint {
    pub(super) base: usize,
    pub(super) peak: usize,
}

impl Footprint {
    pub(super) fn at(&mut self, extra: usize) {
        self.peak = self.peak.max(self.base + extra);
    }
}
