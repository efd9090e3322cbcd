//! A large object streams through the server: 100 MiB up and down, byte-identical, while the
//! server's resident memory stays well below the object's size (a memory bound, not a
//! timing).

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::{pattern, TestServer};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
const SIZE: usize = 100 * MIB;

/// Samples the server's RSS until stopped; returns the peak.
struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = rss_of(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        RssWatch { stop, peak, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_object_streams_up_and_down_in_bounded_memory() {
    let server = TestServer::start();
    let client = server.bucket("big").await;

    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut hasher = Sha256::new();
    for i in 0..(SIZE / MIB) {
        let chunk = pattern(MIB, i as u8);
        hasher.update(&chunk);
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
    let expected = hex::encode(hasher.finalize());
    let baseline = server.rss_bytes();

    let watch = RssWatch::start(server.pid());
    let body = ByteStream::from_path(file.path()).await.unwrap();
    let put = client
        .put_object()
        .bucket("big")
        .key("blob")
        .body(body)
        .send()
        .await
        .expect("the 100 MiB PUT succeeds");
    assert!(put.e_tag().is_some());
    let head = client
        .head_object()
        .bucket("big")
        .key("blob")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(SIZE as i64));

    let mut out = client
        .get_object()
        .bucket("big")
        .key("blob")
        .send()
        .await
        .unwrap();
    let mut hasher = Sha256::new();
    let mut received = 0usize;
    while let Some(chunk) = out
        .body
        .try_next()
        .await
        .expect("the download streams to the end")
    {
        received += chunk.len();
        hasher.update(&chunk);
    }
    let peak = watch.finish().await;

    assert_eq!(received, SIZE);
    assert_eq!(
        hex::encode(hasher.finalize()),
        expected,
        "the download is byte-identical"
    );
    assert!(
        peak < 100 * MIB as u64,
        "server RSS peaked at {} MiB (baseline {} MiB) while moving a 100 MiB object",
        peak / MIB as u64,
        baseline / MIB as u64
    );
    eprintln!(
        "server RSS: baseline {} MiB, peak {} MiB",
        baseline / MIB as u64,
        peak / MIB as u64
    );
}
