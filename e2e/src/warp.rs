//! The warp workloads of the benchmark and the numbers taken from them: one
//! `warp` run per workload and server, its `--json` summary reduced to
//! MiB/s and objects/s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::server::Credentials;

/// Requests in flight for every workload.
pub const CONCURRENCY: u32 = 16;

/// One warp invocation, e.g. `put --obj.size 1MiB`.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Row label in the report, e.g. `PUT 1 MiB`.
    pub label: String,
    /// The warp subcommand and its workload flags.
    pub args: Vec<String>,
    /// How long warp measures.
    pub duration: Duration,
}

/// Average throughput of one workload against one server.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub mib_per_sec: f64,
    pub objects_per_sec: f64,
}

/// The benchmark's workloads: PUT and GET at three object sizes, then LIST
/// over a bucket of `list_objects` objects (`quick`: shorter and fewer objects).
pub fn workloads(quick: bool, list_objects: u32) -> Vec<Workload> {
    let duration = Duration::from_secs(if quick { 5 } else { 20 });
    // 16 concurrent 64 MiB uploads take seconds each on a small machine;
    // warp only counts requests that complete inside the window.
    let long = Duration::from_secs(if quick { 30 } else { 40 });
    // GET needs its objects uploaded first; the counts keep that step short.
    let sizes: [(&str, &str, u32, u32); 3] = [
        ("4KiB", "4 KiB", 2500, 500),
        ("1MiB", "1 MiB", 500, 100),
        ("64MiB", "64 MiB", 48, 16),
    ];
    let mut out = Vec::new();
    let window = |size: &str| if size == "64MiB" { long } else { duration };
    for (size, label, _, _) in sizes {
        out.push(Workload {
            label: format!("PUT {label}"),
            args: vec!["put".into(), "--obj.size".into(), size.into()],
            duration: window(size),
        });
    }
    for (size, label, objects, quick_objects) in sizes {
        let objects = if quick { quick_objects } else { objects };
        out.push(Workload {
            label: format!("GET {label}"),
            args: vec![
                "get".into(),
                "--obj.size".into(),
                size.into(),
                "--objects".into(),
                objects.to_string(),
            ],
            duration: window(size),
        });
    }
    out.push(Workload {
        label: format!("LIST {list_objects} objects"),
        args: vec![
            "list".into(),
            "--obj.size".into(),
            "1KiB".into(),
            "--objects".into(),
            list_objects.to_string(),
        ],
        duration,
    });
    out
}

/// The warp command line for `workload` against `host_port`, without the
/// secret (for the report).
pub fn command_line(workload: &Workload, host_port: &str) -> String {
    format!(
        "warp {} --host {host_port} --access-key … --secret-key … --concurrent {CONCURRENCY} --duration {}s --json",
        workload.args.join(" "),
        workload.duration.as_secs()
    )
}

/// Runs one workload against the server at `host_port` and returns its
/// average throughput. `scratch` receives warp's raw benchmark data.
pub fn run(
    warp: &Path,
    workload: &Workload,
    host_port: &str,
    creds: &Credentials,
    scratch: &Path,
) -> Result<Throughput> {
    let benchdata = scratch.join(format!("warp-{}", workload.label.replace(' ', "-")));
    // warp stops by itself after --duration; `timeout` bounds the upload of
    // GET/LIST objects before it (at least 50 objects/s, however slow the
    // machine) and any hang against a broken server.
    let objects: u64 = workload
        .args
        .iter()
        .skip_while(|a| *a != "--objects")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let limit = workload.duration.as_secs() + 300 + objects / 50;
    let output = Command::new("timeout")
        .args(["--kill-after=10", &limit.to_string()])
        .arg(warp)
        .args(&workload.args)
        .args(["--host", host_port])
        .args([
            "--access-key",
            &creds.access_key,
            "--secret-key",
            &creds.secret_key,
        ])
        .args(["--region", "us-east-1", "--bucket", "warp-benchmark"])
        .args(["--concurrent", &CONCURRENCY.to_string()])
        .args(["--duration", &format!("{}s", workload.duration.as_secs())])
        .arg("--benchdata")
        .arg(&benchdata)
        .args(["--json", "--no-color", "--quiet"])
        .stdin(Stdio::null())
        .output()
        .context("running warp")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "warp {} failed with {}:\n{}{}",
            workload.args.join(" "),
            output.status,
            tail(&stdout, 20),
            tail(&String::from_utf8_lossy(&output.stderr), 20)
        );
    }
    // The reason comes first so a one-line summary of the failure says it.
    parse_summary(&stdout, &workload.args[0])
        .map_err(|e| anyhow!("{e:#}\nwarp's output ended with:\n{}", tail(&stdout, 20)))
}

/// Reduces warp's `--json` aggregate to the operation the workload measures
/// (`put` → PUT, `get` → GET, `list` → LIST; warp also records the uploads it
/// prepares with). warp's `average_ops` already counts objects, so for LIST
/// it is the number of objects listed per second.
fn parse_summary(stdout: &str, subcommand: &str) -> Result<Throughput> {
    let start = stdout
        .find('{')
        .context("no JSON object in warp's output")?;
    let aggregate: Value = serde_json::Deserializer::from_str(&stdout[start..])
        .into_iter::<Value>()
        .next()
        .context("empty JSON")??;
    let wanted = subcommand.to_uppercase();
    let operation = aggregate["operations"]
        .as_array()
        .context("no operations in warp's summary")?
        .iter()
        .find(|op| op["type"].as_str() == Some(&wanted))
        .with_context(|| format!("no {wanted} operation in warp's summary"))?;
    let errors = operation["errors"].as_u64().unwrap_or(0);
    if errors > 0 {
        let first = &operation["first_errors"];
        bail!("{errors} {wanted} requests failed, first errors: {first}");
    }
    let throughput = &operation["throughput"];
    let bps = throughput["average_bps"].as_f64().unwrap_or(0.0);
    let objects = throughput["average_ops"]
        .as_f64()
        .context("no average_ops")?;
    if objects <= 0.0 {
        bail!("no {wanted} request completed within the measured time; use a longer --duration");
    }
    Ok(Throughput {
        mib_per_sec: bps / (1024.0 * 1024.0),
        objects_per_sec: objects,
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_picks_the_measured_operation() {
        let json = r#"progress noise
        {"type":"","mixed":false,"operations":[
          {"type":"PUT","errors":0,"objects_per_operation":1,
           "throughput":{"average_bps":1048576.0,"average_ops":10.0}},
          {"type":"LIST","errors":0,"objects_per_operation":100,
           "throughput":{"average_bps":0,"average_ops":250.0}},
          {"type":"GET","errors":0,"throughput":{"average_bps":0,"average_ops":0}}]}
        {"a second": "object"}"#;
        let list = parse_summary(json, "list").unwrap();
        assert_eq!(list.objects_per_sec, 250.0);
        let put = parse_summary(json, "put").unwrap();
        assert_eq!(put.mib_per_sec, 1.0);
        // No completed request is an error, not a zero in the table.
        assert!(parse_summary(json, "get").is_err());
        assert!(parse_summary(json, "delete").is_err());
    }
}
