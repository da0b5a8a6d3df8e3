//! Batches in PostgreSQL (`sangdam-hub serve --database postgres://…`), for a fleet that
//! has outgrown one machine's sled store, or a company that runs its data on its own
//! database. Several hub processes may share one database: `(device, seq)` is the
//! primary key, so of two copies of a batch arriving at two hubs at once exactly one is
//! inserted, and the other waits for that insert's commit before it answers.
//!
//! - **Client.** The synchronous `postgres` crate (on tokio-postgres), pooled by r2d2:
//!   the hub calls its store from its store threads, never from async code.
//! - **Schema.** Versioned migrations in the table `sangdam_hub_migrations`, applied at
//!   start (`sangdam-hub migrate`, also run by `serve`) inside one transaction each,
//!   under an advisory lock so that two hubs starting together do not race.
//! - **Group commit.** Inserts that arrive while others are being stored wait and are
//!   stored together, in one transaction of a few statements: the batches (`INSERT …
//!   SELECT FROM unnest(…) ON CONFLICT DO NOTHING`), then what the new ones add to their
//!   devices' aggregates (`INSERT … ON CONFLICT DO UPDATE` on narrow rows: totals, terms,
//!   days), then the commit. At most [`GROUPS_AT_ONCE`] groups are stored at once.
//! - **Durability.** Each answer is given after its group's commit returned, with the
//!   server's `synchronous_commit` (on by default): the same promise as the sled
//!   backend's group commit. The hub refuses to start on a server where `fsync` or
//!   `synchronous_commit` is off.
//! - **Aggregates.** The fleet page reads `device_totals`, each device's 200 most-called
//!   terms of `device_terms` and its last 90 days of `device_days`: a bounded read
//!   whatever the batch table holds. Unlike the sled backend (which keeps the 200
//!   most-called terms of each device at every step), the terms table counts every term
//!   exactly; the two agree whenever a device has reported at most 200 distinct terms.
//! - **Unreachable database.** Each error names the URL without its password; the hub
//!   keeps running, answers 503 to boxes (they keep their batches and retry), and
//!   reconnects through the pool on the next request.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use postgres::{Client, NoTls, Statement};
use r2d2_postgres::PostgresConnectionManager;
use sangdam_wire::Batch;

use crate::storage::{now_unix, Record, Storage, StorageError, Stored};

/// The schema, one step per entry; a step is never edited once released, only appended.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE batches (
            device        text   NOT NULL,
            seq           bigint NOT NULL CHECK (seq >= 0),
            digest        bytea  NOT NULL,
            body          bytea  NOT NULL,
            received_unix bigint NOT NULL,
            PRIMARY KEY (device, seq)
        )",
    ),
    // The fleet page's per-device aggregates (`fleet::DeviceAggregate` as JSON), updated
    // in the insert's transaction; filled from the stored batches when it is created.
    // Replaced by the narrow tables of migration 3.
    (
        2,
        "CREATE TABLE device_aggregates (
            device    text PRIMARY KEY,
            aggregate bytea
        )",
    ),
    // The aggregates as narrow rows that one statement per batch keeps up to date with
    // `INSERT … ON CONFLICT DO UPDATE` (no read-modify-write in the hub): a device's
    // totals, its complaint terms, and its calls per day. Filled from the stored
    // batches when created.
    (
        3,
        "CREATE TABLE device_totals (
            device     text   PRIMARY KEY,
            batches    bigint NOT NULL,
            last_seq   bigint NOT NULL,
            last_seen  bigint,
            newest_end bigint NOT NULL,
            newest_seq bigint NOT NULL,
            newest     bytea  NOT NULL,
            last_day   bigint,
            calls      bigint NOT NULL,
            positive   bigint NOT NULL,
            negative   bigint NOT NULL,
            neutral    bigint NOT NULL,
            merged     bigint NOT NULL,
            lost       bigint NOT NULL
        ) WITH (fillfactor = 70);
        CREATE TABLE device_terms (
            device text   NOT NULL,
            term   text   NOT NULL,
            calls  bigint NOT NULL,
            PRIMARY KEY (device, term)
        ) WITH (fillfactor = 70);
        CREATE TABLE device_days (
            device   text   NOT NULL,
            day      bigint NOT NULL,
            calls    double precision NOT NULL,
            positive double precision NOT NULL,
            negative double precision NOT NULL,
            neutral  double precision NOT NULL,
            PRIMARY KEY (device, day)
        ) WITH (fillfactor = 70);
        DROP TABLE device_aggregates",
    ),
];

