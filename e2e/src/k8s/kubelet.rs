//! The process kubelet: registers Nodes and keeps them alive (status and Lease heartbeats),
//! watches the Pods bound to them and gives each its own [`PodWorker`]. Next to it run the
//! parts of a node a cluster's DNS and kube-proxy would provide ([`super::services`]) and a
//! folder provisioner for volume claims ([`super::provisioner`]).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::net::Network;
use super::pod::PodWorker;
use super::volumes::Sources;

/// How often a node reports that it is alive (the node lifecycle controller waits 40 s).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// What every pod worker shares.
pub struct Ctx {
    pub client: Client,
    pub net: Arc<Network>,
    /// The images this node has "pulled": reference → image (several references may name
    /// one image, as tags do).
    pub images: BTreeMap<String, Arc<crate::image::Image>>,
    pub pods_dir: PathBuf,
    pub sources: Sources,
    pub kubernetes_service: (Ipv4Addr, u16),
}

/// A Node as the process kubelet registers it: ready, with room for every pod of a test.
fn node_status(name: &str, address: Ipv4Addr) -> serde_json::Value {
    let now = Time(Timestamp::now());
    let resources =
        json!({"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let condition = |kind: &str, status: &str, reason: &str| {
        json!({"type": kind, "status": status, "reason": reason,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "capacity": resources,
        "allocatable": resources,
        "addresses": [{"type": "InternalIP", "address": address.to_string()},
                      {"type": "Hostname", "address": name}],
        "conditions": [
            condition("Ready", "True", "KubeletReady"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID"),
        ],
        "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
            "osImage": "coffer-e2e", "containerRuntimeVersion": "process://coffer-e2e",
            "kubeletVersion": "v1.34.4", "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH},
    })
}

async fn register(client: &Client, name: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": "e2e"}},
    }))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn heartbeat(client: &Client, name: &str, address: Ipv4Addr) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({ "status": node_status(name, address) })),
        )
        .await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                 "renewTime": MicroTime(Timestamp::now())},
    });
    leases
        .patch(
            name,
            &PatchParams::apply("coffer-e2e-kubelet").force(),
            &Patch::Apply(lease),
        )
        .await?;
    Ok(())
}

pub struct Kubelet {
    pub ctx: Arc<Ctx>,
    pub nodes: Vec<String>,
}

impl Kubelet {
    /// Registers the nodes and runs until the task is dropped.
    pub async fn run(self) -> Result<()> {
        for node in &self.nodes {
            register(&self.ctx.client, node).await?;
            heartbeat(&self.ctx.client, node, self.ctx.net.gateway).await?;
        }
        let client = self.ctx.client.clone();
        let nodes = self.nodes.clone();
        let gateway = self.ctx.net.gateway;
        let beats = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                for node in &nodes {
                    if let Err(e) = heartbeat(&client, node, gateway).await {
                        eprintln!("kubelet: heartbeat of {node}: {e:#}");
                    }
                }
            }
        });
        let result = self.pods().await;
        beats.abort();
        result
    }

    async fn pods(&self) -> Result<()> {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let mut workers: HashMap<
            String,
            (watch::Sender<Option<Pod>>, tokio::task::JoinHandle<()>),
        > = HashMap::new();
        let mut events = watcher(api, watcher::Config::default()).boxed();
        // Dropping this guard (the kubelet task is aborted) stops every pod: their tasks are
        // aborted and their processes killed with them.
        struct Abort(Vec<tokio::task::AbortHandle>);
        let mut guard = Abort(Vec::new());
        impl Drop for Abort {
            fn drop(&mut self) {
                for h in &self.0 {
                    h.abort();
                }
            }
        }
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("kubelet: pod watch: {e}");
                    continue;
                }
            };
            let (pods, deleted) = match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (vec![p], false),
                watcher::Event::Delete(p) => (vec![p], true),
                watcher::Event::Init | watcher::Event::InitDone => (vec![], false),
            };
            workers.retain(|_, (_, task)| !task.is_finished());
            for pod in pods {
                let mine = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some_and(|n| self.nodes.contains(n));
                let Some(uid) = pod.uid() else { continue };
                if !mine {
                    continue;
                }
                if deleted {
                    if let Some((tx, _)) = workers.get(&uid) {
                        let _ = tx.send(None);
                    }
                    continue;
                }
                if let Some((tx, _)) = workers.get(&uid) {
                    let _ = tx.send(Some(pod));
                    continue;
                }
                let finished = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .is_some_and(|p| p == "Succeeded" || p == "Failed");
                if finished && pod.metadata.deletion_timestamp.is_none() {
                    continue;
                }
                let (tx, rx) = watch::channel(Some(pod.clone()));
                let worker = PodWorker::new(self.ctx.clone(), pod, rx);
                let task = tokio::spawn(worker.run());
                guard.0.push(task.abort_handle());
                workers.insert(uid, (tx, task));
            }
        }
        Ok(())
    }
}

/// Caches of every Secret and ConfigMap, kept current by watches, for env and file volumes.
pub fn sources(client: &Client) -> (Sources, Vec<tokio::task::JoinHandle<()>>) {
    let (secrets, secret_writer) = reflector::store::<Secret>();
    let (config_maps, cm_writer) = reflector::store::<ConfigMap>();
    let s = reflector(
        secret_writer,
        watcher(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .applied_objects()
    .for_each(|_| async {});
    let c = reflector(
        cm_writer,
        watcher(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .applied_objects()
    .for_each(|_| async {});
    (
        Sources {
            client: client.clone(),
            secrets,
            config_maps,
        },
        vec![tokio::spawn(s), tokio::spawn(c)],
    )
}
