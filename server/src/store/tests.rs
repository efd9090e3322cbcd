//! Object-layer tests without HTTP: durability across reopen, listings, multipart assembly,
//! and injected drive failures that must leave nothing visible.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::checksum::DigestRequest;
use super::drive::{DataReader, DataWriter, Drive, LocalDrive};
use super::record::VersionKind;
use super::*;

/// Stages `data` for key `k`, or as a part of upload `part_of`.
async fn stage(store: &Store, data: &[u8], part_of: Option<&str>) -> Staged {
    let mut w = match part_of {
        Some(upload_id) => store.stage_part("bkt", "k", upload_id, DigestRequest::default()),
        None => store.stage("bkt", "k", DigestRequest::default()),
    };
    for chunk in data.chunks(10_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.finish().await.unwrap()
}

async fn read_all(store: &Store, r: &VersionRecord) -> Vec<u8> {
    let mut rx = store
        .read(
            "bkt",
            "k",
            r,
            ByteRange {
                start: 0,
                end: r.size,
            },
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn data_files(root: &Path) -> usize {
    walk(&root.join("data"))
}

fn walk(p: &Path) -> usize {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn objects_survive_reopen_and_overwrite_frees_old_data() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    {
        let store = Store::open(dir.path(), "us-east-1").unwrap();
        store.create_bucket("bkt", None).unwrap();
        let s = stage(&store, b"small", None).await;
        store
            .put_object(
                "bkt",
                "small",
                NewObject::default(),
                s,
                &WriteCondition::default(),
            )
            .unwrap();
        let s = stage(&store, &big, None).await;
        store
            .put_object(
                "bkt",
                "big",
                NewObject::default(),
                s,
                &WriteCondition::default(),
            )
            .unwrap();
        assert_eq!(
            data_files(dir.path()),
            1,
            "only the big object has a data file"
        );
    }
    let store = Store::open(dir.path(), "us-east-1").unwrap();
    let r = store.head_object("bkt", "big", None).unwrap();
    assert_eq!(read_all(&store, &r).await, big);
    assert_eq!(
        read_all(&store, &store.head_object("bkt", "small", None).unwrap()).await,
        b"small"
    );
    // Overwriting with a small body removes the big body's file.
    let s = stage(&store, b"now small", None).await;
    store
        .put_object(
            "bkt",
            "big",
            NewObject::default(),
            s,
            &WriteCondition::default(),
        )
        .unwrap();
    assert_eq!(data_files(dir.path()), 0);
    store.delete_object("bkt", "small", None, false).unwrap();
    assert!(matches!(
        store.head_object("bkt", "small", None),
        Err(StoreError::NoSuchKey)
    ));
}

#[tokio::test]
async fn listing_rolls_up_prefixes_and_pages_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "us-east-1").unwrap();
    store.create_bucket("bkt", None).unwrap();
    let keys = ["a/1", "a/2", "b", "c/x/y", "c/z", "d\0e", "e"];
    for k in keys {
        let s = stage(&store, k.as_bytes(), None).await;
        store
            .put_object(
                "bkt",
                k,
                NewObject::default(),
                s,
                &WriteCondition::default(),
            )
            .unwrap();
    }
    let q = ListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let page = store.list_objects("bkt", &q).unwrap();
    let names: Vec<&str> = page.entries.iter().map(ListEntry::name).collect();
    assert_eq!(names, ["a/", "b", "c/", "d\0e", "e"]);
    // Page by two, continuing after the last name, as continuation tokens do.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let q = ListQuery {
            delimiter: Some("/".into()),
            max_keys: 2,
            start_after: after.clone(),
            ..Default::default()
        };
        let page = store.list_objects("bkt", &q).unwrap();
        seen.extend(page.entries.iter().map(|e| e.name().to_string()));
        if !page.truncated {
            break;
        }
        after = page.last_name().map(str::to_string);
    }
    assert_eq!(seen, names);
    let q = ListQuery {
        prefix: "c/".into(),
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let names: Vec<String> = store
        .list_objects("bkt", &q)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(names, ["c/x/", "c/z"]);
}

