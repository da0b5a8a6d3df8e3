//! The load bench: many simulated boxes upload signed batches over real HTTP on loopback
//! to a hub running in this process with a fresh sled store, and the acknowledgements are
//! timed. Also the realistic sample reports the tests use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sangdam_wire::{
    Ack, Batch, Counters, Driver, Header, Keyword, Period, Recommendation, Report, BATCH_PATH,
    DEVICE_HEADER, SCHEMA_VERSION, SIGNATURE_HEADER,
};

use crate::{serve, HubConfig, HubError, Registry, SledStorage, Storage, StorageError};

/// Why the load bench could not set up or finish (failed checks are not errors: they are
/// in [`BenchReport::problems`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("boxes, batches per box and client threads must be at least 1")]
    Empty,
    #[error("cannot make a store folder in {}", parent.display())]
    StoreDir {
        parent: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `url` is shown with its password redacted.
    #[error("the database {url} already holds {held} batches: the bench needs an empty scratch database")]
    NotEmpty { url: String, held: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot draw the simulated boxes' keys from the system's random source")]
    Keys(#[source] std::io::Error),
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// splitmix64: small, deterministic, good enough for sample data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

const COMPLAINTS: &[&str] = &[
    "한도",
    "수수료",
    "연체",
    "대기",
    "오류",
    "해지",
    "환불",
    "분실",
    "재발급",
    "이자",
    "결제",
    "요금제",
];
const PRAISE: &[&str] = &[
    "친절",
    "설명",
    "빠른",
    "혜택",
    "포인트",
    "감사",
    "할인",
    "적립",
    "편리",
    "앱",
];
const ADVICE: &[&str] = &[
    "{} 관련 불만이 늘었습니다: 상담 화면에 {} 안내 문구를 추가하세요.",
    "{} 문의가 길어지고 있습니다: {} 처리 절차를 상담원 교육에 포함하세요.",
    "{} 때문에 부정 통화가 많습니다: 주간 회의에서 {} 사례를 검토하세요.",
    "고객이 {}을(를) 자주 언급합니다: {} 담당 부서와 개선안을 협의하세요.",
];
const CITIES: &[&str] = &[
    "서울", "부산", "대구", "인천", "광주", "대전", "울산", "수원", "창원", "제주",
];

/// A day's report as a box would build it: about 10 keywords, 5 drivers, 3 Korean
/// recommendations, consistent counters and histogram.
pub fn sample_report(seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let calls = rng.range(60, 240);
    let positive = rng.range(calls / 5, calls * 3 / 5);
    let negative = rng.range(calls / 10, (calls - positive).max(calls / 10 + 1));
    let negative = negative.min(calls - positive);
    let mut histogram = [0u32; 10];
    for _ in 0..calls {
        histogram[rng.range(0, 10) as usize] += 1;
    }
    let pick = |rng: &mut Rng, list: &[&'static str], n: usize| -> Vec<&'static str> {
        let mut chosen: Vec<&str> = Vec::with_capacity(n);
        while chosen.len() < n {
            let w = list[rng.range(0, list.len() as u64) as usize];
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
        chosen
    };
    let complaint_terms = pick(&mut rng, COMPLAINTS, 6);
    let praise_terms = pick(&mut rng, PRAISE, 4);
    let keyword = |rng: &mut Rng, term: &str, pool: u64| Keyword {
        term: term.to_owned(),
        calls: rng.range(1, pool.max(2)) as u32,
        z: 1.5 + (rng.range(0, 300) as f32) / 100.0,
    };
    let complaints: Vec<Keyword> = complaint_terms
        .iter()
        .map(|t| keyword(&mut rng, t, negative))
        .collect();
    let praise: Vec<Keyword> = praise_terms
        .iter()
        .map(|t| keyword(&mut rng, t, positive))
        .collect();
    let drivers = complaint_terms
        .iter()
        .take(3)
        .map(|t| (t, -1))
        .chain(praise_terms.iter().take(2).map(|t| (t, 1)))
        .enumerate()
        .map(|(i, (t, direction))| Driver {
            term: (*t).to_owned(),
            share: 0.3 / (i as f32 + 1.0),
            direction,
        })
        .collect();
    let recommendations = (0..3)
        .map(|i| {
            let template = ADVICE[rng.range(0, ADVICE.len() as u64) as usize];
            let term = complaint_terms[i];
            Recommendation {
                priority: i as u8 + 1,
                text: template.replacen("{}", term, 1).replacen("{}", term, 1),
            }
        })
        .collect();
    Report {
        counters: Counters {
            calls,
            utterances: calls * rng.range(8, 30),
            audio_ms: calls * rng.range(90_000, 400_000),
            positive_calls: positive,
            negative_calls: negative,
            positive_utterances: positive * 6,
            negative_utterances: negative * 5,
            audio_dropped: 0,
            marked: rng.range(0, 4),
            // The rest were judged neutral ("네", "잠시만요": most of a call is neither).
            neutral_calls: calls - positive - negative,
            neutral_utterances: (calls - positive - negative) * 9,
        },
        sentiment_histogram: histogram,
        complaints,
        praise,
        drivers,
        recommendations,
        transcripts: Vec::new(),
        merged: 0,
        lost: 0,
    }
}

/// Batch `seq` of `device` covering day `day`.
pub fn sample_batch(device: &str, seq: u64, day: u32, seed: u64) -> Batch {
    Batch {
        header: Header {
            device: device.to_owned(),
            seq,
            period: Period::day(sangdam_wire::Day(day)),
            schema: SCHEMA_VERSION,
            created_unix: u64::from(day) * 86_400 + 23 * 3600,
            last_good_unix: u64::from(day) * 86_400 + 3600,
        },
        report: sample_report(seed),
    }
}

/// Branch of simulated box `i`: four boxes per branch, Korean names.
pub fn sample_branch(i: usize) -> String {
    let branch = i / 4;
    format!(
        "{} {}지점",
        CITIES[branch % CITIES.len()],
        branch / CITIES.len() + 1
    )
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub boxes: usize,
    pub batches_per_box: u64,
    /// Client threads; box `i` is simulated by thread `i % client_threads`, over that
    /// thread's own keep-alive connection.
    pub client_threads: usize,
    /// The hub's store threads: uploads waiting for their fsync at once (at least `client_threads`).
    pub hub_threads: usize,
    /// After every `duplicate_every`-th upload the thread sends the same batch again, as a
    /// box does when an acknowledgement was lost. 0: no duplicates.
    pub duplicate_every: u64,
    /// Where the temporary store goes (a fresh folder inside it); default the system's
    /// temporary folder.
    pub data_parent: Option<PathBuf>,
    /// Store in this PostgreSQL database instead of a temporary sled store. It must hold
    /// no batches (a scratch database); the bench empties it again at the end.
    pub database: Option<String>,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            boxes: 1000,
            batches_per_box: 10,
            client_threads: 32,
            hub_threads: 128,
            duplicate_every: 50,
            data_parent: None,
            database: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    /// `sled` or `postgres`.
    pub backend: &'static str,
    pub boxes: usize,
    pub batches: u64,
    pub client_threads: usize,
    pub hub_threads: usize,
    pub body_bytes_mean: usize,
    pub elapsed: Duration,
    pub accepted: u64,
    pub accepted_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub duplicates_sent: u64,
    pub duplicates_409: u64,
    pub duplicate_p99_ms: f64,
    /// Requests the hub refused (its own count).
    pub rejections: u64,
    /// Answers that were not what the bench expected (first few described in `problems`).
    pub unexpected: u64,
    pub stored: usize,
    pub flushes: u64,
    pub peak_rss_kib: Option<u64>,
    pub store_dir: PathBuf,
    pub store_fs: String,
    /// Failed checks; empty when everything held.
    pub problems: Vec<String>,
}

impl BenchReport {
    /// A Markdown table and the checks.
    pub fn table(&self) -> String {
        let rss = self
            .peak_rss_kib
            .map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0));
        let mut s = String::new();
        s.push_str("| store | boxes | batches | client threads | store threads | seconds | accepted/s | p50 ms | p99 ms | max ms | duplicates → 409 | rejections | fsyncs | peak RSS MiB |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {}/{} | {} | {} | {} |\n",
            self.backend,
            self.boxes,
            self.batches,
            self.client_threads,
            self.hub_threads,
            self.elapsed.as_secs_f64(),
            self.accepted_per_s,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.duplicates_409,
            self.duplicates_sent,
            self.rejections,
            if self.backend == "sled" {
                self.flushes.to_string()
            } else {
                "server".into()
            },
            rss
        ));
        s.push_str(&format!(
            "\nbodies {} B on average; latency is per accepted upload (send to acknowledgement read), \
             duplicates' p99 {:.2} ms; every 200 waited until its batch was durable ({} batches per fsync on average); \
             store {} on {}; peak RSS is the whole process (hub and clients).\n",
            self.body_bytes_mean,
            self.duplicate_p99_ms,
            if self.flushes > 0 {
                format!("{:.1}", self.accepted as f64 / self.flushes as f64)
            } else {
                "-".into()
            },
            self.store_dir.display(),
            self.store_fs
        ));
        if self.problems.is_empty() {
            s.push_str(&format!(
                "checks: all {} batches acknowledged once and stored exactly once ({} in the store), all {} duplicates answered 409 with a duplicate Ack, no rejections\n",
                self.batches, self.stored, self.duplicates_sent
            ));
        } else {
            s.push_str("CHECKS FAILED:\n");
            for p in &self.problems {
                s.push_str(&format!("  - {p}\n"));
            }
        }
        s
    }
}

/// Peak resident memory of this process (VmHWM), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The filesystem type `path` lives on, from /proc/self/mounts (longest mount point that
/// contains it).
pub fn filesystem_of(path: &std::path::Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mount, fs) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), fs.to_owned()))
        })
        .max()
        .map_or("an unknown filesystem".into(), |(_, fs)| fs)
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

