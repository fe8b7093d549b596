//! What the registry holds, family by family, in a fixed order with samples sorted by
//! label value and `"other"` last ([`expose`]), written out by an [`Exposition`]: the
//! Prometheus text exposition format, version 0.0.4, with `# HELP` and `# TYPE` for
//! every family ([`render`]), or OTLP metrics ([`otlp`](super::otlp)).
//!
//! Durations are kept in nanoseconds and printed as exact decimal seconds, so a bucket
//! bound reads `0.0025`, never `0.0025000000000000005`.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use super::cells::{Counter, Histogram, LabelMap, OTHER};
use super::registry::{GuildCell, Metrics, Outcome, Status};

/// What a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// A sample's value: a count, or a duration in nanoseconds shown in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Number {
    Count(u64),
    Seconds(u64),
}

/// Where the families go. Each family is announced, then its samples (or histograms)
/// follow; label values are shown with `Display`.
pub(super) trait Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str);
    fn sample(&mut self, name: &str, labels: &[(&str, &dyn fmt::Display)], value: Number);
    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &dyn fmt::Display)],
        histogram: &Histogram,
    );
}

/// Renders the whole registry in the Prometheus text format. Writing to a `String`
/// cannot fail, so `fmt` results are ignored throughout.
pub(super) fn render(metrics: &Metrics) -> String {
    let mut out = Text(String::with_capacity(16 * 1024));
    expose(metrics, &mut out);
    out.0
}

/// Writes every family of the registry, and the process's own, to `out`.
pub(super) fn expose(metrics: &Metrics, out: &mut dyn Exposition) {
    out.family(
        "guildscope_build_info",
        Kind::Gauge,
        "Always 1; labelled with the running build.",
    );
    out.sample(
        "guildscope_build_info",
        &[
            ("version", &metrics.build.version),
            ("git_sha", &metrics.build.git_sha),
        ],
        Number::Count(1),
    );

    commands(out, metrics);
    gateway(out, metrics);

    out.family("guildscope_messages_total", Kind::Counter, "Messages seen.");
    out.sample(
        "guildscope_messages_total",
        &[],
        Number::Count(metrics.messages.get()),
    );

    rest(out, metrics);
    store(out, metrics);
    guilds(out, metrics);

    out.family("guildscope_errors_total", Kind::Counter, "Errors, by kind.");
    counters(out, "guildscope_errors_total", &metrics.errors, |cell| {
        cell.count.get()
    });

    out.family(
        "guildscope_telemetry_dropped_total",
        Kind::Counter,
        "Telemetry items a sink dropped rather than block the caller.",
    );
    counters(
        out,
        "guildscope_telemetry_dropped_total",
        &metrics.dropped,
        load,
    );

    out.family(
        "guildscope_metrics_scrapes_total",
        Kind::Counter,
        "Scrapes of the Prometheus endpoint.",
    );
    out.sample(
        "guildscope_metrics_scrapes_total",
        &[],
        Number::Count(load(&metrics.scrapes)),
    );

    folded(out, metrics);
    process(out);
}

fn commands(out: &mut dyn Exposition, metrics: &Metrics) {
    let cells = metrics.commands.read();
    let mut sorted: Vec<_> = cells
        .iter()
        .map(|(name, cell)| (&**name, &**cell))
        .collect();
    sorted.sort_unstable_by_key(|&(name, _)| name);
    sorted.extend(metrics.commands.other().map(|cell| (OTHER, cell)));

    out.family(
        "guildscope_commands_total",
        Kind::Counter,
        "Commands run, by command and outcome (ok, user_error, error).",
    );
    for &(command, cell) in &sorted {
        for outcome in Outcome::ALL {
            out.sample(
                "guildscope_commands_total",
                &[("command", &command), ("outcome", &outcome.as_str())],
                Number::Count(cell.outcome(outcome)),
            );
        }
    }

    out.family(
        "guildscope_command_duration_seconds",
        Kind::Histogram,
        "How long commands took, from the interaction to the answer.",
    );
    for &(command, cell) in &sorted {
        out.histogram(
            "guildscope_command_duration_seconds",
            &[("command", &command)],
            &cell.duration,
        );
    }
}

