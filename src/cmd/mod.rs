//! One file per subcommand, each a thin function over the crates, plus the
//! wiring they share.

mod backfill;
mod bench;
mod check_config;
mod demo;
mod forget_user;
mod marker;
mod migrate;
mod reload;
mod run;
mod simulate;
mod telemetry;
mod wiring;

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{BenchCommand, Cli, Command};

/// Runs the chosen subcommand on a multi-threaded tokio runtime.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("guildscope")
        .build()
        .context("while starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Simulate(args) => simulate::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            // The store's clients block; keep them off the async workers.
            Command::Migrate(args) => tokio::task::spawn_blocking(move || migrate::run(args))
                .await
                .context("while migrating")?,
            Command::Backfill(args) => backfill::run(args).await,
            // The store's clients block; keep them off the async workers.
            Command::ForgetUser(args) => {
                tokio::task::spawn_blocking(move || forget_user::run(args))
                    .await
                    .context("while forgetting a user")?
            }
            Command::Marker(args) => marker::run(args).await,
            Command::CheckConfig(args) => check_config::run(args).await,
            Command::Bench(BenchCommand::Gateway(args)) => bench::gateway(args).await,
            Command::Bench(BenchCommand::Read(args)) => bench::read::run(args).await,
            Command::Bench(BenchCommand::Ingest(args)) => bench::ingest::run(args).await,
            Command::Bench(BenchCommand::Sync(args)) => bench::sync::run(args).await,
            Command::Bench(BenchCommand::Telemetry(args)) => bench::telemetry::run(args).await,
            Command::Bench(BenchCommand::Commands(args)) => bench::commands::run(args).await,
        }
    })
}

/// Removes an SQLite database file with its WAL and shared-memory files, so a
/// run starts from an empty database; a file that is not there is fine.
pub fn remove_sqlite_files(path: &str) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        match std::fs::remove_file(format!("{path}{suffix}")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("while removing {path}{suffix}")),
        }
    }
    Ok(())
}

/// Polls `done` every 10 ms until it holds or `limit` passes.
pub async fn wait_until(
    limit: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {limit:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
