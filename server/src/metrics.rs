//! Prometheus metrics of one server: S3 requests (count by operation and status, latency,
//! bytes in and out), recorded as requests finish, and the state of the drives, the heal
//! scanner, RocksDB and the process, sampled when `/_coffer/metrics` is scraped. This module
//! knows nothing of HTTP or of the store: the caller hands it plain numbers
//! ([`StateSample`]), so it can be tested on its own.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::heal::HealStatusReport;

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus
/// scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriveStateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LifecycleLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriveLabels {
    drive: String,
}

/// What the server looks like at a scrape, gathered by the caller.
#[derive(Debug, Default)]
pub struct StateSample {
    pub drives_online: u64,
    pub drives_offline: u64,
    pub write_quorum: u64,
    pub heal: Option<HealStatusReport>,
    /// `rocksdb.estimate-live-data-size` of each online drive, by drive index.
    pub rocksdb_live_bytes: Vec<(usize, u64)>,
    /// Resident memory of this process, when the platform tells.
    pub resident_bytes: Option<u64>,
    /// Blocks reads rebuilt from parity since start, over all erasure sets.
    pub reconstructed_blocks: u64,
}

/// Every metric of the server, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabels, Histogram>,
    bytes_received: Counter,
    bytes_sent: Counter,
    drives: Family<DriveStateLabels, Gauge>,
    write_quorum: Gauge,
    heal_cycles: Counter,
    heal_objects_scanned: Counter,
    heal_shards_missing: Counter,
    heal_shards_healed: Counter,
    heal_bytes_healed: Counter,
    heal_errors: Counter,
    heal_scanning: Gauge,
    rocksdb_live_bytes: Family<DriveLabels, Gauge>,
    resident_bytes: Gauge,
    reconstructed_blocks: Counter,
    lifecycle_actions: Family<LifecycleLabels, Counter>,
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 65 s: small-object calls on the left, multi-gigabyte transfers on the right.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Prometheus gauges are signed; a value past `i64::MAX` is pinned there.
fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<OperationLabels, Histogram>::new_with_constructor(duration_histogram as _);
        let bytes_received = Counter::default();
        let bytes_sent = Counter::default();
        let drives = Family::<DriveStateLabels, Gauge>::default();
        let write_quorum = Gauge::default();
        let heal_cycles = Counter::default();
        let heal_objects_scanned = Counter::default();
        let heal_shards_missing = Counter::default();
        let heal_shards_healed = Counter::default();
        let heal_bytes_healed = Counter::default();
        let heal_errors = Counter::default();
        let heal_scanning = Gauge::default();
        let rocksdb_live_bytes = Family::<DriveLabels, Gauge>::default();
        let resident_bytes = Gauge::default();
        let reconstructed_blocks = Counter::default();
        let lifecycle_actions = Family::<LifecycleLabels, Counter>::default();
        // Counter names get their `_total` suffix from the encoder.
        registry.register(
            "coffer_s3_requests",
            "S3 requests answered, by operation and HTTP status",
            requests.clone(),
        );
        registry.register(
            "coffer_s3_request_duration_seconds",
            "Time from a request's arrival to its response head, by operation",
            durations.clone(),
        );
        registry.register(
            "coffer_s3_bytes_received",
            "Request body bytes, as declared by Content-Length",
            bytes_received.clone(),
        );
        registry.register(
            "coffer_s3_bytes_sent",
            "Response body bytes, as declared by Content-Length",
            bytes_sent.clone(),
        );
        registry.register(
            "coffer_drives",
            "Drives of this server's erasure set, by state",
            drives.clone(),
        );
        registry.register(
            "coffer_write_quorum",
            "Drives that must accept a write for it to succeed",
            write_quorum.clone(),
        );
        registry.register(
            "coffer_heal_cycles",
            "Full scans finished by the heal scanner",
            heal_cycles.clone(),
        );
        registry.register(
            "coffer_heal_objects_scanned",
            "Object versions checked by the heal scanner",
            heal_objects_scanned.clone(),
        );
        registry.register(
            "coffer_heal_shards_missing",
            "Shards the heal scanner found missing or damaged",
            heal_shards_missing.clone(),
        );
        registry.register(
            "coffer_heal_shards_healed",
            "Shards the heal scanner rebuilt",
            heal_shards_healed.clone(),
        );
        registry.register(
            "coffer_heal_bytes_healed",
            "Bytes of shards the heal scanner rebuilt",
            heal_bytes_healed.clone(),
        );
        registry.register(
            "coffer_heal_errors",
            "Object versions the heal scanner could not check or heal",
            heal_errors.clone(),
        );
        registry.register(
            "coffer_heal_scanning",
            "1 while a heal scan is running",
            heal_scanning.clone(),
        );
        registry.register(
            "coffer_rocksdb_estimate_live_data_bytes",
            "RocksDB's estimate of live record bytes, by drive",
            rocksdb_live_bytes.clone(),
        );
        registry.register(
            "coffer_process_resident_memory_bytes",
            "Resident memory of the server process",
            resident_bytes.clone(),
        );
        registry.register(
            "coffer_erasure_reconstructed_blocks",
            "Blocks that reads rebuilt from parity because a data shard was missing or corrupt",
            reconstructed_blocks.clone(),
        );
        registry.register(
            "coffer_lifecycle_actions",
            "Lifecycle rule actions this server applied, by action (expired, noncurrent_removed, \
             marker_removed, upload_aborted)",
            lifecycle_actions.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            bytes_received,
            bytes_sent,
            drives,
            write_quorum,
            heal_cycles,
            heal_objects_scanned,
            heal_shards_missing,
            heal_shards_healed,
            heal_bytes_healed,
            heal_errors,
            heal_scanning,
            reconstructed_blocks,
            rocksdb_live_bytes,
            resident_bytes,
            lifecycle_actions,
        }
    }

    /// Counts one action of the lifecycle worker (`action` names it, see the metric's help).
    pub fn record_lifecycle_action(&self, action: &'static str) {
        self.lifecycle_actions
            .get_or_create(&LifecycleLabels { action })
            .inc();
    }

    /// Records one finished S3 request.
    pub fn record_request(
        &self,
        operation: &str,
        status: u16,
        seconds: f64,
        bytes_received: Option<u64>,
        bytes_sent: Option<u64>,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(seconds);
        if let Some(n) = bytes_received {
            self.bytes_received.inc_by(n);
        }
        if let Some(n) = bytes_sent {
            self.bytes_sent.inc_by(n);
        }
    }

    /// The text exposition of every metric, with the state gauges set from `sample`.
    pub fn render(&self, sample: &StateSample) -> String {
        self.drives
            .get_or_create(&DriveStateLabels { state: "online" })
            .set(gauge_value(sample.drives_online));
        self.drives
            .get_or_create(&DriveStateLabels { state: "offline" })
            .set(gauge_value(sample.drives_offline));
        self.write_quorum.set(gauge_value(sample.write_quorum));
        if let Some(h) = &sample.heal {
            // The scanner keeps cumulative counts since start; they are exposed as counters
            // (so `rate()` works) by copying them in.
            let copy = |c: &Counter, v: u64| c.inner().store(v, Ordering::Relaxed);
            copy(&self.heal_cycles, h.cycles);
            copy(&self.heal_objects_scanned, h.objects_scanned);
            copy(&self.heal_shards_missing, h.shards_missing);
            copy(&self.heal_shards_healed, h.shards_healed);
            copy(&self.heal_bytes_healed, h.bytes_healed);
            copy(&self.heal_errors, h.errors);
            self.heal_scanning.set(i64::from(h.scanning));
        }
        self.rocksdb_live_bytes.clear();
        for (drive, bytes) in &sample.rocksdb_live_bytes {
            self.rocksdb_live_bytes
                .get_or_create(&DriveLabels {
                    drive: drive.to_string(),
                })
                .set(gauge_value(*bytes));
        }
        if let Some(n) = sample.resident_bytes {
            self.resident_bytes.set(gauge_value(n));
        }
        self.reconstructed_blocks
            .inner()
            .store(sample.reconstructed_blocks, Ordering::Relaxed);
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing metrics to a String cannot fail");
        out
    }
}

