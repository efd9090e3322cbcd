//! Versioning through the real server with aws-sdk-s3: every overwrite keeps a version,
//! deletes leave delete markers, GET/HEAD/DELETE/Copy by version id, the null version of
//! unversioned and suspended writes, ListObjectVersions paging with key and version markers,
//! and everything surviving a killed process.

mod common;

use std::collections::HashSet;

use aws_sdk_s3::types::{
    BucketVersioningStatus, Delete, ObjectIdentifier, VersioningConfiguration,
};
use common::{assert_s3_error, get_bytes, put_bytes, s3_error, TestServer};

async fn set_versioning(client: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .expect("PutBucketVersioning succeeds");
}

async fn put_version(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> String {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"))
        .version_id
        .expect("a versioned bucket answers a version id")
}

async fn get_version(client: &aws_sdk_s3::Client, bucket: &str, key: &str, v: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(v)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}?versionId={v}: {e:?}"))
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

/// Every version and delete marker of `bucket` as (key, version id, is latest, is marker), in
/// the server's listing order, paging with key and version-id markers `page` entries at a
/// time. Read from the XML itself: the SDK splits versions from markers, and their
/// millisecond LastModified cannot restore the order of writes made within one millisecond.
async fn all_versions(
    server: &TestServer,
    bucket: &str,
    prefix: Option<&str>,
    page: i32,
) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    for _ in 0..1000 {
        let mut query = format!("versions&max-keys={page}");
        if let Some(p) = prefix {
            query.push_str(&format!(
                "&prefix={}",
                common::encode_key(p).replace('/', "%2F")
            ));
        }
        if let Some(k) = &key_marker {
            query.push_str(&format!(
                "&key-marker={}",
                common::encode_key(k).replace('/', "%2F")
            ));
        }
        if let Some(v) = &version_marker {
            query.push_str(&format!("&version-id-marker={v}"));
        }
        let resp = server
            .raw("GET", &format!("/{bucket}"))
            .query(&query)
            .send()
            .await;
        assert_eq!(
            resp.status,
            200,
            "ListObjectVersions succeeds: {}",
            resp.text()
        );
        let entries = listed_entries(&resp.text());
        assert!(
            entries.len() <= page as usize,
            "a page holds at most max-keys"
        );
        out.extend(entries);
        if resp.xml("IsTruncated").as_deref() != Some("true") {
            return out;
        }
        key_marker = resp.xml("NextKeyMarker").map(|k| unescape(&k));
        version_marker = resp.xml("NextVersionIdMarker");
        assert!(
            key_marker.is_some(),
            "a truncated page names where to go on"
        );
    }
    panic!("ListObjectVersions never finished");
}

/// The `<Version>` and `<DeleteMarker>` entries of a ListVersionsResult, in document order.
fn listed_entries(xml: &str) -> Vec<(String, String, bool, bool)> {
    let field = |entry: &str, name: &str| -> String {
        let open = format!("<{name}>");
        let start = entry
            .find(&open)
            .map(|i| i + open.len())
            .unwrap_or_else(|| panic!("{name} in {entry}"));
        let end = entry[start..].find(&format!("</{name}>")).unwrap() + start;
        unescape(&entry[start..end])
    };
    let mut out = Vec::new();
    let mut rest = xml;
    loop {
        let version = rest.find("<Version>");
        let marker = rest.find("<DeleteMarker>");
        let (at, is_marker, close) = match (version, marker) {
            (Some(v), Some(m)) if m < v => (m, true, "</DeleteMarker>"),
            (Some(v), _) => (v, false, "</Version>"),
            (None, Some(m)) => (m, true, "</DeleteMarker>"),
            (None, None) => return out,
        };
        let end = rest[at..].find(close).expect("entries are closed") + at;
        let entry = &rest[at..end];
        out.push((
            field(entry, "Key"),
            field(entry, "VersionId"),
            field(entry, "IsLatest") == "true",
            is_marker,
        ));
        rest = &rest[end..];
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn every_overwrite_keeps_a_version_readable_by_id() {
    let server = TestServer::start();
    let client = server.bucket("ver").await;
    let status = client
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), None, "a new bucket was never versioned");
    set_versioning(&client, "ver", BucketVersioningStatus::Enabled).await;
    let status = client
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));

    let mut ids = Vec::new();
    for i in 0..3u8 {
        ids.push(put_version(&client, "ver", "doc", &[b'a' + i; 10]).await);
    }
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        3,
        "distinct version ids"
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            get_version(&client, "ver", "doc", id).await,
            vec![b'a' + i as u8; 10]
        );
        let head = client
            .head_object()
            .bucket("ver")
            .key("doc")
            .version_id(id)
            .send()
            .await
            .unwrap();
        assert_eq!(head.version_id(), Some(id.as_str()));
    }
    let latest = client
        .get_object()
        .bucket("ver")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(latest.version_id(), Some(ids[2].as_str()));

    let listed = all_versions(&server, "ver", None, 1000).await;
    assert_eq!(
        listed,
        vec![
            ("doc".to_string(), ids[2].clone(), true, false),
            ("doc".to_string(), ids[1].clone(), false, false),
            ("doc".to_string(), ids[0].clone(), false, false),
        ]
    );

    // Deleting one version by id removes exactly that version.
    let out = client
        .delete_object()
        .bucket("ver")
        .key("doc")
        .version_id(&ids[1])
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(ids[1].as_str()));
    assert_s3_error(
        client
            .get_object()
            .bucket("ver")
            .key("doc")
            .version_id(&ids[1])
            .send()
            .await,
        404,
        "NoSuchVersion",
    );
    assert_eq!(all_versions(&server, "ver", None, 1000).await.len(), 2);
    // Deleting the newest version makes the previous one current.
    client
        .delete_object()
        .bucket("ver")
        .key("doc")
        .version_id(&ids[2])
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, "ver", "doc").await, vec![b'a'; 10]);
}

