//! Scoped access keys through the real server: keys made with the admin API, used with the
//! AWS SDK. An isolation matrix (key mode × own / other / missing bucket × operation family),
//! ListBuckets filtering, disable / enable / rotate / delete taking effect at once, expiry,
//! presigned URLs obeying the key's scope, and secrets never stored or logged in plain text.

mod common;

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use coffer_server::admin::AdminClient;
use common::{put_bytes, s3_error, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use http::Method;
use serde_json::{json, Value};

fn admin(server: &TestServer) -> AdminClient {
    AdminClient {
        endpoint: server.endpoint.parse().expect("the test endpoint is a URI"),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        region: REGION.into(),
        ca_cert: None,
    }
}

/// Creates a key through the admin API; returns (access key, secret).
async fn create_key(server: &TestServer, body: Value) -> (String, String) {
    let v = admin(server)
        .call_with_body(Method::POST, "keys", Some(&body))
        .await
        .expect("creating a key succeeds");
    (
        v["accessKey"].as_str().expect("an access key").to_string(),
        v["secretKey"].as_str().expect("a secret, once").to_string(),
    )
}

fn key_client(server: &TestServer, access_key: &str, secret: &str) -> aws_sdk_s3::Client {
    let creds = Credentials::new(access_key, secret, None, None, "scoped-key");
    server.client_with(|b| b.credentials_provider(creds))
}

/// Success, or the HTTP status and S3 code of a failure.
fn outcome<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E, HttpResponse>>,
) -> Result<(), (u16, String)> {
    r.map(|_| ()).map_err(|e| s3_error(&e))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    HeadBucket,
    ListObjects,
    Put,
    Get,
    Head,
    Delete,
    MultipartCreate,
    /// Copy into the target bucket from the key's own bucket.
    CopyInto,
    /// Copy out of the target bucket into the key's own bucket.
    CopyOutOf,
}

const FAMILIES: [Family; 9] = [
    Family::HeadBucket,
    Family::ListObjects,
    Family::Put,
    Family::Get,
    Family::Head,
    Family::Delete,
    Family::MultipartCreate,
    Family::CopyInto,
    Family::CopyOutOf,
];

async fn attempt(c: &aws_sdk_s3::Client, f: Family, bucket: &str) -> Result<(), (u16, String)> {
    match f {
        Family::HeadBucket => outcome(c.head_bucket().bucket(bucket).send().await),
        Family::ListObjects => outcome(c.list_objects_v2().bucket(bucket).send().await),
        Family::Put => outcome(
            c.put_object()
                .bucket(bucket)
                .key("scratch")
                .body(ByteStream::from_static(b"written by a key"))
                .send()
                .await,
        ),
        Family::Get => outcome(c.get_object().bucket(bucket).key("obj").send().await),
        Family::Head => outcome(c.head_object().bucket(bucket).key("obj").send().await),
        Family::Delete => outcome(c.delete_object().bucket(bucket).key("scratch").send().await),
        Family::MultipartCreate => {
            let r = c
                .create_multipart_upload()
                .bucket(bucket)
                .key("mp")
                .send()
                .await;
            if let Ok(out) = &r {
                c.abort_multipart_upload()
                    .bucket(bucket)
                    .key("mp")
                    .upload_id(out.upload_id().unwrap_or_default())
                    .send()
                    .await
                    .expect("a key that may create an upload may abort it");
            }
            outcome(r)
        }
        Family::CopyInto => outcome(
            c.copy_object()
                .bucket(bucket)
                .key("copied")
                .copy_source("own/obj")
                .send()
                .await,
        ),
        Family::CopyOutOf => outcome(
            c.copy_object()
                .bucket("own")
                .key("copied")
                .copy_source(format!("{bucket}/obj"))
                .send()
                .await,
        ),
    }
}