/// The schema version whose tables hold the aggregates (filled when it is applied).
const AGGREGATES_VERSION: i32 = 3;

/// Stores a group of batches (distinct keys, in key order); returns the keys inserted.
/// Of two copies of one new key (two hubs), the second waits on the first's
/// unique-index entry until that commits (then it inserts nothing) or rolls back.
const INSERT_GROUP: &str = "INSERT INTO batches (device, seq, digest, body, received_unix)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bigint[])
    ON CONFLICT (device, seq) DO NOTHING RETURNING device, seq";

/// Adds what a group's new batches bring to their devices' aggregates: one row per
/// device (`$1`-`$14`: batches, highest seq, last seen, newest period's end day, seq and
/// record, last day with trend values, the counters), per (device, term) (`$15`-`$17`),
/// per (device, day) (`$18`-`$23`: shares of calls, positive, negative, neutral). Every
/// array is in device order, so two groups lock the devices' rows in the same order.
const ADD_AGGREGATES: &str = "WITH totals AS (
        INSERT INTO device_totals AS t (device, batches, last_seq, last_seen, newest_end,
            newest_seq, newest, last_day, calls, positive, negative, neutral, merged, lost)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],
            $5::bigint[], $6::bigint[], $7::bytea[], $8::bigint[], $9::bigint[],
            $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[])
        ON CONFLICT (device) DO UPDATE SET
            batches = t.batches + EXCLUDED.batches,
            last_seq = greatest(t.last_seq, EXCLUDED.last_seq),
            last_seen = greatest(t.last_seen, EXCLUDED.last_seen),
            newest = CASE WHEN (EXCLUDED.newest_end, EXCLUDED.newest_seq) > (t.newest_end, t.newest_seq)
                THEN EXCLUDED.newest ELSE t.newest END,
            newest_seq = CASE WHEN (EXCLUDED.newest_end, EXCLUDED.newest_seq) > (t.newest_end, t.newest_seq)
                THEN EXCLUDED.newest_seq ELSE t.newest_seq END,
            newest_end = greatest(t.newest_end, EXCLUDED.newest_end),
            last_day = greatest(t.last_day, EXCLUDED.last_day),
            calls = t.calls + EXCLUDED.calls,
            positive = t.positive + EXCLUDED.positive,
            negative = t.negative + EXCLUDED.negative,
            neutral = t.neutral + EXCLUDED.neutral,
            merged = t.merged + EXCLUDED.merged,
            lost = t.lost + EXCLUDED.lost
        RETURNING 1),
    terms AS (
        INSERT INTO device_terms AS t (device, term, calls)
        SELECT * FROM unnest($15::text[], $16::text[], $17::bigint[])
        ON CONFLICT (device, term) DO UPDATE SET calls = t.calls + EXCLUDED.calls
        RETURNING 1),
    days AS (
        INSERT INTO device_days AS t (device, day, calls, positive, negative, neutral)
        SELECT * FROM unnest($18::text[], $19::bigint[], $20::float8[], $21::float8[],
            $22::float8[], $23::float8[])
        ON CONFLICT (device, day) DO UPDATE SET
            calls = t.calls + EXCLUDED.calls,
            positive = t.positive + EXCLUDED.positive,
            negative = t.negative + EXCLUDED.negative,
            neutral = t.neutral + EXCLUDED.neutral
        RETURNING 1)
    SELECT (SELECT count(*) FROM totals) + (SELECT count(*) FROM terms) + (SELECT count(*) FROM days)";
/// The stored bodies of keys a group did not insert.
const STORED_BODIES: &str = "SELECT b.device, b.seq, b.body FROM batches b
    JOIN unnest($1::text[], $2::bigint[]) AS k(device, seq) ON b.device = k.device AND b.seq = k.seq";
/// The highest stored seq of each of some devices.
const HIGHEST_SEQS: &str =
    "SELECT device, max(seq) FROM batches WHERE device = ANY($1) GROUP BY device";
const READ_TOTALS: &str = "SELECT device, batches, last_seq, last_seen, newest, calls, positive,
        negative, neutral, merged, lost FROM device_totals";
