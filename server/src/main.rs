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
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => ServeArgs::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let running = config::start(&args).await?;
    let addr = running.handle.local_addr;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Coffer S3 server on http://{addr} (drive {}, region {})",
            args.drives[0].display(),
            args.region
        )?;
        writeln!(out, "endpoint=http://{addr}")?;
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
    tracing::info!(%addr, "serving");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.handle.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

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
