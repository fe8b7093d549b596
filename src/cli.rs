//! The command line as the user typed it. No I/O happens here; `cmd` resolves
//! and validates these values.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// An observability-and-statistics bot for Discord communities.
#[derive(Debug, Parser)]
#[command(name = "guildscope", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot against Discord (or any Discord-compatible server).
    Run(RunArgs),
    /// Run the local Discord simulator alone; prints its URLs and token as JSON.
    Simulate(SimulateArgs),
    /// Run simulator, bot and SQLite together and show what flows.
    Demo(DemoArgs),
    /// Create or upgrade the statistics database, then exit.
    Migrate(MigrateArgs),
    /// Fill in message statistics for a window of the past from each
    /// channel's history (resumable: a rerun of the same window continues).
    Backfill(BackfillArgs),
    /// Forget a user: remove their member and user rows and delete or
    /// anonymise their messages, in one transaction.
    ForgetUser(ForgetUserArgs),
    /// Post a deploy marker (a Grafana annotation and/or a Honeycomb marker)
    /// to the endpoints in `[markers]`.
    Marker(MarkerArgs),
    /// Validate the configuration, show which exporters are on, and check
    /// that each configured endpoint answers.
    CheckConfig(CheckConfigArgs),
    /// Measure throughput (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Where the configuration comes from, shared by the commands that read it.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config file (TOML). Without it, defaults and the environment apply.
    #[arg(long, short = 'c', env = "GUILDSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Statistics database: an SQLite file path or a postgres:// URL.
    #[arg(long, env = "GUILDSCOPE_DATABASE")]
    pub database: Option<String>,
}

/// `guildscope run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Discord REST base URL (default: the real Discord).
    #[arg(long, env = "GUILDSCOPE_API_BASE")]
    pub api_base: Option<String>,
    /// Discord gateway base URL (default: the real Discord).
    #[arg(long, env = "GUILDSCOPE_GATEWAY_BASE")]
    pub gateway_base: Option<String>,
}

/// `guildscope simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks free ports.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Seed of the synthetic community and its traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Traffic in events per second across the community (0: none).
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Number of guilds.
    #[arg(long, default_value_t = 2)]
    pub guilds: u32,
    /// Members per guild.
    #[arg(long, default_value_t = 500)]
    pub members: u32,
    /// Shards the simulator recommends in `GET /gateway/bot`.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
}

/// `guildscope demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to run (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Traffic in events per second.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seed of the synthetic community and its traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SQLite file for the statistics (default: guildscope-demo.db here, recreated).
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Where the Prometheus endpoint listens; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_listen: std::net::SocketAddr,
}

/// `guildscope marker`.
#[derive(Debug, Args)]
pub struct MarkerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What happened, e.g. "deploy v1.4.2".
    #[arg(long)]
    pub text: String,
    /// The marker type (Honeycomb) and a tag (Grafana).
    #[arg(long, default_value = "deploy")]
    pub kind: String,
    /// A link to the change, e.g. the release page or the commit.
    #[arg(long)]
    pub url: Option<String>,
    /// Extra Grafana tags (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// How long the deploy took, for a marker spanning it (e.g. 90s);
    /// without it the marker is a point in time.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// `guildscope check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// How long to wait for each endpoint.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `guildscope migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `guildscope backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Start of the window: YYYY-MM-DD (00:00 UTC) or RFC 3339.
    #[arg(long, value_name = "DATE", value_parser = guildscope_bot::backfill::parse_date)]
    pub since: i64,
    /// End of the window, exclusive: YYYY-MM-DD (00:00 UTC) or RFC 3339.
    /// Without it the window runs up to now, and a rerun catches up.
    #[arg(long, value_name = "DATE", value_parser = guildscope_bot::backfill::parse_date)]
    pub until: Option<i64>,
    /// Only this guild (default: every guild the database knows).
    #[arg(long, value_name = "ID")]
    pub guild: Option<guildscope_model::GuildId>,
    /// Only this channel, with its threads.
    #[arg(long, value_name = "ID")]
    pub channel: Option<guildscope_model::ChannelId>,
    /// Discord REST base URL (default: the real Discord).
    #[arg(long, env = "GUILDSCOPE_API_BASE")]
    pub api_base: Option<String>,
}

/// `guildscope forget-user`.
#[derive(Debug, Args)]
pub struct ForgetUserArgs {
    /// The user's id.
    #[arg(value_name = "ID")]
    pub user: guildscope_model::UserId,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do with their messages (default: `storage.forget_messages`).
    #[arg(long, value_enum)]
    pub messages: Option<ForgetMessages>,
}

/// What `forget-user` does with the user's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForgetMessages {
    /// Delete the message rows.
    Delete,
    /// Keep the rows for channel activity, pointing at no one.
    Anonymise,
}

/// `guildscope bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Gateway dispatch throughput: simulator → twilight → event bus → a
    /// counting handler, MESSAGE_CREATE at full speed, in one process.
    Gateway(BenchGatewayArgs),
    /// Read API latency: seeds a database with synthetic messages (unless
    /// already seeded) and times every statistics query.
    Read(BenchReadArgs),
    /// Ingest throughput: simulator firehose → twilight → event bus → the bot
    /// runtime (collector and batched writer) → committed rows, in one process.
    Ingest(BenchIngestArgs),
    /// Startup sync of one large guild: simulator → twilight → the bot's
    /// member request, chunks and set-wise reconciliation → committed rows,
    /// in one process; then the same sync again against the filled database.
    Sync(BenchSyncArgs),
    /// What telemetry costs: the same workload (commands at a fixed rate,
    /// then a message firehose with commands alongside) with every exporter
    /// off and with every exporter on, alternating in child processes.
    Telemetry(BenchTelemetryArgs),
    /// Command latency under load: slash commands at a steady rate while
    /// the simulator sends messages at another, timed by the simulator from
    /// dispatch to interaction callback.
    Commands(BenchCommandsArgs),
}

