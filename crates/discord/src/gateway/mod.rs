//! The gateway: every shard the bot needs, each in its own task, feeding one
//! bounded event bus.
//!
//! [`Gateway::start`] decides the shard count, builds twilight shards
//! pointed at Discord or a local gateway, and spawns one `runner` task per
//! shard. The returned [`GatewayHandle`] requests members, reads latency,
//! shard states and counters, shuts everything down, and reports a fatal
//! close. Every dispatch goes on the bus with its own root span (see
//! `trace`).

mod bus;
mod runner;
mod stats;
mod trace;

use std::{sync::Arc, time::Duration};

use guildscope_model::{GuildId, Snowflake};
use tokio::sync::watch;
use tracing::{Instrument, info};
use twilight_gateway::{ConfigBuilder, MessageSender, Shard, ShardId, queue::InMemoryQueue};
use twilight_model::{gateway::payload::outgoing::RequestGuildMembers, id::Id};

pub use self::bus::EventBus;
use self::runner::{Runner, ShardExit, fatal_reason};
use crate::{
    config::DiscordConfig,
    rest::{Rest, RestError},
};

pub use self::stats::{GatewayStats, ShardState, UNKNOWN_DISPATCH};

/// A gateway failure.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway closed a shard with a code that forbids reconnecting.
    #[error("shard {shard} was closed by the gateway with code {code}: {reason}")]
    FatalClose {
        /// The shard.
        shard: u32,
        /// The close code (4004, 4010 to 4014).
        code: u16,
        /// What the code means, in one line.
        reason: &'static str,
    },
    /// A shard task panicked.
    #[error("shard {shard} stopped: its task panicked")]
    ShardPanicked {
        /// The shard.
        shard: u32,
    },
    /// `GET gateway/bot` failed, so the shard count or gateway URL is unknown.
    #[error("could not ask discord how to connect to the gateway")]
    GatewayInfo(#[source] RestError),
    /// The configuration cannot work.
    #[error("invalid gateway configuration: {field} {expected}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is expected of it.
        expected: &'static str,
    },
    /// A member request was made for a shard that has stopped.
    #[error("shard {shard} is not running")]
    ShardStopped {
        /// The shard.
        shard: u32,
    },
}

/// How a shard stopped, as kept for [`GatewayHandle::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// A fatal close code.
    Fatal {
        /// The shard.
        shard: u32,
        /// The close code.
        code: u16,
    },
    /// A panic.
    Panicked {
        /// The shard.
        shard: u32,
    },
}

impl Failure {
    /// The error `wait` returns.
    fn to_error(self) -> GatewayError {
        match self {
            Failure::Fatal { shard, code } => GatewayError::FatalClose {
                shard,
                code,
                reason: fatal_reason(code),
            },
            Failure::Panicked { shard } => GatewayError::ShardPanicked { shard },
        }
    }
}

/// What the shard tasks report about themselves.
#[derive(Debug, Clone, Default)]
struct Status {
    /// Shard tasks still running.
    running: usize,
    /// The first fatal failure, if any.
    failure: Option<Failure>,
}

/// Starts the shards.
#[derive(Debug)]
pub struct Gateway {
    /// Controls the running shards.
    pub handle: GatewayHandle,
    /// The event bus: every dispatch, from every shard, in arrival order per
    /// shard, commands ahead of other traffic. It ends (`recv` returns
    /// `None`) once every shard has stopped.
    pub events: EventBus,
}

