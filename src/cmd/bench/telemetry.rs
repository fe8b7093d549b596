//! `guildscope bench telemetry`: what telemetry costs the bot. The same
//! simulated workload runs with every exporter off and with every exporter
//! on (spans over OTLP/gRPC to a local receiver at a sample ratio of 1,
//! Prometheus scraped every second, StatsD to a local socket, the metrics
//! registry over OTLP/gRPC every second), alternating
//! in child processes so both see the same machine.
//!
//! The OTLP receiver and the StatsD socket stand for a collector and a
//! StatsD server, which are never part of the bot's process: they run in
//! the parent process, so a child's CPU time is the bot's (and the
//! simulator's, the same with telemetry off and on). A phase run on its own
//! (`--phase on`) starts them in its own process instead.
//!
//! Each run has two phases: commands alone at a fixed rate (their latency,
//! and whether any span was dropped), then a firehose of messages with
//! commands alongside (throughput at saturation). The command is `/ping`:
//! gateway latency, the REST round trip (measured at most every 10 s) and
//! the interaction callback.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use guildscope_bot::{BotConfig, CollectorConfig, WriterConfig};
use guildscope_simulator::{InteractionKind, InteractionRequest, SimConfig, Simulator};
use guildscope_store::Location;
use guildscope_telemetry::{StatsdConfig, otel};
use guildscope_testkit::otlp::OtlpReceiver;
use serde::{Deserialize, Serialize};
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::UdpSocket};

use super::ThreadUsage;
use crate::{
    cli::{BenchProtocol, BenchTelemetryArgs, Exporter, TelemetryPhase},
    cmd::{
        telemetry::{Telemetry, otel_config},
        wait_until, wiring,
    },
    config::{Config, LogFormat, Overrides},
    logging,
};

/// Guilds in the simulated community.
const GUILDS: u32 = 2;

/// Worker threads of the simulator's own runtime.
const SIMULATOR_THREADS: usize = 1;

/// The name the simulator's runtime gives its threads.
const SIMULATOR_THREAD: &str = "simulator";

/// The OTLP/gRPC endpoint the parent hands a phase (the receiver it runs).
const OTLP_ENDPOINT_VAR: &str = "GUILDSCOPE_BENCH_OTLP_ENDPOINT";

/// The StatsD address the parent hands a phase (the socket it counts on).
const STATSD_ADDR_VAR: &str = "GUILDSCOPE_BENCH_STATSD_ADDR";

/// Set by the parent: the phase waits between its commands and its firehose.
const PAIRED_VAR: &str = "GUILDSCOPE_BENCH_PAIRED";

/// The group [`PhaseResult::command_threads`] gives the process's CPU time
/// that no live thread accounts for: threads that ended during the phase.
const EXITED_THREADS: &str = "(ended threads)";

/// What one child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PhaseResult {
    telemetry: bool,
    commands: u64,
    command_rate: f64,
    command_p50_us: u64,
    command_p99_us: u64,
    /// Process CPU time (bot and simulator) per command in the fixed-rate
    /// phase.
    command_cpu_us: f64,
    /// The same without the simulator's threads: the bot's (and the pacing
    /// loop's, the same with telemetry off and on).
    command_bot_cpu_us: f64,
    /// The simulator's threads' CPU time per command: the same work whatever
    /// the bot does, so it shows how fast the machine ran this phase.
    #[serde(default)]
    command_simulator_cpu_us: f64,
    /// What each group of threads (by name) used in the fixed-rate phase,
    /// [`EXITED_THREADS`] standing for the CPU time of threads that ended in it.
    #[serde(default)]
    command_threads: BTreeMap<String, ThreadUsage>,
    spans_ended_commands: u64,
    spans_exported_commands: u64,
    messages: u64,
    ingest_seconds: f64,
    messages_per_second: f64,
    /// The bot's CPU time per message in the firehose phase (the commands
    /// alongside included, the same with telemetry off and on).
    #[serde(default)]
    ingest_bot_cpu_us: f64,
    /// The simulator's CPU time per message in the firehose phase.
    #[serde(default)]
    ingest_simulator_cpu_us: f64,
    spans_ended: u64,
    spans_exported: u64,
    spans_received: u64,
    statsd_datagrams: u64,
    scrapes: u64,
    /// Metrics exports the OTLP receiver took (counted by the parent).
    #[serde(default)]
    metric_exports: u64,
}

