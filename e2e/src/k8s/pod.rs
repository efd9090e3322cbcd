//! One pod on the process kubelet: its network namespace, its volumes, its containers as
//! local processes run from their images (the layers unpacked into a root of their own, the
//! image's entrypoint, environment, user and working directory, as a container runtime
//! would), their probes and restarts, its status in the API, and its termination (SIGTERM,
//! the grace period, SIGKILL, then the pod object is deleted) — the parts of a kubelet a
//! StatefulSet of `coffer-server` relies on.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::kubelet::Ctx;
use super::volumes::{self, Prepared};

/// The devices a container finds in /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// How often a pod's processes, probes and file volumes are looked at.
const TICK: Duration = Duration::from_millis(500);
/// Longest wait before a crashed container is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Default)]
struct ProbeState {
    next: Option<Instant>,
    failures: i32,
    successes: i32,
}

struct Run {
    spec: Container,
    child: Option<Child>,
    started_at: Option<Timestamp>,
    restarts: i32,
    /// When the next start may happen (crash backoff).
    not_before: Instant,
    /// The startup probe passed (or there is none).
    started: bool,
    ready: bool,
    waiting: Option<(String, String)>,
    last_exit: Option<(i32, Timestamp, Timestamp)>,
    exited: Option<(i32, Timestamp, Timestamp)>,
    startup: ProbeState,
    liveness: ProbeState,
    readiness: ProbeState,
    /// How an exec probe enters the running container (`nsenter` into its mount and
    /// network namespaces, root, working directory and user).
    exec_prefix: Vec<String>,
}

impl Run {
    fn new(spec: Container) -> Run {
        Run {
            spec,
            child: None,
            started_at: None,
            restarts: 0,
            not_before: Instant::now(),
            started: false,
            ready: false,
            waiting: Some(("ContainerCreating".into(), String::new())),
            last_exit: None,
            exited: None,
            startup: ProbeState::default(),
            liveness: ProbeState::default(),
            readiness: ProbeState::default(),
            exec_prefix: Vec::new(),
        }
    }
}

/// `$(VAR)` references expanded from `env` (as the kubelet does for command, args and env
/// values); `$$` is a literal `$`, unknown references stay as written.
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) if env.contains_key(&inner[..end]) => {
                    out.push_str(&env[&inner[..end]]);
                    rest = &inner[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The environment of container `c`: the image's, then what the kubelet sets, then the
/// container's own `envFrom` and `env` (later wins, as in Kubernetes).
fn environment(
    ctx: &Ctx,
    pod: &Pod,
    c: &Container,
    image: &[(String, String)],
) -> Result<BTreeMap<String, String>> {
    let ns = pod.namespace().unwrap_or_default();
    let mut env: BTreeMap<String, String> = image.iter().cloned().collect();
    env.entry("PATH".to_string()).or_insert_with(|| {
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
    });
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| pod.name_any());
    env.insert("HOSTNAME".into(), hostname);
    let (ip, port) = ctx.kubernetes_service;
    env.insert("KUBERNETES_SERVICE_HOST".into(), ip.to_string());
    env.insert("KUBERNETES_SERVICE_PORT".into(), port.to_string());
    for from in c.env_from.clone().unwrap_or_default() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let secret = from.secret_ref.as_ref().map(|s| s.name.as_str());
        let cm = from.config_map_ref.as_ref().map(|s| s.name.as_str());
        let optional = from
            .secret_ref
            .as_ref()
            .and_then(|s| s.optional)
            .or(from.config_map_ref.as_ref().and_then(|s| s.optional))
            .unwrap_or(false);
        match volumes::all_keys(&ctx.sources, &ns, secret, cm) {
            Some(keys) => {
                for (k, v) in keys {
                    env.insert(format!("{prefix}{k}"), v);
                }
            }
            None if optional => {}
            None => bail!("envFrom source {:?} not found", secret.or(cm)),
        }
    }
    for var in c.env.clone().unwrap_or_default() {
        let value = if let Some(from) = &var.value_from {
            if let Some(s) = &from.secret_key_ref {
                volumes::secret_key(
                    &ctx.sources,
                    &ns,
                    &s.name,
                    &s.key,
                    s.optional.unwrap_or(false),
                )?
            } else if let Some(c) = &from.config_map_key_ref {
                volumes::config_map_key(
                    &ctx.sources,
                    &ns,
                    &c.name,
                    &c.key,
                    c.optional.unwrap_or(false),
                )?
            } else if let Some(f) = &from.field_ref {
                Some(
                    volumes::field(pod, &f.field_path)
                        .with_context(|| format!("unsupported fieldRef {}", f.field_path))?,
                )
            } else {
                bail!("env {}: unsupported valueFrom", var.name);
            }
        } else {
            Some(expand(&var.value.clone().unwrap_or_default(), &env))
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    Ok(env)
}

/// The absolute path of a tool of the host (`ip`, `mount`, …), from the harness's own PATH
/// or the system folders.
fn host_tool(name: &str) -> Result<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .with_context(|| format!("{name} not found on this machine"))
}

/// Makes `path` (absolute, inside the container) exist under `root` as a folder or an empty
/// file, to mount something on; returns its host path. `..` cannot leave the root.
fn mount_point(root: &Path, path: &str, folder: bool) -> Result<PathBuf> {
    let relative = Path::new(path)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect::<PathBuf>();
    let target = root.join(relative);
    if folder {
        std::fs::create_dir_all(&target)?;
    } else if !target.exists() {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, b"")?;
    }
    Ok(target)
}

