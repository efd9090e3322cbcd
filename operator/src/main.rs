//! `coffer-operator`: runs the controllers (`run`, the default) or writes the CRDs
//! (`crdgen`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use coffer_operator::admin::AdminAccess;
use coffer_operator::leader::LeaderElection;
use coffer_operator::metrics::Metrics;
use kube::runtime::events::Reporter;

#[derive(Parser)]
#[command(
    name = "coffer-operator",
    version,
    about = "Kubernetes operator for Coffer object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (the default).
    Run,
    /// Write the CRDs (objectstore.yaml, bucket.yaml, accesskey.yaml) into folders (by
    /// default `crds/` and the chart's `charts/coffer/crds/`).
    Crdgen {
        #[arg(long, default_values = ["crds", "charts/coffer/crds"])]
        out: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespaces to watch, comma-separated; empty: every namespace.
    #[arg(
        long,
        env = "COFFER_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "COFFER_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Hold a Lease before reconciling, so several replicas can run.
    #[arg(long, env = "COFFER_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: the operator's own, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Send every admin API call to this URL instead of the stores' Services (e.g. through
    /// `kubectl port-forward` when running outside the cluster).
    #[arg(long, env = "COFFER_ADMIN_ENDPOINT")]
    admin_endpoint: Option<String>,
    /// The image of an ObjectStore that names none.
    #[arg(long, env = "COFFER_SERVER_IMAGE", default_value_t = coffer_operator::images::default_server_image())]
    server_image: String,
    /// Seconds an admin API call may take.
    #[arg(long, default_value_t = 10)]
    admin_timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crdgen { out }) => out.iter().try_for_each(|dir| crdgen(dir)),
        Some(Command::Run) | None => run(cli.run).await,
    }
}

fn crdgen(out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for (file, crd) in coffer_operator::crd::all() {
        let path = out.join(file);
        std::fs::write(&path, coffer_operator::crd::to_yaml(&crd))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tokio::spawn(coffer_operator::http::serve(
        listener,
        metrics.clone(),
        ready.clone(),
    ));

    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster or kubeconfig)")?;
    let version = client
        .apiserver_version()
        .await
        .context("the API server does not answer")?;
    tracing::info!(kubernetes = %version.git_version, namespaces = ?args.namespaces, "starting");

    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("coffer-operator-{}", std::process::id()));
    let election = args.leader_elect.then(|| {
        LeaderElection::with_defaults(
            kube::Api::namespaced(client.clone(), &args.lease_namespace),
            "coffer-operator",
            &identity,
        )
    });
    if let Some(election) = &election {
        tracing::info!(%identity, "waiting for the leader Lease");
        election.acquire().await;
        tracing::info!(%identity, "holding the leader Lease");
    }
    ready.store(true, Ordering::SeqCst);

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let admin = AdminAccess {
        endpoint_override: args.admin_endpoint,
        timeout: Duration::from_secs(args.admin_timeout),
    };
    let reporter = Reporter {
        controller: "coffer-operator".into(),
        instance: Some(identity),
    };
    let namespaces: Vec<String> = args
        .namespaces
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    let controllers = coffer_operator::controller::run(
        client,
        namespaces,
        admin,
        metrics,
        reporter,
        args.server_image,
        shutdown.clone(),
    );
    match &election {
        Some(election) => {
            tokio::select! {
                _ = controllers => {}
                _ = election.keep() => anyhow::bail!("lost the leader Lease; exiting so a single replica reconciles"),
            }
        }
        None => controllers.await,
    }
    Ok(())
}