/// Runs the rounds (parent) or one phase (child).
pub async fn run(args: BenchTelemetryArgs) -> anyhow::Result<ExitCode> {
    match args.phase {
        Some(phase) => {
            let result = phase_run(&args, phase == TelemetryPhase::On).await?;
            to_parent(&serde_json::to_string(&result)?)?;
            Ok(ExitCode::SUCCESS)
        }
        None => rounds(&args).await,
    }
}

async fn rounds(args: &BenchTelemetryArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("while finding the guildscope binary")?;
    let mut off = Vec::new();
    let mut on = Vec::new();
    for round in 0..args.rounds.max(1) {
        // Both sides run their commands at the same time, so both meet the
        // same machine: its speed drifts between processes by more than the
        // overhead measured. Each then runs its firehose alone (it saturates
        // the machine), the side going first alternating between rounds.
        let peers = Peers::start().await?;
        // With a baseline build, its side runs with the exporters on too, to
        // peers of its own.
        let baseline_peers = match &args.baseline {
            Some(_) => Some(Peers::start().await?),
            None => None,
        };
        let baseline = match (&args.baseline, &baseline_peers) {
            (Some(other), Some(other_peers)) => {
                Child::spawn(other, args, TelemetryPhase::On, Some(other_peers))?
                    .counted_as(TelemetryPhase::Off)
            }
            _ => Child::spawn(&exe, args, TelemetryPhase::Off, None)?,
        };
        let mut sides = [
            baseline,
            Child::spawn(&exe, args, TelemetryPhase::On, Some(&peers))?,
        ];
        for side in &mut sides {
            side.wait_for(COMMANDS_DONE)?;
        }
        if round % 2 == 1 {
            sides.reverse();
        }
        let mut results = Vec::new();
        for side in sides {
            let phase = side.phase;
            let mut result = side.finish()?;
            if phase == TelemetryPhase::On {
                // The child flushed its spans before it exited.
                result.spans_received = peers.otlp.spans().len() as u64;
                result.statsd_datagrams = peers.datagrams.load(Ordering::Relaxed);
                result.metric_exports = metric_exports(&peers.otlp);
            }
            results.push((phase, result));
        }
        peers.stop().await;
        if let Some(other_peers) = baseline_peers {
            other_peers.stop().await;
        }
        results.sort_by_key(|(phase, _)| *phase == TelemetryPhase::On);
        for (phase, result) in results {
            eprintln!(
                "round {} {:<3}: {:>8.0} msg/s, command p50 {} µs p99 {} µs, CPU {:.1} µs (bot {:.1}, simulator {:.1}), spans {}/{} exported",
                round + 1,
                phase.as_str(),
                result.messages_per_second,
                result.command_p50_us,
                result.command_p99_us,
                result.command_cpu_us,
                result.command_bot_cpu_us,
                result.command_simulator_cpu_us,
                result.spans_exported,
                result.spans_ended
            );
            match phase {
                TelemetryPhase::Off => off.push(result),
                TelemetryPhase::On => on.push(result),
            }
        }
    }
    report(args, &off, &on);
    Ok(ExitCode::SUCCESS)
}

/// Writes `line` to the rounds that started this phase (its standard output),
/// or says they are gone.
fn to_parent(line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("the benchmark that started this phase has gone")
}

/// What a child prints once its commands are done; it then waits for a line
/// on its standard input before its firehose.
const COMMANDS_DONE: &str = "commands done";

/// One side of a round, running in a child process.
struct Child {
    phase: TelemetryPhase,
    process: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Child {
    fn spawn(
        exe: &std::path::Path,
        args: &BenchTelemetryArgs,
        phase: TelemetryPhase,
        peers: Option<&Peers>,
    ) -> anyhow::Result<Self> {
        let mut command = std::process::Command::new(exe);
        command
            .args(["bench", "telemetry", "--phase", phase.as_str()])
            .args(["--messages", &args.messages.to_string()])
            .args(["--command-rate", &args.command_rate.to_string()])
            .args(["--commands", &args.commands.to_string()])
            .args(["--exporters", &exporters_arg(&args.exporters)])
            .env(PAIRED_VAR, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Named only when it is not the default, so a build from before the
        // option can still be the baseline of a gRPC run.
        if args.protocol != BenchProtocol::Grpc {
            command.args(["--protocol", args.protocol.as_str()]);
        }
        if let Some(peers) = peers {
            command
                .env(OTLP_ENDPOINT_VAR, peers.otlp_endpoint(args.protocol))
                .env(STATSD_ADDR_VAR, peers.statsd_addr.to_string());
        }
        let mut process = command
            .spawn()
            .context("while starting a benchmark phase")?;
        let stdin = process.stdin.take();
        let stdout = process
            .stdout
            .take()
            .context("the benchmark phase has no standard output")?;
        Ok(Self {
            phase,
            process,
            stdin,
            lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)),
        })
    }

