//! The `guildscope` binary as a user runs it: real processes, real sockets.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn guildscope() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildscope"));
    command
        .env_remove("DISCORD_TOKEN")
        .env_remove("GUILDSCOPE_CONFIG")
        .env_remove("GUILDSCOPE_DATABASE");
    command
}

/// Kills the child when a test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 client: enough for the simulator's REST and control
/// routes, with no dependency on the code under test.
fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bot {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

fn start_simulator(extra: &[&str]) -> (Running, serde_json::Value) {
    let mut child = guildscope()
        .args(["simulate", "--listen", "127.0.0.1:0", "--seed", "3"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("first line {line:?}: {e}"));
    (running, info)
}

fn field<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

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
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
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
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
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
        let (_, body) = http("GET", &format!("{control}/ground-truth"), None, None);
        let truth: serde_json::Value = serde_json::from_str(&body).unwrap();
        if truth["events_sent"]["MESSAGE_CREATE"].as_u64().unwrap_or(0) >= 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no traffic reached the bot: {truth}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &bot.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = bot.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the bot did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
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