impl Gateway {
    /// Connects every shard.
    ///
    /// Asks `GET gateway/bot` for what the configuration leaves open (shard
    /// count, gateway URL, identify limits). Shards connect in the
    /// background; this returns as soon as they are spawned. Must be called
    /// inside a tokio runtime. Dropping every [`GatewayHandle`] shuts the
    /// shards down, as [`GatewayHandle::shutdown`] does.
    pub async fn start(config: &DiscordConfig, rest: &Rest) -> Result<Gateway, GatewayError> {
        crate::install_crypto_provider();
        if !(50..=250).contains(&config.large_threshold) {
            return Err(GatewayError::InvalidConfig {
                field: "large_threshold",
                expected: "must be between 50 and 250",
            });
        }
        if config.bus_capacity == 0 {
            return Err(GatewayError::InvalidConfig {
                field: "bus_capacity",
                expected: "must be at least 1",
            });
        }
        if config.shards == Some(0) {
            return Err(GatewayError::InvalidConfig {
                field: "shards",
                expected: "must be at least 1",
            });
        }

        let (url, queue, recommended) = match &config.gateway_base {
            // A local gateway: identify without waiting.
            Some(base) => (
                base.trim_end_matches('/').to_owned(),
                InMemoryQueue::new(0, 0, Duration::ZERO, 0),
                None,
            ),
            None => {
                let info = rest
                    .gateway_info()
                    .await
                    .map_err(GatewayError::GatewayInfo)?;
                let queue = InMemoryQueue::new(
                    info.max_concurrency,
                    info.session_start_remaining.min(info.session_start_total),
                    info.session_start_reset_after,
                    info.session_start_total,
                );
                (info.url, queue, Some(info.shards))
            }
        };
        let total = match (config.shards, recommended) {
            (Some(shards), _) | (None, Some(shards)) => shards.max(1),
            (None, None) => rest
                .gateway_shards()
                .await
                .map_err(GatewayError::GatewayInfo)?
                .max(1),
        };

        let shard_config = ConfigBuilder::new(
            config.token.expose().to_owned(),
            config.gateway_intents().to_twilight(),
        )
        .large_threshold(config.large_threshold)
        .proxy_url(url)
        .queue(queue)
        .build();

        let stats = Arc::new(GatewayStats::new(total));
        let trace_budget = Arc::new(trace::TraceBudget::new(config.traced_events_per_second));
        let (bus, events) = bus::channel(config.bus_capacity);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let status = Arc::new(watch::Sender::new(Status {
            running: usize::try_from(total).unwrap_or(usize::MAX),
            failure: None,
        }));
        let mut senders = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for id in 0..total {
            let shard = Shard::with_config(ShardId::new(id, total), shard_config.clone());
            senders.push(shard.sender());
            let runner = Runner {
                shard,
                id,
                bus: bus.clone(),
                stats: Arc::clone(&stats),
                shutdown: shutdown_rx.clone(),
                content_key: config.content_key.clone(),
                prefix_commands: config.prefix_commands.clone(),
                trace_budget: Arc::clone(&trace_budget),
            };
            let guard = ExitGuard {
                shard: id,
                status: Arc::clone(&status),
                exit: None,
            };
            tokio::spawn(
                async move {
                    let mut guard = guard;
                    guard.exit = Some(runner.run().await);
                }
                // Context for twilight's own log lines, which do not name the
                // shard (guildscope's do). At DEBUG under twilight's target it
                // exists only while twilight's debug lines are logged: the
                // span pipeline does not trace other crates' DEBUG spans (a
                // span as long as the process is no trace), and entering it on
                // every poll of the shard cost every event a round through
                // the subscriber.
                .instrument(tracing::debug_span!(
                    target: "twilight_gateway",
                    "discord.shard",
                    discord.shard_id = id
                )),
            );
        }
        info!(shards = total, "gateway started");

        Ok(Gateway {
            handle: GatewayHandle {
                inner: Arc::new(Inner {
                    senders,
                    stats,
                    total,
                    shutdown,
                    status,
                }),
            },
            events,
        })
    }
}

/// Reports a shard task's end, including by panic, when dropped.
struct ExitGuard {
    /// The shard.
    shard: u32,
    /// Where to report.
    status: Arc<watch::Sender<Status>>,
    /// How the task ended; `None` if it panicked.
    exit: Option<ShardExit>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let failure = match self.exit {
            Some(ShardExit::Fatal { code }) => Some(Failure::Fatal {
                shard: self.shard,
                code,
            }),
            Some(ShardExit::Shutdown | ShardExit::BusClosed) => None,
            // The runner returns on every path, so `None` means it was
            // dropped mid-run: a panic, or the runtime shutting down.
            None if std::thread::panicking() => Some(Failure::Panicked { shard: self.shard }),
            None => None,
        };
        self.status.send_modify(|status| {
            status.running = status.running.saturating_sub(1);
            if status.failure.is_none() {
                status.failure = failure;
            }
        });
    }
}

