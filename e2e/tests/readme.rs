//! The README's two commands keep working: it opens with `./run.sh` (install what the build
//! needs, build, serve ./data) and `./test.sh` (every test, what CI runs), and `./run.sh`
//! with a drive folder really serves S3 with the credential it prints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn executable(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(repo().join(path)).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[test]
fn the_readme_opens_with_the_run_and_the_test_command() {
    let readme = read("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a first ```sh block in the README");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands, ["./run.sh", "./test.sh"], "{block}");
    let before = &readme[..readme.find("```sh").unwrap()];
    assert!(
        before.lines().filter(|l| l.starts_with("```")).count() == 0,
        "the two commands are the README's first block"
    );
    assert!(executable("run.sh") && executable("test.sh"));
    assert!(
        read(".ci/run").contains("exec ./test.sh"),
        "CI runs the test command"
    );
    // Both install through the same step: a fresh machine can run the first without the second.
    assert!(read("run.sh").contains("scripts/prereqs.sh\" build"));
    assert!(read("test.sh").contains("scripts/prereqs.sh test"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_command_serves_a_folder_with_the_credential_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    // As a user would, from another folder, with the server's own arguments.
    let mut child = Command::new(repo().join("run.sh"))
        .args(["serve", "data", "--address", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("COFFER_ROOT_USER")
        .env_remove("COFFER_ROOT_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting ./run.sh");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut endpoint, mut user, mut password) = (None, None, None);
    while endpoint.is_none() || user.is_none() || password.is_none() {
        // The build is done by the time tests run; the bound is for a slow start.
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("./run.sh prints the endpoint and the generated credential");
        if let Some(v) = line.strip_prefix("endpoint=") {
            endpoint = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("COFFER_ROOT_USER=") {
            user = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("COFFER_ROOT_PASSWORD=") {
            password = Some(v.to_string());
        }
    }
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            user.unwrap(),
            password.unwrap(),
            None,
            None,
            "readme-test",
        ))
        .endpoint_url(endpoint.unwrap())
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    s3.create_bucket().bucket("notes").send().await.unwrap();
    s3.put_object()
        .bucket("notes")
        .key("hello.txt")
        .body(ByteStream::from_static(b"served by ./run.sh"))
        .send()
        .await
        .unwrap();
    let listed = s3.list_objects_v2().bucket("notes").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    assert!(
        dir.path().join("data").is_dir(),
        "the drive folder is relative to where ./run.sh was started"
    );
}
