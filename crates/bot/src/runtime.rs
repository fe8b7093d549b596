//! The dispatcher: drains the event bus, feeds the statistics collector and
//! runs commands concurrently, and shuts down cleanly when the bus closes.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use guildscope_discord::{EventBus, Rest};
use guildscope_model::{Envelope, Event, GuildId, Snowflake};
use guildscope_store::StoreError;
use guildscope_telemetry::{
    metrics::{GuildGauges, Metrics},
    reports::ErrorReporter,
};
use tokio::{sync::Semaphore, task::JoinSet, time::Instant};

use crate::{
    BotStats, Collector, CollectorConfig, Flags, GatewayControl, LiveFlags, StoreReader,
    StoreWriter, WriterConfig,
    commands::{self, CommandContext, Invocation},
    roles::{RoleConfig, RoleDirectory},
    writer::Batch,
};

/// How the bot behaves.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// What the statistics collector keeps.
    pub collector: CollectorConfig,
    /// Where statistics go; `None` keeps none.
    pub writer: Option<WriterConfig>,
    /// Commands that may run at once; more wait on the bus (backpressure).
    pub max_commands_in_flight: usize,
    /// Feature flags.
    pub flags: Flags,
    /// Which roles members may give themselves.
    pub roles: RoleConfig,
    /// The message-command prefix (`!`); `None` answers slash commands only.
    pub prefix: Option<String>,
    /// How long a command works before a slash command is acknowledged.
    pub defer_after: Duration,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            collector: CollectorConfig::default(),
            writer: None,
            max_commands_in_flight: 256,
            flags: Flags::default(),
            roles: RoleConfig::default(),
            prefix: None,
            defer_after: commands::DEFAULT_DEFER_AFTER,
        }
    }
}

/// The bot's runtime.
pub struct Bot {
    config: BotConfig,
    stats: Arc<BotStats>,
    commands: CommandContext,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// A bot answering through `rest` and asking `gateway` for latency and
    /// member lists.
    pub fn new(config: BotConfig, rest: Rest, gateway: Arc<dyn GatewayControl>) -> Self {
        let stats = Arc::new(BotStats::default());
        let commands = CommandContext {
            rest,
            stats: Arc::clone(&stats),
            gateway,
            reporter: None,
            flags: Arc::new(LiveFlags::new(config.flags.clone())),
            reader: config
                .writer
                .as_ref()
                .map(|writer| StoreReader::new(writer.location.clone())),
            round_trip: Arc::default(),
            roles: Arc::new(RoleDirectory::new(config.roles.clone())),
            prefix: config.prefix.clone(),
            defer_after: config.defer_after,
            stats_cache: Arc::default(),
        };
        Self {
            config,
            stats,
            commands,
        }
    }

    /// Feeds `metrics` (Prometheus, StatsD) as the bot works, and reports
    /// unexpected failures to `reporter`.
    pub fn with_telemetry(
        mut self,
        metrics: Arc<Metrics>,
        reporter: Option<ErrorReporter>,
    ) -> Self {
        self.stats = Arc::new(BotStats::with_metrics(metrics));
        self.commands.stats = Arc::clone(&self.stats);
        self.commands.reporter = reporter;
        self
    }

    /// The feature flags in force, to replace them when the configuration
    /// is reloaded.
    pub fn flags(&self) -> Arc<LiveFlags> {
        Arc::clone(&self.commands.flags)
    }

    /// The counters, to watch progress while [`Bot::run`] works.
    pub fn stats(&self) -> Arc<BotStats> {
        Arc::clone(&self.stats)
    }

