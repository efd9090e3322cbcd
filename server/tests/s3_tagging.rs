//! Object and bucket tagging, and GetObjectAttributes, through the real server with
//! aws-sdk-s3: `x-amz-tagging` on PUT, COPY and multipart, the tag count on GET/HEAD,
//! Put/Get/DeleteObjectTagging per version, S3's limits, and bucket tags.

mod common;

use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes, Tag, Tagging, TaggingDirective, VersioningConfiguration,
};
use common::{assert_s3_error, pattern, put_bytes, TestServer};

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let mut b = Tagging::builder();
    for (k, v) in pairs {
        b = b.tag_set(Tag::builder().key(*k).value(*v).build().unwrap());
    }
    b.build().unwrap()
}

async fn tags_of(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Vec<(String, String)> {
    client
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectTagging {key}: {e:?}"))
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn objects_carry_tags_from_every_kind_of_write() {
    let server = TestServer::start();
    let client = server.bucket("tags").await;
    client
        .put_object()
        .bucket("tags")
        .key("put")
        .tagging("team=data%20lake&tier=hot")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&client, "tags", "put", None).await,
        pairs(&[("team", "data lake"), ("tier", "hot")])
    );
    let got = client
        .get_object()
        .bucket("tags")
        .key("put")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(2));

    // Copies keep the source's tags unless told to replace them.
    client
        .copy_object()
        .bucket("tags")
        .key("copied")
        .copy_source("tags/put")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&client, "tags", "copied", None).await.len(), 2);
    client
        .copy_object()
        .bucket("tags")
        .key("replaced")
        .copy_source("tags/put")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("only=one")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&client, "tags", "replaced", None).await,
        pairs(&[("only", "one")])
    );

    // Multipart: the tags given at creation land on the completed object.
    let up = client
        .create_multipart_upload()
        .bucket("tags")
        .key("mp")
        .tagging("source=multipart")
        .send()
        .await
        .unwrap();
    let part = client
        .upload_part()
        .bucket("tags")
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(b"part".to_vec().into())
        .send()
        .await
        .unwrap();
    client
        .complete_multipart_upload()
        .bucket("tags")
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&client, "tags", "mp", None).await,
        pairs(&[("source", "multipart")])
    );

    // Put and delete replace the whole set; the content is untouched.
    client
        .put_object_tagging()
        .bucket("tags")
        .key("put")
        .tagging(tagging(&[("a", "1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&client, "tags", "put", None).await,
        pairs(&[("a", "1")])
    );
    client
        .delete_object_tagging()
        .bucket("tags")
        .key("put")
        .send()
        .await
        .unwrap();
    assert!(tags_of(&client, "tags", "put", None).await.is_empty());
    assert_eq!(common::get_bytes(&client, "tags", "put").await, b"x");
    assert_s3_error(
        client
            .get_object_tagging()
            .bucket("tags")
            .key("absent")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test]
async fn bad_tag_sets_are_refused_and_store_nothing() {
    let server = TestServer::start();
    let client = server.bucket("limits").await;
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    let header = eleven
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    assert_s3_error(
        client
            .put_object()
            .bucket("limits")
            .key("k")
            .tagging(header)
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "InvalidTag",
    );
    assert!(
        !common::exists(&client, "limits", "k").await,
        "nothing stored"
    );
    put_bytes(&client, "limits", "k", b"x".to_vec()).await;
    for bad in [
        tagging(&[("k", "v"), ("k", "w")]),
        tagging(&[(&"k".repeat(129), "v")]),
        tagging(&[("aws:owner", "v")]),
    ] {
        assert_s3_error(
            client
                .put_object_tagging()
                .bucket("limits")
                .key("k")
                .tagging(bad)
                .send()
                .await,
            400,
            "InvalidTag",
        );
    }
    assert!(tags_of(&client, "limits", "k", None).await.is_empty());
}

#[tokio::test]
async fn each_version_has_its_own_tags() {
    let server = TestServer::start();
    let client = server.bucket("vtags").await;
    client
        .put_bucket_versioning()
        .bucket("vtags")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v1 = client
        .put_object()
        .bucket("vtags")
        .key("k")
        .tagging("gen=1")
        .body(b"one".to_vec().into())
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    client
        .put_object()
        .bucket("vtags")
        .key("k")
        .tagging("gen=2")
        .body(b"two".to_vec().into())
        .send()
        .await
        .unwrap();
    let out = client
        .put_object_tagging()
        .bucket("vtags")
        .key("k")
        .version_id(&v1)
        .tagging(tagging(&[("gen", "first")]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(v1.as_str()));
    assert_eq!(
        tags_of(&client, "vtags", "k", Some(&v1)).await,
        pairs(&[("gen", "first")])
    );
    assert_eq!(
        tags_of(&client, "vtags", "k", None).await,
        pairs(&[("gen", "2")])
    );
}

#[tokio::test]
async fn buckets_carry_tags() {
    let server = TestServer::start();
    let client = server.bucket("btags").await;
    assert_s3_error(
        client.get_bucket_tagging().bucket("btags").send().await,
        404,
        "NoSuchTagSet",
    );
    client
        .put_bucket_tagging()
        .bucket("btags")
        .tagging(tagging(&[("cost-center", "42"), ("env", "prod")]))
        .send()
        .await
        .unwrap();
    let got = client
        .get_bucket_tagging()
        .bucket("btags")
        .send()
        .await
        .unwrap();
    let got: Vec<_> = got.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(got, vec![("cost-center", "42"), ("env", "prod")]);
    client
        .delete_bucket_tagging()
        .bucket("btags")
        .send()
        .await
        .unwrap();
    assert_s3_error(
        client.get_bucket_tagging().bucket("btags").send().await,
        404,
        "NoSuchTagSet",
    );
}

#[tokio::test]
async fn object_attributes_describe_size_etag_checksum_and_parts() {
    let server = TestServer::start();
    let client = server.bucket("attrs").await;
    let put = client
        .put_object()
        .bucket("attrs")
        .key("simple")
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(b"hello attributes".to_vec().into())
        .send()
        .await
        .unwrap();
    let out = client
        .get_object_attributes()
        .bucket("attrs")
        .key("simple")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    assert_eq!(out.object_size(), Some(16));
    assert_eq!(
        out.e_tag(),
        put.e_tag().map(|e| e.trim_matches('"')),
        "the ETag, unquoted"
    );
    assert_eq!(out.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    assert_eq!(
        out.checksum().and_then(|c| c.checksum_crc32_c()),
        put.checksum_crc32_c()
    );
    assert!(out.object_parts().is_none(), "a simple object has no parts");

    // A multipart object lists its parts, a page at a time.
    let data = pattern(11 * 1024 * 1024, 3);
    let up = client
        .create_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut done = Vec::new();
    for (n, chunk) in data.chunks(5 * 1024 * 1024).enumerate() {
        let p = client
            .upload_part()
            .bucket("attrs")
            .key("multi")
            .upload_id(id)
            .part_number(n as i32 + 1)
            .body(chunk.to_vec().into())
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = client
        .get_object_attributes()
        .bucket("attrs")
        .key("multi")
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::ObjectSize)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!(out.object_size(), Some(data.len() as i64));
    let parts = out.object_parts().expect("a multipart object has parts");
    assert_eq!(parts.total_parts_count(), Some(3));
    assert_eq!(parts.is_truncated(), Some(true));
    let sizes: Vec<_> = parts.parts().iter().map(|p| p.size()).collect();
    assert_eq!(sizes, vec![Some(5 * 1024 * 1024), Some(5 * 1024 * 1024)]);
    let rest = client
        .get_object_attributes()
        .bucket("attrs")
        .key("multi")
        .object_attributes(ObjectAttributes::ObjectParts)
        .part_number_marker(parts.next_part_number_marker().unwrap())
        .send()
        .await
        .unwrap();
    let rest = rest.object_parts().unwrap();
    assert_eq!(rest.is_truncated(), Some(false));
    assert_eq!(rest.parts()[0].part_number(), Some(3));
    assert_eq!(rest.parts()[0].size(), Some(1024 * 1024));
}

#[tokio::test]
async fn tags_and_holds_change_in_place_on_erasure_coded_drives() {
    let mut server = TestServer::start_drives(4, &[]);
    let client = server.bucket("ecb").await;
    let big = pattern(3 * 1024 * 1024 + 7, 9);
    put_bytes(&client, "ecb", "inline", b"small body".to_vec()).await;
    put_bytes(&client, "ecb", "big", big.clone()).await;
    for key in ["inline", "big"] {
        client
            .put_object_tagging()
            .bucket("ecb")
            .key(key)
            .tagging(tagging(&[("k", key)]))
            .send()
            .await
            .unwrap();
    }
    server.kill9();
    server.restart();
    let client = server.client();
    for key in ["inline", "big"] {
        assert_eq!(
            tags_of(&client, "ecb", key, None).await,
            pairs(&[("k", key)])
        );
    }
    // The bodies are intact: every drive kept its own shard through the change.
    assert_eq!(
        common::get_bytes(&client, "ecb", "inline").await,
        b"small body"
    );
    assert_eq!(common::get_bytes(&client, "ecb", "big").await, big);
}
