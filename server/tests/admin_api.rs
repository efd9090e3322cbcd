//! The admin API's bucket endpoints through the real server (idempotent create and delete,
//! list and describe with usage, forced deletion of a full bucket, JSON errors, root only),
//! the `admin` CLI (tables by default, JSON with `--json`), and the OpenAPI document matching
//! the endpoints the server serves.

mod common;

use std::collections::BTreeSet;

use coffer_server::admin::{AdminClient, PREFIX, ROUTES};
use common::{put_bytes, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
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

fn admin_path(name: &str) -> String {
    format!("{PREFIX}{name}")
}

#[tokio::test]
async fn buckets_are_created_described_listed_and_deleted_idempotently() {
    let server = TestServer::start();
    let admin = admin(&server);

    let first = server
        .raw("PUT", &admin_path("buckets/team-a"))
        .send()
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = server
        .raw("PUT", &admin_path("buckets/team-a"))
        .send()
        .await;
    assert_eq!(
        again.status,
        200,
        "creating twice succeeds: {}",
        again.text()
    );
    let created: Value = serde_json::from_slice(&again.body).expect("a JSON bucket");
    assert_eq!(created["name"], "team-a");
    assert_eq!(created["region"], REGION);
    assert_eq!(created["versioning"], "Unversioned");

    // S3 sees it, and usage counts what S3 puts there.
    let s3 = server.client();
    let heads = s3.head_bucket().bucket("team-a").send().await;
    assert!(heads.is_ok(), "{heads:?}");
    put_bytes(&s3, "team-a", "one", b"12345").await;
    put_bytes(&s3, "team-a", "dir/two", b"abc").await;

    let described = admin.call(Method::GET, "buckets/team-a").await.unwrap();
    assert_eq!(
        described["usage"],
        json!({"objects": 2, "bytes": 8, "complete": true})
    );
    assert!(described["created"]
        .as_str()
        .is_some_and(|c| c.contains('T')));

    admin.call(Method::PUT, "buckets/team-b").await.unwrap();
    let listed = admin.call(Method::GET, "buckets").await.unwrap();
    let names: Vec<&str> = listed["buckets"]
        .as_array()
        .expect("a bucket array")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["team-a", "team-b"]);

    // A non-empty bucket stays, with a JSON error saying why.
    let refused = server
        .raw("DELETE", &admin_path("buckets/team-a"))
        .send()
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    let err: Value = serde_json::from_slice(&refused.body).expect("a JSON error");
    assert_eq!(err["code"], "BucketNotEmpty");
    assert_eq!(err["BucketName"], "team-a");
    assert!(admin.call(Method::GET, "buckets/team-a").await.is_ok());

    // Deleting twice succeeds both times; then the bucket is gone for S3 and the admin API.
    for _ in 0..2 {
        let r = server
            .raw("DELETE", &admin_path("buckets/team-b"))
            .send()
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    assert_eq!(
        admin.call(Method::DELETE, "buckets/team-b").await.unwrap(),
        Value::Null
    );
    let missing = server
        .raw("GET", &admin_path("buckets/team-b"))
        .send()
        .await;
    assert_eq!(missing.status, 404);
    let err: Value = serde_json::from_slice(&missing.body).expect("a JSON error");
    assert_eq!(err["code"], "NoSuchBucket");
    let gone = s3.head_bucket().bucket("team-b").send().await;
    assert!(gone.is_err(), "S3 still sees the deleted bucket");
}

#[tokio::test]
async fn invalid_bucket_names_are_refused() {
    let server = TestServer::start();
    for bad in ["ab", "Upper", "under_score", "-dash"] {
        let r = server
            .raw("PUT", &admin_path(&format!("buckets/{bad}")))
            .send()
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        let err: Value = serde_json::from_slice(&r.body).expect("a JSON error");
        assert_eq!(err["code"], "InvalidBucketName");
    }
    let listed = admin(&server).call(Method::GET, "buckets").await.unwrap();
    assert_eq!(listed["buckets"], json!([]));
}

#[tokio::test]
async fn only_root_may_manage_buckets() {
    let server = TestServer::start();
    let admin = admin(&server);
    admin.call(Method::PUT, "buckets/own").await.unwrap();
    let key = admin
        .call_with_body(
            Method::POST,
            "keys",
            Some(&json!({ "buckets": [{ "name": "own", "mode": "ReadWrite" }] })),
        )
        .await
        .unwrap();
    let (id, secret) = (
        key["accessKey"].as_str().unwrap(),
        key["secretKey"].as_str().unwrap(),
    );
    for (method, path) in [
        ("GET", "buckets"),
        ("PUT", "buckets/other"),
        ("GET", "buckets/own"),
        ("DELETE", "buckets/own"),
    ] {
        let r = server
            .raw(method, &admin_path(path))
            .keys(id, secret)
            .send()
            .await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        let err: Value = serde_json::from_slice(&r.body).expect("a JSON error");
        assert_eq!(err["code"], "AccessDenied");
    }
    let listed = admin.call(Method::GET, "buckets").await.unwrap();
    assert_eq!(listed["buckets"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_cli_creates_lists_describes_and_deletes_buckets() {
    let server = TestServer::start();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-server"))
            .args(["admin", "--json", "bucket"])
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
    assert_eq!(cli(&["create", "cli-made"])["name"], "cli-made");
    assert_eq!(cli(&["create", "cli-made"])["name"], "cli-made");
    assert_eq!(cli(&["list"])["buckets"][0]["name"], "cli-made");
    assert_eq!(cli(&["describe", "cli-made"])["usage"]["objects"], 0);
    assert_eq!(cli(&["delete", "cli-made"])["deleted"], "cli-made");
    assert_eq!(cli(&["delete", "cli-made"])["deleted"], "cli-made");
    assert_eq!(cli(&["list"])["buckets"], json!([]));
}

/// Runs `coffer-server admin ARGS --endpoint …`; returns (success, stdout, stderr).
fn admin_cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-server"))
        .arg("admin")
        .args(args)
        .args(["--endpoint", &server.endpoint])
        .env("COFFER_ROOT_USER", ACCESS_KEY)
        .env("COFFER_ROOT_PASSWORD", SECRET_KEY)
        .output()
        .expect("the CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_prints_tables_for_people_by_default() {
    let server = TestServer::start();
    let client = server.bucket("photos").await;
    put_bytes(&client, "photos", "a", vec![1u8; 2048]).await;
    put_bytes(&client, "photos", "b", vec![2u8; 1024]).await;

    let (ok, out, err) = admin_cli(&server, &["bucket", "list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one bucket:\n{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "OBJECTS", "SIZE", "VERSIONING", "CREATED"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..4], ["photos", "2", "3.0", "KiB"], "{out}");
    assert!(
        serde_json::from_str::<Value>(&out).is_err(),
        "not JSON: {out}"
    );

    let (ok, out, err) = admin_cli(&server, &["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("1/1 drives online"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("DRIVE")), "{out}");

    let (ok, out, err) = admin_cli(&server, &["key", "create", "--bucket", "photos:ReadOnly"]);
    assert!(ok, "{err}");
    assert!(out.contains("secret key:"), "{out}");
    assert!(out.contains("photos:ReadOnly"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("access key:"))
        .expect("the new key's id is printed")
        .trim()
        .to_string();
    let (ok, out, err) = admin_cli(&server, &["key", "list"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ACCESS KEY"), "{out}");
    let row = out.lines().nth(1).expect("one key row");
    assert!(row.starts_with(&id) && row.contains("yes") && row.contains("photos:ReadOnly"));
    assert!(!out.contains("secret"), "no secret in a listing: {out}");

    // The same commands with --json print the API's documents.
    let (ok, out, _) = admin_cli(&server, &["--json", "bucket", "list"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).expect("JSON with --json");
    assert_eq!(v["buckets"][0]["usage"]["objects"], 2);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn force_delete_empties_the_bucket_then_deletes_it() {
    let server = TestServer::start();
    let client = server.bucket("doomed").await;
    for i in 0..1203 {
        put_bytes(&client, "doomed", &format!("small/{i:05}"), vec![7u8; 10]).await;
    }
    // Big enough to live in data files, not inline in the records.
    put_bytes(&client, "doomed", "big", vec![9u8; 3 * 1024 * 1024]).await;
    let upload = client
        .create_multipart_upload()
        .bucket("doomed")
        .key("unfinished")
        .send()
        .await
        .unwrap();
    client
        .upload_part()
        .bucket("doomed")
        .key("unfinished")
        .upload_id(upload.upload_id().unwrap())
        .part_number(1)
        .body(vec![1u8; 5 * 1024 * 1024].into())
        .send()
        .await
        .unwrap();
    assert!(!files_under(&server.drive().join("data")).is_empty());

    // Without --force a bucket with objects stays.
    let (ok, _, err) = admin_cli(&server, &["bucket", "delete", "doomed"]);
    assert!(!ok, "a non-empty bucket is not deleted without --force");
    assert!(err.contains("BucketNotEmpty"), "{err}");

    let (ok, out, err) = admin_cli(&server, &["bucket", "delete", "doomed", "--force"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "deleted bucket doomed and 1204 object version(s) in it\n"
    );
    let gone = client.head_bucket().bucket("doomed").send().await;
    assert_eq!(common::s3_error(&gone.unwrap_err()).0, 404);
    // Object data and the unfinished upload's part are gone from the drive too.
    let leftover = files_under(&server.drive().join("data"));
    assert!(leftover.is_empty(), "data files left behind: {leftover:?}");

    // Idempotent: forcing the delete of a missing bucket succeeds and says so.
    let v = admin(&server)
        .call(Method::DELETE, "buckets/doomed?force=true")
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({ "name": "doomed", "existed": false, "deletedObjects": 0 })
    );
    // A bucket made again under the name starts empty.
    client
        .create_bucket()
        .bucket("doomed")
        .send()
        .await
        .unwrap();
    let listed = client
        .list_objects_v2()
        .bucket("doomed")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0));
}

/// (method, path template) of every operation in `docs/admin-api.yaml`, read by plain line
/// matching: paths are the two-space-indented keys under `paths:`, operations the
/// four-space-indented HTTP methods under them.
fn documented_routes() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/admin-api.yaml"
    ))
    .expect("docs/admin-api.yaml exists");
    let mut out = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(p.to_string());
        } else if let Some(m) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':')) {
            let methods = ["get", "put", "post", "delete", "head", "patch"];
            if let (Some(p), true) = (&path, methods.contains(&m)) {
                out.insert((m.to_uppercase(), p.clone()));
            }
        }
    }
    out
}

#[test]
fn the_openapi_document_describes_every_route_and_no_other() {
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "ROUTES lists a route twice");
    let documented = documented_routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "docs/admin-api.yaml misses {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "docs/admin-api.yaml describes routes the server lacks: {unserved:?}"
    );
}

/// Every route in `ROUTES` reaches a handler (any answer but "unknown admin endpoint"), so the
/// list, and with it the document, follows the router.
#[tokio::test]
async fn every_listed_route_is_served() {
    let server = TestServer::start();
    for (method, template) in ROUTES {
        let path = template
            .replace("{id}", "probe-key")
            .replace("{name}", "probe-bucket");
        let r = server.raw(method, &admin_path(&path)).send().await;
        assert!(
            !r.text().contains("unknown admin endpoint"),
            "{method} {template} is not served: {} {}",
            r.status,
            r.text()
        );
    }
    let r = server.raw("PATCH", &admin_path("buckets")).send().await;
    assert!(r.text().contains("unknown admin endpoint"), "{}", r.text());
}
