use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::store::erasure::{set_for_key, ErasureGeometry};

/// The first ```json block of docs/topology.md: the documented example must parse.
fn documented_example() -> &'static str {
    let doc = include_str!("../../../docs/topology.md");
    let start = doc
        .find("```json\n")
        .expect("docs/topology.md has a ```json example")
        + 8;
    let len = doc[start..]
        .find("```")
        .expect("the json example is closed");
    &doc[start..start + len]
}

/// A valid document of one pool: `servers` × `drives`, optional setSize / parity.
fn pool_json(name: &str, servers: usize, drives: usize, offset: usize) -> Value {
    let servers: Vec<Value> = (0..servers)
        .map(|i| {
            let n = offset + i;
            json!({
                "name": format!("coffer-{n}"),
                "endpoint": format!("coffer-{n}.coffer-hl.ns.svc:9000"),
                "rpc": format!("coffer-{n}.coffer-hl.ns.svc:9100"),
                "drives": (0..drives).map(|d| format!("/data/{d}")).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "name": name, "servers": servers })
}

fn doc(servers: usize, drives: usize) -> Value {
    json!({ "version": 1, "clusterId": "c0ffee", "pools": [pool_json("pool-0", servers, drives, 0)] })
}

fn parse(value: &Value) -> Result<Topology, TopologyError> {
    Topology::parse(&value.to_string())
}

fn layout(servers: usize, drives: usize) -> PoolLayout {
    parse(&doc(servers, drives)).unwrap().pools[0]
        .layout()
        .unwrap()
}

/// The sets as `(server, drive)` pairs, for compact fixed vectors.
fn pairs(layout: &PoolLayout) -> Vec<Vec<(usize, usize)>> {
    layout
        .sets()
        .iter()
        .map(|s| s.drives.iter().map(|d| (d.server, d.drive)).collect())
        .collect()
}

/// Every drive is in exactly one set, set indexes count up, `locate` inverts `sets`, and no
/// server holds more than ⌈E/S⌉ drives of one set (the least possible) — so a set spans
/// `min(E, S)` servers.
fn assert_spread(layout: &PoolLayout) {
    let sets = layout.sets();
    assert_eq!(sets.len(), layout.set_count());
    assert_eq!(layout.set_count() * layout.set_size, layout.drive_count());
    let mut seen = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(set.index, i);
        assert_eq!(set.drives.len(), layout.set_size);
        let mut per_server = HashMap::new();
        for (slot, d) in set.drives.iter().enumerate() {
            assert!(d.server < layout.servers && d.drive < layout.drives_per_server);
            assert!(seen.insert(*d, (i, slot)).is_none(), "{d:?} in two sets");
            assert_eq!(layout.locate(d.server, d.drive), Some((i, slot)));
            *per_server.entry(d.server).or_insert(0usize) += 1;
        }
        let most = per_server.values().max().copied().unwrap();
        assert_eq!(
            most,
            layout.set_size.div_ceil(layout.servers),
            "set {i}: {per_server:?}"
        );
        assert_eq!(per_server.len(), layout.set_size.min(layout.servers));
    }
    assert_eq!(seen.len(), layout.drive_count());
    assert_eq!(layout.locate(layout.servers, 0), None);
    assert_eq!(layout.locate(0, layout.drives_per_server), None);
}

fn err(value: &Value) -> TopologyError {
    parse(value).expect_err("the document must be refused")
}

// ---------------------------------------------------------------- parsing

#[test]
fn documented_example_parses() {
    let topology = Topology::parse(documented_example()).unwrap();
    assert_eq!(topology.version, TOPOLOGY_VERSION);
    assert_eq!(topology.pools.len(), 2);
    let pool0 = topology.pools[0].layout().unwrap();
    assert_eq!(
        (pool0.servers, pool0.drives_per_server, pool0.set_size),
        (4, 2, 4)
    );
    assert_eq!(pool0.geometry, ErasureGeometry::new(2, 2).unwrap());
    // The second pool leaves setSize and parity to their defaults: 4 × 4 drives → sets of 16,
    // 12+4.
    let pool1 = topology.pools[1].layout().unwrap();
    assert_eq!((pool1.set_size, pool1.set_count()), (16, 1));
    assert_eq!(pool1.geometry, ErasureGeometry::new(12, 4).unwrap());
    let server = topology.server("coffer-pool-1-2").unwrap();
    assert_eq!((server.pool, server.server), (1, 2));
    assert_eq!(server.spec.rpc, "coffer-pool-1-2.coffer-hl.ns.svc:9100");
    // Written back and read again, it is the same topology.
    assert_eq!(
        Topology::parse(&topology.to_json().unwrap()).unwrap(),
        topology
    );
}

#[test]
fn load_reads_a_file_and_names_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.json");
    std::fs::write(&path, documented_example()).unwrap();
    assert_eq!(
        Topology::load(&path).unwrap(),
        Topology::parse(documented_example()).unwrap()
    );
    let missing = dir.path().join("nope.json");
    let e = Topology::load(&missing).unwrap_err();
    assert!(
        matches!(e, TopologyError::Io { ref path, .. } if *path == missing),
        "{e}"
    );
    assert!(e.to_string().contains("nope.json"));
}

