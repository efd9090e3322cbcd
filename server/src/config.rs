//! The command line and environment of `coffer-server` (a public interface: scripts, charts
//! and docs depend on it), and starting a server from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::http::{Context, ServerHandle};
use crate::iam::{Credential, Iam, RootSource};
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "coffer-server",
    version,
    about = "Coffer: S3-compatible, erasure-coded object storage"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve S3 from one or more drive folders.
    Serve(ServeArgs),
    /// Talk to a running server's admin API (root credential from the environment).
    Admin(AdminArgs),
}

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The server's S3 endpoint.
    #[arg(
        long,
        env = "COFFER_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub endpoint: String,
    #[arg(
        long,
        env = "COFFER_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub region: String,
    #[arg(long, env = "COFFER_ROOT_USER", hide_env_values = true, global = true)]
    pub root_user: Option<String>,
    #[arg(
        long,
        env = "COFFER_ROOT_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub root_password: Option<String>,
    /// Print JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// PEM CA certificate(s) to trust for an https endpoint (default: the system's roots).
    #[arg(long, env = "COFFER_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Drives, erasure geometry and quorums.
    Status,
    /// Healing: `status` (objects scanned, shards missing and healed) or `start` (a scan now).
    Heal {
        #[arg(value_parser = ["status", "start"], default_value = "status")]
        action: String,
    },
    /// Scoped access keys.
    Key {
        #[command(subcommand)]
        action: KeyCommand,
    },
    /// Buckets (create and delete are idempotent).
    Bucket {
        #[command(subcommand)]
        action: BucketCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum BucketCommand {
    /// Creates the bucket, or describes it when it exists already.
    Create { name: String },
    /// Deletes the bucket (it must be empty unless --force); succeeds when it is absent already.
    Delete {
        name: String,
        /// Delete every object (all versions) and unfinished upload first. Irreversible.
        #[arg(long)]
        force: bool,
    },
    /// Every bucket with its usage.
    List,
    /// One bucket with its usage.
    Describe { name: String },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Creates a key (or updates the one named by --access-key) and prints its secret once.
    Create {
        /// `NAME[:ReadWrite|ReadOnly|WriteOnly]`, repeatable (ReadWrite when no mode is given).
        #[arg(long = "bucket", required = true, value_parser = crate::iam::keys::parse_bucket_grant)]
        buckets: Vec<(String, crate::iam::keys::AccessMode)>,
        /// RFC 3339 time after which the key stops working.
        #[arg(long)]
        expires: Option<String>,
        /// The access key id to use (generated when absent).
        #[arg(long)]
        access_key: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Every key, without secrets.
    List,
    /// One key, without its secret.
    Describe {
        id: String,
    },
    Delete {
        id: String,
    },
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// Gives the key a new secret and prints it once.
    Rotate {
        id: String,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Drive folders (created if missing).
    #[arg(default_value = "./data", env = "COFFER_DRIVES", value_delimiter = ',')]
    pub drives: Vec<PathBuf>,
    /// S3 listener address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000", env = "COFFER_ADDRESS")]
    pub address: SocketAddr,
    /// Parity shards per erasure set (default: by the number of drives, as DESIGN.md says).
    #[arg(long, env = "COFFER_PARITY")]
    pub parity: Option<usize>,
    /// Most objects the background scanner checks per second (bounds its I/O).
    #[arg(long, env = "COFFER_HEAL_RATE", default_value_t = 500)]
    pub heal_rate: u64,
    /// Seconds between two full scans of the drives.
    #[arg(long, env = "COFFER_HEAL_INTERVAL", default_value_t = 600)]
    pub heal_interval: u64,
    /// Seconds in a lifecycle "day" (rules' Days count in these). Only for tests and trials:
    /// production keeps the default of 86400, as S3 does.
    #[arg(long, env = "COFFER_LIFECYCLE_DAY_SECONDS", default_value_t = 86_400)]
    pub lifecycle_day_seconds: u64,
    /// Region reported to clients and required in signatures.
    #[arg(long, default_value = "us-east-1", env = "COFFER_REGION")]
    pub region: String,
    /// Parent domains for virtual-hosted-style requests (bucket.DOMAIN).
    #[arg(
        long = "domain",
        env = "COFFER_DOMAIN",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    pub domains: Vec<String>,
    /// Root access key (with COFFER_ROOT_PASSWORD); generated on first start when unset.
    #[arg(long, env = "COFFER_ROOT_USER", hide_env_values = true)]
    pub root_user: Option<String>,
    /// Root secret key.
    #[arg(long, env = "COFFER_ROOT_PASSWORD", hide_env_values = true)]
    pub root_password: Option<String>,
    /// Join a cluster: the topology file (docs/topology.md) the operator writes into the
    /// store's ConfigMap. Needs --node and COFFER_CLUSTER_SECRET.
    #[arg(long, env = "COFFER_TOPOLOGY", requires = "node")]
    pub topology: Option<PathBuf>,
    /// This server's name in the topology file.
    #[arg(long, env = "COFFER_NODE", requires = "topology")]
    pub node: Option<String>,
    /// Peer RPC listener (default: all interfaces, on the port of this server's `rpc` entry).
    #[arg(long, env = "COFFER_RPC_ADDRESS")]
    pub rpc_address: Option<SocketAddr>,
    /// The secret every server of the cluster shares (at least 16 characters).
    #[arg(long, env = "COFFER_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// PEM certificate chain: the listener speaks HTTPS (with --tls-key). Both files are
    /// reloaded when they change.
    #[arg(long, env = "COFFER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "COFFER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) of the cluster: peer RPC then runs over TLS, serving --tls-cert
    /// and trusting only peers whose certificate this CA signed for their topology host.
    /// Needs --tls-cert, --tls-key and --topology.
    #[arg(long, env = "COFFER_TLS_CA", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Milliseconds of a cluster lock's lease (renewed every third of it while held; a server
    /// votes only once one lease has passed since it started). Every server of a cluster must
    /// use the same. Only tests shorten it.
    #[arg(
        long,
        env = "COFFER_LOCK_LEASE_MS",
        default_value_t = 15_000,
        hide = true
    )]
    pub lock_lease_ms: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs::parse_from(["serve"])
    }
}

