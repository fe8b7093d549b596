//! The dispatcher: drains the event bus, feeds the statistics collector and
//! runs commands concurrently, and shuts down cleanly when the bus closes.

use std::{sync::Arc, time::Duration};

use guildscope_discord::Rest;
use guildscope_model::{Envelope, Event};
use guildscope_store::StoreError;
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
    time::Instant,
};

use crate::{
    BotStats, Collector, CollectorConfig, StoreWriter, WriterConfig,
    commands::{self, CommandContext, LatencySource},
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
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            collector: CollectorConfig::default(),
            writer: None,
            max_commands_in_flight: 256,
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
    /// A bot answering through `rest`, reading gateway latency from `latency`.
    pub fn new(config: BotConfig, rest: Rest, latency: LatencySource) -> Self {
        let stats = Arc::new(BotStats::default());
        let commands = CommandContext {
            rest,
            stats: Arc::clone(&stats),
            latency,
        };
        Self {
            config,
            stats,
            commands,
        }
    }

    /// The counters, to watch progress while [`Bot::run`] works.
    pub fn stats(&self) -> Arc<BotStats> {
        Arc::clone(&self.stats)
    }

    /// Handles events until the bus closes, then commits what is pending and
    /// waits for running commands.
    pub async fn run(self, mut bus: mpsc::Receiver<Envelope>) -> Result<(), StoreError> {
        let Self {
            config,
            stats,
            commands,
        } = self;
        let writer = config
            .writer
            .as_ref()
            .map(|w| StoreWriter::start(w, Arc::clone(&stats)))
            .transpose()?;
        let batch_size = config.writer.as_ref().map_or(usize::MAX, |w| w.batch_size);
        let batch_interval = config
            .writer
            .as_ref()
            .map_or(Duration::MAX, |w| w.batch_interval);
        let mut collector = Collector::new(&config.collector);
        let mut batch = Vec::new();
        let mut deadline: Option<Instant> = None;
        let permits = Arc::new(Semaphore::new(config.max_commands_in_flight.max(1)));
        let mut running = JoinSet::new();

        loop {
            let envelope = tokio::select! {
                biased;
                envelope = bus.recv() => match envelope {
                    Some(envelope) => envelope,
                    None => break,
                },
                () = sleep_until(deadline) => {
                    if let Some(writer) = &writer {
                        writer.send(std::mem::take(&mut batch)).await;
                    }
                    deadline = None;
                    continue;
                }
            };
            let Envelope {
                shard,
                name,
                received_at,
                event,
                ..
            } = envelope;
            match event {
                Event::Interaction(interaction) => {
                    // A closed semaphore is impossible here: we own the only handle.
                    let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                        break;
                    };
                    let ctx = commands.clone();
                    running.spawn(async move {
                        commands::handle(ctx, shard, interaction, received_at).await;
                        drop(permit);
                    });
                    while running.try_join_next().is_some() {}
                }
                event if writer.is_some() => {
                    collector.collect(&event, &mut batch);
                    if batch.len() >= batch_size {
                        if let Some(writer) = &writer {
                            writer.send(std::mem::take(&mut batch)).await;
                        }
                        deadline = None;
                    } else if !batch.is_empty() && deadline.is_none() {
                        deadline = Some(Instant::now() + batch_interval);
                    }
                }
                _ => {}
            }
            stats.event_handled(name, received_at.elapsed());
        }

        while running.join_next().await.is_some() {}
        if let Some(writer) = writer {
            if !batch.is_empty() {
                writer.send(batch).await;
            }
            writer.finish().await;
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
