//! Starting a simulator and a bot against it, and waiting on conditions.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use guildscope_discord::{DiscordConfig, Gateway, GatewayHandle, Rest};
use guildscope_model::{ChannelId, Envelope, Event, GuildId, Interaction, MessageMeta, Secret};
use guildscope_simulator::{ChannelKind, GroundTruth, SimConfig, Simulator};
use tokio::task::JoinHandle;

/// How long any condition may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// What the counting handler saw on the event bus.
#[derive(Debug, Default)]
pub struct Seen {
    /// Dispatches per name.
    pub counts: BTreeMap<&'static str, u64>,
    /// For each GUILD_CREATE, the shard it arrived on.
    pub guild_shards: HashMap<GuildId, u32>,
    /// Interactions, in arrival order.
    pub interactions: Vec<Interaction>,
    /// Members received in GUILD_MEMBERS_CHUNK, per guild.
    pub chunk_members: HashMap<GuildId, usize>,
    /// The nonces chunks carried, in arrival order.
    pub chunk_nonces: Vec<Option<String>>,
    /// Names of `Event::Other` dispatches.
    pub other_names: Vec<&'static str>,
    /// The messages of MESSAGE_CREATE dispatches, in arrival order.
    pub messages: Vec<MessageMeta>,
}

impl Seen {
    /// Dispatches seen with this name.
    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Records one envelope, recording its wait on the bus first as a
    /// consumer should.
    fn record(&mut self, mut envelope: Envelope) {
        envelope.dequeued();
        *self.counts.entry(envelope.name).or_default() += 1;
        match envelope.event {
            Event::GuildCreate(guild) => {
                self.guild_shards.insert(guild.id, envelope.shard);
            }
            Event::Interaction(interaction) => {
                // As the bot does once a command has run.
                envelope.span.set("command.outcome", "ok");
                self.interactions.push(*interaction);
            }
            Event::MessageCreate(message) => self.messages.push(message),
            Event::MembersChunk {
                guild_id,
                members,
                nonce,
                ..
            } => {
                *self.chunk_members.entry(guild_id).or_default() += members.len();
                self.chunk_nonces.push(nonce);
            }
            Event::Other => self.other_names.push(envelope.name),
            _ => {}
        }
    }
}

/// A simulator with a bot connected to it.
pub struct Bot {
    /// The simulator.
    pub sim: Simulator,
    /// The bot's REST client.
    pub rest: Rest,
    /// The running gateway.
    pub gateway: GatewayHandle,
    /// What the handler saw.
    seen: Arc<Mutex<Seen>>,
    /// The counting handler; ends when the bus ends.
    consumer: JoinHandle<()>,
}

/// Log output for failing tests (`RUST_LOG=guildscope_discord=debug`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A simulator configuration for tests: short heartbeats, quiet traffic.
pub fn sim_config() -> SimConfig {
    SimConfig {
        guilds: 3,
        members: 60,
        heartbeat_interval: Duration::from_millis(200),
        ..SimConfig::default()
    }
}

/// A bot configuration pointing at the simulator.
pub fn bot_config(sim: &Simulator) -> DiscordConfig {
    let info = sim.info();
    DiscordConfig::local(
        Secret::new(info.token.clone()),
        &info.rest_url,
        &info.gateway_url,
    )
}

impl Bot {
    /// Starts a simulator and a bot with its configuration adjusted by `adjust`.
    pub async fn start(sim: SimConfig, adjust: impl FnOnce(&mut DiscordConfig)) -> Bot {
        init_tracing();
        let sim = Simulator::start(sim).await.expect("simulator starts");
        let mut config = bot_config(&sim);
        adjust(&mut config);
        let rest = Rest::new(&config);
        let Gateway {
            handle: gateway,
            mut events,
        } = Gateway::start(&config, &rest)
            .await
            .expect("gateway starts");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let consumer = tokio::spawn(async move {
            while let Some(envelope) = events.recv().await {
                lock(&sink).record(envelope);
            }
        });
        Bot {
            sim,
            rest,
            gateway,
            seen,
            consumer,
        }
    }

    /// Starts with the default test configurations.
    pub async fn default() -> Bot {
        Bot::start(sim_config(), |_| {}).await
    }

    /// What the handler saw so far.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    /// Waits until READY and a GUILD_CREATE for every guild have arrived.
    pub async fn wait_ready(&self) {
        let guilds = self.sim.community().guilds.len();
        eventually("READY and every GUILD_CREATE", || {
            let seen = self.seen();
            seen.count("READY") >= 1 && seen.guild_shards.len() == guilds
        })
        .await;
    }

    /// Waits until the handler counted exactly what the simulator says it
    /// sent, per dispatch name.
    pub async fn wait_in_sync_with_ground_truth(&self) {
        let mut last = (BTreeMap::new(), BTreeMap::new());
        let synced = poll_until(TIMEOUT, || {
            let truth = self.sim.ground_truth().events_sent;
            let counted: BTreeMap<String, u64> = self
                .seen()
                .counts
                .iter()
                .map(|(name, count)| ((*name).to_owned(), *count))
                .collect();
            let equal = truth == counted;
            last = (truth, counted);
            equal
        })
        .await;
        assert!(
            synced,
            "handler counts never matched the simulator's ground truth\nsent:    {:?}\ncounted: {:?}",
            last.0, last.1
        );
    }

    /// Shuts the gateway down, waits for the handler to drain the bus, and
    /// stops the simulator; returns the simulator's final ground truth.
    pub async fn shutdown(self) -> GroundTruth {
        tokio::time::timeout(TIMEOUT, self.gateway.shutdown())
            .await
            .expect("gateway shuts down in time");
        tokio::time::timeout(TIMEOUT, self.consumer)
            .await
            .expect("the bus ends after shutdown")
            .expect("consumer does not panic");
        let truth = self.sim.ground_truth();
        self.sim.shutdown().await;
        truth
    }
}

/// The first text channel of the first guild.
pub fn text_channel(sim: &Simulator) -> (GuildId, ChannelId) {
    let guild = &sim.community().guilds[0];
    let channel = guild
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Text)
        .expect("the community has a text channel");
    (GuildId::new(guild.id), ChannelId::new(channel.id))
}

/// Locks the shared record (never held across an await).
fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns
/// whether it held.
pub async fn poll_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `condition` holds, failing the test after [`TIMEOUT`].
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(TIMEOUT, condition).await,
        "timed out waiting for: {what}"
    );
}

/// Awaits a future, failing the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
