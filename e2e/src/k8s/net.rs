//! The pod network: a Linux bridge on the host and one network namespace per pod (and per
//! in-cluster client such as the operator), joined to the bridge by a veth pair. Pods get
//! stable addresses (one per pod identity, so a StatefulSet pod that comes back has its old
//! address, as its DNS name promises), and names resolve through a hosts file per namespace
//! (`ip netns exec` bind-mounts `/etc/netns/NAME/hosts` over `/etc/hosts`) that stands in for
//! cluster DNS. A Service's cluster IP is an address of the bridge on the host, where the
//! service proxy listens.
//!
//! Hosts files only ever grow: a name keeps its address for the whole run (pods have stable
//! addresses and cluster IPs do not change), so appending never changes an answer a reader
//! already had, and a reader never sees a half-rewritten file.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// Where `ip netns exec` looks for per-namespace files.
const NETNS_ETC: &str = "/etc/netns";

pub struct Network {
    /// The owning process id: part of every name, so leftovers of a run that was killed are
    /// recognised (their owner is gone) and removed by the next run.
    run: u32,
    pub bridge: String,
    /// The bridge's address (the pods' gateway): the API server is reached here.
    pub gateway: Ipv4Addr,
    octet: u8,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// name → address, in the order first seen.
    names: BTreeMap<String, Ipv4Addr>,
    lines: Vec<String>,
    namespaces: BTreeMap<String, PathBuf>,
    local_addresses: HashSet<Ipv4Addr>,
    next_slot: u32,
    slots: BTreeMap<String, u32>,
}