fn gateway(out: &mut dyn Exposition, metrics: &Metrics) {
    out.family(
        "guildscope_gateway_events_total",
        Kind::Counter,
        "Gateway dispatches received, by event.",
    );
    counters(
        out,
        "guildscope_gateway_events_total",
        &metrics.events,
        Counter::get,
    );

    let cells = metrics.shards.read();
    let mut sorted: Vec<_> = cells
        .iter()
        .map(|(&shard, cell)| (Label::Number(shard.into()), &**cell))
        .collect();
    sorted.sort_unstable_by_key(|&(shard, _)| shard);
    sorted.extend(metrics.shards.other().map(|cell| (Label::Other, cell)));

    out.family(
        "guildscope_gateway_latency_seconds",
        Kind::Gauge,
        "Last heartbeat round trip, by shard; absent while unknown.",
    );
    for &(shard, cell) in &sorted {
        if let Some(latency) = cell.latency_nanos() {
            out.sample(
                "guildscope_gateway_latency_seconds",
                &[("shard", &shard)],
                Number::Seconds(latency),
            );
        }
    }

    out.family(
        "guildscope_shard_connected",
        Kind::Gauge,
        "1 while the shard's gateway connection is up, else 0.",
    );
    for &(shard, cell) in &sorted {
        if let Some(connected) = cell.connected() {
            out.sample(
                "guildscope_shard_connected",
                &[("shard", &shard)],
                Number::Count(connected.into()),
            );
        }
    }
}

fn rest(out: &mut dyn Exposition, metrics: &Metrics) {
    let cells = metrics.routes.read();
    let mut sorted: Vec<_> = cells
        .iter()
        .map(|(&route, cell)| (route, &**cell))
        .collect();
    sorted.sort_unstable_by_key(|&(route, _)| route);
    sorted.extend(metrics.routes.other().map(|cell| (OTHER, cell)));

    out.family(
        "guildscope_rest_requests_total",
        Kind::Counter,
        "REST requests, by route and response status (\"none\" when no response came).",
    );
    for &(route, cell) in &sorted {
        let statuses = cell.statuses.read();
        let mut by_status: Vec<_> = statuses
            .iter()
            .map(|(&status, cell)| {
                let label = match status {
                    Status::Code(code) => Label::Number(code.into()),
                    Status::None => Label::None,
                };
                (label, &**cell)
            })
            .collect();
        by_status.sort_unstable_by_key(|&(status, _)| status);
        by_status.extend(cell.statuses.other().map(|cell| (Label::Other, cell)));
        for (status, cell) in by_status {
            out.sample(
                "guildscope_rest_requests_total",
                &[("route", &route), ("status", &status)],
                Number::Count(cell.count.get()),
            );
        }
    }

    out.family(
        "guildscope_rest_ratelimit_wait_seconds",
        Kind::Histogram,
        "Time REST requests waited for the rate limiter, by route.",
    );
    for &(route, cell) in &sorted {
        out.histogram(
            "guildscope_rest_ratelimit_wait_seconds",
            &[("route", &route)],
            &cell.ratelimit_wait,
        );
    }
}

fn store(out: &mut dyn Exposition, metrics: &Metrics) {
    out.family(
        "guildscope_store_rows_total",
        Kind::Counter,
        "Rows written to the statistics store, by table.",
    );
    counters(
        out,
        "guildscope_store_rows_total",
        &metrics.tables,
        Counter::get,
    );

    out.family(
        "guildscope_store_batch_seconds",
        Kind::Histogram,
        "How long committing one batch of store writes took.",
    );
    out.histogram("guildscope_store_batch_seconds", &[], &metrics.store_batch);

    out.family(
        "guildscope_store_batch_failures_total",
        Kind::Counter,
        "Store batches that failed to commit (they are retried).",
    );
    out.sample(
        "guildscope_store_batch_failures_total",
        &[],
        Number::Count(load(&metrics.store_batch_failures)),
    );
}

