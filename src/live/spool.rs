//! The bounded on-disk queue of recorded calls waiting for recognition.
//!
//! Every call is recorded straight to the spool as it happens (`NNNNNNNNNN.wav.part`, a
//! 16-bit WAV at the line's rate, with `NNNNNNNNNN.json` beside it), so a call of any
//! length costs no memory, a shutdown mid-call loses nothing, and recognition that runs
//! slower than real time (a busy hour on a Pi 4) simply leaves a backlog. When the call
//! ends the file is flushed, fsynced and renamed to `.wav`: only whole calls are queued.
//! The analysis worker takes the oldest, and deletes it once the call is stored.
//!
//! # Bounds
//!
//! The spool holds at most `max_bytes`. When a finished call would exceed it, the oldest
//! queued audio is discarded (not the call: the caller stores a record of it with
//! `audio_dropped` set, so it is counted) and the number is kept in [`SpoolStats`]. A
//! recording that alone reaches the bound stops recording (the rest of the call is
//! counted as unrecorded).
//!
//! # Start-up
//!
//! `.part` files are calls the daemon never closed (power cut, crash, SIGKILL). The WAV
//! header of such a file says size 0, which the WAV reader reads to the end of the file,
//! so they are queued as they are, marked [`EndReason::Interrupted`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::EndReason;
use crate::audio::{WavWriter, WriteFormat};

/// What the spool keeps about a call besides its audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolMeta {
    pub seq: u64,
    pub started_at: u64,
    pub line: String,
    pub rate: u32,
    pub channels: u16,
    #[serde(default)]
    pub ended_by: Option<EndReason>,
    #[serde(default)]
    pub marked: bool,
    /// Frames of the call that were recorded.
    #[serde(default)]
    pub recorded_frames: u64,
    /// Frames of the call that could not be recorded (disk full, spool bound).
    #[serde(default)]
    pub unrecorded_frames: u64,
}

impl SpoolMeta {
    pub fn duration_s(&self) -> f64 {
        (self.recorded_frames + self.unrecorded_frames) as f64 / self.rate.max(1) as f64
    }