    /// The same child, counted as the side `phase` of the round.
    fn counted_as(self, phase: TelemetryPhase) -> Self {
        Self { phase, ..self }
    }

    /// Waits for the child to print `line`.
    fn wait_for(&mut self, line: &str) -> anyhow::Result<()> {
        tokio::task::block_in_place(|| {
            for next in &mut self.lines {
                if next? == line {
                    return Ok(());
                }
            }
            bail!("the {} phase ended before {line:?}", self.phase.as_str())
        })
    }

    /// Lets the child go on to its firehose and reads its result.
    fn finish(mut self) -> anyhow::Result<PhaseResult> {
        tokio::task::block_in_place(|| {
            if let Some(mut stdin) = self.stdin.take() {
                use std::io::Write as _;
                writeln!(stdin, "go").context("while starting the firehose")?;
            }
            let mut last = String::new();
            for line in &mut self.lines {
                last = line?;
            }
            let status = self.process.wait()?;
            if !status.success() {
                bail!("the {} phase failed ({status})", self.phase.as_str());
            }
            serde_json::from_str(&last)
                .with_context(|| format!("while reading the phase's result {last:?}"))
        })
    }
}

/// The exporters as the command line names them, comma-separated.
fn exporters_arg(exporters: &[Exporter]) -> String {
    exporters
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn median(values: Vec<f64>) -> f64 {
    quartiles(values).1
}

/// The first quartile, the median and the third quartile of `values`
/// (linear interpolation between the closest ranks).
fn quartiles(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let Some(last) = values.len().checked_sub(1) else {
            return 0.0;
        };
        let rank = q * last as f64;
        let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
        values[low] + (values[high] - values[low]) * (rank - low as f64)
    };
    (at(0.25), at(0.5), at(0.75))
}

/// A figure's change within each round (on minus off, the two run back to
/// back), as quartiles over the rounds: drift on the machine between rounds
/// cancels out, which the difference of the two medians does not do.
fn paired(
    off: &[PhaseResult],
    on: &[PhaseResult],
    f: impl Fn(&PhaseResult) -> f64,
) -> (f64, f64, f64) {
    quartiles(off.iter().zip(on).map(|(a, b)| f(b) - f(a)).collect())
}

