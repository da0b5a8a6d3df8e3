//! The storage contract on both backends (sled and a real PostgreSQL server), and the
//! PostgreSQL-only faults: a database crash after the acknowledgement, an unreachable
//! database, two hub processes on one database.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sangdam_hub::{serve, PgStorage, SledStorage, Storage, Stored};

use crate::cli::{hub_bin, write_registry};
use crate::common::*;
use crate::pgserver::PgServer;

/// The contract every backend keeps.
fn conformance(name: &str, a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    assert_eq!(a.count().unwrap(), 0, "{name}");
    let first = batch("busan-03", 1);
    let body = first.encode().unwrap();
    assert_eq!(a.insert(&first, &body).unwrap(), Stored::New, "{name}");
    assert_eq!(
        a.insert(&first, &body).unwrap(),
        Stored::Duplicate,
        "{name}"
    );
    // The second handle (another hub process on the same database, for PostgreSQL; the
    // same store for sled) sees it and refuses it too.
    assert_eq!(
        b.insert(&first, &body).unwrap(),
        Stored::Duplicate,
        "{name}"
    );
    assert!(b.contains("busan-03", 1).unwrap() && !b.contains("busan-03", 2).unwrap());
    // Many copies of one new batch at once, from both handles: stored exactly once.
    let second = batch("busan-03", 2);
    let body2 = second.encode().unwrap();
    let barrier = Barrier::new(16);
    let outcomes: Vec<Stored> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, second, body2) = (&barrier, &second, &body2);
                s.spawn(move || {
                    barrier.wait();
                    store.insert(second, body2).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| **o == Stored::New).count(),
        1,
        "{name}: {outcomes:?}"
    );
    for seq in 3..=20 {
        let x = batch(if seq % 2 == 0 { "seoul-01" } else { "busan-04" }, seq);
        assert_eq!(a.insert(&x, &x.encode().unwrap()).unwrap(), Stored::New);
    }
    assert_eq!(a.count().unwrap(), 20, "{name}");
    assert_eq!(b.count().unwrap(), 20, "{name}");
    let records = b.records().unwrap();
    assert_eq!(records.len(), 20);
    assert_eq!(
        records[0].batch, first,
        "{name}: records round-trip the batch"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(records
        .iter()
        .all(|r| r.received_unix.is_some_and(|t| t.abs_diff(now) < 600)));
    let mut keys: Vec<(String, u64)> = records
        .iter()
        .map(|r| (r.batch.header.device.clone(), r.batch.header.seq))
        .collect();
    let sorted = keys.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys, sorted,
        "{name}: records come once each, by device then seq"
    );
}

#[test]
fn both_backends_keep_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let sled: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
    conformance("sled", sled.clone(), sled);
    let pg = PgServer::start();
    let url = pg.new_database();
    let a: Arc<dyn Storage> = Arc::new(PgStorage::open(&url, 8).unwrap());
    let b: Arc<dyn Storage> = Arc::new(PgStorage::open(&url, 8).unwrap());
    conformance("postgres", a, b);
}

#[test]
fn both_backends_tell_duplicates_from_conflicts() {
    // The sled side runs in `storage::`; here the same checks on PostgreSQL.
    let pg = PgServer::start();
    let url = pg.new_database();
    crate::storage::duplicates_and_conflicts(&PgStorage::open(&url, 4).unwrap());
    let url = pg.new_database();
    crate::storage::concurrent_copies(Arc::new(PgStorage::open(&url, 8).unwrap()));
}

#[test]
fn migrations_are_applied_once_and_a_newer_schema_is_refused() {
    let pg = PgServer::start();
    let url = pg.new_database();
    let first = PgStorage::connect(&url, 2).unwrap();
    assert_eq!(first.migrate().unwrap(), sangdam_hub::pg::MIGRATIONS.len());
    assert_eq!(first.migrate().unwrap(), 0);
    // Two hubs starting together: both succeed, the schema is applied once.
    let url2 = pg.new_database();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PgStorage::open(&url2, 1).map(|_| ())))
            .collect();
        for h in hs {
            h.join().unwrap().unwrap();
        }
    });
    let mut c = postgres::Client::connect(&url2, postgres::NoTls).unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM sangdam_hub_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n as usize, sangdam_hub::pg::MIGRATIONS.len());
    c.batch_execute("INSERT INTO sangdam_hub_migrations (version) VALUES (999)")
        .unwrap();
    let e = PgStorage::open(&url2, 1).unwrap_err().to_string();
    assert!(
        e.contains("newer than this hub") && e.contains("update sangdam-hub"),
        "{e}"
    );
}

