//! [`Metrics`], the process's one registry: what the hot path calls, and the cells those
//! calls update.
//!
//! Every update is synchronous: a read lock on a label map and a few relaxed atomic
//! operations, plus a `try_send` per StatsD metric when a [`Statsd`] handle was given.
//! Nothing here awaits or touches a socket.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::cells::{
    COMMAND_BUCKETS, Counter, Histogram, LabelKey, LabelMap, OTHER, RATELIMIT_BUCKETS,
    STORE_BATCH_BUCKETS, nanos,
};
use crate::statsd::Statsd;

/// How a command ended, as counted in `guildscope_commands_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The command did what was asked.
    Ok,
    /// The user asked for something the command refuses (bad arguments, missing
    /// permissions); the command answered with an explanation.
    UserError,
    /// Something failed on guildscope's side.
    Error,
}

impl Outcome {
    /// Every outcome, in the order they are rendered.
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::UserError, Outcome::Error];

    /// The label value: `"ok"`, `"user_error"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::UserError => "user_error",
            Outcome::Error => "error",
        }
    }

    fn index(self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::UserError => 1,
            Outcome::Error => 2,
        }
    }
}

/// What `guildscope_build_info{version,git_sha}` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The release version, e.g. `0.1.0`.
    pub version: String,
    /// The commit the binary was built from.
    pub git_sha: String,
}

/// The gauges kept per guild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuildGauges {
    /// Members in the guild.
    pub members: u64,
    /// Channels in the guild.
    pub channels: u64,
    /// Help threads currently claimed.
    pub help_threads_in_use: u64,
}

/// How many distinct values each label may take before further values are folded into
/// `"other"` (and counted in `guildscope_metrics_labels_folded_total{label}`).
///
/// The limits bound both the series Prometheus stores and the registry's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelLimits {
    /// Distinct `command` values.
    pub commands: usize,
    /// Distinct channel names given to [`Metrics::message`] (they only name StatsD
    /// counters, `channels.<name>`).
    pub channels: usize,
    /// Distinct `guild` values. Guilds past the cap are still tracked, and rendered as
    /// one `guild="other"` series holding their sum; when a guild with its own series
    /// leaves, the folded guild with the lowest id takes its place.
    pub guilds: usize,
    /// Distinct `shard` values. Shards past the cap share one `shard="other"` series,
    /// which holds whichever of their values was written last.
    pub shards: usize,
    /// Distinct `event` values.
    pub events: usize,
    /// Distinct `route` values.
    pub routes: usize,
    /// Distinct `table` values.
    pub tables: usize,
    /// Distinct `kind` values of `guildscope_errors_total`.
    pub error_kinds: usize,
    /// Distinct `sink` values of `guildscope_telemetry_dropped_total`.
    pub sinks: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        Self {
            commands: 200,
            channels: 1_000,
            guilds: 1_000,
            shards: 1_024,
            events: 200,
            routes: 200,
            tables: 100,
            error_kinds: 200,
            sinks: 32,
        }
    }
}

/// A function run before each render, to refresh gauges from live state.
type ScrapeHook = Arc<dyn Fn(&Metrics) + Send + Sync>;

/// guildscope's metrics registry: one per process, shared as `Arc<Metrics>`.
///
/// Update methods are cheap enough for the hot path: they never block on I/O or await,
/// and after a label set's first use they do not allocate. Each label's distinct values
/// are capped (see [`LabelLimits`]); the rest are folded into `"other"`. With a
/// [`Statsd`] handle, updates are also sent to StatsD under the reference community bot's
/// names. [`render`](Self::render) produces the Prometheus text format.
pub struct Metrics {
    pub(super) build: BuildInfo,
    statsd: Option<Statsd>,
    pub(super) commands: LabelMap<Box<str>, CommandCell>,
    pub(super) events: LabelMap<&'static str, Counter>,
    pub(super) messages: Counter,
    /// StatsD name (`channels.<sanitised name>`) per channel name; used only with StatsD.
    pub(super) channels: LabelMap<Box<str>, Box<str>>,
    pub(super) shards: LabelMap<u32, ShardCell>,
    pub(super) routes: LabelMap<&'static str, RouteCell>,
    pub(super) tables: LabelMap<&'static str, Counter>,
    pub(super) store_batch: Histogram,
    pub(super) store_batch_failures: AtomicU64,
    pub(super) guilds: Guilds,
    /// Held from working out the guild totals to handing their gauges to StatsD, so
    /// the gauges go out in the order the totals were reached.
    guild_totals: std::sync::Mutex<()>,
    pub(super) errors: LabelMap<&'static str, ErrorCell>,
    pub(super) dropped: LabelMap<&'static str, AtomicU64>,
    pub(super) scrapes: AtomicU64,
    /// When counting began: the start of every cumulative total in an OTLP export.
    pub(super) started: std::time::SystemTime,
    hooks: RwLock<Vec<ScrapeHook>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("build", &self.build)
            .field("statsd", &self.statsd.is_some())
            .finish_non_exhaustive()
    }
}

