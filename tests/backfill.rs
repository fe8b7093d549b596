//! History backfill against the simulator over real sockets: an empty
//! database is filled from each channel's history (compared with the
//! simulator's own community), an interrupted run resumes where it stopped
//! without fetching a committed page twice, channels the bot cannot read are
//! skipped, and the `guildscope backfill` command prints its progress and
//! summary.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, process::Command};

use guildscope_bot::{
    BackfillConfig, BackfillEvent, BackfillSummary, backfill, backfill::window_between,
};
use guildscope_discord::{DiscordConfig, Rest};
use guildscope_model::{ChannelId, GuildId, Secret};
use guildscope_simulator::{ChannelKind, Fault, GuildInfo, SimConfig, Simulator};
use guildscope_store::{Location, Op, Store, ThreadRow};

/// The simulated clock's start: history lies in the week before it.
const START_MS: i64 = 1_750_000_000_000;
const DAY_MS: i64 = 86_400_000;
/// Messages of history per channel and thread: one full page and a half.
const HISTORY: usize = 150;

async fn simulator() -> Simulator {
    Simulator::start(SimConfig {
        seed: 11,
        guilds: 1,
        members: 60,
        history_per_channel: HISTORY,
        start_time_ms: Some(START_MS as u64),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// The text channels under the Staff category, which the bot cannot read.
fn staff_channels(guild: &GuildInfo) -> Vec<u64> {
    let staff: Vec<u64> = guild
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Category && c.name == "Staff")
        .map(|c| c.id)
        .collect();
    guild
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Text && c.parent_id.is_some_and(|p| staff.contains(&p)))
        .map(|c| c.id)
        .collect()
}

/// Messages the database should hold per channel (thread messages count for
/// their parent), with `less` people's messages fewer in some channels.
fn expected(guild: &GuildInfo, less: &BTreeMap<u64, u64>) -> BTreeMap<u64, u64> {
    let staff = staff_channels(guild);
    let mut expected = BTreeMap::new();
    for channel in &guild.channels {
        if channel.kind == ChannelKind::Text && !staff.contains(&channel.id) {
            *expected.entry(channel.id).or_default() +=
                HISTORY as u64 - less.get(&channel.id).copied().unwrap_or(0);
        }
    }
    for thread in &guild.threads {
        *expected.entry(thread.parent_id.unwrap()).or_default() += HISTORY as u64;
    }
    expected
}

fn rest(sim: &Simulator) -> Rest {
    Rest::new(&DiscordConfig {
        api_base: Some(sim.info().rest_url.clone()),
        ..DiscordConfig::new(Secret::new(sim.info().token.clone()))
    })
}

/// Runs a backfill on a fresh connection to `location`.
async fn run(
    rest: &Rest,
    location: &Location,
    config: &BackfillConfig,
    shutdown: impl Future<Output = ()>,
    observer: &mut dyn FnMut(&BackfillEvent<'_>),
) -> BackfillSummary {
    let store = Store::open(location).unwrap();
    backfill(rest, store, config, shutdown, observer)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_backfill_resumes_and_ends_with_the_simulators_history() {
    let sim = simulator().await;
    let guild = sim.community().guilds[0].clone();
    let guild_id = GuildId::new(guild.id);
    let rest = rest(&sim);

    // The bot's own message must not be kept; it also pushes the oldest
    // message of the bounded history out.
    let general = guild
        .channels
        .iter()
        .find(|c| c.name == "general")
        .unwrap()
        .id;
    rest.create_message(ChannelId::new(general), "posted by the bot".into())
        .await
        .unwrap();

    // REST lists active threads only; archived ones are known from the
    // gateway, as a bot that ran before would have recorded them.
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("stats.db"));
    let threads: Vec<Op> = guild
        .threads
        .iter()
        .map(|t| {
            Op::UpsertThread(ThreadRow {
                id: ChannelId::new(t.id),
                guild_id,
                parent_id: t.parent_id.map(ChannelId::new),
                name: t.name.clone(),
                archived: false,
                locked: false,
                created_at_ms: None,
            })
        })
        .collect();
    Store::open(&location).unwrap().apply(&threads).unwrap();

    let window = window_between(START_MS - 30 * DAY_MS, Some(START_MS + DAY_MS)).unwrap();
    let config = BackfillConfig {
        guild: Some(guild_id),
        ..BackfillConfig::new(window)
    };

    // First run: interrupted right after its fifth page is committed (two
    // channels done, the third one page in).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stop = Some(stop);
    let mut pages = 0;
    let first = run(
        &rest,
        &location,
        &config,
        async {
            let _ = stopped.await;
        },
        &mut |event| {
            if let BackfillEvent::Page { .. } = event {
                pages += 1;
                if pages == 5
                    && let Some(stop) = stop.take()
                {
                    let _ = stop.send(());
                }
            }
        },
    )
    .await;
    assert!(first.interrupted, "{first:?}");
    assert_eq!(first.channels_done, 2, "{first:?}");
    assert_eq!(first.messages_seen, 400, "{first:?}");
    let stored = Store::open(&location)
        .unwrap()
        .count("SELECT COUNT(*) FROM messages")
        .unwrap();
    assert_eq!(stored as u64, first.messages_inserted);

    // Second run: continues from the recorded cursors and finishes, waiting
    // out a 429 storm and retrying a server error on the way.
    sim.inject_fault(Fault::RateLimit {
        route: "GET /channels".to_owned(),
        count: 3,
        retry_after: 0.1,
        global: false,
    })
    .unwrap();
    sim.inject_fault(Fault::ServerError {
        route: "GET /channels".to_owned(),
        count: 1,
        status: 502,
    })
    .unwrap();
    let mut skipped = Vec::new();
    let second = run(
        &rest,
        &location,
        &config,
        std::future::pending(),
        &mut |event| {
            if let BackfillEvent::ChannelSkipped { target, error } = event {
                assert_eq!(error.status(), Some(403), "{error}");
                assert_eq!(error.discord_code(), Some(50_001), "{error}");
                skipped.push(target.channel_id.to_string().parse::<u64>().unwrap());
            }
        },
    )
    .await;
    assert!(!second.interrupted, "{second:?}");
    let staff = staff_channels(&guild);
    assert!(!staff.is_empty());
    assert_eq!(skipped, staff, "{second:?}");
    assert_eq!(second.channels_skipped, staff.len() as u64);
    let statuses: Vec<u16> = sim.rest_log().iter().map(|call| call.status).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 3);
    assert_eq!(statuses.iter().filter(|&&s| s == 502).count(), 1);

    let less = BTreeMap::from([(general, 1)]);
    let want = expected(&guild, &less);
    let people: u64 = want.values().sum();
    let fetched = people + 1; // the bot's message was seen, not kept
    // Nothing committed by the first run was fetched again.
    assert_eq!(first.messages_seen + second.messages_seen, fetched);
    assert_eq!(first.messages_inserted + second.messages_inserted, people);

    let mut store = Store::open(&location).unwrap();
    let have: BTreeMap<u64, u64> = store.messages_per_channel().unwrap().into_iter().collect();
    assert_eq!(have, want);
    let in_threads = store
        .count("SELECT COUNT(*) FROM messages WHERE thread_id IS NOT NULL")
        .unwrap();
    assert_eq!(in_threads as usize, guild.threads.len() * HISTORY);
    let bots = store
        .count(&format!(
            "SELECT COUNT(*) FROM messages WHERE author_id = {}",
            sim.community().bot_user_id
        ))
        .unwrap();
    assert_eq!(bots, 0);
    drop(store);

    // Third run of the same window: everything is already complete.
    let requests = sim.rest_log().len();
    let third = run(
        &rest,
        &location,
        &config,
        std::future::pending(),
        &mut |_| {},
    )
    .await;
    assert_eq!(third.messages_seen, 0, "{third:?}");
    assert_eq!(third.messages_inserted, 0, "{third:?}");
    assert_eq!(
        third.channels_done + third.channels_skipped,
        second.channels_done + second.channels_skipped
    );
    let history_requests = sim.rest_log()[requests..]
        .iter()
        .filter(|call| call.route.contains("messages"))
        .count();
    // Only the unreadable channels are asked again.
    assert_eq!(history_requests, staff.len());
    sim.shutdown().await;
}

#[test]
fn the_backfill_command_shows_progress_and_a_summary() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime.block_on(simulator());
    let guild = sim.community().guilds[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_guildscope"))
        .current_dir(dir.path())
        .env_remove("GUILDSCOPE_CONFIG")
        .env("DISCORD_TOKEN", &sim.info().token)
        .env("GUILDSCOPE_LOG", "warn")
        .args(["backfill", "--since", "2020-01-01", "--until"])
        .arg("2030-01-01T00:00:00Z")
        .args(["--guild", &guild.id.to_string()])
        .args(["--api-base", &sim.info().rest_url])
        .args(["--database", "stats.db"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let channels = guild
        .channels
        .iter()
        .filter(|c| matches!(c.kind, ChannelKind::Text | ChannelKind::Forum))
        .count();
    // REST lists active threads only, and this database knows no others.
    let active = runtime
        .block_on(async { rest(&sim).active_threads(GuildId::new(guild.id)).await })
        .unwrap();
    let targets = channels + active.len();
    assert_eq!(
        lines[0],
        format!(
            "guild {}: {targets} channels and threads (listed over REST)",
            guild.id
        )
    );
    // A line per channel, then the summary.
    assert_eq!(lines.len(), 1 + targets + 1, "{stdout}");
    let staff = staff_channels(&guild);
    for id in &staff {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("({id})")))
            .unwrap();
        assert!(line.contains("skipped") && line.contains("50001"), "{line}");
    }
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "backfill complete: channels done: {}, skipped: {}, ignored: 0; messages seen: ",
            targets - staff.len(),
            staff.len()
        )),
        "{summary}"
    );
    runtime.block_on(sim.shutdown());
}
