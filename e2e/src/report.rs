//! The benchmark's report: the comparison table printed to the terminal and
//! `e2e/BENCHMARKS.md` (how to run, the machine, the command, the table).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::warp::Throughput;

/// One workload measured against both servers; a failed run keeps its error.
pub struct Row {
    pub label: String,
    pub coffer: Result<Throughput, String>,
    pub minio: Result<Throughput, String>,
}

/// What the numbers were measured on.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// The 1-minute load average when the benchmark started: other work on
    /// the machine skews the numbers.
    pub load_at_start: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_else(|| "unknown".into())
        };
        let mem_kib: f64 = field(&meminfo, "MemTotal")
            .trim_end_matches(" kB")
            .parse()
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: field(&cpuinfo, "model name"),
            memory_gib: mem_kib / (1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            load_at_start: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// Everything the Markdown report shows besides the table.
pub struct Context<'a> {
    pub machine: &'a Machine,
    pub date: &'a str,
    pub command: &'a str,
    pub tools: &'a str,
    pub warp_example: &'a str,
    /// What ran on each side (processes, drives, parity), when more than the heading says.
    pub setup: Option<&'a str>,
    /// Peak memory of every server process, as the table's last row.
    pub memory: Option<&'a PeakRss>,
}

/// Peak resident set size (`VmHWM`, KiB) of each server process at the end of the run;
/// `None` for a process that was gone by then.
pub struct PeakRss {
    pub coffer_kib: Vec<Option<u64>>,
    pub minio_kib: Vec<Option<u64>>,
}

fn rss_cell(kib: &[Option<u64>]) -> String {
    kib.iter()
        .map(|k| k.map_or("gone".into(), |k| format!("{:.0}", k as f64 / 1024.0)))
        .collect::<Vec<_>>()
        .join(" / ")
        + " MiB"
}

/// The peak-RSS table row: each process, and the ratio of the totals.
pub fn memory_row(rss: &PeakRss) -> String {
    let total = |v: &[Option<u64>]| v.iter().map(|k| k.unwrap_or(0)).sum::<u64>();
    let (c, m) = (total(&rss.coffer_kib), total(&rss.minio_kib));
    let ratio = if m > 0 && c > 0 {
        format!("{:.2}", c as f64 / m as f64)
    } else {
        "–".into()
    };
    let label = if rss.coffer_kib.len() > 1 {
        "peak RSS per server process (VmHWM; ratio of the sums)"
    } else {
        "peak RSS (VmHWM)"
    };
    format!(
        "| {label} | {} | {} | {ratio} |\n",
        rss_cell(&rss.coffer_kib),
        rss_cell(&rss.minio_kib)
    )
}

fn cell(result: &Result<Throughput, String>, is_list: bool) -> String {
    match result {
        Ok(t) if is_list => format!("{:.0} obj/s", t.objects_per_sec),
        Ok(t) if t.objects_per_sec < 100.0 => {
            format!("{:.1} MiB/s, {:.1} obj/s", t.mib_per_sec, t.objects_per_sec)
        }
        Ok(t) => format!("{:.1} MiB/s, {:.0} obj/s", t.mib_per_sec, t.objects_per_sec),
        Err(_) => "failed".into(),
    }
}

fn ratio(row: &Row) -> String {
    match (&row.coffer, &row.minio) {
        // Objects are of one size per workload, so the ratio of objects/s
        // equals the ratio of MiB/s, and it also covers LIST.
        (Ok(c), Ok(m)) if m.objects_per_sec > 0.0 => {
            format!("{:.2}", c.objects_per_sec / m.objects_per_sec)
        }
        _ => "–".into(),
    }
}

/// The comparison as a Markdown table (readable in a terminal as well).
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| workload | Coffer | MinIO | ratio Coffer/MinIO |\n|---|---:|---:|---:|\n");
    for row in rows {
        let is_list = row.label.starts_with("LIST");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.label,
            cell(&row.coffer, is_list),
            cell(&row.minio, is_list),
            ratio(row)
        );
    }
    out
}

/// Failed runs with their messages, for under the table.
pub fn failures(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        for (server, result) in [("Coffer", &row.coffer), ("MinIO", &row.minio)] {
            if let Err(e) = result {
                let first = e.lines().next().unwrap_or_default();
                // warp's own reason (`<ERROR> download error: …`) comes after its JSON dump.
                match e.lines().find(|l| l.contains("<ERROR>")) {
                    Some(reason) => {
                        let _ = writeln!(
                            out,
                            "- {} on {server}: {first} {}",
                            row.label,
                            reason.trim()
                        );
                    }
                    None => {
                        let _ = writeln!(out, "- {} on {server}: {first}", row.label);
                    }
                }
            }
        }
    }
    out
}

const HOW_TO_RUN: &str = "# Benchmarks