/// Per command: a counter per outcome, the duration histogram and the StatsD names.
pub(super) struct CommandCell {
    pub(super) outcomes: [Counter; 3],
    pub(super) duration: Histogram,
    statsd_count: Box<str>,
    statsd_timing: Box<str>,
}

impl CommandCell {
    fn new(name: &str) -> Self {
        Self {
            outcomes: Default::default(),
            duration: Histogram::new(COMMAND_BUCKETS),
            statsd_count: format!("commands.{name}").into(),
            statsd_timing: format!("command_duration.{name}").into(),
        }
    }

    /// The count for `outcome`.
    pub(super) fn outcome(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(outcome.index()).map_or(0, Counter::get)
    }
}

/// Latency not known (no heartbeat acknowledged yet).
const LATENCY_UNKNOWN: u64 = u64::MAX;
/// Connection state never reported.
const CONNECTED_UNKNOWN: u8 = u8::MAX;

/// Per shard: the last heartbeat latency and whether it is connected.
pub(super) struct ShardCell {
    latency_nanos: AtomicU64,
    connected: AtomicU8,
}

impl ShardCell {
    fn new() -> Self {
        Self {
            latency_nanos: AtomicU64::new(LATENCY_UNKNOWN),
            connected: AtomicU8::new(CONNECTED_UNKNOWN),
        }
    }

    /// The latency in nanoseconds, if known.
    pub(super) fn latency_nanos(&self) -> Option<u64> {
        let latency = self.latency_nanos.load(Ordering::Relaxed);
        (latency != LATENCY_UNKNOWN).then_some(latency)
    }

    /// 1 when connected, 0 when not, `None` if never reported.
    pub(super) fn connected(&self) -> Option<u8> {
        let connected = self.connected.load(Ordering::Relaxed);
        (connected != CONNECTED_UNKNOWN).then_some(connected)
    }
}

/// The `status` label of `guildscope_rest_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Status {
    /// An HTTP status code, 100 to 999.
    Code(u16),
    /// No response came (connection error, timeout).
    None,
}

impl LabelKey for Status {
    fn is_other(&self) -> bool {
        false
    }
}

/// Per route: requests by status and the rate-limit wait histogram.
pub(super) struct RouteCell {
    /// Every valid status fits (at most 901 values), so this map never folds except for
    /// codes outside 100 to 999, which no HTTP client produces.
    pub(super) statuses: LabelMap<Status, StatusCell>,
    pub(super) ratelimit_wait: Histogram,
}

impl RouteCell {
    fn new() -> Self {
        Self {
            statuses: LabelMap::new("status", usize::MAX, StatusCell::new(None)),
            ratelimit_wait: Histogram::new(RATELIMIT_BUCKETS),
        }
    }
}

/// Requests with one status on one route.
pub(super) struct StatusCell {
    pub(super) count: Counter,
    /// `errors.api_error_<status>` for statuses of 400 and up.
    statsd_error: Option<Box<str>>,
}

impl StatusCell {
    fn new(status: Option<Status>) -> Self {
        let statsd_error = match status {
            Some(Status::Code(code)) if code >= 400 => {
                Some(format!("errors.api_error_{code}").into())
            }
            _ => None,
        };
        Self {
            count: Counter::default(),
            statsd_error,
        }
    }
}

/// Per error kind: the count and the StatsD name `errors.<kind>`.
pub(super) struct ErrorCell {
    pub(super) count: Counter,
    statsd_name: Box<str>,
}

impl ErrorCell {
    fn new(kind: &str) -> Self {
        Self {
            count: Counter::default(),
            statsd_name: format!("errors.{kind}").into(),
        }
    }
}

/// The per-guild gauges.
///
/// Unlike the other labels, a guild past the cap keeps its own cell (its gauges are
/// replaced, not added to, so a sum can only be kept right by knowing each part); it is
/// rendered inside the one `guild="other"` series, which is the sum of such guilds.
pub(super) struct Guilds {
    cap: usize,
    table: RwLock<GuildTable>,
    folded: AtomicU64,
    total_members: AtomicU64,
    total_help_threads: AtomicU64,
}

/// The guild cells and how many of them have their own series.
pub(super) struct GuildTable {
    pub(super) cells: HashMap<u64, GuildCell>,
    labelled: usize,
}

