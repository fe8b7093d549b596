//! `guildscope bench sync`: the startup sync of one large guild through the
//! whole bot. A simulated guild of `--members` members (rate 0, so nothing
//! else happens) and a real bot (twilight shard → event bus → collector →
//! member request → chunks → batched writer thread) run in one process
//! against a fresh database. Two passes: the first sync fills the empty
//! database; the second runs the same sync again against the filled one,
//! which must be as quick and change nothing.
//!
//! Each pass reports the time from starting the gateway to GUILD_CREATE, to
//! the last GUILD_MEMBERS_CHUNK, and to the reconciliation being committed
//! (`BotStats::member_syncs`), then checks the members in the database
//! against the simulator's ground truth.

use std::{
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail, ensure};
use guildscope_bot::{BotConfig, WriterConfig};
use guildscope_discord::DiscordConfig;
use guildscope_model::GuildId;
use guildscope_simulator::{SimConfig, Simulator};
use guildscope_store::{Location, MembershipDay, Store, TimeWindow};

use super::{FreshDatabase, fresh_location, peak_rss_bytes, process_cpu_time};
use crate::{cli::BenchSyncArgs, cmd::wiring, config::LogFormat, logging};

/// Members per GUILD_MEMBERS_CHUNK (Discord's limit, which the simulator keeps).
const CHUNK_SIZE: u64 = 1_000;
/// How long one pass may take before the benchmark gives up.
const PASS_DEADLINE: Duration = Duration::from_secs(300);
/// How often the progress counters are looked at; the resolution of the
/// reported times.
const POLL: Duration = Duration::from_millis(2);

/// Runs the two passes and prints a table.
pub async fn run(args: BenchSyncArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn", LogFormat::Auto);
    let store_kind = args.store;
    let database = args.database.clone();
    let location = fresh_location(
        database,
        store_kind,
        FreshDatabase {
            sqlite_file: "guildscope-bench-sync.db",
            postgres_name: "guildscope_bench_sync",
        },
    )
    .await?;

    let built = Instant::now();
    let simulator = Simulator::start(SimConfig {
        guilds: 1,
        members: args.members,
        rate: 0.0,
        ..SimConfig::default()
    })
    .await
    .context("while starting the simulator")?;
    let build_time = built.elapsed();
    let truth = simulator.ground_truth();
    let Some((guild, guild_truth)) = truth.guilds.iter().next() else {
        bail!("the simulator has no guild");
    };
    let guild_id = GuildId::new(guild.parse().context("a guild id that is not a number")?);
    let expected = guild_truth.members_in_guild;

    // Opening the database once creates the schema, so neither pass counts
    // the migrations.
    let before = snapshot(&location, guild_id).await?;
    ensure!(
        before.in_guild == 0,
        "{location} already holds {} members of the guild; give an empty database",
        before.in_guild
    );

    let discord = wiring::discord_for(&simulator);
    // A guild at or below the large threshold comes whole in GUILD_CREATE.
    let chunks = if expected > discord.large_threshold {
        expected.div_ceil(CHUNK_SIZE)
    } else {
        0
    };
    let bot = BotConfig {
        writer: Some(WriterConfig::new(location.clone())),
        ..BotConfig::default()
    };

    let first = pass(&discord, &bot, chunks).await?;
    let after_first = snapshot(&location, guild_id).await?;
    let second = pass(&discord, &bot, chunks).await?;
    let after_second = snapshot(&location, guild_id).await?;
    simulator.shutdown().await;

    println!(
        "benchmark          startup sync of one large guild (simulator → twilight → bot → {store_kind:?})"
    );
    println!("database           {location}");
    println!(
        "guild              {expected} members, {chunks} chunks (simulator built in {:.1} s, not timed)",
        build_time.as_secs_f64()
    );
    println!();
    println!(
        "{:<16} {:>13} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "pass", "GUILD_CREATE", "all chunks", "committed", "members/s", "cpu", "in store"
    );
    for (name, timing, stored) in [
        ("empty database", &first, &after_first),
        ("again (filled)", &second, &after_second),
    ] {
        println!(
            "{:<16} {:>11.3} s {:>10.3} s {:>10.3} s {:>12.0} {:>8.2} s {:>10}",
            name,
            timing.guild_create.as_secs_f64(),
            timing.chunks.as_secs_f64(),
            timing.committed.as_secs_f64(),
            expected as f64 / timing.committed.as_secs_f64(),
            timing.cpu.as_secs_f64(),
            stored.in_guild,
        );
    }
    println!();
    println!(
        "peak rss           {:.0} MiB (whole process, simulator included)",
        peak_rss_bytes()? as f64 / (1024.0 * 1024.0)
    );
    println!(
        "errors             {} (first pass), {} (second pass)",
        first.errors, second.errors
    );

    ensure!(
        after_first.in_guild == expected,
        "after the first sync the store holds {} members in the guild; the simulator has {expected}",
        after_first.in_guild
    );
    ensure!(
        after_second == after_first,
        "the second sync changed the members: {} in the guild before, {} after, or joins and \
         leaves per day differ",
        after_first.in_guild,
        after_second.in_guild
    );
    println!(
        "verified           store holds exactly the simulator's {expected} members; the second sync changed nothing"
    );
    Ok(ExitCode::SUCCESS)
}

