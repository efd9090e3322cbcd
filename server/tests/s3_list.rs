//! Listings: ListObjectsV2 (prefix, delimiter, common prefixes, continuation tokens,
//! start-after, max-keys, fetch-owner), ListObjects v1 (marker, NextMarker) and
//! `encoding-type=url`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_s3::types::EncodingType;
use common::{decode_key, put_bytes, TestServer};

const B: &str = "listing";

/// Puts `keys` (small bodies), 32 requests at a time.
async fn put_all(client: &aws_sdk_s3::Client, keys: &[String]) {
    let client = Arc::new(client.clone());
    for batch in keys.chunks(32) {
        let mut set = tokio::task::JoinSet::new();
        for k in batch {
            let (client, k) = (client.clone(), k.clone());
            set.spawn(async move { put_bytes(&client, B, &k, k.as_bytes().to_vec()).await });
        }
        while let Some(r) = set.join_next().await {
            r.expect("a put task does not panic");
        }
    }
}

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

async fn tree(server: &TestServer) -> aws_sdk_s3::Client {
    let client = server.bucket(B).await;
    put_all(
        &client,
        &strings(&["a/1", "a/2", "a/b/3", "b/1", "c", "d/e/f"]),
    )
    .await;
    client
}

fn keys_of(out: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> Vec<&str> {
    out.contents().iter().filter_map(|o| o.key()).collect()
}

fn prefixes_of(out: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> Vec<&str> {
    out.common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect()
}

#[tokio::test]
async fn prefix_and_delimiter_group_keys() {
    let server = TestServer::start();
    let client = tree(&server).await;
    let list = || client.list_objects_v2().bucket(B);

    let all = list().send().await.unwrap();
    assert_eq!(keys_of(&all), ["a/1", "a/2", "a/b/3", "b/1", "c", "d/e/f"]);
    assert_eq!(all.key_count(), Some(6));
    assert_eq!(all.is_truncated(), Some(false));
    let first = &all.contents()[0];
    assert_eq!(first.size(), Some(3));
    assert_eq!(
        first.e_tag(),
        Some(format!("\"{}\"", common::md5_hex(b"a/1")).as_str())
    );
    assert!(first.last_modified().is_some());

    let prefixed = list().prefix("a/").send().await.unwrap();
    assert_eq!(keys_of(&prefixed), ["a/1", "a/2", "a/b/3"]);
    assert_eq!(prefixed.prefix(), Some("a/"));

    let root = list().delimiter("/").send().await.unwrap();
    assert_eq!(keys_of(&root), ["c"]);
    assert_eq!(prefixes_of(&root), ["a/", "b/", "d/"]);
    assert_eq!(
        root.key_count(),
        Some(4),
        "KeyCount counts keys and common prefixes"
    );
    assert_eq!(root.delimiter(), Some("/"));

    let inner = list().prefix("a/").delimiter("/").send().await.unwrap();
    assert_eq!(keys_of(&inner), ["a/1", "a/2"]);
    assert_eq!(prefixes_of(&inner), ["a/b/"]);

    let partial = list().prefix("a/b").delimiter("/").send().await.unwrap();
    assert!(keys_of(&partial).is_empty());
    assert_eq!(prefixes_of(&partial), ["a/b/"]);

    let none = list().prefix("zzz").send().await.unwrap();
    assert!(none.contents().is_empty() && none.common_prefixes().is_empty());
    assert_eq!(none.key_count(), Some(0));

    // A delimiter other than '/'.
    let by_letter = list().delimiter("1").send().await.unwrap();
    assert_eq!(prefixes_of(&by_letter), ["a/1", "b/1"]);
    assert_eq!(keys_of(&by_letter), ["a/2", "a/b/3", "c", "d/e/f"]);
}

#[tokio::test]
async fn max_keys_continuation_and_start_after() {
    let server = TestServer::start();
    let client = tree(&server).await;
    let list = || client.list_objects_v2().bucket(B);

    let page1 = list().max_keys(2).send().await.unwrap();
    assert_eq!(keys_of(&page1), ["a/1", "a/2"]);
    assert_eq!(page1.is_truncated(), Some(true));
    assert_eq!(page1.max_keys(), Some(2));
    let token = page1
        .next_continuation_token()
        .expect("a truncated page has a token")
        .to_string();
    let page2 = list()
        .max_keys(2)
        .continuation_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&page2), ["a/b/3", "b/1"]);
    assert_eq!(page2.continuation_token(), Some(token.as_str()));
    let page3 = list()
        .max_keys(2)
        .continuation_token(page2.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&page3), ["c", "d/e/f"]);
    assert_eq!(page3.is_truncated(), Some(false));
    assert!(page3.next_continuation_token().is_none());

    let after = list().start_after("a/2").send().await.unwrap();
    assert_eq!(keys_of(&after), ["a/b/3", "b/1", "c", "d/e/f"]);
    assert_eq!(after.start_after(), Some("a/2"));
    let after_missing = list().start_after("b").send().await.unwrap();
    assert_eq!(
        keys_of(&after_missing),
        ["b/1", "c", "d/e/f"],
        "start-after need not name an existing key"
    );

    // Paging with a delimiter: a common prefix counts once and is never repeated.
    let p1 = list().delimiter("/").max_keys(2).send().await.unwrap();
    assert_eq!(prefixes_of(&p1), ["a/", "b/"]);
    assert_eq!(p1.is_truncated(), Some(true));
    let p2 = list()
        .delimiter("/")
        .max_keys(2)
        .continuation_token(p1.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&p2), ["c"]);
    assert_eq!(prefixes_of(&p2), ["d/"]);
    assert_eq!(p2.is_truncated(), Some(false));

    let zero = list().max_keys(0).send().await.unwrap();
    assert!(zero.contents().is_empty());

    let bad = server
        .raw("GET", "/listing")
        .query("list-type=2&continuation-token=%21%21not-a-token")
        .send()
        .await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (400, "InvalidArgument"),
        "{}",
        bad.text()
    );
    let bad = server
        .raw("GET", "/listing")
        .query("list-type=2&max-keys=-1")
        .send()
        .await;
    assert_eq!((bad.status, bad.code().as_str()), (400, "InvalidArgument"));
}