/// Whether a key with `mode` on bucket `own` may do `f` on `bucket`.
fn allowed(mode: &str, f: Family, bucket: &str) -> bool {
    if bucket != "own" {
        return false;
    }
    let (read, write) = match mode {
        "ReadWrite" => (true, true),
        "ReadOnly" => (true, false),
        _ => (false, true),
    };
    match f {
        Family::HeadBucket => true,
        Family::ListObjects | Family::Get | Family::Head => read,
        Family::Put | Family::Delete | Family::MultipartCreate => write,
        Family::CopyInto | Family::CopyOutOf => read && write,
    }
}

#[tokio::test]
async fn isolation_matrix_of_modes_buckets_and_operations() {
    let server = TestServer::start();
    let root = server.client();
    for b in ["own", "other"] {
        root.create_bucket().bucket(b).send().await.unwrap();
        put_bytes(&root, b, "obj", b"object content".to_vec()).await;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for mode in ["ReadWrite", "ReadOnly", "WriteOnly"] {
        let (ak, sk) = create_key(
            &server,
            json!({ "buckets": [{ "name": "own", "mode": mode }] }),
        )
        .await;
        let c = key_client(&server, &ak, &sk);
        let listed = c.list_buckets().send().await.expect("every key may list");
        let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, ["own"], "{mode} key lists only its bucket");
        for bucket in ["own", "other", "missing"] {
            for f in FAMILIES {
                checked += 1;
                let got = attempt(&c, f, bucket).await;
                let want = allowed(mode, f, bucket);
                let head = matches!(f, Family::HeadBucket | Family::Head);
                let ok = match &got {
                    Ok(()) => want,
                    // HEAD answers carry no body, so no S3 code either.
                    Err((403, code)) => !want && (head || code == "AccessDenied"),
                    Err(_) => false,
                };
                if !ok {
                    failures.push(format!(
                        "{mode} key, {f:?} on {bucket}: expected {}, got {got:?}",
                        if want { "success" } else { "403 AccessDenied" }
                    ));
                }
            }
        }
        // Bucket creation and deletion are root's alone, even for the key's own bucket.
        for b in ["own", "fresh"] {
            let r = outcome(c.delete_bucket().bucket(b).send().await);
            assert_eq!(r, Err((403, "AccessDenied".into())), "{mode} deletes {b}");
        }
        let r = outcome(c.create_bucket().bucket("fresh").send().await);
        assert_eq!(
            r,
            Err((403, "AccessDenied".into())),
            "{mode} creates a bucket"
        );
    }
    assert_eq!(checked, 3 * 3 * FAMILIES.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing a denied key tried reached the other bucket.
    let other = root.list_objects_v2().bucket("other").send().await.unwrap();
    let keys: Vec<&str> = other.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["obj"]);
}

#[tokio::test]
async fn a_key_with_several_buckets_lists_exactly_those() {
    let server = TestServer::start();
    let root = server.client();
    for b in ["alpha", "beta", "gamma"] {
        root.create_bucket().bucket(b).send().await.unwrap();
    }
    let (ak, sk) = create_key(
        &server,
        json!({ "buckets": [
            { "name": "gamma", "mode": "ReadOnly" },
            { "name": "alpha", "mode": "WriteOnly" },
            { "name": "not-yet-made", "mode": "ReadWrite" }
        ] }),
    )
    .await;
    let c = key_client(&server, &ak, &sk);
    let listed = c.list_buckets().send().await.unwrap();
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["alpha", "gamma"]);
    // A bucket in scope that does not exist is reported as such.
    let r = outcome(c.list_objects_v2().bucket("not-yet-made").send().await);
    assert_eq!(r, Err((404, "NoSuchBucket".into())));
}