/// One guild's gauges.
pub(super) struct GuildCell {
    /// Whether the guild has its own series (else it is part of `guild="other"`).
    pub(super) labelled: bool,
    pub(super) members: AtomicU64,
    pub(super) channels: AtomicU64,
    pub(super) help_threads: AtomicU64,
}

impl Guilds {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            table: RwLock::new(GuildTable {
                cells: HashMap::new(),
                labelled: 0,
            }),
            folded: AtomicU64::new(0),
            total_members: AtomicU64::new(0),
            total_help_threads: AtomicU64::new(0),
        }
    }

    /// Sets a guild's gauges and returns the new totals of members and help threads in
    /// use over all guilds.
    fn set(&self, guild_id: u64, gauges: GuildGauges) -> (u64, u64) {
        {
            let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(cell) = table.cells.get(&guild_id) {
                return self.update(cell, gauges);
            }
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let labelled = table.labelled < self.cap;
        let table = &mut *table;
        let cell = table.cells.entry(guild_id).or_insert_with(|| {
            if labelled {
                table.labelled += 1;
            }
            GuildCell {
                labelled,
                members: AtomicU64::new(0),
                channels: AtomicU64::new(0),
                help_threads: AtomicU64::new(0),
            }
        });
        self.update(cell, gauges)
    }

    fn update(&self, cell: &GuildCell, gauges: GuildGauges) -> (u64, u64) {
        if !cell.labelled {
            self.folded.fetch_add(1, Ordering::Relaxed);
        }
        cell.channels.store(gauges.channels, Ordering::Relaxed);
        // The totals move by the difference, so they stay the exact sum of the cells
        // however updates interleave (removal takes the write lock, so it cannot).
        let members = add_difference(&self.total_members, &cell.members, gauges.members);
        let help = add_difference(
            &self.total_help_threads,
            &cell.help_threads,
            gauges.help_threads_in_use,
        );
        (members, help)
    }

    /// Forgets a guild; returns the new totals, or `None` if it was not known.
    fn remove(&self, guild_id: u64) -> Option<(u64, u64)> {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let cell = table.cells.remove(&guild_id)?;
        if cell.labelled {
            table.labelled -= 1;
            // Give the freed series to the folded guild with the lowest id, if any, so
            // that guilds past the cap get their own series as others leave. A scan, but
            // leaving a guild is rare.
            let promoted = table
                .cells
                .iter_mut()
                .filter(|(_, cell)| !cell.labelled)
                .min_by_key(|&(&id, _)| id);
            if let Some((_, promoted)) = promoted {
                promoted.labelled = true;
                table.labelled += 1;
            }
        }
        let members = cell.members.load(Ordering::Relaxed);
        let help = cell.help_threads.load(Ordering::Relaxed);
        let members = self
            .total_members
            .fetch_sub(members, Ordering::Relaxed)
            .wrapping_sub(members);
        let help = self
            .total_help_threads
            .fetch_sub(help, Ordering::Relaxed)
            .wrapping_sub(help);
        Some((members, help))
    }

    /// The cells, under a read lock, for rendering.
    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, GuildTable> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Updates of guilds past the cap.
    pub(super) fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }
}

/// Sets `cell` to `value`, moves `total` by the difference, and returns the new total.
fn add_difference(total: &AtomicU64, cell: &AtomicU64, value: u64) -> u64 {
    let difference = value.wrapping_sub(cell.swap(value, Ordering::Relaxed));
    total
        .fetch_add(difference, Ordering::Relaxed)
        .wrapping_add(difference)
}

impl Metrics {
    /// An empty registry reporting `build`, with the default [`LabelLimits`], also
    /// sending to StatsD when `statsd` is given.
    pub fn new(build: BuildInfo, statsd: Option<Statsd>) -> Self {
        Self::with_limits(build, statsd, LabelLimits::default())
    }

    /// An empty registry with the given label limits.
    pub fn with_limits(build: BuildInfo, statsd: Option<Statsd>, limits: LabelLimits) -> Self {
        Self {
            build,
            statsd,
            commands: LabelMap::new("command", limits.commands, CommandCell::new(OTHER)),
            events: LabelMap::new("event", limits.events, Counter::default()),
            messages: Counter::default(),
            channels: LabelMap::new(
                "channel",
                limits.channels,
                format!("channels.{OTHER}").into(),
            ),
            shards: LabelMap::new("shard", limits.shards, ShardCell::new()),
            routes: LabelMap::new("route", limits.routes, RouteCell::new()),
            tables: LabelMap::new("table", limits.tables, Counter::default()),
            store_batch: Histogram::new(STORE_BATCH_BUCKETS),
            store_batch_failures: AtomicU64::new(0),
            guilds: Guilds::new(limits.guilds),
            guild_totals: std::sync::Mutex::new(()),
            errors: LabelMap::new("kind", limits.error_kinds, ErrorCell::new(OTHER)),
            dropped: LabelMap::new("sink", limits.sinks, AtomicU64::new(0)),
            scrapes: AtomicU64::new(0),
            started: std::time::SystemTime::now(),
            hooks: RwLock::new(Vec::new()),
        }
    }

