//! Durability: what the server acknowledged survives `kill -9`; an upload cut short by a
//! crash, a shutdown or a client that goes away never becomes a partial object, and leaves
//! no temporary files behind.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use common::{all_keys, exists, files_in, get_bytes, pattern, put_bytes, TestServer};

const B: &str = "durable";
const MIB: usize = 1024 * 1024;

/// Polls `cond` until it holds or `limit` passes (a readiness check, not a fixed delay).
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn acknowledged_objects_survive_kill_9() {
    let mut server = TestServer::start();
    let client = server.bucket(B).await;
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..20u8 {
        expected.insert(format!("small/{i:02}"), pattern(1024, i));
    }
    for i in 0..4u8 {
        expected.insert(format!("large/{i}"), pattern(MIB, 100 + i));
    }
    for (k, v) in &expected {
        put_bytes(&client, B, k, v.clone()).await;
    }
    // An overwrite and a delete must survive too.
    expected.insert("small/00".into(), b"overwritten".to_vec());
    put_bytes(&client, B, "small/00", b"overwritten".to_vec()).await;
    expected.remove("small/01");
    client
        .delete_object()
        .bucket(B)
        .key("small/01")
        .send()
        .await
        .unwrap();

    let p1 = pattern(5 * MIB, 7);
    let p2 = pattern(4096, 8);
    let id = client
        .create_multipart_upload()
        .bucket(B)
        .key("multi")
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    let mut parts = Vec::new();
    for (n, data) in [(1, &p1), (2, &p2)] {
        let out = client
            .upload_part()
            .bucket(B)
            .key("multi")
            .upload_id(&id)
            .part_number(n)
            .body(data.clone().into())
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(B)
        .key("multi")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    expected.insert("multi".into(), [p1, p2].concat());
    // An upload in progress survives as well.
    let pending = client
        .create_multipart_upload()
        .bucket(B)
        .key("pending")
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    client
        .upload_part()
        .bucket(B)
        .key("pending")
        .upload_id(&pending)
        .part_number(1)
        .body(b"part".to_vec().into())
        .send()
        .await
        .unwrap();

    server.kill9();
    server.restart();
    let client = server.client();

    for (k, v) in &expected {
        assert!(
            get_bytes(&client, B, k).await == *v,
            "{k} reads back byte-identical after kill -9"
        );
    }
    assert_eq!(
        all_keys(&client, B).await,
        expected.keys().cloned().collect::<Vec<_>>()
    );
    let parts = client
        .list_parts()
        .bucket(B)
        .key("pending")
        .upload_id(&pending)
        .send()
        .await
        .expect("the pending upload is still there");
    assert_eq!(parts.parts().len(), 1);
    assert!(
        files_in(&server.drive().join("tmp")).is_empty(),
        "no temporary files after restart"
    );
}

/// A signed PUT whose body the test feeds chunk by chunk, running in a task.
struct SlowUpload {
    tx: Option<tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>>,
    task: tokio::task::JoinHandle<Result<u16, reqwest::Error>>,
}

impl SlowUpload {
    fn start(server: &TestServer, key: &str, total: usize) -> SlowUpload {
        let raw = server
            .raw("PUT", &format!("/{B}/{key}"))
            .content_sha256("UNSIGNED-PAYLOAD")
            .header("content-length", &total.to_string());
        let (headers, _) = raw.signed_headers();
        let url = format!("{}/{B}/{key}", server.endpoint);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let task = tokio::spawn(async move {
            let mut req = reqwest::Client::new().put(url);
            for (n, v) in headers {
                req = req.header(n, v);
            }
            let resp = req.body(reqwest::Body::wrap_stream(stream)).send().await?;
            Ok(resp.status().as_u16())
        });
        SlowUpload { tx: Some(tx), task }
    }

    async fn send(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(256 * 1024) {
            if self
                .tx
                .as_ref()
                .unwrap()
                .send(Ok(Bytes::copy_from_slice(chunk)))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// Ends the body (the client goes away if it was not complete) and returns the outcome.
    async fn finish(mut self) -> Result<u16, reqwest::Error> {
        self.tx.take();
        self.task.await.expect("the upload task does not panic")
    }

    /// Aborts the request mid-body: the connection is dropped.
    async fn abandon(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test]
async fn sigterm_during_an_upload_never_leaves_a_partial_object() {
    let mut server = TestServer::start();
    server.bucket(B).await;
    let data = pattern(24 * MIB, 9);
    let upload = SlowUpload::start(&server, "in-flight", data.len());
    let half = data.len() / 2;
    assert!(upload.send(&data[..half]).await);
    let tmp = server.drive().join("tmp");
    eventually(
        Duration::from_secs(30),
        "the server to stage the body",
        || !files_in(&tmp).is_empty(),
    )
    .await;

    server.sigterm();
    let sent_all = upload.send(&data[half..]).await;
    let outcome = upload.finish().await;
    eprintln!("upload outcome after SIGTERM: {outcome:?} (whole body sent: {sent_all})");
    let status = server.wait();
    assert!(
        status.success(),
        "a SIGTERM'd server exits cleanly: {status:?}"
    );

    server.start_again();
    let client = server.client();
    match outcome {
        Ok(200) => {
            assert!(sent_all);
            assert!(
                get_bytes(&client, B, "in-flight").await == data,
                "an acknowledged upload is complete after restart"
            );
        }
        other => {
            assert!(
                !exists(&client, B, "in-flight").await,
                "an unacknowledged upload ({other:?}) left no object"
            );
        }
    }
    assert!(
        files_in(&tmp).is_empty(),
        "no temporary files after restart"
    );
}

#[tokio::test]
async fn kill_9_during_an_overwrite_keeps_the_old_object_and_no_temp_files() {
    let mut server = TestServer::start();
    let client = server.bucket(B).await;
    let old = pattern(300_000, 1);
    put_bytes(&client, B, "victim", old.clone()).await;

    let data = pattern(16 * MIB, 2);
    let upload = SlowUpload::start(&server, "victim", data.len());
    assert!(upload.send(&data[..4 * MIB]).await);
    let tmp = server.drive().join("tmp");
    eventually(
        Duration::from_secs(30),
        "the server to stage the body",
        || !files_in(&tmp).is_empty(),
    )
    .await;

    server.kill9();
    assert!(
        upload.finish().await.is_err(),
        "a killed server acknowledges nothing"
    );
    server.restart();
    let client = server.client();
    assert!(
        get_bytes(&client, B, "victim").await == old,
        "the previous version is intact"
    );
    assert!(
        files_in(&tmp).is_empty(),
        "leftovers of the interrupted write are cleared at start"
    );
    assert_eq!(all_keys(&client, B).await, ["victim"]);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_upload_leaves_nothing_behind() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(8 * MIB, 3);
    let upload = SlowUpload::start(&server, "abandoned", data.len());
    assert!(upload.send(&data[..2 * MIB]).await);
    let tmp = server.drive().join("tmp");
    eventually(
        Duration::from_secs(30),
        "the server to stage the body",
        || !files_in(&tmp).is_empty(),
    )
    .await;
    upload.abandon().await;

    eventually(
        Duration::from_secs(30),
        "the staged file of the cancelled upload to be removed",
        || files_in(&tmp).is_empty(),
    )
    .await;
    assert!(!exists(&client, B, "abandoned").await);
    let data_files: usize = files_in(&server.drive().join("data"))
        .iter()
        .map(|d| files_in(d).len())
        .sum();
    assert_eq!(
        data_files, 0,
        "no data file was committed for the abandoned upload"
    );
}