#[tokio::test]
async fn multipart_assembles_parts_in_order_and_drops_unused_parts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "us-east-1").unwrap();
    store.create_bucket("bkt", None).unwrap();
    let up = store
        .create_upload("bkt", "obj", NewObject::default(), None)
        .unwrap();
    let p1 = vec![1u8; multipart::MIN_PART_SIZE as usize];
    let p2 = b"tail".to_vec();
    let unused = b"never completed".to_vec();
    let mut etags = Vec::new();
    for (n, body) in [(1, &p1), (2, &p2), (3, &unused)] {
        let s = stage(&store, body, Some(&up.upload_id)).await;
        etags.push(
            store
                .put_part("bkt", "obj", &up.upload_id, n, s, None)
                .unwrap()
                .etag,
        );
    }
    let small_first = [
        CompletedPart {
            number: 2,
            etag: etags[1].clone(),
            checksum: None,
        },
        CompletedPart {
            number: 3,
            etag: etags[2].clone(),
            checksum: None,
        },
    ];
    assert!(matches!(
        store.complete_upload(
            "bkt",
            "obj",
            &up.upload_id,
            &small_first,
            &WriteCondition::default()
        ),
        Err(StoreError::EntityTooSmall(2))
    ));
    let wrong = [CompletedPart {
        number: 1,
        etag: "00".into(),
        checksum: None,
    }];
    assert!(matches!(
        store.complete_upload(
            "bkt",
            "obj",
            &up.upload_id,
            &wrong,
            &WriteCondition::default()
        ),
        Err(StoreError::InvalidPart(_))
    ));
    let order = [
        CompletedPart {
            number: 2,
            etag: etags[1].clone(),
            checksum: None,
        },
        CompletedPart {
            number: 1,
            etag: etags[0].clone(),
            checksum: None,
        },
    ];
    assert!(matches!(
        store.complete_upload(
            "bkt",
            "obj",
            &up.upload_id,
            &order,
            &WriteCondition::default()
        ),
        Err(StoreError::InvalidPartOrder)
    ));
    let parts = [
        CompletedPart {
            number: 1,
            etag: etags[0].clone(),
            checksum: None,
        },
        CompletedPart {
            number: 2,
            etag: format!("\"{}\"", etags[1]),
            checksum: None,
        },
    ];
    let r = store
        .complete_upload(
            "bkt",
            "obj",
            &up.upload_id,
            &parts,
            &WriteCondition::default(),
        )
        .unwrap();
    assert!(r.etag.ends_with("-2"));
    assert_eq!(
        read_all(&store, &r).await,
        [p1.clone(), p2.clone()].concat()
    );
    assert_eq!(
        data_files(dir.path()),
        2,
        "the unused part's data is removed"
    );
    assert!(matches!(
        store.upload("bkt", "obj", &up.upload_id),
        Err(StoreError::NoSuchUpload)
    ));
    // A range spanning the part boundary.
    let mut rx = store
        .read(
            "bkt",
            "obj",
            &r,
            ByteRange {
                start: p1.len() as u64 - 2,
                end: p1.len() as u64 + 2,
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(c) = rx.recv().await {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(got, [1, 1, b't', b'a']);
}

#[tokio::test]
async fn conditional_writes_check_the_current_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "us-east-1").unwrap();
    store.create_bucket("bkt", None).unwrap();
    let none_match = WriteCondition {
        if_none_match_any: true,
        if_match: None,
    };
    let s = stage(&store, b"one", None).await;
    let first = store
        .put_object("bkt", "k", NewObject::default(), s, &none_match)
        .unwrap();
    let s = stage(&store, b"two", None).await;
    assert!(matches!(
        store.put_object("bkt", "k", NewObject::default(), s, &none_match),
        Err(StoreError::PreconditionFailed)
    ));
    let wrong = WriteCondition {
        if_none_match_any: false,
        if_match: Some("\"0000\"".into()),
    };
    let s = stage(&store, b"two", None).await;
    assert!(matches!(
        store.put_object("bkt", "k", NewObject::default(), s, &wrong),
        Err(StoreError::PreconditionFailed)
    ));
    let right = WriteCondition {
        if_none_match_any: false,
        if_match: Some(format!("\"{}\"", first.etag)),
    };
    let s = stage(&store, b"two", None).await;
    store
        .put_object("bkt", "k", NewObject::default(), s, &right)
        .unwrap();
    let s = stage(&store, b"x", None).await;
    let missing = WriteCondition {
        if_none_match_any: false,
        if_match: Some("*".into()),
    };
    assert!(matches!(
        store.put_object("bkt", "nokey", NewObject::default(), s, &missing),
        Err(StoreError::NoSuchKey)
    ));
}

