//! The generated CRDs: the committed YAML in `crds/` is what `crdgen` writes today, and the
//! schema carries the names, columns and CEL rules users rely on.

use super::*;
use kube::CustomResourceExt;

#[test]
fn committed_crds_match_the_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (dir, (file, crd)) in ["crds", "charts/coffer/crds"]
        .into_iter()
        .flat_map(|d| all().into_iter().map(move |c| (d, c)))
    {
        let path = root.join(dir).join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == to_yaml(&crd),
            "{} is stale: run `cargo run --release -p coffer-operator -- crdgen` at the repository root",
            path.display()
        );
    }
}

fn json(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> String {
    serde_json::to_string(crd).unwrap()
}

#[test]
fn short_names_do_not_collide_with_other_bucket_kinds() {
    let names: Vec<(String, Vec<String>)> = all()
        .into_iter()
        .map(|(_, c)| {
            (
                c.spec.names.kind.clone(),
                c.spec.names.short_names.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("ObjectStore".to_string(), vec!["cos".to_string()]),
            ("Bucket".to_string(), vec!["cbkt".to_string()]),
            ("AccessKey".to_string(), vec!["cak".to_string()]),
        ]
    );
    for (_, crd) in all() {
        assert_eq!(crd.spec.group, "coffer.dev");
        assert_eq!(crd.spec.names.categories, Some(vec!["coffer".to_string()]));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<&str> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Ready") && columns.contains(&"Age"),
            "{columns:?}"
        );
    }
}

#[test]
fn immutability_and_append_only_rules_are_in_the_schema() {
    let store = json(&ObjectStore::crd());
    for rule in [
        "self.servers == oldSelf.servers && self.volumesPerServer == oldSelf.volumesPerServer",
        "size(self) >= size(oldSelf)",
        "self.erasure.parity == oldSelf.erasure.parity",
        "has(self.tls) == has(oldSelf.tls)",
    ] {
        assert!(store.contains(rule), "ObjectStore CRD lacks rule {rule}");
    }
    assert!(store.contains(r#""x-kubernetes-list-type":"map""#));
    let bucket = json(&Bucket::crd());
    for rule in [
        "self.bucketName == oldSelf.bucketName",
        "self.objectLock == oldSelf.objectLock",
        "!self.contains('..')",
    ] {
        assert!(bucket.contains(rule), "Bucket CRD lacks rule {rule}");
    }
}

#[test]
fn the_bucket_name_pattern_accepts_what_the_server_accepts() {
    // The schema's regular expression and the server's validator agree on these names.
    let re_ok = |n: &str| {
        let b = n.as_bytes();
        (3..=63).contains(&b.len())
            && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
            && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    };
    for name in ["photos", "a.b-c", "abc", "my-bucket-2024"] {
        assert!(re_ok(name) && bucket::valid_bucket_name(name), "{name}");
    }
    for name in ["ab", "Photos", "-abc", "abc-", "a_b"] {
        assert!(!re_ok(name) && !bucket::valid_bucket_name(name), "{name}");
    }
    assert!(bucket::BUCKET_NAME_PATTERN.starts_with('^'));
}
