//! The load bench on a small scale: every batch acknowledged and stored once, every
//! duplicate answered 409.

use sangdam_hub::bench::{run, sample_report, BenchConfig};

#[test]
fn small_bench_on_postgres_checks_pass_and_leaves_the_database_empty() {
    let pg = crate::pgserver::PgServer::start();
    let url = pg.new_database();
    let config = BenchConfig {
        boxes: 24,
        batches_per_box: 3,
        client_threads: 4,
        hub_threads: 8,
        duplicate_every: 5,
        data_parent: None,
        database: Some(url.clone()),
    };
    let report = run(&config).unwrap();
    let table = report.table();
    eprintln!("{table}");
    assert!(report.problems.is_empty(), "{table}");
    assert_eq!(
        (report.backend, report.accepted, report.stored),
        ("postgres", 72, 72)
    );
    assert_eq!(report.duplicates_409, report.duplicates_sent);
    let pg_store = sangdam_hub::PgStorage::open(&url, 1).unwrap();
    assert_eq!(sangdam_hub::Storage::count(&pg_store).unwrap(), 0);
    // A database holding batches is refused (the bench is for scratch databases).
    let b = crate::common::batch("busan-03", 1);
    sangdam_hub::Storage::insert(&pg_store, &b, &b.encode().unwrap()).unwrap();
    let e = run(&config).unwrap_err().to_string();
    assert!(e.contains("empty scratch database"), "{e}");
}

#[test]
fn small_bench_checks_pass() {
    let report = run(&BenchConfig {
        boxes: 24,
        batches_per_box: 3,
        client_threads: 4,
        hub_threads: 8,
        duplicate_every: 5,
        data_parent: None,
        database: None,
    })
    .unwrap();
    let table = report.table();
    eprintln!("{table}");
    assert!(report.problems.is_empty(), "{table}");
    assert_eq!(report.batches, 72);
    assert_eq!(report.accepted, 72);
    assert_eq!(report.stored, 72);
    assert_eq!(
        report.duplicates_sent, 12,
        "4 threads × 18 uploads, one duplicate per 5: {table}"
    );
    assert_eq!(report.duplicates_409, report.duplicates_sent);
    assert!(
        report.flushes >= 1 && report.flushes <= 72 + report.duplicates_sent,
        "{table}"
    );
    assert!(table.contains("| 24 | 72 |"), "{table}");
}

#[test]
fn sample_reports_look_like_a_day() {
    let r = sample_report(7);
    assert_eq!(r.complaints.len() + r.praise.len(), 10);
    assert_eq!(r.drivers.len(), 5);
    assert_eq!(r.recommendations.len(), 3);
    assert!(r
        .recommendations
        .iter()
        .all(|x| x.text.chars().any(|c| ('가'..='힣').contains(&c))));
    let c = &r.counters;
    assert!(c.positive_calls + c.negative_calls + c.neutral_calls <= c.calls);
    assert_eq!(
        r.sentiment_histogram
            .iter()
            .map(|&n| u64::from(n))
            .sum::<u64>(),
        c.calls
    );
}