System benchmarks of `coffer-server` against MinIO, run by the `coffer-e2e` harness (`e2e/`).
They are never part of `cargo test`.

## The e2e crate

- `tests/compat.rs` — client-compatibility tests, part of `cargo test --release --workspace`.
  Each test starts a release `coffer-server` on a loopback port and runs one unmodified client
  script from `compat/` (aws CLI, boto3, rclone, s3cmd) that compares bytes end to end.
  Install the clients once with `e2e/compat/install.sh`; build the server first
  (`cargo build --release -p coffer-server`: the tests refuse a missing or stale binary).
  A script also runs by hand against any S3 endpoint: export `S3_ENDPOINT`,
  `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `COMPAT_WORKDIR` and call it.
- `src/` — the `coffer-e2e` binary: `coffer-e2e bench` (below).

## How to run the benchmark

```
cargo run -p coffer-e2e --release -- bench            # ~10 minutes
cargo run -p coffer-e2e --release -- bench --quick    # ~5 minutes, to check the setup
cargo run -p coffer-e2e --release -- bench --servers 4 --drives 2   # clusters, ~25 minutes
cargo run -p coffer-e2e --release -- tools            # only build warp and MinIO, print their paths
```

`bench` rebuilds `coffer-server` (release) first. It needs the Go toolchain (`go` on PATH) and
the Go module proxy the first time: it builds [warp](https://github.com/minio/warp) and the
MinIO server at the versions pinned in `e2e/src/go_tools.rs` into
`$XDG_CACHE_HOME/coffer-e2e/go` (default `~/.cache/coffer-e2e/go`) and reuses them afterwards.
MinIO takes 5–15 minutes to build on 2 cores.

Both servers run at the same time on 127.0.0.1 (one drive each, in fresh folders under the
system temp folder or `--scratch DIR`, so on the same filesystem) with the same root
credentials; every workload runs against Coffer, then against MinIO, with the same warp flags
(`--concurrent 16`; 20 s windows, 40 s for 64 MiB objects; `--quick`: 5 s and 30 s, fewer
objects). Traffic never leaves the loopback interface. Each run rewrites its own section
below (by heading: drive layout, cluster or not) and keeps the others; `--no-write` only
prints the table. The last row is the peak resident memory (`VmHWM` from `/proc/PID/status`)
of every server process at the end of the run.

With `--servers N` (N > 1) each side is a cluster on loopback: Coffer as N `coffer-server`
processes joined by a generated topology (`coffer_e2e::cluster::LocalCluster`, as
`coffer-e2e local-cluster`), MinIO as N `minio server` processes given the same list of
N × `--drives` endpoints (distributed mode, one erasure set). Both use parity 2 (EC:2), and warp
sends its requests to all N endpoints of a side (`--host h1:p1,h2:p2,…`). All 2N servers and
warp share the machine's CPUs, so on a small machine this measures CPU per request more than
scaling.

The ratio is Coffer's objects/s over MinIO's (objects have one size per workload, so it is
also the ratio of MiB/s); above 1 means Coffer is faster. warp runs on the same machine and
competes with the server for CPU, so compare ratios rather than absolute numbers, and do not
run anything else (builds!) at the same time.
";

/// Writes the report to `path`: the how-to, then this run's section (headed `heading`), while
/// keeping every other `## ` section already in the file (other drive layouts, criterion
/// micro-benchmarks).
pub fn write_markdown(path: &Path, heading: &str, ctx: &Context, rows: &[Row]) -> Result<()> {
    let m = ctx.machine;
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut kept = String::new();
    for section in old.split("\n## ").skip(1) {
        let title = section.lines().next().unwrap_or("");
        // Sections of the fixed preamble are written anew, not kept.
        let preamble = HOW_TO_RUN.contains(&format!("## {title}\n"));
        if title != heading && !preamble {
            kept.push_str("\n## ");
            kept.push_str(section.trim_end());
            kept.push('\n');
        }
    }
    let mut doc = String::from(HOW_TO_RUN);
    let _ = write!(
        doc,
        "\n## {heading}\n\n\
         - Date: {}\n\
         - Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}; load average {} at the start\n\
         - Command: `{}`\n\
         - Tools: {}\n\
         {}\
         - Each workload: `{}`\n\n{}{}",
        ctx.date,
        m.cpus,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.load_at_start,
        ctx.command,
        ctx.tools,
        ctx.setup
            .map(|s| format!("- Setup: {s}\n"))
            .unwrap_or_default(),
        ctx.warp_example,
        table(rows),
        ctx.memory.map(memory_row).unwrap_or_default()
    );
    let failed = failures(rows);
    if !failed.is_empty() {
        let _ = write!(doc, "\nFailed runs:\n\n{failed}");
    }
    doc.push_str(&kept);
    std::fs::write(path, doc)?;
    Ok(())
}
