//! `guildscope simulate`: the local Discord alone.

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use guildscope_simulator::{SimConfig, Simulator};

use crate::{cli::SimulateArgs, cmd::shutdown_signal, config::LogFormat, logging};

/// Starts the simulator, prints its URLs and token as one JSON line, and runs
/// until Ctrl-C or SIGTERM.
pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    logging::init("info", LogFormat::Auto);
    let config = SimConfig {
        listen: args.listen,
        seed: args.seed,
        rate: args.rate,
        guilds: args.guilds,
        members: args.members,
        shards: args.shards,
        ..SimConfig::default()
    };
    let simulator = Simulator::start(config)
        .await
        .context("while starting the simulator")?;
    let line =
        serde_json::to_string(simulator.info()).context("while printing the simulator's URLs")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("while writing to stdout")?;
    drop(stdout);
    shutdown_signal().await;
    simulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