/// Each device's most-called terms (ties in byte order, as the fold sorts them).
const READ_TERMS: &str = "SELECT device, term, calls FROM (
        SELECT device, term, calls,
            row_number() OVER (PARTITION BY device ORDER BY calls DESC, term COLLATE \"C\") AS rank
        FROM device_terms) r
    WHERE rank <= $1";
/// Each device's days up to `$1` before its newest.
const READ_DAYS: &str = "SELECT d.device, d.day, d.calls, d.positive, d.negative, d.neutral
    FROM device_days d JOIN device_totals t ON t.device = d.device
    WHERE d.day >= t.last_day - $1 ORDER BY d.device, d.day";

/// Key of the advisory lock migrations hold (any constant the hub alone uses).
const MIGRATION_LOCK: i64 = 0x5341_4e47_4441_4d31;

/// The URL with its password replaced by `***`, for messages and logs.
pub fn redacted(url: &str) -> String {
    // postgres://user:password@host/db — and key=value strings with password=…
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A pooled connection and its prepared statements (prepared once per connection).
pub struct Conn {
    client: Client,
    prepared: Option<[Statement; 4]>,
}

/// r2d2's manager for [`Conn`]s, on r2d2_postgres's.
pub struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.0.connect()?,
            prepared: None,
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// A pool of connections to one database.
pub struct PgStorage {
    pool: r2d2::Pool<Manager>,
    shown: String,
    /// Migrations applied and durability checked (done once, on first success).
    ready: std::sync::atomic::AtomicBool,
    /// Inserts waiting to be stored.
    queue: Mutex<Queue>,
}

/// Groups stored at once by different store threads (each on its own connection).
const GROUPS_AT_ONCE: usize = 2;

/// Most inserts in one group.
const GROUP_MOST: usize = 256;

/// One batch waiting for its group.
struct Job {
    device: String,
    seq: i64,
    digest: Vec<u8>,
    body: Vec<u8>,
    received: i64,
    batch: Batch,
}

/// The group commit's state: the inserts waiting for a group, and how many groups are
/// being stored now (or about to be, by a thread told to lead).
#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Arc<Slot>, Job)>,
    storing: usize,
}

/// Where one waiting insert learns its answer, or that it is to store the next group.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
}

#[derive(Default)]
struct SlotState {
    lead: bool,
    answer: Option<Result<Stored, StorageError>>,
}

impl Slot {
    fn set(&self, f: impl FnOnce(&mut SlotState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.wake.notify_one();
    }
}

/// Takes up to [`GROUP_MOST`] waiting inserts with distinct keys, the oldest first (a
/// second copy of a key waits for the next group, so that it is answered after the
/// first is durable).
fn take_group(waiting: &mut VecDeque<(Arc<Slot>, Job)>) -> Vec<(Arc<Slot>, Job)> {
    let mut keys = HashSet::new();
    let mut group = Vec::new();
    let mut left = VecDeque::new();
    while let Some((ticket, job)) = waiting.pop_front() {
        if group.len() < GROUP_MOST && keys.insert((job.device.clone(), job.seq)) {
            group.push((ticket, job));
        } else {
            left.push_back((ticket, job));
        }
    }
    *waiting = left;
    group
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("url", &self.shown)
            .finish()
    }
}

impl PgStorage {
    /// [`connect`](PgStorage::connect), then [`ensure_ready`](PgStorage::ensure_ready):
    /// fails when the database cannot be reached now.
    pub fn open(url: &str, connections: u32) -> Result<PgStorage, StorageError> {
        let storage = PgStorage::connect(url, connections)?;
        storage.ensure_ready()?;
        Ok(storage)
    }

