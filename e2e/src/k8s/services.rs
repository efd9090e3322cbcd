//! What cluster DNS and kube-proxy do for this machine's pods: every Service's name is
//! published in the pods' hosts files (`<svc>.<ns>.svc[.cluster.local]` → its cluster IP),
//! and every cluster IP and port gets a TCP proxy on the host that forwards each connection
//! to a ready endpoint of the Service (round robin over its EndpointSlices).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::net::Network;

/// How often Services and EndpointSlices are read again.
const RESYNC: Duration = Duration::from_millis(500);
/// A backend that does not accept within this is skipped for the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Backends = Arc<RwLock<HashMap<SocketAddr, Vec<SocketAddr>>>>;

pub async fn run(client: Client, net: Arc<Network>) -> Result<()> {
    let backends: Backends = Arc::default();
    let mut listening: HashSet<SocketAddr> = HashSet::new();
    let services: Api<Service> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::all(client.clone());
    loop {
        match sync(&services, &slices, &net).await {
            Ok(desired) => {
                for (front, _) in desired.iter() {
                    if listening.contains(front) {
                        continue;
                    }
                    let SocketAddr::V4(v4) = front else { continue };
                    if let Err(e) = net.add_local_address(*v4.ip()) {
                        eprintln!("service proxy: {e:#}");
                        continue;
                    }
                    match tokio::net::TcpListener::bind(front).await {
                        Ok(listener) => {
                            listening.insert(*front);
                            tokio::spawn(serve(listener, *front, backends.clone()));
                        }
                        Err(e) => eprintln!("service proxy: listening on {front}: {e}"),
                    }
                }
                *backends.write().expect("backends lock poisoned") = desired;
            }
            Err(e) => eprintln!("service proxy: {e:#}"),
        }
        tokio::time::sleep(RESYNC).await;
    }
}

/// The ready backends of every cluster IP and port; publishes Service names on the way.
async fn sync(
    services: &Api<Service>,
    slices: &Api<EndpointSlice>,
    net: &Network,
) -> Result<HashMap<SocketAddr, Vec<SocketAddr>>> {
    let services = services.list(&ListParams::default()).await?;
    let slices = slices.list(&ListParams::default()).await?;
    let mut desired = HashMap::new();
    for svc in services {
        let ns = svc.namespace().unwrap_or_default();
        let name = svc.name_any();
        let Some(spec) = &svc.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        net.publish(&format!("{name}.{ns}.svc"), ip);
        net.publish(&format!("{name}.{ns}.svc.cluster.local"), ip);
        for port in spec.ports.clone().unwrap_or_default() {
            let mut targets = Vec::new();
            for slice in slices.iter().filter(|s| {
                s.namespace().as_deref() == Some(&ns)
                    && s.labels().get("kubernetes.io/service-name") == Some(&name)
            }) {
                let Some(target) = slice
                    .ports
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .find(|p| p.name == port.name)
                    .and_then(|p| p.port)
                else {
                    continue;
                };
                for endpoint in &slice.endpoints {
                    let ready = endpoint
                        .conditions
                        .as_ref()
                        .and_then(|c| c.ready)
                        .unwrap_or(true);
                    if !ready {
                        continue;
                    }
                    for address in &endpoint.addresses {
                        if let Ok(a) = address.parse::<Ipv4Addr>() {
                            targets.push(SocketAddr::from((a, target as u16)));
                        }
                    }
                }
            }
            desired.insert(SocketAddr::from((ip, port.port as u16)), targets);
        }
    }
    Ok(desired)
}

async fn serve(listener: tokio::net::TcpListener, front: SocketAddr, backends: Backends) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let backends = backends.clone();
        let next = next.clone();
        tokio::spawn(async move {
            let targets = backends
                .read()
                .expect("backends lock poisoned")
                .get(&front)
                .cloned()
                .unwrap_or_default();
            let start = next.fetch_add(1, Ordering::Relaxed);
            for i in 0..targets.len() {
                let target = targets[(start + i) % targets.len()];
                let connect = tokio::net::TcpStream::connect(target);
                if let Ok(Ok(mut outbound)) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
            }
            // No ready endpoint: the connection is refused by closing it, as kube-proxy's
            // REJECT rule would.
        });
    }
}
