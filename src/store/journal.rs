//! The acknowledged-calls journal: an append-only file beside sled's files holding every
//! call the store has acknowledged, one checksummed line each, fsynced before sled is
//! written.
//!
//! sled 0.34 can lose data silently when its files are damaged (a truncated or
//! bit-flipped `db` opens as a store with fewer calls, or none: measured, see
//! RELIABILITY.md), so the store cannot trust sled to report damage. The journal is the
//! evidence: at start-up every journalled call must be in sled, and when calls are
//! missing the store is rebuilt from the journal.
//!
//! Line format: `<first 16 hex digits of sha256(json)> <json>\n`, where the JSON holds
//! the call and its utterances. A line whose checksum does not match (a write torn by a
//! power cut, which was never acknowledged) is skipped and counted.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CallRecord, UtteranceRecord};

/// The journal's file name inside the store directory.
pub const JOURNAL_FILE: &str = "calls.journal";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub call: CallRecord,
    pub utterances: Vec<UtteranceRecord>,
}

/// What a journal file held.
#[derive(Debug, Default)]
pub struct Contents {
    pub entries: Vec<Entry>,
    /// Lines that failed their checksum or did not parse.
    pub bad_lines: usize,
}

fn checksum(json: &[u8]) -> String {
    crate::models::hex(&Sha256::digest(json)[..8])
}

/// Reads the journal; a missing file is an empty journal.
pub fn read(path: &Path) -> std::io::Result<Contents> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => return Err(e),
    };
    let mut out = Contents::default();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let parsed = line
            .iter()
            .position(|&b| b == b' ')
            .filter(|&i| checksum(&line[i + 1..]).as_bytes() == &line[..i])
            .and_then(|i| serde_json::from_slice::<Entry>(&line[i + 1..]).ok());
        match parsed {
            Some(e) => out.entries.push(e),
            None => out.bad_lines += 1,
        }
    }
    Ok(out)
}

/// Appends one entry and syncs it to disk.
pub fn append(path: &Path, entry: &Entry) -> std::io::Result<()> {
    let json = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    let mut line = Vec::with_capacity(json.len() + 18);
    line.extend_from_slice(checksum(&json).as_bytes());
    line.push(b' ');
    line.extend_from_slice(&json);
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&line)?;
    f.sync_data()
}
