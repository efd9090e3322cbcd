//! `coffer-e2e bench`: builds the peer tools, starts coffer-server and MinIO
//! side by side on loopback (one process each, or a cluster of `--servers`
//! processes each), runs every warp workload against each in turn and reports
//! the comparison, with the peak memory of every server process.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::cluster::LocalCluster;
use crate::go_tools::{MINIO, WARP};
use crate::report::{self, Machine, PeakRss, Row};
use crate::server::{self, Credentials, MinioCluster, ServerProcess};
use crate::warp;

pub struct BenchOptions {
    pub quick: bool,
    /// Parent folder of both servers' drives.
    pub scratch: PathBuf,
    /// Rewrite e2e/BENCHMARKS.md with the results.
    pub write_report: bool,
    /// Drive folders per server (erasure coding over them when more than one).
    pub drives: usize,
    /// Server processes per side: 1 is one coffer-server against one MinIO; more is a Coffer
    /// `LocalCluster` against a distributed MinIO with the same drives per process.
    pub servers: usize,
    /// Objects in the LIST workload's bucket (`None`: by mode, see [`run`]).
    pub list_objects: Option<u32>,
    /// Only the workloads whose label contains this text.
    pub only: Option<String>,
}

/// The parity both sides use in cluster mode (2+2 over 4 drives, 6+2 over 8).
const CLUSTER_PARITY: usize = 2;

/// One side of the comparison: one server or a cluster of them.
trait Target {
    /// Fails when a server process has exited.
    fn ensure_running(&mut self) -> Result<()>;
    /// warp's `--host`: `127.0.0.1:PORT[,127.0.0.1:PORT…]`.
    fn hosts(&self) -> String;
    fn log_tail(&self, lines: usize) -> String;
    /// Peak RSS (KiB) of every server process.
    fn peak_rss(&self) -> Vec<Option<u64>>;
}

impl Target for ServerProcess {
    fn ensure_running(&mut self) -> Result<()> {
        ServerProcess::ensure_running(self)
    }
    fn hosts(&self) -> String {
        self.host_port().to_string()
    }
    fn log_tail(&self, lines: usize) -> String {
        ServerProcess::log_tail(self, lines)
    }
    fn peak_rss(&self) -> Vec<Option<u64>> {
        vec![server::peak_rss_kib(self.pid())]
    }
}

impl Target for MinioCluster {
    fn ensure_running(&mut self) -> Result<()> {
        MinioCluster::ensure_running(self)
    }
    fn hosts(&self) -> String {
        self.host_ports().join(",")
    }
    fn log_tail(&self, lines: usize) -> String {
        MinioCluster::log_tail(self, lines)
    }
    fn peak_rss(&self) -> Vec<Option<u64>> {
        self.pids().into_iter().map(server::peak_rss_kib).collect()
    }
}