/// Controls a running [`Gateway`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    /// Shared state.
    inner: Arc<Inner>,
}

/// The state every handle shares.
#[derive(Debug)]
struct Inner {
    /// Each shard's command channel, by shard number.
    senders: Vec<MessageSender>,
    /// Shared counters.
    stats: Arc<GatewayStats>,
    /// Number of shards.
    total: u32,
    /// Set to `true` to stop every shard.
    shutdown: watch::Sender<bool>,
    /// What the shard tasks report.
    status: Arc<watch::Sender<Status>>,
}

impl GatewayHandle {
    /// The number of shards.
    pub fn shard_count(&self) -> u32 {
        self.inner.total
    }

    /// The shard that receives a guild's events: `(guild_id >> 22) % shards`.
    pub fn shard_for(&self, guild: GuildId) -> u32 {
        shard_for(guild, self.inner.total)
    }

    /// Shard tasks still running (a fatally closed shard has stopped; one
    /// that is reconnecting has not).
    pub fn running_shards(&self) -> usize {
        self.inner.status.borrow().running
    }

    /// The gateway counters.
    pub fn stats(&self) -> &Arc<GatewayStats> {
        &self.inner.stats
    }

    /// The shard's last heartbeat round trip, once one was measured.
    pub fn latency(&self, shard: u32) -> Option<Duration> {
        self.inner.stats.shard_latency(shard)
    }

    /// Every shard's connection state and heartbeat latency, without
    /// awaiting: what the `shard_connected` and gateway latency gauges show.
    pub fn shard_states(&self) -> Vec<ShardState> {
        self.inner.stats.shard_states()
    }

    /// Asks for a guild's whole member list (op 8), answered with
    /// GUILD_MEMBERS_CHUNK events on the bus. Sent once the owning shard has
    /// a session. The chunks carry `nonce`, so a caller can tell the answer
    /// to its own request from others.
    pub fn request_members(&self, guild: GuildId, nonce: &str) -> Result<(), GatewayError> {
        let shard = self.shard_for(guild);
        let stopped = GatewayError::ShardStopped { shard };
        let guild_id = Id::new_checked(guild.get()).ok_or(GatewayError::InvalidConfig {
            field: "guild_id",
            expected: "must not be zero",
        })?;
        let sender = usize::try_from(shard)
            .ok()
            .and_then(|index| self.inner.senders.get(index))
            .ok_or(GatewayError::ShardStopped { shard })?;
        sender
            .command(
                &RequestGuildMembers::builder(guild_id)
                    .nonce(nonce)
                    .query("", None),
            )
            .map_err(|_| stopped)
    }

    /// Closes every shard with a normal close frame, waits for the shard
    /// tasks to end, and so ends the event bus once consumers drain it.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let mut status = self.inner.status.subscribe();
        // The sender lives in `inner`, so `wait_for` cannot fail here.
        let _ = status.wait_for(|status| status.running == 0).await;
        info!("gateway shut down");
    }

    /// Waits until every shard has stopped (after [`shutdown`](Self::shutdown)),
    /// or returns the first fatal failure as soon as it happens (a rejected
    /// token, disallowed intents...). A fatally closed shard does not
    /// reconnect; the others keep running until shut down.
    pub async fn wait(&self) -> Result<(), GatewayError> {
        let mut status = self.inner.status.subscribe();
        let status = status
            .wait_for(|status| status.failure.is_some() || status.running == 0)
            .await
            .map(|status| status.failure)
            .unwrap_or(None);
        match status {
            Some(failure) => Err(failure.to_error()),
            None => Ok(()),
        }
    }
}

/// The shard of a guild among `total`.
pub(crate) fn shard_for(guild: GuildId, total: u32) -> u32 {
    let shard = (guild.get() >> 22) % u64::from(total.max(1));
    // The remainder is below `total`, a u32.
    u32::try_from(shard).unwrap_or(0)
}
