//! Slash command handlers.
//!
//! Every command runs inside an error boundary: whatever happens, the user
//! gets an answer (ephemeral on failure), and the outcome is counted.

use std::{sync::Arc, time::Instant};

use guildscope_discord::{InteractionReply, Rest};
use guildscope_model::{Interaction, InteractionKind};

use crate::{
    GatewayControl,
    stats::{BotStats, Outcome},
};

/// What a command handler may use.
#[derive(Clone)]
pub struct CommandContext {
    /// Discord's REST API.
    pub rest: Rest,
    /// Counters.
    pub stats: Arc<BotStats>,
    /// The gateway, for heartbeat latency.
    pub gateway: Arc<dyn GatewayControl>,
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext").finish_non_exhaustive()
    }
}

/// The commands guildscope registers, by name.
pub const COMMANDS: &[(&str, &str)] = &[(
    "ping",
    "Gateway heartbeat latency and a measured REST round trip",
)];

/// Runs one interaction to completion and counts how it ended.
pub async fn handle(
    ctx: CommandContext,
    shard: u32,
    interaction: Box<Interaction>,
    received_at: Instant,
) {
    let outcome = match interaction.kind {
        InteractionKind::Autocomplete => {
            match ctx.rest.autocomplete(&interaction, Vec::new()).await {
                Ok(()) => Outcome::Ok,
                Err(error) => {
                    tracing::warn!(%error, command = %interaction.name, "autocomplete reply failed");
                    Outcome::Error
                }
            }
        }
        InteractionKind::Command => run_command(&ctx, shard, &interaction).await,
    };
    if outcome == Outcome::Error {
        ctx.stats.error("command");
    }
    ctx.stats.command_answered(outcome, received_at.elapsed());
}

async fn run_command(ctx: &CommandContext, shard: u32, interaction: &Interaction) -> Outcome {
    let (reply, outcome) = match interaction.name.as_str() {
        "ping" => (ping(ctx, shard).await, Outcome::Ok),
        other => (
            InteractionReply {
                content: format!("`/{other}` is not a command this bot knows. Try `/ping`."),
                ephemeral: true,
            },
            Outcome::UserError,
        ),
    };
    match ctx.rest.reply(interaction, reply).await {
        Ok(()) => outcome,
        Err(error) => {
            tracing::warn!(%error, command = %interaction.name, "command reply failed");
            Outcome::Error
        }
    }
}

async fn ping(ctx: &CommandContext, shard: u32) -> InteractionReply {
    let gateway = ctx
        .gateway
        .latency(shard)
        .map(|d| format!("{} ms", d.as_millis()))
        .unwrap_or_else(|| "not measured yet".to_owned());
    let rest = match ctx.rest.ping_rest().await {
        Ok(d) => format!("{} ms", d.as_millis()),
        Err(_) => "unreachable".to_owned(),
    };
    InteractionReply {
        content: format!("Pong! Gateway heartbeat {gateway}, REST round trip {rest}."),
        ephemeral: false,
    }
}