fn port_of(c: &Container, port: &IntOrString) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(name) => c
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// One probe attempt: HTTP GET (2xx/3xx passes), TCP connect, or a command inside the
/// running container (`exec_prefix` enters it).
async fn probe_once(ip: Ipv4Addr, c: &Container, probe: &Probe, exec_prefix: &[String]) -> bool {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let attempt = async {
        if let Some(get) = &probe.http_get {
            let port = port_of(c, &get.port)?;
            let mut stream = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
            let path = get.path.clone().unwrap_or_else(|| "/".into());
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await.ok()?;
            let code: u16 = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
            Some((200..400).contains(&code))
        } else if let Some(tcp) = &probe.tcp_socket {
            let port = port_of(c, &tcp.port)?;
            Some(tokio::net::TcpStream::connect((ip, port)).await.is_ok())
        } else if let Some(exec) = &probe.exec {
            let argv = exec.command.clone().unwrap_or_default();
            let (enter, rest) = exec_prefix.split_first()?;
            let status = Command::new(enter)
                .args(rest)
                .args(&argv)
                .kill_on_drop(true)
                .status()
                .await
                .ok()?;
            Some(status.success())
        } else {
            Some(true)
        }
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}

/// Runs `probe` when it is due; `Some(passed)` when the threshold it counts toward is met.
async fn tick_probe(
    exec_prefix: &[String],
    ip: Ipv4Addr,
    c: &Container,
    probe: &Probe,
    state: &mut ProbeState,
) -> Option<bool> {
    let now = Instant::now();
    let next = *state
        .next
        .get_or_insert(now + Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0) as u64));
    if now < next {
        return None;
    }
    state.next = Some(now + Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64));
    if probe_once(ip, c, probe, exec_prefix).await {
        state.failures = 0;
        state.successes += 1;
        (state.successes >= probe.success_threshold.unwrap_or(1)).then_some(true)
    } else {
        state.successes = 0;
        state.failures += 1;
        (state.failures >= probe.failure_threshold.unwrap_or(3)).then_some(false)
    }
}

fn signal(child: &Child, sig: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status();
    }
}

/// SIGTERM, up to `grace` for the process to exit, then SIGKILL. Returns the exit code.
async fn stop(child: &mut Child, grace: Duration) -> i32 {
    signal(child, "TERM");
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    status.and_then(|s| s.code()).unwrap_or(137)
}

