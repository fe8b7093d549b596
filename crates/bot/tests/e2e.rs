//! End to end: the simulator sends a seeded community's traffic over real
//! sockets, the bot stores statistics, and the stored rows must equal the
//! simulator's ground truth, on SQLite and on PostgreSQL, also across a
//! forced gateway disconnect, a cut connection to the database, and a
//! PostgreSQL server stopped and restarted in the middle of the run.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PrivatePostgres, postgres, sqlite, until};

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use guildscope_bot::{Bot, BotConfig, BotStats, CollectorConfig, WriterConfig};
use guildscope_discord::{ContentKey, DiscordConfig, Gateway, GatewayHandle, Rest};
use guildscope_model::{ChannelId, Secret};
use guildscope_simulator::{
    ChannelKind, Fault, GroundTruth, InteractionKind, InteractionRequest, SimConfig, Simulator,
};
use guildscope_store::{Location, Store};
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
};

/// A TCP proxy in front of PostgreSQL that can be cut, to stand for the
/// database going away: open connections are severed and new ones refused
/// until it is restored.
struct Outage {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Outage {
    async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let target = target.to_owned();
        let flag = Arc::clone(&up);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection reset
                }
                let target = target.clone();
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        () = async {
                            while flag.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        } => {}
                    }
                });
            }
        });
        Self { port, up }
    }
}

/// A database that a test can take away and bring back.
trait Switch: Sync {
    fn set_up(&self, up: bool);
}

impl Switch for Outage {
    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

impl Switch for PrivatePostgres {
    /// Stops or starts the whole server (`pg_ctl stop -m fast` / `start`).
    fn set_up(&self, up: bool) {
        tokio::task::block_in_place(|| self.set_running(up));
    }
}

/// What a run can do to the bot half-way through its traffic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disruption {
    None,
    GatewayDisconnect,
    DatabaseOutage,
}

struct Run {
    sim: Simulator,
    gateway: GatewayHandle,
    stats: Arc<BotStats>,
    runtime: tokio::task::JoinHandle<Result<(), guildscope_store::StoreError>>,
    rest: Rest,
}

async fn start(location: Location, seed: u64) -> Run {
    start_with_key(location, seed, None).await
}