    /// Counts a finished command and records how long it took.
    ///
    /// StatsD: `commands.<command>` +1 and timer `command_duration.<command>`; an
    /// [`Outcome::Error`] also counts `errors.command`, an [`Outcome::UserError`]
    /// `errors.user_error`.
    pub fn command(&self, command: &str, outcome: Outcome, elapsed: Duration) {
        self.commands.with(
            command,
            |name: &str| Box::from(name),
            CommandCell::new,
            |cell| {
                if let Some(count) = cell.outcomes.get(outcome.index()) {
                    count.add(1);
                }
                cell.duration.observe(elapsed);
                if let Some(statsd) = &self.statsd {
                    statsd.count(&cell.statsd_count, 1);
                    statsd.timing(&cell.statsd_timing, elapsed);
                }
            },
        );
        if let Some(statsd) = &self.statsd {
            match outcome {
                Outcome::Ok => {}
                Outcome::UserError => statsd.count("errors.user_error", 1),
                Outcome::Error => statsd.count("errors.command", 1),
            }
        }
    }

    /// Counts one gateway dispatch, by event name (`MESSAGE_CREATE`). Not sent to StatsD.
    pub fn gateway_event(&self, event: &'static str) {
        self.events.with(
            event,
            |_| event,
            |_| Counter::default(),
            |count| count.add(1),
        );
    }

    /// Counts one message. StatsD: `messages` +1 and, when the channel's name is known,
    /// `channels.<name>` +1, with the name lowercased and every character outside
    /// `[a-z0-9_-]` replaced by `_`.
    pub fn message(&self, channel_name: Option<&str>) {
        self.messages.add(1);
        let Some(statsd) = &self.statsd else {
            return;
        };
        statsd.count("messages", 1);
        if let Some(name) = channel_name.filter(|name| !name.is_empty()) {
            self.channels.with(
                name,
                |name: &str| Box::from(name),
                statsd_channel_name,
                |name| {
                    statsd.count(name, 1);
                },
            );
        }
    }

    /// Sets a shard's heartbeat latency; `None` while it is unknown (no heartbeat
    /// acknowledged since the shard connected), which leaves the shard out of
    /// `guildscope_gateway_latency_seconds`.
    pub fn gateway_latency(&self, shard: u32, latency: Option<Duration>) {
        let nanos = latency.map_or(LATENCY_UNKNOWN, |latency| {
            // Keep a real latency from ever reading as "unknown".
            nanos(latency).min(LATENCY_UNKNOWN - 1)
        });
        self.shards.with(
            &shard,
            |&shard| shard,
            |_| ShardCell::new(),
            |cell| cell.latency_nanos.store(nanos, Ordering::Relaxed),
        );
    }

    /// Sets whether a shard's gateway connection is up.
    pub fn shard_connected(&self, shard: u32, connected: bool) {
        self.shards.with(
            &shard,
            |&shard| shard,
            |_| ShardCell::new(),
            |cell| cell.connected.store(u8::from(connected), Ordering::Relaxed),
        );
    }

    /// Counts one REST request on `route` (a route template such as
    /// `POST /channels/{id}/messages`) by response status, `None` when no response came,
    /// and records how long it waited for the rate limiter.
    ///
    /// StatsD: a status of 400 or more counts `errors.api_error_<status>`.
    pub fn rest_request(&self, route: &'static str, status: Option<u16>, ratelimit_wait: Duration) {
        self.routes.with(
            route,
            |_| route,
            |_| RouteCell::new(),
            |cell| {
                cell.ratelimit_wait.observe(ratelimit_wait);
                let count = |status: &StatusCell| {
                    status.count.add(1);
                    if let (Some(statsd), Some(name)) = (&self.statsd, &status.statsd_error) {
                        statsd.count(name, 1);
                    }
                };
                match status {
                    None => cell.statuses.with(
                        &Status::None,
                        |&key| key,
                        |&key| StatusCell::new(Some(key)),
                        count,
                    ),
                    Some(code @ 100..=999) => cell.statuses.with(
                        &Status::Code(code),
                        |&key| key,
                        |&key| StatusCell::new(Some(key)),
                        count,
                    ),
                    Some(_) => cell.statuses.fold(count),
                }
            },
        );
    }