    /// A pool of up to `connections` connections to `url`, each made when first needed;
    /// nothing is sent to the server yet. Every later call first applies the migrations
    /// and checks that the server makes commits durable, until that has succeeded once.
    pub fn connect(url: &str, connections: u32) -> Result<PgStorage, StorageError> {
        let shown = redacted(url);
        let config: postgres::Config = url.parse().map_err(|e| StorageError::Open {
            path: shown.clone().into(),
            reason: format!(
                "not a PostgreSQL URL ({e}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ),
        })?;
        let mut config = config;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("sangdam-hub");
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(manager);
        Ok(PgStorage {
            pool,
            shown,
            ready: std::sync::atomic::AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Applies the migrations and checks durability, once.
    pub fn ensure_ready(&self) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.migrate()?;
        self.check_durability()?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The URL this store uses, password hidden.
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StorageError> {
        self.pool.get().map_err(|e| {
            StorageError::Backend(format!(
                "cannot reach the database {}: {e} (is PostgreSQL running and the URL right?)",
                self.shown
            ))
        })
    }

    fn backend(&self, what: &str, e: postgres::Error) -> StorageError {
        StorageError::Backend(format!("{what} in {}: {e}", self.shown))
    }

    /// Applies the migrations this database lacks; returns how many it applied.
    pub fn migrate(&self) -> Result<usize, StorageError> {
        let mut conn = self.conn()?;
        let client = &mut conn.client;
        let mut tx = client
            .transaction()
            .map_err(|e| self.backend("cannot start the migration", e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|e| self.backend("cannot take the migration lock", e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS sangdam_hub_migrations (
                version    integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .map_err(|e| self.backend("cannot create the migrations table", e))?;
        let newest: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM sangdam_hub_migrations",
                &[],
            )
            .map_err(|e| self.backend("cannot read the schema version", e))?
            .get(0);
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if newest > known {
            return Err(StorageError::Open {
                path: self.shown.clone().into(),
                reason: format!(
                    "the database has schema version {newest}, newer than this hub's {known}: update sangdam-hub"
                ),
            });
        }
        let mut applied = 0;
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > newest) {
            tx.batch_execute(sql)
                .map_err(|e| self.backend(&format!("migration {version} failed"), e))?;
            if *version == AGGREGATES_VERSION {
                self.fill_aggregates(&mut tx)?;
            }
            tx.execute(
                "INSERT INTO sangdam_hub_migrations (version) VALUES ($1)",
                &[version],
            )
            .map_err(|e| self.backend("cannot record the migration", e))?;
            applied += 1;
        }
        tx.commit()
            .map_err(|e| self.backend("cannot commit the migrations", e))?;
        if applied > 0 {
            tracing::info!(database = %self.shown, applied, version = known, "database schema migrated");
        }
        Ok(applied)
    }

    /// Computes every device's aggregates from its stored batches (once, when the tables
    /// are created on a database that already holds batches).
    fn fill_aggregates(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), StorageError> {
        let rows = tx
            .query("SELECT device, seq, body, received_unix FROM batches", &[])
            .map_err(|e| self.backend("cannot read the batches for the aggregates", e))?;
        let records = rows
            .iter()
            .map(|row| self.record(row))
            .collect::<Result<Vec<_>, _>>()?;
        let fail = |e| self.backend("cannot write an aggregate", e);
        for (device, agg) in crate::fleet::aggregate(&records) {
            let Some(newest) = &agg.newest else { continue };
            let newest_json =
                serde_json::to_vec(newest).map_err(|e| StorageError::Backend(e.to_string()))?;
            let last_day = agg.days.keys().next_back().map(|&d| i64::from(d));
            let n = |v: u64, what: &str| big(v, what, &device);
            tx.execute(
                "INSERT INTO device_totals VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &device,
                    &n(agg.batches, "batches")?,
                    &n(agg.last_seq, "seq")?,
                    &agg.last_seen.map(|t| n(t, "last seen")).transpose()?,
                    &i64::from(newest.period.end_day().0),
                    &n(newest.seq, "seq")?,
                    &newest_json,
                    &last_day,
                    &n(agg.calls, "calls")?,
                    &n(agg.positive, "positive calls")?,
                    &n(agg.negative, "negative calls")?,
                    &n(agg.neutral, "neutral calls")?,
                    &n(agg.merged, "merged")?,
                    &n(agg.lost, "lost")?,
                ],
            )
            .map_err(fail)?;
            for (term, calls) in &agg.complaints {
                tx.execute(
                    "INSERT INTO device_terms VALUES ($1, $2, $3)",
                    &[&device, term, &n(*calls, "term calls")?],
                )
                .map_err(fail)?;
            }
            for (day, v) in &agg.days {
                tx.execute(
                    "INSERT INTO device_days VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&device, &i64::from(*day), &v[0], &v[1], &v[2], &v[3]],
                )
                .map_err(fail)?;
            }
        }
        Ok(())
    }

    fn record(&self, row: &postgres::Row) -> Result<Record, StorageError> {
        let device: String = row.get(0);
        let seq: i64 = row.get(1);
        let body: Vec<u8> = row.get(2);
        let received: i64 = row.get(3);
        let batch = Batch::decode(&body).map_err(|e| StorageError::Corrupt {
            device: device.clone(),
            seq: seq as u64,
            reason: e.to_string(),
        })?;
        Ok(Record {
            batch,
            received_unix: u64::try_from(received).ok(),
        })
    }

    fn check_durability(&self) -> Result<(), StorageError> {
        let mut conn = self.conn()?;
        let client = &mut conn.client;
        for setting in ["fsync", "synchronous_commit"] {
            let value: String = client
                .query_one(&format!("SHOW {setting}"), &[])
                .map_err(|e| self.backend("cannot read the server's settings", e))?
                .get(0);
            if value == "off" {
                return Err(StorageError::Open {
                    path: self.shown.clone().into(),
                    reason: format!(
                        "the server runs with {setting} = off: an acknowledged batch could be lost in a crash. Turn it on (postgresql.conf) or use another server"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Deletes every batch and aggregate (tests and benches on a scratch database).
    pub fn clear(&self) -> Result<(), StorageError> {
        self.conn()?
            .client
            .batch_execute("TRUNCATE batches, device_totals, device_terms, device_days")
            .map_err(|e| self.backend("cannot empty the batch table", e))
    }
}

impl PgStorage {
    /// Stores one group in one transaction, retried once after a deadlock (two hubs
    /// storing groups of the same devices).
    /// The answers are in the group's order.
    fn store_group(&self, group: &[(Arc<Slot>, Job)]) -> Result<Vec<Stored>, StorageError> {
        match self.try_group(group) {
            Err(GroupError::Deadlock(_)) => self.try_group(group).map_err(GroupError::into),
            other => other.map_err(GroupError::into),
        }
    }

    fn try_group(&self, group: &[(Arc<Slot>, Job)]) -> Result<Vec<Stored>, GroupError> {
        use crate::fleet::{DeviceAggregate, NewestPeriod};
        let mut conn = self.conn()?;
        if conn.prepared.is_none() {
            let mut prepare = |sql: &str| {
                conn.client
                    .prepare(sql)
                    .map_err(|e| self.backend("cannot prepare the insert", e))
            };
            let statements = [
                prepare(INSERT_GROUP)?,
                prepare(ADD_AGGREGATES)?,
                prepare(STORED_BODIES)?,
                prepare(HIGHEST_SEQS)?,
            ];
            conn.prepared = Some(statements);
        }
        let [insert, add, stored_bodies, highest] = conn.prepared.clone().expect("prepared above");
        let mut jobs: Vec<&(Arc<Slot>, Job)> = group.iter().collect();
        jobs.sort_by(|a, b| (&a.1.device, a.1.seq).cmp(&(&b.1.device, b.1.seq)));
        let first = &jobs[0].1;
        let what = format!(
            "a group of {} batches ({} #{} and others)",
            jobs.len(),
            first.device,
            first.seq
        );
        let fail =
            |e: postgres::Error| GroupError::from_db(self, &format!("cannot store {what}"), e);
        let column = |f: &dyn Fn(&Job) -> i64| jobs.iter().map(|j| f(&j.1)).collect::<Vec<i64>>();
        let devices: Vec<&str> = jobs.iter().map(|j| j.1.device.as_str()).collect();
        let seqs = column(&|j| j.seq);
        let digests: Vec<&[u8]> = jobs.iter().map(|j| j.1.digest.as_slice()).collect();
        let bodies: Vec<&[u8]> = jobs.iter().map(|j| j.1.body.as_slice()).collect();
        let received = column(&|j| j.received);

        let mut tx = conn.client.transaction().map_err(fail)?;
        let inserted: HashSet<(String, i64)> = tx
            .query(&insert, &[&devices, &seqs, &digests, &bodies, &received])
            .map_err(fail)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();

        // What the new batches add, per device, in device order.
        let mut deltas: BTreeMap<&str, (DeviceAggregate, BTreeMap<&str, i64>)> = BTreeMap::new();
        for (_, job) in jobs.iter().copied() {
            if !inserted.contains(&(job.device.clone(), job.seq)) {
                continue;
            }
            let (agg, terms) = deltas.entry(job.device.as_str()).or_default();
            agg.add(&job.batch, u64::try_from(job.received).ok());
            for k in &job.batch.report.complaints {
                *terms.entry(k.term.as_str()).or_default() += i64::from(k.calls);
            }
        }
        if !deltas.is_empty() {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let mut names: Vec<&str> = vec![];
            // batches, last seq, newest end day, newest seq
            let mut totals: [Vec<i64>; 4] = Default::default();
            let mut last_seen: Vec<Option<i64>> = vec![];
            let mut newest_rows: Vec<Vec<u8>> = vec![];
            let mut counts: [Vec<i64>; 6] = Default::default();
            let (mut term_devices, mut term_names, mut term_calls) = (vec![], vec![], vec![]);
            let (mut day_devices, mut day_numbers) = (vec![], vec![]);
            let mut shares: [Vec<f64>; 4] = Default::default();
            let mut last_days: Vec<Option<i64>> = vec![];
            for (device, (agg, terms)) in &deltas {
                let newest: &NewestPeriod = agg.newest.as_ref().expect("a delta has a batch");
                names.push(device);
                totals[0].push(n(agg.batches));
                totals[1].push(n(agg.last_seq));
                totals[2].push(i64::from(newest.period.end_day().0));
                totals[3].push(n(newest.seq));
                last_seen.push(agg.last_seen.map(n));
                newest_rows.push(
                    serde_json::to_vec(newest)
                        .map_err(|e| GroupError::Other(StorageError::Backend(e.to_string())))?,
                );
                last_days.push(agg.days.keys().next_back().map(|&d| i64::from(d)));
                for (i, v) in [
                    agg.calls,
                    agg.positive,
                    agg.negative,
                    agg.neutral,
                    agg.merged,
                    agg.lost,
                ]
                .into_iter()
                .enumerate()
                {
                    counts[i].push(n(v));
                }
                for (term, calls) in terms {
                    term_devices.push(*device);
                    term_names.push(*term);
                    term_calls.push(*calls);
                }
                for (day, v) in &agg.days {
                    day_devices.push(*device);
                    day_numbers.push(i64::from(*day));
                    for i in 0..4 {
                        shares[i].push(v[i]);
                    }
                }
            }
            tx.query_one(
                &add,
                &[
                    &names,
                    &totals[0],
                    &totals[1],
                    &last_seen,
                    &totals[2],
                    &totals[3],
                    &newest_rows,
                    &last_days,
                    &counts[0],
                    &counts[1],
                    &counts[2],
                    &counts[3],
                    &counts[4],
                    &counts[5],
                    &term_devices,
                    &term_names,
                    &term_calls,
                    &day_devices,
                    &day_numbers,
                    &shares[0],
                    &shares[1],
                    &shares[2],
                    &shares[3],
                ],
            )
            .map_err(fail)?;
        }

        // The others are there and committed (ON CONFLICT waited for the other copy's
        // transaction): the same batch is a duplicate, another one a conflict.
        let others: Vec<&Job> = jobs
            .iter()
            .map(|j| &j.1)
            .filter(|j| !inserted.contains(&(j.device.clone(), j.seq)))
            .collect();
        let mut stored: HashMap<(String, i64), Vec<u8>> = HashMap::new();
        let mut next: HashMap<String, i64> = HashMap::new();
        if !others.is_empty() {
            let devices: Vec<&str> = others.iter().map(|j| j.device.as_str()).collect();
            let seqs: Vec<i64> = others.iter().map(|j| j.seq).collect();
            for row in tx.query(&stored_bodies, &[&devices, &seqs]).map_err(fail)? {
                stored.insert((row.get(0), row.get(1)), row.get(2));
            }
            for row in tx.query(&highest, &[&devices]).map_err(fail)? {
                next.insert(row.get(0), row.get(1));
            }
        }
        tx.commit().map_err(fail)?;
        Ok(group
            .iter()
            .map(|(_, job)| {
                let key = (job.device.clone(), job.seq);
                let answer = if inserted.contains(&key) {
                    Stored::New
                } else if crate::storage::same_batch(
                    &job.batch,
                    &job.body,
                    stored.get(&key).map(Vec::as_slice),
                ) {
                    Stored::Duplicate
                } else {
                    let highest = next.get(&job.device).copied().unwrap_or(0);
                    Stored::Conflict {
                        next_seq: u64::try_from(highest)
                            .unwrap_or(0)
                            .max(job.batch.header.seq)
                            .saturating_add(1),
                    }
                };
                answer
            })
            .collect())
    }
}

/// Why a group was not stored: a deadlock (tried again) or anything else.
enum GroupError {
    Deadlock(StorageError),
    Other(StorageError),
}

impl GroupError {
    fn from_db(store: &PgStorage, what: &str, e: postgres::Error) -> GroupError {
        let deadlock = e.code() == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED);
        let shown = store.backend(what, e);
        if deadlock {
            GroupError::Deadlock(shown)
        } else {
            GroupError::Other(shown)
        }
    }
}

impl From<StorageError> for GroupError {
    fn from(e: StorageError) -> GroupError {
        GroupError::Other(e)
    }
}

impl From<GroupError> for StorageError {
    fn from(e: GroupError) -> StorageError {
        match e {
            GroupError::Deadlock(e) | GroupError::Other(e) => e,
        }
    }
}

fn seq_param(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|_| StorageError::Backend(format!("seq {seq} is beyond bigint")))
}

/// A count as PostgreSQL's bigint, or an error naming it (no box counts that far).
fn big(v: u64, what: &str, device: &str) -> Result<i64, StorageError> {
    i64::try_from(v).map_err(|_| {
        StorageError::Backend(format!(
            "{device}: {what} {v} is beyond PostgreSQL's bigint; the batch is not stored"
        ))
    })
}

/// A stored count read back (never negative: only sums of unsigned counts are written).
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Storage for PgStorage {
    /// Group commit: the insert waits in a queue; a store thread that finds fewer than
    /// [`GROUPS_AT_ONCE`] groups being stored takes every waiting insert and stores them in
    /// one transaction (the batches, then their devices' aggregates, then the commit),
    /// and hands each waiting thread its answer after the commit. Under load a group
    /// holds the inserts that arrived while the previous one was being stored: one
    /// commit (one WAL flush) and a few statements serve them all.
    fn insert(&self, batch: &Batch, body: &[u8]) -> Result<Stored, StorageError> {
        self.ensure_ready()?;
        let device = batch.header.device.as_str();
        let c = &batch.report.counters;
        // Checked here, so that no group fails for one batch's numbers.
        for (v, what) in [
            (batch.header.seq, "seq"),
            (c.calls, "calls"),
            (c.positive_calls, "positive calls"),
            (c.negative_calls, "negative calls"),
            (c.neutral_calls, "neutral calls"),
        ] {
            big(v, what, device)?;
        }
        let job = Job {
            device: device.to_owned(),
            seq: seq_param(batch.header.seq)?,
            digest: sangdam_wire::body_digest(body).to_vec(),
            body: body.to_vec(),
            received: i64::try_from(now_unix()).unwrap_or(i64::MAX),
            batch: batch.clone(),
        };
        let lock = || self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let slot = Arc::new(Slot::default());
        let mut lead = {
            let mut queue = lock();
            queue.waiting.push_back((slot.clone(), job));
            let lead = queue.storing < GROUPS_AT_ONCE;
            queue.storing += usize::from(lead);
            lead
        };
        loop {
            if lead {
                let group = take_group(&mut lock().waiting);
                let stored = if group.is_empty() {
                    Ok(vec![])
                } else {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.store_group(&group)
                    }))
                    .unwrap_or_else(|_| {
                        Err(StorageError::Backend(
                            "storing a group of batches panicked".into(),
                        ))
                    })
                };
                match stored {
                    Ok(answers) => {
                        for ((slot, _), answer) in group.iter().zip(answers) {
                            slot.set(|s| s.answer = Some(Ok(answer)));
                        }
                    }
                    Err(e) => {
                        for (slot, _) in &group {
                            slot.set(|s| s.answer = Some(Err(e.clone())));
                        }
                    }
                }
                // Hand the lead to the oldest waiting insert (one wake-up, not all).
                let mut queue = lock();
                match queue.waiting.front() {
                    Some((next, _)) => next.set(|s| s.lead = true),
                    None => queue.storing -= 1,
                }
            }
            let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if std::mem::take(&mut state.lead) {
                    lead = true;
                    break;
                }
                if let Some(answer) = state.answer.take() {
                    return answer;
                }
                state = slot.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    fn aggregates(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::fleet::DeviceAggregate>, StorageError>
    {
        use crate::fleet::{DeviceAggregate, NewestPeriod, TERMS_PER_DEVICE, TREND_DAYS};
        self.ensure_ready()?;
        let mut conn = self.conn()?;
        let client = &mut conn.client;
        let fail = |e| self.backend("cannot read the aggregates", e);
        let mut out: std::collections::BTreeMap<String, DeviceAggregate> = Default::default();
        for row in client.query(READ_TOTALS, &[]).map_err(fail)? {
            let device: String = row.get(0);
            let newest: Vec<u8> = row.get(4);
            let newest: NewestPeriod =
                serde_json::from_slice(&newest).map_err(|e| StorageError::Corrupt {
                    device: device.clone(),
                    seq: 0,
                    reason: format!("its newest period does not decode: {e}"),
                })?;
            let agg = DeviceAggregate {
                batches: count(row.get(1)),
                last_seq: count(row.get(2)),
                last_seen: row.get::<_, Option<i64>>(3).map(count),
                newest: Some(newest),
                calls: count(row.get(5)),
                positive: count(row.get(6)),
                negative: count(row.get(7)),
                neutral: count(row.get(8)),
                merged: count(row.get(9)),
                lost: count(row.get(10)),
                complaints: Default::default(),
                days: Default::default(),
            };
            out.insert(device, agg);
        }
        let terms = TERMS_PER_DEVICE as i64;
        for row in client.query(READ_TERMS, &[&terms]).map_err(fail)? {
            let device: String = row.get(0);
            if let Some(agg) = out.get_mut(&device) {
                agg.complaints.insert(row.get(1), count(row.get(2)));
            }
        }
        let back = i64::from(TREND_DAYS - 1);
        for row in client.query(READ_DAYS, &[&back]).map_err(fail)? {
            let device: String = row.get(0);
            let day: i64 = row.get(1);
            if let (Some(agg), Ok(day)) = (out.get_mut(&device), u32::try_from(day)) {
                agg.days
                    .insert(day, [row.get(2), row.get(3), row.get(4), row.get(5)]);
            }
        }
        Ok(out)
    }

    fn batches(&self) -> Result<Vec<Batch>, StorageError> {
        Ok(self.records()?.into_iter().map(|r| r.batch).collect())
    }

    fn count(&self) -> Result<usize, StorageError> {
        self.ensure_ready()?;
        let n: i64 = self
            .conn()?
            .client
            .query_one("SELECT count(*) FROM batches", &[])
            .map_err(|e| self.backend("cannot count batches", e))?
            .get(0);
        Ok(n.max(0) as usize)
    }

    fn contains(&self, device: &str, seq: u64) -> Result<bool, StorageError> {
        self.ensure_ready()?;
        let seq = seq_param(seq)?;
        Ok(self
            .conn()?
            .client
            .query_opt(
                "SELECT 1 FROM batches WHERE device = $1 AND seq = $2",
                &[&device, &seq],
            )
            .map_err(|e| self.backend("cannot look up a batch", e))?
            .is_some())
    }

    fn records(&self) -> Result<Vec<Record>, StorageError> {
        self.ensure_ready()?;
        let rows = self
            .conn()?
            .client
            .query(
                "SELECT device, seq, body, received_unix FROM batches ORDER BY device, seq",
                &[],
            )
            .map_err(|e| self.backend("cannot read the batches", e))?;
        rows.iter().map(|row| self.record(row)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://hub:s3cret@db.example:5432/sangdam"),
            "postgres://hub:***@db.example:5432/sangdam"
        );
        assert_eq!(
            redacted("postgresql://hub@db/sangdam"),
            "postgresql://hub@db/sangdam"
        );
        assert_eq!(
            redacted("host=db user=hub password=s3cret dbname=x"),
            "host=db user=hub password=*** dbname=x"
        );
        assert_eq!(
            redacted("postgres://hub:p@ss@word@db/x"),
            "postgres://hub:***@db/x"
        );
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        assert!(MIGRATIONS.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        assert_eq!(MIGRATIONS[0].0, 1);
    }
}
