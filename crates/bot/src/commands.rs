//! Slash command handlers.
//!
//! Every command runs inside an error boundary: whatever happens, the user
//! gets an answer (ephemeral on failure), and the outcome is counted.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use guildscope_discord::{CommandSpec, InteractionReply, OptionSpec, Rest, RestError};
use guildscope_model::{Interaction, InteractionKind, Snowflake};
use guildscope_store::{ChannelCount, StoreError, TimeWindow};
use guildscope_telemetry::reports::{ErrorReport, ErrorReporter};
use tracing::{Instrument, Span};

use crate::{
    GatewayControl,
    flags::{Flags, Subject},
    reader::StoreReader,
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
    /// Where unexpected failures are reported, when configured.
    pub reporter: Option<ErrorReporter>,
    /// Feature flags.
    pub flags: Arc<Flags>,
    /// Read access to the statistics, when the bot keeps them.
    pub reader: Option<Arc<StoreReader>>,
    /// The REST round trip `/ping` reports.
    pub round_trip: Arc<RoundTrip>,
}

/// How long a measured REST round trip is reported before it is measured
/// again.
const ROUND_TRIP_MAX_AGE: Duration = Duration::from_secs(10);

/// The REST round trip `/ping` reports, measured at most once per
/// [`ROUND_TRIP_MAX_AGE`] however often `/ping` is used, so pings never
/// spend the bot's rate limit (or wait on it).
#[derive(Debug, Default)]
pub struct RoundTrip {
    last: std::sync::Mutex<Option<(Instant, Duration)>>,
    measuring: tokio::sync::Mutex<()>,
}

impl RoundTrip {
    fn fresh(&self) -> Option<Duration> {
        let last = *self.last.lock().ok()?;
        last.filter(|(at, _)| at.elapsed() < ROUND_TRIP_MAX_AGE)
            .map(|(_, d)| d)
    }

    /// The last round trip if it is recent, else a new measurement (one at a
    /// time; pings arriving meanwhile share it).
    pub async fn measure(&self, rest: &Rest) -> Result<Duration, RestError> {
        if let Some(d) = self.fresh() {
            return Ok(d);
        }
        let _one = self.measuring.lock().await;
        if let Some(d) = self.fresh() {
            return Ok(d);
        }
        let d = rest.ping_rest().await?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), d));
        }
        Ok(d)
    }
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext").finish_non_exhaustive()
    }
}

/// The slash commands guildscope registers.
pub fn specs() -> Vec<CommandSpec> {
    vec![
        CommandSpec::new(
            "ping",
            "Gateway heartbeat latency and a measured REST round trip",
        ),
        CommandSpec::new("stats", "Community statistics").option(OptionSpec::subcommand(
            "server",
            "Members, messages in the last 24 hours and 7 days, and the busiest channels",
            Vec::new(),
        )),
    ]
}

/// Why a command could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Discord refused or did not answer.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The statistics database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs one interaction to completion inside its root span (created when
/// the interaction arrived, so the trace shows its wait on the bus), records
/// how it ended on that span, counts it, and reports failures.
pub async fn handle(
    ctx: CommandContext,
    shard: u32,
    interaction: Box<Interaction>,
    received_at: Instant,
    span: Span,
) {
    let result = dispatch(&ctx, shard, &interaction, &span)
        .instrument(span.clone())
        .await;
    let outcome = match &result {
        Ok(outcome) => *outcome,
        Err(_) => Outcome::Error,
    };
    span.record("command.outcome", outcome.as_str());
    match result {
        Ok(_) => {
            span.record("otel.status_code", "OK");
        }
        Err(error) => {
            let text = error.to_string();
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_description", text.as_str());
            span.record("error", text.as_str());
            ctx.stats.error("command");
            let trace_id = span_trace_id(&span);
            tracing::warn!(
                parent: &span,
                error = %text,
                command = %interaction.name,
                trace_id = trace_id.as_deref().unwrap_or(""),
                "command failed"
            );
            if let Some(reporter) = &ctx.reporter {
                reporter.report(&ErrorReport {
                    kind: "command",
                    error: &text,
                    command: Some(&interaction.name),
                    user_id: Some(interaction.user_id.get()),
                    guild_id: interaction.guild_id.map(|g| g.get()),
                    channel_id: interaction.channel_id.map(|c| c.get()),
                    message_id: None,
                    interaction_id: Some(interaction.id.get()),
                    shard: Some(shard),
                    trace_id: trace_id.as_deref(),
                });
            }
        }
    }
    ctx.stats
        .command_answered(&interaction.name, outcome, received_at.elapsed());
}

