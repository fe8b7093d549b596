//! Counters and latency histograms the runtime keeps while it works, read by
//! the demo's progress display and summary, and forwarded to the process's
//! metrics registry (Prometheus, StatsD) when one is attached.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use guildscope_store::RowCounts;
use guildscope_telemetry::metrics::{self, Metrics};
use hdrhistogram::Histogram;

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// How many samples were recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

/// A latency histogram from 1 µs to 60 s with three significant digits.
struct Latency(Mutex<Histogram<u64>>);

impl Latency {
    fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts, so this cannot fail.
        #[allow(clippy::expect_used)]
        let histogram = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Self(Mutex::new(histogram))
    }

    fn record(&self, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        if let Ok(mut histogram) = self.0.lock() {
            // `clamp` keeps the value inside the bounds, so recording cannot fail.
            let _ = histogram.record(micros);
        }
    }

    fn summary(&self) -> LatencySummary {
        let Ok(h) = self.0.lock() else {
            return LatencySummary::default();
        };
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// What the bot has done so far. Shared behind an `Arc`; cheap to update.
pub struct BotStats {
    events: Mutex<BTreeMap<&'static str, u64>>,
    events_total: AtomicU64,
    member_syncs: AtomicU64,
    commands_ok: AtomicU64,
    commands_user_error: AtomicU64,
    commands_failed: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    rows: Mutex<RowCounts>,
    event_latency: Latency,
    command_latency: Latency,
    commit_latency: Latency,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for BotStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotStats")
            .field("events_total", &self.events_total)
            .finish()
    }
}

impl Default for BotStats {
    fn default() -> Self {
        Self {
            events: Mutex::default(),
            events_total: AtomicU64::new(0),
            member_syncs: AtomicU64::new(0),
            commands_ok: AtomicU64::new(0),
            commands_user_error: AtomicU64::new(0),
            commands_failed: AtomicU64::new(0),
            errors: Mutex::default(),
            rows: Mutex::default(),
            event_latency: Latency::new(),
            command_latency: Latency::new(),
            commit_latency: Latency::new(),
            metrics: None,
        }
    }
}

/// How a command ended, as counted and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command did what was asked.
    Ok,
    /// The user asked for something they may not have or that makes no sense.
    UserError,
    /// Something failed on our side or Discord's.
    Error,
}

impl Outcome {
    /// The name used in spans and metrics: `ok`, `user_error` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::UserError => "user_error",
            Self::Error => "error",
        }
    }

    fn metric(self) -> metrics::Outcome {
        match self {
            Self::Ok => metrics::Outcome::Ok,
            Self::UserError => metrics::Outcome::UserError,
            Self::Error => metrics::Outcome::Error,
        }
    }
}

/// Counts Discord REST calls in the metrics registry.
#[derive(Debug)]
pub struct RestMetrics(pub Arc<Metrics>);

impl guildscope_discord::RestObserver for RestMetrics {
    fn request(&self, route: &'static str, status: Option<u16>, ratelimit_wait: Duration) {
        self.0.rest_request(route, status, ratelimit_wait);
    }
}

/// A point-in-time copy of [`BotStats`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Events handled, by dispatch name.
    pub events: BTreeMap<&'static str, u64>,
    /// Events handled in all.
    pub events_total: u64,
    /// Commands answered successfully.
    pub commands_ok: u64,
    /// Commands answered with a refusal or usage message.
    pub commands_user_error: u64,
    /// Commands that failed.
    pub commands_failed: u64,
    /// Errors by kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Rows committed per table.
    pub rows: RowCounts,
    /// Time from receiving an event to finishing its handling.
    pub event_latency: LatencySummary,
    /// Time from receiving an interaction to Discord accepting the reply.
    pub command_latency: LatencySummary,
    /// Time from receiving the oldest event of a batch to its commit.
    pub commit_latency: LatencySummary,
}

impl Snapshot {
    /// Commands answered, whatever the outcome.
    pub fn commands_answered(&self) -> u64 {
        self.commands_ok + self.commands_user_error + self.commands_failed
    }