fn report(args: &BenchTelemetryArgs, off: &[PhaseResult], on: &[PhaseResult]) {
    let m = |runs: &[PhaseResult], f: fn(&PhaseResult) -> f64| median(runs.iter().map(f).collect());
    let throughput_off = m(off, |r| r.messages_per_second);
    let throughput_on = m(on, |r| r.messages_per_second);
    let p50_off = m(off, |r| r.command_p50_us as f64);
    let p50_on = m(on, |r| r.command_p50_us as f64);
    let p99_off = m(off, |r| r.command_p99_us as f64);
    let p99_on = m(on, |r| r.command_p99_us as f64);
    let cpu_off = m(off, |r| r.command_cpu_us);
    let cpu_on = m(on, |r| r.command_cpu_us);
    let dropped_commands: u64 = on
        .iter()
        .map(|r| r.spans_ended_commands - r.spans_exported_commands.min(r.spans_ended_commands))
        .sum();
    let dropped_all: u64 = on
        .iter()
        .map(|r| r.spans_ended - r.spans_exported.min(r.spans_ended))
        .sum();
    println!(
        "benchmark            telemetry overhead (medians of {} rounds)",
        off.len()
    );
    println!(
        "workload             {} commands at {}/s; then {} messages by firehose with commands at {}/s",
        args.commands,
        args.command_rate,
        args.messages,
        args.command_rate / 4.0
    );
    println!(
        "exporters on         {} (OTLP over {})",
        exporters_arg(&args.exporters),
        args.protocol.as_str()
    );
    if let Some(other) = &args.baseline {
        println!(
            "compared with        {} (\"off\" below), telemetry on in both",
            other.display()
        );
    }
    println!("                     telemetry off   telemetry on    ratio / delta");
    println!(
        "ingest throughput    {:>9.0} msg/s {:>9.0} msg/s  {:.3} ({:+.1}%)",
        throughput_off,
        throughput_on,
        throughput_on / throughput_off.max(1.0),
        (throughput_on / throughput_off.max(1.0) - 1.0) * 100.0
    );
    println!(
        "command p50          {:>9.0} µs    {:>9.0} µs     {:+.0} µs",
        p50_off,
        p50_on,
        p50_on - p50_off
    );
    println!(
        "command p99          {:>9.0} µs    {:>9.0} µs     {:+.0} µs",
        p99_off,
        p99_on,
        p99_on - p99_off
    );
    println!(
        "CPU per command      {:>9.1} µs    {:>9.1} µs     {:+.1} µs",
        cpu_off,
        cpu_on,
        cpu_on - cpu_off
    );
    let bot_cpu_off = m(off, |r| r.command_bot_cpu_us);
    let bot_cpu_on = m(on, |r| r.command_bot_cpu_us);
    println!(
        "  of it the bot's    {:>9.1} µs    {:>9.1} µs     {:+.1} µs",
        bot_cpu_off,
        bot_cpu_on,
        bot_cpu_on - bot_cpu_off
    );
    println!(
        "bot CPU per message  {:>9.2} µs    {:>9.2} µs     {:+.2} µs",
        m(off, |r| r.ingest_bot_cpu_us),
        m(on, |r| r.ingest_bot_cpu_us),
        m(on, |r| r.ingest_bot_cpu_us) - m(off, |r| r.ingest_bot_cpu_us)
    );
    println!("paired by round      the change within each round: median (middle half of rounds)");
    let (q1, delta, q3) = paired(off, on, |r| r.command_bot_cpu_us);
    println!("  bot CPU per command  {delta:+.1} µs ({q1:+.1} to {q3:+.1})");
    // The simulator does the same work in every phase, so its CPU time per
    // command measures how fast the machine ran that phase (frequency, the
    // neighbours' load). The bot's CPU time over the simulator's, taken to
    // microseconds at the median simulator time, leaves that out.
    let simulator = m(&[off, on].concat(), |r| r.command_simulator_cpu_us);
    let (q1, delta, q3) = paired(off, on, |r| {
        r.command_bot_cpu_us / r.command_simulator_cpu_us.max(f64::MIN_POSITIVE) * simulator
    });
    println!(
        "    at the simulator's pace  {delta:+.1} µs ({q1:+.1} to {q3:+.1}; simulator {simulator:.1} µs per command)"
    );
    report_threads(args, off, on);
    let (q1, delta, q3) = paired(off, on, |r| r.command_p50_us as f64);
    println!("  command p50          {delta:+.0} µs ({q1:+.0} to {q3:+.0})");
    // Ratios are paired as logarithms, so a round twice as fast and one half
    // as fast weigh the same.
    let (q1, delta, q3) = paired(off, on, |r| r.messages_per_second.max(1.0).ln());
    let percent = |log_ratio: f64| (log_ratio.exp() - 1.0) * 100.0;
    println!(
        "  ingest throughput    {:+.1}% ({:+.1}% to {:+.1}%)",
        percent(delta),
        percent(q1),
        percent(q3)
    );
    // Throughput is the noisiest figure: one round's firehose lasts seconds,
    // and the machine's speed drifts by more than the overhead. The CPU time
    // a message costs is steadier, and at saturation throughput goes as its
    // inverse: the firehose keeps both cores busy with the bot and the
    // simulator.
    let (q1, delta, q3) = paired(off, on, |r| r.ingest_bot_cpu_us);
    println!("  bot CPU per message  {delta:+.2} µs ({q1:+.2} to {q3:+.2})");
    let simulator = m(&[off, on].concat(), |r| r.ingest_simulator_cpu_us);
    let paced = |r: &PhaseResult| {
        r.ingest_bot_cpu_us / r.ingest_simulator_cpu_us.max(f64::MIN_POSITIVE) * simulator
    };
    let (q1, delta, q3) = paired(off, on, paced);
    println!(
        "    at the simulator's pace  {delta:+.2} µs ({q1:+.2} to {q3:+.2}; simulator {simulator:.2} µs per message)"
    );
    // Messages per second as the inverse of the CPU a message costs, bot and
    // simulator, at the simulator's pace; paired as a log ratio like the
    // measured throughput.
    let (q1, delta, q3) = paired(off, on, |r| {
        -(paced(r) + simulator).max(f64::MIN_POSITIVE).ln()
    });
    println!(
        "  ingest throughput from CPU (estimate)  {:+.1}% ({:+.1}% to {:+.1}%)",
        percent(delta),
        percent(q1),
        percent(q3)
    );
    println!(
        "spans dropped        at {}/s commands: {dropped_commands}; whole run (saturation included): {dropped_all}",
        args.command_rate
    );
    let received: u64 = on.iter().map(|r| r.spans_received).sum();
    let exported: u64 = on.iter().map(|r| r.spans_exported).sum();
    println!("spans received       {received} of {exported} exported");
    println!(
        "statsd datagrams     {} per run; prometheus scrapes {} per run; otlp metric exports {} per run",
        m(on, |r| r.statsd_datagrams as f64),
        m(on, |r| r.scrapes as f64),
        m(on, |r| r.metric_exports as f64)
    );
}