/// Resident memory of this process from `/proc/self/status` (`VmRSS`, in kB); `None` where
/// there is no procfs.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation_and_status() {
        let m = Metrics::new();
        m.record_request("PutObject", 200, 0.002, Some(10), None);
        m.record_request("PutObject", 200, 0.004, Some(5), Some(0));
        m.record_request("GetObject", 404, 0.001, None, Some(300));
        let text = m.render(&StateSample::default());
        assert!(text.contains(r#"coffer_s3_requests_total{operation="PutObject",status="200"} 2"#));
        assert!(text.contains(r#"coffer_s3_requests_total{operation="GetObject",status="404"} 1"#));
        assert!(
            text.contains(r#"coffer_s3_request_duration_seconds_count{operation="PutObject"} 2"#)
        );
        assert!(text.contains("coffer_s3_bytes_received_total 15"));
        assert!(text.contains("coffer_s3_bytes_sent_total 300"));
    }

    #[test]
    fn lifecycle_actions_are_counted_by_action() {
        let m = Metrics::new();
        m.record_lifecycle_action("expired");
        m.record_lifecycle_action("expired");
        m.record_lifecycle_action("upload_aborted");
        let text = m.render(&StateSample::default());
        assert!(text.contains(r#"coffer_lifecycle_actions_total{action="expired"} 2"#));
        assert!(text.contains(r#"coffer_lifecycle_actions_total{action="upload_aborted"} 1"#));
    }

    #[test]
    fn state_gauges_follow_the_sample() {
        let m = Metrics::new();
        let sample = StateSample {
            drives_online: 3,
            drives_offline: 1,
            write_quorum: 3,
            heal: Some(HealStatusReport {
                cycles: 2,
                objects_scanned: 40,
                shards_missing: 5,
                shards_healed: 4,
                bytes_healed: 4096,
                errors: 1,
                scanning: true,
                orphans_removed: 0,
                bytes_left: 0,
                drives_healing: 0,
                writes_to_heal: 0,
            }),
            rocksdb_live_bytes: vec![(0, 100), (2, 200)],
            resident_bytes: Some(1 << 20),
            reconstructed_blocks: 7,
        };
        let text = m.render(&sample);
        for line in [
            r#"coffer_drives{state="online"} 3"#,
            r#"coffer_drives{state="offline"} 1"#,
            "coffer_write_quorum 3",
            "coffer_heal_objects_scanned_total 40",
            "coffer_heal_shards_missing_total 5",
            "coffer_heal_shards_healed_total 4",
            "coffer_heal_bytes_healed_total 4096",
            "coffer_heal_scanning 1",
            r#"coffer_rocksdb_estimate_live_data_bytes{drive="2"} 200"#,
            "coffer_process_resident_memory_bytes 1048576",
            "coffer_erasure_reconstructed_blocks_total 7",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tcoffer\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tcoffer\n"), None);
    }
}
