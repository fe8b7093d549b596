//! Helpers shared by the tests that run the `guildscope` binary: the
//! command with a clean environment, a child that dies with the test, a
//! minimal HTTP client and a simulator started through `guildscope simulate`.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// `guildscope` with no configuration inherited from the environment.
pub fn guildscope() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildscope"));
    command
        .env_remove("DISCORD_TOKEN")
        .env_remove("GUILDSCOPE_CONFIG")
        .env_remove("GUILDSCOPE_DATABASE")
        .env_remove("GUILDSCOPE_KEYED_HASH_KEY")
        .env_remove("SENTRY_DSN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
        .env_remove("OTEL_SERVICE_NAME")
        // Tests run side by side: each bot's metrics endpoint takes a free port.
        .env("GUILDSCOPE_METRICS_LISTEN", "127.0.0.1:0");
    command
}

/// `guildscope` running in `dir`.
pub fn guildscope_in(dir: &Path) -> Command {
    let mut command = guildscope();
    command.current_dir(dir);
    command
}

/// Kills the child when a test fails half-way.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Sends SIGTERM and waits (at most 20 s) for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(exit) = self.0.try_wait().unwrap() {
                return exit;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The simulator's ground truth, from its control API.
pub fn ground_truth(control_url: &str) -> serde_json::Value {
    let (status, body) = http("GET", &format!("{control_url}/ground-truth"), None, None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Asserts that `guildscope` failed with exactly one line on stderr, and
/// returns that line.
pub fn one_line_failure(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// A minimal HTTP/1.1 client: enough for the simulator's REST and control
/// routes, with no dependency on the code under test.
pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
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

pub fn start_simulator(extra: &[&str]) -> (Running, serde_json::Value) {
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

pub fn field<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

impl Running {
    /// Sends SIGHUP (a reload request to `guildscope run`).
    pub fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Polls `done` every 50 ms until it gives a value; panics after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Injects a slash command through the simulator's control API
/// (`POST {control_url}/interactions`); returns the interaction id.
pub fn inject_command(
    control_url: &str,
    (guild, channel, user): (u64, u64, u64),
    name: &str,
    options: serde_json::Value,
) -> u64 {
    let body = serde_json::json!({
        "guild_id": guild.to_string(),
        "channel_id": channel.to_string(),
        "user_id": user.to_string(),
        "name": name,
        "options": options,
    });
    let (status, body) = http(
        "POST",
        &format!("{control_url}/interactions"),
        None,
        Some(&body.to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let injected: serde_json::Value = serde_json::from_str(&body).unwrap();
    field(&injected, "id").parse().unwrap()
}

/// The text the bot answered interaction `id` with, read back through the
/// simulator's control API (`GET {control_url}/interactions/{id}`): the
/// response message, or the edit of a deferred one. Waits up to 20 s.
pub fn command_answer(control_url: &str, id: u64) -> String {
    wait_for(
        &format!("the answer to interaction {id}"),
        Duration::from_secs(20),
        || {
            let (status, body) = http(
                "GET",
                &format!("{control_url}/interactions/{id}"),
                None,
                None,
            );
            assert_eq!(status, 200, "{body}");
            let record: serde_json::Value = serde_json::from_str(&body).unwrap();
            let callback = record.get("callback").filter(|c| !c.is_null())?;
            match callback["type"].as_u64() {
                // A deferred answer: the text comes as an edit.
                Some(5) => record["edits"]
                    .as_array()?
                    .first()
                    .and_then(|edit| edit["body"]["content"].as_str())
                    .map(str::to_owned),
                _ => callback["body"]["data"]["content"]
                    .as_str()
                    .map(str::to_owned),
            }
        },
    )
}
