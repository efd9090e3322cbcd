//! A peer that hangs rather than dies: one server of a 4-server cluster is frozen with
//! SIGSTOP (its sockets stay open and accept, but nothing answers — what a stuck disk, a
//! swapped-out process or a half-open network looks like) while clients keep writing and
//! reading through the other servers. Every request must still succeed, within the peer RPC's
//! bounded timeouts, since the others hold a quorum; once the server thaws, it catches up on
//! everything it missed.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

mod common;
use common::*;

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Thaws the frozen server however the test ends, so its drop can stop it cleanly.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_server_stalls_no_request_and_catches_up_when_it_thaws() {
    let cluster = start(4, 1);
    let clients: Vec<Client> = (0..4).map(|i| client(&cluster, i)).collect();
    create_bucket(&clients[0], "steady").await;
    for n in 0..10u64 {
        put(
            &clients[0],
            "steady",
            &format!("before/{n}"),
            body(n, 200_000),
        )
        .await;
    }

    let frozen = 3;
    let pid = cluster.pids()[frozen].expect("the server runs");
    signal(pid, "STOP");
    let thaw = Thaw(pid);

    // Four writers and readers through the three live servers, for a bounded time: small
    // (inline) and large (shard file) objects, each read back after its write.
    let failures: Arc<Mutex<Vec<String>>> = Default::default();
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let c = clients[(w % 3) as usize].clone();
        let (failures, slowest, stop) = (failures.clone(), slowest.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for n in 0..200u64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("during/w{w}/{n}");
                let data = body(1000 * w + n, [2_000, 300_000][(n % 2) as usize]);
                let started = Instant::now();
                let put = c
                    .put_object()
                    .bucket("steady")
                    .key(&key)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await;
                if let Err(e) = put {
                    failures.lock().unwrap().push(format!("PUT {key}: {e:?}"));
                    continue;
                }
                match c.get_object().bucket("steady").key(&key).send().await {
                    Ok(o) => {
                        let got = o.body.collect().await.map(|b| b.into_bytes().to_vec());
                        if got.as_deref().ok() != Some(&data[..]) {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("GET {key}: wrong bytes"));
                        }
                    }
                    Err(e) => failures.lock().unwrap().push(format!("GET {key}: {e:?}")),
                }
                let took = started.elapsed();
                let mut s = slowest.lock().unwrap();
                *s = (*s).max(took);
                written.push((key, data));
            }
            written
        }));
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    stop.store(true, Ordering::SeqCst);
    let mut written = Vec::new();
    for w in workers {
        written.extend(w.await.unwrap());
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "requests failed with one server frozen: {failures:#?}"
    );
    assert!(
        written.len() >= 8,
        "too few writes completed with one server frozen: {}",
        written.len()
    );
    eprintln!(
        "{} writes and reads with node-{frozen} frozen; slowest PUT+GET pair {:?}",
        written.len(),
        slowest.lock().unwrap()
    );

    // Thawed, the server answers again and rebuilds on its drive every shard it missed.
    drop(thaw);
    wait_for_same_shards(
        &cluster.drive(frozen, 0),
        &cluster.drive(0, 0),
        "after the thaw",
    );
    for (key, data) in &written {
        assert_eq!(
            get(&clients[frozen], "steady", key).await.as_deref(),
            Some(&data[..]),
            "{key} through the thawed server"
        );
    }
}