#[test]
fn acknowledged_batches_survive_a_database_crash() {
    let pg = PgServer::start();
    let url = pg.new_database();
    let storage = Arc::new(PgStorage::open(&url, 8).unwrap());
    let hub = serve(test_config(), registry(), storage).unwrap();
    for seq in 1..=10 {
        assert_eq!(upload(hub.addr(), &batch("busan-03", seq)).status, 200);
    }
    // Killed without a checkpoint or shutdown: only what was committed survives.
    pg.crash_and_restart();
    let again = PgStorage::open(&url, 2).unwrap();
    assert_eq!(again.count().unwrap(), 10);
    // The hub's pool reconnects: a replay is a duplicate, a new batch is stored.
    let deadline = Instant::now() + Duration::from_secs(20);
    let replay = loop {
        let r = upload(hub.addr(), &batch("busan-03", 3));
        if r.status != 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(replay.status, 409, "{}", replay.text());
    assert_eq!(upload(hub.addr(), &batch("busan-03", 11)).status, 200);
    hub.stop();
}

#[test]
fn an_unreachable_database_is_503_and_names_the_url_without_its_password() {
    let pg = PgServer::start();
    let url = pg.new_database();
    let with_password = url.replace("postgres@", "postgres:hunter2-secret@");
    let storage = Arc::new(PgStorage::open(&with_password, 4).unwrap());
    let hub = serve(test_config(), registry(), storage.clone()).unwrap();
    assert_eq!(upload(hub.addr(), &batch("busan-03", 1)).status, 200);
    pg.stop();
    let reply = upload(hub.addr(), &batch("busan-03", 2));
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(!reply.text().contains("hunter2"));
    assert_eq!(hub.stats().storage_failed, 1);
    let e = storage.count().unwrap_err().to_string();
    assert!(
        e.contains("postgres:***@127.0.0.1") && !e.contains("hunter2"),
        "{e}"
    );
    // Back up: the same hub stores again without a restart.
    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let r = upload(hub.addr(), &batch("busan-03", 2));
        if r.status != 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(storage.count().unwrap(), 2);
    hub.stop();
}

fn spawn_hub(dir: &std::path::Path, url: &str) -> (Child, SocketAddr, SocketAddr) {
    let mut child = hub_bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--registry",
        ])
        .arg(dir.join("registry.toml"))
        .arg("--viewers")
        .arg(dir.join("viewers.toml"))
        .env("SANGDAM_HUB_DATABASE", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let ingest = words.get(3).and_then(|a| a.parse().ok());
    let dashboard = words
        .iter()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|a| a.trim_end_matches('/').parse().ok());
    match (ingest, dashboard) {
        (Some(i), Some(d)) => (child, i, d),
        _ => panic!("no addresses in {line:?}"),
    }
}

fn summary_of(dashboard: SocketAddr) -> serde_json::Value {
    let token = login(dashboard, VIEWER, VIEWER_PASSWORD).unwrap();
    let reply = get_with(
        dashboard,
        "/v1/summary",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(reply.status, 200);
    let mut v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    v.as_object_mut().unwrap().remove("generated_unix");
    v
}

#[test]
fn two_hub_processes_on_one_database_store_each_batch_once_and_agree() {
    let pg = PgServer::start();
    let url = pg.new_database();
    let dir = tempfile::tempdir().unwrap();
    write_registry(&dir.path().join("registry.toml"));
    sangdam_hub::add_viewer(
        &dir.path().join("viewers.toml"),
        VIEWER,
        VIEWER_PASSWORD,
        false,
    )
    .unwrap();
    let (mut one, ingest1, dash1) = spawn_hub(dir.path(), &url);
    let (mut two, ingest2, dash2) = spawn_hub(dir.path(), &url);
    // The same batches to both hubs at once: each stored once, one 200 and one 409 each.
    for seq in 1..=20 {
        let b = batch(if seq % 3 == 0 { "seoul-01" } else { "busan-03" }, seq);
        let barrier = Barrier::new(2);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = [ingest1, ingest2]
                .into_iter()
                .map(|addr| {
                    let (b, barrier) = (&b, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        upload(addr, b).status
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, [200, 409], "seq {seq}: {statuses:?}");
    }
    // Different batches to each; then both pages show the same fleet.
    assert_eq!(upload(ingest1, &batch("busan-04", 21)).status, 200);
    assert_eq!(upload(ingest2, &batch("busan-04", 22)).status, 200);
    let (s1, s2) = (summary_of(dash1), summary_of(dash2));
    assert_eq!(s1["batches"], 22);
    assert_eq!(s1, s2, "the two hubs' summaries differ");
    // One hub killed after its acknowledgements: the other still answers, and the
    // batches it acknowledged are there for both.
    one.kill().unwrap();
    one.wait().unwrap();
    assert_eq!(upload(ingest2, &batch("busan-04", 21)).status, 409);
    let check = PgStorage::open(&url, 1).unwrap();
    assert_eq!(check.count().unwrap(), 22);
    two.kill().unwrap();
    two.wait().unwrap();
}

#[test]
fn aggregates_match_the_batches_including_concurrent_ones_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    aggregates_match(Arc::new(SledStorage::open(dir.path()).unwrap()));
    let pg = PgServer::start();
    let url = pg.new_database();
    aggregates_match(Arc::new(PgStorage::open(&url, 16).unwrap()));
}

/// The incrementally kept aggregates equal a fold of the stored batches.
fn aggregates_match(store: Arc<dyn Storage>) {
    // 8 threads × 10 new batches of the same two devices at once: no lost update.
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..10u64 {
                    let seq = t * 10 + i + 1;
                    let b = batch(if seq % 2 == 0 { "busan-03" } else { "seoul-01" }, seq);
                    assert_eq!(store.insert(&b, &b.encode().unwrap()).unwrap(), Stored::New);
                    // Duplicates change nothing.
                    assert_eq!(
                        store.insert(&b, &b.encode().unwrap()).unwrap(),
                        Stored::Duplicate
                    );
                }
            });
        }
    });
    let kept = store.aggregates().unwrap();
    let folded = sangdam_hub::fleet::aggregate(&store.records().unwrap());
    assert_eq!(kept.len(), 2);
    for (device, agg) in &folded {
        let k = &kept[device];
        assert_eq!(
            (k.batches, k.calls, k.last_seq),
            (agg.batches, agg.calls, agg.last_seq),
            "{device}"
        );
        assert_eq!(k.complaints, agg.complaints);
        assert_eq!(k.newest, agg.newest);
        assert_eq!(k.days.len(), agg.days.len());
        for ((d1, v1), (d2, v2)) in k.days.iter().zip(&agg.days) {
            assert_eq!(d1, d2);
            assert!(v1.iter().zip(v2).all(|(a, b)| (a - b).abs() < 1e-9));
        }
    }
}

