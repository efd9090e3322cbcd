//! The operator's admin API calls against a real coffer-server: every call the reconcilers
//! make, its idempotence, and agreement on what a valid bucket name is.

use super::*;
use crate::admin::{Grant, KeyRequest};
use crate::crd::bucket::valid_bucket_name;

#[tokio::test]
async fn every_admin_call_the_reconcilers_make_works_against_a_real_server() {
    let server = RealServer::start();
    let admin = server.admin();

    let status = admin.status().await.unwrap();
    // One set of the server's four drives: 2 data + 2 parity, write quorum K+1.
    assert_eq!(status.write_quorum, 3);
    assert_eq!(status.drives.len(), 4);
    assert!(status.drives.iter().all(|d| d.online));
    assert!(!admin.heal_status().await.unwrap().healing());

    assert_eq!(admin.bucket("photos").await.unwrap(), None);
    let created = admin.create_bucket("photos").await.unwrap();
    assert_eq!(created.name, "photos");
    assert_eq!(
        admin.create_bucket("photos").await.unwrap().name,
        "photos",
        "idempotent"
    );
    assert_eq!(admin.buckets().await.unwrap().len(), 1);
    assert_eq!(admin.bucket_policy("photos").await.unwrap(), None);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::photos/*"}]}"#;
    admin.put_bucket_policy("photos", policy).await.unwrap();
    assert_eq!(
        admin.bucket_policy("photos").await.unwrap().unwrap()["Statement"][0]["Effect"],
        "Deny"
    );
    let bad = admin
        .put_bucket_policy("photos", "{\"Statement\": 5}")
        .await
        .unwrap_err();
    assert_eq!(bad.status, Some(400), "{bad}");

    let request = KeyRequest {
        access_key: "CKADMINTEST".into(),
        secret_key: "a-secret-of-forty-characters-0123456789".into(),
        buckets: vec![Grant {
            name: "photos".into(),
            mode: "ReadOnly".into(),
        }],
        expires_at: Some("2030-01-01T00:00:00Z".into()),
        description: "test".into(),
    };
    admin.put_key(&request).await.unwrap();
    admin.put_key(&request).await.unwrap();
    let info = admin.key("CKADMINTEST").await.unwrap().unwrap();
    assert_eq!(info.buckets, request.buckets);
    assert_eq!(info.description, "test");
    assert!(info.enabled);
    assert_eq!(admin.keys().await.unwrap().len(), 1);
    admin.delete_key("CKADMINTEST").await.unwrap();
    admin.delete_key("CKADMINTEST").await.unwrap();
    assert!(admin.key("CKADMINTEST").await.unwrap().is_none());

    admin.delete_bucket("photos").await.unwrap();
    admin.delete_bucket("photos").await.unwrap();
    assert_eq!(admin.bucket("photos").await.unwrap(), None);
}

#[tokio::test]
async fn the_operator_and_the_server_agree_on_valid_bucket_names() {
    let server = RealServer::start();
    let admin = server.admin();
    for name in [
        "photos",
        "a.b-c",
        "abc",
        "my-bucket-2024",
        "ab",
        "Photos",
        "-abc",
        "abc-",
        "a_b",
        "a..b",
        "a.-b",
        "192.168.1.1",
        "xn--abc",
        "sthree-x",
        "abc-s3alias",
        "abc--ol-s3",
        "a-very-long-bucket-name-that-is-exactly-sixty-four-characters-xx",
    ] {
        let accepted = admin.create_bucket(name).await.is_ok();
        assert_eq!(valid_bucket_name(name), accepted, "{name}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_without_a_code() {
    let admin = crate::admin::AdminAccess::default()
        .client(
            "http://127.0.0.1:9",
            &crate::admin::RootCredential {
                user: "u".into(),
                password: "p".into(),
            },
            "us-east-1",
            None,
        )
        .unwrap();
    let e = admin.status().await.unwrap_err();
    assert_eq!((e.status, e.code.clone()), (None, None));
    assert_eq!(e.reason(), "AdminAPIUnreachable");
}