#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

impl ServeArgs {
    fn parse_from<I: IntoIterator<Item = &'static str>>(args: I) -> ServeArgs {
        ServeOnly::parse_from(args).args
    }
}

/// A running server: its address, how its root credential was obtained, and its handle.
pub struct Running {
    pub handle: ServerHandle,
    pub root: Credential,
    pub root_source: RootSource,
    /// Whether the listener speaks HTTPS.
    pub tls: bool,
    /// In a cluster: fires when the topology file changed to a valid successor (a pool was
    /// appended). The server then stops so its supervisor starts it again with the new
    /// topology, as MinIO does on pool expansion.
    pub topology_changed: Option<tokio::sync::oneshot::Receiver<String>>,
}

/// Polls the topology file every 2 s; answers once it holds a different topology that may
/// replace `current` ([`crate::cluster::Topology::check_update`]). A file that does not parse
/// or would be an incompatible change is logged and ignored: the cluster keeps running on the
/// topology it has.
fn watch_topology(
    path: PathBuf,
    current: crate::cluster::Topology,
) -> tokio::sync::oneshot::Receiver<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut refused: Option<crate::cluster::Topology> = None;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if tx.is_closed() {
                return;
            }
            let next = match crate::cluster::Topology::load(&path) {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!(error = %e, "topology file unreadable; keeping the current topology");
                    continue;
                }
            };
            if next == current || refused.as_ref() == Some(&next) {
                continue;
            }
            match current.check_update(&next) {
                Ok(()) => {
                    let _ = tx.send(format!(
                        "{} now lists {} pools (was {})",
                        path.display(),
                        next.pools.len(),
                        current.pools.len()
                    ));
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the new topology cannot replace the running one; ignoring it");
                    refused = Some(next);
                }
            }
        }
    });
    rx
}

/// Refuses TLS settings that cannot work together, before anything starts. (The command line
/// parser refuses most of these too; this also covers arguments built in code.)
pub fn check_tls_args(args: &ServeArgs) -> anyhow::Result<()> {
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        anyhow::bail!("--tls-cert and --tls-key (COFFER_TLS_CERT, COFFER_TLS_KEY) go together");
    }
    if let Some(ca) = &args.tls_ca {
        if args.tls_cert.is_none() {
            anyhow::bail!(
                "--tls-ca {} needs --tls-cert and --tls-key: a server presents its certificate to its peers",
                ca.display()
            );
        }
        if args.topology.is_none() {
            anyhow::bail!(
                "--tls-ca {} is the CA of peer RPC between the servers of a cluster; it needs --topology",
                ca.display()
            );
        }
    }
    Ok(())
}

