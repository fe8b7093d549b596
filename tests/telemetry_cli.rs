//! The telemetry commands as separate processes, each against real peers in
//! this test: `guildscope marker` posting to two HTTP recorders standing in
//! for Grafana and Honeycomb, `guildscope check-config` probing an OTLP
//! receiver, a UDP socket, a Sentry ingest endpoint and those recorders (or
//! ports nobody listens on), and `guildscope demo` exporting its spans to an
//! OTLP receiver.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeSet,
    io::{Read, Seek},
    net::{TcpListener, UdpSocket},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{Running, guildscope_in, one_line_failure};
use guildscope_testkit::{
    http::{HttpRecorder, RecordedRequest},
    otlp::{AttrValue, ExportCounts, OtlpReceiver, Transport},
    sentry::FakeSentry,
};
use serde_json::json;

const GRAFANA_TOKEN: &str = "glsa_grafana-token-5b1e07";
const HONEYCOMB_KEY: &str = "hckey-honeycomb-9c2d41";
const DISCORD_TOKEN: &str = "discord-token-3f8a.secret-77";
const DEAD_DSN_KEY: &str = "deadbeefdsnkey0042";
const OTLP_HEADER_VALUE: &str = "otlp-header-value-71a0";
const OTLP_BEARER: &str = "otlp-bearer-88c1";

/// `guildscope` in `dir`, with none of the telemetry variables a developer's
/// shell may hold.
fn guildscope(dir: &Path) -> Command {
    let mut command = guildscope_in(dir);
    for var in [
        "GUILDSCOPE_API_BASE",
        "GUILDSCOPE_GATEWAY_BASE",
        "GUILDSCOPE_LOG",
        "GUILDSCOPE_METRICS_TOKEN",
        "GUILDSCOPE_SENTRY_DSN",
        "GUILDSCOPE_GRAFANA_TOKEN",
        "GUILDSCOPE_HONEYCOMB_KEY",
        "HONEYCOMB_API_KEY",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ] {
        command.env_remove(var);
    }
    command
}

/// `guildscope check-config` on the `guildscope.toml` in `dir`, waiting
/// `timeout` for each endpoint, with a bot token set.
fn check_config_in(dir: &Path, timeout: &str) -> Command {
    let mut command = guildscope(dir);
    command
        .args([
            "check-config",
            "--config",
            "guildscope.toml",
            "--timeout",
            timeout,
        ])
        .env("DISCORD_TOKEN", DISCORD_TOKEN);
    command
}

/// What a finished process printed.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn both(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }

    /// Panics if any of `secrets` appears in what the process printed.
    fn assert_shows_none_of(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "{secret:?} was printed:\n{}",
                self.both()
            );
        }
    }
}

/// Runs `command` to its end on a blocking thread, so that peers on this
/// runtime keep serving; kills it and fails after `limit`.
async fn run(mut command: Command, limit: Duration) -> Ran {
    let task = tokio::task::spawn_blocking(move || {
        let mut stdout = tempfile::tempfile().unwrap();
        let mut stderr = tempfile::tempfile().unwrap();
        command
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().unwrap())
            .stderr(stderr.try_clone().unwrap());
        let started = Instant::now();
        let mut child = Running(command.spawn().unwrap());
        let mut read = || {
            let text = |file: &mut std::fs::File| {
                let mut out = String::new();
                file.rewind().unwrap();
                file.read_to_string(&mut out).unwrap();
                out
            };
            (text(&mut stdout), text(&mut stderr))
        };
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let (out, err) = read();
                panic!(
                    "guildscope did not finish within {limit:?}\nstdout:\n{out}\nstderr:\n{err}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = started.elapsed();
        let (stdout, stderr) = read();
        Ran {
            code: status.code(),
            stdout,
            stderr,
            took,
        }
    });
    match task.await {
        Ok(ran) => ran,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("guildscope.toml"), text).unwrap();
}

