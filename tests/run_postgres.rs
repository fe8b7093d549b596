//! `guildscope run --database postgres://...` against `guildscope simulate`,
//! both as separate processes: once the traffic stops and the bot shuts down,
//! the rows in PostgreSQL equal the simulator's ground truth.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::{Running, field, ground_truth, guildscope_in, http, start_simulator};
use guildscope_store::{ExistingDatabase, Location, Store, create_postgres_database};

fn sent(truth: &serde_json::Value) -> u64 {
    truth["events_sent"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[test]
fn run_against_simulate_leaves_rows_equal_to_the_ground_truth_in_postgres() {
    let admin = std::env::var("GUILDSCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("guildscope_cli_run_{}", std::process::id());
    let url = match create_postgres_database(&admin, &name, ExistingDatabase::Recreate) {
        Ok(url) => url,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI and unreachable at {admin}: {e}")
        }
        Err(e) => {
            eprintln!("skipping: PostgreSQL is unreachable at {admin} ({e})");
            return;
        }
    };

    // 500 members per guild: more than the large threshold, so the member
    // lists arrive by request and chunks.
    let (_sim, info) = start_simulator(&["--rate", "300", "--guilds", "2", "--members", "500"]);
    let control = field(&info, "control_url").to_owned();
    let dir = tempfile::tempdir().unwrap();
    // Store everything the simulator sends (the bot's own replies too), so
    // rows compare one to one with what it dispatched.
    std::fs::write(
        dir.path().join("guildscope.toml"),
        "[stats]\ninclude_bots = true\n",
    )
    .unwrap();
    let child = guildscope_in(dir.path())
        .args(["run", "--config", "guildscope.toml"])
        .args([
            "--api-base",
            field(&info, "rest_url"),
            "--gateway-base",
            field(&info, "gateway_url"),
        ])
        .args(["--database", &url])
        .env("DISCORD_TOKEN", field(&info, "token"))
        .env("GUILDSCOPE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bot = Running(child);

    let deadline = Instant::now() + Duration::from_secs(30);
    while ground_truth(&control)["events_sent"]["MESSAGE_CREATE"]
        .as_u64()
        .unwrap_or(0)
        < 600
    {
        assert!(Instant::now() < deadline, "no traffic reached the bot");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stop the traffic and let the simulator go quiet, then let the bot's
    // last batches commit before stopping it.
    let (status, _) = http(
        "POST",
        &format!("{control}/traffic"),
        None,
        Some(r#"{"rate":0}"#),
    );
    assert!((200..300).contains(&status));
    let mut last = sent(&ground_truth(&control));
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = sent(&ground_truth(&control));
        if now == last {
            break;
        }
        last = now;
    }
    std::thread::sleep(Duration::from_secs(1));
    let exit = bot.terminate();
    assert!(exit.success(), "{exit:?}");

    let truth = ground_truth(&control);
    let mut store = Store::open(&Location::parse(&url)).unwrap();
    let mut count = |sql: String| store.count(&sql).unwrap() as u64;
    for (guild, t) in truth["guilds"].as_object().unwrap() {
        let expect = |key: &str| t[key].as_u64().unwrap();
        for (place, n) in t["messages_per_channel"].as_object().unwrap() {
            assert_eq!(
                count(format!(
                    "SELECT COUNT(*) FROM messages WHERE guild_id = {guild} AND COALESCE(thread_id, channel_id) = {place}"
                )),
                n.as_u64().unwrap(),
                "guild {guild}: messages in {place}"
            );
        }
        let checks = [
            (
                "messages_created",
                format!("SELECT COUNT(*) FROM messages WHERE guild_id = {guild}"),
            ),
            (
                "dispatched_messages_deleted",
                format!("SELECT COUNT(*) FROM messages WHERE guild_id = {guild} AND is_deleted"),
            ),
            (
                "members_in_guild",
                format!("SELECT COUNT(*) FROM members WHERE guild_id = {guild} AND in_guild"),
            ),
            (
                "channels",
                format!(
                    "SELECT COUNT(*) FROM channels WHERE guild_id = {guild} AND NOT is_deleted"
                ),
            ),
            (
                "threads",
                format!("SELECT COUNT(*) FROM threads WHERE guild_id = {guild} AND NOT is_deleted"),
            ),
        ];
        for (key, sql) in checks {
            assert_eq!(count(sql), expect(key), "guild {guild}: {key}");
        }
    }
    drop(store);
    if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}