#[derive(Default)]
struct ClientResult {
    accepted: u64,
    accepted_us: Vec<u32>,
    duplicates_sent: u64,
    duplicates_409: u64,
    duplicate_us: Vec<u32>,
    unexpected: u64,
    notes: Vec<String>,
}

impl ClientResult {
    fn note(&mut self, what: String) {
        self.unexpected += 1;
        if self.notes.len() < 5 {
            self.notes.push(what);
        }
    }
}

struct SimBox {
    id: String,
    /// (body, signature) per seq, seq 1 first.
    uploads: Vec<(Vec<u8>, String)>,
}

/// Sends one upload, returns (status, Ack if the body was one, microseconds).
fn upload(
    agent: &ureq::Agent,
    url: &str,
    id: &str,
    body: &[u8],
    signature: &str,
) -> Result<(u16, Option<Ack>, u32), String> {
    let started = Instant::now();
    let mut response = agent
        .post(url)
        .header(DEVICE_HEADER, id)
        .header(SIGNATURE_HEADER, signature)
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .map_err(|e| e.to_string())?;
    let bytes = response
        .body_mut()
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    Ok((response.status().as_u16(), Ack::decode(&bytes).ok(), us))
}

fn client(
    url: &str,
    boxes: &[SimBox],
    batches: u64,
    duplicate_every: u64,
    start: &Barrier,
) -> ClientResult {
    // No global or per-call timeout: with one, ureq resolves the host on a new thread for
    // every request (to bound the lookup), which would cost the clients more than the hub.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_send_body(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut out = ClientResult::default();
    let mut sent = 0u64;
    start.wait();
    for seq in 1..=batches {
        for b in boxes {
            let (body, sig) = &b.uploads[seq as usize - 1];
            match upload(&agent, url, &b.id, body, sig) {
                Ok((200, Some(ack), us))
                    if ack.seq == seq && !ack.duplicate && ack.device == b.id =>
                {
                    out.accepted += 1;
                    out.accepted_us.push(us);
                }
                Ok((status, ack, _)) => out.note(format!("{} #{seq}: {status} {ack:?}", b.id)),
                Err(e) => out.note(format!("{} #{seq}: {e}", b.id)),
            }
            sent += 1;
            if duplicate_every > 0 && sent % duplicate_every == 0 {
                out.duplicates_sent += 1;
                match upload(&agent, url, &b.id, body, sig) {
                    Ok((409, Some(ack), us)) if ack.seq == seq && ack.duplicate => {
                        out.duplicates_409 += 1;
                        out.duplicate_us.push(us);
                    }
                    Ok((status, ack, _)) => {
                        out.note(format!("duplicate {} #{seq}: {status} {ack:?}", b.id))
                    }
                    Err(e) => out.note(format!("duplicate {} #{seq}: {e}", b.id)),
                }
            }
        }
    }
    out
}