/// A loopback TCP port nobody listens on.
fn dead_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback UDP port nobody listens on.
fn dead_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_millis(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn only_request(recorder: &HttpRecorder) -> RecordedRequest {
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------
// guildscope marker

/// Grafana and Honeycomb, each an HTTP recorder answering as the real
/// service does when a marker is created.
struct MarkerPeers {
    grafana: HttpRecorder,
    honeycomb: HttpRecorder,
}

impl MarkerPeers {
    async fn start() -> Self {
        let grafana = HttpRecorder::start().await.unwrap();
        grafana.respond_with(200, json!({ "id": 4711, "message": "Annotation added" }));
        let honeycomb = HttpRecorder::start().await.unwrap();
        honeycomb.respond_with(
            201,
            json!({ "id": "2uAt5yG4hEx", "message": "deploy v1.2.3", "type": "deploy" }),
        );
        Self { grafana, honeycomb }
    }

    fn config(&self, grafana_url: &str, honeycomb_url: &str) -> String {
        format!(
            r#"
[markers.grafana]
url = "{grafana_url}"
tags = ["guildscope"]

[markers.honeycomb]
api_url = "{honeycomb_url}"
dataset = "guildscope-prod"
"#
        )
    }
}

fn marker_command(dir: &Path) -> Command {
    let mut command = guildscope(dir);
    command
        .args(["marker", "--config", "guildscope.toml"])
        .args(["--text", "deploy v1.2.3"])
        .args(["--url", "https://example.com/r/1"])
        .args(["--tag", "web", "--duration", "90s"])
        .env("GUILDSCOPE_GRAFANA_TOKEN", GRAFANA_TOKEN)
        .env("GUILDSCOPE_HONEYCOMB_KEY", HONEYCOMB_KEY);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marker_posts_one_annotation_to_grafana_and_one_marker_to_honeycomb() {
    let peers = MarkerPeers::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &peers.config(&peers.grafana.url(), &peers.honeycomb.url()),
    );
    let before = SystemTime::now();
    let ran = run(marker_command(dir.path()), Duration::from_secs(20)).await;
    let after = SystemTime::now();
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("grafana    {}: annotation 4711", peers.grafana.url()),
            format!(
                "honeycomb  {} dataset guildscope-prod: marker 2uAt5yG4hEx",
                peers.honeycomb.url()
            ),
        ],
        "{}",
        ran.both()
    );
    assert_eq!(ran.stderr, "", "{}", ran.both());

    let grafana = only_request(&peers.grafana);
    assert_eq!(grafana.method, "POST", "{grafana:?}");
    assert_eq!(grafana.path, "/api/annotations", "{grafana:?}");
    assert_eq!(
        grafana.header("authorization"),
        Some(format!("Bearer {GRAFANA_TOKEN}").as_str()),
        "{grafana:?}"
    );
    assert_eq!(
        grafana.header("content-type"),
        Some("application/json"),
        "{grafana:?}"
    );
    let body = grafana.json();
    let time = body["time"].as_u64().unwrap();
    let time_end = body["timeEnd"].as_u64().unwrap();
    assert_eq!(time_end - time, 90_000, "{body}");
    assert!(
        (unix_millis(before)..=unix_millis(after)).contains(&time_end),
        "{body}"
    );
    assert_eq!(
        body["text"], "deploy v1.2.3 — https://example.com/r/1",
        "{body}"
    );
    assert_eq!(
        body["tags"],
        json!(["guildscope", "web", "deploy"]),
        "{body}"
    );
    assert!(body.get("dashboardUID").is_none(), "{body}");

    let honeycomb = only_request(&peers.honeycomb);
    assert_eq!(honeycomb.method, "POST", "{honeycomb:?}");
    assert_eq!(
        honeycomb.path, "/1/markers/guildscope-prod",
        "{honeycomb:?}"
    );
    assert_eq!(
        honeycomb.header("x-honeycomb-team"),
        Some(HONEYCOMB_KEY),
        "{honeycomb:?}"
    );
    assert_eq!(honeycomb.header("authorization"), None, "{honeycomb:?}");
    let body = honeycomb.json();
    assert_eq!(body["message"], "deploy v1.2.3", "{body}");
    assert_eq!(body["type"], "deploy", "{body}");
    assert_eq!(body["url"], "https://example.com/r/1", "{body}");
    let start = body["start_time"].as_u64().unwrap();
    let end = body["end_time"].as_u64().unwrap();
    assert_eq!(end - start, 90, "{body}");
    assert!(
        (unix_millis(before) / 1000..=unix_millis(after) / 1000).contains(&end),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_grafana_refuses_fails_the_run_without_showing_the_token_or_key() {
    let peers = MarkerPeers::start().await;
    // A service that echoes the credential it refused must not get it
    // printed either.
    peers.grafana.respond_with(
        401,
        json!({ "message": format!("invalid API key {GRAFANA_TOKEN}") }),
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &peers.config(&peers.grafana.url(), &peers.honeycomb.url()),
    );
    let ran = run(marker_command(dir.path()), Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", ran.both());
    let prefix = format!("grafana    {}: failed: ", peers.grafana.url());
    assert!(lines[0].starts_with(&prefix), "{}", ran.both());
    assert!(lines[0].contains("401"), "{}", ran.both());
    // Honeycomb still got its marker.
    assert!(
        lines[1].ends_with("dataset guildscope-prod: marker 2uAt5yG4hEx"),
        "{}",
        ran.both()
    );
    assert_eq!(only_request(&peers.grafana).path, "/api/annotations");
    assert_eq!(
        only_request(&peers.honeycomb).path,
        "/1/markers/guildscope-prod"
    );
    ran.assert_shows_none_of(&[GRAFANA_TOKEN, HONEYCOMB_KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_url_with_credentials_is_shown_as_scheme_host_and_port_only() {
    let peers = MarkerPeers::start().await;
    let with_credentials = |url: String| url.replace("http://", "http://admin:hunter2-pw@");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &peers.config(
            &format!("{}/", with_credentials(peers.grafana.url())),
            &format!("{}/?team=x", with_credentials(peers.honeycomb.url())),
        ),
    );
    let ran = run(marker_command(dir.path()), Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("grafana    {}: annotation 4711", peers.grafana.url()),
            format!(
                "honeycomb  {} dataset guildscope-prod: marker 2uAt5yG4hEx",
                peers.honeycomb.url()
            ),
        ],
        "{}",
        ran.both()
    );
    ran.assert_shows_none_of(&["hunter2-pw", "admin", GRAFANA_TOKEN, HONEYCOMB_KEY]);
    assert_eq!(only_request(&peers.grafana).path, "/api/annotations");
}

#[test]
fn a_marker_with_no_markers_section_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "[service]\nname = \"guildscope\"\n");
    let output = guildscope(dir.path())
        .args([
            "marker",
            "--config",
            "guildscope.toml",
            "--text",
            "deploy v1",
        ])
        .env("GUILDSCOPE_GRAFANA_TOKEN", GRAFANA_TOKEN)
        .output()
        .unwrap();
    let line = one_line_failure(&output);
    assert!(
        line.contains("[markers.grafana]") && line.contains("[markers.honeycomb]"),
        "{line}"
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
}

// ---------------------------------------------------------------------------
// guildscope check-config

/// One line of the checklist: state (`ok`, `off`, `FAIL`), part, text.
#[derive(Debug)]
struct Check {
    state: String,
    part: String,
    text: String,
}

fn checklist(stdout: &str) -> Vec<Check> {
    stdout
        .lines()
        .map(|line| {
            let (state, rest) = line.split_at(4);
            let rest = rest.trim_start();
            let (part, text) = rest.split_once(' ').unwrap_or((rest, ""));
            Check {
                state: state.trim().to_owned(),
                part: part.to_owned(),
                text: text.trim_start().to_owned(),
            }
        })
        .collect()
}

fn check<'a>(checks: &'a [Check], part: &str) -> &'a Check {
    let found: Vec<&Check> = checks.iter().filter(|c| c.part == part).collect();
    assert_eq!(found.len(), 1, "one {part} line in {checks:#?}");
    found[0]
}

/// Every part check-config reports on, in order.
const PARTS: [&str; 9] = [
    "config",
    "discord",
    "storage",
    "traces",
    "metrics",
    "statsd",
    "sentry",
    "grafana",
    "honeycomb",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    Http,
}

async fn check_config_with_live_peers(protocol: Protocol) {
    let otlp = OtlpReceiver::start().await.unwrap();
    let sentry = FakeSentry::start().await.unwrap();
    let grafana = HttpRecorder::start().await.unwrap();
    let honeycomb = HttpRecorder::start().await.unwrap();
    honeycomb.respond_with(
        200,
        json!({ "environment": { "slug": "production" }, "api_key_access": { "markers": true } }),
    );
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (endpoint, protocol_name) = match protocol {
        Protocol::Grpc => (otlp.grpc_endpoint(), "grpc"),
        Protocol::Http => (otlp.http_endpoint(), "http/protobuf"),
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            r#"
[traces]
endpoint = "{endpoint}"
protocol = "{protocol_name}"
export_metrics = true
metrics_interval_ms = 15000

[statsd]
address = "{statsd}"
prefix = "bot"

[markers.grafana]
url = "{grafana}"

[markers.honeycomb]
api_url = "{honeycomb}"
dataset = "guildscope"
"#,
            statsd = statsd.local_addr().unwrap(),
            grafana = grafana.url(),
            honeycomb = honeycomb.url(),
        ),
    );
    let mut command = check_config_in(dir.path(), "2s");
    command
        .env("SENTRY_DSN", sentry.dsn())
        .env("GUILDSCOPE_GRAFANA_TOKEN", GRAFANA_TOKEN)
        .env("GUILDSCOPE_HONEYCOMB_KEY", HONEYCOMB_KEY);
    let ran = run(command, Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let checks = checklist(&ran.stdout);
    let parts: Vec<&str> = checks.iter().map(|c| c.part.as_str()).collect();
    // Metrics over OTLP add a second metrics line.
    let mut expected = PARTS.to_vec();
    expected.insert(5, "metrics");
    assert_eq!(parts, expected, "{}", ran.both());
    for c in &checks {
        assert_eq!(c.state, "ok", "{c:?}\n{}", ran.both());
    }
    let traces = &check(&checks, "traces").text;
    assert!(
        traces.starts_with(&format!("OTLP {protocol_name} {endpoint}")),
        "{traces}"
    );
    let metrics: Vec<&str> = checks
        .iter()
        .filter(|c| c.part == "metrics")
        .map(|c| c.text.as_str())
        .collect();
    assert!(metrics[0].starts_with("Prometheus endpoint"), "{metrics:?}");
    let metrics_url = match protocol {
        Protocol::Grpc => endpoint.clone(),
        Protocol::Http => format!("{endpoint}/v1/metrics"),
    };
    assert!(
        metrics[1].starts_with(&format!("OTLP {protocol_name} {metrics_url} every 15 s")),
        "{metrics:?}"
    );
    assert!(check(&checks, "honeycomb").text.contains("production"));
    ran.assert_shows_none_of(&[
        DISCORD_TOKEN,
        GRAFANA_TOKEN,
        HONEYCOMB_KEY,
        sentry.public_key(),
    ]);

    // Each probe asked without leaving anything behind.
    let health = only_request(&grafana);
    assert_eq!(
        (health.method.as_str(), health.path.as_str()),
        ("GET", "/api/health")
    );
    assert_eq!(
        health.header("authorization"),
        Some(format!("Bearer {GRAFANA_TOKEN}").as_str())
    );
    let auth = only_request(&honeycomb);
    assert_eq!(
        (auth.method.as_str(), auth.path.as_str()),
        ("GET", "/1/auth")
    );
    assert_eq!(auth.header("x-honeycomb-team"), Some(HONEYCOMB_KEY));
    assert!(sentry.events().is_empty(), "{:?}", sentry.events());
    assert!(sentry.items().is_empty(), "{:?}", sentry.items());
    assert!(otlp.spans().is_empty(), "{:?}", otlp.spans());
    assert!(otlp.metrics().is_empty(), "{:?}", otlp.metrics());
    let expected = match protocol {
        // A gRPC probe only connects.
        Protocol::Grpc => ExportCounts::default(),
        // An HTTP probe exports nothing, as one empty request per signal.
        Protocol::Http => ExportCounts {
            http: 2,
            ..ExportCounts::default()
        },
    };
    assert_eq!(otlp.export_requests(), expected);
    statsd.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let mut datagrams = Vec::new();
    while let Ok(n) = statsd.recv(&mut buf) {
        datagrams.push(buf[..n].to_vec());
    }
    assert!(!datagrams.is_empty(), "the StatsD probe sent nothing");
    assert!(
        datagrams.iter().all(Vec::is_empty),
        "the StatsD probe sent a metric: {datagrams:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_with_live_peers_is_ok_everywhere_over_grpc() {
    check_config_with_live_peers(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_with_live_peers_is_ok_everywhere_over_http() {
    check_config_with_live_peers(Protocol::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_with_every_endpoint_dead_fails_each_in_time_and_shows_no_secret() {
    let dead = format!("127.0.0.1:{}", dead_tcp_port());
    let dead_udp = format!("127.0.0.1:{}", dead_udp_port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("otlp-headers"),
        format!("# vendor\nx-api-key={OTLP_HEADER_VALUE}\nauthorization = Bearer {OTLP_BEARER}\n"),
    )
    .unwrap();
    write_config(
        dir.path(),
        &format!(
            r#"
[traces]
endpoint = "http://{dead}"
protocol = "http/protobuf"
headers_file = "otlp-headers"

[statsd]
address = "{dead_udp}"

[markers.grafana]
url = "http://{dead}"

[markers.honeycomb]
api_url = "http://{dead}"
dataset = "guildscope"
"#
        ),
    );
    let mut command = check_config_in(dir.path(), "1s");
    command
        .env("SENTRY_DSN", format!("http://{DEAD_DSN_KEY}@{dead}/42"))
        .env("GUILDSCOPE_GRAFANA_TOKEN", GRAFANA_TOKEN)
        .env("GUILDSCOPE_HONEYCOMB_KEY", HONEYCOMB_KEY);
    let ran = run(command, Duration::from_secs(30)).await;
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    assert!(ran.took < Duration::from_secs(15), "took {:?}", ran.took);
    let checks = checklist(&ran.stdout);
    let parts: Vec<&str> = checks.iter().map(|c| c.part.as_str()).collect();
    assert_eq!(parts, PARTS, "{}", ran.both());
    for part in ["config", "discord", "storage", "metrics"] {
        assert_eq!(check(&checks, part).state, "ok", "{}", ran.both());
    }
    for part in ["traces", "statsd", "sentry", "grafana", "honeycomb"] {
        let c = check(&checks, part);
        assert_eq!(c.state, "FAIL", "{c:?}\n{}", ran.both());
    }
    for part in ["traces", "sentry", "grafana", "honeycomb"] {
        let c = check(&checks, part);
        assert!(c.text.ends_with("connection refused"), "{c:?}");
    }
    assert!(
        check(&checks, "statsd").text.contains("port unreachable"),
        "{}",
        ran.both()
    );
    ran.assert_shows_none_of(&[
        DISCORD_TOKEN,
        GRAFANA_TOKEN,
        HONEYCOMB_KEY,
        DEAD_DSN_KEY,
        OTLP_HEADER_VALUE,
        OTLP_BEARER,
    ]);
}

#[test]
fn check_config_names_an_unknown_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[traces]\nendpoint = \"http://127.0.0.1:4317\"\nsampel_ratio = 0.5\n",
    );
    let output = guildscope(dir.path())
        .args(["check-config", "--config", "guildscope.toml"])
        .env("DISCORD_TOKEN", DISCORD_TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let checks = checklist(&stdout);
    assert_eq!(checks.len(), 1, "{stdout}");
    assert_eq!(checks[0].state, "FAIL", "{stdout}");
    assert_eq!(checks[0].part, "config", "{stdout}");
    assert!(checks[0].text.starts_with("guildscope.toml:3:"), "{stdout}");
    assert!(checks[0].text.contains("sampel_ratio"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_metrics_follow_a_collector_named_only_in_the_environment() {
    let otlp = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "[traces]\nexport_metrics = true\n");
    let mut with_collector = check_config_in(dir.path(), "2s");
    with_collector
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.http_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    let ran = run(with_collector, Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let checks = checklist(&ran.stdout);
    let metrics: Vec<&Check> = checks.iter().filter(|c| c.part == "metrics").collect();
    assert_eq!(metrics.len(), 2, "{}", ran.both());
    assert_eq!(metrics[1].state, "ok", "{}", ran.both());
    assert!(
        metrics[1].text.starts_with(&format!(
            "OTLP http/protobuf {}/v1/metrics every 60 s",
            otlp.http_endpoint()
        )),
        "{}",
        ran.both()
    );

    // Without a collector anywhere, the setting is named as the problem.
    let ran = run(check_config_in(dir.path(), "2s"), Duration::from_secs(20)).await;
    assert_ne!(ran.code, Some(0), "{}", ran.both());
    let checks = checklist(&ran.stdout);
    let traces = check(&checks, "traces");
    assert_eq!(traces.state, "FAIL", "{}", ran.both());
    assert!(
        traces.text.contains("traces.export_metrics") && traces.text.contains("no collector"),
        "{traces:?}"
    );
}

#[tokio::test]
async fn check_config_with_nothing_configured_says_how_to_turn_each_exporter_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_token = guildscope(dir.path());
    with_token
        .args(["check-config", "--timeout", "1s"])
        .env("DISCORD_TOKEN", DISCORD_TOKEN);
    let ran = run(with_token, Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let checks = checklist(&ran.stdout);
    let parts: Vec<&str> = checks.iter().map(|c| c.part.as_str()).collect();
    assert_eq!(parts, PARTS, "{}", ran.both());
    for part in ["config", "discord", "storage", "metrics"] {
        assert_eq!(check(&checks, part).state, "ok", "{}", ran.both());
    }
    let off = |part: &str, hints: &[&str]| {
        let c = check(&checks, part);
        assert_eq!(c.state, "off", "{c:?}");
        for hint in hints {
            assert!(c.text.contains(hint), "{c:?} should mention {hint}");
        }
    };
    off(
        "traces",
        &["traces.endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"],
    );
    off("statsd", &["[statsd]", "address"]);
    off("sentry", &["SENTRY_DSN", "sentry.dsn_file"]);
    off(
        "grafana",
        &["[markers.grafana]", "url", "GUILDSCOPE_GRAFANA_TOKEN"],
    );
    off(
        "honeycomb",
        &["[markers.honeycomb]", "dataset", "GUILDSCOPE_HONEYCOMB_KEY"],
    );
    ran.assert_shows_none_of(&[DISCORD_TOKEN]);

    // The Prometheus endpoint is on unless turned off, and says how to get
    // it back.
    let mut metrics_off = guildscope(dir.path());
    metrics_off
        .args(["check-config", "--timeout", "1s"])
        .env("DISCORD_TOKEN", DISCORD_TOKEN)
        .env("GUILDSCOPE_METRICS_LISTEN", "off");
    let ran = run(metrics_off, Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let checks = checklist(&ran.stdout);
    let metrics = check(&checks, "metrics");
    assert_eq!(metrics.state, "off", "{metrics:?}");
    assert!(
        metrics.text.contains("metrics.listen")
            && metrics.text.contains("GUILDSCOPE_METRICS_LISTEN"),
        "{metrics:?}"
    );

    // Without a Discord token the bot cannot run: that is a failure.
    let mut without_token = guildscope(dir.path());
    without_token.args(["check-config", "--timeout", "1s"]);
    let ran = run(without_token, Duration::from_secs(20)).await;
    assert_eq!(ran.code, Some(1), "{}", ran.both());
    let checks = checklist(&ran.stdout);
    let discord = check(&checks, "discord");
    assert_eq!(discord.state, "FAIL", "{discord:?}");
    assert!(discord.text.contains("DISCORD_TOKEN"), "{discord:?}");
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.state == "FAIL")
        .map(|c| c.part.as_str())
        .collect();
    assert_eq!(failed, ["discord"], "{}", ran.both());
    // The checklist says it all; there is no error line besides.
    assert_eq!(ran.stderr, "", "{}", ran.both());
}

// ---------------------------------------------------------------------------
// guildscope demo

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exports_its_event_spans_and_final_metrics_before_it_exits() {
    let otlp = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("demo.db");
    let mut command = guildscope(dir.path());
    command
        .args(["demo", "--duration", "3s", "--rate", "200", "--database"])
        .arg(&database)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.grpc_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", otlp.grpc_endpoint());
    let ran = run(command, Duration::from_secs(60)).await;
    assert_eq!(ran.code, Some(0), "{}", ran.both());

    let metrics = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("metrics  http://127.0.0.1:"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics line:\n{}", ran.both()));
    assert!(
        metrics.parse::<u16>().is_ok_and(|port| port != 0),
        "{}",
        ran.both()
    );
    let otlp_metrics_line = format!(
        "metrics  also over OTLP to {} every 60 s, and at the end",
        otlp.grpc_endpoint()
    );
    assert!(
        ran.stdout.lines().any(|l| l == otlp_metrics_line),
        "no {otlp_metrics_line:?} line:\n{}",
        ran.both()
    );
    let traces_line = format!("traces   {}", otlp.grpc_endpoint());
    assert!(
        ran.stdout.lines().any(|l| l == traces_line),
        "no {traces_line:?} line:\n{}",
        ran.both()
    );
    assert!(database.exists());

    // No waiting: the demo flushed its spans before it exited.
    let spans = otlp.spans();
    let events: Vec<_> = spans.iter().filter(|s| s.name == "discord.event").collect();
    assert!(
        !events.is_empty(),
        "no discord.event span among {} spans",
        spans.len()
    );
    let kinds: BTreeSet<&str> = events
        .iter()
        .map(|s| {
            s.str_attr("discord.event")
                .unwrap_or_else(|| panic!("no discord.event attribute on {s:?}"))
        })
        .collect();
    assert!(
        kinds.contains("GUILD_CREATE") && kinds.contains("MESSAGE_CREATE"),
        "{kinds:?}"
    );
    for span in &events {
        assert_eq!(span.transport, Transport::Grpc);
        assert_eq!(span.parent_span_id, None, "{span:?}");
        assert_eq!(
            span.resource.get("service.name"),
            Some(&AttrValue::Str("guildscope".into())),
            "{span:?}"
        );
    }

    // The metrics interval (60 s) is longer than the demo: what arrived is the
    // final export at shutdown, with every message the demo handled.
    let metrics = otlp.metrics();
    let value = |name: &str, event: Option<&str>| {
        metrics
            .iter()
            .rev()
            .find(|m| m.name == name)
            .and_then(|m| {
                m.points.iter().find(|p| {
                    event.is_none_or(|e| {
                        p.attributes.get("event").and_then(|v| v.as_str()) == Some(e)
                    })
                })
            })
            .and_then(|p| p.value)
            .unwrap_or_else(|| panic!("no {name} among {:?}", otlp.metric_names()))
    };
    let messages = value("guildscope_messages_total", None);
    assert!(messages > 0.0);
    assert_eq!(
        value("guildscope_gateway_events_total", Some("MESSAGE_CREATE")),
        messages
    );
    assert!(metrics.iter().all(|m| m.transport == Transport::Grpc));
}

#[test]
fn demo_without_an_otlp_endpoint_says_traces_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let output = guildscope(dir.path())
        .args(["demo", "--duration", "1s", "--rate", "50", "--database"])
        .arg(dir.path().join("demo.db"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let traces = stdout
        .lines()
        .find_map(|l| l.strip_prefix("traces   "))
        .unwrap_or_else(|| panic!("no traces line:\n{stdout}"));
    assert!(traces.starts_with("off"), "{traces}");
    assert!(traces.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{traces}");
}
