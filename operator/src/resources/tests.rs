//! The desired objects of a store, tested as data.

use coffer_server::cluster::Topology;

use super::*;
use crate::crd::*;
use crate::fixtures::{pool, NS};

fn env_secret(sts: &k8s_openapi::api::apps::v1::StatefulSet, var: &str) -> (String, String) {
    let c = container(sts);
    let e = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == var)
        .unwrap();
    let r = e
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    (r.name.clone(), r.key.clone())
}

#[test]
fn each_pool_becomes_a_statefulset_serving_its_drives_from_the_topology() {
    let store = ObjectStore::test().with_pools(vec![pool("pool-0", 4, 2), pool("fast", 2, 3)]);
    let sts = statefulset(&store, &store.spec.pools[1], "coffer:1");
    assert_eq!(sts.metadata.name.as_deref(), Some("photos-fast"));
    assert_eq!(sts.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(
        sts.metadata.owner_references.as_ref().unwrap()[0].kind,
        "ObjectStore"
    );
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.service_name.as_deref(), Some("photos-hl"));
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("OnDelete")
    );
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let claims: Vec<_> = spec
        .volume_claim_templates
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(claims, ["data-0", "data-1", "data-2"]);
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("coffer:1"));
    assert_eq!(
        c.args.as_ref().unwrap(),
        &[
            "serve",
            "--topology",
            "/etc/coffer/topology.json",
            "--node",
            "$(POD_NAME)",
            "--address",
            "0.0.0.0:9000",
            "--region",
            "us-east-1",
            "/data/0",
            "/data/1",
            "/data/2",
        ]
    );
    let mounts: Vec<_> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("data-0", "/data/0"),
            ("data-1", "/data/1"),
            ("data-2", "/data/2"),
            ("topology", "/etc/coffer")
        ]
    );
    let ports: Vec<_> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [9000, 9100]);
}

#[test]
fn probes_call_the_servers_health_endpoints() {
    let store = ObjectStore::test();
    let sts = statefulset(&store, &store.spec.pools[0], "coffer:1");
    let c = &sts.spec.unwrap().template.spec.unwrap().containers[0];
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&c.readiness_probe), "/_coffer/health/ready");
    assert_eq!(path(&c.liveness_probe), "/_coffer/health/live");
    assert_eq!(path(&c.startup_probe), "/_coffer/health/live");
}

#[test]
fn servers_run_as_non_root_without_privileges() {
    let store = ObjectStore::test();
    let pod = statefulset(&store, &store.spec.pools[0], "coffer:1")
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.fs_group, Some(65532));
    let sc = pod.containers[0].security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
}

#[test]
fn credentials_come_from_secrets_never_from_literal_values() {
    let mut store = ObjectStore::test();
    let sts = statefulset(&store, &store.spec.pools[0], "coffer:1");
    assert_eq!(
        env_secret(&sts, "COFFER_ROOT_USER"),
        ("photos-root".into(), "COFFER_ROOT_USER".into())
    );
    assert_eq!(
        env_secret(&sts, "COFFER_ROOT_PASSWORD"),
        ("photos-root".into(), "COFFER_ROOT_PASSWORD".into())
    );
    assert_eq!(
        env_secret(&sts, "COFFER_CLUSTER_SECRET"),
        (
            "photos-cluster-secret".into(),
            "COFFER_CLUSTER_SECRET".into()
        )
    );
    store.spec.root_credentials = Some(RootCredentials {
        secret_ref: SecretRef {
            name: "my-root".into(),
        },
    });
    let sts = statefulset(&store, &store.spec.pools[0], "coffer:1");
    assert_eq!(env_secret(&sts, "COFFER_ROOT_USER").0, "my-root");
    let c = &sts.spec.unwrap().template.spec.unwrap().containers[0];
    assert!(c.env.as_ref().unwrap().iter().all(|e| e.value.is_none()));
}

