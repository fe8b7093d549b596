//! `guildscope run`: the bot against Discord or any Discord-compatible server.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use guildscope_bot::{BotConfig, CollectorConfig, WriterConfig};
use guildscope_discord::{ContentKey, DiscordConfig};

use crate::{
    cli::RunArgs,
    cmd::{
        shutdown_signal,
        telemetry::{Telemetry, version},
        wiring,
    },
    config::{Config, ConfigError, Overrides},
};

/// Runs until Ctrl-C or SIGTERM, or until the gateway refuses us for good.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        api_base: args.api_base,
        gateway_base: args.gateway_base,
        database: args.config.database,
    };
    let config = Config::load(args.config.config.as_deref(), &overrides)?;
    // Secrets are checked before anything starts listening.
    let discord = discord_config(&config)?;
    let telemetry = Telemetry::start(&config).await?;
    let bot = bot_config(&config);
    let running = match wiring::start(&discord, bot, Some(&telemetry)).await {
        Ok(running) => running,
        Err(error) => {
            telemetry.shutdown().await;
            return Err(error);
        }
    };
    tracing::info!(
        shards = running.gateway.shard_count(),
        metrics = ?telemetry.prometheus_addr().map(|a| format!("http://{a}/metrics")),
        version = %version(),
        "guildscope is running"
    );

    let gateway = running.gateway.clone();
    let outcome = tokio::select! {
        result = gateway.wait() => result.context("the gateway stopped the bot"),
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    let stopped = running.stop().await;
    telemetry.shutdown().await;
    stopped?;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Where and how to reach Discord, from the validated configuration and the
/// secrets it points at.
pub fn discord_config(config: &Config) -> Result<DiscordConfig, ConfigError> {
    let mut discord = DiscordConfig {
        api_base: config.api_base.clone(),
        gateway_base: config.gateway_base.clone(),
        shards: config.shards,
        large_threshold: config.large_threshold,
        bus_capacity: config.bus_capacity,
        traced_events_per_second: config.telemetry.traces.events_per_second,
        ..DiscordConfig::new(config.token()?)
    };
    if let Some(key) = config.keyed_hash_key()? {
        // Discord sends content only with this privileged intent; it is
        // hashed at decode time and dropped.
        discord.intents.message_content = true;
        discord.content_key = Some(ContentKey::new(&key));
    }
    Ok(discord)
}

/// The bot's behaviour from the validated configuration.
pub fn bot_config(config: &Config) -> BotConfig {
    BotConfig {
        collector: CollectorConfig {
            staff_roles: config.staff_roles.clone(),
            include_bots: config.include_bots,
            ignored_channels: config.ignored_channels.clone(),
        },
        writer: Some(WriterConfig {
            batch_size: config.batch_size,
            batch_interval: Duration::from_millis(config.batch_interval_ms),
            ..WriterConfig::new(config.storage.clone())
        }),
        flags: config.flags.clone(),
        ..BotConfig::default()
    }
}