/// The bot's CPU per command, thread group by thread group, paired by round;
/// how often its threads were put on a core and how long they waited for one:
/// where the added CPU goes, without a profiler. Wake-ups matter on a VM,
/// where each one that crosses cores costs an interrupt between virtual CPUs.
fn report_threads(args: &BenchTelemetryArgs, off: &[PhaseResult], on: &[PhaseResult]) {
    let names: BTreeSet<&str> = off
        .iter()
        .chain(on)
        .flat_map(|r| r.command_threads.keys().map(String::as_str))
        .filter(|name| *name != SIMULATOR_THREAD)
        .collect();
    if names.is_empty() {
        return;
    }
    let per_command = 1.0 / args.commands.max(1) as f64;
    println!(
        "  by thread group      CPU µs per command off → on (paired change); runs on a core per command off → on; µs waiting for a core per command off → on"
    );
    for name in names {
        let usage = |r: &PhaseResult| r.command_threads.get(name).copied().unwrap_or_default();
        let cpu = |r: &PhaseResult| usage(r).cpu_ns as f64 / 1e3 * per_command;
        let runs = |r: &PhaseResult| usage(r).runs as f64 * per_command;
        let waiting = |r: &PhaseResult| usage(r).waiting_ns as f64 / 1e3 * per_command;
        let (q1, delta, q3) = paired(off, on, cpu);
        println!(
            "    {name:<18} {:>7.1} → {:>7.1} ({delta:+.1}, {q1:+.1} to {q3:+.1}); {:.2} → {:.2}; {:.1} → {:.1}",
            median(off.iter().map(cpu).collect()),
            median(on.iter().map(cpu).collect()),
            median(off.iter().map(runs).collect()),
            median(on.iter().map(runs).collect()),
            median(off.iter().map(waiting).collect()),
            median(on.iter().map(waiting).collect()),
        );
    }
}

/// Metrics exports `receiver` took: each carries the build info once.
fn metric_exports(receiver: &OtlpReceiver) -> u64 {
    receiver
        .metrics()
        .iter()
        .filter(|m| m.name == "guildscope_build_info")
        .count() as u64
}

/// The exporters' peers, alive for the whole phase: an OTLP receiver and a
/// UDP socket counting StatsD datagrams.
struct Peers {
    otlp: OtlpReceiver,
    statsd_addr: std::net::SocketAddr,
    datagrams: Arc<AtomicU64>,
    counting: tokio::task::JoinHandle<()>,
}

impl Peers {
    async fn start() -> anyhow::Result<Self> {
        let otlp = OtlpReceiver::start()
            .await
            .context("while starting the OTLP receiver")?;
        let statsd = UdpSocket::bind("127.0.0.1:0").await?;
        let statsd_addr = statsd.local_addr()?;
        let datagrams = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&datagrams);
        let counting = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while statsd.recv(&mut buf).await.is_ok() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Self {
            otlp,
            statsd_addr,
            datagrams,
            counting,
        })
    }

    /// The receiver's address for `protocol`: for HTTP the base URL the
    /// exporters append `/v1/traces` and `/v1/metrics` to.
    fn otlp_endpoint(&self, protocol: BenchProtocol) -> String {
        match protocol {
            BenchProtocol::Grpc => self.otlp.grpc_endpoint(),
            BenchProtocol::HttpProtobuf => self.otlp.http_endpoint(),
        }
    }

    async fn stop(self) {
        self.counting.abort();
        self.otlp.shutdown().await;
    }
}

