//! Starting and stopping the bot: gateway, command registration and the
//! runtime, shared by `run` and `demo`.

use std::sync::Arc;

use anyhow::Context;
use guildscope_bot::{Bot, BotConfig, BotStats, RestMetrics, commands};
use guildscope_discord::{CommandScope, DiscordConfig, Gateway, GatewayHandle, GatewayStats, Rest};
use guildscope_model::Secret;
use guildscope_simulator::Simulator;
use guildscope_store::StoreError;
use tokio::task::JoinHandle;

use crate::cmd::telemetry::Telemetry;

/// A bot that is connected and handling events.
pub struct RunningBot {
    /// Controls the shards.
    pub gateway: GatewayHandle,
    /// What the shards saw.
    pub gateway_stats: Arc<GatewayStats>,
    /// What the handlers did.
    pub bot_stats: Arc<BotStats>,
    runtime: JoinHandle<Result<(), StoreError>>,
}

/// A Discord configuration pointing at a running simulator.
pub fn discord_for(simulator: &Simulator) -> DiscordConfig {
    let info = simulator.info();
    DiscordConfig::local(
        Secret::new(info.token.clone()),
        info.rest_url.clone(),
        info.gateway_url.clone(),
    )
}

/// Connects the shards, registers the slash commands and starts handling,
/// reporting to `telemetry` when given.
pub async fn start(
    discord: &DiscordConfig,
    bot: BotConfig,
    telemetry: Option<&Telemetry>,
) -> anyhow::Result<RunningBot> {
    let mut rest = Rest::new(discord);
    if let Some(telemetry) = telemetry {
        rest = rest.with_observer(Arc::new(RestMetrics(Arc::clone(&telemetry.metrics))));
    }
    rest.set_commands(CommandScope::Global, commands::specs())
        .await
        .context("while registering slash commands")?;
    let Gateway { handle, events } = Gateway::start(discord, &rest)
        .await
        .context("while connecting to the gateway")?;
    let mut bot = Bot::new(bot, rest, Arc::new(handle.clone()));
    if let Some(telemetry) = telemetry {
        bot = bot.with_telemetry(Arc::clone(&telemetry.metrics), telemetry.reporter.clone());
        telemetry.watch_gateway(handle.clone());
    }
    let bot_stats = bot.stats();
    let gateway_stats = Arc::clone(handle.stats());
    let runtime = tokio::spawn(bot.run(events));
    Ok(RunningBot {
        gateway: handle,
        gateway_stats,
        bot_stats,
        runtime,
    })
}

impl RunningBot {
    /// Closes the shards, lets the handlers drain the bus, and commits every
    /// pending write.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.gateway.shutdown().await;
        self.runtime
            .await
            .context("while waiting for the handlers")?
            .context("while committing the last statistics")?;
        Ok(())
    }
}