#[test]
fn pods_spread_over_nodes_and_zones_unless_the_pool_says_otherwise() {
    let store = ObjectStore::test();
    let pod = statefulset(&store, &store.spec.pools[0], "coffer:1")
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let keys: Vec<_> = pod
        .topology_spread_constraints
        .unwrap()
        .iter()
        .map(|t| t.topology_key.clone())
        .collect();
    assert_eq!(
        keys,
        ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    );

    let mut store = ObjectStore::test();
    store.spec.pools[0].scheduling = Some(Scheduling {
        node_selector: [("disk".to_string(), "nvme".to_string())].into(),
        topology_spread_constraints: Some(vec![]),
        ..Scheduling::default()
    });
    let pod = statefulset(&store, &store.spec.pools[0], "coffer:1")
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    assert_eq!(pod.topology_spread_constraints, Some(vec![]));
    assert_eq!(pod.node_selector.unwrap()["disk"], "nvme");
}

#[test]
fn storage_deletion_policy_decides_whether_claims_outlive_the_statefulset() {
    let when_deleted = |store: ObjectStore| {
        statefulset(&store, &store.spec.pools[0], "coffer:1")
            .spec
            .unwrap()
            .persistent_volume_claim_retention_policy
            .unwrap()
            .when_deleted
            .unwrap()
    };
    assert_eq!(when_deleted(ObjectStore::test()), "Retain");
    assert_eq!(
        when_deleted(ObjectStore::test().with_deletion(StorageDeletionPolicy::Delete)),
        "Delete"
    );
}

#[test]
fn the_topology_config_map_is_what_servers_parse() {
    let mut store = ObjectStore::test().with_pools(vec![pool("pool-0", 4, 2), pool("big", 4, 4)]);
    store.spec.erasure = Some(ErasureSpec { parity: Some(2) });
    let t = topology(&store, "cluster-1", 2).unwrap();
    let cm = topology_config_map(&store, &t).unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("photos-topology"));
    let parsed = Topology::parse(&cm.data.unwrap()["topology.json"]).unwrap();
    assert_eq!(parsed, t);
    assert_eq!(parsed.cluster_id, "cluster-1");
    let names: Vec<_> = parsed.pools[1]
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "photos-big-0",
            "photos-big-1",
            "photos-big-2",
            "photos-big-3"
        ]
    );
    let s = &parsed.pools[0].servers[3];
    assert_eq!(s.endpoint, "photos-pool-0-3.photos-hl.media.svc:9000");
    assert_eq!(s.rpc, "photos-pool-0-3.photos-hl.media.svc:9100");
    assert_eq!(
        s.drives,
        [std::path::PathBuf::from("/data/0"), "/data/1".into()]
    );
    assert_eq!(parsed.pools[0].parity, Some(2));
    // Every server finds itself under its pod name (its --node argument).
    assert_eq!(parsed.server("photos-big-2").unwrap().pool, 1);
    // Publishing only the first pool (the second is still starting) is a valid file too.
    assert_eq!(topology(&store, "cluster-1", 1).unwrap().pools.len(), 1);
}

#[test]
fn a_pool_that_cannot_be_cut_into_sets_is_refused_with_the_servers_reason() {
    let store = ObjectStore::test().with_pools(vec![pool("odd", 17, 1)]);
    let err = topology(&store, "c", 1).unwrap_err().to_string();
    assert!(err.contains("odd"), "{err}");
    let mut store = ObjectStore::test().with_pools(vec![pool("pool-0", 2, 2)]);
    store.spec.erasure = Some(ErasureSpec { parity: Some(3) });
    assert!(topology(&store, "c", 1)
        .unwrap_err()
        .to_string()
        .contains("parity"));
}

#[test]
fn disruption_budgets_keep_evictions_within_parity() {
    let budget = |servers, drives| {
        let store = ObjectStore::test().with_pools(vec![pool("p", servers, drives)]);
        let layout = pool_layout(&store, &store.spec.pools[0]).unwrap();
        let pdb = pod_disruption_budget(&store, &store.spec.pools[0], &layout);
        assert_eq!(pdb.metadata.name.as_deref(), Some("photos-p"));
        match pdb.spec.unwrap().max_unavailable.unwrap() {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n,
            other => panic!("{other:?}"),
        }
    };
    // 4×2: one set of 8 (5+3), write quorum 5, a server holds 2 of its drives: 1 server.
    assert_eq!(budget(4, 2), 1);
    // 4×1: 2+2, write quorum 3: 1 server.
    assert_eq!(budget(4, 1), 1);
    // 8×2: one set of 16 (12+4), 2 drives per server: 2 servers.
    assert_eq!(budget(8, 2), 2);
    // A single server, or a single drive, has no room: no voluntary eviction.
    assert_eq!(budget(1, 4), 0);
    assert_eq!(budget(1, 1), 0);
}

