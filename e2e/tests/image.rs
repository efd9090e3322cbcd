//! The container images `coffer-e2e image build` writes: what is inside them is enough to run
//! the binaries as their non-root user with nothing of the host (a root of their own,
//! entered with `unshare --root`, as a runtime does), they carry the OCI labels and CA
//! certificates, the same binaries give the same digests, and an image missing a library
//! does not start. Needs root (entering a root folder).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use aws_sdk_s3::primitives::ByteStream;
use coffer_e2e::image::{self, Image, ImageSpec, UID};
use coffer_operator::images::{REPOSITORY, VERSION};

fn build(spec: ImageSpec, out: &Path) -> (image::BuiltImage, Image) {
    let built = image::build(&spec, out).unwrap_or_else(|e| panic!("image build: {e:#}"));
    let loaded = image::load(&built.archive).unwrap_or_else(|e| panic!("image load: {e:#}"));
    (built, loaded)
}

fn server_spec() -> ImageSpec {
    let binary = coffer_e2e::server::coffer_binary().unwrap_or_else(|e| panic!("{e:#}"));
    ImageSpec::server(binary, REPOSITORY)
}

fn operator_spec() -> ImageSpec {
    let binary =
        coffer_e2e::server::workspace_binary("coffer-operator").unwrap_or_else(|e| panic!("{e:#}"));
    ImageSpec::operator(binary, REPOSITORY)
}

/// `unshare --root=ROOT --wd=WD --setuid U --setgid G -- ARGV` (needs root).
fn in_image(root: &Path, wd: &str, uid: u32, gid: u32, argv: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.arg(format!("--root={}", root.display()))
        .arg(format!("--wd={wd}"))
        .args([
            "--setuid",
            &uid.to_string(),
            "--setgid",
            &gid.to_string(),
            "--",
        ])
        .args(argv)
        .env_clear();
    c
}

fn assert_root() {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "these tests enter an image's root folder, which needs root"
    );
}

#[test]
fn both_images_carry_their_version_user_labels_and_certificates() {
    let out = tempfile::tempdir().unwrap();
    for (spec, name) in [
        (server_spec(), "coffer-server"),
        (operator_spec(), "coffer-operator"),
    ] {
        let (built, image) = build(spec, out.path());
        assert_eq!(built.reference, format!("{REPOSITORY}/{name}:{VERSION}"));
        assert_eq!(image.reference, built.reference);
        assert!(built.digest.starts_with("sha256:"), "{}", built.digest);
        assert_eq!(
            image.labels["org.opencontainers.image.version"], VERSION,
            "{name}"
        );
        assert!(image.labels["org.opencontainers.image.source"].starts_with("https://"));
        assert_eq!(image.config.user.as_deref(), Some("65532:65532"));
        assert_eq!(
            image.config.entrypoint,
            [format!("/usr/local/bin/{name}")],
            "{name}"
        );
        let root = out.path().join(format!("{name}-root"));
        image.unpack(&root).unwrap();
        assert_eq!(image.user_ids(&root).unwrap(), (UID, UID));
        let ca = std::fs::read_to_string(root.join(image::CA_BUNDLE)).unwrap();
        assert!(
            ca.matches("BEGIN CERTIFICATE").count() > 10,
            "{name}: the CA bundle holds the system's roots"
        );
        assert!(image
            .config
            .env
            .iter()
            .any(|(k, v)| k == "SSL_CERT_FILE" && root.join(v.trim_start_matches('/')).is_file()));
    }
}

#[test]
fn the_same_binaries_give_the_same_image_digests() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (first, _) = build(operator_spec(), a.path());
    let (second, _) = build(operator_spec(), b.path());
    assert_eq!(first.digest, second.digest);
    assert_eq!(
        std::fs::read(&first.archive).unwrap(),
        std::fs::read(&second.archive).unwrap()
    );
}

#[test]
fn each_image_runs_its_binary_as_its_user_with_nothing_of_the_host() {
    assert_root();
    let out = tempfile::tempdir().unwrap();
    for spec in [server_spec(), operator_spec()] {
        let name = spec.name.clone();
        let (_, image) = build(spec, out.path());
        let root = out.path().join(format!("{name}-root"));
        image.unpack(&root).unwrap();
        let entry = image.config.entrypoint[0].clone();
        let run = in_image(&root, "/", UID, UID, &[&entry, "--version"])
            .output()
            .expect("running unshare");
        assert!(
            run.status.success(),
            "{name} --version inside its image: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            String::from_utf8_lossy(&run.stdout).contains(VERSION),
            "{}",
            String::from_utf8_lossy(&run.stdout)
        );
    }
}

#[test]
fn an_image_missing_a_library_does_not_start() {
    assert_root();
    let out = tempfile::tempdir().unwrap();
    let (_, image) = build(server_spec(), out.path());
    let root = out.path().join("root");
    image.unpack(&root).unwrap();
    let binary = coffer_e2e::server::coffer_binary().unwrap();
    let libs = image::shared_libraries(&binary).unwrap();
    let rocksdb = libs
        .iter()
        .find(|l| l.to_string_lossy().contains("librocksdb"))
        .expect("coffer-server links Debian's RocksDB");
    std::fs::remove_file(root.join(rocksdb.strip_prefix("/").unwrap())).unwrap();
    let run = in_image(
        &root,
        "/",
        UID,
        UID,
        &["/usr/local/bin/coffer-server", "--version"],
    )
    .output()
    .unwrap();
    assert!(!run.status.success(), "started without librocksdb");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("librocksdb"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_image_serves_s3_from_its_data_folder() {
    assert_root();
    let out = tempfile::tempdir().unwrap();
    let (_, image) = build(server_spec(), out.path());
    let root = out.path().join("root");
    image.unpack(&root).unwrap();
    // The image's own command, on a free loopback port instead of 0.0.0.0:9000.
    let mut argv: Vec<String> = image.config.entrypoint.clone();
    argv.extend(image.config.cmd.iter().cloned());
    let at = argv.iter().position(|a| a == "--address").unwrap();
    argv[at + 1] = "127.0.0.1:0".into();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let wd = image.config.working_dir.clone().unwrap();
    let mut child = in_image(&root, &wd, UID, UID, &argv)
        .envs(image.config.env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = common::KillOnDrop(child);
    let (endpoint, user, password) = common::banner(stdout, Duration::from_secs(30));
    let s3 = common::s3_client(&endpoint, &user, &password);
    s3.create_bucket().bucket("photos").send().await.unwrap();
    s3.put_object()
        .bucket("photos")
        .key("a.txt")
        .body(ByteStream::from_static(b"inside the image"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("photos")
        .key("a.txt")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(&got[..], b"inside the image");
    // Written by the image's user into the image's /data.
    let entries: Vec<_> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert!(!entries.is_empty(), "the drive is the image's /data");
    for e in entries {
        let owner = std::os::unix::fs::MetadataExt::uid(&e.metadata().unwrap());
        assert_eq!(owner, UID, "{}", e.path().display());
    }
}
