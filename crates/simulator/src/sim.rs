//! The `Simulator` handle: starts the listener, HTTP server and traffic task, exposes the
//! same operations as the control API, and stops everything on `shutdown` or drop.

use std::{fmt, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinSet,
};

use crate::{
    BotMessage, Community, Fault, GroundTruth, InjectedInteraction, InjectedMessage,
    InteractionRecord, InteractionRequest, MessageRequest, RestCall, SimConfig, SimError,
    community::generate,
    gateway::session::SessionStatus,
    ground_truth, interactions, listener, messages, rest,
    state::{Shared, lock},
    traffic,
};

/// Where to reach a running simulator; printed as the first line of `guildscope simulate`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimInfo {
    /// REST base, e.g. `http://127.0.0.1:PORT` (routes under `/api/v10`).
    pub rest_url: String,
    /// Gateway URL, e.g. `ws://127.0.0.1:PORT` (also READY's `resume_gateway_url`).
    pub gateway_url: String,
    /// Control API base, e.g. `http://127.0.0.1:PORT/control`.
    pub control_url: String,
    /// The bot token clients must use.
    pub token: String,
}

impl fmt::Debug for SimInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimInfo")
            .field("rest_url", &self.rest_url)
            .field("gateway_url", &self.gateway_url)
            .field("control_url", &self.control_url)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// A running simulator's state at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Every live or resumable session.
    pub sessions: Vec<SessionStatus>,
    /// Shard ids with a connected session.
    pub shards_connected: Vec<u32>,
    /// Current traffic rate (events per second).
    pub rate: f64,
    /// MESSAGE_CREATE still queued by firehose requests.
    pub firehose_pending: u64,
    /// Milliseconds since start.
    pub uptime_ms: u64,
}