#[tokio::test]
async fn versioned_bucket_keeps_versions_and_delete_markers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "us-east-1").unwrap();
    store.create_bucket("bkt", None).unwrap();
    store
        .set_versioning("bkt", record::Versioning::Enabled)
        .unwrap();
    let s = stage(&store, b"v1", None).await;
    let v1 = store
        .put_object(
            "bkt",
            "k",
            NewObject::default(),
            s,
            &WriteCondition::default(),
        )
        .unwrap();
    let s = stage(&store, b"v2", None).await;
    store
        .put_object(
            "bkt",
            "k",
            NewObject::default(),
            s,
            &WriteCondition::default(),
        )
        .unwrap();
    let del = store.delete_object("bkt", "k", None, false).unwrap();
    assert!(del.delete_marker);
    assert!(matches!(
        store.head_object("bkt", "k", None),
        Err(StoreError::DeleteMarker(_, _))
    ));
    let old = store
        .head_object("bkt", "k", v1.version_id.as_deref())
        .unwrap();
    assert_eq!(read_all(&store, &old).await, b"v1");
    assert_eq!(old.kind, VersionKind::Object);
    let q = ListQuery {
        max_keys: 10,
        ..Default::default()
    };
    assert!(
        store.list_objects("bkt", &q).unwrap().entries.is_empty(),
        "a delete marker hides the key from listings"
    );
}

/// A drive whose data-file commits fail while `fail` is set, and whose next data file, once
/// its gate is armed, is only created after the test met it there and let it go.
struct FlakyDrive {
    inner: LocalDrive,
    fail: AtomicBool,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    /// Told when the creator arrives; it goes on once the test sends (or drops) `go`.
    arrived: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    go: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// The test's side of a [`Gate`]: when the creator arrived, and letting it go.
struct GateKeeper {
    arrived: std::sync::mpsc::Receiver<()>,
    go: std::sync::mpsc::Sender<()>,
}

impl Gate {
    fn new() -> (Arc<Gate>, GateKeeper) {
        let (arrived_tx, arrived) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel();
        let gate = Gate {
            armed: AtomicBool::new(false),
            arrived: std::sync::Mutex::new(Some(arrived_tx)),
            go: std::sync::Mutex::new(Some(go_rx)),
        };
        (Arc::new(gate), GateKeeper { arrived, go })
    }

    fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            if let Some(tx) = self.arrived.lock().unwrap().take() {
                let _ = tx.send(());
            }
            if let Some(rx) = self.go.lock().unwrap().take() {
                let _ = rx.recv();
            }
        }
    }
}

struct FlakyWriter {
    inner: Box<dyn DataWriter>,
    fail: bool,
}

impl Write for FlakyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DataWriter for FlakyWriter {
    fn commit(self: Box<Self>) -> io::Result<()> {
        if self.fail {
            return Err(io::Error::other("injected: disk full"));
        }
        self.inner.commit()
    }
}

impl Drive for FlakyDrive {
    fn root(&self) -> &Path {
        self.inner.root()
    }
    fn create(&self, id: &str) -> io::Result<Box<dyn DataWriter>> {
        self.gate.pass();
        Ok(Box::new(FlakyWriter {
            inner: self.inner.create(id)?,
            fail: self.fail.load(Ordering::SeqCst),
        }))
    }
    fn open_at(&self, id: &str, offset: u64) -> io::Result<Box<dyn DataReader>> {
        self.inner.open_at(id, offset)
    }
    fn size(&self, id: &str) -> io::Result<u64> {
        self.inner.size(id)
    }
    fn remove(&self, id: &str) -> io::Result<()> {
        self.inner.remove(id)
    }
    fn clear_tmp(&self) -> io::Result<()> {
        self.inner.clear_tmp()
    }
}

#[tokio::test]
async fn a_failing_drive_leaves_no_object_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalDrive::open(dir.path()).unwrap();
    let meta = local.meta_path();
    let drive = Arc::new(FlakyDrive {
        inner: local,
        fail: AtomicBool::new(true),
        gate: Arc::default(),
    });
    let store = Store::open_with(drive.clone(), &meta, "us-east-1").unwrap();
    store.create_bucket("bkt", None).unwrap();
    let mut w = store.stage("bkt", "k", DigestRequest::default());
    w.write(Bytes::from(vec![7u8; 500_000])).await.unwrap();
    let err = w.finish().await.err().expect("the commit fails");
    assert!(matches!(err, StoreError::Io(_)), "{err}");
    assert!(matches!(
        store.head_object("bkt", "k", None),
        Err(StoreError::NoSuchKey)
    ));
    assert_eq!(data_files(dir.path()), 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    // A staged body that is never committed is removed once dropped (off the executor: the
    // removal is handed to a blocking thread).
    drive.fail.store(false, Ordering::SeqCst);
    let staged = stage(&store, &vec![1u8; 500_000], None).await;
    assert_eq!(data_files(dir.path()), 1);
    drop(staged);
    let start = std::time::Instant::now();
    while data_files(dir.path()) != 0 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(data_files(dir.path()), 0);
}