pub struct PodWorker {
    ctx: Arc<Ctx>,
    pod: Pod,
    updates: watch::Receiver<Option<Pod>>,
    dir: PathBuf,
    address: Ipv4Addr,
    netns: Option<String>,
    prepared: Option<Prepared>,
    token_written: bool,
    runs: Vec<Run>,
    last_status: Option<serde_json::Value>,
    last_render: Option<Instant>,
}

impl PodWorker {
    pub fn new(ctx: Arc<Ctx>, pod: Pod, updates: watch::Receiver<Option<Pod>>) -> PodWorker {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let dir = ctx
            .pods_dir
            .join(format!("{ns}_{name}_{}", pod.uid().unwrap_or_default()));
        let address = ctx.net.address_of(&format!("pod/{ns}/{name}"));
        let runs = pod
            .spec
            .as_ref()
            .map(|s| s.containers.iter().cloned().map(Run::new).collect())
            .unwrap_or_default();
        PodWorker {
            ctx,
            pod,
            updates,
            dir,
            address,
            netns: None,
            prepared: None,
            token_written: false,
            runs,
            last_status: None,
            last_render: None,
        }
    }

    fn names(&self) -> Vec<String> {
        let spec = self.pod.spec.as_ref();
        let ns = self.pod.namespace().unwrap_or_default();
        let hostname = spec
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| self.pod.name_any());
        match spec.and_then(|s| s.subdomain.clone()) {
            Some(sub) => vec![
                format!("{hostname}.{sub}.{ns}.svc.cluster.local"),
                format!("{hostname}.{sub}.{ns}.svc"),
                hostname,
            ],
            None => vec![hostname],
        }
    }

    /// Runs the pod until it is deleted, then cleans up after it.
    pub async fn run(mut self) {
        let id = format!(
            "{}/{}",
            self.pod.namespace().unwrap_or_default(),
            self.pod.name_any()
        );
        let result = self.lifecycle().await;
        if let Err(e) = &result {
            eprintln!("kubelet: pod {id}: {e:#}");
        }
        self.teardown(Duration::from_secs(0)).await;
    }

    async fn lifecycle(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let names = self.names();
        // Like a kubelet creating a pod sandbox, this retries until the pod is deleted: the
        // network of the pod this one replaces (same identity, same address) may still be
        // going away.
        let mut failures = 0u32;
        let ns = loop {
            match self.ctx.net.add_namespace(self.address, &names) {
                Ok(ns) => break ns,
                Err(e) => {
                    failures += 1;
                    let gone = self
                        .updates
                        .borrow()
                        .as_ref()
                        .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
                    if gone {
                        return Err(e);
                    }
                    if failures == 1 {
                        eprintln!(
                            "kubelet: pod {}: network not ready yet, retrying: {e:#}",
                            self.pod.name_any()
                        );
                    }
                    tokio::time::sleep(TICK).await;
                }
            }
        };
        self.netns = Some(ns.clone());
        if self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.subdomain.as_ref())
            .is_some()
        {
            for name in &names[..2] {
                self.ctx.net.publish(name, self.address);
            }
        }
        loop {
            // The newest copy of the pod; `None` once it is gone from the API.
            // (Always read: `changed()` below marks the value seen, so `has_changed` would
            // miss exactly the updates that woke this loop.)
            match self.updates.borrow_and_update().clone() {
                Some(pod) => self.pod = pod,
                None => return Ok(()),
            }
            if self.pod.metadata.deletion_timestamp.is_some() {
                let grace = self
                    .pod
                    .metadata
                    .deletion_grace_period_seconds
                    .or(self
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds))
                    .unwrap_or(30);
                self.teardown(Duration::from_secs(grace.max(0) as u64))
                    .await;
                self.delete_object().await;
                return Ok(());
            }
            if let Err(e) = self.step(&ns).await {
                for run in self.runs.iter_mut().filter(|r| r.child.is_none()) {
                    run.waiting = Some(("CreateContainerConfigError".into(), format!("{e:#}")));
                }
            }
            if let Err(e) = self.report().await {
                eprintln!("kubelet: status of {}: {e:#}", self.pod.name_any());
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                changed = self.updates.changed() => {
                    // The kubelet is gone: so is this pod.
                    if changed.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Volumes, starts, exits, probes: one look at the pod.
    async fn step(&mut self, ns: &str) -> Result<()> {
        if self.prepared.is_none() {
            self.prepared = Some(volumes::prepare(&self.ctx.client, &self.pod, &self.dir).await?);
        }
        let due = self
            .last_render
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1));
        if due {
            let prepared = self.prepared.as_ref().expect("prepared above");
            volumes::render(
                &self.ctx.sources,
                &self.pod,
                prepared,
                &mut self.token_written,
            )
            .await?;
            self.last_render = Some(Instant::now());
        }
        let policy = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        for i in 0..self.runs.len() {
            // Exits.
            let exited = match self.runs[i].child.as_mut() {
                Some(child) => child.try_wait()?.map(|s| s.code().unwrap_or(137)),
                None => None,
            };
            if let Some(code) = exited {
                self.exited(i, code, &policy);
            }
            if self.runs[i].child.is_none() {
                let run = &self.runs[i];
                let may_start = run.exited.is_none() && Instant::now() >= run.not_before;
                if may_start {
                    self.start(i, ns)?;
                }
                continue;
            }
            // Probes.
            let ip = self.address;
            let run = &mut self.runs[i];
            let spec = run.spec.clone();
            let exec_prefix = run.exec_prefix.clone();
            if !run.started {
                match &spec.startup_probe {
                    None => run.started = true,
                    Some(p) => match tick_probe(&exec_prefix, ip, &spec, p, &mut run.startup).await
                    {
                        Some(true) => run.started = true,
                        Some(false) => {
                            self.kill_for_restart(i, "startup probe failed").await;
                            continue;
                        }
                        None => {}
                    },
                }
                if !self.runs[i].started {
                    continue;
                }
            }
            let run = &mut self.runs[i];
            if let Some(p) = &spec.liveness_probe {
                if tick_probe(&exec_prefix, ip, &spec, p, &mut run.liveness).await == Some(false) {
                    self.kill_for_restart(i, "liveness probe failed").await;
                    continue;
                }
            }
            let run = &mut self.runs[i];
            match &spec.readiness_probe {
                None => run.ready = true,
                Some(p) => {
                    if let Some(ready) =
                        tick_probe(&exec_prefix, ip, &spec, p, &mut run.readiness).await
                    {
                        run.ready = ready;
                    }
                }
            }
        }
        Ok(())
    }

    fn exited(&mut self, i: usize, code: i32, policy: &str) {
        let run = &mut self.runs[i];
        run.child = None;
        run.ready = false;
        run.started = false;
        run.startup = ProbeState::default();
        run.liveness = ProbeState::default();
        run.readiness = ProbeState::default();
        let started = run.started_at.take().unwrap_or_else(Timestamp::now);
        let record = (code, started, Timestamp::now());
        let restart = policy == "Always" || (policy == "OnFailure" && code != 0);
        if restart {
            let backoff = Duration::from_secs(1 << run.restarts.clamp(0, 4)).min(MAX_BACKOFF);
            run.not_before = Instant::now() + backoff;
            run.last_exit = Some(record);
            run.restarts += 1;
            run.waiting = Some((
                "CrashLoopBackOff".into(),
                format!("exited with {code}; restarting"),
            ));
        } else {
            run.exited = Some(record);
            run.waiting = None;
        }
    }

    async fn kill_for_restart(&mut self, i: usize, why: &str) {
        eprintln!(
            "kubelet: {} {}: {why}",
            self.pod.name_any(),
            self.runs[i].spec.name
        );
        let grace = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        if let Some(mut child) = self.runs[i].child.take() {
            let code = stop(&mut child, Duration::from_secs(grace.max(0) as u64)).await;
            self.runs[i].child = Some(child);
            let policy = "Always";
            self.exited(i, code, policy);
        }
    }

    fn start(&mut self, i: usize, ns: &str) -> Result<()> {
        let spec = self.runs[i].spec.clone();
        let reference = spec.image.clone().unwrap_or_default();
        let Some(image) = self.ctx.images.get(&reference).cloned() else {
            self.runs[i].waiting = Some((
                "ErrImagePull".into(),
                format!("image {reference} is not known to this kubelet"),
            ));
            bail!("unknown image {reference}");
        };
        // Every start gets a fresh root from the image's layers, as a runtime creates a new
        // container: nothing of the host's file system is visible inside but the volumes.
        let root = self.dir.join("rootfs").join(&spec.name);
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        image
            .unpack(&root)
            .with_context(|| format!("unpacking image {reference}"))?;

        let pod_security = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.clone());
        let security = spec.security_context.clone().unwrap_or_default();
        let (image_uid, image_gid) = image.user_ids(&root)?;
        let uid = security
            .run_as_user
            .or(pod_security.as_ref().and_then(|p| p.run_as_user))
            .map_or(image_uid, |u| u as u32);
        let gid = security
            .run_as_group
            .or(pod_security.as_ref().and_then(|p| p.run_as_group))
            .map_or(image_gid, |g| g as u32);
        let non_root = security
            .run_as_non_root
            .or(pod_security.as_ref().and_then(|p| p.run_as_non_root))
            .unwrap_or(false);
        if non_root && uid == 0 {
            bail!("container has runAsNonRoot and image will run as root");
        }
        let read_only_root = security.read_only_root_filesystem == Some(true);

        let mut env = environment(&self.ctx, &self.pod, &spec, &image.config.env)?;
        if !env.contains_key("HOME") {
            env.insert("HOME".into(), crate::image::home_of(&root, uid));
        }
        // `command` replaces the image's entrypoint and drops its default arguments; `args`
        // replaces those arguments; both with `$(VAR)` expanded (Kubernetes' rules).
        let command: Vec<String> = spec
            .command
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|a| expand(a, &env))
            .collect();
        let args: Option<Vec<String>> = spec
            .args
            .clone()
            .map(|a| a.iter().map(|a| expand(a, &env)).collect());
        let argv: Vec<String> = if command.is_empty() {
            let mut argv = image.config.entrypoint.clone();
            argv.extend(args.unwrap_or_else(|| image.config.cmd.clone()));
            argv
        } else {
            let mut argv = command;
            argv.extend(args.unwrap_or_default());
            argv
        };
        if argv.is_empty() {
            bail!("image {reference} has no entrypoint and the container no command");
        }
        let working_dir = spec
            .working_dir
            .clone()
            .filter(|d| !d.is_empty())
            .or(image.config.working_dir.clone())
            .unwrap_or_else(|| "/".into());

        let prepared = self
            .prepared
            .as_ref()
            .expect("volumes prepared before start");
        // Inside the pod's network namespace (`ip netns exec` also gives it a mount namespace
        // of its own, with the pod's hosts file on /etc/hosts) the root is bind-mounted on
        // itself, the volumes, the hosts file, /proc and a few devices onto it, the root made
        // read-only if asked; then `unshare` enters it (chroot), changes to the working
        // directory and to the container's user, and runs the program.
        let mut script_args: Vec<String> = vec![
            root.display().to_string(),
            if read_only_root { "ro" } else { "rw" }.into(),
        ];
        for m in spec.volume_mounts.clone().unwrap_or_default() {
            let Some(folder) = prepared.folders.get(&m.name) else {
                bail!("mount of unknown volume {}", m.name);
            };
            let source = match &m.sub_path {
                Some(sub) if !sub.is_empty() => {
                    let p = folder.join(sub);
                    if !p.exists() {
                        std::fs::create_dir_all(&p)?;
                    }
                    p
                }
                _ => folder.clone(),
            };
            let target = mount_point(&root, &m.mount_path, source.is_dir())?;
            script_args.push(source.display().to_string());
            script_args.push(target.display().to_string());
            script_args.push(
                if m.read_only == Some(true) {
                    "ro"
                } else {
                    "rw"
                }
                .into(),
            );
        }
        mount_point(&root, "/etc/hosts", false)?;
        mount_point(&root, "/proc", true)?;
        for dev in DEVICES {
            mount_point(&root, &format!("/dev/{dev}"), false)?;
        }
        mount_point(&root, &working_dir, true)?;
        // The host's tools by absolute path: the environment is the container's, whose PATH
        // names folders of the image.
        let script = r#"set -e
