//! A Kubernetes cluster on this machine for the end-to-end scenarios: a real control plane
//! (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, built from their Go
//! modules by [`crate::go_tools`]) and a process kubelet that runs each scheduled pod's
//! container as a local process in a network namespace of its own, from its image. The product
//! runs unchanged: the container images of `coffer-server` and `coffer-operator`, assembled
//! from the workspace's binaries by [`crate::image`] exactly as `coffer-e2e image build` does
//! and "pulled" by the kubelet under their release references and the test tags below, the
//! same manifests and chart as in a real cluster (the operator also as the chart's
//! Deployment).
//!
//! Needs root (network namespaces, bind mounts) and iproute2. Everything the harness made —
//! processes, network namespaces, the bridge, folders, mount points — is removed when the
//! [`Cluster`] is dropped, also when a test fails; a run killed outright leaves namespaces
//! and a bridge that the next run removes.

pub mod control_plane;
pub mod kubelet;
pub mod net;
pub mod pki;
pub mod pod;
pub mod provisioner;
pub mod services;
pub mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

use crate::image::{Image, ImageSpec};
use control_plane::{ControlPlane, Proc};
use net::Network;

/// A second reference of the `coffer-server` image (another tag of the same image, for the
/// rolling upgrade from the release reference, `ghcr.io/coffer-dev/coffer-server:VERSION`,
/// which an ObjectStore without `image` runs).
pub const IMAGE_NEXT: &str = "coffer-e2e.local/coffer-server:2";

/// Runs kubectl and returns its standard output, failing with its error output.
pub fn kubectl_output(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(kubectl)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .context("running kubectl")?;
    if !out.status.success() {
        bail!(
            "`kubectl {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct Options {
    /// How many Nodes the kubelet registers.
    pub nodes: usize,
    /// Keep the run's folder (logs, drives) after exit.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 4,
            keep: false,
        }
    }
}

pub struct Cluster {
    pub dir: PathBuf,
    keep: bool,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub client: Client,
    pub net: Arc<Network>,
    pub coffer_server: PathBuf,
    plane: Option<ControlPlane>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    in_cluster: Vec<Proc>,
}

/// `ip netns exec` and bind mounts need root.
fn check_root() -> Result<()> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .context("running id")?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        bail!("the Kubernetes harness needs root (network namespaces and bind mounts)");
    }
    Ok(())
}