/// The certificate of the S3 listener (and of peer RPC with `--tls-ca`), reloaded when its
/// files change; `None` without `--tls-cert`.
fn serving_cert(args: &ServeArgs) -> anyhow::Result<Option<Arc<crate::http::tls::ReloadingCert>>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let files = crate::http::tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    };
    Ok(Some(crate::http::tls::spawn_reloader(
        files,
        crate::http::tls::RELOAD_INTERVAL,
    )?))
}

pub async fn start(args: &ServeArgs) -> anyhow::Result<Running> {
    check_tls_args(args)?;
    let cert = serving_cert(args)?;
    if args.topology.is_some() {
        return start_clustered(args, cert).await;
    }
    let first = args
        .drives
        .first()
        .ok_or_else(|| anyhow::anyhow!("at least one drive folder is needed"))?;
    if args.drives.len() > crate::store::erasure::MAX_SET_SIZE {
        anyhow::bail!(
            "at most {} drives per server are supported",
            crate::store::erasure::MAX_SET_SIZE
        );
    }
    std::fs::create_dir_all(first)?;
    let env_root = match (&args.root_user, &args.root_password) {
        (Some(u), Some(p)) => {
            if u.len() < 3 || p.len() < 8 {
                anyhow::bail!("COFFER_ROOT_USER needs at least 3 characters and COFFER_ROOT_PASSWORD at least 8");
            }
            Some(Credential {
                access_key: u.clone(),
                secret_key: p.clone(),
            })
        }
        (None, None) => None,
        _ => anyhow::bail!("set both COFFER_ROOT_USER and COFFER_ROOT_PASSWORD, or neither"),
    };
    let (root, root_source) = Credential::load_root(env_root, first)?;
    check_drive_count(args)?;
    let roots: Vec<&std::path::Path> = args.drives.iter().map(PathBuf::as_path).collect();
    for r in &roots {
        std::fs::create_dir_all(r)?;
    }
    let (store, fresh) = Store::open_drives(&roots, args.parity, &args.region)
        .map_err(|e| anyhow::anyhow!("opening drives: {e}"))?;
    let store = Arc::new(store);
    if !fresh.is_empty() {
        tracing::info!(drives = ?fresh, "empty drives joined the set; healing them");
        let s = store.clone();
        tokio::task::spawn_blocking(move || match s.heal_drives(0, &fresh) {
            Ok(report) => tracing::info!(?report, "healed empty drives"),
            Err(e) => tracing::error!(error = %e, "healing empty drives failed"),
        });
    }
    let (handle, _, tls) = serve_store(args, store, root.clone(), None, cert).await?;
    Ok(Running {
        handle,
        root,
        root_source,
        tls,
        topology_changed: None,
    })
}

fn check_drive_count(args: &ServeArgs) -> anyhow::Result<()> {
    if args.drives.len() > crate::store::erasure::MAX_SET_SIZE {
        anyhow::bail!(
            "at most {} drives per server are supported",
            crate::store::erasure::MAX_SET_SIZE
        );
    }
    Ok(())
}

/// The S3 side of a server over an opened store: scanner, identities, listener.
async fn serve_store(
    args: &ServeArgs,
    store: Arc<Store>,
    root: Credential,
    cluster: Option<Arc<crate::cluster::node::Cluster>>,
    cert: Option<Arc<crate::http::tls::ReloadingCert>>,
) -> anyhow::Result<(ServerHandle, Arc<Context>, bool)> {
    let heal = Arc::new(crate::heal::HealStatus::default());
    crate::heal::spawn_missed_healer(store.clone(), heal.clone());
    crate::heal::spawn_scanner(
        store.clone(),
        heal.clone(),
        crate::heal::ScanPace {
            objects_per_second: args.heal_rate,
            interval: std::time::Duration::from_secs(args.heal_interval),
        },
    );
    let metrics = Arc::new(crate::metrics::Metrics::new());
    crate::lifecycle::spawn_worker(
        store.clone(),
        crate::lifecycle::Pace::for_day(args.lifecycle_day_seconds),
        metrics.clone(),
    );
    let iam = {
        let (root, store) = (root.clone(), store.clone());
        tokio::task::spawn_blocking(move || Iam::load_patiently(root, &store, METADATA_REFRESH))
            .await?
            .map_err(|e| anyhow::anyhow!("loading access keys: {e}"))?
    };
    let iam = Arc::new(iam);
    let ctx = Arc::new(Context {
        heal,
        store,
        iam,
        region: args.region.clone(),
        domains: args.domains.clone(),
        policies: Default::default(),
        metrics,
        cluster,
    });
    if ctx.cluster.is_some() {
        tokio::spawn(refresh_metadata(Arc::downgrade(&ctx)));
    }
    let tls = cert
        .map(crate::http::tls::server_config)
        .transpose()?
        .map(Arc::new);
    let listener = tokio::net::TcpListener::bind(args.address).await?;
    let handle = crate::http::serve_with_tls(listener, ctx.clone(), tls.clone()).await?;
    Ok((handle, ctx, tls.is_some()))
}

