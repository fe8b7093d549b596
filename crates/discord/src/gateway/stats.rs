//! Lock-free gateway counters, shared by every shard task and read by the
//! bot's telemetry.
//!
//! Shards write on the hot path, so each counter is a relaxed atomic in a
//! fixed slot (one per documented dispatch name, one per shard); only
//! undocumented dispatch names, which Discord rarely introduces, go through a
//! small lock.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::convert::names::DISPATCH_NAMES;

/// Undocumented dispatch names kept by name; beyond this they share one slot.
const MAX_UNKNOWN_NAMES: usize = 32;

/// The name under which undocumented dispatches beyond the first 32
/// are counted and published.
pub const UNKNOWN_DISPATCH: &str = "UNKNOWN";

/// Counters describing every shard of a [`Gateway`](crate::Gateway).
#[derive(Debug)]
pub struct GatewayStats {
    /// Dispatches received, per slot of `DISPATCH_NAMES`.
    events: Box<[AtomicU64]>,
    /// Undocumented dispatch names and their counts. The names are leaked
    /// (at most `MAX_UNKNOWN_NAMES` of them) so envelopes can carry them as
    /// `&'static str`.
    unknown_names: Mutex<Vec<(&'static str, u64)>>,
    /// Frames that were not valid JSON or did not have the expected shape.
    parse_errors: AtomicU64,
    /// Frames with an opcode the protocol does not define.
    unknown_opcodes: AtomicU64,
    /// Dispatches with an undocumented name.
    unknown_dispatches: AtomicU64,
    /// Connections opened after the first one, over all shards.
    reconnects: AtomicU64,
    /// RESUMED dispatches.
    resumes: AtomicU64,
    /// READY dispatches, i.e. sessions identified.
    identifies: AtomicU64,
    /// Closes with a code after which a shard must not reconnect.
    fatal_closes: AtomicU64,
    /// Times an envelope had to wait for room on the event bus.
    bus_full: AtomicU64,
    /// Per-shard state.
    shards: Box<[ShardSlot]>,
}

/// One shard's connection, as [`GatewayStats::shard_states`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardState {
    /// The shard number.
    pub shard: u32,
    /// Whether the shard has a session: identified (READY) or resumed
    /// (RESUMED), and not disconnected since.
    pub connected: bool,
    /// The last measured heartbeat round trip; `None` until the first
    /// heartbeat ACK. Kept while the shard reconnects.
    pub latency: Option<Duration>,
}

/// Per-shard state.
#[derive(Debug, Default)]
struct ShardSlot {
    /// Whether the shard has an active session.
    connected: AtomicBool,
    /// Last heartbeat round trip in microseconds; 0 until one was measured.
    latency_micros: AtomicU64,
    /// Dispatches received by this shard.
    events: AtomicU64,
    /// HELLO frames seen, i.e. connections opened.
    connections: AtomicU64,
}

impl GatewayStats {
    /// Counters for `shards` shards, all zero.
    pub fn new(shards: u32) -> Self {
        Self {
            events: DISPATCH_NAMES.iter().map(|_| AtomicU64::new(0)).collect(),
            unknown_names: Mutex::new(Vec::new()),
            parse_errors: AtomicU64::new(0),
            unknown_opcodes: AtomicU64::new(0),
            unknown_dispatches: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            identifies: AtomicU64::new(0),
            fatal_closes: AtomicU64::new(0),
            bus_full: AtomicU64::new(0),
            shards: (0..shards).map(|_| ShardSlot::default()).collect(),
        }
    }

    /// Dispatches received with this name (documented or not), over all shards.
    pub fn events(&self, name: &str) -> u64 {
        if let Some(slot) = crate::convert::names::slot(name) {
            return self.events[slot].load(Ordering::Relaxed);
        }
        self.lock_unknown()
            .iter()
            .find(|(known, _)| *known == name)
            .map_or(0, |(_, count)| *count)
    }