    /// Handles events until the bus closes, then commits what is pending and
    /// waits for running commands.
    pub async fn run(self, mut bus: EventBus) -> Result<(), StoreError> {
        let Self {
            config,
            stats,
            commands,
        } = self;
        let mut batcher = match &config.writer {
            Some(writer) => Some(Batcher::start(writer, Arc::clone(&stats)).await?),
            None => None,
        };
        let mut collector = Collector::new(&config.collector);
        let guilds = Arc::new(Mutex::new(BTreeSet::new()));
        let gauges = match (stats.metrics(), &commands.reader) {
            (Some(metrics), Some(reader)) => Some(tokio::spawn(refresh_guild_gauges(
                Arc::clone(metrics),
                Arc::clone(reader),
                Arc::clone(&guilds),
            ))),
            _ => None,
        };
        let permits = Arc::new(Semaphore::new(config.max_commands_in_flight.max(1)));
        let mut running = JoinSet::new();

        loop {
            let deadline = batcher.as_ref().and_then(|b| b.deadline);
            let envelope = tokio::select! {
                biased;
                envelope = bus.recv() => match envelope {
                    Some(envelope) => envelope,
                    None => break,
                },
                () = sleep_until(deadline) => {
                    if let Some(batcher) = &mut batcher {
                        batcher.flush().await;
                    }
                    continue;
                }
            };
            let Envelope {
                shard,
                name,
                received_at,
                event,
                mut span,
                mut queued,
                ..
            } = envelope;
            // The event is off the bus: its wait there is recorded on its span.
            queued.dequeued(&mut span);
            commands.roles.observe(&event);
            let mut event = event;
            let command = match &mut event {
                Event::Interaction(_) => None,
                Event::MessageCreate(message) => message.command.take().map(|command| {
                    let span = commands::message_span(message, &command.name);
                    (Invocation::message(shard, message, *command), span)
                }),
                _ => None,
            };
            if let Some((invocation, span)) = command {
                run_command(
                    &permits,
                    &mut running,
                    &commands,
                    invocation,
                    received_at,
                    span,
                )
                .await;
            }
            match event {
                Event::Interaction(interaction) => {
                    let invocation = Invocation::slash(shard, interaction);
                    run_command(
                        &permits,
                        &mut running,
                        &commands,
                        invocation,
                        received_at,
                        span,
                    )
                    .await;
                }
                event => {
                    match &event {
                        Event::GuildCreate(guild) => {
                            if let Ok(mut guilds) = guilds.lock() {
                                guilds.insert(guild.id);
                            }
                        }
                        Event::GuildDelete {
                            guild_id,
                            unavailable: false,
                        } => {
                            if let Ok(mut guilds) = guilds.lock() {
                                guilds.remove(guild_id);
                            }
                            if let Some(metrics) = stats.metrics() {
                                metrics.guild_removed(guild_id.get());
                            }
                        }
                        _ => {}
                    }
                    if let Some(batcher) = &mut batcher {
                        if let (Event::MessageCreate(message), Some(metrics)) =
                            (&event, stats.metrics())
                        {
                            metrics.message(collector.channel_name(message.channel_id));
                        }
                        guildscope_trace::scope(
                            span.context(),
                            batcher.add(&mut collector, &event, received_at),
                        )
                        .await;
                        for (guild, nonce) in collector.take_member_requests() {
                            if let Err(error) = commands.gateway.request_members(guild, &nonce) {
                                stats.error("member_request");
                                tracing::warn!(%error, guild_id = %guild, "member sync request failed");
                            }
                        }
                    }
                }
            }
            stats.event_handled(name, received_at.elapsed());
        }

        if let Some(gauges) = gauges {
            gauges.abort();
        }

        while running.join_next().await.is_some() {}
        if let Some(mut batcher) = batcher {
            batcher.drain().await;
            batcher.writer.finish().await;
        }
        Ok(())
    }
}

/// Starts a command once one of the `permits` is free (commands beyond
/// them wait here, which backs up the bus), and reaps the commands that
/// have finished so `running` holds only those still going.
async fn run_command(
    permits: &Arc<Semaphore>,
    running: &mut JoinSet<()>,
    ctx: &CommandContext,
    invocation: Invocation,
    received_at: std::time::Instant,
    span: guildscope_trace::Span,
) {
    // The semaphore is never closed: the runtime owns the only handle.
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return;
    };
    let ctx = ctx.clone();
    running.spawn(async move {
        commands::handle(ctx, invocation, received_at, span).await;
        drop(permit);
    });
    while running.try_join_next().is_some() {}
}