#[tokio::test]
async fn fetch_owner_adds_the_owner() {
    let server = TestServer::start();
    let client = tree(&server).await;
    let plain = client.list_objects_v2().bucket(B).send().await.unwrap();
    assert!(
        plain.contents().iter().all(|o| o.owner().is_none()),
        "V2 omits the owner by default"
    );
    let owned = client
        .list_objects_v2()
        .bucket(B)
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    assert!(owned.contents().iter().all(|o| o
        .owner()
        .and_then(|o| o.id())
        .is_some_and(|id| !id.is_empty())));
    let v1 = client.list_objects().bucket(B).send().await.unwrap();
    assert!(
        v1.contents().iter().all(|o| o.owner().is_some()),
        "V1 always lists the owner"
    );
}

#[tokio::test]
async fn paging_through_thousands_of_keys_yields_each_once_in_order() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let keys: Vec<String> = (0..2500)
        .map(|i| format!("bulk/{:03}/item-{i:05}", i % 37))
        .collect();
    put_all(&client, &keys).await;
    let mut expected = keys.clone();
    expected.sort();

    // Default page size (1000) and an odd one.
    assert_eq!(common::all_keys(&client, B).await, expected);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = client
            .list_objects_v2()
            .bucket(B)
            .max_keys(333)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        assert!(out.contents().len() <= 333);
        seen.extend(out.contents().iter().filter_map(|o| o.key.clone()));
        pages += 1;
        token = out.next_continuation_token.clone();
        if token.is_none() {
            assert_eq!(out.is_truncated(), Some(false));
            break;
        }
    }
    assert_eq!(pages, 2500usize.div_ceil(333));
    assert_eq!(seen, expected, "every key exactly once, in order");

    // v1 with markers.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = client
            .list_objects()
            .bucket(B)
            .set_marker(marker.clone())
            .max_keys(700)
            .send()
            .await
            .unwrap();
        seen.extend(out.contents().iter().filter_map(|o| o.key.clone()));
        if out.is_truncated() != Some(true) {
            break;
        }
        // Without a delimiter S3 may omit NextMarker: the last key is the marker.
        marker = out.next_marker.clone().or_else(|| seen.last().cloned());
    }
    assert_eq!(seen, expected);

    // Delimited paging: 37 common prefixes, in pages of 10.
    let mut prefixes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_objects_v2()
            .bucket(B)
            .prefix("bulk/")
            .delimiter("/")
            .max_keys(10)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        assert!(out.contents().is_empty());
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix.clone()),
        );
        token = out.next_continuation_token.clone();
        if token.is_none() {
            break;
        }
    }
    let expected_prefixes: Vec<String> = (0..37).map(|i| format!("bulk/{i:03}/")).collect();
    assert_eq!(prefixes, expected_prefixes);
}