async fn phase_run(args: &BenchTelemetryArgs, on: bool) -> anyhow::Result<PhaseResult> {
    let database = std::env::temp_dir().join(format!(
        "guildscope-bench-telemetry-{}.db",
        std::process::id()
    ));
    let database_text = database.display().to_string();
    super::super::remove_sqlite_files(&database_text)?;

    let (telemetry, scrapes, own_peers) = if on {
        let (telemetry, scrapes, own_peers) =
            start_telemetry(&args.exporters, args.protocol).await?;
        (Some(telemetry), Some(scrapes), own_peers)
    } else {
        logging::init("warn", LogFormat::Auto);
        (None, None, None)
    };

    // The simulator stands for Discord, on a runtime of its own, so the CPU
    // its threads use can be told apart from the bot's.
    let simulator = Simulator::start_isolated(
        SimConfig {
            guilds: GUILDS,
            members: 1_000,
            ..SimConfig::default()
        },
        SIMULATOR_THREADS,
    )
    .await
    .context("while starting the simulator")?;
    let discord = wiring::discord_for(&simulator);
    let bot = BotConfig {
        collector: CollectorConfig {
            include_bots: true,
            ..CollectorConfig::default()
        },
        writer: Some(WriterConfig::new(Location::Sqlite(database.clone()))),
        max_commands_in_flight: 1_024,
        ..BotConfig::default()
    };
    let running = wiring::start(&discord, bot, telemetry.as_ref()).await?;
    wait_until(Duration::from_secs(15), || {
        running.gateway_stats.events("GUILD_CREATE") >= u64::from(GUILDS)
    })
    .await
    .context("the simulated guilds did not arrive")?;
    let community = simulator.community().clone();
    let guild = &community.guilds[0];
    let member = guild
        .members
        .iter()
        .find(|m| !m.bot)
        .context("no member to run commands")?
        .user_id;
    let channel = guild
        .channels
        .iter()
        .find(|c| c.kind == guildscope_simulator::ChannelKind::Text)
        .context("no text channel")?
        .id;
    let inject = |sim: &Simulator| {
        sim.inject_interaction(InteractionRequest {
            guild_id: guild.id,
            user_id: member,
            channel_id: channel,
            name: "ping".into(),
            options: serde_json::Value::Null,
            kind: InteractionKind::Command,
        })
    };

    // Phase 1: commands alone at the fixed rate.
    let stats = Arc::clone(&running.bot_stats);
    // Every `/ping` answer is a message too (MESSAGE_CREATE in its channel),
    // so the firehose is all handled once the bot has seen its messages plus
    // one per command answered.
    let messages_before = messages_of(&stats.snapshot());
    let firehose_handled = || {
        let now = stats.snapshot();
        messages_of(&now) >= messages_before + args.messages + now.commands_answered()
    };
    let cpu_before = super::process_cpu_time()?;
    let threads_before = super::threads_usage()?;
    paced(
        args.command_rate,
        args.commands,
        || false,
        || inject(&simulator).map(|_| ()).map_err(anyhow::Error::from),
    )
    .await?;
    wait_until(Duration::from_secs(60), || {
        stats.snapshot().commands_answered() >= args.commands
    })
    .await
    .context("the commands were not all answered")?;
    let latency = stats.snapshot().command_latency;
    let command_cpu = super::process_cpu_time()?.saturating_sub(cpu_before);
    let command_threads = threads_since(super::threads_usage()?, &threads_before, command_cpu);
    let simulator_cpu = simulator_cpu_of(&command_threads);
    let bot_cpu = command_cpu.saturating_sub(simulator_cpu);
    let (spans_ended_commands, spans_exported_commands) = match &telemetry {
        Some(telemetry) => {
            // Let the batch processor catch up before reading what it lost.
            let counter = telemetry.span_counter();
            let _ = wait_until(Duration::from_secs(10), || {
                let c = counter.counts();
                c.exported + c.export_failures >= c.ended
            })
            .await;
            let c = counter.counts();
            (c.ended, c.exported)
        }
        None => (0, 0),
    };

    // The other side runs its commands at the same time as this one; the
    // firehose saturates the machine, so each side runs it alone.
    if std::env::var_os(PAIRED_VAR).is_some() {
        to_parent(COMMANDS_DONE)?;
        let read = tokio::task::spawn_blocking(|| {
            let mut go = String::new();
            std::io::stdin().read_line(&mut go)
        })
        .await
        .context("while waiting for the firehose's turn")?
        .context("while waiting for the firehose's turn")?;
        // Nothing to read: the rounds that started this phase are gone.
        if read == 0 {
            bail!("the benchmark that started this phase has gone; stopping");
        }
    }

    // Phase 2: the firehose at saturation, commands alongside.
    let cpu_before = super::process_cpu_time()?;
    let threads_before = super::threads_usage()?;
    let started = Instant::now();
    simulator.firehose(args.messages);
    let side = paced(args.command_rate / 4.0, u64::MAX, firehose_handled, || {
        inject(&simulator).map(|_| ()).map_err(anyhow::Error::from)
    });
    let done = wait_until(Duration::from_secs(300), firehose_handled);
    let (side, done) = tokio::join!(side, done);
    side?;
    done.context("the firehose was not handled in time")?;
    let ingest = started.elapsed();
    let ingest_cpu = super::process_cpu_time()?.saturating_sub(cpu_before);
    let ingest_simulator_cpu = simulator_cpu_of(&threads_since(
        super::threads_usage()?,
        &threads_before,
        ingest_cpu,
    ));
    let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / args.messages.max(1) as f64;

    running.stop().await?;
    simulator.shutdown().await;
    let (spans_ended, spans_exported, spans_received, statsd_datagrams, scrapes) =
        match (telemetry, scrapes) {
            (Some(telemetry), Some(scrapes)) => {
                let counter = telemetry.span_counter();
                telemetry.shutdown().await;
                let counts = counter.counts();
                // Peers of this process when it runs alone; the parent counts
                // what reached its own.
                let (received, datagrams) = match &own_peers {
                    Some(peers) => (
                        peers.otlp.spans().len() as u64,
                        peers.datagrams.load(Ordering::Relaxed),
                    ),
                    None => (0, 0),
                };
                (
                    counts.ended,
                    counts.exported,
                    received,
                    datagrams,
                    scrapes.load(Ordering::Relaxed),
                )
            }
            _ => (0, 0, 0, 0, 0),
        };
    super::super::remove_sqlite_files(&database_text)?;
    Ok(PhaseResult {
        telemetry: on,
        commands: args.commands,
        command_rate: args.command_rate,
        command_p50_us: latency.p50_us,
        command_p99_us: latency.p99_us,
        command_cpu_us: command_cpu.as_secs_f64() * 1e6 / args.commands.max(1) as f64,
        command_bot_cpu_us: bot_cpu.as_secs_f64() * 1e6 / args.commands.max(1) as f64,
        command_simulator_cpu_us: simulator_cpu.as_secs_f64() * 1e6 / args.commands.max(1) as f64,
        command_threads,
        spans_ended_commands,
        spans_exported_commands,
        messages: args.messages,
        ingest_seconds: ingest.as_secs_f64(),
        messages_per_second: args.messages as f64 / ingest.as_secs_f64(),
        ingest_bot_cpu_us: per_message(ingest_cpu.saturating_sub(ingest_simulator_cpu)),
        ingest_simulator_cpu_us: per_message(ingest_simulator_cpu),
        spans_ended,
        spans_exported,
        spans_received,
        statsd_datagrams,
        scrapes,
        metric_exports: own_peers
            .as_ref()
            .map_or(0, |peers| metric_exports(&peers.otlp)),
    })
}

