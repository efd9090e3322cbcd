//! Client compatibility: each test starts a real coffer-server on a loopback
//! port with fixed root credentials and runs one unmodified S3 client against
//! it through a script in `e2e/compat/` (aws CLI, boto3, boto3's presigned POST
//! forms, rclone, s3cmd). The
//! scripts compare bytes end to end and exit non-zero on any mismatch; the
//! clients themselves come from `e2e/compat/install.sh`.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use coffer_e2e::server::{self, Credentials, ServerProcess};

/// Upper bound for one script, enforced with coreutils `timeout`.
const SCRIPT_TIMEOUT_SECS: u32 = 300;

fn run_client(script: &str) {
    let binary = server::coffer_binary().unwrap_or_else(|e| panic!("{e:#}"));
    let creds = Credentials::default();
    let server = ServerProcess::start_coffer(&binary, &creds, &std::env::temp_dir(), 1)
        .unwrap_or_else(|e| panic!("starting coffer-server: {e:#}"));
    let work = tempfile::tempdir().expect("a temporary folder for the client");
    let script_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("compat")
        .join(script);
    let interpreter = if script.ends_with(".py") {
        "python3"
    } else {
        "bash"
    };

    // stdout and stderr share one file so the output reads in order.
    let output_path = work.path().join("output.txt");
    let output = File::create(&output_path).expect("creating the output file");
    let status = Command::new("timeout")
        .args([
            "--kill-after=10",
            &SCRIPT_TIMEOUT_SECS.to_string(),
            interpreter,
        ])
        .arg(&script_path)
        .env("S3_ENDPOINT", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", &creds.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_key)
        .env("AWS_REGION", "us-east-1")
        .env("COMPAT_WORKDIR", work.path())
        // Keep the developer's own client configuration and proxies out.
        .env("AWS_CONFIG_FILE", work.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            work.path().join("aws-credentials"),
        )
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("cloning the output file"))
        .stderr(output)
        .status()
        .unwrap_or_else(|e| panic!("running {script} (is coreutils `timeout` installed?): {e}"));

    if !status.success() {
        let text = std::fs::read_to_string(&output_path).unwrap_or_default();
        let why = if status.code() == Some(124) {
            format!("timed out after {SCRIPT_TIMEOUT_SECS}s")
        } else {
            format!("failed with {status}")
        };
        panic!(
            "e2e/compat/{script} {why} against {}\n--- script output ---\n{text}\n{}",
            server.endpoint(),
            server.log_tail(60)
        );
    }
}

#[test]
fn aws_cli() {
    run_client("aws.sh");
}

#[test]
fn boto3() {
    run_client("boto3_client.py");
}

#[test]
fn rclone() {
    run_client("rclone.sh");
}

#[test]
fn s3cmd() {
    run_client("s3cmd.sh");
}

#[test]
fn boto3_presigned_post() {
    run_client("boto3_post.py");
}
