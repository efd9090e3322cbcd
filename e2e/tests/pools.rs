//! Clusters of several pools (real processes, each server on its own loopback address): new
//! objects spread over the pools by free space, every server finds every object whatever pool
//! holds it, overwrites stay in their pool, multipart uploads complete in the pool they were
//! started in, and a pool appended to a running cluster joins without losing anything.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use coffer_e2e::cluster::{LocalCluster, PoolShape};

mod common;
use common::*;

fn start_pools(pools: &[PoolShape]) -> TestCluster {
    let binary = coffer_e2e::server::coffer_binary().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_pools(&binary, pools, dir.path())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    TestCluster { cluster, dir }
}

fn shape(servers: usize, drives: usize) -> PoolShape {
    PoolShape {
        servers,
        drives,
        parity: None,
    }
}

/// Every drive folder of pool `p`.
fn pool_drives(cluster: &LocalCluster, p: usize) -> Vec<PathBuf> {
    cluster.topology.pools[p]
        .servers
        .iter()
        .flat_map(|s| s.drives.clone())
        .collect()
}

/// Shard files on all drives of pool `p` (name → count of drives holding one).
fn pool_shards(cluster: &LocalCluster, p: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for d in pool_drives(cluster, p) {
        for name in shard_files(&d).into_keys() {
            *out.entry(name).or_default() += 1;
        }
    }
    out
}