/// The trace id of `span`, to quote in error reports.
fn span_trace_id(span: &Span) -> Option<String> {
    span.in_scope(guildscope_telemetry::otel::current_trace_id)
}

/// Runs the handler for an interaction; `Err` is a failure on our side or
/// Discord's.
async fn dispatch(
    ctx: &CommandContext,
    shard: u32,
    interaction: &Interaction,
    root: &Span,
) -> Result<Outcome, CommandError> {
    match interaction.kind {
        InteractionKind::Autocomplete => {
            ctx.rest.autocomplete(interaction, Vec::new()).await?;
            Ok(Outcome::Ok)
        }
        InteractionKind::Command => run_command(ctx, shard, interaction, root).await,
    }
}

async fn run_command(
    ctx: &CommandContext,
    shard: u32,
    interaction: &Interaction,
    root: &Span,
) -> Result<Outcome, CommandError> {
    let subject = Subject {
        user: interaction.user_id,
        guild: interaction.guild_id,
        roles: &interaction.member_roles,
    };
    let (reply, outcome) = if let Some(flag) = ctx.flags.gate(&interaction.name, subject, root) {
        (
            InteractionReply::ephemeral(format!(
                "`/{}` is not available to you yet (feature `{flag}`).",
                interaction.name
            )),
            Outcome::UserError,
        )
    } else {
        match interaction.name.as_str() {
            "ping" => (ping(ctx, shard).await, Outcome::Ok),
            "stats" => stats(ctx, interaction).await?,
            other => (
                InteractionReply::ephemeral(format!(
                    "`/{other}` is not a command this bot knows. Try `/ping`."
                )),
                Outcome::UserError,
            ),
        }
    };
    ctx.rest.reply(interaction, reply).await?;
    Ok(outcome)
}

/// `/stats server`: members, messages over 24 hours and 7 days, and the
/// three busiest channels of the week.
async fn stats(
    ctx: &CommandContext,
    interaction: &Interaction,
) -> Result<(InteractionReply, Outcome), CommandError> {
    let (Some(guild), Some(reader)) = (interaction.guild_id, &ctx.reader) else {
        return Ok((
            InteractionReply::ephemeral("Statistics are kept for servers only."),
            Outcome::UserError,
        ));
    };
    let now = now_ms();
    let numbers = reader
        .query("stats.server", move |store| {
            let members = store.member_count(guild)?;
            let sum = |counts: Vec<ChannelCount>| counts.iter().map(|c| c.messages).sum::<u64>();
            let day = sum(store.channel_messages(guild, TimeWindow::last_days(now, 1))?);
            let week_window = TimeWindow::last_days(now, 7);
            let week = sum(store.channel_messages(guild, week_window)?);
            let top = store.top_channels(guild, week_window, 3)?;
            Ok((members, day, week, top))
        })
        .await?;
    let (members, day, week, top) = numbers;
    let mut text = format!(
        "**{members}** members · **{day}** messages in the last 24 hours · **{week}** in the last 7 days"
    );
    if !top.is_empty() {
        text.push_str("\nBusiest channels this week: ");
        let list: Vec<String> = top
            .iter()
            .map(|c| format!("<#{}> ({})", c.channel_id.get(), c.messages))
            .collect();
        text.push_str(&list.join(", "));
    }
    Ok((InteractionReply::public(text), Outcome::Ok))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn ping(ctx: &CommandContext, shard: u32) -> InteractionReply {
    let gateway = ctx
        .gateway
        .latency(shard)
        .map(|d| format!("{} ms", d.as_millis()))
        .unwrap_or_else(|| "not measured yet".to_owned());
    let rest = match ctx.round_trip.measure(&ctx.rest).await {
        Ok(d) => format!("{} ms", d.as_millis()),
        Err(_) => "unreachable".to_owned(),
    };
    InteractionReply {
        content: format!("Pong! Gateway heartbeat {gateway}, REST round trip {rest}."),
        ephemeral: false,
    }
}