#[test]
fn services_give_peers_stable_names_and_clients_one_endpoint() {
    let store = ObjectStore::test();
    let hl = headless_service(&store);
    assert_eq!(hl.metadata.name.as_deref(), Some("photos-hl"));
    let spec = hl.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.publish_not_ready_addresses, Some(true));
    let ports: Vec<_> = spec.ports.unwrap().iter().map(|p| p.port).collect();
    assert_eq!(ports, [9000, 9100]);
    let client = client_service(&store);
    assert_eq!(client.metadata.name.as_deref(), Some("photos"));
    let spec = client.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.selector.unwrap()["coffer.dev/store"], "photos");
    assert_eq!(endpoint_url(&store, NS), "http://photos.media.svc:9000");
    assert_eq!(
        server_url(&store, NS, "photos-pool-0-2"),
        "http://photos-pool-0-2.photos-hl.media.svc:9000"
    );
}

#[test]
fn generated_secrets_are_random_and_outlive_a_retained_store() {
    let store = ObjectStore::test();
    let (a, b) = (root_secret(&store), root_secret(&store));
    assert_eq!(a.metadata.name.as_deref(), Some("photos-root"));
    let data = a.data.clone().unwrap();
    let user = String::from_utf8(data[ROOT_USER_KEY].0.clone()).unwrap();
    assert!(user.starts_with("COFFER") && user.len() == 22, "{user}");
    assert_eq!(data[ROOT_PASSWORD_KEY].0.len(), 40);
    assert_ne!(a.data, b.data);
    assert!(a.metadata.owner_references.is_none());
    let c = cluster_secret(&store);
    assert_eq!(c.metadata.name.as_deref(), Some("photos-cluster-secret"));
    assert_eq!(c.data.unwrap()[CLUSTER_SECRET_KEY].0.len(), 64);
}

#[test]
fn an_access_key_secret_carries_every_convention_and_a_content_hash() {
    let key = AccessKey::test("app", "photos");
    let buckets = ["photos".to_string(), "thumbs".to_string()];
    let input = |secret| AccessKeySecretInput {
        access_key_id: "CKEXAMPLE",
        secret_access_key: secret,
        host: "photos.media.svc",
        tls: false,
        region: "us-east-1",
        buckets: &buckets,
        rotation_state: "{}",
    };
    let s = access_key_secret(&key, &input("s3cr3t"));
    assert_eq!(s.metadata.name.as_deref(), Some("app"));
    assert_eq!(
        s.metadata.owner_references.as_ref().unwrap()[0].kind,
        "AccessKey"
    );
    let data = s.data.clone().unwrap();
    let get = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(get("AWS_ACCESS_KEY_ID"), "CKEXAMPLE");
    assert_eq!(get("AWS_SECRET_ACCESS_KEY"), "s3cr3t");
    assert_eq!(get("AWS_ENDPOINT_URL"), "http://photos.media.svc:9000");
    assert_eq!(get("AWS_REGION"), "us-east-1");
    assert_eq!(get("BUCKET_NAME"), "photos");
    assert_eq!(get("BUCKET_HOST"), "photos.media.svc");
    assert_eq!(get("BUCKET_PORT"), "9000");
    assert_eq!(get("COSI_S3_ENDPOINT"), "http://photos.media.svc:9000");
    assert_eq!(get("COSI_S3_ACCESS_KEY_ID"), "CKEXAMPLE");
    assert_eq!(get("COSI_S3_ACCESS_SECRET_KEY"), "s3cr3t");
    let hash = |s: &k8s_openapi::api::core::v1::Secret| {
        s.metadata.annotations.as_ref().unwrap()[CONTENT_HASH].clone()
    };
    assert_eq!(hash(&s), hash(&access_key_secret(&key, &input("s3cr3t"))));
    assert_ne!(hash(&s), hash(&access_key_secret(&key, &input("rotated"))));
}