/// `guildscope bench commands`.
#[derive(Debug, Args)]
pub struct BenchCommandsArgs {
    /// Commands per second.
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Messages per second the simulated community sends meanwhile.
    #[arg(long, default_value_t = 20_000.0)]
    pub ingest: f64,
    /// How long commands are sent, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Send only these commands of the mix (ping, stats, role, help).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// `guildscope bench telemetry`.
#[derive(Debug, Args)]
pub struct BenchTelemetryArgs {
    /// Messages in the firehose phase.
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// Commands in the fixed-rate phase.
    #[arg(long, default_value_t = 10_000)]
    pub commands: u64,
    /// Commands per second in the fixed-rate phase (a quarter of it during
    /// the firehose).
    #[arg(long, default_value_t = 2_000.0)]
    pub command_rate: f64,
    /// Rounds of off/on pairs.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Which exporters the "on" side turns on (spans, statsd, prometheus,
    /// otlp-metrics),
    /// to see what each costs; all of them by default. The metrics registry
    /// is fed whenever the "on" side runs.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Exporter::ALL)]
    pub exporters: Vec<Exporter>,
    /// How spans and OTLP metrics travel to the receiver.
    #[arg(long, value_enum, default_value_t = BenchProtocol::Grpc)]
    pub protocol: BenchProtocol,
    /// Compare two builds instead of telemetry off and on: each round runs this
    /// build and the guildscope binary at PATH side by side, both with the
    /// exporters on, and the report's "off" column is the other build's.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<std::path::PathBuf>,
    /// Run one phase and print its result as JSON (used by the rounds).
    #[arg(long, hide = true, value_enum)]
    pub phase: Option<TelemetryPhase>,
}

/// The OTLP protocol the telemetry benchmark exports with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchProtocol {
    /// OTLP over gRPC.
    Grpc,
    /// OTLP over HTTP with protobuf bodies.
    HttpProtobuf,
}

impl From<BenchProtocol> for crate::config::OtlpProtocol {
    fn from(protocol: BenchProtocol) -> Self {
        match protocol {
            BenchProtocol::Grpc => Self::Grpc,
            BenchProtocol::HttpProtobuf => Self::HttpProtobuf,
        }
    }
}

impl BenchProtocol {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http-protobuf",
        }
    }
}

/// An exporter the telemetry benchmark can turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Exporter {
    /// Spans over OTLP (`--protocol`), every trace sampled.
    Spans,
    /// StatsD over UDP.
    Statsd,
    /// The Prometheus endpoint, scraped every second.
    Prometheus,
    /// The metrics registry over OTLP (`--protocol`), every second.
    OtlpMetrics,
}

impl Exporter {
    /// Every exporter.
    pub const ALL: [Self; 4] = [
        Self::Spans,
        Self::Statsd,
        Self::Prometheus,
        Self::OtlpMetrics,
    ];

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spans => "spans",
            Self::Statsd => "statsd",
            Self::Prometheus => "prometheus",
            Self::OtlpMetrics => "otlp-metrics",
        }
    }
}

impl std::fmt::Display for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of the telemetry benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TelemetryPhase {
    /// Every exporter off.
    Off,
    /// Every exporter on.
    On,
}

impl TelemetryPhase {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
        }
    }
}

/// The database a benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStore {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// `guildscope bench read`.
#[derive(Debug, Args)]
pub struct BenchReadArgs {
    /// Which back end to measure.
    #[arg(long)]
    pub store: BenchStore,
    /// Message rows to seed.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// The database (an SQLite path or a postgres:// URL). Default:
    /// guildscope-bench-read.db here, or the database guildscope_bench_read on
    /// 127.0.0.1:5432 (created if missing). Seeding is skipped when it already
    /// holds enough rows.
    #[arg(long)]
    pub database: Option<String>,
    /// Timed runs per query (after one warm-up run).
    #[arg(long, default_value_t = 7)]
    pub runs: u32,
}

/// `guildscope bench ingest`.
#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Which back end to measure.
    #[arg(long)]
    pub store: BenchStore,
    /// How long to keep the firehose going (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The database (an SQLite path or a postgres:// URL). Default: a fresh
    /// guildscope-bench-ingest.db here, or a fresh database guildscope_bench on
    /// 127.0.0.1:5432. A given database must be empty for the count to mean
    /// anything.
    #[arg(long)]
    pub database: Option<String>,
    /// Ops per committed batch (the writer's batch size).
    #[arg(long, default_value_t = 2_000)]
    pub batch_size: usize,
}

/// `guildscope bench sync`.
#[derive(Debug, Args)]
pub struct BenchSyncArgs {
    /// Which back end to measure.
    #[arg(long)]
    pub store: BenchStore,
    /// Members of the one simulated guild.
    #[arg(long, default_value_t = 400_000)]
    pub members: u32,
    /// The database (an SQLite path or a postgres:// URL). Default: a fresh
    /// guildscope-bench-sync.db here, or a fresh database guildscope_bench_sync
    /// on 127.0.0.1:5432. A given database must be empty for the first pass
    /// to be a first sync.
    #[arg(long)]
    pub database: Option<String>,
}

/// `guildscope bench gateway`.
#[derive(Debug, Args)]
pub struct BenchGatewayArgs {
    /// MESSAGE_CREATE events to send.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Shards (and guilds spread over them).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Measure the simulator alone: a raw WebSocket client counts frames
    /// without parsing them.
    #[arg(long)]
    pub simulator_only: bool,
}

/// Parses `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 30s or 2m, got {text:?}"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
