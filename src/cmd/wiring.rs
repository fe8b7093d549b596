//! Starting and stopping the bot: gateway, command registration and the
//! runtime, shared by `run` and `demo`.

use std::sync::Arc;

use anyhow::Context;
use guildscope_bot::{Bot, BotConfig, BotStats, LiveFlags, RestMetrics, commands};
use guildscope_discord::{
    CommandScope, CommandSpec, DiscordConfig, Gateway, GatewayHandle, GatewayStats, Rest,
};
use guildscope_model::{Secret, Snowflake};
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
    /// The feature flags in force, replaced when the configuration is
    /// reloaded.
    pub flags: Arc<LiveFlags>,
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

/// Connects the shards, registers the slash commands globally and starts
/// handling, reporting to `telemetry` when given.
pub async fn start(
    discord: &DiscordConfig,
    bot: BotConfig,
    telemetry: Option<&Telemetry>,
) -> anyhow::Result<RunningBot> {
    start_in(discord, bot, telemetry, &[CommandScope::Global]).await
}

/// Connects the shards, registers the slash commands in each of `scopes`
/// (where they differ from what is registered) and starts handling,
/// reporting to `telemetry` when given.
pub async fn start_in(
    discord: &DiscordConfig,
    bot: BotConfig,
    telemetry: Option<&Telemetry>,
    scopes: &[CommandScope],
) -> anyhow::Result<RunningBot> {
    let mut rest = Rest::new(discord);
    if let Some(telemetry) = telemetry {
        rest = rest.with_observer(Arc::new(RestMetrics(Arc::clone(&telemetry.metrics))));
    }
    for &scope in scopes {
        register(&rest, scope).await?;
    }
    let Gateway { handle, events } = Gateway::start(discord, &rest)
        .await
        .context("while connecting to the gateway")?;
    let mut bot = Bot::new(bot, rest, Arc::new(handle.clone()));
    if let Some(telemetry) = telemetry {
        bot = bot.with_telemetry(Arc::clone(&telemetry.metrics), telemetry.reporter.clone());
        telemetry.watch_gateway(handle.clone());
    }
    let bot_stats = bot.stats();
    let flags = bot.flags();
    let gateway_stats = Arc::clone(handle.stats());
    let runtime = tokio::spawn(bot.run(events));
    Ok(RunningBot {
        gateway: handle,
        gateway_stats,
        bot_stats,
        flags,
        runtime,
    })
}

/// Makes the slash commands registered in `scope` guildscope's, with one
/// bulk overwrite, unless they already are: an overwrite on every start
/// would count against Discord's daily command-creation limit, and a global
/// one takes a while to reach every client.
async fn register(rest: &Rest, scope: CommandScope) -> anyhow::Result<()> {
    let wanted = commands::specs();
    let scope_name = match scope {
        CommandScope::Global => "global".to_owned(),
        CommandScope::Guild(guild) => format!("guild {}", guild.get()),
    };
    match rest.commands(scope).await {
        Ok(registered) if same_commands(&registered, &wanted) => {
            tracing::info!(
                scope = %scope_name,
                count = wanted.len(),
                "slash commands up to date"
            );
            return Ok(());
        }
        Ok(_) => {}
        // Reading is an optimisation: when it fails, register anyway.
        Err(error) => tracing::debug!(
            scope = %scope_name,
            %error,
            "could not read the registered slash commands"
        ),
    }
    let count = wanted.len();
    rest.set_commands(scope, wanted)
        .await
        .with_context(|| format!("while registering slash commands ({scope_name})"))?;
    tracing::info!(scope = %scope_name, count, "registered slash commands");
    Ok(())
}

/// Whether `registered` (as read back from Discord) are `wanted`, in any
/// order, ignoring what Discord adds (ids, versions, defaults) and what it
/// drops.
fn same_commands(registered: &[CommandSpec], wanted: &[CommandSpec]) -> bool {
    let by_name = |specs: &mut Vec<CommandSpec>| specs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut registered = registered.to_vec();
    let mut wanted: Vec<CommandSpec> = wanted.iter().map(CommandSpec::as_registered).collect();
    by_name(&mut registered);
    by_name(&mut wanted);
    registered == wanted
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