#[tokio::test]
async fn disable_enable_rotate_and_delete_take_effect_at_once() {
    let server = TestServer::start();
    server.bucket("own").await;
    let (ak, sk) = create_key(
        &server,
        json!({ "buckets": [{ "name": "own", "mode": "ReadWrite" }], "description": "ci" }),
    )
    .await;
    let admin = admin(&server);
    let c = key_client(&server, &ak, &sk);
    c.list_objects_v2().bucket("own").send().await.unwrap();

    let v = admin
        .call(Method::POST, &format!("keys/{ak}/disable"))
        .await
        .unwrap();
    assert_eq!(v["enabled"], false);
    let r = outcome(c.list_objects_v2().bucket("own").send().await);
    assert_eq!(r, Err((403, "InvalidAccessKeyId".into())));
    // Idempotent: disabling twice is fine.
    admin
        .call(Method::POST, &format!("keys/{ak}/disable"))
        .await
        .unwrap();

    admin
        .call(Method::POST, &format!("keys/{ak}/enable"))
        .await
        .unwrap();
    c.list_objects_v2().bucket("own").send().await.unwrap();

    let v = admin
        .call(Method::POST, &format!("keys/{ak}/rotate"))
        .await
        .unwrap();
    let new_secret = v["secretKey"].as_str().unwrap().to_string();
    assert_ne!(new_secret, sk);
    let r = outcome(c.list_objects_v2().bucket("own").send().await);
    assert_eq!(r, Err((403, "SignatureDoesNotMatch".into())));
    let c = key_client(&server, &ak, &new_secret);
    c.list_objects_v2().bucket("own").send().await.unwrap();

    // Described and listed without any secret.
    let one = admin
        .call(Method::GET, &format!("keys/{ak}"))
        .await
        .unwrap();
    assert_eq!(one["description"], "ci");
    assert_eq!(one["buckets"][0]["mode"], "ReadWrite");
    let all = admin.call(Method::GET, "keys").await.unwrap();
    assert_eq!(all["keys"].as_array().unwrap().len(), 1);
    for text in [one.to_string(), all.to_string()] {
        assert!(!text.contains("secretKey") && !text.contains(&new_secret));
    }

    let v = admin
        .call(Method::DELETE, &format!("keys/{ak}"))
        .await
        .unwrap();
    assert_eq!(v["deleted"], true);
    let r = outcome(c.list_objects_v2().bucket("own").send().await);
    assert_eq!(r, Err((403, "InvalidAccessKeyId".into())));
    let v = admin
        .call(Method::DELETE, &format!("keys/{ak}"))
        .await
        .unwrap();
    assert_eq!(v["deleted"], false);
    assert!(admin
        .call(Method::GET, &format!("keys/{ak}"))
        .await
        .is_err());
}

#[tokio::test]
async fn expired_keys_are_refused_and_keys_survive_a_restart() {
    let mut server = TestServer::start();
    server.bucket("own").await;
    let (old, old_secret) = create_key(
        &server,
        json!({ "buckets": [{ "name": "own", "mode": "ReadWrite" }],
                "expiresAt": "2020-01-01T00:00:00Z" }),
    )
    .await;
    let r = outcome(
        key_client(&server, &old, &old_secret)
            .list_buckets()
            .send()
            .await,
    );
    assert_eq!(r, Err((403, "InvalidAccessKeyId".into())));

    let (ak, sk) = create_key(
        &server,
        json!({ "buckets": [{ "name": "own", "mode": "ReadOnly" }],
                "expiresAt": "2999-01-01T00:00:00Z",
                "accessKey": "fixed-key-id", "secretKey": "a-chosen-secret" }),
    )
    .await;
    assert_eq!(
        (ak.as_str(), sk.as_str()),
        ("fixed-key-id", "a-chosen-secret")
    );
    // Creating it again with the same id is an update, not an error.
    admin(&server)
        .call_with_body(
            Method::POST,
            "keys",
            Some(&json!({ "buckets": [{ "name": "own", "mode": "ReadOnly" }],
                          "accessKey": "fixed-key-id" })),
        )
        .await
        .unwrap();
    server.restart();
    let c = key_client(&server, &ak, &sk);
    c.list_objects_v2().bucket("own").send().await.unwrap();
    let r = outcome(
        key_client(&server, &old, &old_secret)
            .list_buckets()
            .send()
            .await,
    );
    assert_eq!(r, Err((403, "InvalidAccessKeyId".into())));
}

