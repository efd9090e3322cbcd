//! The `Bucket` reconciler: creates or adopts the bucket through the admin API, applies its
//! policy, reports usage, refuses a bucket name another Bucket resource already manages, and
//! on deletion honours `deletionPolicy` behind a finalizer.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;

use super::apply::{merge_conditions, now_rfc3339, patch_status};
use super::claims::{Claim, Claims};
use super::object_store::{root_credential, store_ca};
use super::{Context, Error, Result, BUCKET_FINALIZER};
use crate::admin::{Admin, AdminError};
use crate::crd::bucket::valid_bucket_name;
use crate::crd::*;
use crate::resources::{endpoint_url, root_secret_name};

const KIND: &str = "Bucket";

pub async fn reconcile(bucket: Arc<Bucket>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_timer(KIND);
    let ns = bucket
        .namespace()
        .ok_or_else(|| Error::Invalid("a Bucket is namespaced".into()))?;
    let api: Api<Bucket> = Api::namespaced(ctx.client.clone(), &ns);
    // Emptying a bucket before its deletion takes several passes; each is progress, not an
    // error, so it runs before the finalizer helper (which would release the finalizer on
    // any `Ok` from the cleanup).
    if bucket.metadata.deletion_timestamp.is_some()
        && bucket.finalizers().iter().any(|f| f == BUCKET_FINALIZER)
        && bucket.spec.deletion_policy == BucketDeletionPolicy::Delete
    {
        if let Some(action) = empty_before_delete(&bucket, &ctx, &api).await? {
            return Ok(action);
        }
    }
    finalizer(&api, BUCKET_FINALIZER, bucket, |event| async {
        match event {
            Finalizer::Apply(b) => apply(&b, &ctx, &api).await,
            Finalizer::Cleanup(b) => cleanup(&b, &ctx, &api).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// The Bucket resource that manages S3 bucket `name` of store `store_ns/store`: the oldest
/// one naming it (ties broken by uid), so a later claim — from any namespace — is refused.
pub fn bucket_owner<'a>(
    buckets: impl IntoIterator<Item = &'a Bucket>,
    store_ns: &str,
    store: &str,
    name: &str,
) -> Option<&'a Bucket> {
    buckets
        .into_iter()
        .filter(|b| {
            let own_ns = b.namespace().unwrap_or_default();
            b.spec.store_ref.name == store
                && b.spec.store_ref.namespace_or(&own_ns) == store_ns
                && b.bucket_name() == name
        })
        .min_by_key(|b| (b.metadata.creation_timestamp.clone().map(|t| t.0), b.uid()))
}

/// A store reachable through its admin API.
pub(crate) struct Target {
    pub store: ObjectStore,
    pub store_ns: String,
    pub admin: Admin,
}

/// Why a store cannot be used (yet): `refused` when it never will be without a change
/// (the store does not allow the namespace), else a wait (store or credential not there).
pub(crate) struct Unusable {
    pub reason: &'static str,
    pub message: String,
    pub refused: bool,
}

impl Unusable {
    fn wait(reason: &'static str, message: String) -> Unusable {
        Unusable {
            reason,
            message,
            refused: false,
        }
    }
}

/// Finds the store named by `store_ref`, checks that it allows resources of `own_ns`, and
/// reads its root credential.
pub(crate) async fn target(
    ctx: &Context,
    store_ref: &StoreRef,
    own_ns: &str,
) -> Result<std::result::Result<Target, Unusable>> {
    let store_ns = store_ref.namespace_or(own_ns).to_string();
    let stores: Api<ObjectStore> = Api::namespaced(ctx.client.clone(), &store_ns);
    let Some(store) = stores.get_opt(&store_ref.name).await? else {
        return Ok(Err(Unusable::wait(
            "StoreNotFound",
            format!("no ObjectStore {store_ns}/{}", store_ref.name),
        )));
    };
    // Checked before the store's Secrets are read: a namespace the store does not allow
    // never makes the operator act on its behalf.
    if let Err(message) = super::tenancy::check(ctx, &store, &store_ns, own_ns).await? {
        return Ok(Err(Unusable {
            reason: "NamespaceNotAllowed",
            message,
            refused: true,
        }));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &store_ns);
    let root = secrets
        .get_opt(&root_secret_name(&store))
        .await?
        .as_ref()
        .and_then(root_credential);
    let Some(root) = root else {
        return Ok(Err(Unusable::wait(
            "StoreNotReady",
            format!(
                "the root credential Secret of ObjectStore {store_ns}/{} is not there yet",
                store_ref.name
            ),
        )));
    };
    let ca = match store_ca(&secrets, &store).await? {
        Ok(ca) => ca,
        Err(why) => {
            return Ok(Err(Unusable::wait(
                "StoreNotReady",
                format!("ObjectStore {store_ns}/{}: {why}", store_ref.name),
            )))
        }
    };
    let endpoint = endpoint_url(&store, &store_ns);
    let admin = ctx
        .admin
        .client(&endpoint, &root, store.spec.region(), ca.as_deref())?;
    Ok(Ok(Target {
        store,
        store_ns,
        admin,
    }))
}

/// A refusal that stays until something changes: Ready False, Degraded True with `reason`,
/// and a warning Event the first time.
async fn refuse(
    bucket: &Bucket,
    ctx: &Context,
    api: &Api<Bucket>,
    reason: &str,
    message: String,
) -> Result<()> {
    let already = bucket
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .is_some_and(|c| c.reason == reason);
    if !already {
        ctx.event(bucket, true, reason, "Reconcile", message.clone())
            .await;
    }
    write_status(
        bucket,
        api,
        &Outcome::not_ready(reason, message, true),
        |_| {},
    )
    .await
}

/// Who manages S3 bucket `name` of the target store: the recorded claim (see `claims`), or —
/// with none recorded — the oldest Bucket resource this operator's cache knows (resources
/// from before claims were recorded). `Ok(None)`: `bucket` holds it (or may now take it).
async fn other_manager(
    bucket: &Bucket,
    ctx: &Context,
    target: &Target,
    name: &str,
) -> Result<Option<Claim>> {
    let claims = Claims::of(ctx, &target.store, &target.store_ns);
    if let Some(holder) = claims.holder(name).await? {
        return Ok((holder.uid != bucket.uid().unwrap_or_default()).then_some(holder));
    }
    let cached = ctx.buckets.state();
    let candidates = cached
        .iter()
        .map(|b| b.as_ref())
        .chain(std::iter::once(bucket));
    let owner = bucket_owner(candidates, &target.store_ns, &target.store.name_any(), name)
        .expect("the bucket itself is a candidate");
    Ok((owner.uid() != bucket.uid()).then(|| Claim::of(owner)))
}

fn claimed_message(name: &str, target: &Target, holder: &Claim) -> String {
    format!(
        "bucket {name} of ObjectStore {}/{} is managed by Bucket {}/{}",
        target.store_ns,
        target.store.name_any(),
        holder.namespace,
        holder.name
    )
}

/// XML text with the five special characters escaped.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The S3 `LifecycleConfiguration` document of `rules` (`None` for no rules: remove it).
fn lifecycle_document(rules: &[LifecycleRule]) -> Option<String> {
    if rules.is_empty() {
        return None;
    }
    let mut doc = String::from("<LifecycleConfiguration>");
    for r in rules {
        doc.push_str(&format!(
            "<Rule><ID>{}</ID><Filter><Prefix>{}</Prefix></Filter><Status>Enabled</Status>",
            xml_escape(&r.id),
            xml_escape(r.prefix.as_deref().unwrap_or(""))
        ));
        if let Some(d) = r.expiration_days {
            doc.push_str(&format!("<Expiration><Days>{d}</Days></Expiration>"));
        }
        if let Some(d) = r.noncurrent_version_expiration_days {
            doc.push_str(&format!(
                "<NoncurrentVersionExpiration><NoncurrentDays>{d}</NoncurrentDays></NoncurrentVersionExpiration>"
            ));
        }
        if let Some(d) = r.abort_incomplete_multipart_upload_days {
            doc.push_str(&format!(
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>{d}</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
            ));
        }
        doc.push_str("</Rule>");
    }
    doc.push_str("</LifecycleConfiguration>");
    Some(doc)
}

/// A Kubernetes quantity (`500Mi`, `100G`, `1e9`, `1024`) as a number of bytes.
fn parse_quantity(q: &str) -> Result<u64, String> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let factor: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        s if s.starts_with(['e', 'E']) => s[1..]
            .parse::<i32>()
            .map(|e| 10f64.powi(e))
            .map_err(|_| format!("{q:?} is not a quantity"))?,
        _ => return Err(format!("{q:?} is not a quantity")),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{q:?} is not a quantity"))?;
    let bytes = (n * factor).ceil();
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("{q:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// The admin API's bucket settings for `spec`: versioning, object lock with its default
/// retention, and the quota (always sent, so a quota removed from the spec is lifted).
fn bucket_settings(spec: &BucketSpec) -> Result<serde_json::Value, String> {
    use serde_json::{json, Value};
    let mut v = serde_json::Map::new();
    if let Some(versioning) = spec.versioning {
        let status = match versioning {
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        };
        v.insert("versioning".into(), json!(status));
    }
    if let Some(lock) = &spec.object_lock {
        v.insert("objectLock".into(), json!(lock.enabled));
        if lock.enabled {
            let retention = match (&lock.default_retention_mode, lock.default_retention_days) {
                (Some(mode), Some(days)) => json!({ "mode": mode, "days": days }),
                (None, None) => Value::Null,
                _ => {
                    return Err(
                        "objectLock.defaultRetentionMode and defaultRetentionDays go together"
                            .into(),
                    )
                }
            };
            v.insert("defaultRetention".into(), retention);
        }
    }
    let quota = spec.quota.clone().unwrap_or_default();
    let max_bytes = quota.max_size.as_deref().map(parse_quantity).transpose()?;
    v.insert(
        "quota".into(),
        json!({ "maxBytes": max_bytes, "maxObjects": quota.max_objects }),
    );
    Ok(Value::Object(v))
}

struct Outcome {
    ready: bool,
    reason: String,
    message: String,
    degraded: bool,
}

impl Outcome {
    fn not_ready(reason: &str, message: String, degraded: bool) -> Outcome {
        Outcome {
            ready: false,
            reason: reason.into(),
            message,
            degraded,
        }
    }
}

/// Reports an admin API error as the Ready condition. What the server refuses (4xx but
/// 403: a bad policy, a setting it cannot apply) needs a spec change, not a retry; anything
/// else is retried.
async fn refused(bucket: &Bucket, api: &Api<Bucket>, e: AdminError) -> Result<Action> {
    let terminal = e
        .status
        .is_some_and(|s| (400..500).contains(&s) && s != 403);
    write_status(
        bucket,
        api,
        &Outcome::not_ready(&e.reason(), e.message.clone(), terminal),
        |_| {},
    )
    .await?;
    if terminal {
        Ok(Action::await_change())
    } else {
        Err(e.into())
    }
}

async fn write_status(
    bucket: &Bucket,
    api: &Api<Bucket>,
    outcome: &Outcome,
    fill: impl FnOnce(&mut BucketStatus),
) -> Result<()> {
    let generation = bucket.metadata.generation;
    let previous = bucket.status.clone().unwrap_or_default();
    let conditions = vec![
        Condition::new(
            READY,
            outcome.ready,
            &outcome.reason,
            outcome.message.clone(),
            generation,
        ),
        // Waiting (for the store, the server) is progress; Ready and Degraded are settled.
        Condition::new(
            PROGRESSING,
            !outcome.ready && !outcome.degraded,
            if outcome.ready || outcome.degraded {
                "Settled"
            } else {
                &outcome.reason
            },
            String::new(),
            generation,
        ),
        Condition::new(
            DEGRADED,
            outcome.degraded,
            if outcome.degraded {
                &outcome.reason
            } else {
                "AsExpected"
            },
            if outcome.degraded {
                outcome.message.clone()
            } else {
                String::new()
            },
            generation,
        ),
    ];
    let mut status = BucketStatus {
        observed_generation: generation,
        conditions: merge_conditions(&previous.conditions, conditions, &now_rfc3339()),
        ..previous
    };
    fill(&mut status);
    patch_status(api, bucket, bucket.status.as_ref(), &status).await?;
    Ok(())
}

async fn apply(bucket: &Bucket, ctx: &Context, api: &Api<Bucket>) -> Result<Action> {
    let ns = bucket.namespace().unwrap_or_default();
    let name = bucket.bucket_name();
    if !valid_bucket_name(&name) {
        let o = Outcome::not_ready(
            "InvalidBucketName",
            format!("{name:?} is not a valid S3 bucket name"),
            true,
        );
        write_status(bucket, api, &o, |_| {}).await?;
        return Ok(Action::await_change());
    }
    let target = match target(ctx, &bucket.spec.store_ref, &ns).await? {
        Ok(t) => t,
        Err(u) if u.refused => {
            refuse(bucket, ctx, api, u.reason, u.message).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
        Err(u) => {
            write_status(
                bucket,
                api,
                &Outcome::not_ready(u.reason, u.message, false),
                |_| {},
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    if let Some(holder) = other_manager(bucket, ctx, &target, &name).await? {
        let message = claimed_message(&name, &target, &holder);
        refuse(bucket, ctx, api, "BucketClaimed", message).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    let claims = Claims::of(ctx, &target.store, &target.store_ns);
    let me = Claim::of(bucket);
    if claims.holder(&name).await?.is_none() {
        // Not recorded yet: a bucket that exists already was made by someone else (S3, the
        // admin API, a Bucket deleted with Retain) unless this resource managed it before
        // claims were recorded; taking it over needs the store's consent.
        let exists = match target.admin.bucket(&name).await {
            Ok(b) => b.is_some(),
            Err(e) => return refused(bucket, api, e).await,
        };
        let managed_before = bucket
            .status
            .as_ref()
            .and_then(|s| s.bucket_name.as_deref())
            == Some(name.as_str());
        if exists && !managed_before && !target.store.spec.allows_adoption() {
            let message = format!(
                "bucket {name} already exists in ObjectStore {}/{} and no Bucket resource created it; the store must set spec.access.allowBucketAdoption to adopt it",
                target.store_ns,
                target.store.name_any()
            );
            refuse(bucket, ctx, api, "BucketExists", message).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
        // Recorded before the bucket is created (persist before acting): a race with a
        // Bucket of another namespace has one winner.
        let holder = claims.take(&name, &me).await?;
        if holder != me {
            let message = claimed_message(&name, &target, &holder);
            refuse(bucket, ctx, api, "BucketClaimed", message).await?;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
    }

    let settings = match bucket_settings(&bucket.spec) {
        Ok(s) => s,
        Err(message) => {
            let o = Outcome::not_ready("InvalidSetting", message, true);
            write_status(bucket, api, &o, |_| {}).await?;
            return Ok(Action::await_change());
        }
    };
    let info = match target.admin.bucket(&name).await {
        Ok(Some(_)) => {
            if bucket
                .status
                .as_ref()
                .and_then(|s| s.bucket_name.as_ref())
                .is_none()
            {
                ctx.event(
                    bucket,
                    false,
                    "BucketAdopted",
                    "Reconcile",
                    format!("bucket {name} existed; it is now managed here"),
                )
                .await;
            }
            // Applying the settings every time puts back any drift (idempotent).
            target.admin.put_bucket(&name, &settings).await
        }
        Ok(None) => match target.admin.put_bucket(&name, &settings).await {
            Ok(info) => {
                ctx.event(
                    bucket,
                    false,
                    "BucketCreated",
                    "Reconcile",
                    format!("created bucket {name}"),
                )
                .await;
                Ok(info)
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            // Settings the server refuses (object lock on an existing bucket, a bad value)
            // need a spec change, not a retry.
            return refused(bucket, api, e).await;
        }
    };

    if let Some(policy) = &bucket.spec.policy {
        let wanted: serde_json::Value = match serde_json::from_str(policy) {
            Ok(v) => v,
            Err(e) => {
                let o = Outcome::not_ready(
                    "InvalidPolicy",
                    format!("spec.policy is not JSON: {e}"),
                    true,
                );
                write_status(bucket, api, &o, |_| {}).await?;
                return Ok(Action::await_change());
            }
        };
        let result = match target.admin.bucket_policy(&name).await {
            Ok(Some(current)) if current == wanted => Ok(()),
            Ok(_) => target.admin.put_bucket_policy(&name, policy).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // A policy the server refuses (MalformedPolicy) needs a spec change, not a retry.
            return refused(bucket, api, e).await;
        }
    }

    if bucket.spec.policy.is_none() {
        // The spec is the whole truth of a managed bucket: no policy in it, none in force.
        let result = match target.admin.bucket_policy(&name).await {
            Ok(Some(_)) => target.admin.delete_bucket_policy(&name).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return refused(bucket, api, e).await;
        }
    }

    {
        // The spec's rules replace whatever the bucket has; none (or an empty list) removes
        // them.
        let wanted = lifecycle_document(bucket.spec.lifecycle.as_deref().unwrap_or_default());
        let result = match target.admin.bucket_lifecycle(&name).await {
            Ok(current) if current == wanted => Ok(()),
            Ok(_) => {
                target
                    .admin
                    .put_bucket_lifecycle(&name, wanted.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return refused(bucket, api, e).await;
        }
    }

    let outcome = Outcome {
        ready: true,
        reason: "BucketReady".into(),
        message: format!("bucket {name} exists"),
        degraded: false,
    };
    let endpoint = endpoint_url(&target.store, &target.store_ns);
    write_status(bucket, api, &outcome, |s| {
        s.bucket_name = Some(name.clone());
        s.endpoint = Some(endpoint);
        s.usage = Some(BucketUsage {
            objects: info.usage.objects as i64,
            bytes: info.usage.bytes as i64,
            complete: info.usage.complete,
        });
    })
    .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Whether `bucket` manages its S3 bucket in `target`: it holds the recorded claim, or
/// (none recorded: a resource from before claims were recorded) it reported the bucket as
/// its own and is the oldest Bucket resource naming it that the cache knows. A resource that
/// was refused never manages anything, so deleting it never touches the bucket.
async fn manages(bucket: &Bucket, ctx: &Context, target: &Target) -> Result<bool> {
    let name = bucket.bucket_name();
    let claims = Claims::of(ctx, &target.store, &target.store_ns);
    if let Some(holder) = claims.holder(&name).await? {
        return Ok(Some(holder.uid) == bucket.uid());
    }
    let reported = bucket
        .status
        .as_ref()
        .and_then(|s| s.bucket_name.as_deref())
        == Some(name.as_str());
    Ok(reported && other_manager(bucket, ctx, target, &name).await?.is_none())
}

/// One pass of emptying a bucket about to be deleted with `deletionPolicy: Delete`:
/// `Some(requeue)` while versions remain (the status says how it goes), `None` when the
/// bucket is empty or is not this resource's to empty (the cleanup then decides).
async fn empty_before_delete(
    bucket: &Bucket,
    ctx: &Context,
    api: &Api<Bucket>,
) -> Result<Option<Action>> {
    let ns = bucket.namespace().unwrap_or_default();
    let Ok(target) = target(ctx, &bucket.spec.store_ref, &ns).await? else {
        return Ok(None);
    };
    if !manages(bucket, ctx, &target).await? {
        return Ok(None);
    }
    let name = bucket.bucket_name();
    match target.admin.empty_bucket(&name, 10).await {
        Ok((_, true)) => Ok(None),
        Ok((deleted, false)) => {
            let message = format!(
                "emptying bucket {name}: deleted {deleted} object versions and delete markers in this pass"
            );
            write_status(
                bucket,
                api,
                &Outcome::not_ready("Emptying", message, false),
                |_| {},
            )
            .await?;
            Ok(Some(Action::requeue(Duration::from_secs(1))))
        }
        Err(e) if e.is("NoSuchBucket") => Ok(None),
        Err(e) => {
            write_status(
                bucket,
                api,
                &Outcome::not_ready("DeletionFailed", e.message.clone(), false),
                |_| {},
            )
            .await?;
            Err(e.into())
        }
    }
}

async fn cleanup(bucket: &Bucket, ctx: &Context, api: &Api<Bucket>) -> Result<Action> {
    let name = bucket.bucket_name();
    let ns = bucket.namespace().unwrap_or_default();
    let target = match target(ctx, &bucket.spec.store_ref, &ns).await? {
        Ok(t) => t,
        Err(u) => {
            let note = if bucket.spec.deletion_policy == BucketDeletionPolicy::Retain {
                (
                    "BucketRetained",
                    false,
                    format!("deletionPolicy Retain: bucket {name} and its objects stay"),
                )
            } else {
                (
                    "BucketNotDeleted",
                    true,
                    format!("{}: nothing to delete", u.message),
                )
            };
            ctx.event(bucket, note.1, note.0, "Delete", note.2).await;
            return Ok(Action::await_change());
        }
    };
    if !manages(bucket, ctx, &target).await? {
        // Another resource manages this bucket: deleting this one never touches its data.
        return Ok(Action::await_change());
    }
    let claims = Claims::of(ctx, &target.store, &target.store_ns);
    let uid = bucket.uid().unwrap_or_default();
    if bucket.spec.deletion_policy == BucketDeletionPolicy::Retain {
        // The bucket stays, managed by no resource: a new Bucket takes it over only where the
        // store allows adoption.
        claims.release(&name, &uid).await?;
        ctx.event(
            bucket,
            false,
            "BucketRetained",
            "Delete",
            format!("deletionPolicy Retain: bucket {name} and its objects stay"),
        )
        .await;
        return Ok(Action::await_change());
    }
    // Emptied by `empty_before_delete` in the passes before this one; versions written
    // since make the deletion fail below and the next pass empties again.
    match target.admin.delete_bucket(&name).await {
        Ok(()) => {}
        Err(e) if e.is("NoSuchBucket") => {}
        Err(e) => {
            let (reason, message) = if e.is("BucketNotEmpty") {
                (
                    "DeletionBlocked",
                    format!("bucket {name} is not empty: empty it, or set deletionPolicy: Retain"),
                )
            } else {
                ("DeletionFailed", e.message.clone())
            };
            ctx.event(bucket, true, reason, "Delete", message.clone())
                .await;
            write_status(
                bucket,
                api,
                &Outcome::not_ready(reason, message, false),
                |_| {},
            )
            .await?;
            return Err(e.into());
        }
    }
    claims.release(&name, &uid).await?;
    ctx.event(
        bucket,
        false,
        "BucketDeleted",
        "Delete",
        format!("deleted bucket {name}"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_claim_on_a_bucket_name_owns_it_across_namespaces() {
        let mut first = Bucket::test("photos");
        first.metadata.namespace = Some("team-a".into());
        first.spec.store_ref.namespace = Some(crate::fixtures::NS.into());
        let mut second = Bucket::test("photos");
        second.metadata.uid = Some("uid-later".into());
        second.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-02-01T00:00:00Z".parse().unwrap(),
            ));
        let other_name = Bucket::test("thumbs");
        let all = [second.clone(), other_name, first.clone()];
        let owner = bucket_owner(all.iter(), crate::fixtures::NS, "photos", "photos").unwrap();
        assert_eq!(owner.namespace().as_deref(), Some("team-a"));
        // A Bucket of another store with the same name is not a competitor.
        let mut elsewhere = first.clone();
        elsewhere.spec.store_ref.name = "archive".into();
        let candidates = [elsewhere, second.clone()];
        let owner =
            bucket_owner(candidates.iter(), crate::fixtures::NS, "photos", "photos").unwrap();
        assert_eq!(owner.uid(), second.uid());
    }

    #[test]
    fn lifecycle_rules_become_an_s3_document() {
        assert_eq!(lifecycle_document(&[]), None);
        let doc = lifecycle_document(&[LifecycleRule {
            id: "old <logs>".into(),
            prefix: Some("logs/".into()),
            expiration_days: Some(30),
            noncurrent_version_expiration_days: Some(7),
            abort_incomplete_multipart_upload_days: Some(2),
        }])
        .unwrap();
        assert_eq!(
            doc,
            "<LifecycleConfiguration><Rule><ID>old &lt;logs&gt;</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays></NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>"
        );
    }

    #[test]
    fn specs_become_admin_settings() {
        let mut spec = Bucket::test("b").spec;
        assert_eq!(
            bucket_settings(&spec).unwrap(),
            serde_json::json!({ "quota": { "maxBytes": null, "maxObjects": null } })
        );
        spec.versioning = Some(Versioning::Enabled);
        spec.object_lock = Some(ObjectLock {
            enabled: true,
            default_retention_mode: Some("GOVERNANCE".into()),
            default_retention_days: Some(7),
        });
        spec.quota = Some(Quota {
            max_size: Some("1Gi".into()),
            max_objects: Some(10),
        });
        assert_eq!(
            bucket_settings(&spec).unwrap(),
            serde_json::json!({
                "versioning": "Enabled",
                "objectLock": true,
                "defaultRetention": { "mode": "GOVERNANCE", "days": 7 },
                "quota": { "maxBytes": 1073741824u64, "maxObjects": 10 },
            })
        );
        spec.object_lock.as_mut().unwrap().default_retention_days = None;
        assert!(bucket_settings(&spec).is_err());
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_quantity("1024").unwrap(), 1024);
        assert_eq!(parse_quantity("500Mi").unwrap(), 500 * 1024 * 1024);
        assert_eq!(parse_quantity("1.5Gi").unwrap(), 3 * 512 * 1024 * 1024);
        assert_eq!(parse_quantity("100G").unwrap(), 100_000_000_000);
        assert_eq!(parse_quantity("2k").unwrap(), 2000);
        assert_eq!(parse_quantity("1e9").unwrap(), 1_000_000_000);
        assert!(parse_quantity("ten").is_err());
        assert!(parse_quantity("5Qi").is_err());
    }
}
