//! `guildscope bench`: throughput measurements that print a table. The
//! figures in BENCHMARKS.md come from here. This file holds the gateway
//! benchmark and the helpers the others share; `read` and `ingest` have a
//! file each.

pub mod commands;
pub mod ingest;
pub mod read;
pub mod sync;
pub mod telemetry;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use guildscope_discord::{Gateway, Rest};
use guildscope_simulator::{SimConfig, Simulator};
use guildscope_store::{ExistingDatabase, Location, create_postgres_database};
use tokio_websockets::{ClientBuilder, Message};

use crate::{
    cli::{BenchGatewayArgs, BenchStore},
    config::LogFormat,
    logging,
};

/// Gateway dispatch throughput, end to end in one process.
pub async fn gateway(args: BenchGatewayArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn", LogFormat::Auto);
    let shards = args.shards.max(1);
    let simulator = Simulator::start(SimConfig {
        guilds: shards,
        members: 100,
        shards,
        ..SimConfig::default()
    })
    .await
    .context("while starting the simulator")?;

    let result = if args.simulator_only {
        raw_client(&simulator, args.events).await?
    } else {
        through_twilight(&simulator, args.events, shards).await?
    };
    simulator.shutdown().await;

    let per_event_us = result.cpu.as_secs_f64() * 1e6 / args.events as f64;
    println!(
        "benchmark          gateway dispatch throughput ({})",
        result.path
    );
    println!("events             {}", args.events);
    println!("shards             {shards}");
    println!("wall time          {:.3} s", result.wall.as_secs_f64());
    println!(
        "throughput         {:.0} events/s",
        args.events as f64 / result.wall.as_secs_f64()
    );
    println!(
        "cpu time           {:.3} s (user + system, whole process)",
        result.cpu.as_secs_f64()
    );
    println!("cpu per event      {per_event_us:.2} µs");
    Ok(ExitCode::SUCCESS)
}

struct Measured {
    path: &'static str,
    wall: Duration,
    cpu: Duration,
}

/// Simulator → zstd-stream → twilight shards → event bus → a counting handler.
async fn through_twilight(
    simulator: &Simulator,
    events: u64,
    shards: u32,
) -> anyhow::Result<Measured> {
    let config = super::wiring::discord_for(simulator);
    let rest = Rest::new(&config);
    let Gateway {
        handle,
        events: mut events_rx,
    } = Gateway::start(&config, &rest)
        .await
        .context("while connecting to the simulator")?;
    // Wait for every guild before the clock starts.
    while handle.stats().events("GUILD_CREATE") < u64::from(shards) {
        if events_rx.recv().await.is_none() {
            bail!("the gateway stopped before the guilds arrived");
        }
    }
    let cpu_before = process_cpu_time()?;
    let started = Instant::now();
    simulator.firehose(events);
    let mut seen = 0;
    while seen < events {
        match events_rx.recv().await {
            Some(envelope) if envelope.name == "MESSAGE_CREATE" => seen += 1,
            Some(_) => {}
            None => bail!("the gateway stopped after {seen} of {events} events"),
        }
    }
    let wall = started.elapsed();
    let cpu = process_cpu_time()?.saturating_sub(cpu_before);
    handle.shutdown().await;
    Ok(Measured {
        path: "simulator → twilight → event bus → counting handler",
        wall,
        cpu,
    })
}

/// The simulator alone: a raw WebSocket client identifies, then counts text
/// frames without parsing them.
async fn raw_client(simulator: &Simulator, events: u64) -> anyhow::Result<Measured> {
    let info = simulator.info();
    let uri = format!("{}/?v=10&encoding=json", info.gateway_url);
    let (mut ws, _) = ClientBuilder::new()
        .uri(&uri)
        .context("invalid gateway url")?
        .connect()
        .await
        .context("while connecting to the simulator")?;
    let identify = serde_json::json!({
        "op": 2,
        "d": {
            "token": info.token,
            "intents": 513,
            "properties": {"os": "linux", "browser": "bench", "device": "bench"},
            "shard": [0, 1],
        }
    });
    ws.send(Message::text(identify.to_string()))
        .await
        .context("while identifying")?;
    // READY, then one GUILD_CREATE for the single guild.
    let mut guilds = 0;
    while guilds < 1 {
        let Some(frame) = ws.next().await else {
            bail!("the simulator closed the connection")
        };
        let frame = frame.context("while reading a frame")?;
        if frame
            .as_text()
            .is_some_and(|t| t.contains("\"t\":\"GUILD_CREATE\""))
        {
            guilds += 1;
        }
    }
    let cpu_before = process_cpu_time()?;
    let started = Instant::now();
    simulator.firehose(events);
    let mut seen = 0;
    while seen < events {
        let Some(frame) = ws.next().await else {
            bail!("the simulator closed after {seen} events")
        };
        if frame.context("while reading a frame")?.is_text() {
            seen += 1;
        }
    }
    let wall = started.elapsed();
    let cpu = process_cpu_time()?.saturating_sub(cpu_before);
    Ok(Measured {
        path: "simulator → raw WebSocket client counting frames",
        wall,
        cpu,
    })
}

