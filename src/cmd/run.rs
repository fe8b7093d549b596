//! `guildscope run`: the bot against Discord or any Discord-compatible server,
//! with its feature flags reloaded while it runs.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use guildscope_bot::{BotConfig, CollectorConfig, WriterConfig, commands};
use guildscope_discord::{CommandScope, ContentKey, DiscordConfig, PrefixCommands};

use crate::{
    cli::RunArgs,
    cmd::{
        reload::{self, Hangup, Reloader},
        shutdown_signal,
        telemetry::{Telemetry, version},
        wiring,
    },
    config::{Config, ConfigError, ConfigFile, Overrides},
};

/// Runs until Ctrl-C or SIGTERM, or until the gateway refuses us for good;
/// reloads the feature flags on SIGHUP and when the config file changes.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // From here on SIGHUP asks for a reload instead of ending the process.
    let hangup = Hangup::install();
    let overrides = Overrides {
        api_base: args.api_base,
        gateway_base: args.gateway_base,
        database: args.config.database,
    };
    // The file is read once: the configuration is built from this text, and
    // a reload compares the file with it.
    let file = args
        .config
        .config
        .as_deref()
        .map(ConfigFile::read)
        .transpose()?;
    let config = match &file {
        Some(file) => file.load(&overrides)?,
        None => Config::load(None, &overrides)?,
    };
    // Secrets are checked before anything starts listening.
    let discord = discord_config(&config)?;
    let telemetry = Telemetry::start(&config).await?;
    let bot = bot_config(&config);
    let scopes = command_scopes(&config);
    let running = match wiring::start_in(&discord, bot, Some(&telemetry), &scopes).await {
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
    let reloader = Reloader::new(
        file,
        overrides,
        &config,
        Arc::clone(&running.flags),
        Arc::clone(&running.bot_stats),
    );
    let reload = tokio::spawn(reload::watch(reloader, hangup));

    let gateway = running.gateway.clone();
    let outcome = tokio::select! {
        result = gateway.wait() => result.context("the gateway stopped the bot"),
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    reload.abort();
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
    if let Some(prefix) = &config.prefix {
        // Message commands need the same privileged intent: the content is
        // read for a command at decode time and dropped (and hashed too when
        // a key is configured).
        discord.intents.message_content = true;
        discord.prefix_commands = Some(PrefixCommands {
            prefix: prefix.clone(),
            commands: commands::catalog::names(),
        });
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
        flags: config.flag_set(),
        roles: config.roles.clone(),
        prefix: config.prefix.clone(),
        defer_after: config.defer_after,
        ..BotConfig::default()
    }
}

/// Where the slash commands are registered: in each configured guild, else
/// globally.
pub fn command_scopes(config: &Config) -> Vec<CommandScope> {
    if config.command_guilds.is_empty() {
        vec![CommandScope::Global]
    } else {
        config
            .command_guilds
            .iter()
            .map(|&guild| CommandScope::Guild(guild))
            .collect()
    }
}
