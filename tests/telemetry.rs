//! `guildscope run` as a separate process against the simulator, with every
//! exporter pointed at a real peer in this test: an OTLP receiver (gRPC and
//! HTTP, decoding protobuf), a Sentry ingest endpoint, a UDP socket for
//! StatsD, and the Prometheus endpoint scraped and checked with `promtool`.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    fs::File,
    net::TcpListener,
    process::Stdio,
    time::{Duration, Instant},
};

use common::{Running, guildscope_in, http};
use guildscope_simulator::{
    ChannelKind, Fault, InteractionKind, InteractionRequest, SimConfig, Simulator,
};
use guildscope_store::{Location, Store};
use guildscope_testkit::{
    otlp::{AttrValue, OtlpReceiver, ReceivedSpan, SpanStatus, children, render_tree},
    sentry::FakeSentry,
};
use tokio::net::UdpSocket;

/// Message text that must never leave the bot.
const CANARY: &str = "canary-7f3a9c-do-not-export";

/// How the bot exports spans.
#[derive(Clone, Copy)]
enum Protocol {
    Grpc,
    Http,
}

/// Where telemetry goes: live peers, or addresses nobody listens on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peers {
    Live,
    Dead,
}

/// The simulator, the peers and the bot process.
struct Stack {
    sim: Simulator,
    otlp: OtlpReceiver,
    sentry: FakeSentry,
    statsd: UdpSocket,
    metrics_url: String,
    bot: Running,
    dir: tempfile::TempDir,
    guild: u64,
    channel: u64,
    /// A member the `stats_beta` flag is on for.
    insider: u64,
    /// A member it is off for.
    outsider: u64,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    async fn start(protocol: Protocol, peers: Peers) -> Self {
        let sim = Simulator::start(SimConfig {
            guilds: 1,
            members: 60,
            shards: 1,
            rate: 0.0,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let otlp = OtlpReceiver::start().await.unwrap();
        let sentry = FakeSentry::start().await.unwrap();
        let statsd = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let community = sim.community().clone();
        let guild = &community.guilds[0];
        let mut members = guild.members.iter().filter(|m| !m.bot);
        let insider = members.next().unwrap().user_id;
        let outsider = members.next().unwrap().user_id;
        let channel = guild
            .channels
            .iter()
            .find(|c| c.kind == ChannelKind::Text)
            .unwrap()
            .id;

        let dead = format!("127.0.0.1:{}", free_port());
        let (endpoint, protocol_name) = match (peers, protocol) {
            (Peers::Dead, _) => (format!("http://{dead}"), "grpc"),
            (Peers::Live, Protocol::Grpc) => (otlp.grpc_endpoint(), "grpc"),
            (Peers::Live, Protocol::Http) => (otlp.http_endpoint(), "http/protobuf"),
        };
        let statsd_addr = match peers {
            Peers::Live => statsd.local_addr().unwrap().to_string(),
            Peers::Dead => dead.clone(),
        };
        let dsn = match peers {
            Peers::Live => sentry.dsn(),
            Peers::Dead => format!("http://abc@{dead}/42"),
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("guildscope.toml"),
            format!(
                r#"
[stats]
include_bots = true

[log]
format = "json"

[service]
environment = "test"

[traces]
endpoint = "{endpoint}"
protocol = "{protocol_name}"
export_logs = true

[statsd]
address = "{statsd_addr}"
prefix = "bot"
flush_interval_ms = 20

[flags.stats_beta]
users = ["{insider}"]
commands = ["stats"]
"#
            ),
        )
        .unwrap();
        let metrics_port = free_port();
        let info = sim.info();
        let stderr = File::create(dir.path().join("stderr.log")).unwrap();
        let child = guildscope_in(dir.path())
            .args(["run", "--config", "guildscope.toml"])
            .args([
                "--api-base",
                &info.rest_url,
                "--gateway-base",
                &info.gateway_url,
            ])
            .args(["--database", "stats.db"])
            .env("DISCORD_TOKEN", &info.token)
            .env("SENTRY_DSN", dsn)
            .env(
                "GUILDSCOPE_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("GUILDSCOPE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stack = Self {
            sim,
            otlp,
            sentry,
            statsd,
            metrics_url: format!("http://127.0.0.1:{metrics_port}"),
            bot: Running(child),
            dir,
            guild: guild.id,
            channel,
            insider,
            outsider,
        };
        stack
            .until("the guild to arrive", |s| {
                s.metric(r#"guildscope_gateway_events_total{event="GUILD_CREATE"}"#) >= 1.0
            })
            .await;
        stack
    }

    /// Polls `done` every 50 ms for up to 20 s.
    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn scrape(&self) -> String {
        let url = format!("{}/metrics", self.metrics_url);
        let (status, body) = tokio::task::block_in_place(|| http("GET", &url, None, None));
        assert_eq!(status, 200, "{body}");
        body
    }

    /// One sample's value, or 0 when the bot is not up yet or has no such
    /// sample.
    fn metric(&self, sample: &str) -> f64 {
        let addr = self.metrics_url.trim_start_matches("http://");
        if std::net::TcpStream::connect(addr).is_err() {
            return 0.0;
        }
        let url = format!("{}/metrics", self.metrics_url);
        match tokio::task::block_in_place(|| http("GET", &url, None, None)) {
            (200, body) => sample_value(&body, sample).unwrap_or(0.0),
            _ => 0.0,
        }
    }

    async fn command(&self, user: u64, name: &str, options: serde_json::Value) -> u64 {
        let injected = self
            .sim
            .inject_interaction(InteractionRequest {
                guild_id: self.guild,
                user_id: user,
                channel_id: self.channel,
                name: name.into(),
                options,
                kind: InteractionKind::Command,
            })
            .unwrap();
        injected.id
    }

    async fn answered(&self, id: u64) {
        self.until("the command's answer", |s| {
            s.sim
                .interaction_responses(id)
                .is_some_and(|r| r.callback.is_some())
        })
        .await;
    }

    /// The spans of the trace whose root is the command `id`.
    async fn trace_of(
        &self,
        id: u64,
        settled: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let id = id.to_string();
        let spans = self
            .otlp
            .wait_for_spans(
                |spans| {
                    spans
                        .iter()
                        .find(|s| s.str_attr("discord.interaction_id") == Some(id.as_str()))
                        .is_some_and(|root| {
                            let trace: Vec<ReceivedSpan> = spans
                                .iter()
                                .filter(|s| s.trace_id == root.trace_id)
                                .cloned()
                                .collect();
                            settled(&trace)
                        })
                },
                Duration::from_secs(20),
            )
            .await;
        let root = spans
            .iter()
            .find(|s| s.str_attr("discord.interaction_id") == Some(id.as_str()))
            .unwrap()
            .clone();
        spans
            .into_iter()
            .filter(|s| s.trace_id == root.trace_id)
            .collect()
    }

    /// Datagrams received on the StatsD socket so far, split into lines.
    async fn statsd_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            match tokio::time::timeout(Duration::from_millis(200), self.statsd.recv(&mut buf)).await
            {
                Ok(Ok(n)) => lines.extend(
                    String::from_utf8_lossy(&buf[..n])
                        .lines()
                        .map(str::to_owned),
                ),
                _ => return lines,
            }
        }
    }

    fn stop(&mut self) {
        let status = self.bot.terminate();
        assert!(status.success(), "guildscope run exited with {status}");
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap()
    }
}

/// The value of the sample whose name and labels are exactly `sample`.
fn sample_value(exposition: &str, sample: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// An integer attribute, whether it was recorded as a number or as text.
fn int_attr(span: &ReceivedSpan, key: &str) -> Option<i64> {
    let value = span.attr(key)?;
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

fn root_of(spans: &[ReceivedSpan], interaction: u64) -> &ReceivedSpan {
    let id = interaction.to_string();
    spans
        .iter()
        .find(|s| s.str_attr("discord.interaction_id") == Some(id.as_str()))
        .unwrap()
}

fn only_child<'a>(
    spans: &'a [ReceivedSpan],
    parent: &ReceivedSpan,
    name: &str,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = children(spans, parent)
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} under {}:\n{}",
        parent.name,
        render_tree(spans)
    );
    found[0]
}

fn stats_server() -> serde_json::Value {
    serde_json::json!([{ "name": "server", "type": 1, "options": [] }])
}

/// REST spans are named after their route, like OpenTelemetry's HTTP
/// client spans: `POST interactions/{interaction_id}/...`.
const CALLBACK: &str = "POST interactions/{interaction_id}/{interaction_token}/callback";

/// Spans that make up a finished `/stats server` trace.
fn stats_trace_done(trace: &[ReceivedSpan]) -> bool {
    ["/stats", "flag.evaluate", "store.query", CALLBACK]
        .iter()
        .all(|name| trace.iter().any(|s| s.name == *name))
}

async fn a_command_trace_has_its_root_flag_store_and_rest_spans(protocol: Protocol) {
    let mut stack = Stack::start(protocol, Peers::Live).await;
    let id = stack.command(stack.insider, "stats", stats_server()).await;
    stack.answered(id).await;
    let trace = stack.trace_of(id, stats_trace_done).await;
    let tree = render_tree(&trace);

    let root = root_of(&trace, id);
    assert_eq!(root.name, "/stats", "{tree}");
    assert_eq!(root.parent_span_id, None, "{tree}");
    let attr = |key: &str| root.attr(key).map(ToString::to_string);
    assert_eq!(attr("command.name").as_deref(), Some("stats"), "{tree}");
    assert_eq!(attr("command.outcome").as_deref(), Some("ok"), "{tree}");
    assert_eq!(
        attr("discord.event").as_deref(),
        Some("INTERACTION_CREATE"),
        "{tree}"
    );
    assert_eq!(
        attr("discord.guild_id"),
        Some(stack.guild.to_string()),
        "{tree}"
    );
    assert_eq!(
        attr("discord.channel_id"),
        Some(stack.channel.to_string()),
        "{tree}"
    );
    assert_eq!(
        attr("discord.user_id"),
        Some(stack.insider.to_string()),
        "{tree}"
    );
    assert_eq!(attr("discord.shard_id").as_deref(), Some("0"), "{tree}");
    assert_eq!(
        root.attr("flags.stats_beta"),
        Some(&AttrValue::Bool(true)),
        "{tree}"
    );
    assert_eq!(root.status, SpanStatus::Ok, "{tree}");
    assert_eq!(
        root.resource
            .get("service.name")
            .map(ToString::to_string)
            .as_deref(),
        Some("guildscope")
    );
    assert_eq!(
        root.resource
            .get("deployment.environment.name")
            .map(ToString::to_string)
            .as_deref(),
        Some("test")
    );

    // The wait on the event bus is recorded on the root, not as a span.
    assert!(
        root.attr("bus.queue_ms")
            .and_then(AttrValue::as_f64)
            .is_some_and(|ms| (0.0..60_000.0).contains(&ms)),
        "{tree}"
    );
    assert!(!trace.iter().any(|s| s.name == "bus.queue"), "{tree}");
    let flag = only_child(&trace, root, "flag.evaluate");
    assert_eq!(flag.str_attr("flag.name"), Some("stats_beta"), "{tree}");
    assert_eq!(
        flag.attr("flag.result"),
        Some(&AttrValue::Bool(true)),
        "{tree}"
    );
    let store = only_child(&trace, root, "store.query");
    assert_eq!(store.str_attr("db.system.name"), Some("sqlite"), "{tree}");
    assert_eq!(
        store.str_attr("db.operation.name"),
        Some("stats.server"),
        "{tree}"
    );
    let rest = only_child(&trace, root, CALLBACK);
    assert_eq!(rest.str_attr("http.route"), Some(CALLBACK), "{tree}");
    assert_eq!(rest.str_attr("http.request.method"), Some("POST"), "{tree}");
    assert!(
        int_attr(rest, "http.response.status_code").is_some_and(|s| (200..300).contains(&s)),
        "{tree}"
    );
    assert!(rest.attr("discord.ratelimit.wait_ms").is_some(), "{tree}");

    // The same spans arrive whichever way they travel, and nothing else
    // from this trace was lost on the way out.
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_trace_has_its_root_flag_store_and_rest_spans_over_grpc() {
    a_command_trace_has_its_root_flag_store_and_rest_spans(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_trace_has_its_root_flag_store_and_rest_spans_over_http() {
    a_command_trace_has_its_root_flag_store_and_rest_spans(Protocol::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_command_is_an_error_on_its_root_span_and_in_sentry_without_content() {
    let mut stack = Stack::start(Protocol::Grpc, Peers::Live).await;
    // The bot posts a message holding the canary; the gateway echoes it back
    // as MESSAGE_CREATE with its content.
    let (status, body) = tokio::task::block_in_place(|| {
        http(
            "POST",
            &format!(
                "{}/api/v10/channels/{}/messages",
                stack.sim.info().rest_url,
                stack.channel
            ),
            Some(&stack.sim.info().token),
            Some(&serde_json::json!({ "content": CANARY }).to_string()),
        )
    });
    assert_eq!(status, 200, "{body}");
    stack
        .until("the canary message to be handled", |s| {
            s.metric(r#"guildscope_gateway_events_total{event="MESSAGE_CREATE"}"#) >= 1.0
        })
        .await;

    // A refused command (the flag is off for this member) and a failed one
    // (Discord answers the callback with a 502).
    let refused = stack.command(stack.outsider, "stats", stats_server()).await;
    stack.answered(refused).await;
    stack
        .sim
        .inject_fault(Fault::ServerError {
            route: "POST /api/v10/interactions".into(),
            count: 10,
            status: 502,
        })
        .unwrap();
    let failed = stack.command(stack.insider, "stats", stats_server()).await;
    let trace = stack
        .trace_of(failed, |t| {
            t.iter()
                .any(|s| s.name == "/stats" && s.attr("command.outcome").is_some())
        })
        .await;
    let tree = render_tree(&trace);
    let root = root_of(&trace, failed);
    assert!(matches!(root.status, SpanStatus::Error(_)), "{tree}");
    assert_eq!(root.str_attr("command.outcome"), Some("error"), "{tree}");
    let rest: Vec<&ReceivedSpan> = children(&trace, root)
        .into_iter()
        .filter(|s| s.name == CALLBACK)
        .collect();
    assert!(
        rest.iter()
            .any(|s| int_attr(s, "http.response.status_code") == Some(502)),
        "{tree}"
    );

    let refused_trace = stack
        .trace_of(refused, |t| {
            t.iter()
                .any(|s| s.name == "/stats" && s.attr("command.outcome").is_some())
        })
        .await;
    let refused_root = root_of(&refused_trace, refused);
    assert_eq!(refused_root.str_attr("command.outcome"), Some("user_error"));
    assert_eq!(
        refused_root.attr("flags.stats_beta"),
        Some(&AttrValue::Bool(false))
    );

    let events = stack
        .sentry
        .wait_for_events(1, Duration::from_secs(20))
        .await;
    let event = &events[0];
    assert_eq!(event["tags"]["command"], "stats", "{event}");
    assert_eq!(
        event["tags"]["guild_id"],
        stack.guild.to_string(),
        "{event}"
    );
    assert_eq!(
        event["tags"]["channel_id"],
        stack.channel.to_string(),
        "{event}"
    );
    assert_eq!(event["tags"]["trace_id"], root.trace_id, "{event}");
    assert_eq!(event["user"]["id"], stack.insider.to_string(), "{event}");
    assert_eq!(event["environment"], "test", "{event}");

    let metrics = stack.scrape();
    assert_eq!(
        sample_value(
            &metrics,
            r#"guildscope_commands_total{command="stats",outcome="error"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample_value(
            &metrics,
            r#"guildscope_commands_total{command="stats",outcome="user_error"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    let statsd = stack.statsd_lines().await.join("\n");
    stack.stop();

    // The canary is in no span, log line, metric or error report.
    let spans = format!("{:?}", stack.otlp.spans());
    let logs = format!("{:?}", stack.otlp.logs());
    assert!(!stack.otlp.spans().is_empty() && !stack.otlp.logs().is_empty());
    for (what, text) in [
        ("spans", spans),
        ("OTLP logs", logs),
        ("stderr logs", stack.stderr()),
        ("metrics", metrics),
        ("StatsD", statsd),
        (
            "Sentry",
            String::from_utf8_lossy(&stack.sentry.raw_bodies().concat()).into_owned(),
        ),
    ] {
        assert!(
            !text.contains(CANARY),
            "the message content leaked into {what}"
        );
        assert!(
            !text.contains(&stack.sim.info().token),
            "the token leaked into {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_statsd_count_exactly_the_work_done() {
    let mut stack = Stack::start(Protocol::Grpc, Peers::Live).await;
    stack.sim.firehose(2_000);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            stack
                .command(stack.insider, "ping", serde_json::Value::Null)
                .await,
        );
    }
    for id in &ids {
        stack.answered(*id).await;
    }
    let sent = || {
        stack
            .sim
            .ground_truth()
            .events_sent
            .get("MESSAGE_CREATE")
            .copied()
            .unwrap_or(0)
    };
    stack
        .until("every message to be handled", |s| {
            // The whole firehose is out (it is sent in chunks) and handled.
            // A command is counted once the callback's response is back, which
            // may be after the simulator recorded the callback.
            let expected = sent() as f64;
            expected >= 2_000.0
                && s.metric(r#"guildscope_gateway_events_total{event="MESSAGE_CREATE"}"#)
                    == expected
                && s.metric(r#"guildscope_commands_total{command="ping",outcome="ok"}"#) >= 5.0
        })
        .await;
    let messages = sent();
    let metrics = stack.scrape();

    // promtool, as Prometheus itself would parse and lint it.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) must be installed; .ci/run installs it");
    use std::io::Write as _;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let value = |sample: &str| sample_value(&metrics, sample);
    assert_eq!(
        value(r#"guildscope_commands_total{command="ping",outcome="ok"}"#),
        Some(5.0),
        "{metrics}"
    );
    assert_eq!(
        value(r#"guildscope_command_duration_seconds_count{command="ping"}"#),
        Some(5.0),
        "{metrics}"
    );
    assert_eq!(
        value("guildscope_messages_total"),
        Some(messages as f64),
        "{metrics}"
    );
    assert_eq!(
        value(r#"guildscope_shard_connected{shard="0"}"#),
        Some(1.0),
        "{metrics}"
    );
    let callbacks = stack
        .sim
        .rest_log()
        .iter()
        .filter(|c| c.route.contains("callback") && c.status < 300)
        .count();
    assert!(callbacks >= 5);
    assert_eq!(
        value(r#"guildscope_rest_requests_total{route="POST interactions/{interaction_id}/{interaction_token}/callback",status="204"}"#)
            .or_else(|| value(r#"guildscope_rest_requests_total{route="POST interactions/{interaction_id}/{interaction_token}/callback",status="200"}"#)),
        Some(callbacks as f64),
        "{metrics}"
    );

    // StatsD: the reference community's names, summing to the same work.
    let lines = stack.statsd_lines().await;
    let total = |name: &str| -> i64 {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{name}:")))
            .filter_map(|v| v.strip_suffix("|c"))
            .map(|v| v.parse::<i64>().unwrap())
            .sum()
    };
    assert_eq!(total("bot.commands.ping"), 5, "{lines:?}");
    assert_eq!(total("bot.messages"), messages as i64, "{lines:?}");
    let per_channel: i64 = lines
        .iter()
        .filter(|l| l.starts_with("bot.channels."))
        .filter_map(|l| l.split_once(':').and_then(|(_, v)| v.strip_suffix("|c")))
        .map(|v| v.parse::<i64>().unwrap())
        .sum();
    assert_eq!(per_channel, messages as i64, "{lines:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_collector_dead_the_bot_still_handles_a_whole_run() {
    let mut stack = Stack::start(Protocol::Grpc, Peers::Dead).await;
    stack.sim.firehose(3_000);
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            stack
                .command(stack.insider, "ping", serde_json::Value::Null)
                .await,
        );
    }
    for id in &ids {
        stack.answered(*id).await;
    }
    // The firehose sends in chunks alongside the answers: wait until all of
    // it is out (plus the answers' own MESSAGE_CREATE) and in the bot.
    stack
        .until("every message to be sent and handled", |s| {
            let sent = s
                .sim
                .ground_truth()
                .events_sent
                .get("MESSAGE_CREATE")
                .copied()
                .unwrap_or(0);
            sent >= 3_000
                && s.metric(r#"guildscope_gateway_events_total{event="MESSAGE_CREATE"}"#)
                    == sent as f64
                && s.metric(r#"guildscope_commands_total{command="ping",outcome="ok"}"#) >= 20.0
        })
        .await;
    let metrics = stack.scrape();
    assert_eq!(
        sample_value(
            &metrics,
            r#"guildscope_commands_total{command="ping",outcome="ok"}"#
        ),
        Some(20.0),
        "{metrics}"
    );
    let started = Instant::now();
    stack.stop();
    // Flushing to a dead collector is bounded; the process does not hang.
    assert!(started.elapsed() < Duration::from_secs(20));
    // Every message made it into the database.
    let truth = stack.sim.ground_truth();
    let created: u64 = truth.guilds.values().map(|g| g.messages_created).sum();
    let mut store = Store::open(&Location::Sqlite(stack.dir.path().join("stats.db"))).unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM messages").unwrap() as u64,
        created
    );
}
