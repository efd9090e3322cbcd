//! A cluster whose servers talk TLS to each other (`--tls-ca`), as `local-cluster --tls`
//! runs it: objects written through one server read back through every other (shards cross
//! peer RPC over TLS), the peer port gives a cleartext HTTP/2 client nothing, and a server
//! whose certificate comes from another CA is not taken for a peer until it gets the
//! cluster's certificate back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use coffer_e2e::cluster::LocalCluster;
use coffer_e2e::cluster_pki;

mod common;
use common::*;

/// Drives server `i` sees in `state` (online, offline), from its `/_coffer/metrics`.
fn drives(cluster: &LocalCluster, i: usize, state: &str) -> Option<f64> {
    cluster.metric(i, &format!("coffer_drives{{state=\"{state}\"}}"))
}

/// Waits until `cond` holds, failing with `what` after a minute.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_cluster_serves_every_object_through_every_server_and_peers_speak_only_tls() {
    let cluster = start_tls(4, 1);
    assert!(cluster.endpoint(0).starts_with("https://"));
    let clients: Vec<Client> = (0..4).map(|i| client(&cluster, i)).collect();
    create_bucket(&clients[0], "secure").await;
    // Inline objects (in the records) and objects above the 128 KiB inline threshold, whose
    // shards are files streamed to the other servers, each written through one server and
    // read through every other.
    let sizes = [0usize, 1000, 200_000, 3 << 20];
    for (n, size) in sizes.iter().enumerate() {
        let key = format!("obj-{n}");
        put(&clients[n % 4], "secure", &key, body(n as u64, *size)).await;
        for c in &clients {
            assert_eq!(
                get(c, "secure", &key).await,
                Some(body(n as u64, *size)),
                "{key}"
            );
        }
    }
    for i in 0..4 {
        assert_eq!(drives(&cluster, i, "online"), Some(4.0), "server {i}");
    }

    let ca = cluster
        .ca_pem()
        .expect("a TLS cluster has a CA")
        .to_string();
    for i in 0..4 {
        let rpc = cluster.rpc_address(i);
        // A client of the cluster's CA gets a certificate naming the server's address, and
        // HTTP/2 by ALPN.
        let h2 = cluster_pki::client_config(&[&ca], &[b"h2"]).unwrap();
        let tls = cluster_pki::connect(&rpc, h2)
            .unwrap_or_else(|e| panic!("TLS to the peer port of server {i}: {e:#}"));
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));

        // A cleartext HTTP/2 client (what a server without --tls-ca is) gets no HTTP/2
        // answer: the connection closes, at most with a TLS alert.
        let answer = cleartext_h2_preface(&rpc);
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "the peer port of server {i} answered cleartext HTTP/2 with {answer:02x?}"
        );
    }
}

/// Sends the HTTP/2 connection preface and an empty SETTINGS frame in cleartext to `addr`;
/// returns what comes back before the connection closes (an HTTP/2 server answers with its
/// own SETTINGS frame).
fn cleartext_h2_preface(addr: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset is a refusal too; a timeout means the server waited for more.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return answer,
            Err(e) => panic!("the peer port of {addr} neither answered nor closed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_with_another_ca_is_not_taken_for_a_peer() {
    let mut cluster = start_tls(4, 1);
    let c0 = client(&cluster, 0);
    create_bucket(&c0, "guarded").await;

    // Server 3 comes back with a certificate (and trust) of another CA, as with a wrong
    // Secret: neither side completes a handshake with the other.
    cluster.kill(3);
    cluster.use_foreign_ca(3).unwrap();
    cluster.spawn(3).unwrap();
    for i in 0..3 {
        wait_for(
            &format!("server {i} never logged refusing server 3's handshake"),
            || {
                cluster
                    .log_tail(i, 400)
                    .contains("refused a peer RPC connection")
            },
        );
    }
    wait_for("server 3 never logged why its peers are down", || {
        let log = cluster.log_tail(3, 400);
        (0..3).all(|i| {
            log.lines().any(|l| {
                l.contains("peer is down")
                    && l.contains(&format!("node-{i}"))
                    && l.contains("invalid peer certificate")
            })
        })
    });
    // The others count its drive offline once their next ping (every 500 ms) fails its
    // handshake, and several rounds later they still do.
    for i in 0..3 {
        wait_for(
            &format!("server {i} never counted server 3's drive offline"),
            || drives(&cluster, i, "offline") == Some(1.0),
        );
    }
    // (Server 3 itself, without a read quorum of drives, waits a minute before it opens its
    // S3 port at all.)
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for i in 0..3 {
            assert_eq!(drives(&cluster, i, "offline"), Some(1.0), "server {i}");
            assert_eq!(drives(&cluster, i, "online"), Some(3.0), "server {i}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Three drives of four still make a write quorum: the cluster works without it.
    put(&c0, "guarded", "while-away", body(7, 300_000)).await;
    assert_eq!(
        get(&client(&cluster, 1), "guarded", "while-away").await,
        Some(body(7, 300_000))
    );

    // With the cluster's certificate again, it is a peer again and serves what it missed.
    cluster.kill(3);
    cluster.use_cluster_ca(3);
    cluster.spawn(3).unwrap();
    cluster.wait_all_connected().unwrap();
    assert_eq!(
        get(&client(&cluster, 3), "guarded", "while-away").await,
        Some(body(7, 300_000))
    );
}