/// A running simulator. Dropping it stops every task; [`shutdown`](Self::shutdown) also
/// closes gateway connections gracefully first.
pub struct Simulator {
    shared: Arc<Shared>,
    community: Community,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Where the tasks run.
    handle: tokio::runtime::Handle,
    /// The simulator's own runtime, when started with
    /// [`start_isolated`](Self::start_isolated).
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("info", self.info())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Generates the community, binds the listener and starts serving.
    ///
    /// # Errors
    ///
    /// [`SimError::InvalidConfig`] for a bad config, [`SimError::Bind`] if the address
    /// cannot be bound.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
        let info = SimInfo {
            rest_url: format!("http://{local}"),
            gateway_url: format!("ws://{local}"),
            control_url: format!("http://{local}/control"),
            token: config.token.clone(),
        };
        let world = generate::generate(&config);
        let community = Community::snapshot(&world);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, info, world, shutdown_rx.clone()));
        let (http_tx, http_rx) = mpsc::channel(256);
        let mut tasks = JoinSet::new();
        tasks.spawn(listener::accept_loop(
            Arc::clone(&shared),
            listener,
            http_tx,
        ));
        let app = rest::app(Arc::clone(&shared));
        let mut stop = shutdown_rx;
        tasks.spawn(async move {
            let server = axum::serve(listener::HttpListener { rx: http_rx, local }, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|&stopped| stopped).await;
                });
            if let Err(error) = server.await {
                tracing::error!(%error, "http server failed");
            }
        });
        tasks.spawn(traffic::run(Arc::clone(&shared)));
        tracing::info!(
            address = %local,
            guilds = community.guilds.len(),
            seed = shared.config.seed,
            "simulator started"
        );
        Ok(Self {
            shared,
            community,
            shutdown,
            tasks,
            handle: tokio::runtime::Handle::current(),
            runtime: None,
        })
    }

    /// Like [`start`](Self::start), but the simulator runs on a runtime of
    /// its own with `threads` worker threads, as Discord runs on machines of
    /// its own: its tasks never hold the caller's runtime workers (a REST
    /// handler waiting for the community's lock, a burst of traffic), so a
    /// bot's latency measured against it is the bot's. The runtime stops
    /// with the simulator.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start); [`SimError::Runtime`] if the runtime
    /// cannot be built.
    pub async fn start_isolated(config: SimConfig, threads: usize) -> Result<Self, SimError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("simulator")
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let started = runtime.spawn(Self::start(config)).await;
        match started {
            Ok(Ok(mut simulator)) => {
                simulator.runtime = Some(runtime);
                Ok(simulator)
            }
            Ok(Err(error)) => {
                runtime.shutdown_background();
                Err(error)
            }
            Err(join) => {
                runtime.shutdown_background();
                Err(SimError::Runtime(std::io::Error::other(join.to_string())))
            }
        }
    }

    /// The runtime the simulator's tasks run on: its own when started with
    /// [`start_isolated`](Self::start_isolated), else the one it was started
    /// on. Drivers that stand for Discord's users (injecting commands and
    /// traffic at a pace) belong there too.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// URLs and token.
    pub fn info(&self) -> &SimInfo {
        &self.shared.info
    }

    /// The community as generated at start.
    pub fn community(&self) -> &Community {
        &self.community
    }

    /// What was dispatched so far, and the community's current shape.
    pub fn ground_truth(&self) -> GroundTruth {
        ground_truth::snapshot(&self.shared)
    }

    /// A member's roles now (without @everyone), or `None` if the guild or
    /// member is unknown: what role changes over REST have made of them.
    pub fn member_roles(&self, guild_id: u64, user_id: u64) -> Option<Vec<u64>> {
        let world = self.shared.world();
        let guild = world.guilds.iter().find(|g| g.id == guild_id)?;
        guild.member(user_id).map(|m| m.roles.clone())
    }

    /// Every REST call so far (the last 100,000).
    pub fn rest_log(&self) -> Vec<RestCall> {
        lock(&self.shared.rest_log).all()
    }

    /// Injects an INTERACTION_CREATE from a member.
    ///
    /// # Errors
    ///
    /// Unknown guild, channel or member; options that are not Discord's option format; or
    /// no session covering the guild ([`SimError::NotCovered`]).
    pub fn inject_interaction(
        &self,
        request: InteractionRequest,
    ) -> Result<InjectedInteraction, SimError> {
        inject_interaction(&self.shared, request)
    }

    /// What the bot answered to an interaction (callback, edits, followups, timings).
    pub fn interaction_responses(&self, id: u64) -> Option<InteractionRecord> {
        interaction_record(&self.shared, id)
    }

    /// Posts a message as a member typed it (`!role add Chess`) and dispatches its
    /// MESSAGE_CREATE on the guild's shard, with the member object, counted in the ground
    /// truth like any other message. When no session covers the guild, the message is
    /// stored all the same and [`InjectedMessage::dispatched`] is false.
    ///
    /// # Errors
    ///
    /// Unknown guild, channel or member; a channel that is not a text channel or thread; or
    /// content that is empty or longer than 2000 characters.
    pub fn inject_message(&self, request: MessageRequest) -> Result<InjectedMessage, SimError> {
        messages::inject(&self.shared, request)
    }

    /// What the bot posted in a channel with `POST /channels/{id}/messages`, oldest first
    /// (the last 100,000 bot messages across all channels are kept).
    pub fn bot_messages(&self, channel_id: u64) -> Vec<BotMessage> {
        lock(&self.shared.messages).bot_messages(channel_id)
    }

    /// Injects a fault.
    ///
    /// # Errors
    ///
    /// [`SimError::NoConnection`] when a gateway fault names a shard without a connected
    /// session.
    pub fn inject_fault(&self, fault: Fault) -> Result<(), SimError> {
        crate::faults::inject(&self.shared, fault)
    }

    /// Changes the traffic rate (events per second; 0 stops traffic).
    pub fn set_rate(&self, rate: f64) {
        self.shared.traffic.set_rate(rate);
    }

    /// Queues `n` MESSAGE_CREATE to be sent as fast as clients read them.
    pub fn firehose(&self, n: u64) {
        self.shared.traffic.firehose(n);
    }

    /// Sessions, connected shards and traffic settings.
    pub fn status(&self) -> Status {
        status(&self.shared)
    }

    /// Closes gateway connections (1001), finishes in-flight HTTP requests and stops all
    /// tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        tracing::info!("simulator stopped");
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.tasks.abort_all();
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks, which is not allowed inside another one.
            runtime.shutdown_background();
        }
    }
}

pub(crate) fn inject_interaction(
    shared: &Shared,
    request: InteractionRequest,
) -> Result<InjectedInteraction, SimError> {
    let mut world = shared.world();
    let invocation = interactions::invocation_for(shared, &world, request)?;
    interactions::dispatch(shared, &mut world, invocation)
}

pub(crate) fn interaction_record(shared: &Shared, id: u64) -> Option<InteractionRecord> {
    lock(&shared.interactions).get(id).map(|e| e.record.clone())
}

pub(crate) fn status(shared: &Shared) -> Status {
    let sessions: Vec<SessionStatus> = shared.hub.all().iter().map(|s| s.status()).collect();
    let mut shards_connected: Vec<u32> = sessions
        .iter()
        .filter(|s| s.connected)
        .map(|s| s.shard[0])
        .collect();
    shards_connected.sort_unstable();
    shards_connected.dedup();
    Status {
        sessions,
        shards_connected,
        rate: shared.traffic.rate(),
        firehose_pending: shared
            .traffic
            .firehose_pending
            .load(std::sync::atomic::Ordering::Relaxed),
        uptime_ms: u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