#[tokio::test]
async fn presigned_urls_obey_the_key_scope() {
    let server = TestServer::start();
    let root = server.bucket("own").await;
    put_bytes(&root, "own", "obj", b"readable".to_vec()).await;
    let (ak, sk) = create_key(
        &server,
        json!({ "buckets": [{ "name": "own", "mode": "ReadOnly" }] }),
    )
    .await;
    let c = key_client(&server, &ak, &sk);
    let cfg = || PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let http = reqwest::Client::new();

    let get = c
        .get_object()
        .bucket("own")
        .key("obj")
        .presigned(cfg())
        .await
        .unwrap();
    let resp = http.get(get.uri()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "readable");

    let put = c
        .put_object()
        .bucket("own")
        .key("sneaky")
        .presigned(cfg())
        .await
        .unwrap();
    let resp = http.put(put.uri()).body("nope").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("<Code>AccessDenied</Code>"));
    let r = outcome(root.head_object().bucket("own").key("sneaky").send().await);
    assert_eq!(r.map_err(|(s, _)| s), Err(404));
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn secrets_are_not_stored_or_logged_in_plain_text() {
    let server = TestServer::start();
    server.bucket("own").await;
    let (ak, sk) = create_key(
        &server,
        json!({ "buckets": [{ "name": "own", "mode": "ReadWrite" }] }),
    )
    .await;
    // The key works, so its record is on the drive.
    key_client(&server, &ak, &sk)
        .list_objects_v2()
        .bucket("own")
        .send()
        .await
        .unwrap();
    let mut files = Vec::new();
    files_under(&server.drive(), &mut files);
    let mut found_id = false;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(sk.len()).any(|w| w == sk.as_bytes()),
            "the secret is readable in {}",
            f.display()
        );
        found_id |= bytes.windows(ak.len()).any(|w| w == ak.as_bytes());
    }
    assert!(
        found_id,
        "the key record (by its id) is somewhere on the drive"
    );
    assert!(!server.log().contains(&sk), "the secret reached the log");
}

#[tokio::test]
async fn only_root_may_use_the_admin_api_and_bad_documents_are_refused() {
    let server = TestServer::start();
    server.bucket("own").await;
    let (ak, sk) = create_key(
        &server,
        json!({ "buckets": [{ "name": "own", "mode": "ReadWrite" }] }),
    )
    .await;
    let as_key = AdminClient {
        access_key: ak,
        secret_key: sk,
        ..admin(&server)
    };
    let err = as_key.call(Method::GET, "keys").await.unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    let admin = admin(&server);
    for bad in [
        json!({ "buckets": [] }),
        json!({ "buckets": [{ "name": "own", "mode": "Admin" }] }),
        json!({ "buckets": [{ "name": "Bad_Name", "mode": "ReadOnly" }] }),
        json!({ "buckets": [{ "name": "own", "mode": "ReadOnly" }], "expiresAt": "tomorrow" }),
        json!({ "buckets": [{ "name": "own", "mode": "ReadOnly" }], "accessKey": ACCESS_KEY }),
    ] {
        let r = admin.call_with_body(Method::POST, "keys", Some(&bad)).await;
        assert!(r.is_err(), "accepted {bad}");
    }
}

#[test]
fn the_cli_creates_and_lists_keys() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(server.bucket("own"));
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-server"))
            .args(["admin", "--json"])
            .args(args)
            .args(["--endpoint", &server.endpoint])
            .env("COFFER_ROOT_USER", ACCESS_KEY)
            .env("COFFER_ROOT_PASSWORD", SECRET_KEY)
            .output()
            .expect("the CLI runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("the CLI prints JSON with --json")
    };
    let made = cli(&["key", "create", "--bucket", "own:ReadOnly"]);
    let id = made["accessKey"].as_str().unwrap().to_string();
    assert!(made["secretKey"].as_str().is_some_and(|s| s.len() >= 8));
    let listed = cli(&["key", "list"]);
    assert_eq!(listed["keys"][0]["accessKey"], id.as_str());
    assert_eq!(listed["keys"][0]["buckets"][0]["mode"], "ReadOnly");
    assert!(listed["keys"][0].get("secretKey").is_none());
    let disabled = cli(&["key", "disable", &id]);
    assert_eq!(disabled["enabled"], false);
    assert_eq!(cli(&["key", "delete", &id])["deleted"], true);
}
