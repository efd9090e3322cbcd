//! `coffer-e2e`: the command-line entry of the end-to-end harness: the system
//! benchmark against MinIO (`bench`, with `tools` to build its peer tools ahead
//! of time), a local cluster (`local-cluster`), the Kubernetes harness (`k8s`)
//! and the container images (`image build`); the client compatibility tests run
//! under `cargo test` instead (see `tests/compat.rs`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "coffer-e2e", about = "Coffer end-to-end harness")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the same warp workloads against coffer-server and MinIO on
    /// loopback, print the comparison and write e2e/BENCHMARKS.md.
    Bench {
        /// Short runs (5 s per workload, fewer objects) to check the setup.
        #[arg(long)]
        quick: bool,
        /// Folder for the servers' drives (default: the system temp folder).
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Only print the table; leave e2e/BENCHMARKS.md alone.
        #[arg(long)]
        no_write: bool,
        /// Drive folders per server, the same for both (4: erasure coding 2+2 on each).
        #[arg(long, default_value_t = 1)]
        drives: usize,
        /// Server processes per side (more than 1: a Coffer cluster against a distributed
        /// MinIO, parity 2 on both).
        #[arg(long, default_value_t = 1)]
        servers: usize,
        /// Objects in the LIST workload's bucket (default: 2000–20 000 by mode).
        #[arg(long)]
        list_objects: Option<u32>,
        /// Run only the workloads whose label contains this text (e.g. `LIST`, `64 MiB`).
        #[arg(long)]
        only: Option<String>,
    },
    /// Build (or find in the cache) warp and MinIO and print their paths.
    Tools,
    /// A Kubernetes cluster on this machine (needs root): `k8s up` runs one until Ctrl-C,
    /// `k8s build` only builds (or finds cached) its Go binaries.
    K8s {
        #[command(subcommand)]
        command: K8sCmd,
    },
    /// Container images of coffer-server and coffer-operator (`image build`).
    Image {
        #[command(subcommand)]
        command: ImageCmd,
    },
    /// Start a cluster of coffer-server processes on loopback and run until interrupted.
    LocalCluster {
        /// Number of servers.
        #[arg(long, default_value_t = 4)]
        servers: usize,
        /// Drive folders per server.
        #[arg(long, default_value_t = 1)]
        drives: usize,
        /// Folder for the topology, drives and logs (kept; a second run reuses its drives
        /// only if the topology is the same, so use a fresh folder per cluster).
        #[arg(long)]
        dir: PathBuf,
        /// S3 and peer RPC over TLS: a CA and a server certificate are generated into
        /// DIR/tls (ca.crt, tls.crt, tls.key); clients trust DIR/tls/ca.crt.
        #[arg(long)]
        tls: bool,
    },
}

#[derive(Subcommand)]
enum K8sCmd {
    /// Start the control plane and the process kubelet, print the kubeconfig path, run
    /// until Ctrl-C, then remove everything.
    Up {
        /// Nodes the kubelet registers.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Keep the run's folder (logs, volumes) after exit.
        #[arg(long)]
        keep: bool,
        /// Also apply the CRDs and start coffer-operator with the kubeconfig.
        #[arg(long)]
        operator: bool,
    },
    /// Build (or find in the cache) etcd and the Kubernetes commands; print their folder.
    Build,
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Assemble both images from the workspace's release binaries (build them first with
    /// `cargo build --release -p coffer-server -p coffer-operator`) as OCI archives, and print
    /// each one's reference, manifest digest and archive path. No container engine or base
    /// image is needed; push with e.g. `skopeo copy oci-archive:FILE docker://REGISTRY/…`.
    Build {
        /// Folder for `coffer-server.oci.tar` and `coffer-operator.oci.tar`.
        #[arg(long, default_value = "target/images")]
        out: PathBuf,
        /// Repository the images are tagged under (`REPOSITORY/coffer-server:VERSION`).
        #[arg(long, default_value = coffer_operator::images::REPOSITORY)]
        repository: String,
    },
}

fn k8s(command: K8sCmd) -> Result<()> {
    match command {
        K8sCmd::Build => {
            println!(
                "{}",
                coffer_e2e::go_tools::KUBERNETES.ensure_built()?.display()
            );
            println!("{}", coffer_e2e::go_tools::ETCD.ensure_built()?.display());
            Ok(())
        }
        K8sCmd::Up {
            nodes,
            keep,
            operator,
        } => {
            coffer_e2e::bench::fresh_coffer_binary()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let mut cluster =
                    coffer_e2e::k8s::Cluster::start(coffer_e2e::k8s::Options { nodes, keep })
                        .await?;
                if operator {
                    cluster.kubectl(&["apply", "-f", "crds/"])?;
                    let binary = coffer_e2e::server::workspace_binary("coffer-operator")?;
                    let kubeconfig = cluster.kubeconfig.display().to_string();
                    cluster.spawn_in_cluster(
                        "coffer-operator",
                        &binary,
                        &["run"],
                        &[("KUBECONFIG", &kubeconfig)],
                    )?;
                }
                println!("KUBECONFIG={}", cluster.kubeconfig.display());
                println!("kubectl={}", cluster.kubectl.display());
                println!(
                    "logs: {}/logs (control plane), {}/pods (containers); images {} (also {}) and {} (from {}/images)",
                    cluster.dir.display(),
                    cluster.dir.display(),
                    coffer_operator::images::default_server_image(),
                    coffer_e2e::k8s::IMAGE_NEXT,
                    coffer_operator::images::operator_image_in(coffer_operator::images::REPOSITORY),
                    cluster.dir.display(),
                );
                println!("Ctrl-C stops the cluster and removes everything it made");
                tokio::signal::ctrl_c().await?;
                drop(cluster);
                Ok(())
            })
        }
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Bench {
            quick,
            scratch,
            no_write,
            drives,
            servers,
            list_objects,
            only,
        } => coffer_e2e::bench::run(&coffer_e2e::bench::BenchOptions {
            drives,
            servers,
            list_objects,
            only,
            quick,
            scratch: scratch.unwrap_or_else(std::env::temp_dir),
            write_report: !no_write,
        }),
        Cmd::LocalCluster {
            servers,
            drives,
            dir,
            tls,
        } => {
            let binary = coffer_e2e::bench::fresh_coffer_binary()?;
            let shape = coffer_e2e::cluster::PoolShape {
                servers,
                drives,
                parity: None,
            };
            let mut cluster =
                coffer_e2e::cluster::LocalCluster::start_pools_with(&binary, &[shape], &dir, tls)?;
            for e in cluster.endpoints() {
                println!("endpoint={e}");
            }
            if tls {
                println!("ca={}", dir.join("tls").join("ca.crt").display());
            }
            println!("COFFER_ROOT_USER={}", cluster.creds.access_key);
            println!("COFFER_ROOT_PASSWORD={}", cluster.creds.secret_key);
            println!(
                "topology={} logs={}/node-*.log (Ctrl-C stops every server)",
                dir.join("topology.json").display(),
                dir.display()
            );
            cluster.wait()
        }
        Cmd::K8s { command } => k8s(command),
        Cmd::Image {
            command: ImageCmd::Build { out, repository },
        } => {
            for image in coffer_e2e::image::build_all(&out, &repository)? {
                println!(
                    "{} {} {}",
                    image.reference,
                    image.digest,
                    image.archive.display()
                );
            }
            Ok(())
        }
        Cmd::Tools => {
            for tool in [&coffer_e2e::go_tools::WARP, &coffer_e2e::go_tools::MINIO] {
                println!("{}", tool.ensure_built()?.display());
            }
            Ok(())
        }
    }
}