#[tokio::test]
async fn upload_listing_resumes_inside_a_key_after_an_upload_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "us-east-1").unwrap();
    store.create_bucket("bkt", None).unwrap();
    let mut ids: Vec<String> = (0..3)
        .map(|_| {
            store
                .create_upload("bkt", "same", NewObject::default(), None)
                .unwrap()
                .upload_id
        })
        .collect();
    ids.sort();
    store
        .create_upload("bkt", "later", NewObject::default(), None)
        .unwrap();
    let all = ListQuery {
        max_keys: 1000,
        ..Default::default()
    };
    assert_eq!(
        store.list_uploads("bkt", &all, None).unwrap().entries.len(),
        4
    );
    // Resume after the first upload of "same": its other two uploads, then nothing of "later"
    // (which sorts before "same").
    let q = ListQuery {
        start_after: Some("same".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let page = store.list_uploads("bkt", &q, Some(&ids[0])).unwrap();
    let got: Vec<String> = page
        .entries
        .iter()
        .map(|e| match e {
            ListEntry::Item(_, u) => u.upload_id.clone(),
            ListEntry::CommonPrefix(p) => p.clone(),
        })
        .collect();
    assert_eq!(got, ids[1..]);
}

/// Rewrites every record of the RocksDB under `meta` as a release before stamps stored it:
/// the bare record (a tombstone: nothing).
fn unseal_records(meta: &Path) {
    let db = rocksdb::DB::open_default(meta).unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = db
        .iterator(rocksdb::IteratorMode::Start)
        .map(|r| r.unwrap())
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    assert!(!all.is_empty());
    for (k, v) in all {
        let opened = stamp::open(&v);
        assert!(!opened.is_legacy(), "this release seals every record");
        match opened.payload {
            Some(p) => db.put(&k, p).unwrap(),
            None => db.delete(&k).unwrap(),
        }
    }
}

async fn put_bytes(store: &Store, key: &str, data: &[u8]) {
    // Shards are placed by the object's key: staged under it.
    let mut w = store.stage("bkt", key, DigestRequest::default());
    for chunk in data.chunks(10_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let s = w.finish().await.unwrap();
    store
        .put_object(
            "bkt",
            key,
            NewObject::default(),
            s,
            &WriteCondition::default(),
        )
        .unwrap();
}

async fn read_key(store: &Store, key: &str) -> Vec<u8> {
    let r = store.head_object("bkt", key, None).unwrap();
    let mut rx = store
        .read(
            "bkt",
            key,
            &r,
            ByteRange {
                start: 0,
                end: r.size,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test]
async fn drives_written_before_stamped_records_open_read_and_upgrade_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for drives in [1usize, 4] {
        let roots: Vec<std::path::PathBuf> = (0..drives)
            .map(|i| dir.path().join(format!("{drives}-{i}")))
            .collect();
        let roots: Vec<&Path> = roots.iter().map(|p| p.as_path()).collect();
        {
            let (store, _) = Store::open_drives(&roots, None, "us-east-1").unwrap();
            store.create_bucket("bkt", None).unwrap();
            put_bytes(&store, "small", b"small").await;
            put_bytes(&store, "big", &big).await;
        }
        for root in &roots {
            unseal_records(&root.join("meta"));
        }
        let (store, _) = Store::open_drives(&roots, None, "us-east-1").unwrap();
        assert_eq!(
            store
                .list_buckets()
                .unwrap()
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            vec!["bkt"],
            "{drives} drives"
        );
        assert_eq!(read_key(&store, "small").await, b"small");
        assert_eq!(read_key(&store, "big").await, big);
        // The next write replaces the old record with a stamped one; the old one goes.
        put_bytes(&store, "big", b"replaced").await;
        assert_eq!(read_key(&store, "big").await, b"replaced");
        store.delete_object("bkt", "small", None, false).unwrap();
        assert!(matches!(
            store.head_object("bkt", "small", None),
            Err(StoreError::NoSuchKey)
        ));
        let db = store.sets()[0].slots[0]
            .as_ref()
            .unwrap()
            .local_db()
            .unwrap();
        let versions: Vec<Vec<u8>> = db
            .prefix_iterator(keys::bucket_prefix(keys::VERSION, "bkt"))
            .map(|r| r.unwrap().1.to_vec())
            .filter(|v| stamp::open(v).payload.is_some())
            .collect();
        assert_eq!(versions.len(), 1, "{drives} drives: one live version");
        assert!(!stamp::open(&versions[0]).is_legacy());
    }
}

/// Finding 10 of issue 15: a PUT racing DeleteBucket. Either the PUT wins (the bucket is not
/// empty and stays) or the delete does (the PUT fails and leaves nothing): never both, and never
/// an object left, invisible, under a deleted bucket to reappear when the name is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_racing_delete_bucket_never_leaves_an_object_in_a_deleted_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), "us-east-1").unwrap());
    let (mut both, mut put_won, mut delete_won) = (0, 0, 0);
    for round in 0..300 {
        let bucket = format!("race{}", round % 3);
        store.create_bucket(&bucket, None).unwrap();
        let mut w = store.stage(&bucket, "k", DigestRequest::default());
        w.write(Bytes::from_static(b"racing")).await.unwrap();
        let staged = w.finish().await.unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let put = {
            let (store, bucket, barrier) = (store.clone(), bucket.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.put_object(
                    &bucket,
                    "k",
                    NewObject::default(),
                    staged,
                    &WriteCondition::default(),
                )
            })
        };
        let delete = {
            let (store, bucket, barrier) = (store.clone(), bucket.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Give the PUT a head start of a varying few microseconds.
                std::thread::sleep(Duration::from_micros((round % 7) * 40));
                store.delete_bucket(&bucket)
            })
        };
        let (put, delete) = (put.join().unwrap(), delete.join().unwrap());
        match (&put, &delete) {
            (Ok(_), Ok(())) => both += 1,
            (Ok(_), Err(StoreError::BucketNotEmpty)) => {
                put_won += 1;
                assert!(store.head_object(&bucket, "k", None).is_ok());
                store.delete_object(&bucket, "k", None, false).unwrap();
                store.delete_bucket(&bucket).unwrap();
            }
            (Err(StoreError::NoSuchBucket), Ok(())) => delete_won += 1,
            other => panic!("round {round}: unexpected outcome {other:?}"),
        }
        // The name is free again, and a bucket made under it starts empty.
        store.create_bucket(&bucket, None).unwrap();
        assert!(
            matches!(
                store.head_object(&bucket, "k", None),
                Err(StoreError::NoSuchKey)
            ),
            "round {round}: an object came back in a new bucket of the same name"
        );
        store.delete_bucket(&bucket).unwrap();
    }
    assert_eq!(
        both, 0,
        "PUT and DeleteBucket both acknowledged ({put_won} PUT won, {delete_won} delete won)"
    );
    assert!(
        put_won > 0 && delete_won > 0,
        "both orders were tried: {put_won} / {delete_won}"
    );
}