/// Stores a batch the way an older hub did: a plain row in `batches`, no aggregates.
fn insert_raw(c: &mut postgres::Client, device: &str, seq: u64) {
    let body = batch(device, seq).encode().unwrap();
    c.execute(
        "INSERT INTO batches VALUES ($1, $2, $3, $4, 1700000000)",
        &[
            &device,
            &(seq as i64),
            &sangdam_wire::body_digest(&body).to_vec(),
            &body,
        ],
    )
    .unwrap();
}

#[test]
fn a_database_of_the_first_schema_gets_its_aggregates_filled() {
    let pg = PgServer::start();
    let url = pg.new_database();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE sangdam_hub_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
         {}; INSERT INTO sangdam_hub_migrations (version) VALUES (1);",
        sangdam_hub::pg::MIGRATIONS[0].1
    ))
    .unwrap();
    for seq in 1..=5u64 {
        insert_raw(&mut c, "busan-03", seq);
    }
    let store = PgStorage::open(&url, 2).unwrap();
    let kept = store.aggregates().unwrap();
    assert_eq!(kept["busan-03"].batches, 5);
    assert_eq!(
        kept,
        sangdam_hub::fleet::aggregate(&store.records().unwrap())
    );
}

#[test]
fn a_database_of_the_json_aggregates_gets_the_narrow_tables_filled() {
    // Schema 2 kept one JSON aggregate per device; schema 3 replaces it with the narrow
    // tables of the group commit, filled from the stored batches.
    let pg = PgServer::start();
    let url = pg.new_database();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE sangdam_hub_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
         {}; {}; INSERT INTO sangdam_hub_migrations (version) VALUES (1), (2);",
        sangdam_hub::pg::MIGRATIONS[0].1,
        sangdam_hub::pg::MIGRATIONS[1].1
    ))
    .unwrap();
    for (device, seq) in [("busan-03", 1u64), ("busan-03", 2), ("seoul-01", 7)] {
        insert_raw(&mut c, device, seq);
    }
    let store = PgStorage::open(&url, 2).unwrap();
    let version: i32 = c
        .query_one("SELECT max(version) FROM sangdam_hub_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 3);
    let json_table: Option<String> = c
        .query_one("SELECT to_regclass('device_aggregates')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(json_table, None, "the JSON table is dropped");
    let kept = store.aggregates().unwrap();
    assert_eq!(
        kept,
        sangdam_hub::fleet::aggregate(&store.records().unwrap())
    );
    assert_eq!(kept["busan-03"].batches, 2);
    // And kept up to date from there on, by the group commit.
    let b = batch("seoul-01", 8);
    assert_eq!(store.insert(&b, &b.encode().unwrap()).unwrap(), Stored::New);
    assert_eq!(store.aggregates().unwrap()["seoul-01"].batches, 2);
}

#[test]
fn a_sled_store_from_before_the_aggregates_gets_them_filled_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStorage::open(dir.path()).unwrap();
        for seq in 1..=5u64 {
            let b = batch("busan-03", seq);
            store.insert(&b, &b.encode().unwrap()).unwrap();
        }
    }
    // What a hub of the first layout left: batches, no aggregates, no marker.
    {
        let db = sled::open(dir.path()).unwrap();
        db.drop_tree("aggregates").unwrap();
        db.drop_tree("meta").unwrap();
        db.flush().unwrap();
    }
    let store = SledStorage::open(dir.path()).unwrap();
    let kept = store.aggregates().unwrap();
    assert_eq!(kept["busan-03"].batches, 5);
    assert_eq!(
        kept,
        sangdam_hub::fleet::aggregate(&store.records().unwrap())
    );
    // Kept up to date from there on.
    let b = batch("busan-03", 6);
    store.insert(&b, &b.encode().unwrap()).unwrap();
    assert_eq!(store.aggregates().unwrap()["busan-03"].batches, 6);
}