    /// Every dispatch name received at least once, with its count.
    pub fn events_by_name(&self) -> Vec<(&'static str, u64)> {
        let mut counts: Vec<(&'static str, u64)> = DISPATCH_NAMES
            .iter()
            .zip(self.events.iter())
            .map(|(name, count)| (*name, count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        counts.extend(self.lock_unknown().iter().copied());
        counts
    }

    /// Dispatches received, over all names and shards.
    pub fn total_events(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.events.load(Ordering::Relaxed))
            .sum()
    }

    /// Dispatches received by one shard.
    pub fn shard_events(&self, shard: u32) -> u64 {
        self.shard(shard)
            .map_or(0, |slot| slot.events.load(Ordering::Relaxed))
    }

    /// Frames that were garbage, truncated, or not shaped like their name says.
    pub fn parse_errors(&self) -> u64 {
        self.parse_errors.load(Ordering::Relaxed)
    }

    /// Frames with an opcode the gateway protocol does not define.
    pub fn unknown_opcodes(&self) -> u64 {
        self.unknown_opcodes.load(Ordering::Relaxed)
    }

    /// Dispatches with a name Discord does not document.
    pub fn unknown_dispatches(&self) -> u64 {
        self.unknown_dispatches.load(Ordering::Relaxed)
    }

    /// Connections opened after each shard's first, for any reason.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Sessions resumed (RESUMED dispatches).
    pub fn resumes(&self) -> u64 {
        self.resumes.load(Ordering::Relaxed)
    }

    /// Sessions identified (READY dispatches).
    pub fn identifies(&self) -> u64 {
        self.identifies.load(Ordering::Relaxed)
    }

    /// Closes after which a shard stopped for good (bad token, bad intents...).
    pub fn fatal_closes(&self) -> u64 {
        self.fatal_closes.load(Ordering::Relaxed)
    }

    /// Times a shard found the event bus full and waited for the consumer:
    /// the measure of backpressure.
    pub fn bus_full(&self) -> u64 {
        self.bus_full.load(Ordering::Relaxed)
    }

    /// How many shards these counters cover.
    pub fn shard_count(&self) -> u32 {
        u32::try_from(self.shards.len()).unwrap_or(u32::MAX)
    }

    /// Whether the shard currently has an active session.
    pub fn shard_connected(&self, shard: u32) -> bool {
        self.shard(shard)
            .is_some_and(|slot| slot.connected.load(Ordering::Acquire))
    }

    /// Every shard's connection state and heartbeat latency, by shard
    /// number. Reads atomics only: cheap enough for every metrics scrape.
    pub fn shard_states(&self) -> Vec<ShardState> {
        (0..self.shard_count())
            .map(|shard| ShardState {
                shard,
                connected: self.shard_connected(shard),
                latency: self.shard_latency(shard),
            })
            .collect()
    }

    /// The shard's last measured heartbeat round trip.
    pub fn shard_latency(&self, shard: u32) -> Option<Duration> {
        let micros = self.shard(shard)?.latency_micros.load(Ordering::Relaxed);
        (micros > 0).then(|| Duration::from_micros(micros))
    }

    /// Connections the shard opened (1 without any reconnect).
    pub fn shard_connections(&self, shard: u32) -> u64 {
        self.shard(shard)
            .map_or(0, |slot| slot.connections.load(Ordering::Relaxed))
    }

    /// The slot of a shard, if it exists.
    fn shard(&self, shard: u32) -> Option<&ShardSlot> {
        self.shards.get(usize::try_from(shard).ok()?)
    }

    /// The unknown-name table. A poisoned lock only means another shard
    /// panicked mid-update of a plain counter table, so its data is still used.
    fn lock_unknown(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, u64)>> {
        self.unknown_names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a documented dispatch on a shard.
    pub(crate) fn record_event(&self, shard: u32, slot: usize) {
        if let Some(count) = self.events.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(shard) = self.shard(shard) {
            shard.events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an undocumented dispatch and returns the `'static` name the
    /// envelope carries.
    pub(crate) fn record_unknown_event(&self, shard: u32, name: &str) -> &'static str {
        self.unknown_dispatches.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.shard(shard) {
            slot.events.fetch_add(1, Ordering::Relaxed);
        }
        let mut names = self.lock_unknown();
        if let Some(entry) = names.iter_mut().find(|(known, _)| *known == name) {
            entry.1 += 1;
            return entry.0;
        }
        let interned: &'static str = if names.len() < MAX_UNKNOWN_NAMES {
            // Bounded leak: at most MAX_UNKNOWN_NAMES short strings for the
            // life of the process.
            Box::leak(name.to_owned().into_boxed_str())
        } else {
            UNKNOWN_DISPATCH
        };
        if let Some(entry) = names.iter_mut().find(|(known, _)| *known == interned) {
            entry.1 += 1;
        } else {
            names.push((interned, 1));
        }
        interned
    }

    /// Counts a frame that could not be decoded.
    pub(crate) fn record_parse_error(&self) {
        self.parse_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a frame with an undefined opcode.
    pub(crate) fn record_unknown_opcode(&self) {
        self.unknown_opcodes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a HELLO; returns true when it opens a reconnection.
    pub(crate) fn record_hello(&self, shard: u32) -> bool {
        let previous = self
            .shard(shard)
            .map_or(0, |slot| slot.connections.fetch_add(1, Ordering::Relaxed));
        if previous > 0 {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        previous > 0
    }

    /// Counts a READY and marks the shard connected.
    pub(crate) fn record_ready(&self, shard: u32) {
        self.identifies.fetch_add(1, Ordering::Relaxed);
        self.set_connected(shard, true);
    }

    /// Counts a RESUMED and marks the shard connected.
    pub(crate) fn record_resumed(&self, shard: u32) {
        self.resumes.fetch_add(1, Ordering::Relaxed);
        self.set_connected(shard, true);
    }

    /// Counts a fatal close and marks the shard disconnected.
    pub(crate) fn record_fatal_close(&self, shard: u32) {
        self.fatal_closes.fetch_add(1, Ordering::Relaxed);
        self.set_connected(shard, false);
    }

    /// Counts a wait for room on the event bus.
    pub(crate) fn record_bus_full(&self) {
        self.bus_full.fetch_add(1, Ordering::Relaxed);
    }

    /// Records whether the shard has an active session.
    pub(crate) fn set_connected(&self, shard: u32, connected: bool) {
        if let Some(slot) = self.shard(shard) {
            // Release: whoever reads `connected` (Acquire) also sees the
            // READY or RESUMED counted just before.
            slot.connected.store(connected, Ordering::Release);
        }
    }

    /// Records the shard's latest heartbeat round trip.
    pub(crate) fn set_latency(&self, shard: u32, latency: Duration) {
        if let Some(slot) = self.shard(shard) {
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            slot.latency_micros.store(micros, Ordering::Relaxed);
        }
    }
}