impl Target for LocalCluster {
    fn ensure_running(&mut self) -> Result<()> {
        LocalCluster::ensure_running(self)
    }
    fn hosts(&self) -> String {
        self.endpoints()
            .iter()
            .map(|e| e.trim_start_matches("http://").to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
    fn log_tail(&self, lines: usize) -> String {
        (0..self.len())
            .map(|i| {
                format!(
                    "--- coffer node-{i} ---\n{}",
                    LocalCluster::log_tail(self, i, lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    fn peak_rss(&self) -> Vec<Option<u64>> {
        self.pids()
            .into_iter()
            .map(|p| p.and_then(server::peak_rss_kib))
            .collect()
    }
}

pub fn run(opts: &BenchOptions) -> Result<()> {
    if opts.servers == 0 || opts.drives == 0 {
        bail!("--servers and --drives must be at least 1");
    }
    build_coffer_server()?;
    // Before the servers start, so the load is the machine's, not ours.
    let machine = Machine::detect();
    let coffer_bin = server::coffer_binary()?;
    let warp_bin = WARP.ensure_built()?;
    let minio_bin = MINIO.ensure_built()?;
    let creds = Credentials::default();
    let cluster = opts.servers > 1;

    // Declared before the clusters so their folder outlives them (locals drop in reverse).
    let cluster_dir = tempfile::Builder::new()
        .prefix("coffer-e2e-coffer-cluster-")
        .tempdir_in(&opts.scratch)?;
    let (mut coffer, mut minio): (Box<dyn Target>, Box<dyn Target>) = if cluster {
        let coffer = LocalCluster::start_with_parity(
            &coffer_bin,
            opts.servers,
            opts.drives,
            cluster_dir.path(),
            Some(CLUSTER_PARITY),
        )
        .context("starting the coffer-server cluster")?;
        let minio = MinioCluster::start(
            &minio_bin,
            &creds,
            &opts.scratch,
            opts.servers,
            opts.drives,
            Some(CLUSTER_PARITY),
        )
        .context("starting the MinIO cluster")?;
        (Box::new(coffer), Box::new(minio))
    } else {
        let coffer = ServerProcess::start_coffer(&coffer_bin, &creds, &opts.scratch, opts.drives)
            .context("starting coffer-server")?;
        let minio = ServerProcess::start_minio(&minio_bin, &creds, &opts.scratch, opts.drives)
            .context("starting MinIO")?;
        (Box::new(coffer), Box::new(minio))
    };
    let warp_data = tempfile::Builder::new()
        .prefix("coffer-e2e-warp-")
        .tempdir_in(&opts.scratch)?;
    eprintln!(
        "coffer-server at {}, MinIO at {}",
        coffer.hosts(),
        minio.hosts()
    );

    // A cluster lists a larger bucket (the per-object cost of warp's upload before LIST is what
    // bounds it on a small machine).
    let list_objects = opts.list_objects.unwrap_or(match (cluster, opts.quick) {
        (false, true) => 2000,
        (false, false) => 10_000,
        (true, true) => 5000,
        (true, false) => 20_000,
    });
    let mut workloads = warp::workloads(opts.quick, list_objects);
    if let Some(only) = &opts.only {
        workloads.retain(|w| w.label.contains(only.as_str()));
        if workloads.is_empty() {
            bail!("no workload's label contains {only:?}");
        }
    }
    let mut rows = Vec::new();
    for workload in &workloads {
        let measure = |name: &str, target: &mut dyn Target| {
            eprintln!("{:<22} {name:<7} …", workload.label);
            // A server that died (or was killed from outside) fails the row
            // with that reason instead of a connection error from warp.
            let result = target
                .ensure_running()
                .and_then(|()| {
                    let hosts = target.hosts();
                    warp::run(&warp_bin, workload, &hosts, &creds, warp_data.path())
                })
                .map_err(|e| format!("{e:#}"));
            match &result {
                Ok(t) => eprintln!(
                    "{:<22} {name:<7} {:.1} MiB/s, {:.0} obj/s",
                    workload.label, t.mib_per_sec, t.objects_per_sec
                ),
                Err(e) => eprintln!(
                    "{:<22} {name:<7} FAILED: {e}\n{}",
                    workload.label,
                    target.log_tail(20)
                ),
            }
            result
        };
        let coffer_result = measure("Coffer", coffer.as_mut());
        let minio_result = measure("MinIO", minio.as_mut());
        rows.push(Row {
            label: workload.label.clone(),
            coffer: coffer_result,
            minio: minio_result,
        });
    }
    let memory = PeakRss {
        coffer_kib: coffer.peak_rss(),
        minio_kib: minio.peak_rss(),
    };

    println!("\n{}{}", report::table(&rows), report::memory_row(&memory));
    let failed = report::failures(&rows);
    if !failed.is_empty() {
        println!("Failed runs:\n{failed}");
    }
    if opts.write_report {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        let mut command = String::from("cargo run -p coffer-e2e --release -- bench");
        if opts.quick {
            command.push_str(" --quick");
        }
        if cluster {
            command.push_str(&format!(" --servers {}", opts.servers));
        }
        if opts.drives > 1 || cluster {
            command.push_str(&format!(" --drives {}", opts.drives));
        }
        if let Some(n) = opts.list_objects {
            command.push_str(&format!(" --list-objects {n}"));
        }
        if let Some(only) = &opts.only {
            command.push_str(&format!(" --only '{only}'"));
        }
        let heading = if cluster {
            format!(
                "Latest results: {}-server cluster, {} drive{} per server",
                opts.servers,
                opts.drives,
                if opts.drives == 1 { "" } else { "s" }
            )
        } else if opts.drives > 1 {
            format!(
                "Latest results: {} drives per server (erasure-coded)",
                opts.drives
            )
        } else {
            "Latest results".to_string()
        };
        // A partial run gets its own section instead of replacing the full run's table.
        let heading = match &opts.only {
            Some(only) => format!("{heading}: {only} only"),
            None => heading,
        };
        let setup = cluster.then(|| {
            let total = opts.servers * opts.drives;
            format!(
                "Coffer: {s} `coffer-server serve --topology … --node …` processes \
                 (`LocalCluster`), MinIO: {s} `minio server` processes given the same {total} \
                 endpoints `http://127.0.0.1:PORT_i/…/node_i/d_j` (one pool, one erasure set); \
                 {d} drive folder{plural} per process on the same filesystem; parity \
                 {p} on both sides ({k}+{p}: Coffer topology `parity: {p}`, MinIO \
                 `MINIO_STORAGE_CLASS_STANDARD=EC:{p}`); warp spreads requests over all \
                 {s} endpoints of a side",
                s = opts.servers,
                d = opts.drives,
                plural = if opts.drives == 1 { "" } else { "s" },
                p = CLUSTER_PARITY,
                k = total - CLUSTER_PARITY,
            )
        });
        let tools = format!(
            "warp {}, MinIO {} ({}), coffer-server from this tree",
            WARP.version, MINIO.version, MINIO.module
        );
        let example_host = if cluster {
            "127.0.0.1:PORT1,…,127.0.0.1:PORT4"
        } else {
            "127.0.0.1:PORT"
        };
        let example = workloads
            .first()
            .map(|w| warp::command_line(w, example_host))
            .unwrap_or_default();
        report::write_markdown(
            &path,
            &heading,
            &report::Context {
                machine: &machine,
                date: &today(),
                command: &command,
                tools: &tools,
                warp_example: &example,
                setup: setup.as_deref(),
                memory: Some(&memory),
            },
            &rows,
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The coffer-server binary, rebuilt first under `cargo run` so nobody runs a
/// stale one.
pub fn fresh_coffer_binary() -> Result<std::path::PathBuf> {
    build_coffer_server()?;
    crate::server::coffer_binary()
}

/// Under `cargo run`, rebuilds coffer-server first so the benchmark never
/// measures a stale binary. (`cargo run` holds no build lock while the
/// program runs.)
fn build_coffer_server() -> Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let status = Command::new(cargo)
        // `--bin` at the workspace root: the workspace's one feature set (see Cargo.toml).
        .args(["build", "--release", "--bin", "coffer-server"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build --release --bin coffer-server` failed with {status}");
    }
    Ok(())
}

/// Today's UTC date as YYYY-MM-DD (from `date`, to stay free of a time crate).
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
