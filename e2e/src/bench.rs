//! `coffer-e2e bench`: builds the peer tools, starts coffer-server and MinIO
//! side by side on loopback, runs every warp workload against each in turn
//! and reports the comparison.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::go_tools::{MINIO, WARP};
use crate::report::{self, Machine, Row};
use crate::server::{self, Credentials, ServerProcess};
use crate::warp;

pub struct BenchOptions {
    pub quick: bool,
    /// Parent folder of both servers' drives.
    pub scratch: PathBuf,
    /// Rewrite e2e/BENCHMARKS.md with the results.
    pub write_report: bool,
    /// Drive folders per server (erasure coding over them when more than one).
    pub drives: usize,
}

pub fn run(opts: &BenchOptions) -> Result<()> {
    build_coffer_server()?;
    // Before the servers start, so the load is the machine's, not ours.
    let machine = Machine::detect();
    let coffer_bin = server::coffer_binary()?;
    let warp_bin = WARP.ensure_built()?;
    let minio_bin = MINIO.ensure_built()?;

    let creds = Credentials::default();
    let mut coffer = ServerProcess::start_coffer(&coffer_bin, &creds, &opts.scratch, opts.drives)
        .context("starting coffer-server")?;
    let mut minio = ServerProcess::start_minio(&minio_bin, &creds, &opts.scratch, opts.drives)
        .context("starting MinIO")?;
    let warp_data = tempfile::Builder::new()
        .prefix("coffer-e2e-warp-")
        .tempdir_in(&opts.scratch)?;
    eprintln!(
        "coffer-server at {}, MinIO at {}",
        coffer.endpoint(),
        minio.endpoint()
    );

    let workloads = warp::workloads(opts.quick);
    let mut rows = Vec::new();
    for workload in &workloads {
        let measure = |name: &str, target: &mut ServerProcess| {
            eprintln!("{:<22} {name:<7} …", workload.label);
            // A server that died (or was killed from outside) fails the row
            // with that reason instead of a connection error from warp.
            let result = target
                .ensure_running()
                .and_then(|()| {
                    let host = target.host_port();
                    warp::run(&warp_bin, workload, host, &creds, warp_data.path())
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
        let coffer_result = measure("Coffer", &mut coffer);
        let minio_result = measure("MinIO", &mut minio);
        rows.push(Row {
            label: workload.label.clone(),
            coffer: coffer_result,
            minio: minio_result,
        });
    }

    println!("\n{}", report::table(&rows));
    let failed = report::failures(&rows);
    if !failed.is_empty() {
        println!("Failed runs:\n{failed}");
    }
    if opts.write_report {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        let command = format!(
            "cargo run -p coffer-e2e --release -- bench{}{}",
            if opts.quick { " --quick" } else { "" },
            if opts.drives > 1 {
                format!(" --drives {}", opts.drives)
            } else {
                String::new()
            }
        );
        let heading = if opts.drives > 1 {
            format!(
                "Latest results: {} drives per server (erasure-coded)",
                opts.drives
            )
        } else {
            "Latest results".to_string()
        };
        let tools = format!(
            "warp {}, MinIO {} ({}), coffer-server from this tree",
            WARP.version, MINIO.version, MINIO.module
        );
        let example = workloads
            .first()
            .map(|w| warp::command_line(w, "127.0.0.1:PORT"))
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
        .args(["build", "--release", "-p", "coffer-server"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build --release -p coffer-server` failed with {status}");
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