fn guilds(out: &mut dyn Exposition, metrics: &Metrics) {
    let table = metrics.guilds.read();
    let mut sorted: Vec<_> = table
        .cells
        .iter()
        .filter(|(_, cell)| cell.labelled)
        .map(|(&id, cell)| (id, cell))
        .collect();
    sorted.sort_unstable_by_key(|&(id, _)| id);
    let folded: Vec<_> = table.cells.values().filter(|cell| !cell.labelled).collect();

    let families: [(&str, &str, GuildGauge); 3] = [
        ("guildscope_guild_members", "Members, by guild.", |cell| {
            &cell.members
        }),
        ("guildscope_guild_channels", "Channels, by guild.", |cell| {
            &cell.channels
        }),
        (
            "guildscope_help_threads_in_use",
            "Help threads currently claimed, by guild.",
            |cell| &cell.help_threads,
        ),
    ];
    for (name, help, gauge) in families {
        out.family(name, Kind::Gauge, help);
        for &(id, cell) in &sorted {
            out.sample(
                name,
                &[("guild", &Label::Number(id))],
                Number::Count(load(gauge(cell))),
            );
        }
        if !folded.is_empty() {
            let sum = folded
                .iter()
                .fold(0_u64, |sum, cell| sum.wrapping_add(load(gauge(cell))));
            out.sample(name, &[("guild", &Label::Other)], Number::Count(sum));
        }
    }
}

/// Picks one gauge out of a guild's cell.
type GuildGauge = fn(&GuildCell) -> &AtomicU64;

fn folded(out: &mut dyn Exposition, metrics: &Metrics) {
    out.family(
        "guildscope_metrics_labels_folded_total",
        Kind::Counter,
        "Updates recorded under \"other\" because their label had reached its cap of distinct values.",
    );
    let mut status = 0;
    for cell in metrics.routes.read().values() {
        status += cell.statuses.folded();
    }
    if let Some(cell) = metrics.routes.other() {
        status += cell.statuses.folded();
    }
    let mut counts = [
        (metrics.channels.label(), metrics.channels.folded()),
        (metrics.commands.label(), metrics.commands.folded()),
        (metrics.events.label(), metrics.events.folded()),
        ("guild", metrics.guilds.folded()),
        (metrics.errors.label(), metrics.errors.folded()),
        (metrics.routes.label(), metrics.routes.folded()),
        (metrics.shards.label(), metrics.shards.folded()),
        (metrics.dropped.label(), metrics.dropped.folded()),
        ("status", status),
        (metrics.tables.label(), metrics.tables.folded()),
    ];
    counts.sort_unstable_by_key(|&(label, _)| label);
    for (label, count) in counts {
        out.sample(
            "guildscope_metrics_labels_folded_total",
            &[("label", &label)],
            Number::Count(count),
        );
    }
}

/// Renders the process families from `/proc/self`; a file that cannot be read leaves its
/// family out rather than failing the scrape.
#[cfg(target_os = "linux")]
fn process(out: &mut dyn Exposition) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let stat = stat.as_deref().and_then(proc::parse_stat);
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| proc::parse_boot_time(&text));
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| proc::parse_rss_bytes(&text));

    if let (Some(stat), Some(boot_time)) = (stat, boot_time) {
        out.family(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since the Unix epoch, in seconds.",
        );
        let start = boot_time
            .saturating_mul(1_000_000_000)
            .saturating_add(proc::ticks_to_nanos(stat.start_ticks));
        out.sample("process_start_time_seconds", &[], Number::Seconds(start));
    }
    if let Some(rss) = rss {
        out.family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size, in bytes.",
        );
        out.sample("process_resident_memory_bytes", &[], Number::Count(rss));
    }
    if let Some(stat) = stat {
        out.family(
            "process_cpu_seconds_total",
            Kind::Counter,
            "User and system CPU time spent, in seconds.",
        );
        out.sample(
            "process_cpu_seconds_total",
            &[],
            Number::Seconds(proc::ticks_to_nanos(stat.cpu_ticks)),
        );
    }
}

/// Elsewhere there is no `/proc`; the process families are left out.
#[cfg(not(target_os = "linux"))]
fn process(_out: &mut dyn Exposition) {}

