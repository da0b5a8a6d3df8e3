//! The fleet-page bench: a store filled with `devices × days` daily batches (1,000 × 365
//! by default: a year of a large fleet), then the dashboard's work for one page (read,
//! summarise, render HTML and JSON) timed and its memory measured, on the incremental
//! per-device aggregates and, as the peer, on a fold of every stored batch (what the hub
//! did before). Each measurement runs in a fresh child process (`sangdam-hub
//! bench-page-probe`) that opens the store itself, so its peak resident memory is the
//! page's and not the fill's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::bench::{sample_batch, sample_branch, Rng};
use crate::{PgStorage, Registry, SledStorage, Storage, StorageError, Stored};

/// Why the fleet-page bench, or one of its probes, could not set up or finish (failed
/// checks are not errors: they are in [`PageReport::problems`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PageBenchError {
    #[error("devices, days and fill threads must be at least 1")]
    Empty,
    #[error("a store is needed: --data DIR or --database URL")]
    NoStore,
    #[error("unknown page source {name:?}: aggregates or fold")]
    UnknownSource { name: String },
    #[error("cannot make a store folder in {}", parent.display())]
    StoreDir {
        parent: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the store already holds {held} batches: the bench needs an empty scratch database")]
    NotEmpty { held: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Storing batch `batch` ("box-0001 #3") failed.
    #[error("filling the store failed: {batch}")]
    Fill {
        batch: String,
        #[source]
        source: StorageError,
    },
    /// The store answered `answer` (a duplicate or conflict) to a batch of a fresh fleet.
    #[error("filling the store failed: {batch}: {answer}")]
    FillRefused { batch: String, answer: String },
    #[error("cannot write the page summary as JSON")]
    Json(#[source] serde_json::Error),
    #[error("cannot find this program to run the probes")]
    CurrentExe(#[source] std::io::Error),
    /// The probe child (`sangdam-hub bench-page-probe`) did not start.
    #[error("cannot run the page probe")]
    ProbeStart(#[source] std::io::Error),
    /// The probe child exited with an error; `stderr` is what it printed.
    #[error("the {name} probe failed: {stderr}")]
    ProbeFailed { name: String, stderr: String },
    /// The probe child's output is not a [`Probe`].
    #[error("the probe's answer")]
    ProbeOutput(#[source] serde_json::Error),
}

type Result<T, E = PageBenchError> = std::result::Result<T, E>;

/// First day of the simulated year (days since 1970-01-01).
const FIRST_DAY: u32 = 20_400;

#[derive(Debug, Clone)]
pub struct PageBenchConfig {
    pub devices: usize,
    pub days: u32,
    /// Threads filling the store (each waits for its batch to be durable, as the hub does).
    pub fill_threads: usize,
    /// Pages per measurement.
    pub repeats: usize,
    /// Also measure the peer (a fold of every batch). It reads the whole store each time.
    pub fold: bool,
    pub data_parent: Option<PathBuf>,
    /// Fill this PostgreSQL scratch database instead of a temporary sled store (it must
    /// hold no batches; it is emptied at the end).
    pub database: Option<String>,
}

/// One measurement, as a probe prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    /// `aggregates` or `fold`.
    pub source: String,
    pub page_ms: Vec<f64>,
    /// Resident memory after opening the store, before the first page.
    pub rss_before_kib: u64,
    /// Peak resident memory over all pages.
    pub rss_peak_kib: u64,
    /// Size of the JSON summary and the HTML page of the last run.
    pub json_bytes: usize,
    pub html_bytes: usize,
    /// Devices and batches the summary counts (a check that both sources agree).
    pub devices: usize,
    pub batches: u64,
}

pub struct PageReport {
    pub backend: &'static str,
    pub devices: usize,
    pub days: u32,
    pub stored: usize,
    pub fill_per_s: f64,
    pub probes: Vec<Probe>,
    pub problems: Vec<String>,
}

fn device_id(i: usize) -> String {
    format!("box-{i:04}")
}

/// The registry of the simulated fleet (keys are not used by the page).
fn registry(devices: usize) -> Registry {
    let mut r = Registry::new();
    for i in 0..devices {
        r.insert(&device_id(i), vec![0; 32], &sample_branch(i));
    }
    r
}

fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(field))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn open(data: Option<&Path>, database: Option<&str>, connections: u32) -> Result<Arc<dyn Storage>> {
    Ok(match (data, database) {
        (_, Some(url)) => Arc::new(PgStorage::open(url, connections)?),
        (Some(dir), None) => Arc::new(SledStorage::open(dir)?),
        (None, None) => return Err(PageBenchError::NoStore),
    })
}

/// The child's side: open the store, build `repeats` pages from `source`, report.
pub fn probe(
    data: Option<&Path>,
    database: Option<&str>,
    devices: usize,
    source: &str,
    repeats: usize,
) -> Result<Probe> {
    let store = open(data, database, 2)?;
    let registry = registry(devices);
    // Resets VmHWM to the current resident size, so the peak below is this part's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before_kib = vm_kib("VmRSS:");
    let mut page_ms = Vec::new();
    let (mut json_bytes, mut html_bytes, mut counted, mut batches) = (0, 0, 0, 0);
    let now = u64::from(FIRST_DAY + 400) * 86_400;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let summary = match source {
            "aggregates" => crate::fleet::summarize_devices(&registry, &store.aggregates()?, now),
            "fold" => crate::fleet::summarize(&registry, &store.records()?, now),
            other => {
                return Err(PageBenchError::UnknownSource {
                    name: other.to_owned(),
                })
            }
        };
        let json = serde_json::to_vec_pretty(&summary).map_err(PageBenchError::Json)?;
        let html = crate::fleet::render_html(&summary);
        page_ms.push(t.elapsed().as_secs_f64() * 1e3);
        json_bytes = json.len();
        html_bytes = html.len();
        counted = summary.devices.len();
        batches = summary.devices.iter().map(|d| d.batches).sum();
    }
    Ok(Probe {
        source: source.to_owned(),
        page_ms,
        rss_before_kib,
        rss_peak_kib: vm_kib("VmHWM:"),
        json_bytes,
        html_bytes,
        devices: counted,
        batches,
    })
}

/// Fills a fresh store, then runs the probes in child processes.
pub fn run(config: &PageBenchConfig) -> Result<PageReport> {
    if config.devices == 0 || config.days == 0 || config.fill_threads == 0 {
        return Err(PageBenchError::Empty);
    }
    let parent = config
        .data_parent
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("sangdam-hub-pagebench-")
        .tempdir_in(&parent)
        .map_err(|source| PageBenchError::StoreDir {
            parent: parent.clone(),
            source,
        })?;
    let database = config.database.as_deref();
    let connections = u32::try_from(config.fill_threads).unwrap_or(90).min(90);
    let store = open(Some(dir.path()), database, connections)?;
    let held = store.count()?;
    if held > 0 {
        return Err(PageBenchError::NotEmpty { held });
    }

    eprintln!(
        "page bench: filling {} devices × {} days = {} batches with {} threads…",
        config.devices,
        config.days,
        config.devices * config.days as usize,
        config.fill_threads
    );
    let done = AtomicU64::new(0);
    let failed = std::sync::Mutex::new(None::<PageBenchError>);
    let t = Instant::now();
    std::thread::scope(|s| {
        for worker in 0..config.fill_threads {
            let (store, done, failed) = (store.clone(), &done, &failed);
            s.spawn(move || {
                let mut rng = Rng::new(0x5eed ^ worker as u64);
                for i in (worker..config.devices).step_by(config.fill_threads) {
                    let id = device_id(i);
                    for d in 0..config.days {
                        let b = sample_batch(&id, u64::from(d) + 1, FIRST_DAY + d, rng.next_u64());
                        let body = b.encode().expect("a sample batch fits");
                        match store.insert(&b, &body) {
                            Ok(Stored::New) => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(other) => {
                                *failed.lock().unwrap() = Some(PageBenchError::FillRefused {
                                    batch: format!("{id} #{}", d + 1),
                                    answer: format!("{other:?}"),
                                });
                                return;
                            }
                            Err(source) => {
                                *failed.lock().unwrap() = Some(PageBenchError::Fill {
                                    batch: format!("{id} #{}", d + 1),
                                    source,
                                });
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let fill_s = t.elapsed().as_secs_f64();
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    let stored = store.count()?;
    drop(store);
    eprintln!("page bench: {stored} batches stored in {fill_s:.1} s; measuring pages…");

    let exe = std::env::current_exe().map_err(PageBenchError::CurrentExe)?;
    let mut probes = Vec::new();
    let mut problems = Vec::new();
    let sources: &[&str] = if config.fold {
        &["aggregates", "fold"]
    } else {
        &["aggregates"]
    };
    for source in sources {
        let mut cmd = Command::new(&exe);
        cmd.arg("bench-page-probe")
            .args(["--devices", &config.devices.to_string()])
            .args(["--source", source])
            .args(["--repeats", &config.repeats.to_string()]);
        match database {
            Some(url) => cmd.args(["--database", url]),
            None => cmd.arg("--data").arg(dir.path()),
        };
        let out = cmd.output().map_err(PageBenchError::ProbeStart)?;
        if !out.status.success() {
            return Err(PageBenchError::ProbeFailed {
                name: (*source).to_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let p: Probe = serde_json::from_slice(&out.stdout).map_err(PageBenchError::ProbeOutput)?;
        if p.devices != config.devices || p.batches != stored as u64 {
            problems.push(format!(
                "{source}: the page counts {} devices and {} batches, the store holds {} and {stored}",
                p.devices, p.batches, config.devices
            ));
        }
        probes.push(p);
    }
    if let Some(url) = database {
        PgStorage::open(url, 1)?.clear()?;
    }
    Ok(PageReport {
        backend: if database.is_some() {
            "postgres"
        } else {
            "sled"
        },
        devices: config.devices,
        days: config.days,
        stored,
        fill_per_s: stored as f64 / fill_s,
        probes,
        problems,
    })
}

impl PageReport {
    /// A Markdown table and the checks.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str("| store | devices × days | batches stored | fill batches/s | page from | pages | median ms | max ms | memory for the page MiB | JSON KiB |\n");
        s.push_str("|---|---|---:|---:|---|---:|---:|---:|---:|---:|\n");
        for p in &self.probes {
            let mut ms = p.page_ms.clone();
            ms.sort_by(f64::total_cmp);
            let median = ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN);
            let max = ms.last().copied().unwrap_or(f64::NAN);
            let extra = p.rss_peak_kib.saturating_sub(p.rss_before_kib) as f64 / 1024.0;
            s.push_str(&format!(
                "| {} | {} × {} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
                self.backend,
                self.devices,
                self.days,
                self.stored,
                self.fill_per_s,
                if p.source == "fold" {
                    "fold of every batch (peer)"
                } else {
                    "per-device aggregates"
                },
                ms.len(),
                median,
                max,
                extra,
                p.json_bytes as f64 / 1024.0,
            ));
        }
        if self.problems.is_empty() {
            s.push_str("checks: both sources count every device and every stored batch\n");
        } else {
            s.push_str("CHECKS FAILED:\n");
            for p in &self.problems {
                s.push_str(&format!("  - {p}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_say_what_is_missing() {
        let e = probe(None, None, 1, "aggregates", 1).unwrap_err();
        assert!(matches!(e, PageBenchError::NoStore), "{e:?}");
        assert_eq!(
            e.to_string(),
            "a store is needed: --data DIR or --database URL"
        );

        let dir = tempfile::tempdir().unwrap();
        let e = probe(Some(dir.path()), None, 1, "everything", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown page source \"everything\": aggregates or fold"
        );

        let e = run(&PageBenchConfig {
            devices: 0,
            days: 1,
            fill_threads: 1,
            repeats: 1,
            fold: false,
            data_parent: None,
            database: None,
        })
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            "devices, days and fill threads must be at least 1"
        );

        let e = crate::bench::run(&crate::bench::BenchConfig {
            boxes: 0,
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(e, crate::bench::BenchError::Empty), "{e:?}");
        assert_eq!(
            e.to_string(),
            "boxes, batches per box and client threads must be at least 1"
        );
    }
}
