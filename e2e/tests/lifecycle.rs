//! The lifecycle worker on a cluster of real `coffer-server` processes, with the server that is
//! applying the rules killed with `kill -9` in the middle of its pass: afterwards every due
//! version was expired exactly once (one delete marker per key, never two), none was skipped,
//! noncurrent versions went by the rules, and no version object lock keeps was removed. The
//! lifecycle "day" is shortened to a few seconds (`COFFER_LIFECYCLE_DAY_SECONDS`, the server
//! setting for trials and tests).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectLockMode,
};
use aws_sdk_s3::Client;
use coffer_e2e::cluster::LocalCluster;

mod common;
use common::*;

const BUCKET: &str = "archive";
/// Keys whose current version expires (one delete marker each); every fifth is locked.
const EXPIRING: usize = 400;
/// Keys written twice whose noncurrent version goes; the even ones are locked.
const NONCURRENT: usize = 40;

/// The versions of one key as ListObjectVersions shows them.
#[derive(Debug, Default)]
struct KeyVersions {
    /// (version id, is latest) of object versions.
    objects: Vec<(String, bool)>,
    /// (version id, is latest) of delete markers.
    markers: Vec<(String, bool)>,
}

async fn all_versions(c: &Client) -> BTreeMap<String, KeyVersions> {
    let mut out: BTreeMap<String, KeyVersions> = BTreeMap::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = c
            .list_object_versions()
            .bucket(BUCKET)
            .max_keys(500)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .expect("ListObjectVersions");
        for v in page.versions() {
            out.entry(v.key().unwrap().to_string())
                .or_default()
                .objects
                .push((v.version_id().unwrap().into(), v.is_latest() == Some(true)));
        }
        for m in page.delete_markers() {
            out.entry(m.key().unwrap().to_string())
                .or_default()
                .markers
                .push((m.version_id().unwrap().into(), m.is_latest() == Some(true)));
        }
        if page.is_truncated() != Some(true) {
            return out;
        }
        key_marker = page.next_key_marker().map(String::from);
        version_marker = page.next_version_id_marker().map(String::from);
    }
}

/// Expirations applied by each server since it started (`None`: not answering).
fn expirations(cluster: &LocalCluster) -> Vec<Option<f64>> {
    (0..cluster.len())
        .map(|i| {
            if !cluster.is_running(i) {
                return None;
            }
            cluster
                .metric(i, "coffer_lifecycle_actions_total{action=\"expired\"}")
                .or(cluster.metric(i, "coffer_write_quorum").map(|_| 0.0))
        })
        .collect()
}

/// The server that applied rules between two samples of [`expirations`], if any; fails when
/// two servers did (the worker runs on one server at a time per bucket).
fn runner(before: &[Option<f64>], now: &[Option<f64>]) -> Option<usize> {
    let active: Vec<usize> = (0..now.len())
        .filter(|&i| now[i].unwrap_or(0.0) > before[i].unwrap_or(0.0))
        .collect();
    assert!(active.len() <= 1, "servers {active:?} ran rules at once");
    active.first().copied()
}