#[test]
fn versions_are_checked_first() {
    let mut v = doc(4, 1);
    v["version"] = json!(2);
    // A future version may change anything else: refused by version, not by schema.
    v["pools"] = json!("something new");
    let e = err(&v);
    assert!(
        matches!(
            e,
            TopologyError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade coffer-server"), "{e}");

    let mut v = doc(4, 1);
    v.as_object_mut().unwrap().remove("version");
    assert!(matches!(
        err(&v),
        TopologyError::MissingVersion { supported: 1 }
    ));
    for bad in [json!(0), json!(-1), json!("1"), json!(1.5)] {
        v["version"] = bad;
        assert!(matches!(err(&v), TopologyError::InvalidVersion { .. }));
    }
    assert!(matches!(
        Topology::parse("[1]"),
        Err(TopologyError::MissingVersion { .. })
    ));
}

#[test]
fn syntax_and_schema_errors() {
    assert!(matches!(
        Topology::parse("{\"version\": 1,"),
        Err(TopologyError::Syntax(_))
    ));
    // Unknown fields are refused at every level: a typo is an error, not an ignored setting.
    let mut v = doc(4, 1);
    v["pools"][0]["setsize"] = json!(4);
    let e = err(&v);
    assert!(matches!(e, TopologyError::Schema { version: 1, .. }), "{e}");
    assert!(e.to_string().contains("setsize"), "{e}");
    let mut v = doc(4, 1);
    v["pools"][0]["servers"][1]["weight"] = json!(1);
    assert!(matches!(err(&v), TopologyError::Schema { .. }));
    let mut v = doc(4, 1);
    v["pools"][0]["parity"] = json!(-1);
    assert!(matches!(err(&v), TopologyError::Schema { .. }));
    let mut v = doc(4, 1);
    v["pools"][0]["servers"][0]
        .as_object_mut()
        .unwrap()
        .remove("rpc");
    assert!(err(&v).to_string().contains("rpc"));
}

// ---------------------------------------------------------------- validation

#[test]
fn cluster_id_pools_and_names() {
    let mut v = doc(4, 1);
    v["clusterId"] = json!(" ");
    assert!(matches!(err(&v), TopologyError::EmptyClusterId));
    let mut v = doc(4, 1);
    v["pools"] = json!([]);
    assert!(matches!(err(&v), TopologyError::NoPools));
    let mut v = doc(4, 1);
    v["pools"][0]["servers"] = json!([]);
    assert!(matches!(err(&v), TopologyError::NoServers { ref pool } if pool == "pool-0"));
    for bad in ["", "pool 0", "pool/0", &"p".repeat(254)] {
        let mut v = doc(4, 1);
        v["pools"][0]["name"] = json!(bad);
        assert!(
            matches!(err(&v), TopologyError::InvalidName { what: "pool", .. }),
            "{bad:?}"
        );
        let mut v = doc(4, 1);
        v["pools"][0]["servers"][3]["name"] = json!(bad);
        assert!(matches!(
            err(&v),
            TopologyError::InvalidName { what: "server", .. }
        ));
    }
}

#[test]
fn names_are_unique_across_the_cluster() {
    let v = json!({ "version": 1, "clusterId": "c", "pools": [
        pool_json("a", 4, 1, 0), pool_json("a", 4, 1, 4)] });
    assert!(matches!(err(&v), TopologyError::DuplicatePool(ref p) if p == "a"));
    // Server coffer-3 in both pools (offset 3 overlaps 0..4).
    let v = json!({ "version": 1, "clusterId": "c", "pools": [
        pool_json("a", 4, 1, 0), pool_json("b", 4, 1, 3)] });
    assert!(
        matches!(err(&v), TopologyError::DuplicateServer { ref server } if server == "coffer-3")
    );
}

#[test]
fn addresses_are_host_port_and_unique() {
    let mut v = doc(4, 1);
    // Another server's RPC address as this server's S3 endpoint, differing only in case.
    v["pools"][0]["servers"][2]["endpoint"] = json!("COFFER-1.coffer-hl.ns.svc:9100");
    let e = err(&v);
    assert!(
        matches!(e, TopologyError::DuplicateAddress { ref first, ref second, .. }
            if first == "coffer-1" && second == "coffer-2"),
        "{e}"
    );
    let mut v = doc(4, 1);
    v["pools"][0]["servers"][0]["rpc"] = json!("coffer-0.coffer-hl.ns.svc:9000");
    assert!(matches!(err(&v), TopologyError::DuplicateAddress { .. }));
    for bad in [
        "coffer-0",
        ":9000",
        "host:",
        "host:0",
        "host:65536",
        "host:http",
        "::1:9000",
        "http://host:9000",
        "ho st:9000",
    ] {
        let mut v = doc(4, 1);
        v["pools"][0]["servers"][0]["rpc"] = json!(bad);
        let e = err(&v);
        assert!(
            matches!(e, TopologyError::InvalidAddress { field: "rpc", .. }),
            "{bad}: {e}"
        );
    }
    let mut v = doc(4, 1);
    v["pools"][0]["servers"][0]["rpc"] = json!("[::1]:9100");
    v["pools"][0]["servers"][1]["rpc"] = json!("10.0.0.1:9100");
    parse(&v).unwrap();
}

#[test]
fn drives_are_even_non_empty_and_unique() {
    let mut v = doc(4, 2);
    v["pools"][0]["servers"][1]["drives"] = json!(["/data/0"]);
    let e = err(&v);
    assert!(
        matches!(e, TopologyError::UnevenDrives { ref server, drives: 1, expected: 2, .. }
            if server == "coffer-1"),
        "{e}"
    );
    let mut v = doc(4, 2);
    v["pools"][0]["servers"][0]["drives"] = json!([]);
    assert!(matches!(err(&v), TopologyError::NoDrives { .. }));
    let mut v = doc(4, 2);
    v["pools"][0]["servers"][3]["drives"] = json!(["/data/0", "/data/0/"]);
    assert!(matches!(err(&v), TopologyError::DuplicateDrive { .. }));
    let mut v = doc(4, 2);
    v["pools"][0]["servers"][3]["drives"] = json!(["/data/0", ""]);
    assert!(matches!(err(&v), TopologyError::InvalidDrive { .. }));
}

#[test]
fn set_size_rules() {
    let with = |servers, drives, set_size: Value| {
        let mut v = doc(servers, drives);
        v["pools"][0]["setSize"] = set_size;
        parse(&v)
    };
    // Explicit sizes that fit.
    assert_eq!(
        with(4, 2, json!(4)).unwrap().pools[0]
            .layout()
            .unwrap()
            .set_count(),
        2
    );
    assert_eq!(
        with(4, 2, json!(8)).unwrap().pools[0]
            .layout()
            .unwrap()
            .set_count(),
        1
    );
    assert_eq!(
        with(3, 1, json!(3)).unwrap().pools[0]
            .layout()
            .unwrap()
            .set_size,
        3
    );
    // Out of range, not a divisor, or not all drives of a small pool.
    for (servers, drives, e) in [(4, 2, 2), (4, 1, 3), (8, 4, 32), (17, 1, 17), (4, 2, 0)] {
        let err = with(servers, drives, json!(e)).unwrap_err();
        assert!(matches!(err, TopologyError::InvalidSetSize { set_size, .. } if set_size == e));
        assert!(err.to_string().contains("between 4 and 16"), "{err}");
    }
    let err = with(4, 3, json!(8)).unwrap_err();
    assert!(err.to_string().contains("divide"), "{err}");
    let err = with(3, 1, json!(2)).unwrap_err();
    assert!(err.to_string().contains("fewer than 4"), "{err}");
    // No default fits a prime number of drives above 16.
    let err = parse(&doc(17, 1)).unwrap_err();
    assert!(
        matches!(err, TopologyError::NoSetSize { drives: 17, .. }),
        "{err}"
    );
}

#[test]
fn default_set_sizes() {
    let expected = [
        (0, None),
        (1, Some(1)),
        (2, Some(2)),
        (3, Some(3)),
        (4, Some(4)),
        (5, Some(5)),
        (6, Some(6)),
        (7, Some(7)),
        (8, Some(8)),
        (12, Some(12)),
        (16, Some(16)),
        (17, None),
        (18, Some(9)),
        (20, Some(10)),
        (24, Some(12)),
        (32, Some(16)),
        (34, None),
        (36, Some(12)),
        (48, Some(16)),
        (64, Some(16)),
        (100, Some(10)),
    ];
    for (drives, set_size) in expected {
        assert_eq!(default_set_size(drives), set_size, "{drives} drives");
    }
}

#[test]
fn parity_defaults_by_set_size_and_is_at_most_half() {
    for (servers, drives, k, m) in [
        (1, 1, 1, 0),
        (2, 1, 1, 1),
        (3, 1, 2, 1),
        (4, 1, 2, 2),
        (5, 1, 3, 2),
        (6, 1, 4, 2),
        (8, 1, 5, 3),
        (12, 1, 8, 4),
        (16, 1, 12, 4),
        (8, 2, 12, 4),
    ] {
        let geometry = layout(servers, drives).geometry;
        assert_eq!(
            geometry,
            ErasureGeometry::new(k, m).unwrap(),
            "{servers}×{drives}"
        );
        assert_eq!(
            geometry,
            ErasureGeometry::default_for(servers * drives).unwrap()
        );
    }
    let with = |servers, parity| {
        let mut v = doc(servers, 1);
        v["pools"][0]["parity"] = json!(parity);
        parse(&v)
    };
    assert_eq!(
        with(4, 1).unwrap().pools[0].layout().unwrap().geometry.data,
        3
    );
    assert_eq!(
        with(4, 0).unwrap().pools[0].layout().unwrap().geometry.data,
        4
    );
    assert_eq!(
        with(6, 3).unwrap().pools[0].layout().unwrap().geometry.data,
        3
    );
    assert_eq!(
        with(1, 0).unwrap().pools[0]
            .layout()
            .unwrap()
            .geometry
            .total(),
        1
    );
    for (servers, parity) in [(4, 3), (4, 4), (5, 3), (1, 1), (16, 9)] {
        let e = with(servers, parity).unwrap_err();
        assert!(
            matches!(e, TopologyError::InvalidParity { parity: p, set_size, .. }
                if p == parity && set_size == servers),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------- layout

#[test]
fn layouts_are_spread_over_servers() {
    for (servers, drives, set_size, sets) in [
        (1, 4, 4, 1),
        (4, 1, 4, 1),
        (4, 2, 8, 1),
        (2, 4, 8, 1),
        (3, 2, 6, 1),
        (16, 1, 16, 1),
        (8, 2, 16, 1),
        (1, 1, 1, 1),
        (2, 1, 2, 1),
        (3, 1, 3, 1),
        (8, 3, 12, 2),
        (6, 4, 12, 2),
        (9, 2, 9, 2),
        (5, 4, 10, 2),
        (32, 1, 16, 2),
        (4, 16, 16, 4),
    ] {
        let layout = layout(servers, drives);
        assert_eq!(
            (layout.set_size, layout.set_count()),
            (set_size, sets),
            "{servers}×{drives}"
        );
        assert_spread(&layout);
    }
    // Every geometry a default set size exists for, and every explicit set size that fits.
    for servers in 1..=20 {
        for drives in 1..=8 {
            let n = servers * drives;
            let sizes: Vec<usize> = if n < MIN_SET_SIZE {
                vec![n]
            } else {
                (MIN_SET_SIZE..=16).filter(|e| n % e == 0).collect()
            };
            for set_size in sizes {
                let mut v = doc(servers, drives);
                v["pools"][0]["setSize"] = json!(set_size);
                assert_spread(&parse(&v).unwrap().pools[0].layout().unwrap());
            }
        }
    }
}

/// Persisted decision: these exact layouts are recorded in drives' format files.
#[test]
fn layout_fixed_vectors() {
    let with = |servers, drives, set_size: usize| {
        let mut v = doc(servers, drives);
        v["pools"][0]["setSize"] = json!(set_size);
        pairs(&parse(&v).unwrap().pools[0].layout().unwrap())
    };
    assert_eq!(with(1, 4, 4), [[(0, 0), (0, 1), (0, 2), (0, 3)]]);
    assert_eq!(with(4, 1, 4), [[(0, 0), (1, 0), (2, 0), (3, 0)]]);
    // 4 servers × 2 drives, sets of 4: each set has one drive on every server.
    assert_eq!(
        with(4, 2, 4),
        [
            [(0, 0), (1, 0), (2, 0), (3, 0)],
            [(0, 1), (1, 1), (2, 1), (3, 1)]
        ]
    );
    // 2 servers × 4 drives, sets of 4: each set has two drives on each server.
    assert_eq!(
        with(2, 4, 4),
        [
            [(0, 0), (1, 0), (0, 1), (1, 1)],
            [(0, 2), (1, 2), (0, 3), (1, 3)]
        ]
    );
    assert_eq!(
        with(3, 2, 6),
        [[(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]]
    );
    // 3 servers × 4 drives, sets of 6: a set may start mid-row.
    assert_eq!(
        with(3, 4, 6),
        [
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)],
            [(0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3)],
        ]
    );
    // 8 servers × 3 drives, sets of 12: the second set starts at server 4's drive 1.
    let sets = with(8, 3, 12);
    assert_eq!(sets[0][8..], [(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(sets[1][..5], [(4, 1), (5, 1), (6, 1), (7, 1), (0, 2)]);
    let sets = with(16, 1, 16);
    assert_eq!(sets[0], (0..16).map(|s| (s, 0)).collect::<Vec<_>>());
    let sets = with(8, 2, 16);
    assert_eq!(
        sets[0],
        (0..2)
            .flat_map(|d| (0..8).map(move |s| (s, d)))
            .collect::<Vec<_>>()
    );
    let sets = with(4, 4, 8);
    assert_eq!(
        sets[1],
        [
            (0, 2),
            (1, 2),
            (2, 2),
            (3, 2),
            (0, 3),
            (1, 3),
            (2, 3),
            (3, 3)
        ]
    );
}

#[test]
fn drive_identity_for_format_files() {
    let topology = Topology::parse(documented_example()).unwrap();
    let at = |node: &str, drive: &str| topology.drive_identity(node, Path::new(drive)).unwrap();
    let loc = |pool, set, index| DriveLocation { pool, set, index };
    assert_eq!(at("coffer-pool-0-0", "/data/0"), loc(0, 0, 0));
    assert_eq!(at("coffer-pool-0-3", "/data/0"), loc(0, 0, 3));
    assert_eq!(at("coffer-pool-0-2", "/data/1"), loc(0, 1, 2));
    assert_eq!(at("coffer-pool-0-2", "/data/1/"), loc(0, 1, 2));
    assert_eq!(at("coffer-pool-1-0", "/data/0"), loc(1, 0, 0));
    assert_eq!(at("coffer-pool-1-1", "/data/3"), loc(1, 0, 13));
    let local = topology.local_drives("coffer-pool-0-1").unwrap();
    assert_eq!(
        local,
        [
            (PathBuf::from("/data/0"), loc(0, 0, 1)),
            (PathBuf::from("/data/1"), loc(0, 1, 1))
        ]
    );

    let e = topology
        .drive_identity("coffer-9", Path::new("/data/0"))
        .unwrap_err();
    assert!(matches!(e, TopologyError::UnknownNode { .. }), "{e}");
    assert!(
        e.to_string().contains("coffer-pool-0-0, coffer-pool-0-1"),
        "{e}"
    );
    let e = topology
        .drive_identity("coffer-pool-0-0", Path::new("/data/2"))
        .unwrap_err();
    assert!(matches!(e, TopologyError::UnknownDrive { .. }), "{e}");
}

// ---------------------------------------------------------------- placement

#[test]
fn placement_within_a_pool_is_set_for_key() {
    let topology = parse(&doc(8, 2)).unwrap(); // one set of 16
    let mut v = json!({ "version": 1, "clusterId": "c", "pools": [
        pool_json("a", 4, 2, 0), pool_json("b", 4, 4, 4)] });
    // Pool a: 2 sets of 4; pool b: 4 sets of 4.
    v["pools"][0]["setSize"] = json!(4);
    v["pools"][1]["setSize"] = json!(4);
    let two = parse(&v).unwrap();
    assert_eq!(two.pools[1].layout().unwrap().set_count(), 4);
    for key in ["a", "photos/2024/cat.jpg", "", "ünïcode"] {
        // A single pool ignores the weights, even all zero.
        assert_eq!(
            topology.set_for("bkt", key, &[0]).unwrap(),
            SetId { pool: 0, set: 0 }
        );
        let sets = two.candidate_sets("bkt", key).unwrap();
        assert_eq!(
            sets[0],
            SetId {
                pool: 0,
                set: set_for_key("bkt", key, 2)
            }
        );
        assert_eq!(
            sets[1],
            SetId {
                pool: 1,
                set: set_for_key("bkt", key, 4)
            }
        );
        // All weight on one pool: that pool.
        assert_eq!(two.set_for("bkt", key, &[0, 7]).unwrap(), sets[1]);
        assert_eq!(two.set_for("bkt", key, &[u64::MAX, 0]).unwrap(), sets[0]);
    }
    assert!(matches!(
        two.set_for("bkt", "k", &[1]),
        Err(TopologyError::WeightCount {
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        two.set_for("bkt", "k", &[0, 0]),
        Err(TopologyError::NoFreeSpace)
    ));
    assert!(matches!(
        two.set_in_pool(2, "bkt", "k"),
        Err(TopologyError::UnknownPool { .. })
    ));
}

#[test]
fn pool_choice_follows_free_space() {
    assert_eq!(choose_pool("b", "k", &[]), None);
    assert_eq!(choose_pool("b", "k", &[0, 0, 0]), None);
    // Deterministic, and huge weights do not overflow.
    let weights = [u64::MAX, u64::MAX, u64::MAX];
    assert_eq!(
        choose_pool("b", "k", &weights),
        choose_pool("b", "k", &weights)
    );
    let mut counts = [0usize; 3];
    for i in 0..20_000 {
        let pool = choose_pool("bucket", &format!("object-{i}"), &[100, 300, 0]).unwrap();
        counts[pool] += 1;
    }
    assert_eq!(counts[2], 0, "a full pool gets nothing");
    let share = counts[1] as f64 / 20_000.0;
    assert!(
        (0.72..0.78).contains(&share),
        "pool 1 should get ~75%: {counts:?}"
    );
    let mut counts = [0usize; 2];
    for i in 0..20_000 {
        counts[choose_pool("bucket", &format!("o{i}"), &weights[..2]).unwrap()] += 1;
    }
    assert!(
        counts.iter().all(|&c| (9_400..10_600).contains(&c)),
        "{counts:?}"
    );
}

// ---------------------------------------------------------------- local cluster and updates

#[test]
fn local_cluster_round_trips() {
    let base = Path::new("/tmp/coffer-local");
    for (servers, drives, set_size) in [(1, 1, 1), (1, 4, 4), (4, 1, 4), (4, 2, 8), (3, 2, 6)] {
        let topology = Topology::local_cluster(servers, drives, base, 9000).unwrap();
        let pool = &topology.pools[0];
        assert_eq!(pool.layout().unwrap().set_size, set_size);
        assert_eq!(pool.servers.len(), servers);
        let last = &pool.servers[servers - 1];
        assert_eq!(last.name, format!("node-{}", servers - 1));
        assert_eq!(last.endpoint, format!("127.0.0.1:{}", 9000 + servers - 1));
        assert_eq!(last.rpc, format!("127.0.0.1:{}", 9000 + 2 * servers - 1));
        assert_eq!(
            last.drives[drives - 1],
            base.join(&last.name).join(format!("drive-{}", drives - 1))
        );
        let json = topology.to_json().unwrap();
        assert_eq!(Topology::parse(&json).unwrap(), topology);
        let drive = topology.local_drives(&last.name).unwrap();
        assert_eq!(drive.len(), drives);
    }
    let a = Topology::local_cluster(4, 1, base, 9000).unwrap();
    let b = Topology::local_cluster(4, 1, base, 9000).unwrap();
    assert_ne!(
        a.cluster_id, b.cluster_id,
        "each local cluster is a new deployment"
    );
    for (servers, drives, port) in [
        (0, 1, 9000),
        (1, 0, 9000),
        (17, 1, 9000),
        (4, 1, 0),
        (4, 1, 65530),
    ] {
        let e = Topology::local_cluster(servers, drives, base, port).unwrap_err();
        assert!(matches!(e, TopologyError::LocalCluster(_)), "{e}");
    }
    assert!(Topology::local_cluster(4, 1, base, 65528).is_ok());
}

#[test]
fn updates_append_pools_and_keep_geometry() {
    let one = json!({ "version": 1, "clusterId": "c", "pools": [pool_json("a", 4, 2, 0)] });
    let old = parse(&one).unwrap();
    let mut v = one.clone();
    v["pools"]
        .as_array_mut()
        .unwrap()
        .push(pool_json("b", 4, 4, 4));
    v["pools"][0]["servers"][0]["endpoint"] = json!("10.0.0.7:9000");
    let appended = parse(&v).unwrap();
    old.check_update(&appended).unwrap();
    old.check_update(&old).unwrap();
    // Explicit values equal to the defaults are the same geometry.
    let mut v = one.clone();
    v["pools"][0]["setSize"] = json!(8);
    v["pools"][0]["parity"] = json!(3);
    old.check_update(&parse(&v).unwrap()).unwrap();

    let refused = |v: &Value, what: &str| {
        let e = old.check_update(&parse(v).unwrap()).unwrap_err();
        assert!(matches!(e, TopologyError::IncompatibleUpdate(_)), "{e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
    };
    let mut v = one.clone();
    v["clusterId"] = json!("d");
    refused(&v, "clusterId");
    refused(
        &json!({ "version": 1, "clusterId": "c", "pools": [pool_json("b", 4, 2, 0)] }),
        "append-only",
    );
    let mut v = appended.clone();
    v.pools.remove(0);
    let e = appended.check_update(&v).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let mut v = one.clone();
    v["pools"][0]["setSize"] = json!(4);
    refused(&v, "geometry");
    let mut v = one.clone();
    v["pools"][0]["parity"] = json!(2);
    refused(&v, "geometry");
    refused(
        &json!({ "version": 1, "clusterId": "c", "pools": [pool_json("a", 2, 4, 0)] }),
        "geometry",
    );
    let mut v = one.clone();
    v["pools"][0]["servers"][1]["drives"] = json!(["/data/0", "/mnt/1"]);
    refused(&v, "immutable");
}
