//! Startup sync of a large guild: the member list arrives in chunks after a
//! member request, and once the last chunk is in, members the store knows
//! but the guild no longer has are marked as having left, while everyone in
//! the chunks stays. A second sync against the same database changes
//! nothing. On SQLite and on PostgreSQL.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{postgres, sqlite, until};
use guildscope_bot::{Bot, BotConfig, WriterConfig};
use guildscope_discord::{DiscordConfig, Gateway, Rest};
use guildscope_model::{GuildId, Secret, UserId};
use guildscope_simulator::{SimConfig, Simulator};
use guildscope_store::{Location, MemberRow, Op, Store};

/// Members of the simulated guild: well above the large threshold, and more
/// than two chunks of 1,000.
const MEMBERS: u32 = 2_500;
/// Members the database knows that the simulator never had: ids far below
/// any snowflake the simulator hands out.
const GONE: u64 = 40;

/// Runs one bot until its member sync of the guild is committed, then stops it.
async fn sync_once(sim: &Simulator, location: &Location) {
    let info = sim.info();
    let mut discord = DiscordConfig::local(
        Secret::new(info.token.clone()),
        info.rest_url.clone(),
        info.gateway_url.clone(),
    );
    discord.large_threshold = 100;
    let rest = Rest::new(&discord);
    let Gateway { handle, events } = Gateway::start(&discord, &rest).await.unwrap();
    let config = BotConfig {
        writer: Some(WriterConfig::new(location.clone())),
        ..BotConfig::default()
    };
    let bot = Bot::new(config, rest, Arc::new(handle.clone()));
    let stats = bot.stats();
    let runtime = tokio::spawn(bot.run(events));
    until("the member sync to be committed", || {
        stats.member_syncs() >= 1
    })
    .await;
    assert!(
        handle.stats().events("GUILD_MEMBERS_CHUNK") >= u64::from(MEMBERS.div_ceil(1_000)),
        "the sync was committed before every chunk arrived"
    );
    handle.shutdown().await;
    runtime.await.unwrap().unwrap();
}

/// What the store holds for the guild: members in it, members marked left
/// (with a time), and of those the ones the simulator never had.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    in_guild: u64,
    left: u64,
    gone_left: u64,
}

fn stored(location: &Location, guild: GuildId) -> Stored {
    let location = location.clone();
    // The store's clients block; keep them off the async workers.
    std::thread::spawn(move || {
        let mut store = Store::open(&location).unwrap();
        let mut count = |sql: String| store.count(&sql).unwrap() as u64;
        Stored {
            in_guild: count(format!(
                "SELECT COUNT(*) FROM members WHERE guild_id = {guild} AND in_guild"
            )),
            left: count(format!(
                "SELECT COUNT(*) FROM members WHERE guild_id = {guild} AND NOT in_guild AND left_at IS NOT NULL"
            )),
            gone_left: count(format!(
                "SELECT COUNT(*) FROM members WHERE guild_id = {guild} AND user_id <= {GONE}
                   AND NOT in_guild AND left_at IS NOT NULL"
            )),
        }
    })
    .join()
    .unwrap()
}

/// Seeds members the simulator does not have, as in the guild.
fn seed_gone_members(location: &Location, guild: GuildId) {
    let location = location.clone();
    std::thread::spawn(move || {
        let ops: Vec<Op> = (1..=GONE)
            .map(|id| {
                Op::UpsertMember(MemberRow {
                    guild_id: guild,
                    user_id: UserId::new(id),
                    name: format!("gone-{id}"),
                    is_bot: false,
                    is_staff: false,
                    pending: false,
                    joined_at_ms: Some(1_600_000_000_000),
                })
            })
            .collect();
        Store::open(&location).unwrap().apply(&ops).unwrap();
    })
    .join()
    .unwrap();
}

async fn large_guild_sync_marks_the_gone_as_left(location: Location) {
    let sim = Simulator::start(SimConfig {
        guilds: 1,
        members: MEMBERS,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let truth = sim.ground_truth();
    let (guild, guild_truth) = truth.guilds.iter().next().unwrap();
    let guild = GuildId::new(guild.parse().unwrap());
    let members = guild_truth.members_in_guild;
    assert_eq!(members, u64::from(MEMBERS));

    seed_gone_members(&location, guild);
    assert_eq!(
        stored(&location, guild),
        Stored {
            in_guild: GONE,
            left: 0,
            gone_left: 0
        }
    );

    sync_once(&sim, &location).await;
    let after_first = stored(&location, guild);
    assert_eq!(
        after_first,
        Stored {
            in_guild: members,
            left: GONE,
            gone_left: GONE
        },
        "every simulated member is in the guild and only the gone ones left"
    );

    sync_once(&sim, &location).await;
    assert_eq!(
        stored(&location, guild),
        after_first,
        "a second sync changes nothing"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_large_guild_sync_marks_the_gone_as_left_and_keeps_the_rest() {
    let db = sqlite();
    large_guild_sync_marks_the_gone_as_left(db.location.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_large_guild_sync_marks_the_gone_as_left_and_keeps_the_rest() {
    let Some((db, _)) = postgres("sync") else {
        return;
    };
    large_guild_sync_marks_the_gone_as_left(db.location.clone()).await;
}