/// Runs the bench. Fails only when it cannot set up; failed checks are in
/// [`BenchReport::problems`].
pub fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.boxes == 0 || config.batches_per_box == 0 || config.client_threads == 0 {
        return Err(BenchError::Empty);
    }
    let parent = config
        .data_parent
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("sangdam-hub-bench-")
        .tempdir_in(&parent)
        .map_err(|source| BenchError::StoreDir {
            parent: parent.clone(),
            source,
        })?;
    let (storage, sled): (Arc<dyn Storage>, Option<Arc<SledStorage>>) = match &config.database {
        None => {
            let s = Arc::new(SledStorage::open(dir.path())?);
            (s.clone(), Some(s))
        }
        Some(url) => {
            let connections = u32::try_from(config.hub_threads.max(config.client_threads + 4))
                .unwrap_or(u32::MAX)
                .min(90);
            let pg = crate::PgStorage::open(url, connections)?;
            let held = pg.count()?;
            if held > 0 {
                return Err(BenchError::NotEmpty {
                    url: pg.url().to_string(),
                    held,
                });
            }
            (Arc::new(pg), None)
        }
    };

    // Boxes, keys and every upload, built before the clock starts.
    let mut seed = Rng::new(u64::from_le_bytes(
        crate::registry::random_key().map_err(BenchError::Keys)?[..8]
            .try_into()
            .expect("8 bytes"),
    ));
    let first_day = 20_400u32;
    let mut registry = Registry::new();
    let mut sims = Vec::with_capacity(config.boxes);
    let mut body_bytes = 0usize;
    for i in 0..config.boxes {
        let id = format!("box-{i:04}");
        let key: Vec<u8> = (0..4).flat_map(|_| seed.next_u64().to_le_bytes()).collect();
        registry.insert(&id, key.clone(), &sample_branch(i));
        let uploads = (1..=config.batches_per_box)
            .map(|seq| {
                let batch = sample_batch(&id, seq, first_day + seq as u32, seed.next_u64());
                let body = batch.encode().expect("a sample batch fits");
                let sig = sangdam_wire::sign(&key, &body);
                body_bytes += body.len();
                (body, sig)
            })
            .collect();
        sims.push(SimBox { id, uploads });
    }
    let batches = config.boxes as u64 * config.batches_per_box;
    let hub_threads = config.hub_threads.max(config.client_threads + 4);
    let hub_config = HubConfig {
        store_threads: hub_threads,
        ..HubConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let hub = serve(hub_config, registry, storage.clone())?;
    let url = format!("{}{}", hub.url(), BATCH_PATH);

    // Deal the boxes to the client threads.
    let mut per_thread: Vec<Vec<SimBox>> = (0..config.client_threads).map(|_| Vec::new()).collect();
    for (i, sim) in sims.into_iter().enumerate() {
        per_thread[i % config.client_threads].push(sim);
    }
    let start = Barrier::new(config.client_threads + 1);
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|boxes| {
                let (url, start) = (&url, &start);
                s.spawn(move || {
                    client(
                        url,
                        boxes,
                        config.batches_per_box,
                        config.duplicate_every,
                        start,
                    )
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let results: Vec<ClientResult> = handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect();
        (results, started.elapsed())
    });
    let stats = hub.stats();
    hub.stop();

    let mut accepted_us: Vec<u32> = Vec::with_capacity(batches as usize);
    let mut duplicate_us = Vec::new();
    let (mut accepted, mut duplicates_sent, mut duplicates_409, mut unexpected) = (0, 0, 0, 0);
    let mut problems = Vec::new();
    for r in results {
        accepted += r.accepted;
        duplicates_sent += r.duplicates_sent;
        duplicates_409 += r.duplicates_409;
        unexpected += r.unexpected;
        accepted_us.extend(r.accepted_us);
        duplicate_us.extend(r.duplicate_us);
        problems.extend(r.notes);
    }
    accepted_us.sort_unstable();
    duplicate_us.sort_unstable();
    let stored = storage.count()?;
    if accepted != batches || stats.accepted != batches {
        problems.push(format!(
            "{accepted} uploads acknowledged with 200 (hub counted {}), expected {batches}",
            stats.accepted
        ));
    }
    if duplicates_409 != duplicates_sent || stats.duplicates != duplicates_sent {
        problems.push(format!(
            "{duplicates_409} of {duplicates_sent} duplicates answered 409 (hub counted {})",
            stats.duplicates
        ));
    }
    if stored != batches as usize {
        problems.push(format!(
            "the store holds {stored} batches, expected {batches}"
        ));
    }
    if stats.rejected() > 0 {
        problems.push(format!(
            "the hub rejected {} requests: {stats:?}",
            stats.rejected()
        ));
    }
    let (store_dir, store_fs) = match &config.database {
        None => {
            let d = dir.path().to_owned();
            let fs = filesystem_of(&d);
            (d, fs)
        }
        Some(url) => (
            PathBuf::from(crate::pg::redacted(url)),
            "a PostgreSQL server (its memory not in the RSS)".into(),
        ),
    };
    let flushes = sled.as_ref().map_or(0, |s| s.flushes());
    drop(sled);
    if let Some(url) = &config.database {
        crate::PgStorage::open(url, 1)?.clear()?;
    }
    drop(storage);
    Ok(BenchReport {
        backend: if config.database.is_some() {
            "postgres"
        } else {
            "sled"
        },
        boxes: config.boxes,
        batches,
        client_threads: config.client_threads,
        hub_threads,
        body_bytes_mean: body_bytes / batches as usize,
        elapsed,
        accepted,
        accepted_per_s: accepted as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile_ms(&accepted_us, 50.0),
        p99_ms: percentile_ms(&accepted_us, 99.0),
        max_ms: accepted_us.last().map_or(0.0, |&u| f64::from(u) / 1000.0),
        duplicates_sent,
        duplicates_409,
        duplicate_p99_ms: percentile_ms(&duplicate_us, 99.0),
        rejections: stats.rejected(),
        unexpected,
        stored,
        flushes,
        peak_rss_kib: peak_rss_kib(),
        store_dir,
        store_fs,
        problems,
    })
}