/// Stages `data` for `bucket/key` in set `set` of `store`, wherever placement would put it.
async fn stage_in(store: &Store, set: usize, bucket: &str, key: &str, data: &[u8]) -> Staged {
    let set = store.sets()[set].clone();
    let order = Store::order(&set, bucket, key);
    let mut w = StagingWriter::new(set, order, DigestRequest::default(), DEFAULT_INLINE_LIMIT);
    w.write(Bytes::copy_from_slice(data)).await.unwrap();
    w.finish().await.unwrap()
}

/// Finding 5 of issue 15: with several pools, a new version committed in one pool while the
/// null version it replaces sits in another pool that cannot be written (two of its four drives
/// away: readable, not writable). The commit stands, so the PUT is acknowledged and its data
/// stays; the old null version is only left behind, older and hidden.
#[tokio::test]
async fn a_commit_whose_cleanup_in_another_pool_fails_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let roots: Vec<std::path::PathBuf> = (0..5).map(|i| dir.path().join(format!("d{i}"))).collect();
    let old = vec![1u8; 300_000];
    let new = vec![2u8; 300_000];
    let pool1 = || {
        let (set, _) = DriveSet::open_local(&[roots[4].as_path()], None).unwrap();
        Arc::new(set)
    };
    {
        let four: Vec<&Path> = roots[..4].iter().map(|p| p.as_path()).collect();
        let (set, _) = DriveSet::open_local(&four, Some(2)).unwrap();
        let store = Store::assemble(vec![vec![Arc::new(set)], vec![pool1()]], None, "us-east-1");
        store.create_bucket("bkt", None).unwrap();
        let staged = stage_in(&store, 0, "bkt", "k", &old).await;
        let cond = WriteCondition::default();
        store
            .put_object("bkt", "k", NewObject::default(), staged, &cond)
            .unwrap();
    }
    // Pool 0 again with drives 2 and 3 away: a read quorum (2 of 4), no write quorum (3).
    let (full, _) = {
        let four: Vec<&Path> = roots[..4].iter().map(|p| p.as_path()).collect();
        DriveSet::open_local(&four, Some(2)).unwrap()
    };
    let (geometry, codec) = (full.geometry, full.codec);
    drop(full);
    let slots = (0..4)
        .map(|i| {
            (i < 2).then(|| {
                let drive = LocalDrive::open(&roots[i]).unwrap();
                let meta = drive.meta_path();
                set::Slot::open(Arc::new(drive), &meta).unwrap()
            })
        })
        .collect();
    let pool0 = Arc::new(DriveSet::assemble(slots, geometry, codec));
    let store = Store::assemble(vec![vec![pool0], vec![pool1()]], None, "us-east-1");
    let staged = stage_in(&store, 1, "bkt", "k", &new).await;
    let put = store.put_object(
        "bkt",
        "k",
        NewObject::default(),
        staged,
        &WriteCondition::default(),
    );
    let record = put.expect("the new version is committed in pool 1");
    let head = store.head_object("bkt", "k", None).unwrap();
    assert_eq!(head.etag, record.etag);
    assert_eq!(
        read_all(&store, &head).await,
        new,
        "the acknowledged object reads back"
    );
}