    /// Adds `rows` to the rows written to `table`.
    pub fn store_rows(&self, table: &'static str, rows: u64) {
        self.tables.with(
            table,
            |_| table,
            |_| Counter::default(),
            |count| count.add(rows),
        );
    }

    /// Records one store batch: how long its commit took, and whether it failed.
    pub fn store_batch(&self, elapsed: Duration, ok: bool) {
        self.store_batch.observe(elapsed);
        if !ok {
            self.store_batch_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sets a guild's gauges.
    ///
    /// StatsD: gauges `guild.total_members` and `help.total.in_use`, summed over every
    /// guild.
    pub fn guild(&self, guild_id: u64, gauges: GuildGauges) {
        let _order = self.guild_totals_order();
        let totals = self.guilds.set(guild_id, gauges);
        self.send_guild_totals(totals);
    }

    /// Forgets a guild the bot has left: its series disappear from the next render and
    /// it no longer counts in the StatsD totals.
    pub fn guild_removed(&self, guild_id: u64) {
        let _order = self.guild_totals_order();
        if let Some(totals) = self.guilds.remove(guild_id) {
            self.send_guild_totals(totals);
        }
    }

    /// With StatsD, the lock that keeps the totals' gauges in order (see
    /// `guild_totals`); without it, nothing to keep in order.
    fn guild_totals_order(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.statsd.as_ref().map(|_| {
            self.guild_totals
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    fn send_guild_totals(&self, (members, help_threads): (u64, u64)) {
        if let Some(statsd) = &self.statsd {
            // Gauges are f64 in StatsD; counts of members are far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            {
                statsd.gauge("guild.total_members", members as f64);
                statsd.gauge("help.total.in_use", help_threads as f64);
            }
        }
    }

    /// Counts one error of `kind` (e.g. `event_handler`, `store_write`). StatsD:
    /// `errors.<kind>` +1.
    pub fn error(&self, kind: &'static str) {
        self.errors.with(
            kind,
            |_| kind,
            ErrorCell::new,
            |cell| {
                cell.count.add(1);
                if let Some(statsd) = &self.statsd {
                    statsd.count(&cell.statsd_name, 1);
                }
            },
        );
    }

    /// Adds `n` to what the telemetry sink `sink` has dropped.
    pub fn telemetry_dropped(&self, sink: &'static str, n: u64) {
        self.dropped.with(
            sink,
            |_| sink,
            |_| AtomicU64::new(0),
            |count| count.fetch_add(n, Ordering::Relaxed),
        );
    }

    /// Sets what the telemetry sink `sink` has dropped, for sinks that keep their own
    /// running total. The StatsD handle given to [`Metrics::new`] is read this way
    /// (`sink="statsd"`) before each render.
    pub fn set_telemetry_dropped(&self, sink: &'static str, total: u64) {
        self.dropped.with(
            sink,
            |_| sink,
            |_| AtomicU64::new(0),
            |count| count.store(total, Ordering::Relaxed),
        );
    }

    /// Adds a function run before each [`render`](Self::render) and each OTLP export,
    /// e.g. to refresh gauges from live state. Hooks run in the order they were added,
    /// on the rendering (exporting) thread.
    pub fn on_scrape(&self, hook: Box<dyn Fn(&Metrics) + Send + Sync>) {
        self.hooks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::from(hook));
    }

    /// Runs the scrape hooks, then renders every metric in the Prometheus text
    /// exposition format 0.0.4, families and samples in a stable order.
    pub fn render(&self) -> String {
        self.refresh();
        super::render::render(self)
    }

    /// Runs the scrape hooks and reads the StatsD sink's drops: what every export
    /// does first.
    pub(super) fn refresh(&self) {
        // Cloned so that a hook may itself add hooks without deadlocking.
        let hooks = self
            .hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for hook in hooks {
            hook(self);
        }
        if let Some(statsd) = &self.statsd {
            self.set_telemetry_dropped("statsd", statsd.dropped());
        }
    }

    /// Counts one scrape of the Prometheus endpoint.
    pub(super) fn record_scrape(&self) {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
    }
}

/// `channels.<name>`, lowercased, with every character outside `[a-z0-9_-]` (one per
/// character, not per byte) replaced by `_`.
fn statsd_channel_name(name: &str) -> Box<str> {
    let mut out = String::with_capacity("channels.".len() + name.len());
    out.push_str("channels.");
    out.extend(name.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            c
        } else {
            '_'
        }
    }));
    out.into()
}
