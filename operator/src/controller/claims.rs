//! Which Bucket resource manages which bucket of a store, decided across namespaces. The
//! record lives beside the store — ConfigMap `<store>-bucket-claims` in the store's
//! namespace, one key per bucket name holding the claimant's namespace, name and uid — and is
//! changed only by conditional updates (the resourceVersion read), so of two Buckets `a/x`
//! and `b/x` reconciled at once, by one operator watching both namespaces through separate
//! caches or by two, exactly one records its claim; the other reads it and is refused.
//!
//! A claim is written before the bucket is created (persist before acting), and released
//! when its Bucket resource is deleted. A claim whose Bucket resource no longer exists (its
//! finalizer removed by hand) is stale and may be replaced. The ConfigMap has no owner
//! reference: it outlives a store deleted with `storageDeletionPolicy: Retain`, as its
//! buckets do. (A ConfigMap holds up to 1 MiB: some ten thousand claims.)

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::{Context, Result};
use crate::crd::{Bucket, ObjectStore};
use crate::resources::{bucket_claims_name, store_labels, FIELD_MANAGER};

/// The Bucket resource holding a bucket name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Claim {
    pub fn of(bucket: &Bucket) -> Claim {
        Claim {
            namespace: bucket.namespace().unwrap_or_default(),
            name: bucket.name_any(),
            uid: bucket.uid().unwrap_or_default(),
        }
    }
}

/// The claims of one store.
pub struct Claims<'a> {
    ctx: &'a Context,
    api: Api<ConfigMap>,
    store: &'a ObjectStore,
    name: String,
}

/// How many conditional updates to try when other writers keep winning.
const ATTEMPTS: usize = 8;

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(e) if e.code == 409)
}

impl<'a> Claims<'a> {
    pub fn of(ctx: &'a Context, store: &'a ObjectStore, store_ns: &str) -> Claims<'a> {
        Claims {
            ctx,
            api: Api::namespaced(ctx.client.clone(), store_ns),
            store,
            name: bucket_claims_name(&store.name_any()),
        }
    }

    fn recorded(cm: Option<&ConfigMap>, bucket: &str) -> Option<Claim> {
        let text = cm?.data.as_ref()?.get(bucket)?;
        serde_json::from_str(text).ok()
    }

    /// Whether the claimant still exists (the same resource, not one re-created under its
    /// name). Unknown (no right to read it, an API error) counts as existing.
    async fn alive(&self, claim: &Claim) -> bool {
        let api: Api<Bucket> = Api::namespaced(self.ctx.client.clone(), &claim.namespace);
        match api.get_opt(&claim.name).await {
            Ok(Some(b)) => b.uid().as_deref() == Some(claim.uid.as_str()),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The live claim on `bucket`, if any.
    pub async fn holder(&self, bucket: &str) -> Result<Option<Claim>> {
        let cm = self.api.get_opt(&self.name).await?;
        match Self::recorded(cm.as_ref(), bucket) {
            Some(c) if self.alive(&c).await => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    /// Records `claim` on `bucket` unless another live claim holds it. Returns the holder
    /// afterwards: `claim` itself, or the one that was there (or won a race) first.
    pub async fn take(&self, bucket: &str, claim: &Claim) -> Result<Claim> {
        let text = serde_json::to_string(claim).expect("a claim serializes");
        for _ in 0..ATTEMPTS {
            let cm = self.api.get_opt(&self.name).await?;
            if let Some(current) = Self::recorded(cm.as_ref(), bucket) {
                if current.uid == claim.uid || self.alive(&current).await {
                    return Ok(current);
                }
            }
            let written = match cm {
                Some(mut cm) => {
                    cm.data
                        .get_or_insert_with(Default::default)
                        .insert(bucket.to_string(), text.clone());
                    self.api
                        .replace(&self.name, &post_params(), &cm)
                        .await
                        .map(|_| ())
                }
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            namespace: self.store.namespace(),
                            labels: Some(store_labels(self.store)),
                            ..ObjectMeta::default()
                        },
                        data: Some([(bucket.to_string(), text.clone())].into()),
                        ..ConfigMap::default()
                    };
                    self.api.create(&post_params(), &cm).await.map(|_| ())
                }
            };
            match written {
                Ok(()) => return Ok(claim.clone()),
                Err(e) if conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(super::Error::Invalid(format!(
            "could not record the claim on bucket {bucket}: {ATTEMPTS} conflicting updates"
        )))
    }

    /// Removes the claim of resource `uid` on `bucket`, if it holds one.
    pub async fn release(&self, bucket: &str, uid: &str) -> Result<()> {
        for _ in 0..ATTEMPTS {
            let Some(mut cm) = self.api.get_opt(&self.name).await? else {
                return Ok(());
            };
            if Self::recorded(Some(&cm), bucket).is_none_or(|c| c.uid != uid) {
                return Ok(());
            }
            cm.data.get_or_insert_with(Default::default).remove(bucket);
            match self.api.replace(&self.name, &post_params(), &cm).await {
                Ok(_) => return Ok(()),
                Err(e) if conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(super::Error::Invalid(format!(
            "could not release the claim on bucket {bucket}: {ATTEMPTS} conflicting updates"
        )))
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}
