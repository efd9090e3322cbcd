//! CORS through the real server: Put/Get/DeleteBucketCors, preflight answers from the rules,
//! and a real browser (headless Chromium) on another origin uploading through a presigned URL:
//! allowed from the origin the rules name, refused from any other.

mod common;

use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use common::{assert_s3_error, exists, get_bytes, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROMIUM: &str = "chromium-headless-shell";

async fn allow_origin(client: &aws_sdk_s3::Client, bucket: &str, origin: &str) {
    client
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins(origin)
                        .allowed_methods("PUT")
                        .allowed_methods("GET")
                        .allowed_headers("*")
                        .expose_headers("ETag")
                        .max_age_seconds(600)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutBucketCors succeeds");
}

/// Serves `page` as text/html on a fresh loopback port until the test ends; returns its origin.
async fn serve_page(page: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut have = 0;
                while !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") && have < buf.len() {
                    match conn.read(&mut buf[have..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                }
                let wants_page = buf[..have].starts_with(b"GET / ");
                let (status, body) = if wants_page {
                    ("200 OK", page)
                } else {
                    ("404 Not Found", String::new())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
            });
        }
    });
    origin
}

/// A page that PUTs `body` to `url` with fetch and writes the outcome into the document.
fn upload_page(url: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html><body><pre id="out">pending</pre><script>
fetch({url:?}, {{ method: "PUT", body: {body:?}, headers: {{ "Content-Type": "text/plain" }} }})
  .then(r => {{ document.getElementById("out").textContent = "status=" + r.status + " etag=" + r.headers.get("ETag"); }})
  .catch(e => {{ document.getElementById("out").textContent = "error=" + e; }});
</script></body></html>"#
    )
}

/// Loads `url` in headless Chromium and returns the document once the page's work is done.
async fn browse(url: &str) -> String {
    let url = url.to_string();
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args([
                "60",
                CHROMIUM,
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=15000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--dump-dom", &url])
            .output()
            .unwrap_or_else(|e| panic!("{CHROMIUM} must be installed (test.sh installs it): {e}"))
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{CHROMIUM} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn presigned_put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> impl std::future::Future<Output = String> {
    let req = client.put_object().bucket(bucket).key(key);
    async move {
        req.presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
            .await
            .unwrap()
            .uri()
            .to_string()
    }
}

#[tokio::test]
async fn a_browser_on_another_origin_uploads_only_where_the_rules_allow() {
    let server = TestServer::start();
    let client = server.bucket("web").await;

    // The page's origin is only known once it listens: serve, then allow that origin.
    let url = presigned_put(&client, "web", "from-browser.txt").await;
    let origin = serve_page(upload_page(&url, "hello from chromium")).await;
    allow_origin(&client, "web", &origin).await;
    let dom = browse(&format!("{origin}/")).await;
    let etag = format!("\"{}\"", common::md5_hex(b"hello from chromium"));
    assert!(
        dom.contains(&format!("status=200 etag={etag}")),
        "the upload succeeds and the ETag is exposed: {dom}"
    );
    assert_eq!(
        get_bytes(&client, "web", "from-browser.txt").await,
        b"hello from chromium"
    );

    // A page on an origin the rules do not name is refused by the preflight: nothing stored.
    let url = presigned_put(&client, "web", "denied.txt").await;
    let other = serve_page(upload_page(&url, "should not land")).await;
    let dom = browse(&format!("{other}/")).await;
    assert!(
        dom.contains("error="),
        "the browser blocks the upload: {dom}"
    );
    assert!(!exists(&client, "web", "denied.txt").await);
}

#[tokio::test]
async fn cors_rules_are_stored_and_answer_preflights() {
    let server = TestServer::start();
    let client = server.bucket("rules").await;
    assert_s3_error(
        client.get_bucket_cors().bucket("rules").send().await,
        404,
        "NoSuchCORSConfiguration",
    );
    allow_origin(&client, "rules", "https://*.example.com").await;
    let got = client
        .get_bucket_cors()
        .bucket("rules")
        .send()
        .await
        .unwrap();
    let rule = &got.cors_rules()[0];
    assert_eq!(rule.allowed_origins(), ["https://*.example.com"]);
    assert_eq!(rule.allowed_methods(), ["PUT", "GET"]);
    assert_eq!(rule.max_age_seconds(), Some(600));

    let preflight = |origin: &str, method: &str| {
        server
            .raw("OPTIONS", "/rules/some/key")
            .anonymous()
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type, x-amz-date")
            .send()
    };
    let ok = preflight("https://app.example.com", "PUT").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(ok.header("access-control-allow-methods"), Some("PUT, GET"));
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    for (origin, method) in [
        ("https://evil.test", "PUT"),
        ("https://app.example.com", "DELETE"),
    ] {
        let no = preflight(origin, method).await;
        assert_eq!(no.status, 403, "{origin} {method}");
        assert_eq!(no.code(), "CORSResponse");
    }
    // Actual requests from an allowed origin carry the headers, errors included.
    let get = server
        .raw("GET", "/rules/missing")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    assert_eq!(get.status, 404);
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(get.header("access-control-expose-headers"), Some("ETag"));

    // Bad rules are refused; deleting the configuration ends the preflights.
    let bad = server
        .raw("PUT", "/rules")
        .query("cors")
        .body(b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>".to_vec())
        .send()
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    client
        .delete_bucket_cors()
        .bucket("rules")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight("https://app.example.com", "PUT").await.status,
        403
    );
}
