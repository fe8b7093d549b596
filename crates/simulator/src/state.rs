//! The state every task shares: configuration, the world, the gateway hub, interactions,
//! registered commands, REST bookkeeping and counters. One `Arc<Shared>` is handed to the
//! gateway, REST, control and traffic tasks.

use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use tokio::sync::{Notify, watch};

use crate::{
    SimConfig, SimInfo,
    commands::CommandRegistry,
    community::World,
    faults::RestFaults,
    gateway::session::Hub,
    interactions::InteractionRegistry,
    messages::MessageLog,
    rest::{log::RestLog, ratelimit::RateLimiter},
};

/// Locks a std mutex, recovering from poisoning: the simulator's state stays usable for
/// inspection even if a task panicked while holding a lock.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counters that are not per event type.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) identifies: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) interactions_sent: AtomicU64,
    pub(crate) interactions_answered: AtomicU64,
    pub(crate) interactions_late: AtomicU64,
    pub(crate) rest_requests: AtomicU64,
    pub(crate) rest_rate_limited: AtomicU64,
}

impl Stats {
    /// Counts an IDENTIFY; returns its ordinal (used to derive session ids).
    pub(crate) fn identify(&self) -> u64 {
        self.identifies.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn resume(&self) {
        self.resumes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Traffic settings shared with the traffic task.
#[derive(Debug)]
pub(crate) struct TrafficControl {
    rate_bits: AtomicU64,
    pub(crate) firehose_pending: AtomicU64,
    pub(crate) wake: Notify,
}

impl TrafficControl {
    pub(crate) fn new(rate: f64) -> Self {
        Self {
            rate_bits: AtomicU64::new(rate.to_bits()),
            firehose_pending: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    pub(crate) fn rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }

    pub(crate) fn set_rate(&self, rate: f64) {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        self.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
        self.wake.notify_one();
    }

    pub(crate) fn firehose(&self, n: u64) {
        self.firehose_pending.fetch_add(n, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// Everything the simulator's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) info: SimInfo,
    pub(crate) started: Instant,
    /// The bot's application id (fixed; readable without the world lock).
    pub(crate) application_id: u64,
    world: Mutex<World>,
    pub(crate) hub: Hub,
    pub(crate) interactions: Mutex<InteractionRegistry>,
    /// Injected messages and what the bot posted in channels.
    pub(crate) messages: Mutex<MessageLog>,
    pub(crate) commands: Mutex<CommandRegistry>,
    pub(crate) rest_log: Mutex<RestLog>,
    pub(crate) rest_faults: Mutex<RestFaults>,
    pub(crate) ratelimits: Mutex<RateLimiter>,
    pub(crate) traffic: TrafficControl,
    pub(crate) stats: Stats,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn new(
        config: SimConfig,
        info: SimInfo,
        world: World,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            hub: Hub::new(config.resume_window),
            ratelimits: Mutex::new(RateLimiter::new(&config)),
            traffic: TrafficControl::new(config.rate),
            config,
            info,
            started: Instant::now(),
            application_id: world.bot.application_id,
            world: Mutex::new(world),
            interactions: Mutex::new(InteractionRegistry::default()),
            messages: Mutex::new(MessageLog::default()),
            commands: Mutex::new(CommandRegistry::default()),
            rest_log: Mutex::new(RestLog::default()),
            rest_faults: Mutex::new(RestFaults::default()),
            stats: Stats::default(),
            shutdown,
        }
    }

    /// The world lock. Lock order: world, then the hub's session list, then a session.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
}