root=$1; mode=$2; shift 2
MOUNT --bind "$root" "$root"
while [ "$1" != "--" ]; do
  MOUNT --bind "$1" "$2"
  if [ "$3" = ro ]; then MOUNT -o remount,bind,ro "$2"; fi
  shift 3
done
shift
MOUNT --bind /etc/hosts "$root/etc/hosts"
MOUNT -t proc proc "$root/proc"
for d in DEVICES; do if [ -e "/dev/$d" ]; then MOUNT --bind "/dev/$d" "$root/dev/$d"; fi; done
if [ "$mode" = ro ]; then MOUNT -o remount,bind,ro "$root"; fi
exec "$@""#
            .replace("DEVICES", &DEVICES.join(" "))
            .replace("MOUNT", &host_tool("mount")?);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", spec.name)))?;
        let (uid, gid) = (uid.to_string(), gid.to_string());
        // Killed by the kernel if this kubelet's thread dies without cleaning up (see
        // `control_plane::guarded`), while the chain runs as root; the container's own user
        // cannot inherit that (a change of user clears it), so the cluster's teardown stops
        // it.
        let mut command = Command::new(host_tool("setpriv")?);
        command
            .args(["--pdeathsig", "KILL", "--", &host_tool("ip")?])
            .args(["netns", "exec", ns, &host_tool("sh")?, "-c", &script, "sh"])
            .args(&script_args)
            .arg("--")
            .arg(host_tool("unshare")?)
            .arg(format!("--root={}", root.display()))
            .arg(format!("--wd={working_dir}"))
            .args(["--setuid", &uid, "--setgid", &gid, "--"])
            .args(&argv)
            .env_clear()
            .envs(&env)
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().context("starting the container")?;
        let pid = child.id().unwrap_or_default().to_string();
        let nsenter = host_tool("nsenter")?;
        let run = &mut self.runs[i];
        let prefix: [&str; 12] = [
            &nsenter, "--target", &pid, "--mount", "--net", "--root", "--wd", "--setuid", &uid,
            "--setgid", &gid, "--",
        ];
        run.exec_prefix = prefix.map(String::from).to_vec();
        run.child = Some(child);
        run.started_at = Some(Timestamp::now());
        run.waiting = None;
        Ok(())
    }

    /// Stops every container (SIGTERM, `grace`, SIGKILL) and removes the pod's namespace and
    /// folders; volume claims' folders stay.
    async fn teardown(&mut self, grace: Duration) {
        let stops = self
            .runs
            .iter_mut()
            .filter_map(|r| r.child.as_mut())
            .map(|c| stop(c, grace));
        futures::future::join_all(stops).await;
        for run in &mut self.runs {
            run.child = None;
        }
        if let Some(ns) = self.netns.take() {
            self.ctx.net.remove_namespace(&ns);
        }
        let _ = std::fs::remove_dir_all(self.dir.join("volumes"));
        let _ = std::fs::remove_dir_all(self.dir.join("rootfs"));
    }

    /// Removes the pod object now that nothing of it runs (what a kubelet does last).
    async fn delete_object(&self) {
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &self.pod.namespace().unwrap_or_default(),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: self.pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let _ = api.delete(&self.pod.name_any(), &params).await;
    }

    fn status(&self) -> serde_json::Value {
        let time = |t: &Timestamp| Time(*t);
        let mut statuses = Vec::new();
        for run in &self.runs {
            let state = if let Some(at) = &run.started_at {
                json!({"running": {"startedAt": time(at)}})
            } else if let Some((code, s, f)) = &run.exited {
                json!({"terminated": {"exitCode": code, "startedAt": time(s), "finishedAt": time(f),
                    "reason": if *code == 0 { "Completed" } else { "Error" }}})
            } else {
                let (reason, message) = run.waiting.clone().unwrap_or_default();
                json!({"waiting": {"reason": reason, "message": message}})
            };
            let last = run.last_exit.as_ref().map(|(code, s, f)| {
                json!({"terminated": {"exitCode": code, "startedAt": time(s), "finishedAt": time(f),
                    "reason": "Error"}})
            });
            let image = run.spec.image.clone().unwrap_or_default();
            // As containerd reports it: the repository and the manifest's digest.
            let image_id = match self.ctx.images.get(&image) {
                Some(known) => format!(
                    "{}@{}",
                    image
                        .rsplit_once(':')
                        .map_or(image.as_str(), |(repo, _)| repo),
                    known.digest
                ),
                None => String::new(),
            };
            statuses.push(json!({
                "name": run.spec.name,
                "image": image,
                "imageID": image_id,
                "containerID": format!("process://{}/{}", self.pod.uid().unwrap_or_default(), run.spec.name),
                "ready": run.ready,
                "started": run.started,
                "restartCount": run.restarts,
                "state": state,
                "lastState": last.unwrap_or_else(|| json!({})),
            }));
        }
        let all_ready = !self.runs.is_empty() && self.runs.iter().all(|r| r.ready);
        let any_running = self.runs.iter().any(|r| r.child.is_some());
        let all_exited = !self.runs.is_empty() && self.runs.iter().all(|r| r.exited.is_some());
        let phase = if all_exited {
            if self
                .runs
                .iter()
                .all(|r| r.exited.as_ref().is_some_and(|e| e.0 == 0))
            {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if any_running || self.runs.iter().any(|r| r.restarts > 0) {
            "Running"
        } else {
            "Pending"
        };
        let flag = |b: bool| if b { "True" } else { "False" };
        let mut conditions = vec![
            json!({"type": "PodReadyToStartContainers", "status": flag(self.netns.is_some())}),
            json!({"type": "Initialized", "status": "True"}),
            json!({"type": "ContainersReady", "status": flag(all_ready)}),
            json!({"type": "Ready", "status": flag(all_ready)}),
        ];
        // Transition times only move when the status does: compare without them, stamp after.
        let previous = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for c in &mut conditions {
            let kind = c["type"].as_str().unwrap_or_default().to_string();
            let status = c["status"].as_str().unwrap_or_default().to_string();
            let same = previous
                .iter()
                .find(|p| p.type_ == kind)
                .filter(|p| p.status == status);
            c["lastTransitionTime"] = match same.and_then(|p| p.last_transition_time.clone()) {
                Some(t) => json!(t),
                None => json!(Time(Timestamp::now())),
            };
        }
        let start_time = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .unwrap_or_else(|| Time(Timestamp::now()));
        json!({
            "phase": phase,
            "hostIP": self.ctx.net.gateway.to_string(),
            "hostIPs": [{"ip": self.ctx.net.gateway.to_string()}],
            "podIP": self.address.to_string(),
            "podIPs": [{"ip": self.address.to_string()}],
            "startTime": start_time,
            "conditions": conditions,
            "containerStatuses": statuses,
        })
    }

    /// Writes the pod's status when it changed (transition times aside).
    async fn report(&mut self) -> Result<()> {
        let status = self.status();
        let mut comparable = status.clone();
        if let Some(conds) = comparable["conditions"].as_array_mut() {
            for c in conds {
                c.as_object_mut().map(|o| o.remove("lastTransitionTime"));
            }
        }
        if self.last_status.as_ref() == Some(&comparable) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &self.pod.namespace().unwrap_or_default(),
        );
        api.patch_status(
            &self.pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(json!({ "status": status })),
        )
        .await?;
        self.last_status = Some(comparable);
        Ok(())
    }
}