/// Like [`start`], with keyed hashing of message content when `key` is given.
async fn start_with_key(location: Location, seed: u64, key: Option<ContentKey>) -> Run {
    let sim = Simulator::start(SimConfig {
        seed,
        guilds: 2,
        // More than the large threshold: members arrive by request and chunks.
        members: 400,
        shards: 2,
        heartbeat_interval: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let info = sim.info();
    let mut discord = DiscordConfig::local(
        Secret::new(info.token.clone()),
        info.rest_url.clone(),
        info.gateway_url.clone(),
    );
    discord.large_threshold = 100;
    if key.is_some() {
        discord.intents.message_content = true;
        discord.content_key = key;
    }
    let rest = Rest::new(&discord);
    let Gateway { handle, events } = Gateway::start(&discord, &rest).await.unwrap();
    let config = BotConfig {
        // Everything the simulator sends is stored, so rows can be compared
        // with its ground truth one to one (bot replies included).
        collector: CollectorConfig {
            include_bots: true,
            ..CollectorConfig::default()
        },
        writer: Some(WriterConfig {
            batch_interval: Duration::from_millis(20),
            ..WriterConfig::new(location)
        }),
        ..BotConfig::default()
    };
    let bot = Bot::new(config, rest.clone(), Arc::new(handle.clone()));
    let stats = bot.stats();
    let runtime = tokio::spawn(bot.run(events));
    Run {
        sim,
        gateway: handle,
        stats,
        runtime,
        rest,
    }
}

fn sent(truth: &GroundTruth) -> u64 {
    truth.events_sent.values().sum()
}

impl Run {
    /// Stops the traffic, waits until every dispatch arrived and the
    /// simulator is quiet, then shuts the bot down (committing everything).
    async fn finish(self) -> GroundTruth {
        self.sim.set_rate(0.0);
        let stats = Arc::clone(self.gateway.stats());
        let mut last = (u64::MAX, Instant::now());
        until("the bot to receive every dispatch", || {
            let now = sent(&self.sim.ground_truth());
            if now != last.0 {
                last = (now, Instant::now());
            }
            stats.total_events() == now && last.1.elapsed() > Duration::from_millis(300)
        })
        .await;
        self.gateway.shutdown().await;
        self.runtime.await.unwrap().unwrap();
        let truth = self.sim.ground_truth();
        self.sim.shutdown().await;
        truth
    }
}

/// The stored rows equal the ground truth, guild by guild.
fn assert_rows_match(location: &Location, truth: &GroundTruth) {
    let location = location.clone();
    let truth = truth.clone();
    std::thread::spawn(move || {
        let mut store = Store::open(&location).unwrap();
        let mut count = |sql: String| store.count(&sql).unwrap() as u64;
        for (guild, t) in &truth.guilds {
            let mut total = 0;
            for (place, n) in &t.messages_per_channel {
                let stored = count(format!(
                    "SELECT COUNT(*) FROM messages WHERE guild_id = {guild} AND COALESCE(thread_id, channel_id) = {place}"
                ));
                assert_eq!(stored, *n, "guild {guild}: messages in channel or thread {place}");
                total += stored;
            }
            assert_eq!(total, t.messages_created, "guild {guild}: messages");
            assert_eq!(
                count(format!("SELECT COUNT(*) FROM messages WHERE guild_id = {guild}")),
                t.messages_created,
                "guild {guild}: no messages stored beyond what was sent"
            );
            assert_eq!(
                count(format!("SELECT COUNT(*) FROM messages WHERE guild_id = {guild} AND is_deleted")),
                t.dispatched_messages_deleted,
                "guild {guild}: deleted messages"
            );
            assert_eq!(
                count(format!("SELECT COUNT(*) FROM members WHERE guild_id = {guild} AND in_guild")),
                t.members_in_guild,
                "guild {guild}: members in guild"
            );
            assert_eq!(
                count(format!("SELECT COUNT(*) FROM channels WHERE guild_id = {guild} AND NOT is_deleted")),
                t.channels,
                "guild {guild}: channels"
            );
            assert_eq!(
                count(format!("SELECT COUNT(*) FROM threads WHERE guild_id = {guild} AND NOT is_deleted")),
                t.threads,
                "guild {guild}: threads"
            );
        }
    })
    .join()
    .unwrap();
}

async fn run_and_compare(
    location: Location,
    seed: u64,
    disruption: Disruption,
    outage: Option<&dyn Switch>,
) {
    let run = start(location.clone(), seed).await;
    until("traffic to flow", || {
        run.gateway.stats().events("GUILD_CREATE") >= 2
    })
    .await;
    run.sim.set_rate(400.0);
    until("messages", || run.stats.events_total() > 300).await;
    match disruption {
        Disruption::None => {}
        Disruption::GatewayDisconnect => {
            run.sim
                .inject_fault(Fault::DropConnection {
                    shard: 0,
                    close_code: None,
                })
                .unwrap();
            run.sim
                .inject_fault(Fault::DropConnection {
                    shard: 1,
                    close_code: Some(4000),
                })
                .unwrap();
            until("both shards to resume", || {
                run.gateway.stats().resumes() >= 2
            })
            .await;
        }
        Disruption::DatabaseOutage => {
            let outage = outage.expect("an outage proxy");
            outage.set_up(false);
            let before = run.stats.events_total();
            // The bot keeps receiving and queueing while the database is away,
            // and keeps answering commands.
            until("events during the outage", || {
                run.stats.events_total() > before + 400
            })
            .await;
            let answered = run.stats.snapshot().commands_answered();
            let guild = &run.sim.community().guilds[0];
            let member = guild.members.iter().find(|m| !m.bot).expect("a member");
            let channel = guild
                .channels
                .iter()
                .find(|c| c.kind == ChannelKind::Text)
                .expect("a text channel");
            run.sim
                .inject_interaction(InteractionRequest {
                    guild_id: guild.id,
                    user_id: member.user_id,
                    channel_id: channel.id,
                    name: "ping".into(),
                    options: serde_json::Value::Null,
                    kind: InteractionKind::Command,
                })
                .unwrap();
            until("a command answered during the outage", || {
                run.stats.snapshot().commands_answered() > answered
            })
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(
                run.stats
                    .snapshot()
                    .errors
                    .get("store_write")
                    .copied()
                    .unwrap_or(0)
                    > 0,
                "the outage was noticed"
            );
            outage.set_up(true);
        }
    }
    until("more messages", || run.stats.events_total() > 1_500).await;
    let truth = run.finish().await;
    assert!(
        truth
            .events_sent
            .get("MESSAGE_CREATE")
            .copied()
            .unwrap_or(0)
            > 500
    );
    assert_rows_match(&location, &truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_equal_the_ground_truth() {
    let db = sqlite();
    run_and_compare(db.location.clone(), 11, Disruption::None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_equal_the_ground_truth_across_a_gateway_disconnect() {
    let db = sqlite();
    run_and_compare(db.location.clone(), 12, Disruption::GatewayDisconnect, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_equal_the_ground_truth_across_a_gateway_disconnect() {
    let Some((db, _)) = postgres("disconnect") else {
        return;
    };
    run_and_compare(db.location.clone(), 13, Disruption::GatewayDisconnect, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_equal_the_ground_truth_across_a_database_outage() {
    let Some((db, url)) = postgres("outage") else {
        return;
    };
    let outage = Outage::start("127.0.0.1:5432").await;
    let through_proxy =
        Location::parse(&url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", outage.port)));
    run_and_compare(
        through_proxy,
        14,
        Disruption::DatabaseOutage,
        Some(&outage as &dyn Switch),
    )
    .await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_equal_the_ground_truth_across_a_postgres_restart() {
    // A server of the test's own: stopping the machine's shared one would
    // disturb every other test using it.
    let Some(server) = PrivatePostgres::start() else {
        return;
    };
    let admin = server.url("postgres");
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        client.batch_execute("CREATE DATABASE stats").unwrap();
    })
    .await
    .unwrap();
    let location = Location::parse(&server.url("stats"));
    run_and_compare(
        location,
        16,
        Disruption::DatabaseOutage,
        Some(&server as &dyn Switch),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_in_message_content_is_stored_nowhere() {
    const CANARY: &str = "canary-7f3a9c1e-never-store-me";
    let db = sqlite();
    let path = match &db.location {
        Location::Sqlite(path) => path.clone(),
        Location::Postgres(_) => unreachable!(),
    };
    // Keyed hashing on: the content is hashed on arrival, and the hash is all
    // that may reach the database.
    let key = ContentKey::new(&Secret::new("a key of at least sixteen characters"));
    let run = start_with_key(db.location.clone(), 15, Some(key.clone())).await;
    until("guilds", || run.gateway.stats().events("GUILD_CREATE") >= 2).await;
    let channel = run.sim.community().guilds[0]
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Text)
        .map(|c| ChannelId::new(c.id))
        .expect("a text channel");
    let before = run.stats.events_total();
    for _ in 0..5 {
        run.rest
            .create_message(channel, format!("{CANARY} says hello"))
            .await
            .unwrap();
    }
    until("the canary messages to arrive", || {
        run.stats.events_total() >= before + 5
    })
    .await;
    run.finish().await;
    let hex: String = key
        .hash(&format!("{CANARY} says hello"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (stored, hashed) = {
        let location = db.location.clone();
        std::thread::spawn(move || {
            let mut store = Store::open(&location).unwrap();
            let hashed = format!("SELECT COUNT(*) FROM messages WHERE keyed_hash = x'{hex}'");
            (
                store.count("SELECT COUNT(*) FROM messages").unwrap(),
                store.count(&hashed).unwrap(),
            )
        })
        .join()
        .unwrap()
    };
    assert!(
        stored >= 5,
        "the canary messages' metadata is stored ({stored} rows)"
    );
    assert_eq!(
        hashed, 5,
        "each canary message carries the HMAC of its content"
    );
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
                "the canary was found in {}",
                file.display()
            );
        }
    }
}
