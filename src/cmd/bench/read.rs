//! `guildscope bench read`: how long each statistics query takes on a
//! database holding a realistic, skewed community (see
//! [`SyntheticSpec`]). Prints one row per query: median and max of the timed
//! runs, in milliseconds.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use guildscope_store::{
    ActivityScope, ExistingDatabase, Location, Store, StoreError, SyntheticSpec, TimeWindow,
    create_postgres_database,
};

use crate::{
    cli::{BenchReadArgs, BenchStore},
    config::LogFormat,
    logging,
};

/// The server used when no `--database` is given.
pub(crate) const DEFAULT_POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// 2026-11-22 00:00 UTC: the synthetic data ends here, so every run (and
/// every re-use of a seeded database) asks the same questions.
const END_MS: i64 = 1_795_305_600_000;
/// The synthetic data spans this many days.
const DAYS: u32 = 90;

/// Seeds (if needed) and measures.
pub async fn run(args: BenchReadArgs) -> anyhow::Result<ExitCode> {
    logging::init("info", LogFormat::Auto);
    // The store is synchronous (the PostgreSQL client runs its own runtime),
    // so the whole benchmark runs on a blocking thread.
    tokio::task::spawn_blocking(move || measure(&args))
        .await
        .context("the benchmark thread failed")?
}

fn measure(args: &BenchReadArgs) -> anyhow::Result<ExitCode> {
    let location = match (&args.database, args.store) {
        (Some(url), _) => Location::parse(url),
        (None, BenchStore::Sqlite) => Location::Sqlite(PathBuf::from("guildscope-bench-read.db")),
        (None, BenchStore::Postgres) => Location::parse(
            &create_postgres_database(
                DEFAULT_POSTGRES_ADMIN,
                "guildscope_bench_read",
                ExistingDatabase::Keep,
            )
            .context("while creating the benchmark database")?,
        ),
    };
    let mut store = Store::open(&location).with_context(|| format!("while opening {location}"))?;
    let spec = SyntheticSpec {
        messages: args.rows,
        end_ms: END_MS,
        days: DAYS,
    };
    let started = Instant::now();
    let seeded = store
        .seed_synthetic(spec)
        .context("while seeding the benchmark database")?;
    if seeded > 0 {
        println!(
            "seeded {seeded} messages in {:.1} s ({:.0} rows/s)",
            started.elapsed().as_secs_f64(),
            seeded as f64 / started.elapsed().as_secs_f64()
        );
    }
    let stored = store.stored_messages()?;

    let guild = SyntheticSpec::GUILDS[0];
    let day = TimeWindow::last_days(END_MS, 1);
    let week = TimeWindow::last_days(END_MS, 7);
    let month = TimeWindow::last_days(END_MS, 30);
    let quarter = TimeWindow::last_days(END_MS, DAYS);
    let busiest_channel = SyntheticSpec::channel(0);
    let busiest_author = SyntheticSpec::author(0);
    // Each query returns how many rows (or the count) it produced, printed
    // as a sanity check next to its timing.
    type Query<'a> = (&'a str, Box<dyn Fn(&mut Store) -> Result<u64, StoreError>>);
    let queries: Vec<Query> = vec![
        (
            "messages per channel, 24 h",
            Box::new(move |s| Ok(s.channel_messages(guild, day)?.len() as u64)),
        ),
        (
            "messages per channel, 7 days",
            Box::new(move |s| Ok(s.channel_messages(guild, week)?.len() as u64)),
        ),
        (
            "top 10 channels, 7 days",
            Box::new(move |s| Ok(s.top_channels(guild, week, 10)?.len() as u64)),
        ),
        (
            "top 10 channels, 30 days",
            Box::new(move |s| Ok(s.top_channels(guild, month, 10)?.len() as u64)),
        ),
        (
            "10-min blocks, guild, 24 h",
            Box::new(
                move |s| Ok(s.activity_blocks(guild, ActivityScope::Guild, day)?.len() as u64),
            ),
        ),
        (
            "10-min blocks, guild, 7 days",
            Box::new(move |s| {
                Ok(s.activity_blocks(guild, ActivityScope::Guild, week)?.len() as u64)
            }),
        ),
        (
            "10-min blocks, busiest channel, 7 days",
            Box::new(move |s| {
                Ok(
                    s.activity_blocks(guild, ActivityScope::Channel(busiest_channel), week)?
                        .len() as u64,
                )
            }),
        ),
        (
            "top 10 authors, 7 days",
            Box::new(move |s| Ok(s.top_authors(guild, week, 10)?.len() as u64)),
        ),
        (
            "top 10 authors, 30 days",
            Box::new(move |s| Ok(s.top_authors(guild, month, 10)?.len() as u64)),
        ),
        (
            "one author's count, 30 days (busiest)",
            Box::new(move |s| s.author_messages(guild, busiest_author, month)),
        ),
        (
            "joins and leaves per day, 90 days",
            Box::new(move |s| Ok(s.membership_per_day(guild, quarter)?.len() as u64)),
        ),
        (
            "help-forum threads in use",
            Box::new(move |s| Ok(s.forum_threads_in_use(guild)?.len() as u64)),
        ),
        ("total members", Box::new(move |s| s.member_count(guild))),
    ];

    println!("benchmark          read API latency");
    println!("database           {location}");
    println!("messages stored    {stored}");
    println!("guild              {guild} (the largest of 3)");
    println!("runs per query     {} (after 1 warm-up)", args.runs.max(1));
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>12}",
        "query", "median ms", "max ms", "result"
    );
    for (name, query) in &queries {
        let result = query(&mut store).with_context(|| format!("while running {name:?}"))?;
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            query(&mut store).with_context(|| format!("while running {name:?}"))?;
            times.push(started.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        let max = times[times.len() - 1];
        println!(
            "{name:<40} {:>10.2} {:>10.2} {result:>12}",
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    Ok(ExitCode::SUCCESS)
}
