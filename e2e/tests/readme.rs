//! The README's two commands keep working: it opens with `./run.sh` (install what the build
//! needs, build, serve ./data) and `./test.sh` (every test, what CI runs), both install
//! through the same step, and the test command runs `scripts/check-run.sh`, which starts
//! `./run.sh` as a user would and uses the S3 endpoint and credential it prints (from the
//! shell: inside `cargo test` the inner cargo would rebuild, see that script).

use std::path::{Path, PathBuf};

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
    assert!(
        read("test.sh").contains("scripts/check-run.sh"),
        "the test command runs the first command"
    );
    assert!(executable("scripts/check-run.sh") && executable("scripts/prereqs.sh"));
}
