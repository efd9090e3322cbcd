//! POST Object (browser-based uploads) through a real server: multipart/form-data forms
//! whose policy documents are signed with the repository's signer (SigV4 and SigV2), the
//! three success answers (204, 200, 201 with a PostResponse document, 303 redirects), the
//! policy's conditions and every way a form is refused, and key scopes and bucket policies
//! applied as for PutObject.

mod common;

use std::time::SystemTime;

use base64::Engine as _;
use coffer_server::admin::AdminClient;
use coffer_server::auth::sign;
use common::{exists, get_bytes, md5_hex, pattern, TestServer, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::{json, Value};

const B: &str = "uploads";

/// A multipart/form-data body: fields in order, then the file (last, as S3 requires).
struct Form {
    fields: Vec<(String, String)>,
    file: Option<(String, Vec<u8>)>,
}

impl Form {
    fn new() -> Form {
        Form {
            fields: Vec::new(),
            file: None,
        }
    }

    fn field(mut self, name: &str, value: &str) -> Form {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    fn file(mut self, filename: &str, data: Vec<u8>) -> Form {
        self.file = Some((filename.to_string(), data));
        self
    }

    fn encode(&self) -> (String, Vec<u8>) {
        let boundary = "----CofferFormBoundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in &self.fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((filename, data)) = &self.file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }
}

/// An answer to a POST, with its document parsed enough to read elements.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn xml(&self, name: &str) -> Option<String> {
        let open = format!("<{name}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{name}>"))? + start;
        Some(self.body[start..end].to_string())
    }

    fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.body
        );
    }
}

async fn post(server: &TestServer, bucket: &str, form: &Form) -> Answer {
    let (content_type, body) = form.encode();
    post_raw(server, bucket, &content_type, body).await
}

async fn post_raw(server: &TestServer, bucket: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client");
    let resp = client
        .post(format!("{}/{bucket}", server.endpoint))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the POST completes");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("a text body"),
    }
}

fn expiration(from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(from_now);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("a time formats")
}

/// A SigV4-signed form: the policy gets conditions on the signature fields (S3 requires a
/// condition for each form field), `conditions` are the caller's; `fields` are sent before
/// the signature fields.
fn signed_v4(
    conditions: Vec<Value>,
    expires_in: i64,
    access_key: &str,
    secret: &str,
    fields: &[(&str, &str)],
) -> Form {
    let now = SystemTime::now();
    let (date, credential) = sign::post_policy_v4_credential(access_key, REGION, now);
    let mut all = conditions;
    all.push(json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }));
    all.push(json!({ "x-amz-credential": credential }));
    all.push(json!({ "x-amz-date": date }));
    let policy = json!({ "expiration": expiration(expires_in), "conditions": all });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let mut form = Form::new();
    for (n, v) in fields {
        form = form.field(n, v);
    }
    form = form.field("policy", &policy);
    for (n, v) in sign::post_policy_v4_fields(&policy, access_key, secret, REGION, now) {
        form = form.field(n, &v);
    }
    form
}

fn root_v4(conditions: Vec<Value>, fields: &[(&str, &str)]) -> Form {
    signed_v4(conditions, 600, ACCESS_KEY, SECRET_KEY, fields)
}

async fn head(
    client: &aws_sdk_s3::Client,
    key: &str,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    client
        .head_object()
        .bucket(B)
        .key(key)
        .send()
        .await
        .expect("the uploaded object exists")
}

#[tokio::test]
async fn a_signed_form_uploads_the_file_with_its_metadata_and_answers_201() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(3 * 1024 * 1024 + 17, 3);
    let form = root_v4(
        vec![
            json!({ "bucket": B }),
            json!(["starts-with", "$key", "photos/"]),
            json!(["starts-with", "$Content-Type", "image/"]),
            json!({ "x-amz-meta-owner": "eric" }),
            json!({ "success_action_status": "201" }),
            json!(["content-length-range", 1, 10 * 1024 * 1024]),
        ],
        &[
            ("key", "photos/${filename}"),
            ("Content-Type", "image/jpeg"),
            ("x-amz-meta-owner", "eric"),
            ("success_action_status", "201"),
        ],
    )
    .file("C:\\Users\\eric\\holiday.jpg", data.clone());
    let answer = post(&server, B, &form).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.xml("Bucket").as_deref(), Some(B));
    assert_eq!(answer.xml("Key").as_deref(), Some("photos/holiday.jpg"));
    let etag = format!("\"{}\"", md5_hex(&data));
    assert_eq!(answer.xml("ETag").unwrap().replace("&quot;", "\""), etag);
    assert!(answer
        .xml("Location")
        .unwrap()
        .ends_with("/uploads/photos/holiday.jpg"));
    assert_eq!(answer.header("etag"), Some(etag.clone()));

    assert_eq!(get_bytes(&client, B, "photos/holiday.jpg").await, data);
    let h = head(&client, "photos/holiday.jpg").await;
    assert_eq!(h.content_type(), Some("image/jpeg"));
    assert_eq!(h.e_tag(), Some(etag.as_str()));
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("eric")
    );
}