/// How often a cluster server re-reads access keys (notices from peers make changes take
/// effect at once; this catches up on a notice that was missed).
const METADATA_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

async fn refresh_metadata(ctx: std::sync::Weak<Context>) {
    loop {
        tokio::time::sleep(METADATA_REFRESH).await;
        let Some(ctx) = ctx.upgrade() else { return };
        apply_notice(&ctx, crate::cluster::peer::Notice::AccessKeys).await;
        ctx.policies.forget_all();
    }
}

/// Re-reads what another server changed.
pub async fn apply_notice(ctx: &Arc<Context>, notice: crate::cluster::peer::Notice) {
    use crate::cluster::peer::Notice;
    match notice {
        Notice::AccessKeys => {
            let (iam, store) = (ctx.iam.clone(), ctx.store.clone());
            match tokio::task::spawn_blocking(move || iam.reload(&store)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "re-reading access keys failed"),
                Err(e) => tracing::warn!(error = %e, "re-reading access keys failed"),
            }
        }
        Notice::BucketPolicy(bucket) => ctx.policies.forget(&bucket),
    }
}

/// A server of a cluster: `--topology FILE --node NAME`.
async fn start_clustered(
    args: &ServeArgs,
    cert: Option<Arc<crate::http::tls::ReloadingCert>>,
) -> anyhow::Result<Running> {
    let path = args.topology.as_ref().expect("checked by the caller");
    let node = args
        .node
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--topology needs --node NAME"))?;
    let topology = crate::cluster::Topology::load(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let me = topology.server(node).map_err(|e| anyhow::anyhow!("{e}"))?;
    let default_drives = args.drives == [PathBuf::from("./data")];
    if !default_drives && args.drives != me.spec.drives {
        anyhow::bail!(
            "the drives given ({}) are not node {node}'s drives in the topology ({})",
            args.drives
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            me.spec
                .drives
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let secret = match &args.cluster_secret {
        Some(s) if s.len() >= 16 => Arc::new(s.as_bytes().to_vec()),
        Some(_) => anyhow::bail!("COFFER_CLUSTER_SECRET needs at least 16 characters"),
        None => {
            anyhow::bail!("a cluster server needs COFFER_CLUSTER_SECRET (the same on every server)")
        }
    };
    let root = match (&args.root_user, &args.root_password) {
        (Some(u), Some(p)) if u.len() >= 3 && p.len() >= 8 => Credential {
            access_key: u.clone(),
            secret_key: p.clone(),
        },
        _ => anyhow::bail!(
            "a cluster server needs COFFER_ROOT_USER (3+ characters) and COFFER_ROOT_PASSWORD (8+), the same on every server"
        ),
    };
    let rpc_address = match args.rpc_address {
        Some(a) => a,
        None => {
            let port = me
                .spec
                .rpc
                .rsplit(':')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| anyhow::anyhow!("node {node}: rpc {} has no port", me.spec.rpc))?;
            SocketAddr::from(([0, 0, 0, 0], port))
        }
    };
    // With a CA, peer RPC serves the S3 listener's certificate (same files, same reloads).
    let peer_tls = match &args.tls_ca {
        Some(ca) => {
            let cert = cert
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--tls-ca needs --tls-cert and --tls-key"))?;
            Some(
                crate::cluster::peer::PeerTls::new(cert, ca)
                    .map_err(|e| anyhow::anyhow!("peer RPC TLS: {e}"))?,
            )
        }
        None => None,
    };
    let rpc_listener = tokio::net::TcpListener::bind(rpc_address)
        .await
        .map_err(|e| anyhow::anyhow!("peer RPC listener {rpc_address}: {e}"))?;
    tracing::info!(
        address = %rpc_address,
        tls = peer_tls.is_some(),
        "peer RPC listening"
    );
    let (store, cluster) = {
        let (topology, node, secret, region) = (
            topology.clone(),
            node.to_string(),
            secret.clone(),
            args.region.clone(),
        );
        let client_tls = peer_tls.as_ref().map(|t| t.client.clone());
        let lock_lease = std::time::Duration::from_millis(args.lock_lease_ms);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _enter = handle.enter();
            crate::cluster::node::open(&topology, &node, secret, client_tls, &region, lock_lease)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("opening drives: {e}"))?
    };
    let store = Arc::new(store);
    let cluster = Arc::new(cluster);
    let ctx_slot: Arc<std::sync::OnceLock<std::sync::Weak<Context>>> = Default::default();
    let notify: crate::cluster::peer::NotifyFn = {
        let slot = ctx_slot.clone();
        Box::new(move |notice| {
            let ctx = slot.get().and_then(std::sync::Weak::upgrade);
            Box::pin(async move {
                if let Some(ctx) = ctx {
                    apply_notice(&ctx, notice).await;
                }
            })
        })
    };
    let service = cluster
        .service(&store, secret, notify)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::cluster::peer::serve(rpc_listener, Arc::new(service), peer_tls.map(|t| t.server));
    if !cluster
        .wait_for_drives(&store, std::time::Duration::from_secs(60))
        .await
    {
        tracing::warn!("not enough peers answered within a minute; serving anyway (requests fail until they do)");
    }
    {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.collect_garbage() {
                tracing::warn!(error = %e, "removing replaced data files failed");
            }
        });
    }
    // New objects are spread over the pools by free space: measured now, then every 10 s.
    if store.pools().len() > 1 {
        let weak = Arc::downgrade(&store);
        tokio::spawn(async move {
            while let Some(store) = weak.upgrade() {
                let _ = tokio::task::spawn_blocking(move || store.refresh_free_space()).await;
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            }
        });
    }
    // Catch up: whatever this server's drives missed while it was away (or all of it, for
    // empty drives) is copied and rebuilt from the others, in the background.
    {
        let (store, local) = (store.clone(), cluster.local_slots.clone());
        tokio::task::spawn_blocking(move || {
            for set in 0..store.sets().len() {
                let drives: Vec<usize> = local
                    .iter()
                    .filter(|(s, _)| *s == set)
                    .map(|(_, d)| *d)
                    .collect();
                if drives.is_empty() {
                    continue;
                }
                match store.heal_drives(set, &drives) {
                    Ok(report) => tracing::info!(set, ?report, "caught up with the cluster"),
                    Err(e) => {
                        tracing::error!(set, error = %e, "catching up with the cluster failed")
                    }
                }
            }
        });
    }
    let (handle, ctx, tls) = serve_store(args, store, root.clone(), Some(cluster), cert).await?;
    let _ = ctx_slot.set(Arc::downgrade(&ctx));
    Ok(Running {
        handle,
        root,
        root_source: RootSource::Environment,
        tls,
        topology_changed: Some(watch_topology(path.clone(), topology)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_ca_without_a_certificate_or_a_cluster_is_refused_clearly() {
        // On the command line (or in COFFER_TLS_CA), clap names the missing flag.
        let err = ServeOnly::try_parse_from(["serve", "--tls-ca", "ca.pem"])
            .err()
            .expect("--tls-ca alone is refused");
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{err}"
        );
        assert!(err.to_string().contains("--tls-cert"), "{err}");

        // Arguments built in code get the same answer before anything starts.
        let mut args = ServeArgs {
            topology: Some("topology.json".into()),
            node: Some("node-0".into()),
            tls_ca: Some("ca.pem".into()),
            ..ServeArgs::default()
        };
        let err = check_tls_args(&args).unwrap_err().to_string();
        assert!(err.contains("needs --tls-cert and --tls-key"), "{err}");

        args.tls_cert = Some("tls.crt".into());
        let err = check_tls_args(&args).unwrap_err().to_string();
        assert!(err.contains("go together"), "{err}");

        args.tls_key = Some("tls.key".into());
        check_tls_args(&args).expect("a CA with a certificate and key, in a cluster");

        // A single server has no peers: a CA there is a mistake, not something to ignore.
        args.topology = None;
        let err = check_tls_args(&args).unwrap_err().to_string();
        assert!(err.contains("needs --topology"), "{err}");
    }

    #[test]
    fn a_peer_ca_with_a_certificate_and_key_parses() {
        let args = ServeOnly::try_parse_from([
            "serve",
            "--tls-cert",
            "tls.crt",
            "--tls-key",
            "tls.key",
            "--tls-ca",
            "ca.pem",
        ])
        .expect("a CA with a certificate and key parses")
        .args;
        assert_eq!(args.tls_ca, Some(PathBuf::from("ca.pem")));
    }
}
