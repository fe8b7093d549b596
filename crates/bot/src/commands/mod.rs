//! Commands: slash commands and the same commands typed as `!`-prefix
//! messages, run inside one error boundary.
//!
//! An [`Invocation`] is a command however it arrived; handlers read its
//! options and return an [`Answer`], and never talk to the user themselves
//! except through [`Invocation::in_time`] (which acknowledges a slash command
//! when the work may outlast Discord's 3 s). [`handle`] runs a handler,
//! sends its answer, records the outcome on the command's root span, counts
//! it, and turns any failure into a short private message carrying an error
//! id (the trace id) that the user can quote and the operator can find.
//!
//! - [`catalog`]: what each command is called and takes, with its help text.
//! - `help`, `ping`, `role`, `stats`: the handlers.

pub mod catalog;
mod help;
mod ping;
mod role;
mod stats;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use guildscope_discord::{InteractionReply, Rest, RestError, Visibility};
use guildscope_model::{
    ChannelId, CommandOption, CommandValue, GuildId, Interaction, InteractionKind, MessageCommand,
    MessageId, RoleId, Snowflake, UserId,
};
use guildscope_store::StoreError;
use guildscope_telemetry::reports::{ErrorReport, ErrorReporter};
use guildscope_trace::{Kind, Span, Status, Value};

use crate::{
    GatewayControl, StoreReader,
    flags::{LiveFlags, Subject},
    roles::RoleDirectory,
    stats::{BotStats, Outcome},
};

pub use self::{catalog::specs, ping::RoundTrip};

/// How long a handler may work before a slash command is acknowledged
/// ("the bot is thinking..."), well inside Discord's 3 s.
pub const DEFAULT_DEFER_AFTER: Duration = Duration::from_millis(1_500);

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
    /// Feature flags (reloadable).
    pub flags: Arc<LiveFlags>,
    /// Read access to the statistics, when the bot keeps them.
    pub reader: Option<Arc<StoreReader>>,
    /// The REST round trip `/ping` reports.
    pub round_trip: Arc<RoundTrip>,
    /// The guilds' roles and which of them members may take.
    pub roles: Arc<RoleDirectory>,
    /// The message-command prefix, when message commands are on.
    pub prefix: Option<String>,
    /// How long a handler works before a slash command is acknowledged.
    pub defer_after: Duration,
    /// Guild-wide statistics shared between commands for a few seconds.
    pub stats_cache: Arc<stats::StatsCache>,
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext").finish_non_exhaustive()
    }
}

/// How a command arrived, which decides how it is answered.
#[derive(Debug)]
pub enum Source {
    /// A slash command (or an autocomplete request).
    Slash(Box<Interaction>),
    /// A `!`-prefix message; answered with a reply to it.
    Message {
        /// Where it was typed.
        channel: ChannelId,
        /// The message, answered with a reply.
        message: MessageId,
    },
}

/// A command, however it arrived.
#[derive(Debug)]
pub struct Invocation {
    /// The command name.
    pub name: String,
    /// The options given, subcommands nested.
    pub options: Vec<CommandOption>,
    /// Who ran it.
    pub user: UserId,
    /// Where, if in a guild.
    pub guild: Option<GuildId>,
    /// The channel it was run in.
    pub channel: Option<ChannelId>,
    /// The user's roles in the guild.
    pub roles: Vec<RoleId>,
    /// How it arrived.
    pub source: Source,
    /// The shard it arrived on.
    pub shard: u32,
    /// Why a message command's arguments could not be read, if they could
    /// not; it is answered with how to call the command.
    malformed: Option<catalog::ParseError>,
    /// Whether a slash command has been acknowledged (its answer is then an
    /// edit of the original response).
    deferred: AtomicBool,
}

impl Invocation {
    /// A slash command or autocomplete request.
    pub fn slash(shard: u32, mut interaction: Box<Interaction>) -> Self {
        Self {
            name: interaction.name.clone(),
            options: std::mem::take(&mut interaction.options),
            user: interaction.user_id,
            guild: interaction.guild_id,
            channel: interaction.channel_id,
            roles: interaction.member_roles.clone(),
            source: Source::Slash(interaction),
            shard,
            malformed: None,
            deferred: AtomicBool::new(false),
        }
    }