async fn put(c: &Client, key: String, body: &'static [u8], locked: bool) -> String {
    let mut req = c
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(body.to_vec().into());
    if locked {
        req = req
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from(
                std::time::SystemTime::now() + Duration::from_secs(3600),
            ));
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"))
        .version_id
        .expect("a versioned bucket answers a version id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rules_apply_once_each_when_the_runner_is_killed_mid_pass() {
    // A "day" of 3 s; the servers inherit it from this test process's environment.
    std::env::set_var("COFFER_LIFECYCLE_DAY_SECONDS", "3");
    let mut cluster = start(4, 1);
    let clients: Vec<Client> = (0..4).map(|i| client(&cluster, i)).collect();
    clients[0]
        .create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("CreateBucket with object lock");

    // Objects written through every server, 16 at a time.
    let mut noncurrent_ids = Vec::new();
    for i in 0..NONCURRENT {
        let c = &clients[i % 4];
        let old = put(c, format!("nc/{i:03}"), b"old", i % 2 == 0).await;
        let new = put(c, format!("nc/{i:03}"), b"new", false).await;
        noncurrent_ids.push((old, new));
    }
    let mut expiring_ids = Vec::new();
    for chunk in (0..EXPIRING).collect::<Vec<_>>().chunks(16) {
        let puts = chunk.iter().map(|&i| {
            put(
                &clients[i % 4],
                format!("exp/{i:04}"),
                b"expiring",
                i % 5 == 0,
            )
        });
        expiring_ids.extend(futures::future::join_all(puts).await);
    }

    clients[1]
        .put_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("expire")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("exp/").build())
                        .expiration(LifecycleExpiration::builder().days(1).build())
                        .build()
                        .unwrap(),
                )
                .rules(
                    LifecycleRule::builder()
                        .id("old-versions")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("nc/").build())
                        .noncurrent_version_expiration(
                            NoncurrentVersionExpiration::builder()
                                .noncurrent_days(1)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutBucketLifecycleConfiguration");

    // Find the server applying the rules by its metrics, and kill it mid-pass. Meanwhile no two
    // servers may be applying rules at the same moment.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut before = expirations(&cluster);
    let victim = loop {
        assert!(
            Instant::now() < deadline,
            "no server started expiring objects"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = expirations(&cluster);
        if let Some(i) = runner(&before, &now) {
            break i;
        }
        before = now;
    };
    let expired_when_killed = expirations(&cluster)[victim].unwrap_or(0.0);
    cluster.kill(victim);
    assert!(
        expired_when_killed < EXPIRING as f64,
        "the pass ended before the kill ({expired_when_killed} expirations)"
    );
    eprintln!("killed node-{victim} after {expired_when_killed} expirations");

    // The others take over once the runner's lease runs out; the killed server comes back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.spawn(victim).unwrap();
    cluster.wait_ready(victim).unwrap();
    let survivors = &clients[(victim + 1) % 4];
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut before = expirations(&cluster);
    loop {
        let versions = all_versions(survivors).await;
        let expired = (0..EXPIRING)
            .filter(|i| !versions[&format!("exp/{i:04}")].markers.is_empty())
            .count();
        let trimmed = (0..NONCURRENT)
            .filter(|i| i % 2 == 1 && versions[&format!("nc/{i:03}")].objects.len() == 1)
            .count();
        if expired == EXPIRING && trimmed == NONCURRENT / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules not applied in time: {expired}/{EXPIRING} expired, {trimmed}/{} trimmed",
            NONCURRENT / 2
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = expirations(&cluster);
        runner(&before, &now);
        before = now;
    }

    // Some more passes run; then every server sees the same, exact outcome.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (s, c) in clients.iter().enumerate() {
        let versions = all_versions(c).await;
        assert_eq!(
            versions.len(),
            EXPIRING + NONCURRENT,
            "keys seen by node-{s}"
        );
        for (i, id) in expiring_ids.iter().enumerate() {
            let key = format!("exp/{i:04}");
            let v = &versions[&key];
            assert_eq!(v.markers.len(), 1, "{key} on node-{s}: one marker, {v:?}");
            assert!(v.markers[0].1, "{key}: the marker is the latest version");
            assert_eq!(
                v.objects,
                vec![(id.clone(), false)],
                "{key} on node-{s}: the expired version stays behind the marker"
            );
        }
        for (i, (old, new)) in noncurrent_ids.iter().enumerate() {
            let key = format!("nc/{i:03}");
            let v = &versions[&key];
            assert!(v.markers.is_empty(), "{key} on node-{s}: {v:?}");
            let ids: HashSet<&str> = v.objects.iter().map(|(id, _)| id.as_str()).collect();
            if i % 2 == 0 {
                assert_eq!(
                    ids,
                    HashSet::from([old.as_str(), new.as_str()]),
                    "{key} on node-{s}: object lock keeps the old version"
                );
            } else {
                assert_eq!(
                    v.objects,
                    vec![(new.clone(), true)],
                    "{key} on node-{s}: the noncurrent version went"
                );
            }
        }
    }
    // The locked versions are readable, byte for byte.
    for (i, (old, _)) in noncurrent_ids.iter().enumerate().step_by(2) {
        let got = clients[i % 4]
            .get_object()
            .bucket(BUCKET)
            .key(format!("nc/{i:03}"))
            .version_id(old)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(got.as_ref(), b"old");
    }
}