/// What one pass took, measured from starting the gateway.
struct Timing {
    guild_create: Duration,
    chunks: Duration,
    committed: Duration,
    cpu: Duration,
    errors: u64,
}

/// Starts a bot, waits for its sync to be committed, and stops it.
async fn pass(discord: &DiscordConfig, bot: &BotConfig, chunks: u64) -> anyhow::Result<Timing> {
    let cpu_before = process_cpu_time()?;
    let started = Instant::now();
    let running = wiring::start(discord, bot.clone(), None).await?;
    let deadline = started + PASS_DEADLINE;
    let gateway = &running.gateway_stats;
    until(deadline, "GUILD_CREATE", || {
        gateway.events("GUILD_CREATE") >= 1
    })
    .await?;
    let guild_create = started.elapsed();
    until(deadline, "last member chunk", || {
        gateway.events("GUILD_MEMBERS_CHUNK") >= chunks
    })
    .await?;
    let all_chunks = started.elapsed();
    until(deadline, "committed sync", || {
        running.bot_stats.member_syncs() >= 1
    })
    .await?;
    let committed = started.elapsed();
    let cpu = process_cpu_time()?.saturating_sub(cpu_before);
    let errors = running.bot_stats.snapshot().errors_total();
    running.stop().await?;
    Ok(Timing {
        guild_create,
        chunks: all_chunks,
        committed,
        cpu,
        errors,
    })
}

/// Waits until `done`, looking every [`POLL`].
async fn until(deadline: Instant, what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    while !done() {
        ensure!(
            Instant::now() < deadline,
            "no {what} within {} s",
            PASS_DEADLINE.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// The guild's members as the read API sees them: how many are in the guild,
/// and joins and leaves per day over ten years. Two equal snapshots mean no
/// member joined, left or moved.
#[derive(Debug, PartialEq, Eq)]
struct Members {
    in_guild: u64,
    per_day: Vec<MembershipDay>,
}

/// Reads [`Members`] on a blocking thread (the store's clients block).
async fn snapshot(location: &Location, guild_id: GuildId) -> anyhow::Result<Members> {
    let location = location.clone();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    tokio::task::spawn_blocking(move || {
        let mut store =
            Store::open(&location).with_context(|| format!("while opening {location}"))?;
        let window = TimeWindow::new(now_ms - 3_650 * 86_400_000, now_ms + 86_400_000);
        Ok(Members {
            in_guild: store
                .member_count(guild_id)
                .context("while counting the members")?,
            per_day: store
                .membership_per_day(guild_id, window)
                .context("while reading joins and leaves")?,
        })
    })
    .await
    .context("the counting thread failed")?
}
