//! Listing micro-benchmark: the time of ONE page of 1000 entries (ListObjectsV2 semantics,
//! `Store::list_objects`) near the start, in the middle and near the end of a large bucket,
//! without and with a delimiter. A page is one seek plus 1000 steps of the merged iterator
//! (with a delimiter, one seek per common prefix), so its cost should not depend on where it
//! starts or on the bucket's size.
//!
//! `cargo bench -p coffer-server --bench listing -- --measurement-time 3 --warm-up-time 1`
//!
//! The bucket holds 1 000 000 empty objects (written once through the public store API,
//! `Store::stage` + `Store::put_object`, one drive, 32 writer threads: about a minute on 2
//! cores); `COFFER_BENCH_OBJECTS=N` sets another count (at least 30 000). Keys are `DDDDDD/NNNNNNN`,
//! 10 keys per "folder", so a delimiter listing of `/` yields one common prefix per 10 keys.

use std::time::Instant;

use coffer_server::store::checksum::DigestRequest;
use coffer_server::store::{ListQuery, NewObject, Store, WriteCondition};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

const BUCKET: &str = "listing-bench";
const PAGE: usize = 1000;
const PER_FOLDER: usize = 10;

fn object_count() -> usize {
    std::env::var("COFFER_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn key(i: usize) -> String {
    format!("{:06}/{:07}", i / PER_FOLDER, i)
}

fn folder(i: usize) -> String {
    format!("{:06}/", i / PER_FOLDER)
}

/// Writers in parallel while populating: every put is a synced RocksDB write, and concurrent
/// writers share one WAL sync (group commit), as concurrent PUTs do in the server.
const WRITERS: usize = 32;

/// Writes `n` empty objects through the public API (`Store::stage`, `Store::put_object`).
fn populate(store: &Store, n: usize) {
    store.create_bucket(BUCKET, None).expect("create bucket");
    let start = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            scope.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("tokio runtime");
                for i in (w..n).step_by(WRITERS) {
                    let k = key(i);
                    let staged = rt
                        .block_on(store.stage(BUCKET, &k, DigestRequest::default()).finish())
                        .expect("stage");
                    store
                        .put_object(
                            BUCKET,
                            &k,
                            NewObject::default(),
                            staged,
                            &WriteCondition::default(),
                        )
                        .expect("put");
                    if w == 0 && i % 100_000 < WRITERS {
                        eprintln!("  ~{i} objects written in {:.1?}", start.elapsed());
                    }
                }
            });
        }
    });
    eprintln!(
        "listing bench: {n} objects written in {:.1?} ({:.0} objects/s, {WRITERS} writers)",
        start.elapsed(),
        n as f64 / start.elapsed().as_secs_f64()
    );
}

fn listing(c: &mut Criterion) {
    let n = object_count();
    assert!(n >= 3 * PAGE * PER_FOLDER, "at least 30 000 objects");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), "us-east-1").expect("open store");
    populate(&store, n);

    // Where each page starts: after the first key, in the middle, and one page before the end
    // (so every page is a full 1000 entries).
    let positions = [("start", 0), ("middle", n / 2), ("end", n - PAGE - 1)];
    let mut group = c.benchmark_group(format!("list_page_1000_of_{n}"));
    group.sample_size(30);
    for (name, at) in positions {
        let query = ListQuery {
            prefix: String::new(),
            delimiter: None,
            start_after: Some(key(at)),
            max_keys: PAGE,
        };
        let page = store.list_objects(BUCKET, &query).expect("list");
        assert_eq!(page.entries.len(), PAGE);
        assert_eq!(page.entries[0].name(), key(at + 1));
        group.bench_function(BenchmarkId::new("keys", name), |b| {
            b.iter(|| black_box(store.list_objects(BUCKET, black_box(&query)).unwrap()))
        });
    }
    // With delimiter `/`: 1000 common prefixes per page (each one skipped with a seek).
    let folders = n / PER_FOLDER;
    let folder_positions = [
        ("start", 0),
        ("middle", folders / 2 * PER_FOLDER),
        ("end", (folders - PAGE - 1) * PER_FOLDER),
    ];
    for (name, at) in folder_positions {
        let query = ListQuery {
            prefix: String::new(),
            delimiter: Some("/".into()),
            start_after: Some(folder(at)),
            max_keys: PAGE,
        };
        let page = store.list_objects(BUCKET, &query).expect("list");
        assert_eq!(page.entries.len(), PAGE);
        assert_eq!(page.entries[0].name(), folder(at + PER_FOLDER));
        group.bench_function(BenchmarkId::new("delimiter", name), |b| {
            b.iter(|| black_box(store.list_objects(BUCKET, black_box(&query)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, listing);
criterion_main!(benches);