/// Each thread group's usage between two readings; the process's CPU time
/// over the same stretch (`cpu`) that no live group accounts for goes to
/// [`EXITED_THREADS`].
fn threads_since(
    now: BTreeMap<String, ThreadUsage>,
    before: &BTreeMap<String, ThreadUsage>,
    cpu: Duration,
) -> BTreeMap<String, ThreadUsage> {
    let mut groups: BTreeMap<String, ThreadUsage> = now
        .into_iter()
        .map(|(name, usage)| {
            let earlier = before.get(&name).copied().unwrap_or_default();
            (name, usage.since(earlier))
        })
        .collect();
    let counted: u64 = groups.values().map(|usage| usage.cpu_ns).sum();
    let uncounted = u64::try_from(cpu.as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_sub(counted);
    if uncounted > 0 {
        groups.insert(
            EXITED_THREADS.to_owned(),
            ThreadUsage {
                cpu_ns: uncounted,
                ..ThreadUsage::default()
            },
        );
    }
    groups
}

/// The simulator's CPU time among a phase's thread groups.
fn simulator_cpu_of(threads: &BTreeMap<String, ThreadUsage>) -> Duration {
    Duration::from_nanos(
        threads
            .get(SIMULATOR_THREAD)
            .map_or(0, |usage| usage.cpu_ns),
    )
}

/// MESSAGE_CREATE the bot has handled, in a snapshot of its counters.
fn messages_of(snapshot: &guildscope_bot::Snapshot) -> u64 {
    snapshot.events.get("MESSAGE_CREATE").copied().unwrap_or(0)
}

/// The exporters asked for on, each pointed at a peer: the parent's when it
/// handed them over, otherwise peers started in this process (returned).
/// Also returns the count of Prometheus scrapes, which this process makes.
async fn start_telemetry(
    exporters: &[Exporter],
    protocol: BenchProtocol,
) -> anyhow::Result<(Telemetry, Arc<AtomicU64>, Option<Peers>)> {
    let handed = (
        std::env::var(OTLP_ENDPOINT_VAR).ok(),
        std::env::var(STATSD_ADDR_VAR).ok(),
    );
    let (otlp_endpoint, statsd_addr, own_peers) = match handed {
        (Some(otlp), Some(statsd)) => (otlp, statsd, None),
        _ => {
            let peers = Peers::start().await?;
            (
                peers.otlp_endpoint(protocol),
                peers.statsd_addr.to_string(),
                Some(peers),
            )
        }
    };

    let mut config = Config::load(None, &Overrides::default())?;
    config.log_level = "warn".into();
    // Only what was asked for, whatever the environment says.
    let on = |exporter| exporters.contains(&exporter);
    config.telemetry.traces.endpoint = on(Exporter::Spans).then(|| otlp_endpoint.clone());
    config.telemetry.traces.protocol = protocol.into();
    config.telemetry.traces.sample_ratio = 1.0;
    config.telemetry.metrics.listen = on(Exporter::Prometheus)
        .then(|| "127.0.0.1:0".parse())
        .transpose()?;
    config.telemetry.statsd = on(Exporter::Statsd)
        .then(|| StatsdConfig::new(statsd_addr))
        .transpose()?;
    let mut otel = otel_config(&config)?;
    otel.metrics = on(Exporter::OtlpMetrics).then(|| {
        otel::OtlpEndpoint::for_signal(
            &otlp_endpoint,
            config.telemetry.traces.protocol.otel(),
            otel::Signal::Metrics,
        )
    });
    otel.metrics_interval = Duration::from_secs(1);
    let guard = otel::init(&otel)?;
    let telemetry = Telemetry::start_with(guard, &config.telemetry).await?;

    let scrapes = Arc::new(AtomicU64::new(0));
    if let Some(addr) = telemetry.prometheus_addr() {
        let counted = Arc::clone(&scrapes);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if scrape(addr).await.is_ok() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    Ok((telemetry, scrapes, own_peers))
}

/// One `GET /metrics`, as a scraper would send it.
async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body).await?;
    Ok(())
}