/// Runs `ip ARGS`, failing with its error output.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Kills every process still inside network namespace `ns`, and waits (a few seconds at
/// most) until they are gone: a namespace whose processes still exit keeps its veth, whose
/// name the next pod of the same identity needs.
fn kill_inside(ns: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let pids = ip_output(&["netns", "pids", ns]);
        if pids.trim().is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn remove_namespace(ns: &str) {
    kill_inside(ns);
    let _ = ip(&["netns", "del", ns]);
    let _ = std::fs::remove_dir_all(PathBuf::from(NETNS_ETC).join(ns));
}

/// Removes namespaces and bridges left by runs whose process is gone (killed with SIGKILL,
/// when no cleanup could run).
fn remove_leftovers() {
    let alive = |run: &str| PathBuf::from("/proc").join(run).exists();
    for line in ip_output(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if let Some(run) = name.strip_prefix("cof").and_then(|r| r.split('-').next()) {
            if !run.is_empty() && run.chars().all(|c| c.is_ascii_digit()) && !alive(run) {
                remove_namespace(name);
            }
        }
    }
    for line in ip_output(&["-br", "link", "show", "type", "bridge"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if let Some(run) = name.strip_prefix("cb") {
            if !run.is_empty() && run.chars().all(|c| c.is_ascii_digit()) && !alive(run) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

impl Network {
    /// Creates the bridge on a `10.N.0.0/16` that no route of the host uses yet.
    pub fn create() -> Result<Network> {
        remove_leftovers();
        let routes = ip_output(&["-4", "route", "show", "table", "all"]);
        let octet = (200..250u8)
            .find(|n| !routes.contains(&format!("10.{n}.")))
            .context("no free 10.N.0.0/16 for the pod network")?;
        let run = std::process::id();
        let network = Network {
            run,
            bridge: format!("cb{run}"),
            gateway: Ipv4Addr::new(10, octet, 0, 1),
            octet,
            state: Mutex::new(State::default()),
        };
        ip(&["link", "add", &network.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/16", network.gateway),
            "dev",
            &network.bridge,
        ])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        Ok(network)
    }

    /// The range the API server allocates cluster IPs from: the upper half of the pod
    /// network, so pods reach cluster IPs on the bridge without a route.
    pub fn service_cidr(&self) -> String {
        format!("10.{}.128.0/17", self.octet)
    }

    /// The first address of the service range, the `kubernetes` Service's.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, 128, 1)
    }

    /// The stable address of `identity` (e.g. `pod/<namespace>/<name>`), allocated on first use.
    pub fn address_of(&self, identity: &str) -> Ipv4Addr {
        let mut state = self.state.lock().expect("network state lock poisoned");
        let slot = match state.slots.get(identity) {
            Some(slot) => *slot,
            None => {
                let slot = state.next_slot;
                state.next_slot += 1;
                state.slots.insert(identity.to_string(), slot);
                slot
            }
        };
        // 10.N.1.2 onwards, below the service range at 10.N.128.0.
        Ipv4Addr::new(
            10,
            self.octet,
            1 + (slot / 250) as u8,
            2 + (slot % 250) as u8,
        )
    }

    /// The namespace name for an address.
    pub fn namespace_name(&self, address: Ipv4Addr) -> String {
        let o = address.octets();
        format!("cof{}-{}-{}", self.run, o[2], o[3])
    }

    /// Creates the network namespace of `address` with its hosts file (the names known so far
    /// plus `own_names` for the address itself), and returns its name.
    pub fn add_namespace(&self, address: Ipv4Addr, own_names: &[String]) -> Result<String> {
        let ns = self.namespace_name(address);
        let o = address.octets();
        let host_veth = format!("cv{}x{}x{}", self.run, o[2], o[3]);
        let host_veth = &host_veth[..host_veth.len().min(15)];
        let peer = "eth0tmp";
        remove_namespace(&ns);
        // The veth of a namespace that is still going away (the pod this one replaces): the
        // kernel frees it with that namespace, which can take a moment; deleting one end
        // removes the pair now.
        if !ip_output(&["link", "show", host_veth]).trim().is_empty() {
            let _ = ip(&["link", "del", host_veth]);
        }
        ip(&["netns", "add", &ns])?;
        let made = (|| -> Result<()> {
            ip(&[
                "link", "add", host_veth, "type", "veth", "peer", "name", peer, "netns", &ns,
            ])?;
            ip(&["link", "set", host_veth, "master", &self.bridge, "up"])?;
            ip(&["-n", &ns, "link", "set", peer, "name", "eth0"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/16"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &self.gateway.to_string(),
            ])?;
            let dir = PathBuf::from(NETNS_ETC).join(&ns);
            std::fs::create_dir_all(&dir)?;
            let mut state = self.state.lock().expect("network state lock poisoned");
            let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
            if !own_names.is_empty() {
                text.push_str(&format!("{address}\t{}\n", own_names.join(" ")));
            }
            for line in &state.lines {
                text.push_str(line);
            }
            std::fs::write(dir.join("hosts"), text)?;
            state.namespaces.insert(ns.clone(), dir.join("hosts"));
            Ok(())
        })();
        if let Err(e) = made {
            remove_namespace(&ns);
            let _ = ip(&["link", "del", host_veth]);
            return Err(e);
        }
        Ok(ns)
    }

    /// Removes a namespace made by [`Network::add_namespace`], killing what still runs in it.
    pub fn remove_namespace(&self, ns: &str) {
        remove_namespace(ns);
        self.state
            .lock()
            .expect("network state lock poisoned")
            .namespaces
            .remove(ns);
    }

    /// Publishes `name → address` to every hosts file, unless the name is known already.
    pub fn publish(&self, name: &str, address: Ipv4Addr) {
        let mut state = self.state.lock().expect("network state lock poisoned");
        if state.names.contains_key(name) {
            return;
        }
        state.names.insert(name.to_string(), address);
        let line = format!("{address}\t{name}\n");
        for path in state.namespaces.values() {
            if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
                let _ = file.write_all(line.as_bytes());
            }
        }
        state.lines.push(line);
    }

    /// Adds `address` to the bridge, so the host accepts connections to it (cluster IPs).
    pub fn add_local_address(&self, address: Ipv4Addr) -> Result<()> {
        let mut state = self.state.lock().expect("network state lock poisoned");
        if state.local_addresses.contains(&address) {
            return Ok(());
        }
        ip(&["addr", "add", &format!("{address}/32"), "dev", &self.bridge])?;
        state.local_addresses.insert(address);
        Ok(())
    }
}

impl Network {
    /// Kills what runs in the namespaces, removes them and the bridge. Idempotent.
    pub fn shutdown(&self) {
        let namespaces: Vec<String> = self
            .state
            .lock()
            .map(|mut s| std::mem::take(&mut s.namespaces).into_keys().collect())
            .unwrap_or_default();
        for ns in namespaces {
            remove_namespace(&ns);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shutdown();
    }
}