/// CPU time of this process, every thread's (those that exited included), to
/// the nanosecond: what the scheduler counted, not `/proc/self/stat`'s user
/// and system ticks, which are 10 ms samples and were the largest part of the
/// noise in CPU per command over a few seconds.
pub(crate) fn process_cpu_time() -> anyhow::Result<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let seconds = u64::try_from(now.tv_sec).context("negative process CPU time")?;
    let nanos = u32::try_from(now.tv_nsec).context("invalid process CPU time")?;
    Ok(Duration::new(seconds, nanos))
}

/// What the kernel's scheduler counted for one group of threads (those of one
/// name, as a runtime built with `thread_name` names its workers), from each
/// thread's `/proc/self/task/*/schedstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ThreadUsage {
    /// CPU time, in nanoseconds.
    pub cpu_ns: u64,
    /// Time spent ready to run but waiting for a core, in nanoseconds.
    pub waiting_ns: u64,
    /// Times a thread of the group was put on a core: a wake-up, or a return
    /// after being preempted.
    pub runs: u64,
}

impl ThreadUsage {
    /// What was counted between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            waiting_ns: self.waiting_ns.saturating_sub(earlier.waiting_ns),
            runs: self.runs.saturating_sub(earlier.runs),
        }
    }
}

/// This process's live threads, grouped by name (the kernel keeps a thread's
/// first 15 bytes). A thread that exited is not counted, so compare readings
/// of threads that live as long as what is measured.
pub(crate) fn threads_usage() -> anyhow::Result<BTreeMap<String, ThreadUsage>> {
    let mut groups = BTreeMap::<String, ThreadUsage>::new();
    for task in std::fs::read_dir("/proc/self/task").context("while reading /proc/self/task")? {
        let task = task?.path();
        // A thread may exit between listing and reading: it is then skipped.
        let (Ok(comm), Ok(schedstat)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("schedstat")),
        ) else {
            continue;
        };
        let mut fields = schedstat.split_whitespace().map(str::parse::<u64>);
        let mut next = || {
            fields
                .next()
                .and_then(Result::ok)
                .with_context(|| format!("unexpected schedstat {schedstat:?}"))
        };
        let (cpu_ns, waiting_ns, runs) = (next()?, next()?, next()?);
        let group = groups.entry(comm.trim_end().to_owned()).or_default();
        group.cpu_ns += cpu_ns;
        group.waiting_ns += waiting_ns;
        group.runs += runs;
    }
    Ok(groups)
}

/// Peak resident memory of this process (`VmHWM` from `/proc/self/status`).
pub(crate) fn peak_rss_bytes() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("while reading /proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib * 1024)
}

/// The default databases of a benchmark that starts empty.
pub(crate) struct FreshDatabase {
    /// SQLite file in the working directory (removed first, with its WAL).
    pub(crate) sqlite_file: &'static str,
    /// PostgreSQL database on the default server (dropped and recreated).
    pub(crate) postgres_name: &'static str,
}

/// The database to fill: the one given, or a fresh default one. The
/// PostgreSQL client blocks, so the work runs on a blocking thread.
pub(crate) async fn fresh_location(
    database: Option<String>,
    store: BenchStore,
    fresh: FreshDatabase,
) -> anyhow::Result<Location> {
    tokio::task::spawn_blocking(move || {
        Ok(match (database, store) {
            (Some(url), _) => Location::parse(&url),
            (None, BenchStore::Sqlite) => {
                super::remove_sqlite_files(fresh.sqlite_file)?;
                Location::Sqlite(PathBuf::from(fresh.sqlite_file))
            }
            (None, BenchStore::Postgres) => Location::parse(
                &create_postgres_database(
                    read::DEFAULT_POSTGRES_ADMIN,
                    fresh.postgres_name,
                    ExistingDatabase::Recreate,
                )
                .context("while creating the benchmark database")?,
            ),
        })
    })
    .await
    .context("the setup thread failed")?
}