    /// A message command; its arguments are read as the slash command's
    /// options would have been.
    pub fn message(
        shard: u32,
        message: &guildscope_model::MessageMeta,
        command: MessageCommand,
    ) -> Self {
        let (options, malformed) = match catalog::parse_prefix(&command.name, &command.args) {
            Ok(options) => (options, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        Self {
            name: command.name,
            options,
            user: message.author_id,
            guild: message.guild_id,
            channel: Some(message.channel_id),
            roles: command.member_roles,
            source: Source::Message {
                channel: message.channel_id,
                message: message.id,
            },
            shard,
            malformed,
            deferred: AtomicBool::new(false),
        }
    }

    /// Whether this is an autocomplete request rather than a command.
    pub fn is_autocomplete(&self) -> bool {
        matches!(&self.source, Source::Slash(i) if i.kind == InteractionKind::Autocomplete)
    }

    /// Who is asking, for flags.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            user: self.user,
            guild: self.guild,
            roles: &self.roles,
        }
    }

    /// The subcommand and its options, for commands that have subcommands.
    pub fn subcommand(&self) -> Option<(&str, &[CommandOption])> {
        self.options.iter().find_map(|option| match &option.value {
            CommandValue::SubCommand(options) => Some((option.name.as_str(), options.as_slice())),
            _ => None,
        })
    }

    /// How the command is written in answers: `/stats` or `!stats`.
    pub fn display_name(&self, ctx: &CommandContext) -> String {
        match (&self.source, &ctx.prefix) {
            (Source::Message { .. }, Some(prefix)) => format!("{prefix}{}", self.name),
            _ => format!("/{}", self.name),
        }
    }

    /// Runs `work`; if it is still going after the context's `defer_after`,
    /// acknowledges a slash command first (publicly or privately, as its
    /// answer will be) so Discord does not give up on it after 3 s.
    pub async fn in_time<T>(
        &self,
        ctx: &CommandContext,
        visibility: Visibility,
        work: impl Future<Output = T>,
    ) -> Result<T, RestError> {
        let Source::Slash(interaction) = &self.source else {
            return Ok(work.await);
        };
        let mut work = std::pin::pin!(work);
        tokio::select! {
            biased;
            done = &mut work => return Ok(done),
            () = tokio::time::sleep(ctx.defer_after) => {}
        }
        let (deferred, done) = tokio::join!(ctx.rest.defer(interaction, visibility), work);
        deferred?;
        self.deferred.store(true, Ordering::Release);
        Ok(done)
    }

    /// Sends `answer`: the interaction response (or the edit of a deferred
    /// one) for a slash command, a reply for a message command.
    async fn send(&self, ctx: &CommandContext, reply: InteractionReply) -> Result<(), RestError> {
        match &self.source {
            Source::Slash(interaction) => {
                if self.deferred.load(Ordering::Acquire) {
                    ctx.rest.edit_original(interaction, reply.content).await
                } else {
                    ctx.rest.reply(interaction, reply).await
                }
            }
            Source::Message { channel, message } => ctx
                .rest
                .reply_to_message(*channel, *message, reply.content)
                .await
                .map(|_| ()),
        }
    }
}

/// What a handler answers, and how the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The message the user sees.
    pub reply: InteractionReply,
    /// How the command ended.
    pub outcome: Outcome,
}

impl Answer {
    /// The command did what was asked; everyone in the channel sees it.
    pub fn public(text: impl Into<String>) -> Self {
        Self {
            reply: InteractionReply::public(text),
            outcome: Outcome::Ok,
        }
    }

    /// The command did what was asked; only the user sees it.
    pub fn private(text: impl Into<String>) -> Self {
        Self {
            reply: InteractionReply::ephemeral(text),
            outcome: Outcome::Ok,
        }
    }

    /// The user cannot do this (or it makes no sense); only they see why.
    pub fn refused(text: impl Into<String>) -> Self {
        Self {
            reply: InteractionReply::ephemeral(text),
            outcome: Outcome::UserError,
        }
    }
}

/// Why a command could not be answered: a failure on our side or Discord's.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Discord refused or did not answer.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The statistics database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The root span of a message command (a slash command's root span is made
/// by the gateway when the interaction arrives).
pub fn message_span(message: &guildscope_model::MessageMeta, command: &str) -> Span {
    let mut span = Span::root("command");
    if !span.is_recording() {
        return span;
    }
    span.set_name(format!("!{command}"));
    span.set_kind(Kind::Server);
    span.set("command.name", command.to_owned());
    span.set("command.source", "message");
    span.set("discord.event", "MESSAGE_CREATE");
    if let Some(guild) = message.guild_id {
        span.set("discord.guild_id", guild.get());
    }
    span.set("discord.channel_id", message.channel_id.get());
    span.set("discord.user_id", message.author_id.get());
    span.set("discord.message_id", message.id.get());
    span
}