    pub fn unrecorded_s(&self) -> f64 {
        self.unrecorded_frames as f64 / self.rate.max(1) as f64
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpoolStats {
    /// Calls queued (whole), not counting one being recorded.
    pub queued: usize,
    pub bytes: u64,
    pub max_bytes: u64,
    /// Calls whose audio was discarded because the spool was full, since start.
    pub dropped: u64,
    /// Calls that could not be analysed and were moved to `spool/failed/`.
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    #[error("spool folder {path}: {source} (check free space and that the sangdam user may write there)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Inner {
    next_seq: u64,
    /// seq → file size, whole calls only.
    queue: BTreeMap<u64, u64>,
    busy: Option<u64>,
    recording_bytes: u64,
    dropped: u64,
    failed: u64,
    /// Calls whose audio was discarded to make room, not yet handed to the caller.
    evicted: Vec<SpoolMeta>,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    inner: Mutex<Inner>,
    ready: Condvar,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Spool {
    /// Opens (creating) the spool in `dir`, queueing whole calls left from before and the
    /// calls a power cut interrupted.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut queue = BTreeMap::new();
        let mut next_seq = 1;
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Ok(seq) = stem.parse::<u64>() else {
                continue;
            };
            next_seq = next_seq.max(seq + 1);
            let path = entry.path();
            match ext {
                "wav" => {
                    let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    queue.insert(seq, len);
                }
                "wav.part" => {
                    let whole = dir.join(format!("{seq:010}.wav"));
                    let meta_path = dir.join(format!("{seq:010}.json"));
                    if let Ok(mut meta) = read_meta(&meta_path) {
                        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                        let frame = 2 * u64::from(meta.channels.max(1));
                        meta.recorded_frames = len.saturating_sub(44) / frame;
                        meta.ended_by = Some(EndReason::Interrupted);
                        write_meta(&meta_path, &meta)?;
                        std::fs::rename(&path, &whole).map_err(io_err(&path))?;
                        tracing::warn!(
                            "spool: call {seq} was interrupted (power cut or crash); queued the {:.1} s recorded",
                            meta.duration_s()
                        );
                        queue.insert(seq, len);
                    } else {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                _ => {}
            }
        }
        // Whole calls whose metadata is missing cannot be stored as live calls: set aside.
        queue.retain(|seq, _| dir.join(format!("{seq:010}.json")).is_file());
        let failed_dir = dir.join("failed");
        let failed = std::fs::read_dir(&failed_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
                    .count() as u64
            })
            .unwrap_or(0);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            inner: Mutex::new(Inner {
                next_seq,
                queue,
                busy: None,
                recording_bytes: 0,
                dropped: 0,
                failed,
                evicted: Vec::new(),
            }),
            ready: Condvar::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn wav_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:010}.wav"))
    }

    fn part_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:010}.wav.part"))
    }

    pub fn meta_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:010}.json"))
    }

    pub fn stats(&self) -> SpoolStats {
        let g = self.lock();
        SpoolStats {
            queued: g.queue.len(),
            bytes: g.queue.values().sum::<u64>() + g.recording_bytes,
            max_bytes: self.max_bytes,
            dropped: g.dropped,
            failed: g.failed,
        }
    }

    /// Starts recording a call. When the file cannot be created (disk full) the
    /// recording starts paused: the call is still tracked and counted, without audio.
    pub fn begin(&self, started_at: u64, line: &str, rate: u32, channels: u16) -> Recording {
        let seq = {
            let mut g = self.lock();
            let s = g.next_seq;
            g.next_seq += 1;
            s
        };
        let meta = SpoolMeta {
            seq,
            started_at,
            line: line.to_owned(),
            rate,
            channels,
            ended_by: None,
            marked: false,
            recorded_frames: 0,
            unrecorded_frames: 0,
        };
        let path = self.part_path(seq);
        let mut rec = Recording {
            writer: None,
            meta,
            path: path.clone(),
            bytes: 44,
            scratch: Vec::new(),
            error: None,
            sealed: false,
        };
        let meta_path = self.meta_path(seq);
        if let Err(e) = write_meta(&meta_path, &rec.meta) {
            rec.pause(e.to_string());
            return rec;
        }
        match WavWriter::create(&path, rate, channels, WriteFormat::Pcm16) {
            Ok(w) => rec.writer = Some(w),
            Err(e) => {
                let _ = std::fs::remove_file(&meta_path);
                let _ = std::fs::remove_file(&path);
                rec.pause(format!("{}: {e}", path.display()));
            }
        }
        rec
    }

    /// Drops a recording that is too short to keep.
    pub fn discard(&self, rec: Recording) {
        drop(rec.writer);
        let _ = std::fs::remove_file(&rec.path);
        let _ = std::fs::remove_file(self.meta_path(rec.meta.seq));
        self.lock().recording_bytes = 0;
    }

    /// Discards the oldest queued audio (never the call being analysed) until a
    /// recording of `recording` bytes plus `more` fits. Returns whether it fits.
    fn make_room(&self, recording: u64, more: u64) -> bool {
        let mut g = self.lock();
        loop {
            let queued: u64 = g.queue.values().sum();
            if queued + recording + more <= self.max_bytes {
                return true;
            }
            let busy = g.busy;
            let Some(oldest) = g.queue.keys().copied().find(|s| Some(*s) != busy) else {
                return false;
            };
            g.queue.remove(&oldest);
            g.dropped += 1;
            let mp = self.meta_path(oldest);
            if let Ok(m) = read_meta(&mp) {
                g.evicted.push(m);
            }
            let _ = std::fs::remove_file(self.wav_path(oldest));
            let _ = std::fs::remove_file(&mp);
            tracing::warn!(
                "spool full ({} MB): discarded the audio of call {oldest}, the oldest waiting; its record and counters are kept",
                self.max_bytes / 1_000_000
            );
        }
    }

    /// Calls whose audio was discarded to make room since the last call; the caller
    /// stores them as counted calls without a transcript.
    pub fn take_evicted(&self) -> Vec<SpoolMeta> {
        std::mem::take(&mut self.lock().evicted)
    }

    /// Writes frames to a recording, discarding the oldest queued audio when the spool is
    /// full. A write error (disk full), or a recording that alone fills the spool, pauses
    /// the recording for the rest of the call; those frames are counted as unrecorded.
    pub fn write(&self, rec: &mut Recording, frames: &[i16]) {
        let ch = rec.meta.channels.max(1) as usize;
        let n = (frames.len() / ch) as u64;
        if rec.writer.is_none() {
            rec.meta.unrecorded_frames += n;
            return;
        }
        let bytes = frames.len() as u64 * 2;
        if !self.make_room(rec.bytes, bytes) {
            rec.pause("the spool is full (live.spool_max_mb)".into());
            rec.meta.unrecorded_frames += n;
            return;
        }
        rec.scratch.clear();
        rec.scratch
            .extend(frames.iter().map(|&x| f32::from(x) / 32768.0));
        let w = rec.writer.as_mut().expect("checked above");
        match w.write_interleaved(&rec.scratch) {
            Ok(()) => {
                rec.meta.recorded_frames += n;
                rec.bytes += bytes;
                self.lock().recording_bytes = rec.bytes;
            }
            Err(e) => {
                rec.pause(e.to_string());
                rec.meta.unrecorded_frames += n;
            }
        }
    }

    /// Closes a recording and queues it. Returns the calls whose audio was discarded to
    /// stay within the bound (oldest first); the caller records them as counted calls.
    /// A call with no audio at all is returned as discarded too.
    pub fn commit(
        &self,
        mut rec: Recording,
        ended_by: EndReason,
    ) -> Result<Vec<SpoolMeta>, SpoolError> {
        rec.meta.ended_by = Some(ended_by);
        let seq = rec.meta.seq;
        let finished = match rec.writer.take() {
            Some(w) => w
                .finish()
                .and_then(|buf| {
                    buf.into_inner()
                        .map_err(|e| crate::audio::AudioError::Write(e.into_error()))
                })
                .and_then(|f: File| f.sync_all().map_err(crate::audio::AudioError::Write))
                .map_err(|e| e.to_string()),
            // Paused: the file was sealed at the last whole frame when it paused.
            None if rec.sealed => Ok(()),
            None => Err(rec.error.clone().unwrap_or_else(|| "not recorded".into())),
        };
        let meta_path = self.meta_path(seq);
        self.lock().recording_bytes = 0;
        if finished.is_err() || rec.meta.recorded_frames == 0 {
            // Nothing usable: the call is counted by the caller, without audio.
            let _ = std::fs::remove_file(&rec.path);
            let _ = std::fs::remove_file(&meta_path);
            let mut out = self.take_evicted();
            out.push(rec.meta);
            return Ok(out);
        }
        write_meta(&meta_path, &rec.meta)?;
        let whole = self.wav_path(seq);
        std::fs::rename(&rec.path, &whole).map_err(io_err(&whole))?;
        sync_dir(&self.dir);
        self.lock().queue.insert(seq, rec.bytes);
        self.make_room(0, 0);
        let dropped = self.take_evicted();
        self.ready.notify_all();
        Ok(dropped)
    }

    /// Marks the call being recorded (or, when `rec` is `None`, the newest queued call)
    /// for review.
    pub fn mark_newest(&self) -> Option<u64> {
        let seq = *self.lock().queue.keys().next_back()?;
        let p = self.meta_path(seq);
        let mut m = read_meta(&p).ok()?;
        m.marked = true;
        write_meta(&p, &m).ok()?;
        Some(seq)
    }

    /// The oldest queued call, waiting up to `wait` for one. It stays queued (and is not
    /// discarded) until [`Spool::done`] or [`Spool::failed`].
    pub fn take(&self, wait: Duration) -> Option<(PathBuf, SpoolMeta)> {
        let mut g = self.lock();
        if g.queue.is_empty() {
            g = self
                .ready
                .wait_timeout(g, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        loop {
            let seq = *g.queue.keys().next()?;
            match read_meta(&self.meta_path(seq)) {
                Ok(meta) => {
                    g.busy = Some(seq);
                    return Some((self.wav_path(seq), meta));
                }
                Err(_) => {
                    g.queue.remove(&seq);
                    g.failed += 1;
                    let _ = std::fs::create_dir_all(self.dir.join("failed"));
                    let _ = std::fs::rename(
                        self.wav_path(seq),
                        self.dir.join("failed").join(format!("{seq:010}.wav")),
                    );
                }
            }
        }
    }

    /// The call is stored: delete its audio.
    pub fn done(&self, seq: u64) {
        let mut g = self.lock();
        g.queue.remove(&seq);
        g.busy = None;
        let _ = std::fs::remove_file(self.wav_path(seq));
        let _ = std::fs::remove_file(self.meta_path(seq));
    }

    /// The call is stored; keep its audio as `DIR/<name>.wav` (marked calls, or all with
    /// `live.keep_audio`), then prune `DIR` to `max_bytes`, oldest first.
    pub fn done_keeping(&self, seq: u64, dir: &Path, name: &str, max_bytes: u64) {
        let _ = std::fs::create_dir_all(dir);
        let dest = dir.join(format!("{name}.wav"));
        if std::fs::rename(self.wav_path(seq), &dest).is_err() {
            tracing::warn!(
                "could not keep the audio of call {seq} in {}",
                dir.display()
            );
        }
        self.done(seq);
        prune_oldest(dir, max_bytes);
    }

    /// The call cannot be analysed: keep its audio in `failed/` for a technician.
    pub fn failed(&self, seq: u64) {
        let mut g = self.lock();
        g.queue.remove(&seq);
        g.busy = None;
        g.failed += 1;
        let dir = self.dir.join("failed");
        let _ = std::fs::create_dir_all(&dir);
        for p in [self.wav_path(seq), self.meta_path(seq)] {
            if let Some(name) = p.file_name() {
                let _ = std::fs::rename(&p, dir.join(name));
            }
        }
    }

    /// The worker stops with the call unfinished: it stays queued for the next start.
    pub fn release(&self) {
        self.lock().busy = None;
    }

    /// Wakes a worker waiting in [`Spool::take`].
    pub fn wake(&self) {
        self.ready.notify_all();
    }
}

/// A call being recorded.
pub struct Recording {
    writer: Option<WavWriter<BufWriter<File>>>,
    pub meta: SpoolMeta,
    path: PathBuf,
    bytes: u64,
    scratch: Vec<f32>,
    /// Why recording paused, if it did.
    pub error: Option<String>,
    /// The file was closed at its last whole frame when recording paused.
    sealed: bool,
}

impl Recording {
    fn pause(&mut self, why: String) {
        if self.error.is_none() {
            tracing::error!(
                "recording of call {} paused: {why}; the call is still counted",
                self.meta.seq
            );
        }
        self.error = Some(why);
        if let Some(w) = self.writer.take() {
            // Keep what was recorded: cut the file at the last whole frame written and
            // give the header its sizes (a failed write may have left part of a frame).
            drop(w);
            let frame = 2 * u64::from(self.meta.channels.max(1));
            let data = self.meta.recorded_frames * frame;
            self.sealed = seal(&self.path, data).is_ok();
        }
    }

    pub fn is_paused(&self) -> bool {
        self.writer.is_none()
    }
}

/// Deletes the oldest files in `dir` until it holds at most `max_bytes`.
fn prune_oldest(dir: &Path, max_bytes: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| {
                (
                    m.modified().unwrap_or(std::time::UNIX_EPOCH),
                    m.len(),
                    e.path(),
                )
            })
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

/// Truncates a 44-byte-header WAV to `data` bytes of samples and writes its sizes.
fn seal(path: &Path, data: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(44 + data)?;
    let data32 = u32::try_from(data).unwrap_or(u32::MAX - 36);
    f.seek(SeekFrom::Start(4))?;
    f.write_all(&(data32 + 36).to_le_bytes())?;
    f.seek(SeekFrom::Start(40))?;
    f.write_all(&data32.to_le_bytes())?;
    f.sync_all()
}

fn read_meta(path: &Path) -> Result<SpoolMeta, SpoolError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| SpoolError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Metadata files are padded to this size with spaces (valid JSON) and rewritten in
/// place, so that closing a call on a full disk needs no new disk blocks.
const META_BYTES: usize = 1024;

fn write_meta(path: &Path, meta: &SpoolMeta) -> Result<(), SpoolError> {
    use std::io::Write;
    let mut bytes = serde_json::to_vec(meta).unwrap_or_default();
    if bytes.len() < META_BYTES {
        bytes.resize(META_BYTES, b' ');
    }
    // In place when the file is there and large enough (full disk safe), else by a
    // temporary file and a rename.
    let in_place = std::fs::metadata(path).is_ok_and(|m| m.len() as usize == bytes.len());
    let r = if in_place {
        (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })()
    } else {
        let tmp = path.with_extension("json.tmp");
        (|| -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    };
    r.map_err(io_err(path))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, ch: usize) -> Vec<i16> {
        (0..frames * ch)
            .map(|i| ((i as f32 * 0.1).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn record_commit_take_done() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10_000_000).unwrap();
        let mut rec = spool.begin(1_700_000_000, "test", 8000, 2);
        let audio = tone(8000, 2);
        spool.write(&mut rec, &audio);
        assert_eq!(
            spool.take(Duration::ZERO),
            None,
            "a recording is not queued yet"
        );
        assert!(spool.commit(rec, EndReason::Silence).unwrap().is_empty());
        let (path, meta) = spool.take(Duration::ZERO).unwrap();
        assert_eq!(meta.recorded_frames, 8000);
        assert_eq!(meta.ended_by, Some(EndReason::Silence));
        // The file is a WAV with exactly the samples written.
        let mut r = crate::audio::WavReader::open(&path).unwrap();
        let mut ch = vec![Vec::new(), Vec::new()];
        assert_eq!(r.read_frames(&mut ch, 100_000).unwrap(), 8000);
        assert_eq!((ch[1][5] * 32768.0) as i16, audio[11]);
        spool.done(meta.seq);
        assert!(!path.exists());
        assert_eq!(spool.stats().queued, 0);
    }

    #[test]
    fn full_spool_discards_the_oldest_audio_and_says_which() {
        let dir = tempfile::tempdir().unwrap();
        // Room for about two calls of 1 s at 8 kHz mono (16 kB each).
        let spool = Spool::open(dir.path(), 40_000).unwrap();
        let mut seqs = Vec::new();
        let mut dropped = Vec::new();
        for k in 0..4 {
            let mut rec = spool.begin(100 + k, "test", 8000, 1);
            seqs.push(rec.meta.seq);
            spool.write(&mut rec, &tone(8000, 1));
            dropped.extend(spool.commit(rec, EndReason::Silence).unwrap());
        }
        let st = spool.stats();
        assert_eq!(st.queued, 2);
        assert_eq!(st.dropped, 2);
        assert!(st.bytes <= 40_000);
        let d: Vec<u64> = dropped.iter().map(|m| m.seq).collect();
        assert_eq!(d, seqs[..2]);
        assert_eq!(dropped[0].started_at, 100);
        // The newest two are what is left.
        let (_, m) = spool.take(Duration::ZERO).unwrap();
        assert_eq!(m.seq, seqs[2]);
    }

    #[test]
    fn a_recording_that_reaches_the_bound_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10_000).unwrap();
        let mut rec = spool.begin(1, "test", 8000, 1);
        for _ in 0..10 {
            spool.write(&mut rec, &tone(800, 1));
        }
        assert!(rec.is_paused());
        assert!(rec.error.as_deref().unwrap().contains("spool is full"));
        assert!(rec.meta.recorded_frames > 0 && rec.meta.unrecorded_frames > 0);
        assert_eq!(rec.meta.recorded_frames + rec.meta.unrecorded_frames, 8000);
        assert!(spool.commit(rec, EndReason::Silence).unwrap().is_empty());
    }

    #[test]
    fn interrupted_recordings_are_queued_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let seq = {
            let spool = Spool::open(dir.path(), 10_000_000).unwrap();
            let mut rec = spool.begin(5, "test", 16000, 1);
            spool.write(&mut rec, &tone(16000, 1));
            // Flushed to the file but never closed: what a power cut leaves.
            rec.writer.as_mut().unwrap().flush().unwrap();
            let seq = rec.meta.seq;
            std::mem::forget(rec);
            seq
        };
        let spool = Spool::open(dir.path(), 10_000_000).unwrap();
        let (path, meta) = spool.take(Duration::ZERO).unwrap();
        assert_eq!(meta.seq, seq);
        assert_eq!(meta.ended_by, Some(EndReason::Interrupted));
        assert_eq!(meta.recorded_frames, 16000);
        let mut r = crate::audio::WavReader::open(&path).unwrap();
        let mut ch = vec![Vec::new()];
        let mut n = 0;
        loop {
            let k = r.read_frames(&mut ch, 100_000).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        assert_eq!(n, 16000);
        // New calls do not reuse its number.
        assert!(spool.begin(6, "test", 16000, 1).meta.seq > seq);
    }
}
