//! Test objects in the shape the API server returns them (name, namespace, uid,
//! generation), built fluently: `ObjectStore::test().with_pools(…)`, `Bucket::test(…)`,
//! `AccessKey::test(…)`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::crd::*;

pub const NS: &str = "media";

fn meta(name: &str, uid: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        uid: Some(uid.into()),
        generation: Some(1),
        resource_version: Some("1".into()),
        creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        )),
        ..ObjectMeta::default()
    }
}

pub fn pool(name: &str, servers: i32, volumes: i32) -> Pool {
    Pool {
        name: name.into(),
        servers,
        volumes_per_server: volumes,
        volume_claim_template: PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity("10Gi".into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        },
        resources: None,
        scheduling: None,
    }
}

impl ObjectStore {
    /// Store `photos` in namespace `media`: one pool `pool-0` of 4 servers × 2 drives.
    pub fn test() -> ObjectStore {
        let mut s = ObjectStore::new(
            "photos",
            ObjectStoreSpec {
                image: Some("coffer:1".into()),
                image_pull_policy: None,
                pools: vec![pool("pool-0", 4, 2)],
                erasure: None,
                root_credentials: None,
                service: None,
                upgrade_strategy: None,
                storage_deletion_policy: StorageDeletionPolicy::Retain,
                region: None,
                tls: None,
                access: None,
            },
        );
        s.metadata = meta("photos", "uid-store");
        s
    }

    pub fn with_pools(mut self, pools: Vec<Pool>) -> Self {
        self.spec.pools = pools;
        self
    }

    pub fn with_image(mut self, image: &str) -> Self {
        self.spec.image = Some(image.into());
        self.metadata.generation = Some(self.metadata.generation.unwrap_or(1) + 1);
        self
    }

    pub fn with_deletion(mut self, policy: StorageDeletionPolicy) -> Self {
        self.spec.storage_deletion_policy = policy;
        self
    }

    /// TLS from the Secret `secret` (`tls.crt`, `tls.key`, `ca.crt`).
    pub fn with_tls(mut self, secret: &str) -> Self {
        self.spec.tls = Some(TlsSpec {
            secret_name: secret.into(),
        });
        self
    }

    /// Buckets and AccessKeys of `namespaces` (besides `media`) may use the store.
    pub fn allowing(mut self, namespaces: &[&str]) -> Self {
        let access = self.spec.access.get_or_insert_with(StoreAccess::default);
        access.allowed_namespaces = namespaces.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Existing buckets nobody created here may be adopted.
    pub fn adopting(mut self) -> Self {
        self.spec
            .access
            .get_or_insert_with(StoreAccess::default)
            .allow_bucket_adoption = true;
        self
    }

    pub fn with_status(mut self, status: ObjectStoreStatus) -> Self {
        self.status = Some(status);
        self
    }

    pub fn deleting(mut self) -> Self {
        self.metadata.deletion_timestamp = self.metadata.creation_timestamp.clone();
        self.metadata.finalizers = Some(vec![crate::controller::STORE_FINALIZER.into()]);
        self
    }

    pub fn finalized(mut self) -> Self {
        self.metadata.finalizers = Some(vec![crate::controller::STORE_FINALIZER.into()]);
        self
    }
}

impl Bucket {
    /// Bucket resource `name` of store `photos`.
    pub fn test(name: &str) -> Bucket {
        let mut b = Bucket::new(
            name,
            BucketSpec {
                store_ref: StoreRef {
                    name: "photos".into(),
                    namespace: None,
                },
                bucket_name: None,
                versioning: None,
                object_lock: None,
                lifecycle: None,
                quota: None,
                policy: None,
                deletion_policy: BucketDeletionPolicy::Retain,
            },
        );
        b.metadata = meta(name, &format!("uid-bucket-{name}"));
        b.metadata.finalizers = Some(vec![crate::controller::BUCKET_FINALIZER.into()]);
        b
    }

    pub fn with_deletion(mut self, policy: BucketDeletionPolicy) -> Self {
        self.spec.deletion_policy = policy;
        self
    }

    pub fn deleting(mut self) -> Self {
        self.metadata.deletion_timestamp = self.metadata.creation_timestamp.clone();
        self
    }
}

impl AccessKey {
    /// AccessKey `name` of store `photos` with ReadWrite access to Bucket resource `bucket`.
    pub fn test(name: &str, bucket: &str) -> AccessKey {
        let mut k = AccessKey::new(
            name,
            AccessKeySpec {
                store_ref: StoreRef {
                    name: "photos".into(),
                    namespace: None,
                },
                buckets: vec![BucketAccess {
                    name: bucket.into(),
                    access_mode: AccessMode::ReadWrite,
                }],
                secret_name: None,
                rotation: None,
                expires_at: None,
            },
        );
        k.metadata = meta(name, &format!("uid-key-{name}"));
        k.metadata.finalizers = Some(vec![crate::controller::KEY_FINALIZER.into()]);
        k
    }

    pub fn deleting(mut self) -> Self {
        self.metadata.deletion_timestamp = self.metadata.creation_timestamp.clone();
        self
    }
}
