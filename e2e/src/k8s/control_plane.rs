//! etcd, kube-apiserver, kube-controller-manager and kube-scheduler as child processes on
//! this machine, configured the way a kubeadm cluster is (client certificates, RBAC and Node
//! authorization, service-account tokens signed by our own key), each logging to a file.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::pki::{kubeconfig, Pki};

/// How long the API server may take to answer `/readyz` (its first start migrates etcd and
/// creates the built-in objects).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A child process killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Proc> {
        let out = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    /// Fails when the process has exited.
    pub fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` under `setpriv --pdeathsig KILL`: the kernel kills it when the thread that
/// started it ends, so a harness killed outright (no destructor runs) leaves no control plane
/// or server processes behind. (The threads that start them live as long as the harness.)
pub fn guarded(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct ControlPlane {
    /// Components in start order; dropped (killed) in reverse.
    procs: Vec<Proc>,
    pub kubeconfig: PathBuf,
    pub api_url: String,
    pub logs: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
    }
}

impl ControlPlane {
    /// Starts the control plane with its state under `dir`; the API server listens on every
    /// address (pods reach it at `gateway`), and allocates cluster IPs from `service_cidr`.
    pub fn start(
        bin: &Path,
        etcd: &Path,
        dir: &Path,
        gateway: Ipv4Addr,
        service_cidr: &str,
        kubernetes_service_ip: Ipv4Addr,
    ) -> Result<ControlPlane> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let pki = Pki::generate(&dir.join("pki"), &[gateway, kubernetes_service_ip])?;
        let mut procs = Vec::new();

        let client_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let mut command = guarded(etcd);
        command.args([
            "--name=e2e",
            &format!("--data-dir={}", dir.join("etcd").display()),
            &format!("--listen-client-urls={etcd_url}"),
            &format!("--advertise-client-urls={etcd_url}"),
            &format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-cluster=e2e=http://127.0.0.1:{peer_port}"),
            // A throwaway cluster: durability of etcd's own writes buys nothing here and
            // fsync per write slows every API call on a shared CI disk.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]);
        procs.push(Proc::spawn("etcd", command, &logs.join("etcd.log"))?);

        let port = free_port()?;
        let api_url = format!("https://{gateway}:{port}");
        let path = |p: &Path| p.display().to_string();
        let mut command = guarded(bin.join("kube-apiserver"));
        command.args([
            &format!("--etcd-servers={etcd_url}"),
            "--bind-address=0.0.0.0",
            &format!("--secure-port={port}"),
            &format!("--advertise-address={gateway}"),
            &format!("--tls-cert-file={}", path(&pki.apiserver.cert)),
            &format!("--tls-private-key-file={}", path(&pki.apiserver.key)),
            &format!("--client-ca-file={}", path(&pki.ca)),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            &format!("--service-account-key-file={}", path(&pki.sa_pub)),
            &format!("--service-account-signing-key-file={}", path(&pki.sa_key)),
            &format!("--service-cluster-ip-range={service_cidr}"),
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            &format!("--cert-dir={}", path(&dir.join("pki"))),
            "--profiling=false",
        ]);
        procs.push(Proc::spawn(
            "kube-apiserver",
            command,
            &logs.join("kube-apiserver.log"),
        )?);

        let admin = dir.join("kubeconfig");
        std::fs::write(&admin, kubeconfig(&api_url, &pki.ca, &pki.admin))?;
        let cm_config = dir.join("controller-manager.kubeconfig");
        std::fs::write(
            &cm_config,
            kubeconfig(&api_url, &pki.ca, &pki.controller_manager),
        )?;
        let sched_config = dir.join("scheduler.kubeconfig");
        std::fs::write(&sched_config, kubeconfig(&api_url, &pki.ca, &pki.scheduler))?;

        let mut plane = ControlPlane {
            procs,
            kubeconfig: admin.clone(),
            api_url,
            logs: logs.clone(),
        };
        plane.wait_ready(&bin.join("kubectl"), &admin)?;

        let mut command = guarded(bin.join("kube-controller-manager"));
        command.args([
            &format!("--kubeconfig={}", path(&cm_config)),
            &format!("--authentication-kubeconfig={}", path(&cm_config)),
            &format!("--authorization-kubeconfig={}", path(&cm_config)),
            // Each controller acts as its own service account, as in kubeadm clusters, so
            // the RBAC the real controllers get is what is exercised.
            "--use-service-account-credentials=true",
            &format!("--service-account-private-key-file={}", path(&pki.sa_key)),
            &format!("--root-ca-file={}", path(&pki.ca)),
            &format!("--service-cluster-ip-range={service_cidr}"),
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            &format!("--secure-port={}", free_port()?),
            &format!("--cert-dir={}", path(&dir.join("pki"))),
            // Scenarios stop pods on purpose: give the garbage collector of terminated pods
            // and the node lifecycle no reason to act on their own timetable.
            "--terminated-pod-gc-threshold=1000",
        ]);
        plane.procs.push(Proc::spawn(
            "kube-controller-manager",
            command,
            &logs.join("kube-controller-manager.log"),
        )?);
        let mut command = guarded(bin.join("kube-scheduler"));
        command.args([
            &format!("--kubeconfig={}", path(&sched_config)),
            &format!("--authentication-kubeconfig={}", path(&sched_config)),
            &format!("--authorization-kubeconfig={}", path(&sched_config)),
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            &format!("--secure-port={}", free_port()?),
        ]);
        plane.procs.push(Proc::spawn(
            "kube-scheduler",
            command,
            &logs.join("kube-scheduler.log"),
        )?);
        Ok(plane)
    }

    /// Waits until `kubectl get --raw /readyz` answers `ok`.
    fn wait_ready(&mut self, kubectl: &Path, kubeconfig: &Path) -> Result<()> {
        let start = Instant::now();
        loop {
            for p in &mut self.procs {
                p.check()
                    .with_context(|| format!("see {}", self.logs.display()))?;
            }
            if let Ok(mut stream) = std::net::TcpStream::connect_timeout(
                &self
                    .api_url
                    .trim_start_matches("https://")
                    .parse()
                    .context("API server address")?,
                Duration::from_millis(200),
            ) {
                let _ = std::io::Write::flush(&mut stream);
                let ok = super::kubectl_output(kubectl, kubeconfig, &["get", "--raw", "/readyz"])
                    .is_ok_and(|out| out.trim() == "ok");
                if ok {
                    return Ok(());
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "kube-apiserver not ready after {READY_TIMEOUT:?}; see {}",
                    self.logs.display()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Fails when a component has exited.
    pub fn check(&mut self) -> Result<()> {
        for p in &mut self.procs {
            p.check()?;
        }
        Ok(())
    }
}