/// Runs one command to completion in its root span's scope (for slash
/// commands made when the interaction arrived, so the trace shows its wait on
/// the bus), answers the user whatever happens, records how it ended on that
/// span, counts it, and reports failures.
pub async fn handle(
    ctx: CommandContext,
    invocation: Invocation,
    received_at: Instant,
    mut span: Span,
) {
    let scope = span.context();
    let result = guildscope_trace::scope(scope, run(&ctx, &invocation, &mut span)).await;
    let outcome = match &result {
        Ok(outcome) => *outcome,
        Err(_) => Outcome::Error,
    };
    span.set("command.outcome", outcome.as_str());
    match result {
        Ok(_) => span.set_status(Status::Ok),
        Err(error) => {
            guildscope_trace::scope(scope, fail(&ctx, &invocation, &mut span, &error)).await
        }
    }
    // The span ends before the count, as it did before the answer was counted.
    drop(span);
    ctx.stats
        .command_answered(&invocation.name, outcome, received_at.elapsed());
}

/// The error boundary: records the failure on the root span, logs it with
/// its error id, reports it, and tells the user in a private message that
/// quotes the id.
async fn fail(
    ctx: &CommandContext,
    invocation: &Invocation,
    span: &mut Span,
    error: &CommandError,
) {
    let text = error.to_string();
    span.set_status(Status::Error(text.clone().into()));
    span.set("error", text.clone());
    span.add_event(
        "exception",
        [("exception.message", Value::from(text.clone()))],
    );
    ctx.stats.error("command");
    let error_id = error_id(span);
    tracing::warn!(
        error = %text,
        command = %invocation.name,
        error_id = %error_id,
        "command failed"
    );
    if let Some(reporter) = &ctx.reporter {
        let (interaction_id, message_id) = match &invocation.source {
            Source::Slash(interaction) => (Some(interaction.id.get()), None),
            Source::Message { message, .. } => (None, Some(message.get())),
        };
        reporter.report(&ErrorReport {
            kind: "command",
            error: &text,
            command: Some(&invocation.name),
            user_id: Some(invocation.user.get()),
            guild_id: invocation.guild.map(|g| g.get()),
            channel_id: invocation.channel.map(|c| c.get()),
            message_id,
            interaction_id,
            shard: Some(invocation.shard),
            trace_id: Some(&error_id),
        });
    }
    if invocation.is_autocomplete() {
        return;
    }
    let apology = InteractionReply::ephemeral(format!(
        "Something went wrong on our side while running `{}`. \
         If it keeps happening, tell the server staff and quote error id `{error_id}`.",
        invocation.display_name(ctx)
    ));
    if let Err(error) = invocation.send(ctx, apology).await {
        tracing::debug!(%error, "could not tell the user the command failed");
    }
}

/// The id a user quotes for a failed command: the trace id when the command
/// is traced, else a fresh random id (which the log line carries too).
fn error_id(span: &Span) -> String {
    if let Some(trace_id) = span.sampled_trace_id() {
        return trace_id.to_string();
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32);
    // splitmix64: spreads nearby inputs over the whole range.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", x ^ (x >> 31))
}

/// Runs the handler for a command (or autocomplete request) and sends its
/// answer; `Err` is a failure on our side or Discord's.
async fn run(
    ctx: &CommandContext,
    invocation: &Invocation,
    root: &mut Span,
) -> Result<Outcome, CommandError> {
    if let Source::Slash(interaction) = &invocation.source
        && interaction.kind == InteractionKind::Autocomplete
    {
        let choices = match invocation.name.as_str() {
            "role" => role::autocomplete(ctx, invocation),
            _ => Vec::new(),
        };
        ctx.rest.autocomplete(interaction, choices).await?;
        return Ok(Outcome::Ok);
    }
    let flags = ctx.flags.current();
    let answer = if let Some(error) = &invocation.malformed {
        Answer::refused(format!("`{}`: {error}.", invocation.display_name(ctx)))
    } else if let Some(flag) = flags.gate(&invocation.name, invocation.subject(), root) {
        Answer::refused(format!(
            "`{}` is not available to you yet (feature `{flag}`).",
            invocation.display_name(ctx)
        ))
    } else {
        match invocation.name.as_str() {
            "ping" => ping::ping(ctx, invocation).await,
            "stats" => stats::stats(ctx, invocation).await?,
            "role" => role::role(ctx, invocation).await?,
            "help" => help::help(ctx, invocation, &flags),
            other => Answer::refused(format!(
                "`{other}` is not a command this bot knows. Try `/help`."
            )),
        }
    };
    invocation.send(ctx, answer.reply).await?;
    Ok(answer.outcome)
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