#[tokio::test]
async fn success_answers_are_204_by_default_200_on_request_and_303_to_a_redirect() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let conds = |extra: Vec<Value>| {
        let mut c = vec![json!({ "bucket": B }), json!(["starts-with", "$key", ""])];
        c.extend(extra);
        c
    };

    let answer = post(
        &server,
        B,
        &root_v4(conds(vec![]), &[("key", "plain")]).file("a.txt", b"one".to_vec()),
    )
    .await;
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    assert_eq!(
        answer.header("etag"),
        Some(format!("\"{}\"", md5_hex(b"one")))
    );
    assert!(answer
        .header("location")
        .unwrap()
        .ends_with("/uploads/plain"));

    let answer = post(
        &server,
        B,
        &root_v4(
            conds(vec![json!({ "success_action_status": "200" })]),
            &[("key", "ok"), ("success_action_status", "200")],
        )
        .file("a.txt", b"two".to_vec()),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());

    // An unknown status falls back to 204, as in S3.
    let answer = post(
        &server,
        B,
        &root_v4(
            conds(vec![json!({ "success_action_status": "302" })]),
            &[("key", "odd"), ("success_action_status", "302")],
        )
        .file("a.txt", b"x".to_vec()),
    )
    .await;
    assert_eq!(answer.status, 204);

    let target = "https://app.example.com/done?from=upload";
    let answer = post(
        &server,
        B,
        &root_v4(
            conds(vec![json!([
                "starts-with",
                "$success_action_redirect",
                "https://app.example.com/"
            ])]),
            &[("key", "dir/a b.txt"), ("success_action_redirect", target)],
        )
        .file("a.txt", b"three".to_vec()),
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer
        .header("location")
        .expect("a redirect has a Location");
    let etag = md5_hex(b"three");
    assert_eq!(
        location,
        format!("{target}&bucket={B}&key=dir%2Fa%20b.txt&etag=%22{etag}%22")
    );
    assert_eq!(get_bytes(&client, B, "dir/a b.txt").await, b"three");
    for key in ["plain", "ok", "odd"] {
        assert!(exists(&client, B, key).await, "{key} was stored");
    }
}