    /// Errors of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl BotStats {
    /// Counters that also feed `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..Self::default()
        }
    }

    /// The metrics registry these counters feed, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Records one handled event and how long it took.
    pub fn event_handled(&self, name: &'static str, elapsed: Duration) {
        if let Ok(mut events) = self.events.lock() {
            *events.entry(name).or_default() += 1;
        }
        self.events_total.fetch_add(1, Ordering::Relaxed);
        self.event_latency.record(elapsed);
        if let Some(metrics) = &self.metrics {
            metrics.gateway_event(name);
        }
    }

    /// Records one answered command.
    pub fn command_answered(&self, command: &str, outcome: Outcome, elapsed: Duration) {
        let counter = match outcome {
            Outcome::Ok => &self.commands_ok,
            Outcome::UserError => &self.commands_user_error,
            Outcome::Error => &self.commands_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.command_latency.record(elapsed);
        if let Some(metrics) = &self.metrics {
            metrics.command(command, outcome.metric(), elapsed);
        }
    }

    /// Counts one error of the given kind.
    pub fn error(&self, kind: &'static str) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(kind).or_default() += 1;
        }
        if let Some(metrics) = &self.metrics {
            metrics.error(kind);
        }
    }

    /// Records a committed batch whose oldest event arrived `elapsed` ago.
    pub fn batch_committed(&self, elapsed: Duration) {
        self.commit_latency.record(elapsed);
    }

    /// Records one store transaction: how long it took and whether it
    /// committed.
    pub fn store_transaction(&self, elapsed: Duration, ok: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.store_batch(elapsed, ok);
        }
    }

    /// Adds committed rows.
    pub fn rows_written(&self, counts: RowCounts) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.add(counts);
        }
        if let Some(metrics) = &self.metrics {
            for (table, rows) in counts.tables() {
                if rows > 0 {
                    metrics.store_rows(table, rows);
                }
            }
        }
    }

    /// Counts member lists reconciled and committed.
    pub fn member_syncs_committed(&self, syncs: u64) {
        self.member_syncs.fetch_add(syncs, Ordering::Relaxed);
    }

    /// Member lists (one per guild sync) reconciled and committed so far.
    pub fn member_syncs(&self) -> u64 {
        self.member_syncs.load(Ordering::Relaxed)
    }

    /// Events handled so far.
    pub fn events_total(&self) -> u64 {
        self.events_total.load(Ordering::Relaxed)
    }

    /// A copy of everything, for display.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            events: self.events.lock().map(|e| e.clone()).unwrap_or_default(),
            events_total: self.events_total.load(Ordering::Relaxed),
            commands_ok: self.commands_ok.load(Ordering::Relaxed),
            commands_user_error: self.commands_user_error.load(Ordering::Relaxed),
            commands_failed: self.commands_failed.load(Ordering::Relaxed),
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            rows: self.rows.lock().map(|r| *r).unwrap_or_default(),
            event_latency: self.event_latency.summary(),
            command_latency: self.command_latency.summary(),
            commit_latency: self.commit_latency.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_samples() {
        let stats = BotStats::default();
        for ms in 1..=100 {
            stats.command_answered("ping", Outcome::Ok, Duration::from_millis(ms));
        }
        let s = stats.snapshot();
        assert_eq!(s.commands_answered(), 100);
        // hdrhistogram keeps three significant digits.
        assert!(
            (49_900..=50_100).contains(&s.command_latency.p50_us),
            "{:?}",
            s.command_latency
        );
        assert!(
            (98_900..=99_100).contains(&s.command_latency.p99_us),
            "{:?}",
            s.command_latency
        );
    }

    #[test]
    fn events_are_counted_by_name() {
        let stats = BotStats::default();
        stats.event_handled("MESSAGE_CREATE", Duration::from_micros(5));
        stats.event_handled("MESSAGE_CREATE", Duration::from_micros(5));
        stats.event_handled("GUILD_CREATE", Duration::from_micros(5));
        let s = stats.snapshot();
        assert_eq!(s.events.get("MESSAGE_CREATE"), Some(&2));
        assert_eq!(s.events_total, 3);
    }
}
