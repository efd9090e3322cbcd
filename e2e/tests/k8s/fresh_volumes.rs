//! Scenario 4: a server's pod deleted together with its volume claims comes back on new,
//! empty volumes; the server heals them, the store returns to Ready, and every object written
//! before reads back byte-for-byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use coffer_e2e::k8s::Cluster;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{aws, condition, get_json, pattern, ready, text, wait_for, NS};

/// A claim of the victim pod and the volume it was bound to.
struct Claim {
    name: String,
    uid: Value,
    volume: String,
    folder: PathBuf,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// The claim `name` as bound now: its uid, its volume and that volume's folder.
fn claim(cluster: &Cluster, name: &str) -> Result<Claim, String> {
    let pvc = get_json(cluster, &["pvc", "-n", NS, name])?;
    if pvc["status"]["phase"] != "Bound" {
        return Err(format!("claim {name}: {}", pvc["status"]));
    }
    let volume = pvc["spec"]["volumeName"]
        .as_str()
        .ok_or_else(|| format!("claim {name} names no volume"))?
        .to_string();
    let pv = get_json(cluster, &["pv", &volume])?;
    let folder = pv["spec"]["hostPath"]["path"]
        .as_str()
        .ok_or_else(|| format!("volume {volume} is not a folder"))?;
    Ok(Claim {
        name: name.to_string(),
        uid: pvc["metadata"]["uid"].clone(),
        volume,
        folder: PathBuf::from(folder),
    })
}

pub async fn a_pod_deleted_with_its_claims_comes_back_empty_and_healed(
    cluster: &mut Cluster,
    work: &Path,
    gallery: &[(String, String)],
) {
    // Objects of every layout: inline, one block, several blocks, multipart (the CLI splits
    // files above 8 MiB).
    let dir = work.join("before-4");
    std::fs::create_dir_all(&dir).expect("a folder for the objects");
    let sizes = [1usize << 10, 100 << 10, 300 << 10, 3 << 20, 12 << 20];
    let mut sums = BTreeMap::new();
    for (i, size) in sizes.iter().enumerate() {
        let data = pattern(400 + i as u64, *size);
        let name = format!("obj-{i}");
        std::fs::write(dir.join(&name), &data).expect("writing an object file");
        sums.insert(name, sha256_hex(&data));
    }
    let up = aws(
        cluster,
        work,
        gallery,
        &[
            "s3",
            "cp",
            "--recursive",
            &dir.display().to_string(),
            "s3://photos/before-4/",
        ],
    );
    assert!(up.status.success(), "writing the objects: {}", text(&up));
    let written: u64 = sizes.iter().map(|s| *s as u64).sum();

    let victim = "photos-pool-0-2";
    let pod = get_json(cluster, &["pod", "-n", NS, victim]).expect("the victim pod");
    let old_uid = pod["metadata"]["uid"].clone();
    let names: Vec<String> = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .map(String::from)
        .collect();
    assert!(
        !names.is_empty(),
        "the pod mounts no claim: {}",
        pod["spec"]
    );
    let old: Vec<Claim> = names
        .iter()
        .map(|n| claim(cluster, n).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    for c in &old {
        assert!(
            bytes_under(&c.folder) > 0,
            "the drive of {} holds nothing before the deletion",
            c.name
        );
    }

    let drives = ready(cluster, "objectstore", NS, "photos").expect("the store Ready")["status"]
        ["drives"]["total"]
        .as_u64()
        .expect("the store's drive count")
        .max(1);

    let started = Instant::now();
    let mut delete = vec!["delete", "pvc", "-n", NS, "--wait=false"];
    delete.extend(names.iter().map(String::as_str));
    cluster.kubectl(&delete).expect("kubectl delete pvc");
    cluster
        .kubectl(&["delete", "pod", "-n", NS, victim, "--wait=false"])
        .expect("kubectl delete pod");

    wait_for("the store to notice the lost server", cluster, |c| {
        let store = get_json(c, &["objectstore", "-n", NS, "photos"])?;
        let replaced = get_json(c, &["pod", "-n", NS, victim])
            .map(|p| p["metadata"]["uid"] != old_uid)
            .unwrap_or(false);
        if condition(&store, "Ready").as_deref() != Some("True") || replaced {
            Ok(())
        } else {
            Err(format!("status: {}", store["status"]))
        }
    })
    .await;
    let fresh = wait_for(
        "the pod back on new claims, Running and Ready",
        cluster,
        |c| {
            let pod = get_json(c, &["pod", "-n", NS, victim])?;
            let back = pod["metadata"]["uid"] != old_uid
                && pod["status"]["phase"] == "Running"
                && condition(&pod, "Ready").as_deref() == Some("True");
            if !back {
                return Err(format!("pod status: {}", pod["status"]));
            }
            let fresh: Vec<Claim> = names
                .iter()
                .map(|n| claim(c, n))
                .collect::<Result<_, _>>()?;
            for (new, old) in fresh.iter().zip(&old) {
                if new.uid == old.uid || new.volume == old.volume || new.folder == old.folder {
                    return Err(format!("claim {} still the old one", new.name));
                }
            }
            Ok(fresh)
        },
    )
    .await;
    let back_after = started.elapsed();
    // Reclaim policy Delete: the released volumes go, and their folders with them.
    wait_for("the old volumes deleted with their folders", cluster, |c| {
        for o in &old {
            match c.kubectl(&["get", "pv", &o.volume]) {
                Err(e) if format!("{e:#}").contains("NotFound") => {}
                other => return Err(format!("volume {}: {other:?}", o.volume)),
            }
            if o.folder.exists() {
                return Err(format!("folder {} still there", o.folder.display()));
            }
        }
        Ok(())
    })
    .await;

    // Healed: the store says so, and every new drive holds a shard of every object written
    // before (at least 1/E of its bytes).
    let share = written / drives;
    wait_for(
        "ObjectStore Ready again, every drive online and healed",
        cluster,
        |c| {
            let store = ready(c, "objectstore", NS, "photos")?;
            let counts = &store["status"]["drives"];
            if counts["online"] != counts["total"]
                || counts["healing"] != 0
                || condition(&store, "Progressing").as_deref() != Some("False")
            {
                return Err(format!("status: {}", store["status"]));
            }
            for f in &fresh {
                let held = bytes_under(&f.folder);
                if held < share {
                    return Err(format!(
                        "the store is Ready but the new drive of {} holds {held} bytes, less \
                         than its share {share} of the objects written before",
                        f.name
                    ));
                }
            }
            Ok(())
        },
    )
    .await;
    let healed_after = started.elapsed();

    let back = work.join("back-4");
    let down = aws(
        cluster,
        work,
        gallery,
        &[
            "s3",
            "cp",
            "--recursive",
            "s3://photos/before-4/",
            &back.display().to_string(),
        ],
    );
    assert!(down.status.success(), "reading back: {}", text(&down));
    let mut read = BTreeMap::new();
    for entry in std::fs::read_dir(&back)
        .expect("the downloaded folder")
        .flatten()
    {
        let data = std::fs::read(entry.path()).expect("a downloaded object");
        read.insert(
            entry.file_name().to_string_lossy().into_owned(),
            sha256_hex(&data),
        );
    }
    assert_eq!(
        read, sums,
        "objects written before the deletion, as read back"
    );
    eprintln!(
        "scenario 4: pod back on new claims after {back_after:?}, store Ready and healed after \
         {healed_after:?}; new drives hold {:?} bytes",
        fresh
            .iter()
            .map(|f| bytes_under(&f.folder))
            .collect::<Vec<_>>()
    );
}