/// Checks every object reads back byte-for-byte through every server, and every server lists
/// exactly `want` (sorted).
async fn check_everywhere(cluster: &LocalCluster, bucket: &str, want: &HashMap<String, Vec<u8>>) {
    let mut keys: Vec<&String> = want.keys().collect();
    keys.sort();
    for i in 0..cluster.len() {
        let c = client(cluster, i);
        for (key, data) in want {
            let got = get(&c, bucket, key)
                .await
                .unwrap_or_else(|| panic!("server {i}: {key} missing"));
            assert_eq!(md5_hex(&got), md5_hex(data), "server {i}: {key}");
        }
        let listed: Vec<String> = list(&c, bucket).await.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            listed.iter().collect::<Vec<_>>(),
            keys,
            "server {i} lists the bucket differently"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_share_new_objects_and_every_server_serves_both() {
    let cluster = start_pools(&[shape(2, 2), shape(2, 2)]);
    let c0 = client(&cluster, 0);
    create_bucket(&c0, "pools").await;
    // 24 objects of 300 KiB (shard files) and 8 of 1 KiB (inline), written through every
    // server in turn.
    let mut want = HashMap::new();
    for n in 0..32u64 {
        let len = if n < 24 { 300 * 1024 } else { 1024 };
        let key = format!("obj-{n:02}");
        let data = body(n, len);
        put(
            &client(&cluster, n as usize % cluster.len()),
            "pools",
            &key,
            data.clone(),
        )
        .await;
        want.insert(key, data);
    }
    let (p0, p1) = (pool_shards(&cluster, 0), pool_shards(&cluster, 1));
    // Both pools have the same free space (one filesystem): each gets a share of the 24.
    assert!(
        !p0.is_empty() && !p1.is_empty(),
        "new objects went to one pool only: {} and {} shard files",
        p0.len(),
        p1.len()
    );
    assert_eq!(p0.len() + p1.len(), 24, "one data file per large object");
    assert!(
        p0.values().chain(p1.values()).all(|&n| n == 4),
        "every data file has a shard on each of its set's 4 drives"
    );
    check_everywhere(&cluster, "pools", &want).await;

    // Overwrites (through another server) stay in the object's pool: still one data file
    // per object, none left behind.
    for n in 0..24u64 {
        let key = format!("obj-{n:02}");
        let data = body(n + 1000, 200 * 1024);
        put(
            &client(&cluster, (n as usize + 1) % cluster.len()),
            "pools",
            &key,
            data.clone(),
        )
        .await;
        want.insert(key, data);
    }
    let (q0, q1) = (pool_shards(&cluster, 0), pool_shards(&cluster, 1));
    assert_eq!(
        (q0.len(), q1.len()),
        (p0.len(), p1.len()),
        "an overwrite moved an object to another pool or leaked its old data"
    );
    check_everywhere(&cluster, "pools", &want).await;

    // Multipart uploads: started, fed and completed through different servers.
    for n in 0..4u64 {
        let key = format!("multi-{n}");
        let parts = [body(100 + n, 5 * 1024 * 1024), body(200 + n, 1024 * 1024)];
        let up = client(&cluster, n as usize % cluster.len())
            .create_multipart_upload()
            .bucket("pools")
            .key(&key)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_string();
        let mut done = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let out = client(&cluster, (n as usize + i + 1) % cluster.len())
                .upload_part()
                .bucket("pools")
                .key(&key)
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .body(ByteStream::from(part.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("UploadPart {key} {i}: {e:?}"));
            done.push(
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(out.e_tag().unwrap())
                    .build(),
            );
        }
        client(&cluster, (n as usize + 3) % cluster.len())
            .complete_multipart_upload()
            .bucket("pools")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("Complete {key}: {e:?}"));
        want.insert(key, parts.concat());
    }
    // An upload id that names no pool of this cluster is NoSuchUpload, not a crash.
    let err = c0
        .upload_part()
        .bucket("pools")
        .key("obj-00")
        .upload_id("0123456789abcdef0123456789abcdef-7")
        .part_number(1)
        .body(ByteStream::from(vec![1u8; 10]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("NoSuchUpload")
    );
    check_everywhere(&cluster, "pools", &want).await;

    // Deleting everything through one server leaves no shard in either pool.
    for key in want.keys() {
        c0.delete_object()
            .bucket("pools")
            .key(key)
            .send()
            .await
            .unwrap();
    }
    want.clear();
    check_everywhere(&cluster, "pools", &want).await;
    let leftover: usize = (0..2).map(|p| pool_shards(&cluster, p).len()).sum();
    assert_eq!(leftover, 0, "deleted objects left shard files behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_appended_to_a_running_cluster_joins_without_losing_anything() {
    let mut cluster = start_pools(&[shape(4, 1)]);
    let c0 = client(&cluster, 0);
    create_bucket(&c0, "grow").await;
    let mut want = HashMap::new();
    for n in 0..8u64 {
        let key = format!("before-{n}");
        let data = body(n, 200 * 1024);
        put(
            &client(&cluster, n as usize % 4),
            "grow",
            &key,
            data.clone(),
        )
        .await;
        want.insert(key, data);
    }
    let old_shards = pool_shards(&cluster, 0);
    assert_eq!(old_shards.len(), 8);

    cluster
        .add_pool(shape(2, 2))
        .unwrap_or_else(|e| panic!("appending a pool: {e:#}"));
    assert_eq!(cluster.len(), 6);
    assert_eq!(cluster.pool_of(5), 1);
    // The new servers serve the old objects, the old servers know the new pool.
    check_everywhere(&cluster, "grow", &want).await;

    for n in 0..24u64 {
        let key = format!("after-{n:02}");
        let data = body(500 + n, 200 * 1024);
        put(
            &client(&cluster, n as usize % 6),
            "grow",
            &key,
            data.clone(),
        )
        .await;
        want.insert(key, data);
    }
    let new_shards = pool_shards(&cluster, 1);
    assert!(
        !new_shards.is_empty(),
        "no new object went to the appended pool"
    );
    // Overwriting an old object keeps it in the first pool.
    let data = body(9999, 200 * 1024);
    put(&client(&cluster, 5), "grow", "before-0", data.clone()).await;
    want.insert("before-0".into(), data);
    assert_eq!(
        pool_shards(&cluster, 1).len(),
        new_shards.len(),
        "an overwrite of an old object moved it to the new pool"
    );
    check_everywhere(&cluster, "grow", &want).await;
}