#[tokio::test]
async fn list_objects_v1_marker_and_next_marker_with_a_delimiter() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_all(
        &client,
        &strings(&["p/1", "p/2", "p/3", "q", "r/x", "r/y", "s"]),
    )
    .await;
    let list = || client.list_objects().bucket(B).delimiter("/").max_keys(2);

    let page1 = list().send().await.unwrap();
    assert_eq!(
        page1
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect::<Vec<_>>(),
        ["p/"]
    );
    assert_eq!(
        page1
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        ["q"]
    );
    assert_eq!(page1.is_truncated(), Some(true));
    assert_eq!(
        page1.next_marker(),
        Some("q"),
        "with a delimiter a truncated v1 page names its NextMarker"
    );

    let page2 = list().marker("q").send().await.unwrap();
    assert_eq!(
        page2
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect::<Vec<_>>(),
        ["r/"]
    );
    assert_eq!(
        page2
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        ["s"]
    );
    assert_eq!(page2.is_truncated(), Some(false));
    assert_eq!(page2.marker(), Some("q"));

    // A page that ends on a common prefix resumes after everything under it.
    let first = client
        .list_objects()
        .bucket(B)
        .delimiter("/")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first.next_marker(), Some("p/"));
    let next = client
        .list_objects()
        .bucket(B)
        .delimiter("/")
        .max_keys(1)
        .marker("p/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        next.contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        ["q"],
        "p/1..p/3 are not listed again"
    );
    assert!(next.common_prefixes().is_empty());
}

#[tokio::test]
async fn url_encoding_type_encodes_keys_prefixes_and_delimiters() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let keys = strings(&[
        "dir one/ä b",
        "dir one/plain",
        "naïve file",
        "x+y%z",
        "über/",
        "ctrl\u{1}char",
    ]);
    put_all(&client, &keys).await;

    let out = client
        .list_objects_v2()
        .bucket(B)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let raw: Vec<&str> = keys_of(&out);
    assert!(
        raw.iter().all(|k| k.is_ascii() && !k.contains(' ')),
        "{raw:?}"
    );
    let decoded: BTreeSet<String> = raw.iter().map(|k| decode_key(k)).collect();
    assert_eq!(decoded, keys.iter().cloned().collect::<BTreeSet<_>>());

    let grouped = client
        .list_objects_v2()
        .bucket(B)
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let prefixes: Vec<String> = prefixes_of(&grouped)
        .iter()
        .map(|p| decode_key(p))
        .collect();
    assert_eq!(prefixes, ["dir one/", "über/"]);
    assert!(prefixes_of(&grouped).iter().all(|p| p.is_ascii()));

    let v1 = client
        .list_objects()
        .bucket(B)
        .prefix("naïve")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let v1_keys: Vec<String> = v1
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(decode_key)
        .collect();
    assert_eq!(v1_keys, ["naïve file"]);

    // Without encoding-type the keys come back verbatim (the XML escapes what it must).
    let plain = client
        .list_objects_v2()
        .bucket(B)
        .prefix("x+")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&plain), ["x+y%z"]);
}