/// Calls `send` at `rate` per second, at most `max` times, until `stop`
/// holds; gives up after 300 s.
async fn paced(
    rate: f64,
    max: u64,
    mut stop: impl FnMut() -> bool,
    mut send: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut sent = 0;
    while sent < max && !stop() {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("pacing did not finish within 300 s");
        }
        let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(max);
        while sent < due {
            send()?;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpu_ns: u64, runs: u64) -> ThreadUsage {
        ThreadUsage {
            cpu_ns,
            waiting_ns: 0,
            runs,
        }
    }

    #[test]
    fn a_phase_counts_each_group_from_its_own_start_and_ended_threads_apart() {
        let before = BTreeMap::from([
            ("guildscope".to_owned(), usage(1_000, 10)),
            ("simulator".to_owned(), usage(500, 4)),
        ]);
        let now = BTreeMap::from([
            ("guildscope".to_owned(), usage(4_000, 16)),
            ("simulator".to_owned(), usage(1_500, 9)),
            // Started during the phase: all of it counts.
            ("OpenTelemetry.T".to_owned(), usage(700, 3)),
        ]);
        // 4,700 ns by live threads; the process used 5,000.
        let groups = threads_since(now, &before, Duration::from_nanos(5_000));
        assert_eq!(groups["guildscope"], usage(3_000, 6));
        assert_eq!(groups["simulator"], usage(1_000, 5));
        assert_eq!(groups["OpenTelemetry.T"], usage(700, 3));
        assert_eq!(groups[EXITED_THREADS], usage(300, 0));
        // Nothing unaccounted for: no group for ended threads.
        let now = BTreeMap::from([("guildscope".to_owned(), usage(2_000, 11))]);
        let groups = threads_since(now, &before, Duration::from_nanos(1_000));
        assert_eq!(groups.len(), 1);
        assert_eq!(groups["guildscope"], usage(1_000, 1));
    }

    #[test]
    fn quartiles_interpolate_between_ranks() {
        assert_eq!(quartiles(vec![4.0, 1.0, 3.0, 2.0, 5.0]), (2.0, 3.0, 4.0));
        assert_eq!(quartiles(vec![1.0, 2.0]), (1.25, 1.5, 1.75));
        assert_eq!(quartiles(Vec::new()), (0.0, 0.0, 0.0));
    }
}
