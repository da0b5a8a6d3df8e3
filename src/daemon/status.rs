//! What `sangdam status` shows: a JSON snapshot the daemon rewrites every second in the
//! data folder (`status.json`, written to a temporary file and renamed, so a reader never
//! sees half of it). The store itself is locked by the running daemon, so the snapshot is
//! how other processes see it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::panel::LedState;

pub const STATUS_FILE: &str = "status.json";

/// What the daemon is doing, as the status file and `sangdam status` name it. The first
/// six are the LED's states ([`DaemonState::led`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    #[default]
    Idle,
    InCall,
    Backlog,
    Syncing,
    Muted,
    Error,
    /// SIGTERM or SIGINT came: closing the call, finishing the analysis.
    Stopping,
    /// The daemon has exited (the last snapshot it wrote).
    Stopped,
}

impl DaemonState {
    /// The name in the status file: `idle`, `in_call`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Idle => "idle",
            DaemonState::InCall => "in_call",
            DaemonState::Backlog => "backlog",
            DaemonState::Syncing => "syncing",
            DaemonState::Muted => "muted",
            DaemonState::Error => "error",
            DaemonState::Stopping => "stopping",
            DaemonState::Stopped => "stopped",
        }
    }

    /// The LED's pattern for this state (stopping and stopped blink as idle).
    pub fn led(self) -> LedState {
        match self {
            DaemonState::InCall => LedState::InCall,
            DaemonState::Backlog => LedState::Backlog,
            DaemonState::Syncing => LedState::Syncing,
            DaemonState::Muted => LedState::Muted,
            DaemonState::Error => LedState::Error,
            DaemonState::Idle | DaemonState::Stopping | DaemonState::Stopped => LedState::Idle,
        }
    }
}

impl std::fmt::Display for DaemonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    pub started_unix: u64,
    pub updated_unix: u64,
    pub state: DaemonState,
    pub source: String,
    pub device_running: bool,
    pub rate: u32,
    pub channels: u16,
    pub muted: bool,
    /// Calls waiting for recognition, and their audio on disk.
    pub backlog_calls: usize,
    pub backlog_bytes: u64,
    pub spool_max_bytes: u64,
    /// Processing time / audio time of the calls finished in the last hour.
    pub rtf_last_hour: Option<f64>,
    pub calls_recorded: u64,
    pub calls_analysed: u64,
    pub calls_without_audio: u64,
    pub short_calls_ignored: u64,
    pub audio_dropped_calls: u64,
    pub ring_overruns: u64,
    pub dropped_samples: u64,
    pub xruns: u64,
    pub device_errors: u64,
    pub stream_gaps: u64,
    pub analysis_errors: u64,
    pub failed_calls: u64,
    pub store_errors: u64,
    pub recording_paused: bool,
    pub last_error: Option<String>,
    pub data_bytes: u64,
    pub disk_free_bytes: Option<u64>,
    /// Upstream sync: unix time of the last batch the hub acknowledged, batches waiting.
    pub last_sync_unix: Option<u64>,
    pub outbox_batches: Option<u64>,
    pub sync_error: Option<String>,
}

impl Status {
    pub fn led(&self) -> LedState {
        self.state.led()
    }

