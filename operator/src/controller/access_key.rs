//! The `AccessKey` reconciler: issues a key scoped to the Bucket resources it names (in its
//! own namespace only), registers it with the store, writes the Secret apps mount, rotates it
//! on request or on schedule (revoking the old key after a grace period), and revokes every
//! key it issued when the resource is deleted. The Secret is the only place the secret key
//! lives outside the store: it never reaches status, Events or logs.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;
use rand::distributions::{Alphanumeric, DistString};

use super::apply::{apply_if_changed, merge_conditions, now_rfc3339, patch_status};
use super::bucket::target;
use super::{Context, Error, Result, KEY_FINALIZER};
use crate::admin::{Admin, Grant, KeyRequest};
use crate::crd::*;
use crate::resources::{access_key_secret, service_host, AccessKeySecretInput, ROTATION_STATE};
use serde::{Deserialize, Serialize};

const KIND: &str = "AccessKey";
const DEFAULT_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

pub async fn reconcile(key: Arc<AccessKey>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_timer(KIND);
    let ns = key
        .namespace()
        .ok_or_else(|| Error::Invalid("an AccessKey is namespaced".into()))?;
    let api: Api<AccessKey> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, KEY_FINALIZER, key, |event| async {
        match event {
            Finalizer::Apply(k) => apply(&k, &ctx, &api, &ns).await,
            Finalizer::Cleanup(k) => cleanup(&k, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Marks the keys this resource issued, so a key orphaned by a crash between registering it
/// and writing the Secret is found and revoked.
pub(crate) fn description(key: &AccessKey) -> String {
    format!(
        "coffer.dev AccessKey {}/{} uid={}",
        key.namespace().unwrap_or_default(),
        key.name_any(),
        key.uid().unwrap_or_default()
    )
}

fn new_key_pair() -> (String, String) {
    let mut rng = rand::rngs::OsRng;
    (
        format!(
            "CK{}",
            Alphanumeric
                .sample_string(&mut rng, 18)
                .to_ascii_uppercase()
        ),
        Alphanumeric.sample_string(&mut rng, 40),
    )
}

fn parse_duration(text: &str) -> std::result::Result<jiff::SignedDuration, String> {
    text.parse::<jiff::SignedDuration>()
        .map_err(|e| format!("{text:?} is not a duration like 1h or 720h: {e}"))
}

fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

/// Why the key must be (re)issued now, if it must.
pub fn rotation_due(
    key: &AccessKey,
    state: &RotationState,
    has_key: bool,
    now: jiff::Timestamp,
) -> std::result::Result<Option<&'static str>, String> {
    if !has_key {
        return Ok(Some("KeyIssued"));
    }
    let status = state;
    let Some(rotation) = &key.spec.rotation else {
        return Ok(None);
    };
    if rotation.requested_at.is_some() && rotation.requested_at != status.handled_rotation_request {
        return Ok(Some("KeyRotated"));
    }
    if let Some(period) = &rotation.period {
        let period = parse_duration(period)?;
        let last = status.last_rotation_time.as_deref().and_then(parse_time);
        if let Some(last) = last {
            if last.checked_add(period).map_err(|e| e.to_string())? <= now {
                return Ok(Some("KeyRotated"));
            }
        }
    }
    Ok(None)
}

/// What a rotation must not forget: the replaced keys still working until their time, when
/// the current key was issued, and which rotation request it answers. Kept in the Secret's
/// `coffer.dev/rotation` annotation, written together with the key it describes; the status
/// repeats it for people.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationState {
    #[serde(default)]
    pub retired_keys: Vec<RetiredKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_rotation_request: Option<String>,
}

impl RotationState {
    /// The state recorded in `secret`, else (a Secret from before the annotation) the one in
    /// `status`.
    pub fn read(secret: Option<&Secret>, status: Option<&AccessKeyStatus>) -> RotationState {
        let recorded = secret
            .and_then(|s| s.annotations().get(ROTATION_STATE))
            .and_then(|text| serde_json::from_str(text).ok());
        recorded.unwrap_or_else(|| {
            let status = status.cloned().unwrap_or_default();
            RotationState {
                retired_keys: status.retired_keys,
                last_rotation_time: status.last_rotation_time,
                handled_rotation_request: status.handled_rotation_request,
            }
        })
    }
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

fn same_expiry(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => parse_time(a).is_some() && parse_time(a) == parse_time(b),
        _ => false,
    }
}

async fn write_status(
    key: &AccessKey,
    api: &Api<AccessKey>,
    ready: bool,
    reason: &str,
    message: String,
    degraded: bool,
    fill: impl FnOnce(&mut AccessKeyStatus),
) -> Result<()> {
    let generation = key.metadata.generation;
    let previous = key.status.clone().unwrap_or_default();
    let conditions = vec![
        Condition::new(READY, ready, reason, message.clone(), generation),
        Condition::new(
            PROGRESSING,
            !ready && !degraded,
            if ready || degraded { "Settled" } else { reason },
            String::new(),
            generation,
        ),
        Condition::new(
            DEGRADED,
            degraded,
            if degraded { reason } else { "AsExpected" },
            if degraded { message } else { String::new() },
            generation,
        ),
    ];
    let mut status = AccessKeyStatus {
        observed_generation: generation,
        conditions: merge_conditions(&previous.conditions, conditions, &now_rfc3339()),
        ..previous
    };
    fill(&mut status);
    patch_status(api, key, key.status.as_ref(), &status).await?;
    Ok(())
}

async fn apply(key: &AccessKey, ctx: &Context, api: &Api<AccessKey>, ns: &str) -> Result<Action> {
    let not_ready = |reason: &'static str, message: String, degraded: bool| async move {
        write_status(key, api, false, reason, message, degraded, |_| {}).await
    };
    let target = match target(ctx, &key.spec.store_ref, ns).await? {
        Ok(t) => t,
        Err(u) => {
            let refused_before = key
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
                .is_some_and(|c| c.reason == u.reason);
            if u.refused && !refused_before {
                ctx.event(key, true, u.reason, "Reconcile", u.message.clone())
                    .await;
            }
            not_ready(u.reason, u.message, u.refused).await?;
            return Ok(Action::requeue(Duration::from_secs(if u.refused {
                300
            } else {
                30
            })));
        }
    };
    let store_name = target.store.name_any();

    // Grants: each named Bucket must be a resource of this namespace on the same store, so a
    // key can never reach a bucket its namespace does not manage.
    let buckets_api: Api<Bucket> = Api::namespaced(ctx.client.clone(), ns);
    let mut grants = Vec::new();
    let mut names = Vec::new();
    for access in &key.spec.buckets {
        let bucket = buckets_api.get_opt(&access.name).await?;
        let usable = bucket.as_ref().filter(|b| {
            b.spec.store_ref.name == store_name
                && b.spec.store_ref.namespace_or(ns) == target.store_ns
        });
        let Some(bucket) = usable else {
            not_ready(
                "BucketNotFound",
                format!(
                    "no Bucket {ns}/{} of ObjectStore {}/{store_name}",
                    access.name, target.store_ns
                ),
                false,
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        };
        let ready = bucket
            .status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == READY && c.is_true()));
        if !ready {
            not_ready(
                "BucketNotReady",
                format!("Bucket {ns}/{} is not Ready yet", access.name),
                false,
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(15)));
        }
        let name = bucket.bucket_name();
        grants.push(Grant {
            name: name.clone(),
            mode: format!("{:?}", access.access_mode),
        });
        names.push(name);
    }

    // The Secret: ours, or refused.
    let secret_name = key.secret_name();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let existing = secrets.get_opt(&secret_name).await?;
    if let Some(s) = &existing {
        let ours = s
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == key.uid().as_ref());
        if !ours {
            not_ready(
                "SecretConflict",
                format!("Secret {secret_name} exists and does not belong to this AccessKey"),
                true,
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
    }
    let current = existing.as_ref().and_then(|s| {
        Some((
            secret_value(s, "AWS_ACCESS_KEY_ID")?,
            secret_value(s, "AWS_SECRET_ACCESS_KEY")?,
        ))
    });

    let now = jiff::Timestamp::now();
    let state = RotationState::read(existing.as_ref(), key.status.as_ref());
    let due = match rotation_due(key, &state, current.is_some(), now) {
        Ok(due) => due,
        Err(message) => {
            not_ready("InvalidRotation", message, true).await?;
            return Ok(Action::await_change());
        }
    };
    let grace = match key
        .spec
        .rotation
        .as_ref()
        .and_then(|r| r.grace_period.as_deref())
    {
        Some(g) => match parse_duration(g) {
            Ok(g) => g,
            Err(message) => {
                not_ready("InvalidRotation", message, true).await?;
                return Ok(Action::await_change());
            }
        },
        None => DEFAULT_GRACE,
    };
    let mut retired = state.retired_keys.clone();
    let mut last_rotation = state.last_rotation_time.clone();
    let mut handled = state.handled_rotation_request.clone();
    let description = description(key);
    let admin = &target.admin;

    let (id, secret) = match (due, current) {
        (Some(reason), current) => {
            let (id, secret) = new_key_pair();
            let request = KeyRequest {
                access_key: id.clone(),
                secret_key: secret.clone(),
                buckets: grants.clone(),
                expires_at: key.spec.expires_at.clone(),
                description: description.clone(),
            };
            // Registered before the Secret names it, so apps never hold a key the store does
            // not know; a crash in between leaves an orphan that the sweep below revokes.
            if let Err(e) = admin.put_key(&request).await {
                not_ready_admin(key, api, &e).await?;
                return Err(e.into());
            }
            if let Some((old, _)) = current {
                let revoke_after = now
                    .checked_add(grace)
                    .unwrap_or(now)
                    .round(jiff::Unit::Second)
                    .unwrap_or(now);
                retired.push(RetiredKey {
                    access_key_id: old.clone(),
                    revoke_after: revoke_after.to_string(),
                });
            }
            last_rotation = Some(now_rfc3339());
            handled = key
                .spec
                .rotation
                .as_ref()
                .and_then(|r| r.requested_at.clone());
            ctx.event(
                key,
                false,
                reason,
                "IssueKey",
                format!("access key {id} issued; Secret {secret_name} updated"),
            )
            .await;
            (id, secret)
        }
        (None, Some((id, secret))) => {
            // Keep the server's record in line with the spec (and re-register a key the
            // store lost, e.g. a store recreated from scratch).
            let info = match admin.key(&id).await {
                Ok(info) => info,
                Err(e) => {
                    not_ready_admin(key, api, &e).await?;
                    return Err(e.into());
                }
            };
            let in_line = info.as_ref().is_some_and(|i| {
                i.buckets == grants
                    && same_expiry(i.expires_at.as_deref(), key.spec.expires_at.as_deref())
            });
            if !in_line {
                let request = KeyRequest {
                    access_key: id.clone(),
                    secret_key: secret.clone(),
                    buckets: grants.clone(),
                    expires_at: key.spec.expires_at.clone(),
                    description: description.clone(),
                };
                if let Err(e) = admin.put_key(&request).await {
                    not_ready_admin(key, api, &e).await?;
                    return Err(e.into());
                }
                ctx.event(
                    key,
                    false,
                    "KeyUpdated",
                    "UpdateKey",
                    format!("access key {id} now grants {}", names.join(", ")),
                )
                .await;
            }
            (id, secret)
        }
        (None, None) => unreachable!("rotation_due issues a key when there is none"),
    };

    // Retired keys whose grace period is over go; the others stay recorded.
    let mut next_wake = Duration::from_secs(300);
    let (mut keep, mut due_keys) = (Vec::new(), Vec::new());
    for r in retired {
        match parse_time(&r.revoke_after) {
            Some(at) if at > now => {
                let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
                next_wake = next_wake.min(wait + Duration::from_secs(1));
                keep.push(r);
            }
            _ => due_keys.push(r),
        }
    }

    // The Secret and the rotation state in one write, before anything is revoked (persist
    // before acting): whatever fails later, the next pass knows which keys are retired and
    // until when.
    let rotation_state = serde_json::to_string(&RotationState {
        retired_keys: keep.clone(),
        last_rotation_time: last_rotation.clone(),
        handled_rotation_request: handled.clone(),
    })
    .expect("the rotation state serializes");
    let host = service_host(&store_name, &target.store_ns);
    let desired = access_key_secret(
        key,
        &AccessKeySecretInput {
            access_key_id: &id,
            secret_access_key: &secret,
            host: &host,
            tls: target.store.spec.tls_enabled(),
            region: target.store.spec.region(),
            buckets: &names,
            rotation_state: &rotation_state,
        },
    );
    apply_if_changed(&secrets, &desired).await?;

    for r in due_keys {
        match admin.delete_key(&r.access_key_id).await {
            Ok(()) => {}
            Err(e) if e.is("NoSuchKey") => {}
            Err(e) => {
                not_ready_admin(key, api, &e).await?;
                return Err(e.into());
            }
        }
        ctx.event(
            key,
            false,
            "KeyRevoked",
            "RevokeKey",
            format!(
                "access key {} revoked after its grace period",
                r.access_key_id
            ),
        )
        .await;
    }
    sweep_orphans(admin, &description, |k| {
        k == id || keep.iter().any(|r| r.access_key_id == k)
    })
    .await?;
    if let Some(period) = key.spec.rotation.as_ref().and_then(|r| r.period.as_deref()) {
        if let Ok(p) = parse_duration(period) {
            next_wake = next_wake.min(Duration::try_from(p).unwrap_or(next_wake));
        }
    }

    write_status(
        key,
        api,
        true,
        "KeyReady",
        format!("Secret {secret_name} holds access key {id}"),
        false,
        |s| {
            s.access_key_id = Some(id.clone());
            s.secret_name = Some(secret_name.clone());
            s.last_rotation_time = last_rotation;
            s.handled_rotation_request = handled;
            s.retired_keys = keep;
        },
    )
    .await?;
    Ok(Action::requeue(next_wake))
}

