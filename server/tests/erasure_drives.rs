//! One server erasure-coding over several drive folders, seen from outside: objects of every
//! layout (inline, multi-block files, multipart) read back byte-identical, in full and by
//! range; losing up to M drives or corrupting up to M shards loses nothing; drives that come
//! back empty are healed with real shards; foreign or misplaced drives and impossible
//! geometries are refused at start; concurrent writers do not trip over each other.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{all_keys, get_bytes, pattern, put_bytes, TestServer};

const B: &str = "erasure";
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Size of each multipart part: not a multiple of the 1 MiB block, so part boundaries and
/// block boundaries do not line up.
const PART: usize = 5 * MIB + KIB;

/// Every shard file under `data/` of a drive, as paths relative to the drive folder.
fn shard_files(drive: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(dirs) = std::fs::read_dir(drive.join("data")) else {
        return out;
    };
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            out.insert(
                f.path()
                    .strip_prefix(drive)
                    .expect("under the drive")
                    .to_path_buf(),
            );
        }
    }
    out
}

/// Flips one byte at `offset` of `file`, in place.
fn flip_byte(file: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut b = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x5A;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}

/// Corrupts a shard file in its first block (inside the shard bytes, after the 32-byte hash)
/// and in its last block.
fn corrupt_shard(file: &Path) {
    let len = std::fs::metadata(file).unwrap().len();
    assert!(
        len > 64,
        "{} is too short to be a shard file",
        file.display()
    );
    flip_byte(file, 40);
    flip_byte(file, len - 3);
}

/// Moves a drive folder out of the way (as if the disk was replaced by an empty one).
fn remove_drive(server: &TestServer, drive: usize) {
    let from = &server.drives()[drive];
    let to = (0..)
        .map(|n| server.dir().join(format!("gone-{drive}-{n}")))
        .find(|p| !p.exists())
        .expect("a free name");
    std::fs::rename(from, &to).expect("the drive folder can be moved away");
}

async fn get_range(client: &aws_sdk_s3::Client, key: &str, range: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(B)
        .key(key)
        .range(range)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key} {range}: {e:?}"));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {key} {range}: body: {e:?}"))
        .into_bytes()
        .to_vec()
}

/// Asserts every object reads back byte-identical.
async fn assert_all_read_back(client: &aws_sdk_s3::Client, expected: &BTreeMap<String, Vec<u8>>) {
    for (key, data) in expected {
        let got = get_bytes(client, B, key).await;
        assert!(
            got == *data,
            "{key}: read {} bytes that differ from the {} written",
            got.len(),
            data.len()
        );
    }
}