/// Finding 12 of issue 15: a GET that reads around a flipped byte heals the shard afterwards;
/// when the object is deleted while the heal runs, the healed shard must not stay behind as a
/// file no record names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_healing_an_object_deleted_meanwhile_leaves_no_shard_behind() {
    let dir = tempfile::tempdir().unwrap();
    let roots: Vec<std::path::PathBuf> = (0..4).map(|i| dir.path().join(format!("d{i}"))).collect();
    {
        let four: Vec<&Path> = roots.iter().map(|p| p.as_path()).collect();
        DriveSet::open_local(&four, Some(2)).unwrap(); // formats the drives
    }
    let (gate, keeper) = Gate::new();
    let slots = roots
        .iter()
        .map(|root| {
            let inner = LocalDrive::open(root).unwrap();
            let meta = inner.meta_path();
            let drive = FlakyDrive {
                inner,
                fail: AtomicBool::new(false),
                gate: gate.clone(),
            };
            Some(set::Slot::open(Arc::new(drive), &meta).unwrap())
        })
        .collect();
    let geometry = erasure::ErasureGeometry::new(2, 2).unwrap();
    let codec = erasure::ErasureCodec::with_default_block_size(geometry).unwrap();
    let set = DriveSet::assemble(slots, geometry, Some(codec));
    let store = Store::assemble(vec![vec![Arc::new(set)]], None, "us-east-1");
    store.create_bucket("bkt", None).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let staged = stage(&store, &data, None).await;
    let cond = WriteCondition::default();
    let record = store
        .put_object("bkt", "k", NewObject::default(), staged, &cond)
        .unwrap();
    // Flip a byte in the middle of the first data shard (reads use the data shards).
    let data_id = record.data_ids()[0].clone();
    let first = Store::order(store.drive_set(), "bkt", "k")[0];
    let shard = LocalDrive::open(&roots[first]).unwrap().data_path(&data_id);
    let mut bytes = std::fs::read(&shard).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&shard, &bytes).unwrap();

    // The read serves the body around the flipped byte, then heals: the heal is held where it
    // creates the new shard file while the object is deleted.
    gate.armed.store(true, Ordering::SeqCst);
    let mut rx = store
        .read(
            "bkt",
            "k",
            &record,
            ByteRange {
                start: 0,
                end: record.size,
            },
        )
        .await
        .unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = rx.recv().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, data, "the read was served around the flipped byte");
    tokio::task::block_in_place(|| {
        let arrived = keeper.arrived.recv_timeout(Duration::from_secs(60));
        arrived.expect("the read heals the flipped shard");
        store.delete_object("bkt", "k", None, false).unwrap();
        keeper.go.send(()).unwrap();
    });
    // The heal ends in milliseconds once let go; give it ample time, then nothing may remain.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        roots.iter().map(|r| data_files(r)).sum::<usize>(),
        0,
        "a shard file outlived its deleted object"
    );
}