async fn not_ready_admin(
    key: &AccessKey,
    api: &Api<AccessKey>,
    e: &crate::admin::AdminError,
) -> Result<()> {
    write_status(
        key,
        api,
        false,
        &e.reason(),
        e.message.clone(),
        false,
        |_| {},
    )
    .await
}

/// Deletes every key carrying `description` that `keep` does not name.
async fn sweep_orphans(
    admin: &Admin,
    description: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<()> {
    for k in admin.keys().await? {
        if k.description == description && !keep(&k.access_key) {
            admin.delete_key(&k.access_key).await?;
        }
    }
    Ok(())
}

async fn cleanup(key: &AccessKey, ctx: &Context, ns: &str) -> Result<Action> {
    let target = match target(ctx, &key.spec.store_ref, ns).await? {
        Ok(t) => t,
        // No store, no keys to revoke.
        Err(_) => return Ok(Action::await_change()),
    };
    let description = description(key);
    sweep_orphans(&target.admin, &description, |_| false).await?;
    // Keys listed in status but created before descriptions were set are revoked by id too.
    if let Some(status) = &key.status {
        for id in status
            .access_key_id
            .iter()
            .chain(status.retired_keys.iter().map(|r| &r.access_key_id))
        {
            target.admin.delete_key(id).await?;
        }
    }
    ctx.event(
        key,
        false,
        "KeyRevoked",
        "Delete",
        "every key of this AccessKey was revoked".into(),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn rotation_is_due_on_request_or_after_the_period() {
        let mut key = AccessKey::test("app", "photos");
        let due = |key: &AccessKey, has: bool, now| {
            rotation_due(
                key,
                &RotationState::read(None, key.status.as_ref()),
                has,
                now,
            )
        };
        let now = at("2026-03-01T00:00:00Z");
        assert_eq!(due(&key, false, now), Ok(Some("KeyIssued")));
        assert_eq!(due(&key, true, now), Ok(None));
        key.spec.rotation = Some(Rotation {
            period: Some("720h".into()),
            grace_period: None,
            requested_at: Some("monday".into()),
        });
        key.status = Some(AccessKeyStatus {
            last_rotation_time: Some("2026-02-20T00:00:00Z".into()),
            handled_rotation_request: Some("monday".into()),
            ..AccessKeyStatus::default()
        });
        assert_eq!(due(&key, true, now), Ok(None));
        key.spec.rotation.as_mut().unwrap().requested_at = Some("tuesday".into());
        assert_eq!(due(&key, true, now), Ok(Some("KeyRotated")));
        key.spec.rotation.as_mut().unwrap().requested_at = Some("monday".into());
        assert_eq!(
            due(&key, true, at("2026-03-22T00:00:00Z")),
            Ok(Some("KeyRotated"))
        );
        key.spec.rotation.as_mut().unwrap().period = Some("soon".into());
        assert!(due(&key, true, now).is_err());
    }

    #[test]
    fn expiry_compares_instants_not_spellings() {
        assert!(same_expiry(
            Some("2027-01-01T00:00:00Z"),
            Some("2027-01-01T00:00:00+00:00")
        ));
        assert!(!same_expiry(Some("2027-01-01T00:00:00Z"), None));
        assert!(same_expiry(None, None));
    }
}
