//! The `ObjectStore` reconciler: generated Secrets, Services, one StatefulSet and PDB per
//! pool, the topology ConfigMap (pools published once their pods exist), the rolling image
//! change, and the status read from the pods and the servers' admin APIs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;

use super::apply::{apply_if_changed, merge_conditions, now_rfc3339, patch_status};
use super::rollout::{next_pod_to_replace, ServerPod, StoreHealth};
use super::{Context, Error, Result, STORE_FINALIZER};
use crate::admin::{AdminError, RootCredential};
use crate::crd::*;
use crate::resources::{self, *};

const KIND: &str = "ObjectStore";

pub async fn reconcile(store: Arc<ObjectStore>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_timer(KIND);
    let ns = store
        .namespace()
        .ok_or_else(|| Error::Invalid("an ObjectStore is namespaced".into()))?;
    let api: Api<ObjectStore> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, STORE_FINALIZER, store, |event| async {
        match event {
            Finalizer::Apply(s) => apply(&s, &ctx, &ns).await,
            Finalizer::Cleanup(s) => cleanup(&s, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Creates `desired` unless a Secret of that name exists; never updates one. Returns the
/// Secret as stored.
async fn ensure_secret(
    api: &Api<Secret>,
    desired: Secret,
    ctx: &Context,
    store: &ObjectStore,
) -> Result<Secret> {
    let name = desired.name_any();
    if let Some(existing) = api.get_opt(&name).await? {
        return Ok(existing);
    }
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&pp, &desired).await {
        Ok(created) => {
            ctx.event(
                store,
                false,
                "SecretGenerated",
                "Generate",
                format!("generated Secret {name}"),
            )
            .await;
            Ok(created)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(api.get(&name).await?),
        Err(e) => Err(e.into()),
    }
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

pub(crate) fn root_credential(secret: &Secret) -> Option<RootCredential> {
    Some(RootCredential {
        user: secret_value(secret, ROOT_USER_KEY)?,
        password: secret_value(secret, ROOT_PASSWORD_KEY)?,
    })
}

/// `ca.crt` of the store's TLS Secret, which the operator trusts for the store's admin API:
/// `Ok(None)` for a store without `spec.tls`, `Err(why)` when the Secret or its CA is missing
/// (the servers cannot start without it either).
pub(crate) async fn store_ca(
    secrets: &Api<Secret>,
    store: &ObjectStore,
) -> Result<std::result::Result<Option<Vec<u8>>, String>> {
    let Some(tls) = &store.spec.tls else {
        return Ok(Ok(None));
    };
    let Some(secret) = secrets.get_opt(&tls.secret_name).await? else {
        return Ok(Err(format!(
            "the TLS Secret {} does not exist",
            tls.secret_name
        )));
    };
    match secret.data.as_ref().and_then(|d| d.get(TLS_CA_KEY)) {
        Some(ca) if !ca.0.is_empty() => Ok(Ok(Some(ca.0.clone()))),
        _ => Ok(Err(format!(
            "the TLS Secret {} has no {TLS_CA_KEY}",
            tls.secret_name
        ))),
    }
}

/// Bytes of a storage quantity (`10Gi`, `500M`, `1T`, `1024`); `None` for forms the
/// capacity total does not need (fractions, exponents).
pub fn quantity_bytes(q: &str) -> Option<i64> {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mul: i64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

fn capacity_bytes(store: &ObjectStore) -> Option<i64> {
    store.spec.pools.iter().try_fold(0i64, |sum, p| {
        let q = p
            .volume_claim_template
            .resources
            .as_ref()?
            .requests
            .as_ref()?
            .get("storage")?;
        let drives = i64::from(p.servers) * i64::from(p.volumes_per_server);
        Some(sum + quantity_bytes(&q.0)? * drives)
    })
}

/// Whether `sts`'s status may describe an older template than its spec: its controller has
/// not observed the latest generation (or written any status) yet.
fn template_pending(sts: &StatefulSet) -> bool {
    let observed = sts.status.as_ref().and_then(|s| s.observed_generation);
    match (observed, sts.metadata.generation) {
        (Some(observed), Some(generation)) => observed < generation,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_running(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

/// Calls the admin API of every server whose container runs, ready or not, and sums what
/// they report. Unready servers are asked too: a server below its write quorum fails its
/// readiness probe, so once a store loses quorum none is ready, and only the unready ones
/// can say why.
async fn store_health(
    ctx: &Context,
    store: &ObjectStore,
    ns: &str,
    pods: &[ServerPod],
    root: Option<&RootCredential>,
    ca: Option<&[u8]>,
) -> (StoreHealth, Option<AdminError>) {
    let mut health = StoreHealth {
        drives_total: store
            .spec
            .pools
            .iter()
            .map(|p| (p.servers * p.volumes_per_server) as usize)
            .sum(),
        ..StoreHealth::default()
    };
    let Some(root) = root else {
        return (health, None);
    };
    let mut last_error = None;
    // Every server lists every drive of its pool (its own and its peers', as it sees them):
    // a drive counts once, online when some server reaches it, and online everywhere when
    // every server that answered reaches it.
    let mut drives: std::collections::BTreeMap<(usize, usize, usize), (bool, bool)> =
        Default::default();
    let (mut with_quorum, mut without_quorum) = (0, 0);
    // Asked all at once, so a server that does not answer costs one timeout, not one per
    // server; a pod being deleted is not asked (it is going away, and while it shuts down it
    // may hold the call until the timeout, delaying the status that says it is gone).
    let asked: Vec<&ServerPod> = pods
        .iter()
        .filter(|p| (p.ready || p.running) && !p.deleting)
        .collect();
    let answers = futures::future::join_all(asked.iter().map(|pod| async move {
        let endpoint = server_url(store, ns, &pod.name);
        let admin = ctx.admin.client(&endpoint, root, store.spec.region(), ca)?;
        let (status, heal) = tokio::join!(admin.status(), admin.heal_status());
        Ok::<_, AdminError>((status?, heal?))
    }))
    .await;
    for (pod, answer) in asked.into_iter().zip(answers) {
        let (status, heal) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(server = %pod.name, error = %e, "admin status unavailable");
                last_error = Some(e);
                continue;
            }
        };
        let online = status.drives.iter().filter(|d| d.online).count();
        health.servers_answered += 1;
        for d in &status.drives {
            let (somewhere, everywhere) = drives
                .entry((pod.pool, d.set, d.index))
                .or_insert((false, true));
            *somewhere |= d.online;
            *everywhere &= d.online;
        }
        // A healing server rebuilds into its own drives: those it says it is filling, else
        // (a scan found damage) all of them.
        if heal.healing() {
            health.drives_healing += match heal.drives_healing {
                0 => store
                    .spec
                    .pools
                    .get(pod.pool)
                    .map_or(0, |p| p.volumes_per_server as usize),
                n => n as usize,
            };
        }
        if status.write_quorum > 0 {
            health.write_quorum = Some(
                health
                    .write_quorum
                    .map_or(status.write_quorum, |w| w.min(status.write_quorum)),
            );
            if online < status.write_quorum {
                without_quorum += 1;
            } else {
                with_quorum += 1;
            }
        }
    }
    health.quorum_lost = without_quorum > 0 && with_quorum == 0;
    health.drives_online = drives.values().filter(|(somewhere, _)| *somewhere).count();
    health.drives_online_everywhere = drives
        .values()
        .filter(|(_, everywhere)| *everywhere)
        .count();
    (health, last_error)
}

async fn apply(store: &ObjectStore, ctx: &Context, ns: &str) -> Result<Action> {
    let name = store.name_any();
    let generation = store.metadata.generation;
    let client = &ctx.client;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let root_secret = ensure_secret(&secrets, resources::root_secret(store), ctx, store).await?;
    ensure_secret(&secrets, resources::cluster_secret(store), ctx, store).await?;

    let services = Api::namespaced(client.clone(), ns);
    apply_if_changed(&services, &headless_service(store)).await?;
    apply_if_changed(&services, &client_service(store)).await?;

    let previous = store.status.clone().unwrap_or_default();
    let mut layouts = Vec::new();
    for pool in &store.spec.pools {
        match pool_layout(store, pool) {
            Ok(l) => layouts.push(l),
            Err(e) => return refuse(store, ctx, ns, "InvalidTopology", e.to_string()).await,
        }
    }

    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let pdb_api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let mut statefulsets = Vec::new();
    for (pool, layout) in store.spec.pools.iter().zip(&layouts) {
        let sts = match apply_if_changed(&sts_api, &statefulset(store, pool, &ctx.image_of(store)))
            .await
        {
            Ok((sts, _)) => sts,
            // The API server refuses what no retry fixes (e.g. a changed volumeClaimTemplate).
            Err(kube::Error::Api(e)) if e.code == 422 => {
                let message = format!("StatefulSet of pool {}: {}", pool.name, e.message);
                return refuse(store, ctx, ns, "InvalidStatefulSet", message).await;
            }
            Err(e) => return Err(e.into()),
        };
        statefulsets.push(sts);
        apply_if_changed(&pdb_api, &pod_disruption_budget(store, pool, layout)).await?;
    }

    // The topology: the first publication carries every pool; a pool appended later is
    // published once its StatefulSet has created all its pods.
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let existing = match cm_api.get_opt(&topology_config_map_name(&name)).await? {
        Some(cm) => {
            let text = cm
                .data
                .as_ref()
                .and_then(|d| d.get(TOPOLOGY_KEY))
                .cloned()
                .unwrap_or_default();
            match coffer_server::cluster::Topology::parse(&text) {
                Ok(t) => Some(t),
                Err(e) => {
                    return refuse(
                        store,
                        ctx,
                        ns,
                        "InvalidTopology",
                        format!("the published topology is unreadable: {e}"),
                    )
                    .await
                }
            }
        }
        None => None,
    };
    let (cluster_id, mut published) = match &existing {
        Some(t) => (
            t.cluster_id.clone(),
            t.pools.len().min(store.spec.pools.len()),
        ),
        None => (uuid::Uuid::new_v4().to_string(), store.spec.pools.len()),
    };
    let before = published;
    while published < store.spec.pools.len() {
        let created = statefulsets[published]
            .status
            .as_ref()
            .map(|s| s.replicas)
            .unwrap_or(0);
        if created < store.spec.pools[published].servers {
            break;
        }
        published += 1;
    }
    let topology = match resources::topology(store, &cluster_id, published) {
        Ok(t) => t,
        Err(e) => return refuse(store, ctx, ns, "InvalidTopology", e.to_string()).await,
    };
    if let Some(old) = &existing {
        if let Err(e) = old.check_update(&topology) {
            return refuse(store, ctx, ns, "IncompatibleTopology", e.to_string()).await;
        }
    }
    let cm = topology_config_map(store, &topology).map_err(|e| Error::Invalid(e.to_string()))?;
    apply_if_changed(&cm_api, &cm).await?;
    if existing.is_some() && published > before {
        let pools: Vec<&str> = store.spec.pools[before..published]
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        ctx.event(
            store,
            false,
            "PoolPublished",
            "PublishTopology",
            format!("pools {} joined the topology", pools.join(", ")),
        )
        .await;
    }

    // Pods, health, rollout.
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = pods_api
        .list(&ListParams::default().labels(&format!("{STORE_LABEL}={name}")))
        .await?;
    // A StatefulSet's status is trusted only once its controller observed the latest
    // template; before that (right after an image change) `updateRevision` is the previous
    // template's and every pod would look up to date.
    let template_pending: Vec<bool> = statefulsets.iter().map(template_pending).collect();
    let pool_index: BTreeMap<&str, usize> = store
        .spec
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let server_pods: Vec<ServerPod> = pods
        .items
        .iter()
        .filter_map(|p| {
            let labels = p.metadata.labels.as_ref()?;
            let pool = *pool_index.get(labels.get(POOL_LABEL)?.as_str())?;
            let pod_name = p.name_any();
            let ordinal = pod_name.rsplit('-').next()?.parse().ok()?;
            Some(ServerPod {
                name: pod_name,
                pool,
                ordinal,
                ready: pod_ready(p),
                running: pod_running(p),
                deleting: p.metadata.deletion_timestamp.is_some(),
                revision: labels
                    .get("controller-revision-hash")
                    .cloned()
                    .unwrap_or_default(),
                update_revision: statefulsets[pool]
                    .status
                    .as_ref()
                    .and_then(|s| s.update_revision.clone())
                    .unwrap_or_default(),
                template_pending: template_pending[pool],
            })
        })
        .collect();
    let expected: usize = store.spec.pools.iter().map(|p| p.servers as usize).sum();
    say_servers_not_ready(ctx, store, ns, &previous, &server_pods, expected).await?;
    let (root, ca, ca_error) = match store_ca(&secrets, store).await? {
        Ok(ca) => (root_credential(&root_secret), ca, None),
        // Without the CA no server can be trusted (nor start): no admin calls, and the
        // Ready condition says why.
        Err(why) => (
            None,
            None,
            Some(AdminError {
                status: None,
                code: None,
                message: why,
            }),
        ),
    };
    let (health, admin_error) =
        store_health(ctx, store, ns, &server_pods, root.as_ref(), ca.as_deref()).await;
    let admin_error = admin_error.or(ca_error);

    let outdated = server_pods.iter().filter(|p| p.outdated()).count();
    if store.spec.upgrade() == UpgradeStrategyType::RollingOneAtATime {
        if let Some(pod) = next_pod_to_replace(&server_pods, expected, &health) {
            match pods_api.delete(&pod, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            ctx.event(
                store,
                false,
                "ReplacingServer",
                "RollingUpdate",
                format!(
                    "replacing server {pod} to run {}: the store is whole",
                    ctx.image_of(store)
                ),
            )
            .await;
        }
    }

    let usage_bytes = match (&root, health.servers_answered) {
        (Some(root), n) if n > 0 => {
            match ctx.admin.client(
                &endpoint_url(store, ns),
                root,
                store.spec.region(),
                ca.as_deref(),
            ) {
                Ok(admin) => admin
                    .buckets()
                    .await
                    .ok()
                    .map(|bs| bs.iter().map(|b| b.usage.bytes as i64).sum()),
                Err(_) => None,
            }
        }
        _ => previous.usage_bytes,
    };

    // Status.
    let ready_servers: i32 = server_pods
        .iter()
        .filter(|p| p.ready && !p.deleting)
        .count() as i32;
    let pools: Vec<PoolStatus> = store
        .spec
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| PoolStatus {
            name: p.name.clone(),
            servers: p.servers,
            ready_servers: server_pods
                .iter()
                .filter(|s| s.pool == i && s.ready && !s.deleting)
                .count() as i32,
            in_topology: i < published,
        })
        .collect();
    let all_there = server_pods.len() == expected && ready_servers as usize == expected;
    let pending = template_pending.iter().any(|p| *p);
    let updated = outdated == 0 && !pending && server_pods.len() == expected;
    let all_published = published == store.spec.pools.len();
    let (ready, ready_reason, ready_message) = if !all_there {
        (
            false,
            "ServersNotReady",
            format!("{ready_servers}/{expected} servers ready"),
        )
    } else if pending {
        (
            false,
            "RollingUpdate",
            "the StatefulSet controller has not observed the new template yet".into(),
        )
    } else if outdated > 0 {
        (
            false,
            "RollingUpdate",
            format!("{outdated} servers still run the previous template"),
        )
    } else if !all_published {
        (
            false,
            "PublishingPool",
            "a new pool waits for its servers before joining the topology".into(),
        )
    } else if health.servers_answered < expected {
        let why = admin_error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        (
            false,
            "AdminAPIUnreachable",
            format!(
                "{}/{expected} servers answered the admin API {why}",
                health.servers_answered
            )
            .trim()
            .to_string(),
        )
    } else if health.drives_online < health.drives_total {
        (
            false,
            "DrivesOffline",
            format!(
                "{}/{} drives online",
                health.drives_online, health.drives_total
            ),
        )
    } else if health.drives_healing > 0 {
        (
            false,
            "Healing",
            format!("{} drives healing", health.drives_healing),
        )
    } else {
        (
            true,
            "StoreReady",
            format!("{expected} servers, {} drives online", health.drives_online),
        )
    };
    let progressing = !all_there || !updated || !all_published;
    let progressing_reason = if !updated {
        "RollingUpdate"
    } else if !all_published {
        "PublishingPool"
    } else if !all_there {
        "ServersStarting"
    } else {
        "Settled"
    };
    let (degraded, degraded_reason, degraded_message) =
        degraded_condition(&previous.conditions, health.quorum_lost);
    let conditions = vec![
        Condition::new(READY, ready, ready_reason, ready_message, generation),
        Condition::new(
            PROGRESSING,
            progressing,
            progressing_reason,
            String::new(),
            generation,
        ),
        Condition::new(
            DEGRADED,
            degraded,
            degraded_reason,
            degraded_message,
            generation,
        ),
    ];
    let status = ObjectStoreStatus {
        observed_generation: generation,
        conditions: merge_conditions(&previous.conditions, conditions, &now_rfc3339()),
        endpoint: Some(endpoint_url(store, ns)),
        servers: Some(format!("{ready_servers}/{expected}")),
        pools,
        drives: DriveCounts {
            total: health.drives_total as i32,
            online: health.drives_online as i32,
            offline: (health.drives_total - health.drives_online.min(health.drives_total)) as i32,
            healing: health.drives_healing as i32,
        },
        write_quorum: health.write_quorum.map(|w| w as i32),
        capacity_bytes: capacity_bytes(store),
        usage_bytes,
        current_image: if updated {
            Some(ctx.image_of(store))
        } else {
            previous.current_image.clone()
        },
    };
    let was_ready = previous
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.is_true());
    if ready && !was_ready {
        ctx.event(
            store,
            false,
            "StoreReady",
            "Reconcile",
            format!("{expected} servers ready, every drive online"),
        )
        .await;
    }
    if degraded
        && !previous
            .conditions
            .iter()
            .any(|c| c.type_ == DEGRADED && c.is_true())
    {
        ctx.event(
            store,
            true,
            "QuorumLost",
            "Reconcile",
            "a server lost its write quorum".into(),
        )
        .await;
    }
    let api: Api<ObjectStore> = Api::namespaced(client.clone(), ns);
    patch_status(&api, store, store.status.as_ref(), &status).await?;
    Ok(Action::requeue(Duration::from_secs(if ready {
        60
    } else {
        10
    })))
}

/// A settled store whose servers are not all ready (one being deleted, not back yet) says so
/// at once — Ready False, Progressing True — before the admin calls of the reconcile, which
/// may each take their timeout while a server shuts down: the whole replacement of a pod can
/// be shorter than those calls, and a status that never said Progressing would hide it. The
/// rest of the status is written when the reconcile ends; nothing is written otherwise.
async fn say_servers_not_ready(
    ctx: &Context,
    store: &ObjectStore,
    ns: &str,
    previous: &ObjectStoreStatus,
    pods: &[ServerPod],
    expected: usize,
) -> Result<()> {
    let ready = pods.iter().filter(|p| p.ready && !p.deleting).count();
    let progressing = previous
        .conditions
        .iter()
        .any(|c| c.type_ == PROGRESSING && c.is_true());
    if store.status.is_none() || progressing || (pods.len() == expected && ready == expected) {
        return Ok(());
    }
    let generation = store.metadata.generation;
    let conditions = vec![
        Condition::new(
            READY,
            false,
            "ServersNotReady",
            format!("{ready}/{expected} servers ready"),
            generation,
        ),
        Condition::new(
            PROGRESSING,
            true,
            "ServersStarting",
            String::new(),
            generation,
        ),
    ];
    let mut conditions = merge_conditions(&previous.conditions, conditions, &now_rfc3339());
    conditions.extend(
        previous
            .conditions
            .iter()
            .filter(|c| c.type_ != READY && c.type_ != PROGRESSING)
            .cloned(),
    );
    let status = ObjectStoreStatus {
        conditions,
        servers: Some(format!("{ready}/{expected}")),
        ..previous.clone()
    };
    let api: Api<ObjectStore> = Api::namespaced(ctx.client.clone(), ns);
    patch_status(&api, store, store.status.as_ref(), &status).await?;
    Ok(())
}

/// The Degraded condition: `QuorumLost` when no server can take a write. The servers of a
/// store coming up report too few drives until their peers answer, which is Progressing, not
/// Degraded: quorum is judged once the store has been Ready, and `StoreStarting` (its reason
/// until then) is how the status remembers that it has not been.
fn degraded_condition(previous: &[Condition], quorum_lost: bool) -> (bool, &'static str, String) {
    let has_served = previous.iter().any(|c| {
        (c.type_ == READY && c.is_true())
            || (c.type_ == DEGRADED && matches!(c.reason.as_str(), "QuorumIntact" | "QuorumLost"))
    });
    if !has_served {
        (
            false,
            "StoreStarting",
            "write quorum is judged once the store has been Ready".into(),
        )
    } else if quorum_lost {
        (
            true,
            "QuorumLost",
            "every server reports fewer drives online than its write quorum: writes fail".into(),
        )
    } else {
        (false, "QuorumIntact", String::new())
    }
}

/// A terminal error: Degraded with `reason`, a warning Event when it is new, and no retry
/// until the spec changes.
async fn refuse(
    store: &ObjectStore,
    ctx: &Context,
    ns: &str,
    reason: &str,
    message: String,
) -> Result<Action> {
    let generation = store.metadata.generation;
    let previous = store.status.clone().unwrap_or_default();
    let conditions = vec![
        Condition::new(READY, false, reason, message.clone(), generation),
        Condition::new(PROGRESSING, false, reason, String::new(), generation),
        Condition::new(DEGRADED, true, reason, message.clone(), generation),
    ];
    let already = previous
        .conditions
        .iter()
        .any(|c| c.type_ == DEGRADED && c.reason == reason && c.observed_generation == generation);
    if !already {
        ctx.event(store, true, reason, "Reconcile", message).await;
    }
    let status = ObjectStoreStatus {
        observed_generation: generation,
        conditions: merge_conditions(&previous.conditions, conditions, &now_rfc3339()),
        ..previous.clone()
    };
    let api: Api<ObjectStore> = Api::namespaced(ctx.client.clone(), ns);
    patch_status(&api, store, store.status.as_ref(), &status).await?;
    Ok(Action::await_change())
}

/// The volume claims of every drive of every server of `store`, by name (the StatefulSet
/// controller names them `<template>-<statefulset>-<ordinal>`). Computed rather than listed,
/// so the operator needs no right to list claims.
fn claim_names(store: &ObjectStore) -> Vec<String> {
    let name = store.name_any();
    store
        .spec
        .pools
        .iter()
        .flat_map(|pool| {
            let sts = statefulset_name(&name, &pool.name);
            (0..pool.servers).flat_map(move |i| {
                let sts = sts.clone();
                (0..pool.volumes_per_server)
                    .map(move |j| format!("{}-{sts}-{i}", drive_volume_name(j)))
            })
        })
        .collect()
}

async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<bool>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn cleanup(store: &ObjectStore, ctx: &Context, ns: &str) -> Result<Action> {
    let name = store.name_any();
    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let identity = [topology_config_map_name(&name), bucket_claims_name(&name)];
    match store.spec.storage_deletion_policy() {
        StorageDeletionPolicy::Retain => {
            // The store's identity stays with its data: an operator before this one made
            // the topology ConfigMap a dependent of the store, which the garbage collector
            // would delete with it.
            for cm in &identity {
                let owned = cm_api
                    .get_opt(cm)
                    .await?
                    .is_some_and(|c| !c.owner_references().is_empty());
                if owned {
                    let patch = serde_json::json!({"metadata": {"ownerReferences": null}});
                    cm_api
                        .patch(cm, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
            }
            ctx.event(
                store,
                false,
                "StorageRetained",
                "Delete",
                "storageDeletionPolicy Retain: the volume claims, the cluster identity and the root credential stay; an ObjectStore of the same name adopts them"
                    .into(),
            )
            .await;
        }
        StorageDeletionPolicy::Delete => {
            let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
            let mut deleted = 0;
            for claim in claim_names(store) {
                deleted += usize::from(delete_if_present(&pvcs, &claim).await?);
            }
            for cm in &identity {
                delete_if_present(&cm_api, cm).await?;
            }
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
            for secret in [root_secret_name(store), cluster_secret_name(&name)] {
                // Only Secrets the operator generated: a root Secret someone provided stays.
                let generated = secrets
                    .get_opt(&secret)
                    .await?
                    .is_some_and(|s| s.labels().get(STORE_LABEL) == Some(&name));
                if generated {
                    delete_if_present(&secrets, &secret).await?;
                }
            }
            ctx.event(
                store,
                false,
                "StorageDeleted",
                "Delete",
                format!("storageDeletionPolicy Delete: deleted {deleted} volume claims"),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_sums_every_drive() {
        assert_eq!(quantity_bytes("10Gi"), Some(10 << 30));
        assert_eq!(quantity_bytes("500M"), Some(500_000_000));
        assert_eq!(quantity_bytes("1.5Gi"), None);
        let store = ObjectStore::test().with_pools(vec![
            crate::fixtures::pool("a", 4, 2),
            crate::fixtures::pool("b", 2, 1),
        ]);
        assert_eq!(capacity_bytes(&store), Some((10 * 10) << 30));
    }

    #[test]
    fn quorum_loss_is_degraded_once_the_store_has_served() {
        let cond = |type_: &str, status: bool, reason: &str| {
            Condition::new(type_, status, reason, String::new(), Some(1))
        };
        // Coming up: servers short of peers are no reason for alarm.
        assert!(!degraded_condition(&[], true).0);
        let starting = [
            cond(READY, false, "ServersNotReady"),
            cond(DEGRADED, false, "StoreStarting"),
        ];
        assert_eq!(degraded_condition(&starting, true).1, "StoreStarting");
        // Once Ready, losing quorum is Degraded, and it stays so until quorum returns, with
        // Ready long gone (a server lost before quorum goes makes Ready False first).
        let served = [
            cond(READY, true, "StoreReady"),
            cond(DEGRADED, false, "StoreStarting"),
        ];
        assert_eq!(degraded_condition(&served, true).1, "QuorumLost");
        let one_down = [
            cond(READY, false, "ServersNotReady"),
            cond(DEGRADED, false, "QuorumIntact"),
        ];
        assert!(degraded_condition(&one_down, true).0);
        let lost = [
            cond(READY, false, "ServersNotReady"),
            cond(DEGRADED, true, "QuorumLost"),
        ];
        assert!(degraded_condition(&lost, true).0);
        assert_eq!(degraded_condition(&lost, false).1, "QuorumIntact");
    }
}