/// Collects store writes into batches that are committed when full or when
/// the oldest write has waited `interval`.
struct Batcher {
    writer: StoreWriter,
    batch: Batch,
    size: usize,
    interval: Duration,
    max_pending: usize,
    /// When the pending batch must be committed, if it holds anything.
    deadline: Option<Instant>,
}

impl Batcher {
    async fn start(config: &WriterConfig, stats: Arc<BotStats>) -> Result<Self, StoreError> {
        Ok(Self {
            writer: StoreWriter::start(config, stats).await?,
            batch: Batch::default(),
            size: config.batch_size.max(1),
            interval: config.batch_interval,
            max_pending: config.max_pending.max(config.batch_size),
            deadline: None,
        })
    }

    async fn add(
        &mut self,
        collector: &mut Collector,
        event: &Event,
        received_at: std::time::Instant,
    ) {
        let before = self.batch.ops.len();
        collector.collect(event, &mut self.batch.ops);
        if self.batch.ops.len() == before {
            return;
        }
        if self.batch.oldest.is_none() {
            self.batch.oldest = Some(received_at);
            self.deadline = Some(Instant::now() + self.interval);
        }
        if self.batch.ops.len() >= self.size {
            self.flush().await;
        }
    }

    /// Hands the pending writes to the writer. While the writer is behind
    /// they stay pending (and keep growing) so the event loop goes on, until
    /// `max_pending` is reached; then the loop waits for the writer, which
    /// backs the event bus and the gateway up.
    async fn flush(&mut self) {
        self.deadline = None;
        if self.batch.ops.is_empty() {
            return;
        }
        match self.writer.try_send(std::mem::take(&mut self.batch)) {
            Ok(()) => {}
            Err(batch) if batch.ops.len() >= self.max_pending => self.writer.send(batch).await,
            Err(batch) => {
                self.batch = batch;
                self.deadline = Some(Instant::now() + self.interval);
            }
        }
    }

    /// Hands everything to the writer, waiting as long as it takes.
    async fn drain(&mut self) {
        self.deadline = None;
        if !self.batch.ops.is_empty() {
            self.writer.send(std::mem::take(&mut self.batch)).await;
        }
    }
}

/// How often the per-guild gauges (members, channels, help threads in use)
/// are read from the store.
const GAUGE_INTERVAL: Duration = Duration::from_secs(15);

/// Keeps the per-guild gauges current from the store, for the guilds the bot
/// is in.
async fn refresh_guild_gauges(
    metrics: Arc<Metrics>,
    reader: Arc<StoreReader>,
    guilds: Arc<Mutex<BTreeSet<GuildId>>>,
) {
    let mut tick = tokio::time::interval(GAUGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ids: Vec<GuildId> = match guilds.lock() {
            Ok(guilds) => guilds.iter().copied().collect(),
            Err(_) => return,
        };
        if ids.is_empty() {
            continue;
        }
        let read = reader
            .query("metrics.guild_gauges", move |store| {
                ids.into_iter()
                    .map(|guild| {
                        let help = store
                            .forum_threads_in_use(guild)?
                            .iter()
                            .map(|f| f.open_threads)
                            .sum();
                        Ok((
                            guild,
                            GuildGauges {
                                members: store.member_count(guild)?,
                                channels: store.channel_count(guild)?,
                                help_threads_in_use: help,
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await;
        match read {
            Ok(gauges) => {
                for (guild, gauges) in gauges {
                    metrics.guild(guild.get(), gauges);
                }
            }
            Err(error) => {
                metrics.error("store_read");
                tracing::warn!(%error, "could not refresh the guild gauges");
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