impl Cluster {
    /// Builds (or finds cached) the control plane, starts it with the kubelet, and returns
    /// once the cluster schedules and runs pods.
    pub async fn start(options: Options) -> Result<Cluster> {
        check_root()?;
        let coffer_server = crate::server::coffer_binary()?;
        let bin = crate::go_tools::KUBERNETES.ensure_built()?;
        let etcd = crate::go_tools::ETCD.ensure_built()?;
        let dir = std::env::temp_dir().join(format!("coffer-k8s-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let net = Arc::new(Network::create()?);
        let kubectl = bin.join("kubectl");
        // From here on, a failure drops `cluster`, which cleans up.
        let mut cluster = Cluster {
            dir: dir.clone(),
            keep: options.keep,
            kubeconfig: dir.join("kubeconfig"),
            kubectl,
            client: Client::try_from(kube::Config::new("http://127.0.0.1:1".parse()?))?,
            net: net.clone(),
            coffer_server: coffer_server.clone(),
            plane: None,
            tasks: Vec::new(),
            in_cluster: Vec::new(),
        };
        let plane = ControlPlane::start(
            &bin,
            &etcd,
            &dir,
            net.gateway,
            &net.service_cidr(),
            net.kubernetes_service_ip(),
        )?;
        cluster.plane = Some(plane);
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&cluster.kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        let client = Client::try_from(config)?;
        cluster.client = client.clone();

        provisioner::install_storage_class(&client).await?;
        let (sources, watches) = kubelet::sources(&client);
        cluster.tasks.extend(watches);
        let images = cluster.images(&coffer_server)?;
        let ctx = Arc::new(kubelet::Ctx {
            client: client.clone(),
            net: net.clone(),
            images,
            pods_dir: dir.join("pods"),
            sources,
            kubernetes_service: (net.kubernetes_service_ip(), 443),
        });
        let nodes: Vec<String> = (0..options.nodes.max(1))
            .map(|i| format!("node-{i}"))
            .collect();
        let kubelet = kubelet::Kubelet {
            ctx,
            nodes: nodes.clone(),
        };
        cluster.tasks.push(tokio::spawn(async move {
            if let Err(e) = kubelet.run().await {
                eprintln!("kubelet stopped: {e:#}");
            }
        }));
        let (c, n) = (client.clone(), net.clone());
        cluster.tasks.push(tokio::spawn(async move {
            if let Err(e) = services::run(c, n).await {
                eprintln!("service proxy stopped: {e:#}");
            }
        }));
        let (c, volumes) = (client.clone(), dir.join("volumes"));
        std::fs::create_dir_all(&volumes)?;
        cluster.tasks.push(tokio::spawn(async move {
            if let Err(e) = provisioner::run(c, volumes).await {
                eprintln!("provisioner stopped: {e:#}");
            }
        }));
        cluster.wait_usable(&nodes).await?;
        Ok(cluster)
    }

    /// Builds the images from the workspace's binaries into `<dir>/images` and reads them
    /// back, as a node that pulled them: each under its release reference, the server's also
    /// as `IMAGE_NEXT`.
    /// Without a built operator its image is simply unknown here (a pod of it reports
    /// ErrImagePull), as an image missing from a registry would be.
    fn images(&self, coffer_server: &Path) -> Result<BTreeMap<String, Arc<Image>>> {
        let out = self.dir.join("images");
        let repository = coffer_operator::images::REPOSITORY;
        let mut specs = vec![(
            ImageSpec::server(coffer_server.to_path_buf(), repository),
            vec![IMAGE_NEXT],
        )];
        if let Ok(operator) = crate::server::workspace_binary("coffer-operator") {
            specs.push((ImageSpec::operator(operator, repository), vec![]));
        }
        let mut images = BTreeMap::new();
        for (spec, aliases) in specs {
            let built = crate::image::build(&spec, &out)?;
            let image = Arc::new(crate::image::load(&built.archive)?);
            images.insert(built.reference.clone(), image.clone());
            for alias in aliases {
                images.insert(alias.to_string(), image.clone());
            }
        }
        Ok(images)
    }

    /// Every node Ready, the `default` service account made (the controller manager runs)
    /// and the root CA published (pods can mount their API access volume).
    async fn wait_usable(&mut self, nodes: &[String]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(plane) = self.plane.as_mut() {
                plane.check()?;
            }
            let ready = self.kubectl(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}",
            ]);
            let sa = self.kubectl(&["get", "serviceaccount", "default", "-n", "default"]);
            let ca = self.kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", "default"]);
            if let (Ok(ready), Ok(_), Ok(_)) = (&ready, &sa, &ca) {
                if nodes.iter().all(|n| ready.contains(&format!("{n}=True"))) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "cluster not usable after 120 s (nodes: {ready:?}, default service account: {}); logs in {}",
                    sa.is_ok(),
                    self.dir.join("logs").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// `kubectl ARGS` against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        kubectl_output(&self.kubectl, &self.kubeconfig, args)
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) -> Result<String> {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(yaml.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl apply failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A network namespace for an in-cluster client named `name` (the operator, an app),
    /// seeing the cluster's names like a pod does.
    fn client_namespace(&self, name: &str) -> Result<String> {
        let address = self.net.address_of(&format!("client/{name}"));
        self.net.add_namespace(address, &[name.to_string()])
    }

    /// Starts `program` inside the cluster's network (like a pod), with `env` as its whole
    /// environment plus `PATH` and `HOME`, logging to `<dir>/logs/<name>.log`; stopped with
    /// the cluster.
    pub fn spawn_in_cluster(
        &mut self,
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        let ns = self.client_namespace(name)?;
        let mut command = control_plane::guarded("ip");
        command
            .args(["netns", "exec", &ns])
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .envs(env.iter().copied());
        let log = self.dir.join("logs").join(format!("{name}.log"));
        self.in_cluster.push(Proc::spawn(name, command, &log)?);
        Ok(())
    }

    /// Runs `program` to completion inside the cluster's network, as [`Self::spawn_in_cluster`].
    pub fn run_in_cluster(
        &self,
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<Output> {
        let ns = self.client_netns(name)?;
        Ok(Command::new("ip")
            .args(["netns", "exec", &ns, program])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.join("home"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()?)
    }

    /// The network namespace of in-cluster client `name`, made on first use; run a program
    /// in it with `ip netns exec NAMESPACE PROGRAM …` (e.g. from a thread of its own).
    pub fn client_netns(&self, name: &str) -> Result<String> {
        let address = self.net.address_of(&format!("client/{name}"));
        let ns = self.net.namespace_name(address);
        if Path::new("/etc/netns").join(&ns).exists() {
            Ok(ns)
        } else {
            self.client_namespace(name)
        }
    }

    /// Fails when a control-plane component or an in-cluster client has exited.
    pub fn check(&mut self) -> Result<()> {
        for p in &mut self.in_cluster {
            p.check()?;
        }
        if let Some(plane) = self.plane.as_mut() {
            plane.check()?;
        }
        Ok(())
    }

    /// Stops the in-cluster client `name` (e.g. the operator).
    pub fn stop_in_cluster(&mut self, name: &str) {
        self.in_cluster.retain(|p| p.name != name);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.in_cluster.clear();
        self.plane = None;
        self.net.shutdown();
        if self.keep {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
