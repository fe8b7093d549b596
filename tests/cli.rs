//! The `guildscope` binary as a user runs it: real processes, real sockets.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Read,
    process::Stdio,
    time::{Duration, Instant},
};

mod common;

use common::{Running, field, ground_truth, guildscope, http, one_line_failure, start_simulator};

#[test]
fn simulate_prints_its_urls_and_answers_rest_and_control() {
    let (_sim, info) = start_simulator(&["--rate", "0"]);
    let rest = field(&info, "rest_url");
    let control = field(&info, "control_url");
    let token = field(&info, "token");
    assert!(field(&info, "gateway_url").starts_with("ws://127.0.0.1:"));

    let (status, body) = http(
        "GET",
        &format!("{rest}/api/v10/gateway/bot"),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let gateway: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(gateway["shards"].as_u64().unwrap() >= 1, "{gateway}");

    let (status, _) = http(
        "GET",
        &format!("{rest}/api/v10/gateway/bot"),
        Some("wrong"),
        None,
    );
    assert_eq!(status, 401);

    let (status, body) = http("GET", &format!("{control}/ground-truth"), None, None);
    assert_eq!(status, 200, "{body}");
    let truth: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        truth["events_sent"].is_object() && truth["guilds"].is_object(),
        "{truth}"
    );

    let (status, body) = http("GET", &format!("{control}/rest-log"), None, None);
    assert_eq!(status, 200);
    assert!(body.contains("/api/v10/gateway/bot"), "{body}");

    let (status, body) = http(
        "POST",
        &format!("{control}/faults"),
        None,
        Some(r#"{"kind":"clear"}"#),
    );
    assert!((200..300).contains(&status), "{status} {body}");
}

#[test]
fn demo_runs_with_nothing_configured_and_shows_events_flowing() {
    let dir = tempfile::tempdir().unwrap();
    let output = guildscope()
        .current_dir(dir.path())
        .args(["demo", "--duration", "4s", "--rate", "400"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("MESSAGE_CREATE"), "{stdout}");
    assert!(stdout.contains("every event arrived"), "{stdout}");
    let answered: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("commands answered"))
        .and_then(|l| l.split_whitespace().next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .expect("a commands line");
    assert!(answered > 0, "{stdout}");
    assert!(dir.path().join("guildscope-demo.db").exists());
}

#[test]
fn run_without_a_token_names_where_to_put_one() {
    let output = guildscope()
        .args(["run", "--database", "unused.db"])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output);
    assert!(
        stderr.contains("DISCORD_TOKEN") && stderr.contains("discord.token_file"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_config_stops_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("guildscope.toml");
    std::fs::write(&config, "[storage]\nurl = \"x.db\"\nbatch = 5\n").unwrap();
    let output = guildscope()
        .args(["run", "--config"])
        .arg(&config)
        .env("DISCORD_TOKEN", "t")
        .output()
        .unwrap();
    let stderr = one_line_failure(&output);
    assert!(
        stderr.contains("guildscope.toml:3") && stderr.contains("batch"),
        "{stderr}"
    );
}

#[test]
fn run_with_a_rejected_token_stops_at_once_with_a_clear_message() {
    let (_sim, info) = start_simulator(&["--rate", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = guildscope()
        .current_dir(dir.path())
        .args([
            "run",
            "--api-base",
            field(&info, "rest_url"),
            "--gateway-base",
            field(&info, "gateway_url"),
        ])
        .args(["--database", "stats.db"])
        .env("DISCORD_TOKEN", "not-the-token")
        .env("GUILDSCOPE_LOG", "off")
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") || stderr.contains("4004"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-token"),
        "the token leaked: {stderr}"
    );
}

#[test]
fn run_against_the_simulator_stores_statistics_and_stops_cleanly_on_sigterm() {
    let (_sim, info) = start_simulator(&["--rate", "300", "--guilds", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let child = guildscope()
        .current_dir(dir.path())
        .args([
            "run",
            "--api-base",
            field(&info, "rest_url"),
            "--gateway-base",
            field(&info, "gateway_url"),
        ])
        .args(["--database", "stats.db"])
        .env("DISCORD_TOKEN", field(&info, "token"))
        .env("GUILDSCOPE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bot = Running(child);
    let control = field(&info, "control_url");
    // Wait until the simulator has sent a good number of messages.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let truth = ground_truth(control);
        if truth["events_sent"]["MESSAGE_CREATE"].as_u64().unwrap_or(0) >= 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no traffic reached the bot: {truth}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = bot.terminate();
    let mut stderr = String::new();
    bot.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "{exit:?}: {stderr}");

    let output = guildscope()
        .current_dir(dir.path())
        .args(["migrate", "--database", "stats.db"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let expected = format!("schema version {}", guildscope_store::SCHEMA_VERSION);
    assert!(String::from_utf8_lossy(&output.stdout).contains(&expected));
    let db = rusqlite_count(
        &dir.path().join("stats.db"),
        "SELECT COUNT(*) FROM messages",
    );
    assert!(db >= 100, "only {db} messages stored");
}

/// Counts rows through the store, which is what `guildscope` itself uses.
fn rusqlite_count(path: &std::path::Path, sql: &str) -> i64 {
    guildscope_store::SqliteStore::open(path)
        .unwrap()
        .count(sql)
        .unwrap()
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = guildscope()
        .current_dir(dir.path())
        .args(["migrate", "--database", "fresh.db"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!(
            "fresh.db: schema version {}",
            guildscope_store::SCHEMA_VERSION
        )
    );
}