async fn multipart(client: &aws_sdk_s3::Client, key: &str, parts: &[&[u8]]) {
    let id = client
        .create_multipart_upload()
        .bucket(B)
        .key(key)
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id
        .unwrap();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let etag = client
            .upload_part()
            .bucket(B)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(p.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"))
            .e_tag
            .unwrap();
        done.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    client
        .complete_multipart_upload()
        .bucket(B)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
}

/// Puts one object of each layout and returns what each key holds.
async fn put_every_layout(client: &aws_sdk_s3::Client) -> BTreeMap<String, Vec<u8>> {
    let mut expected = BTreeMap::new();
    expected.insert("empty".to_string(), Vec::new());
    expected.insert("inline/1k".to_string(), pattern(KIB, 1));
    expected.insert("inline/100k".to_string(), pattern(100 * KIB, 2));
    expected.insert("file/3m17".to_string(), pattern(3 * MIB + 17, 3));
    for (k, v) in &expected {
        put_bytes(client, B, k, v.clone()).await;
    }
    let p1 = pattern(PART, 4);
    let p2 = pattern(PART, 5);
    multipart(client, "multipart", &[&p1, &p2]).await;
    expected.insert("multipart".to_string(), [p1, p2].concat());
    expected
}

/// Waits until the server logs that it healed the drives that came back empty, and until
/// each of them holds as many shard files as a drive that never went away.
async fn wait_for_heal(server: &TestServer, healed: &[usize], healthy: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = server.log();
        assert!(
            !log.contains("healing empty drives failed"),
            "healing failed; log:\n{log}"
        );
        let want = shard_files(&server.drives()[healthy]);
        let counts: Vec<usize> = healed
            .iter()
            .map(|&d| shard_files(&server.drives()[d]).len())
            .collect();
        let done = log.contains("healed empty drives") && counts.iter().all(|&c| c == want.len());
        if done {
            for &d in healed {
                assert_eq!(
                    shard_files(&server.drives()[d]),
                    want,
                    "healed drive {d} holds the same shard files as drive {healthy}"
                );
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "drives {healed:?} were not healed in time: they hold {counts:?} shard files, drive {healthy} holds {}",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_layout_reads_back_in_full_and_by_range() {
    let server = TestServer::start_drives(4, &[]);
    let client = server.bucket(B).await;
    let expected = put_every_layout(&client).await;
    assert_all_read_back(&client, &expected).await;

    let mut listed = all_keys(&client, B).await;
    listed.sort();
    assert_eq!(listed, expected.keys().cloned().collect::<Vec<_>>());

    let file = &expected["file/3m17"];
    let multi = &expected["multipart"];
    let inline = &expected["inline/100k"];
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        // Across the first 1 MiB block boundary of a file.
        (
            "file/3m17",
            format!("bytes={}-{}", MIB - 10, MIB + 9),
            file[MIB - 10..MIB + 10].to_vec(),
        ),
        // The short last block.
        (
            "file/3m17",
            format!("bytes={}-", 3 * MIB - 5),
            file[3 * MIB - 5..].to_vec(),
        ),
        (
            "file/3m17",
            "bytes=-17".into(),
            file[file.len() - 17..].to_vec(),
        ),
        // Across the part boundary of the multipart object.
        (
            "multipart",
            format!("bytes={}-{}", PART - 100, PART + 99),
            multi[PART - 100..PART + 100].to_vec(),
        ),
        // Across a block boundary of the second part (which starts mid-block of the object).
        (
            "multipart",
            format!("bytes={}-{}", PART + MIB - 3, PART + MIB + 2),
            multi[PART + MIB - 3..PART + MIB + 3].to_vec(),
        ),
        // Everything but the first byte: both parts, every block.
        ("multipart", "bytes=1-".into(), multi[1..].to_vec()),
        (
            "inline/100k",
            "bytes=50000-50099".into(),
            inline[50000..50100].to_vec(),
        ),
    ];
    for (key, range, want) in cases {
        let got = get_range(&client, key, &range).await;
        assert!(
            got == want,
            "{key} {range}: got {} bytes that differ from the {} expected",
            got.len(),
            want.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_that_come_back_empty_are_healed_with_real_shards() {
    let mut server = TestServer::start_drives(4, &[]);
    let client = server.bucket(B).await;
    let expected = put_every_layout(&client).await;
    let files_before = shard_files(&server.drives()[2]);
    assert!(
        files_before.len() >= 3,
        "the file and the two parts have shard files: {files_before:?}"
    );

    // Two disks die and are replaced by empty ones.
    server.kill9();
    remove_drive(&server, 0);
    remove_drive(&server, 1);
    server.start_again();
    let client = server.client();
    assert_all_read_back(&client, &expected).await;
    wait_for_heal(&server, &[0, 1], 2).await;
    assert_all_read_back(&client, &expected).await;

    // Now the two other disks die: only the healed drives hold the data.
    server.kill9();
    remove_drive(&server, 2);
    remove_drive(&server, 3);
    server.start_again();
    let client = server.client();
    assert_all_read_back(&client, &expected).await;
    let mut listed = all_keys(&client, B).await;
    listed.sort();
    assert_eq!(listed, expected.keys().cloned().collect::<Vec<_>>());
    wait_for_heal(&server, &[2, 3], 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_while_drives_heal_neither_fail_nor_stop_the_heal() {
    // Users keep reading while replaced drives heal; every read of an object with missing
    // shards also heals them. Neither may break the other.
    let mut server = TestServer::start_drives(4, &[]);
    let client = server.bucket(B).await;
    let mut expected = BTreeMap::new();
    for i in 0..6u8 {
        expected.insert(format!("big/{i}"), pattern(4 * MIB + 100, 60 + i));
    }
    for (k, v) in &expected {
        put_bytes(&client, B, k, v.clone()).await;
    }
    server.kill9();
    remove_drive(&server, 0);
    remove_drive(&server, 1);
    server.start_again();
    let client = server.client();
    let mut readers = Vec::new();
    for round in 0..3 {
        for (k, v) in &expected {
            let (client, k, v) = (client.clone(), k.clone(), v.clone());
            readers.push(tokio::spawn(async move {
                let got = get_bytes(&client, B, &k).await;
                assert!(got == v, "{k} (reader {round}) read back different bytes");
            }));
        }
    }
    for r in readers {
        r.await.expect("a reader does not panic");
    }
    wait_for_heal(&server, &[0, 1], 2).await;
    // The healed shards are sound: without the two drives that never went away, every
    // object still reads back.
    server.kill9();
    remove_drive(&server, 2);
    remove_drive(&server, 3);
    server.start_again();
    assert_all_read_back(&server.client(), &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrot_on_up_to_parity_drives_is_read_around() {
    let server = TestServer::start_drives(4, &[]);
    let client = server.bucket(B).await;
    // One object per corruption pattern: every single drive and every pair of drives, so
    // that data shards (not only parity shards) are hit whatever the placement.
    let mut patterns: Vec<Vec<usize>> = (0..4).map(|d| vec![d]).collect();
    for a in 0..4 {
        for b in a + 1..4 {
            patterns.push(vec![a, b]);
        }
    }
    let mut objects = Vec::new();
    for (i, drives) in patterns.iter().enumerate() {
        let key = format!("rot/{i}");
        let data = pattern(2 * MIB + 333, 40 + i as u8);
        let before = shard_files(&server.drives()[0]);
        put_bytes(&client, B, &key, data.clone()).await;
        let new: Vec<PathBuf> = shard_files(&server.drives()[0])
            .difference(&before)
            .cloned()
            .collect();
        assert_eq!(new.len(), 1, "{key} has one shard file per drive: {new:?}");
        objects.push((key, data, drives.clone(), new[0].clone()));
    }
    for (_, _, drives, file) in &objects {
        for &d in drives {
            corrupt_shard(&server.drives()[d].join(file));
        }
    }
    for (key, data, drives, _) in &objects {
        let got = get_bytes(&client, B, key).await;
        assert!(
            got == *data,
            "{key} with corrupt shards on drives {drives:?}: read {} bytes that differ",
            got.len()
        );
        let range = format!("bytes={}-{}", MIB - 5, MIB + 4);
        let got = get_range(&client, key, &range).await;
        assert!(
            got == data[MIB - 5..MIB + 5],
            "{key} {range} with corrupt shards on drives {drives:?}"
        );
    }

    // Beyond parity the object cannot be read, and the server must say so rather than
    // return wrong bytes.
    let data = pattern(2 * MIB, 99);
    let before = shard_files(&server.drives()[0]);
    put_bytes(&client, B, "rot/too-much", data.clone()).await;
    let file = shard_files(&server.drives()[0])
        .difference(&before)
        .next()
        .cloned()
        .expect("a new shard file");
    for d in 0..3 {
        corrupt_shard(&server.drives()[d].join(&file));
    }
    match client
        .get_object()
        .bucket(B)
        .key("rot/too-much")
        .send()
        .await
    {
        Err(_) => {}
        Ok(out) => {
            if let Ok(body) = out.body.collect().await {
                let body = body.into_bytes();
                panic!(
                    "a GET with 3 of 4 shards corrupt completed with {} bytes ({})",
                    body.len(),
                    if body[..] == data[..] {
                        "identical?!"
                    } else {
                        "wrong bytes"
                    }
                );
            }
        }
    }
}

/// Starts a 4-drive server, writes one object, and stops it (kill -9).
async fn formatted_set() -> TestServer {
    let mut server = TestServer::start_drives(4, &[]);
    let client = server.bucket(B).await;
    put_bytes(&client, B, "k", b"v".to_vec()).await;
    server.kill9();
    server
}

/// Replaces drive `d` of a stopped server by a folder formatted for another deployment.
fn make_foreign(server: &TestServer, d: usize) -> PathBuf {
    let path = server.drives()[d].clone();
    let own = path.join("format.json");
    let mut format: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&own).expect("the drive was formatted")).unwrap();
    format["deployment_id"] = "00000000-0000-4000-8000-00000000f0e1".into();
    remove_drive(server, d);
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(&own, serde_json::to_vec_pretty(&format).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_of_another_deployment_is_refused_by_name() {
    let mut server = formatted_set().await;
    let foreign = make_foreign(&server, 2);
    let (status, log) = server.start_expecting_exit();
    assert!(!status.success(), "the server refused to start: {status}");
    assert!(
        log.contains(&foreign.display().to_string()),
        "the error names the foreign drive {}:\n{log}",
        foreign.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_first_drive_is_the_one_named() {
    // The first drive is no more trusted than the others: three drives agree, so the odd one
    // out is the foreign one and the error must name it, not one of the good drives.
    let mut server = formatted_set().await;
    let foreign = make_foreign(&server, 0);
    let (status, log) = server.start_expecting_exit();
    assert!(!status.success(), "the server refused to start: {status}");
    let error: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("another deployment") || l.contains("Error"))
        .collect();
    assert!(
        log.contains(&foreign.display().to_string()),
        "the error names the foreign drive {}:\n{log}",
        foreign.display()
    );
    for good in &server.drives()[1..] {
        assert!(
            !error
                .iter()
                .any(|l| l.contains(&good.display().to_string())),
            "the error blames good drive {}:\n{log}",
            good.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_in_another_order_or_with_another_parity_are_refused() {
    let mut server = formatted_set().await;
    let drives = server.drives().to_vec();
    let swapped = vec![
        drives[1].clone(),
        drives[0].clone(),
        drives[2].clone(),
        drives[3].clone(),
    ];
    server.set_drives(swapped, &[]);
    let (status, log) = server.start_expecting_exit();
    assert!(!status.success(), "swapped drives are refused: {status}");
    assert!(
        log.contains(&drives[1].display().to_string())
            || log.contains(&drives[0].display().to_string()),
        "the error names a misplaced drive:\n{log}"
    );

    server.set_drives(drives.clone(), &["--parity", "1"]);
    let (status, log) = server.start_expecting_exit();
    assert!(
        !status.success(),
        "a set formatted 2+2 is not opened as 3+1: {status}"
    );
    assert!(log.contains("parity"), "the error says why:\n{log}");

    // In the right order and geometry the set still serves its object.
    server.set_drives(drives, &[]);
    server.start_again();
    assert_eq!(get_bytes(&server.client(), B, "k").await, b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parity_can_be_chosen_and_impossible_parity_is_refused() {
    let mut server = TestServer::start_drives(3, &["--parity", "1"]);
    let client = server.bucket(B).await;
    let mut expected = BTreeMap::new();
    expected.insert("inline".to_string(), pattern(70 * KIB, 7));
    expected.insert("file".to_string(), pattern(2 * MIB + 5, 8));
    for (k, v) in &expected {
        put_bytes(&client, B, k, v.clone()).await;
    }
    assert_all_read_back(&client, &expected).await;
    // 2+1 survives the loss of any one drive.
    server.kill9();
    remove_drive(&server, 1);
    server.start_again();
    assert_all_read_back(&server.client(), &expected).await;
    wait_for_heal(&server, &[1], 0).await;
    server.kill9();

    let mut impossible = TestServer::stopped_drives(4, &["--parity", "4"]);
    let fresh = impossible.drives().to_vec();
    let (status, log) = impossible.start_expecting_exit();
    assert!(
        !status.success(),
        "--parity 4 on 4 drives is refused: {status}"
    );
    assert!(log.contains("parity"), "the error says why:\n{log}");
    for f in &fresh {
        assert!(
            !f.join("format.json").exists(),
            "a refused geometry formats no drive ({})",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_read_back() {
    let server = TestServer::start_drives(4, &[]);
    let client = server.bucket(B).await;
    let sizes = [0, 1000, 100 * KIB, 128 * KIB, 200 * KIB, MIB + 1];
    let mut writers = Vec::new();
    for w in 0..8usize {
        let client = client.clone();
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..10usize {
                let key = format!("w{w}/o{i}");
                let data = pattern(sizes[(w + i) % sizes.len()], (w * 10 + i) as u8);
                put_bytes(&client, B, &key, data.clone()).await;
                written.push((key, data));
            }
            written
        }));
    }
    let mut expected = BTreeMap::new();
    for w in writers {
        expected.extend(w.await.expect("a writer does not panic"));
    }
    assert_eq!(expected.len(), 80);
    let mut listed = all_keys(&client, B).await;
    listed.sort();
    assert_eq!(listed, expected.keys().cloned().collect::<Vec<_>>());
    assert_all_read_back(&client, &expected).await;
}
