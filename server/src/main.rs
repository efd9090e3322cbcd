//! `coffer-server`: with no arguments, serves `./data` on 127.0.0.1:9000.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use coffer_server::config::{self, Cli, Command, ServeArgs};
use coffer_server::iam::RootSource;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Admin(args)) => runtime.block_on(admin(args)),
        None => runtime.block_on(serve(ServeArgs::default())),
    }
}

async fn admin(args: config::AdminArgs) -> anyhow::Result<()> {
    let (Some(user), Some(password)) = (args.root_user, args.root_password) else {
        anyhow::bail!(
            "set COFFER_ROOT_USER and COFFER_ROOT_PASSWORD (or --root-user / --root-password)"
        );
    };
    let client = coffer_server::admin::AdminClient {
        endpoint: args.endpoint.parse()?,
        access_key: user,
        secret_key: password,
        region: args.region,
        ca_cert: args
            .ca_cert
            .map(|path| {
                std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
            })
            .transpose()?,
    };
    use coffer_server::admin::output::{render, View};
    let (view, value) = match args.command {
        config::AdminCommand::Status => (
            View::Status,
            client.call(http::Method::GET, "status").await?,
        ),
        config::AdminCommand::Heal { action } if action == "start" => (
            View::Heal,
            client.call(http::Method::POST, "heal/start").await?,
        ),
        config::AdminCommand::Heal { .. } => (
            View::Heal,
            client.call(http::Method::GET, "heal/status").await?,
        ),
        config::AdminCommand::Key { action } => admin_key(&client, action).await?,
        config::AdminCommand::Bucket { action } => {
            use config::BucketCommand as B;
            use http::Method;
            match action {
                B::Create { name } => (
                    View::Bucket,
                    client.call(Method::PUT, &format!("buckets/{name}")).await?,
                ),
                B::Delete { name, force } => {
                    let path = format!("buckets/{name}{}", if force { "?force=true" } else { "" });
                    let answer = client.call(Method::DELETE, &path).await?;
                    // The JSON of a plain delete (204, no body) names the bucket for scripts.
                    let answer = if answer.is_null() {
                        serde_json::json!({ "deleted": name })
                    } else {
                        answer
                    };
                    (View::BucketDeleted { name }, answer)
                }
                B::List => (View::BucketList, client.call(Method::GET, "buckets").await?),
                B::Describe { name } => (
                    View::Bucket,
                    client.call(Method::GET, &format!("buckets/{name}")).await?,
                ),
            }
        }
    };
    print!("{}", render(&view, &value, args.json));
    Ok(())
}

async fn admin_key(
    client: &coffer_server::admin::AdminClient,
    action: config::KeyCommand,
) -> anyhow::Result<(coffer_server::admin::output::View, serde_json::Value)> {
    use coffer_server::admin::output::View;
    use config::KeyCommand as K;
    use http::Method;
    let (view, method, path) = match action {
        K::Create {
            buckets,
            expires,
            access_key,
            description,
        } => {
            let body = coffer_server::admin::CreateKey {
                buckets: buckets
                    .into_iter()
                    .map(|(name, mode)| coffer_server::admin::BucketGrant { name, mode })
                    .collect(),
                expires_at: expires,
                access_key,
                secret_key: None,
                description,
            };
            let body = serde_json::to_value(&body)?;
            let answer = client
                .call_with_body(Method::POST, "keys", Some(&body))
                .await?;
            return Ok((View::Key, answer));
        }
        K::List => (View::KeyList, Method::GET, "keys".to_string()),
        K::Describe { id } => (View::Key, Method::GET, format!("keys/{id}")),
        K::Delete { id } => (
            View::KeyDeleted { id: id.clone() },
            Method::DELETE,
            format!("keys/{id}"),
        ),
        K::Disable { id } => (View::Key, Method::POST, format!("keys/{id}/disable")),
        K::Enable { id } => (View::Key, Method::POST, format!("keys/{id}/enable")),
        K::Rotate { id } => (View::Key, Method::POST, format!("keys/{id}/rotate")),
    };
    Ok((view, client.call(method, &path).await?))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut running = config::start(&args).await?;
    let addr = running.handle.local_addr;
    let scheme = if running.tls { "https" } else { "http" };
    {
        let mut out = std::io::stdout().lock();
        match (&args.topology, &args.node) {
            (Some(topology), Some(node)) => writeln!(
                out,
                "Coffer S3 server on {scheme}://{addr} (node {node} of the cluster in {}, region {})",
                topology.display(),
                args.region
            )?,
            _ => writeln!(
                out,
                "Coffer S3 server on {scheme}://{addr} ({} {}, region {})",
                if args.drives.len() == 1 {
                    "drive"
                } else {
                    "drives"
                },
                args.drives
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                args.region
            )?,
        }
        writeln!(out, "endpoint={scheme}://{addr}")?;
        match running.root_source {
            RootSource::Generated => {
                writeln!(
                    out,
                    "Generated a root credential (stored in the drive; shown only now):"
                )?;
                writeln!(out, "COFFER_ROOT_USER={}", running.root.access_key)?;
                writeln!(out, "COFFER_ROOT_PASSWORD={}", running.root.secret_key)?;
            }
            RootSource::Stored => writeln!(
                out,
                "COFFER_ROOT_USER={} (secret stored in the drive)",
                running.root.access_key
            )?,
            RootSource::Environment => {
                writeln!(out, "COFFER_ROOT_USER={}", running.root.access_key)?
            }
        }
        out.flush()?;
    }
    tracing::info!(%addr, scheme, "serving");
    let topology_changed = async {
        match running.topology_changed.take() {
            Some(rx) => rx.await.ok(),
            None => std::future::pending().await,
        }
    };
    let restart = tokio::select! {
        _ = shutdown_signal() => None,
        Some(why) = topology_changed => Some(why),
    };
    match &restart {
        None => tracing::info!("shutting down: finishing in-flight requests"),
        Some(why) => tracing::warn!(
            change = %why,
            "the cluster topology changed: stopping so this server restarts with it"
        ),
    }
    running.handle.shutdown(Duration::from_secs(30)).await;
    if restart.is_some() {
        // EX_TEMPFAIL: not a failure of the server; every supervisor (Kubernetes, systemd's
        // Restart=on-failure) starts it again, and it then reads the new topology.
        std::process::exit(TOPOLOGY_CHANGED_EXIT);
    }
    Ok(())
}

/// The exit status of a server that stopped to pick up a new topology.
const TOPOLOGY_CHANGED_EXIT: i32 = 75;

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on Unix");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