#[tokio::test]
async fn a_delete_leaves_a_marker_that_hides_the_object_until_removed() {
    let server = TestServer::start();
    let client = server.bucket("marks").await;
    set_versioning(&client, "marks", BucketVersioningStatus::Enabled).await;
    let v1 = put_version(&client, "marks", "k", b"kept").await;
    let del = client
        .delete_object()
        .bucket("marks")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del
        .version_id()
        .expect("the marker has a version id")
        .to_string();
    assert_ne!(marker, v1);

    let err = client
        .get_object()
        .bucket("marks")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(s3_error(&err), (404, "NoSuchKey".into()));
    let raw = err.raw_response().unwrap();
    assert_eq!(raw.headers().get("x-amz-delete-marker"), Some("true"));
    assert_eq!(raw.headers().get("x-amz-version-id"), Some(marker.as_str()));
    // Asking for the marker itself is "method not allowed", as S3 answers.
    let err = client
        .head_object()
        .bucket("marks")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 405);
    assert_eq!(
        err.raw_response()
            .unwrap()
            .headers()
            .get("x-amz-delete-marker"),
        Some("true")
    );
    // The old version is still there by id, and listings hide the key.
    assert_eq!(get_version(&client, "marks", "k", &v1).await, b"kept");
    let listed = client
        .list_objects_v2()
        .bucket("marks")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0));
    assert_eq!(
        all_versions(&server, "marks", None, 1000).await,
        vec![
            ("k".to_string(), marker.clone(), true, true),
            ("k".to_string(), v1.clone(), false, false),
        ]
    );
    // Removing the marker brings the object back.
    let out = client
        .delete_object()
        .bucket("marks")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.delete_marker(),
        Some(true),
        "what was removed was a marker"
    );
    assert_eq!(get_bytes(&client, "marks", "k").await, b"kept");

    // DeleteObjects: markers for plain keys, exact versions by id.
    let v2 = put_version(&client, "marks", "k", b"second").await;
    let out = client
        .delete_objects()
        .bucket("marks")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v1)
                        .build()
                        .unwrap(),
                )
                .objects(ObjectIdentifier::builder().key("other").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let other = out
        .deleted()
        .iter()
        .find(|d| d.key() == Some("other"))
        .unwrap();
    assert_eq!(other.delete_marker(), Some(true));
    assert!(other.delete_marker_version_id().is_some());
    let versions = all_versions(&server, "marks", Some("k"), 1000).await;
    assert_eq!(versions, vec![("k".to_string(), v2, true, false)]);
}

