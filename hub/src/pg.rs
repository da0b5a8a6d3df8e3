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
//! - **Durability.** Every insert is its own transaction; the answer is given after its
//!   commit returned, with the server's `synchronous_commit` (on by default): the same
//!   promise as the sled backend's group commit. The hub refuses to start on a server
//!   where `fsync` or `synchronous_commit` is off.
//! - **Unreachable database.** Each error names the URL without its password; the hub
//!   keeps running, answers 503 to boxes (they keep their batches and retry), and
//!   reconnects through the pool on the next request.

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
    (
        2,
        "CREATE TABLE device_aggregates (
            device    text PRIMARY KEY,
            aggregate bytea
        )",
    ),
];

/// Inserts the batch, and (when it is new) makes sure its device has an aggregate row
/// to lock: true when the batch was inserted.
const INSERT: &str = "WITH ins AS (
        INSERT INTO batches (device, seq, digest, body, received_unix)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device, seq) DO NOTHING RETURNING 1),
    agg AS (
        INSERT INTO device_aggregates (device, aggregate)
        SELECT $1, NULL WHERE EXISTS (SELECT 1 FROM ins) ON CONFLICT (device) DO NOTHING)
    SELECT EXISTS (SELECT 1 FROM ins)";
const LOCK_AGGREGATE: &str = "SELECT aggregate FROM device_aggregates WHERE device = $1 FOR UPDATE";
const UPDATE_AGGREGATE: &str = "UPDATE device_aggregates SET aggregate = $2 WHERE device = $1";
const STORED_BODY: &str = "SELECT body FROM batches WHERE device = $1 AND seq = $2";
const HIGHEST_SEQ: &str = "SELECT coalesce(max(seq), 0) FROM batches WHERE device = $1";

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
    prepared: Option<[Statement; 5]>,
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
            if *version == 2 {
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

    /// Computes every device's aggregate from its stored batches (once, when the table is
    /// created on a database that already holds batches).
    fn fill_aggregates(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), StorageError> {
        let rows = tx
            .query("SELECT device, seq, body, received_unix FROM batches", &[])
            .map_err(|e| self.backend("cannot read the batches for the aggregates", e))?;
        let records = rows
            .iter()
            .map(|row| self.record(row))
            .collect::<Result<Vec<_>, _>>()?;
        for (device, agg) in crate::fleet::aggregate(&records) {
            let json =
                serde_json::to_vec(&agg).map_err(|e| StorageError::Backend(e.to_string()))?;
            tx.execute(
                "INSERT INTO device_aggregates (device, aggregate) VALUES ($1, $2)",
                &[&device, &json],
            )
            .map_err(|e| self.backend("cannot write an aggregate", e))?;
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
            .batch_execute("TRUNCATE batches, device_aggregates")
            .map_err(|e| self.backend("cannot empty the batch table", e))
    }
}

fn seq_param(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq).map_err(|_| StorageError::Backend(format!("seq {seq} is beyond bigint")))
}

impl Storage for PgStorage {
    fn insert(&self, batch: &Batch, body: &[u8]) -> Result<Stored, StorageError> {
        self.ensure_ready()?;
        let device = batch.header.device.as_str();
        let seq = seq_param(batch.header.seq)?;
        let digest = sangdam_wire::body_digest(body).to_vec();
        let received = i64::try_from(now_unix()).unwrap_or(i64::MAX);
        let mut conn = self.conn()?;
        if conn.prepared.is_none() {
            let mut prepare = |sql: &str| {
                conn.client
                    .prepare(sql)
                    .map_err(|e| self.backend("cannot prepare the insert", e))
            };
            let statements = [
                prepare(INSERT)?,
                prepare(LOCK_AGGREGATE)?,
                prepare(UPDATE_AGGREGATE)?,
                prepare(STORED_BODY)?,
                prepare(HIGHEST_SEQ)?,
            ];
            conn.prepared = Some(statements);
        }
        let [insert, lock, update, stored_body, highest] =
            conn.prepared.clone().expect("prepared above");
        let fail = |what: &str, e| self.backend(&format!("{what} {device} #{seq}"), e);
        // One transaction: the batch and its device's aggregate commit together, and the
        // answer follows the commit. A concurrent insert of the same key waits on the
        // row's lock until the other commits (then finds the row) or rolls back; two new
        // batches of one device take turns on the aggregate row's lock.
        let mut tx = conn
            .client
            .transaction()
            .map_err(|e| fail("cannot begin storing", e))?;
        let inserted: bool = tx
            .query_one(&insert, &[&device, &seq, &digest, &body, &received])
            .map_err(|e| fail("cannot store", e))?
            .get(0);
        if !inserted {
            // The row is there and committed (ON CONFLICT waited for the other copy's
            // transaction): the same batch is a duplicate, another one a conflict.
            let stored: Option<Vec<u8>> = tx
                .query_opt(&stored_body, &[&device, &seq])
                .map_err(|e| fail("cannot read the stored copy of", e))?
                .map(|row| row.get(0));
            let answer = if crate::storage::same_batch(batch, body, stored.as_deref()) {
                Stored::Duplicate
            } else {
                let highest: i64 = tx
                    .query_one(&highest, &[&device])
                    .map_err(|e| fail("cannot find the next seq after", e))?
                    .get(0);
                Stored::Conflict {
                    next_seq: u64::try_from(highest)
                        .unwrap_or(0)
                        .max(batch.header.seq)
                        .saturating_add(1),
                }
            };
            tx.rollback().map_err(|e| fail("cannot end storing", e))?;
            return Ok(answer);
        }
        let current: Option<Vec<u8>> = tx
            .query_one(&lock, &[&device])
            .map_err(|e| fail("cannot lock the aggregate of", e))?
            .get(0);
        let mut agg: crate::fleet::DeviceAggregate = match current {
            Some(json) => serde_json::from_slice(&json).map_err(|e| StorageError::Corrupt {
                device: device.to_owned(),
                seq: batch.header.seq,
                reason: format!("its device's aggregate does not decode: {e}"),
            })?,
            None => Default::default(),
        };
        agg.add(batch, u64::try_from(received).ok());
        let json = serde_json::to_vec(&agg).map_err(|e| StorageError::Backend(e.to_string()))?;
        tx.execute(&update, &[&device, &json])
            .map_err(|e| fail("cannot update the aggregate of", e))?;
        tx.commit().map_err(|e| fail("cannot commit", e))?;
        Ok(Stored::New)
    }

    fn aggregates(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::fleet::DeviceAggregate>, StorageError>
    {
        self.ensure_ready()?;
        let rows = self
            .conn()?
            .client
            .query(
                "SELECT device, aggregate FROM device_aggregates WHERE aggregate IS NOT NULL",
                &[],
            )
            .map_err(|e| self.backend("cannot read the aggregates", e))?;
        rows.iter()
            .map(|row| {
                let device: String = row.get(0);
                let json: Vec<u8> = row.get(1);
                let agg = serde_json::from_slice(&json).map_err(|e| StorageError::Corrupt {
                    device: device.clone(),
                    seq: 0,
                    reason: format!("its aggregate does not decode: {e}"),
                })?;
                Ok((device, agg))
            })
            .collect()
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