    /// Writes the snapshot atomically.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let tmp = data_dir.join(".status.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default())?;
        std::fs::rename(&tmp, data_dir.join(STATUS_FILE))
    }

    pub fn read(data_dir: &Path) -> std::io::Result<Status> {
        let bytes = std::fs::read(data_dir.join(STATUS_FILE))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Whether the process that wrote it still runs.
    pub fn alive(&self) -> bool {
        // SAFETY: kill with signal 0 only checks that the process exists.
        self.pid != 0 && unsafe { libc::kill(self.pid as libc::pid_t, 0) } == 0
    }

    /// The human-readable report of `sangdam status`.
    pub fn render(&self, now: u64) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let running = self.alive() && self.state != DaemonState::Stopped;
        let age = now.saturating_sub(self.updated_unix);
        let _ = writeln!(
            o,
            "sangdam {}: {}",
            self.version,
            if running {
                format!(
                    "running (pid {}), {}",
                    self.pid,
                    self.state.as_str().replace('_', " ")
                )
            } else {
                format!("not running (last status {} ago)", human_secs(age))
            }
        );
        let _ = writeln!(
            o,
            "  source        {} ({}, {} Hz, {} ch){}",
            self.source,
            if self.device_running {
                "capturing"
            } else {
                "not capturing"
            },
            self.rate,
            self.channels,
            if self.muted { ", MUTED" } else { "" }
        );
        let _ = writeln!(
            o,
            "  backlog       {} calls, {:.1} of {:.0} MB spool",
            self.backlog_calls,
            self.backlog_bytes as f64 / 1e6,
            self.spool_max_bytes as f64 / 1e6
        );
        let _ = writeln!(
            o,
            "  RTF last hour {}",
            self.rtf_last_hour
                .map(|r| format!("{r:.3} (processing time / call time)"))
                .unwrap_or_else(|| "- (no call finished in the last hour)".into())
        );
        let _ = writeln!(
            o,
            "  calls         {} recorded, {} analysed, {} without audio, {} too short",
            self.calls_recorded,
            self.calls_analysed,
            self.calls_without_audio,
            self.short_calls_ignored
        );
        let _ = writeln!(
            o,
            "  disk          data {:.1} MB, {} free{}",
            self.data_bytes as f64 / 1e6,
            self.disk_free_bytes
                .map(|b| format!("{:.1} MB", b as f64 / 1e6))
                .unwrap_or_else(|| "?".into()),
            if self.recording_paused {
                "; RECORDING PAUSED (disk full or spool full)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            o,
            "  last sync     {}{}",
            self.last_sync_unix
                .map(|t| format!("{} ago", human_secs(now.saturating_sub(t))))
                .unwrap_or_else(|| "never".into()),
            self.outbox_batches
                .map(|n| format!(", {n} batches waiting in the outbox"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "  drops         {} ring overruns ({} samples), {} xruns, {} calls' audio discarded (spool full)",
            self.ring_overruns, self.dropped_samples, self.xruns, self.audio_dropped_calls
        );
        let _ = writeln!(
            o,
            "  errors        {} device, {} stream gaps, {} analysis ({} calls in spool/failed), {} store",
            self.device_errors, self.stream_gaps, self.analysis_errors, self.failed_calls, self.store_errors
        );
        if let Some(e) = &self.last_error {
            let _ = writeln!(o, "  last error    {e}");
        }
        if let Some(e) = &self.sync_error {
            let _ = writeln!(o, "  sync error    {e}");
        }
        o
    }
}

fn human_secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Bytes of files under `dir` (not following links).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn disk_free(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-parameter.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_render() {
        let dir = tempfile::tempdir().unwrap();
        let s = Status {
            pid: std::process::id(),
            version: "0.1.0".into(),
            state: DaemonState::Backlog,
            source: "wav x.wav".into(),
            backlog_calls: 3,
            rtf_last_hour: Some(0.25),
            xruns: 2,
            last_error: Some("audio device plughw:1,0 not found".into()),
            updated_unix: 1000,
            ..Default::default()
        };
        s.write(dir.path()).unwrap();
        let r = Status::read(dir.path()).unwrap();
        assert_eq!(r, s);
        let json = std::fs::read_to_string(dir.path().join(STATUS_FILE)).unwrap();
        assert!(json.contains("\"state\": \"backlog\""), "{json}");
        assert!(r.alive());
        assert_eq!(r.led(), LedState::Backlog);
        let text = r.render(1005);
        assert!(text.contains("running (pid"), "{text}");
        assert!(text.contains("backlog       3 calls"), "{text}");
        assert!(text.contains("RTF last hour 0.250"), "{text}");
        assert!(text.contains("2 xruns"), "{text}");
        assert!(text.contains("last sync     never"), "{text}");
        let dead = Status { pid: 0, ..s };
        assert!(dead
            .render(1000 + 3 * 3600)
            .contains("not running (last status 3 h ago)"));
        assert!(disk_free(dir.path()).unwrap() > 0);
        assert!(dir_bytes(dir.path()) > 100);
    }
}
