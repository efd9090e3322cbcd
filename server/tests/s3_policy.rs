//! Bucket policies as a client sees them: Put/Get/DeleteBucketPolicy and
//! GetBucketPolicyStatus through the SDK, and their effect on anonymous (unsigned) and
//! signed requests against a real server.

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use common::{assert_s3_error, exists, get_bytes, put_bytes, s3_error, TestServer, ACCESS_KEY};

const B: &str = "policies";

fn public_read(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"PublicRead","Effect":"Allow",
        "Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

async fn put_policy(client: &aws_sdk_s3::Client, bucket: &str, policy: &str) {
    client
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .expect("a valid policy is accepted");
}

async fn is_public(client: &aws_sdk_s3::Client, bucket: &str) -> bool {
    client
        .get_bucket_policy_status()
        .bucket(bucket)
        .send()
        .await
        .expect("a bucket with a policy has a policy status")
        .policy_status()
        .and_then(|s| s.is_public())
        .expect("the status says whether the bucket is public")
}

async fn anonymous_get(server: &TestServer, path: &str) -> common::RawResponse {
    server.raw("GET", path).anonymous().send().await
}

#[tokio::test]
async fn a_policy_is_stored_returned_as_sent_and_deleted() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    assert_s3_error(
        client.get_bucket_policy().bucket(B).send().await,
        404,
        "NoSuchBucketPolicy",
    );
    assert_s3_error(
        client.get_bucket_policy().bucket("nobucket").send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client
            .put_bucket_policy()
            .bucket("nobucket")
            .policy(public_read("nobucket"))
            .send()
            .await,
        404,
        "NoSuchBucket",
    );

    let policy = public_read(B);
    put_policy(&client, B, &policy).await;
    let got = client.get_bucket_policy().bucket(B).send().await.unwrap();
    assert_eq!(
        got.policy(),
        Some(policy.as_str()),
        "returned byte for byte"
    );

    client
        .delete_bucket_policy()
        .bucket(B)
        .send()
        .await
        .unwrap();
    assert_s3_error(
        client.get_bucket_policy().bucket(B).send().await,
        404,
        "NoSuchBucketPolicy",
    );
    // Deleting again is not an error, as in S3.
    client
        .delete_bucket_policy()
        .bucket(B)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_policies_are_refused_with_a_message_naming_the_problem() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let cases = [
        ("not json".to_string(), "invalid Json"),
        (r#"{"Version":"2012-10-17"}"#.to_string(), "Statement"),
        (
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::policies/*"}]}"#.to_string(),
            "Invalid effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::otherbucket/*"}]}"#.to_string(),
            "invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:Fly","Resource":"arn:aws:s3:::policies/*"}]}"#.to_string(),
            "invalid action",
        ),
        (format!(r#"{{"Id":"{}"}}"#, "x".repeat(30 * 1024)), "20 KB"),
    ];
    for (doc, problem) in cases {
        let err = client
            .put_bucket_policy()
            .bucket(B)
            .policy(&doc)
            .send()
            .await
            .expect_err("a malformed policy is refused");
        assert_eq!(
            s3_error(&err),
            (400, "MalformedPolicy".to_string()),
            "{problem}"
        );
        let message = err.message().unwrap_or_default();
        assert!(message.contains(problem), "{message:?} names {problem:?}");
    }
    assert_s3_error(
        client.get_bucket_policy().bucket(B).send().await,
        404,
        "NoSuchBucketPolicy",
    );
}

#[tokio::test]
async fn a_public_read_policy_opens_reads_only_and_deleting_it_closes_them() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "site/index.html", b"<h1>hi</h1>".to_vec()).await;
    let before = anonymous_get(&server, "/policies/site/index.html").await;
    assert_eq!(
        (before.status, before.code().as_str()),
        (403, "AccessDenied")
    );

    put_policy(&client, B, &public_read(B)).await;
    assert!(is_public(&client, B).await);

    let page = anonymous_get(&server, "/policies/site/index.html").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"<h1>hi</h1>");
    let head = server
        .raw("HEAD", "/policies/site/index.html")
        .anonymous()
        .send()
        .await;
    assert_eq!(head.status, 200);
    let missing = anonymous_get(&server, "/policies/nothing-here").await;
    assert_eq!(missing.code(), "NoSuchKey", "the grant covers every key");

    for (method, path, query) in [
        ("PUT", "/policies/site/evil.html", ""),
        ("DELETE", "/policies/site/index.html", ""),
        ("GET", "/policies", ""),
        ("GET", "/policies", "list-type=2"),
        ("GET", "/", ""),
        ("GET", "/policies", "policy"),
        ("DELETE", "/policies", "policy"),
    ] {
        let resp = server
            .raw(method, path)
            .query(query)
            .anonymous()
            .body(if method == "PUT" {
                b"x".to_vec()
            } else {
                Vec::new()
            })
            .send()
            .await;
        assert_eq!(
            (resp.status, resp.code().as_str()),
            (403, "AccessDenied"),
            "{method} {path}?{query}"
        );
    }
    assert!(!exists(&client, B, "site/evil.html").await);
    assert!(exists(&client, B, "site/index.html").await);
    client.get_bucket_policy().bucket(B).send().await.unwrap();

    client
        .delete_bucket_policy()
        .bucket(B)
        .send()
        .await
        .unwrap();
    let after = anonymous_get(&server, "/policies/site/index.html").await;
    assert_eq!((after.status, after.code().as_str()), (403, "AccessDenied"));
}

#[tokio::test]
async fn a_deny_outside_a_network_refuses_the_loopback_client() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "doc", b"data".to_vec()).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*"}},
        {{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*",
          "Condition":{{"NotIpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}]}}"#
    );
    put_policy(&client, B, &policy).await;
    let anon = anonymous_get(&server, "/policies/doc").await;
    assert_eq!((anon.status, anon.code().as_str()), (403, "AccessDenied"));
    assert_s3_error(
        client.get_object().bucket(B).key("doc").send().await,
        403,
        "AccessDenied",
    );

    // Reads from inside the network would be allowed: the loopback client is not in it, so
    // the policy is not public either.
    let inside = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*",
          "Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}]}}"#
    );
    put_policy(&client, B, &inside).await;
    assert!(!is_public(&client, B).await);
    let anon = anonymous_get(&server, "/policies/doc").await;
    assert_eq!((anon.status, anon.code().as_str()), (403, "AccessDenied"));
    assert_eq!(get_bytes(&client, B, "doc").await, b"data");

    let loopback = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{B}/*",
          "Condition":{{"IpAddress":{{"aws:SourceIp":"127.0.0.0/8"}}}}}}]}}"#
    );
    put_policy(&client, B, &loopback).await;
    assert_eq!(anonymous_get(&server, "/policies/doc").await.status, 200);
}

#[tokio::test]
async fn an_explicit_deny_binds_the_root_key_but_not_its_policy_management() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "keep", b"kept".to_vec()).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Deny","Principal":{{"AWS":"{ACCESS_KEY}"}},"Action":["s3:DeleteObject","s3:PutBucketPolicy"],
          "Resource":["arn:aws:s3:::{B}/*","arn:aws:s3:::{B}"]}}]}}"#
    );
    put_policy(&client, B, &policy).await;
    assert!(!is_public(&client, B).await);
    assert_s3_error(
        client.delete_object().bucket(B).key("keep").send().await,
        403,
        "AccessDenied",
    );
    assert_eq!(get_bytes(&client, B, "keep").await, b"kept");

    // The owner's root key can always replace or remove the policy, so it cannot lock
    // itself out.
    put_policy(&client, B, &policy).await;
    client
        .delete_bucket_policy()
        .bucket(B)
        .send()
        .await
        .unwrap();
    client
        .delete_object()
        .bucket(B)
        .key("keep")
        .send()
        .await
        .unwrap();
    assert!(!exists(&client, B, "keep").await);
}

#[tokio::test]
async fn multi_object_deletes_obey_a_deny_on_each_key() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "protected/a", b"a".to_vec()).await;
    put_bytes(&client, B, "open/b", b"b".to_vec()).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject",
          "Resource":"arn:aws:s3:::{B}/protected/*"}}]}}"#
    );
    put_policy(&client, B, &policy).await;
    let id = |k: &str| {
        aws_sdk_s3::types::ObjectIdentifier::builder()
            .key(k)
            .build()
            .unwrap()
    };
    let out = client
        .delete_objects()
        .bucket(B)
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(id("protected/a"))
                .objects(id("open/b"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let errors: Vec<_> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap(), e.code().unwrap()))
        .collect();
    assert_eq!(errors, vec![("protected/a", "AccessDenied")]);
    let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, vec!["open/b"]);
    assert!(
        exists(&client, B, "protected/a").await,
        "the denied key stays"
    );
    assert!(!exists(&client, B, "open/b").await);
}

#[tokio::test]
async fn a_recreated_bucket_does_not_inherit_the_old_policy() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_policy(&client, B, &public_read(B)).await;
    client.delete_bucket().bucket(B).send().await.unwrap();
    client.create_bucket().bucket(B).send().await.unwrap();
    put_bytes(&client, B, "doc", b"private".to_vec()).await;
    assert_s3_error(
        client.get_bucket_policy().bucket(B).send().await,
        404,
        "NoSuchBucketPolicy",
    );
    let anon = anonymous_get(&server, "/policies/doc").await;
    assert_eq!((anon.status, anon.code().as_str()), (403, "AccessDenied"));
}
