//! `guildscope bench ingest`: sustained MESSAGE_CREATE throughput through
//! the whole bot into the database. The simulator's firehose feeds a real
//! bot (twilight shard → event bus → collector → batched writer thread), all
//! in one process; the figure is the rows found in the database at the end
//! divided by the time from the first message to the last commit.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use guildscope_bot::{BotConfig, CollectorConfig, WriterConfig};
use guildscope_simulator::{SimConfig, Simulator};
use guildscope_store::{Location, Store};

use super::{FreshDatabase, fresh_location, peak_rss_bytes, process_cpu_time};
use crate::{cli::BenchIngestArgs, cmd::wiring, config::LogFormat, logging};

/// Guilds in the simulated community (the firehose spreads over them).
const GUILDS: u32 = 2;
/// Messages the firehose may have queued beyond what the gateway has read:
/// enough that it never runs dry, little enough that stopping is quick.
const AHEAD: u64 = 100_000;

/// Runs the firehose for the configured time and reports what was committed.
pub async fn run(args: BenchIngestArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn", LogFormat::Auto);
    let store_kind = args.store;
    let database = args.database.clone();
    let location = fresh_location(
        database,
        store_kind,
        FreshDatabase {
            sqlite_file: "guildscope-bench-ingest.db",
            postgres_name: "guildscope_bench",
        },
    )
    .await?;
    let rows_before = count_messages(&location).await?;

    let simulator = Simulator::start(SimConfig {
        guilds: GUILDS,
        members: 2_000,
        ..SimConfig::default()
    })
    .await
    .context("while starting the simulator")?;
    let discord = wiring::discord_for(&simulator);
    let bot = BotConfig {
        // Every firehose message becomes a row, whoever wrote it.
        collector: CollectorConfig {
            include_bots: true,
            ..CollectorConfig::default()
        },
        writer: Some(WriterConfig {
            batch_size: args.batch_size.max(1),
            ..WriterConfig::new(location.clone())
        }),
        ..BotConfig::default()
    };
    let running = wiring::start(&discord, bot, None).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while running.gateway_stats.events("GUILD_CREATE") < u64::from(GUILDS) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the simulated guilds did not arrive within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let cpu_before = process_cpu_time()?;
    let started = Instant::now();
    let mut requested = 0;
    while started.elapsed() < args.duration {
        let received = running.gateway_stats.events("MESSAGE_CREATE");
        if requested < received + AHEAD {
            simulator.firehose(AHEAD);
            requested += AHEAD;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_window = started.elapsed();
    // Closing the shards ends the firehose; the runtime drains the bus and
    // commits the last batch before `stop` returns.
    let gateway_stats = std::sync::Arc::clone(&running.gateway_stats);
    let bot_stats = std::sync::Arc::clone(&running.bot_stats);
    running.stop().await?;
    let elapsed = started.elapsed();
    let cpu = process_cpu_time()?.saturating_sub(cpu_before);
    simulator.shutdown().await;

    let rows = count_messages(&location).await?.saturating_sub(rows_before);
    let stats = bot_stats.snapshot();
    let received = gateway_stats.events("MESSAGE_CREATE");
    let commit = stats.commit_latency;
    println!("benchmark          ingest throughput (simulator → twilight → bot → {store_kind:?})");
    println!("database           {location}");
    println!("batch size         {} ops", args.batch_size.max(1));
    println!(
        "firehose           {:.1} s, then {:.2} s to drain and commit",
        sent_window.as_secs_f64(),
        (elapsed - sent_window).as_secs_f64()
    );
    println!("messages received  {received}");
    println!("rows committed     {rows} (counted in the database)");
    println!(
        "throughput         {:.0} messages/s committed",
        rows as f64 / elapsed.as_secs_f64()
    );
    println!(
        "event to commit    p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} batches)",
        commit.p50_us as f64 / 1e3,
        commit.p99_us as f64 / 1e3,
        commit.max_us as f64 / 1e3,
        commit.count
    );
    println!(
        "cpu time           {:.2} s (user + system, whole process: {:.0}% of one core)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 100.0 / elapsed.as_secs_f64()
    );
    println!(
        "cpu per message    {:.2} µs",
        cpu.as_secs_f64() * 1e6 / rows.max(1) as f64
    );
    println!(
        "peak rss           {:.0} MiB",
        peak_rss_bytes()? as f64 / (1024.0 * 1024.0)
    );
    println!("errors             {}", stats.errors_total());
    Ok(ExitCode::SUCCESS)
}

/// Messages stored at `location` (opening it creates and migrates it).
async fn count_messages(location: &Location) -> anyhow::Result<u64> {
    let location = location.clone();
    tokio::task::spawn_blocking(move || {
        Store::open(&location)
            .and_then(|mut store| store.stored_messages())
            .with_context(|| format!("while counting the messages in {location}"))
    })
    .await
    .context("the counting thread failed")?
}