#[tokio::test]
async fn unversioned_and_suspended_writes_replace_the_null_version() {
    let server = TestServer::start();
    let client = server.bucket("nulls").await;
    put_bytes(&client, "nulls", "k", b"unversioned".to_vec()).await;
    set_versioning(&client, "nulls", BucketVersioningStatus::Enabled).await;
    let v = put_version(&client, "nulls", "k", b"versioned").await;
    // The write from before versioning is the null version.
    assert_eq!(
        get_version(&client, "nulls", "k", "null").await,
        b"unversioned"
    );
    set_versioning(&client, "nulls", BucketVersioningStatus::Suspended).await;
    let status = client
        .get_bucket_versioning()
        .bucket("nulls")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Suspended));
    for body in [b"s1".as_slice(), b"s2"] {
        let out = client
            .put_object()
            .bucket("nulls")
            .key("k")
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.version_id(),
            None,
            "suspended writes make the null version"
        );
    }
    assert_eq!(
        all_versions(&server, "nulls", None, 1000).await,
        vec![
            ("k".to_string(), "null".to_string(), true, false),
            ("k".to_string(), v.clone(), false, false),
        ],
        "one null version, replaced in place; the versioned one kept"
    );
    assert_eq!(get_bytes(&client, "nulls", "k").await, b"s2");
    assert_eq!(get_version(&client, "nulls", "k", &v).await, b"versioned");
    // A suspended delete makes a null delete marker in place of the null version.
    let del = client
        .delete_object()
        .bucket("nulls")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    assert_eq!(del.version_id(), Some("null"));
    assert_eq!(
        all_versions(&server, "nulls", None, 1000).await,
        vec![
            ("k".to_string(), "null".to_string(), true, true),
            ("k".to_string(), v, false, false),
        ]
    );

    // Versioning cannot go back to "never versioned".
    let raw = server
        .raw("PUT", "/nulls")
        .query("versioning")
        .body(b"<VersioningConfiguration><Status>Off</Status></VersioningConfiguration>".to_vec())
        .send()
        .await;
    assert_eq!(raw.status, 400);
    assert!(
        raw.text().contains("<Code>MalformedXML</Code>"),
        "{}",
        raw.text()
    );
}

#[tokio::test]
async fn version_listings_page_with_key_and_version_markers() {
    let server = TestServer::start();
    let client = server.bucket("pages").await;
    set_versioning(&client, "pages", BucketVersioningStatus::Enabled).await;
    let mut expected = Vec::new();
    for key in ["a", "b/1", "b/2", "c"] {
        let mut ids = Vec::new();
        for i in 0..3u8 {
            ids.push(put_version(&client, "pages", key, &[i]).await);
        }
        for (n, id) in ids.iter().rev().enumerate() {
            expected.push((key.to_string(), id.clone(), n == 0, false));
        }
    }
    for page in [1, 2, 5, 1000] {
        assert_eq!(
            all_versions(&server, "pages", None, page).await,
            expected,
            "pages of {page}"
        );
    }
    let b_only: Vec<_> = expected
        .iter()
        .filter(|e| e.0.starts_with("b/"))
        .cloned()
        .collect();
    assert_eq!(all_versions(&server, "pages", Some("b/"), 2).await, b_only);

    // A delimiter rolls keys up into common prefixes.
    let resp = client
        .list_object_versions()
        .bucket("pages")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = resp
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["b/"]);
    assert_eq!(resp.versions().len(), 6, "a and c, three versions each");

    // A version marker needs a key marker.
    assert_s3_error(
        client
            .list_object_versions()
            .bucket("pages")
            .version_id_marker("x")
            .send()
            .await,
        400,
        "InvalidArgument",
    );
}

#[tokio::test]
async fn copies_read_the_version_they_name() {
    let server = TestServer::start();
    let client = server.bucket("copies").await;
    set_versioning(&client, "copies", BucketVersioningStatus::Enabled).await;
    let old = put_version(&client, "copies", "src", b"old body").await;
    put_version(&client, "copies", "src", b"new body").await;
    let out = client
        .copy_object()
        .bucket("copies")
        .key("dst")
        .copy_source(format!("copies/src?versionId={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.copy_source_version_id(), Some(old.as_str()));
    assert!(out.version_id().is_some(), "the copy is a new version");
    assert_eq!(get_bytes(&client, "copies", "dst").await, b"old body");
    // Restoring an old version in place: copy it onto its own key.
    client
        .copy_object()
        .bucket("copies")
        .key("src")
        .copy_source(format!("copies/src?versionId={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, "copies", "src").await, b"old body");
    assert_eq!(
        all_versions(&server, "copies", Some("src"), 1000)
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn versions_survive_a_killed_process() {
    let mut server = TestServer::start();
    let client = server.bucket("durable").await;
    set_versioning(&client, "durable", BucketVersioningStatus::Enabled).await;
    let v1 = put_version(&client, "durable", "k", &common::pattern(300_000, 1)).await;
    let v2 = put_version(&client, "durable", "k", b"small").await;
    let marker = client
        .delete_object()
        .bucket("durable")
        .key("k")
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    server.kill9();
    server.restart();
    let client = server.client();
    assert_eq!(
        all_versions(&server, "durable", None, 1000).await,
        vec![
            ("k".to_string(), marker, true, true),
            ("k".to_string(), v2.clone(), false, false),
            ("k".to_string(), v1.clone(), false, false),
        ]
    );
    assert_eq!(
        get_version(&client, "durable", "k", &v1).await,
        common::pattern(300_000, 1)
    );
    assert_eq!(get_version(&client, "durable", "k", &v2).await, b"small");
    let status = client
        .get_bucket_versioning()
        .bucket("durable")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));
}