fn container(
    sts: &k8s_openapi::api::apps::v1::StatefulSet,
) -> k8s_openapi::api::core::v1::Container {
    sts.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .clone()
}

fn probe_schemes(c: &k8s_openapi::api::core::v1::Container) -> Vec<String> {
    [&c.startup_probe, &c.liveness_probe, &c.readiness_probe]
        .iter()
        .map(|p| {
            let get = p.as_ref().unwrap().http_get.as_ref().unwrap();
            get.scheme.clone().unwrap()
        })
        .collect()
}

#[test]
fn a_store_with_tls_mounts_its_secret_serves_https_and_secures_peer_rpc() {
    let store = ObjectStore::test().with_tls("photos-tls");
    let sts = statefulset(&store, &store.spec.pools[0], "coffer:1");
    let c = container(&sts);
    let args = c.args.clone().unwrap();
    // The certificate, its key and the CA peers are trusted by; the drives stay last.
    let flag = |f: &str| {
        let i = args
            .iter()
            .position(|a| a == f)
            .unwrap_or_else(|| panic!("{f} in {args:?}"));
        args[i + 1].clone()
    };
    assert_eq!(flag("--tls-cert"), "/etc/coffer-tls/tls.crt");
    assert_eq!(flag("--tls-key"), "/etc/coffer-tls/tls.key");
    assert_eq!(flag("--tls-ca"), "/etc/coffer-tls/ca.crt");
    assert_eq!(&args[args.len() - 2..], ["/data/0", "/data/1"]);

    let mount = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == "/etc/coffer-tls")
        .expect("the TLS Secret is mounted");
    assert_eq!(mount.read_only, Some(true));
    let pod = sts.spec.as_ref().unwrap().template.spec.clone().unwrap();
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    let secret = volume.secret.as_ref().expect("a Secret volume");
    assert_eq!(secret.secret_name.as_deref(), Some("photos-tls"));
    let keys: Vec<&str> = secret
        .items
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| i.key.as_str())
        .collect();
    assert_eq!(keys, ["tls.crt", "tls.key", "ca.crt"]);
    // The private key is not world-readable.
    assert_eq!(secret.default_mode, Some(0o440));

    assert_eq!(probe_schemes(&c), ["HTTPS", "HTTPS", "HTTPS"]);
    assert_eq!(endpoint_url(&store, NS), "https://photos.media.svc:9000");
    assert_eq!(
        server_url(&store, NS, "photos-pool-0-2"),
        "https://photos-pool-0-2.photos-hl.media.svc:9000"
    );

    let key = AccessKey::test("app", "photos");
    let buckets = ["photos".to_string()];
    let s = access_key_secret(
        &key,
        &AccessKeySecretInput {
            access_key_id: "CKEXAMPLE",
            secret_access_key: "s3cr3t",
            host: "photos.media.svc",
            tls: true,
            region: "us-east-1",
            buckets: &buckets,
            rotation_state: "{}",
        },
    );
    let data = s.data.unwrap();
    for k in ["AWS_ENDPOINT_URL", "COSI_S3_ENDPOINT"] {
        assert_eq!(data[k].0, b"https://photos.media.svc:9000", "{k}");
    }
}

#[test]
fn a_store_without_tls_has_no_certificate_and_probes_over_http() {
    let store = ObjectStore::test();
    let sts = statefulset(&store, &store.spec.pools[0], "coffer:1");
    let c = container(&sts);
    assert!(!c
        .args
        .clone()
        .unwrap()
        .iter()
        .any(|a| a.starts_with("--tls")));
    assert_eq!(probe_schemes(&c), ["HTTP", "HTTP", "HTTP"]);
    let pod = sts.spec.unwrap().template.spec.unwrap();
    assert!(pod.volumes.unwrap().iter().all(|v| v.secret.is_none()));
}