/// Parsers for the `/proc` files the process families come from.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) mod proc {
    /// Clock ticks per second in `/proc` (`USER_HZ`), which Linux fixes at 100 for user
    /// space on every architecture it supports, whatever the kernel's own tick rate.
    const USER_HZ: u64 = 100;

    /// What the process families need from `/proc/self/stat`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Stat {
        /// User plus system time, in clock ticks.
        pub(crate) cpu_ticks: u64,
        /// When the process started, in clock ticks since boot.
        pub(crate) start_ticks: u64,
    }

    /// Reads `utime`, `stime` and `starttime` (fields 14, 15 and 22) from
    /// `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses,
    /// so fields are counted from its closing parenthesis, the last one in the line.
    pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
        let (_, rest) = text.rsplit_once(')')?;
        // `rest` starts at field 3 (state), so field n is at index n - 3.
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            cpu_ticks: field(14)?.checked_add(field(15)?)?,
            start_ticks: field(22)?,
        })
    }

    /// Reads the boot time (`btime`, seconds since the Unix epoch) from `/proc/stat`.
    pub(crate) fn parse_boot_time(text: &str) -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Reads the resident set size (`VmRSS`, in kB) from `/proc/<pid>/status`, in bytes.
    pub(crate) fn parse_rss_bytes(text: &str) -> Option<u64> {
        let value = text.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
        let kilobytes = value
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        kilobytes.checked_mul(1024)
    }

    /// Clock ticks in nanoseconds.
    pub(crate) fn ticks_to_nanos(ticks: u64) -> u64 {
        ticks.saturating_mul(1_000_000_000 / USER_HZ)
    }
}

/// Renders one counter per label value of a map, sorted, `"other"` last.
fn counters<V: Send + Sync>(
    out: &mut dyn Exposition,
    name: &str,
    map: &LabelMap<&'static str, V>,
    value: impl Fn(&V) -> u64,
) {
    let cells = map.read();
    let mut sorted: Vec<_> = cells
        .iter()
        .map(|(&label, cell)| (label, &**cell))
        .collect();
    sorted.sort_unstable_by_key(|&(label, _)| label);
    sorted.extend(map.other().map(|cell| (OTHER, cell)));
    for (label, cell) in sorted {
        out.sample(name, &[(map.label(), &label)], Number::Count(value(cell)));
    }
}

fn load(value: &AtomicU64) -> u64 {
    value.load(Ordering::Relaxed)
}

/// A label value that is a number, `"none"` or `"other"`, sorted in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Number(u64),
    None,
    Other,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Number(n) => write!(f, "{n}"),
            Label::None => f.write_str("none"),
            Label::Other => f.write_str(OTHER),
        }
    }
}

/// Nanoseconds printed as exact decimal seconds with trailing zeros trimmed: `0.0025`,
/// `1`, `12.5`.
pub(super) struct Seconds(pub(super) u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = self.0 % 1_000_000_000;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// The Prometheus text being written.
struct Text(String);

impl Exposition for Text {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        // The help texts are constants without backslashes or newlines, so they need no
        // escaping.
        let kind = kind.as_str();
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &dyn fmt::Display)], value: Number) {
        self.0.push_str(name);
        self.labels(labels);
        let _ = match value {
            Number::Count(count) => writeln!(self.0, " {count}"),
            Number::Seconds(nanos) => writeln!(self.0, " {}", Seconds(nanos)),
        };
    }

    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &dyn fmt::Display)],
        histogram: &Histogram,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0_u64;
        let mut bounds = histogram.bounds().iter();
        for count in histogram.counts() {
            cumulative = cumulative.wrapping_add(count);
            let le: &dyn fmt::Display = match bounds.next() {
                Some(&bound) => &Seconds(bound),
                None => &"+Inf",
            };
            let mut with_le: Vec<(&str, &dyn fmt::Display)> = labels.to_vec();
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, Number::Count(cumulative));
        }
        self.sample(
            &format!("{name}_sum"),
            labels,
            Number::Seconds(histogram.sum_nanos()),
        );
        self.sample(&format!("{name}_count"), labels, Number::Count(cumulative));
    }
}

impl Text {
    fn labels(&mut self, labels: &[(&str, &dyn fmt::Display)]) {
        if labels.is_empty() {
            return;
        }
        self.0.push('{');
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(name);
            self.0.push_str("=\"");
            let _ = write!(Escaped(&mut self.0), "{value}");
            self.0.push('"');
        }
        self.0.push('}');
    }
}

/// Writes label value text escaped per the format: `\` as `\\`, `"` as `\"`, and a line
/// feed as `\n`.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '\\' => self.0.push_str("\\\\"),
                '"' => self.0.push_str("\\\""),
                '\n' => self.0.push_str("\\n"),
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}