#[tokio::test]
async fn a_sigv2_signed_form_uploads() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let policy = json!({
        "expiration": expiration(600),
        "conditions": [{ "bucket": B }, ["eq", "$key", "v2/object"]],
    });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let form = Form::new()
        .field("key", "v2/object")
        .field("AWSAccessKeyId", ACCESS_KEY)
        .field("policy", &policy)
        .field(
            "signature",
            &sign::post_policy_v2_signature(&policy, SECRET_KEY),
        )
        .file("f", b"signed the old way".to_vec());
    let answer = post(&server, B, &form).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(
        get_bytes(&client, B, "v2/object").await,
        b"signed the old way"
    );

    let forged = Form::new()
        .field("key", "v2/object")
        .field("AWSAccessKeyId", ACCESS_KEY)
        .field("policy", &policy)
        .field(
            "signature",
            &sign::post_policy_v2_signature(&policy, "not-the-secret"),
        )
        .file("f", b"x".to_vec());
    post(&server, B, &forged)
        .await
        .assert_error(403, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn refused_forms_get_the_s3_error_and_store_nothing() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let base = || {
        vec![
            json!({ "bucket": B }),
            json!(["starts-with", "$key", "in/"]),
        ]
    };
    let file = || b"payload".to_vec();

    // Expired policy.
    let form = signed_v4(
        base(),
        -60,
        ACCESS_KEY,
        SECRET_KEY,
        &[("key", "in/expired")],
    )
    .file("f", file());
    let a = post(&server, B, &form).await;
    a.assert_error(403, "AccessDenied");
    assert!(a.body.contains("Policy expired"), "{}", a.body);

    // Signed with the wrong secret.
    let form = signed_v4(
        base(),
        600,
        ACCESS_KEY,
        "wrong-secret",
        &[("key", "in/forged")],
    )
    .file("f", file());
    post(&server, B, &form)
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    // Unknown access key.
    let form =
        signed_v4(base(), 600, "NOSUCHKEY", SECRET_KEY, &[("key", "in/who")]).file("f", file());
    post(&server, B, &form)
        .await
        .assert_error(403, "InvalidAccessKeyId");

    // A condition does not hold: the key is outside the allowed prefix.
    let form = root_v4(base(), &[("key", "out/escape")]).file("f", file());
    let a = post(&server, B, &form).await;
    a.assert_error(403, "AccessDenied");
    assert!(a.body.contains("Policy Condition failed"), "{}", a.body);
    assert!(a.body.contains("$key"), "{}", a.body);

    // The policy names another bucket.
    let form = root_v4(
        vec![
            json!({ "bucket": "elsewhere" }),
            json!(["starts-with", "$key", ""]),
        ],
        &[("key", "in/b")],
    )
    .file("f", file());
    post(&server, B, &form)
        .await
        .assert_error(403, "AccessDenied");

    // A field no condition covers.
    let form =
        root_v4(base(), &[("key", "in/extra"), ("x-amz-meta-sneaky", "1")]).file("f", file());
    let a = post(&server, B, &form).await;
    a.assert_error(403, "AccessDenied");
    assert!(
        a.body.contains("Extra input fields: x-amz-meta-sneaky"),
        "{}",
        a.body
    );
    // …unless its name starts with x-ignore-.
    let form = root_v4(base(), &[("key", "in/ignored"), ("x-ignore-this", "1")]).file("f", file());
    assert_eq!(post(&server, B, &form).await.status, 204);

    // Too large and too small for content-length-range.
    let mut ranged = base();
    ranged.push(json!(["content-length-range", 10, 1000]));
    let form = root_v4(ranged.clone(), &[("key", "in/big")]).file("f", pattern(5000, 1));
    let a = post(&server, B, &form).await;
    a.assert_error(400, "EntityTooLarge");
    assert_eq!(a.xml("MaxSizeAllowed").as_deref(), Some("1000"));
    let form = root_v4(ranged, &[("key", "in/small")]).file("f", b"tiny".to_vec());
    let a = post(&server, B, &form).await;
    a.assert_error(400, "EntityTooSmall");
    assert_eq!(a.xml("MinSizeAllowed").as_deref(), Some("10"));

    // A policy that is not a policy (signed correctly).
    let now = SystemTime::now();
    let bad = base64::engine::general_purpose::STANDARD.encode(r#"{"conditions":[]}"#);
    let mut form = Form::new().field("key", "in/bad").field("policy", &bad);
    for (n, v) in sign::post_policy_v4_fields(&bad, ACCESS_KEY, SECRET_KEY, REGION, now) {
        form = form.field(n, &v);
    }
    post(&server, B, &form.file("f", file()))
        .await
        .assert_error(400, "InvalidPolicyDocument");

    // No file, no key, not a form, a form the root signed for a missing bucket (only an
    // authorized sender learns it is missing), a broken body.
    let a = post(&server, B, &root_v4(base(), &[("key", "in/nofile")])).await;
    a.assert_error(400, "InvalidArgument");
    assert_eq!(a.xml("ArgumentName").as_deref(), Some("file"));
    let a = post(&server, B, &root_v4(base(), &[]).file("f", file())).await;
    a.assert_error(400, "InvalidArgument");
    assert_eq!(a.xml("ArgumentName").as_deref(), Some("key"));
    post_raw(&server, B, "application/json", b"{}".to_vec())
        .await
        .assert_error(412, "PreconditionFailed");
    post(
        &server,
        "no-such-bucket",
        &root_v4(
            vec![
                json!({ "bucket": "no-such-bucket" }),
                json!(["starts-with", "$key", ""]),
            ],
            &[("key", "in/x")],
        )
        .file("f", file()),
    )
    .await
    .assert_error(404, "NoSuchBucket");
    post_raw(
        &server,
        B,
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nin/broken".to_vec(),
    )
    .await
    .assert_error(400, "MalformedPOSTRequest");
    // Fields before the file beyond S3's 20 KiB.
    let long = "v".repeat(30 * 1024);
    post(
        &server,
        B,
        &Form::new().field("x-ignore-pad", &long).file("f", file()),
    )
    .await
    .assert_error(400, "MaxPostPreDataLengthExceeded");

    for key in [
        "in/expired",
        "in/forged",
        "in/who",
        "out/escape",
        "in/b",
        "in/extra",
        "in/big",
        "in/small",
        "in/bad",
        "in/nofile",
        "in/x",
        "in/broken",
    ] {
        assert!(!exists(&client, B, key).await, "{key} must not exist");
    }
    assert!(exists(&client, B, "in/ignored").await);
}

fn admin(server: &TestServer) -> AdminClient {
    AdminClient {
        endpoint: server.endpoint.parse().expect("the test endpoint is a URI"),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        region: REGION.into(),
        ca_cert: None,
    }
}

async fn create_key(server: &TestServer, bucket: &str, mode: &str) -> (String, String) {
    let v = admin(server)
        .call_with_body(
            http::Method::POST,
            "keys",
            Some(&json!({ "buckets": [{ "name": bucket, "mode": mode }] })),
        )
        .await
        .expect("creating a key succeeds");
    (
        v["accessKey"].as_str().unwrap().to_string(),
        v["secretKey"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn key_scopes_and_bucket_policies_apply_as_for_put_object() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    client.create_bucket().bucket("other").send().await.unwrap();
    let conds = |bucket: &str| {
        vec![
            json!({ "bucket": bucket }),
            json!(["starts-with", "$key", ""]),
        ]
    };

    for (mode, allowed) in [
        ("ReadWrite", true),
        ("WriteOnly", true),
        ("ReadOnly", false),
    ] {
        let (ak, sk) = create_key(&server, B, mode).await;
        let key = format!("by-{mode}");
        let form = signed_v4(conds(B), 600, &ak, &sk, &[("key", &key)]).file("f", b"k".to_vec());
        let a = post(&server, B, &form).await;
        if allowed {
            assert_eq!(a.status, 204, "{mode}: {}", a.body);
        } else {
            a.assert_error(403, "AccessDenied");
        }
        assert_eq!(exists(&client, B, &key).await, allowed, "{mode}");
        // Never outside its bucket, whatever the policy document says.
        let form =
            signed_v4(conds("other"), 600, &ak, &sk, &[("key", &key)]).file("f", b"k".to_vec());
        post(&server, "other", &form)
            .await
            .assert_error(403, "AccessDenied");
    }

    // No existence oracle: a missing bucket looks like any other bucket outside the scope,
    // to a scoped key and to an anonymous form alike.
    let (ak, sk) = create_key(&server, B, "ReadWrite").await;
    let form = signed_v4(conds("missing"), 600, &ak, &sk, &[("key", "k")]).file("f", b"k".to_vec());
    post(&server, "missing", &form)
        .await
        .assert_error(403, "AccessDenied");
    let form = Form::new().field("key", "k").file("f", b"k".to_vec());
    post(&server, "missing", &form)
        .await
        .assert_error(403, "AccessDenied");

    // Anonymous forms (no policy) need a bucket policy allowing s3:PutObject.
    let anonymous = || {
        Form::new()
            .field("key", "public/drop")
            .file("f", b"anon".to_vec())
    };
    post(&server, B, &anonymous())
        .await
        .assert_error(403, "AccessDenied");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{B}/public/*")},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{B}/locked/*")}]});
    client
        .put_bucket_policy()
        .bucket(B)
        .policy(policy.to_string())
        .send()
        .await
        .expect("a valid bucket policy");
    assert_eq!(post(&server, B, &anonymous()).await.status, 204);
    assert_eq!(get_bytes(&client, B, "public/drop").await, b"anon");
    // An explicit Deny refuses even the root credential's signed form.
    let form = root_v4(conds(B), &[("key", "locked/x")]).file("f", b"x".to_vec());
    post(&server, B, &form)
        .await
        .assert_error(403, "AccessDenied");
    assert!(!exists(&client, B, "locked/x").await);
}
