//! The metrics registry exported over OTLP to a real receiver (gRPC and HTTP): the
//! values equal the work recorded, every interval and once more at shutdown; a dead
//! collector is counted, logged once and never holds shutdown up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use guildscope_telemetry::metrics::{BuildInfo, GuildGauges, Metrics, Outcome};
use guildscope_telemetry::otel::{
    LogFormat, OtlpEndpoint, OtlpProtocol, Signal, TelemetryConfig, TelemetryGuard,
    build_with_writer,
};
use guildscope_testkit::logs::LogBuffer;
use guildscope_testkit::otlp::{MetricKind, OtlpReceiver, ReceivedMetric, Transport};
use serde_json::Value;

/// JSON logs, no traces, metrics to `endpoint` every 100 ms.
fn build(endpoint: OtlpEndpoint) -> (TelemetryGuard, LogBuffer) {
    build_every(endpoint, Duration::from_millis(100))
}

fn build_every(endpoint: OtlpEndpoint, interval: Duration) -> (TelemetryGuard, LogBuffer) {
    let config = TelemetryConfig {
        service_name: "guildscope-test".to_owned(),
        log_format: LogFormat::Json,
        metrics: Some(endpoint),
        metrics_interval: interval,
        ..TelemetryConfig::default()
    };
    let buffer = LogBuffer::default();
    let (_dispatch, guard) = build_with_writer(&config, buffer.clone()).unwrap();
    (guard, buffer)
}

fn registry() -> Arc<Metrics> {
    Arc::new(Metrics::new(
        BuildInfo {
            version: "1.2.3".to_owned(),
            git_sha: "abc1234".to_owned(),
        },
        None,
    ))
}

/// The last export of `name` that has a point labelled `label`, once one has arrived.
async fn latest(
    receiver: &OtlpReceiver,
    name: &str,
    label: (&str, &str),
    value: f64,
) -> ReceivedMetric {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = receiver.metrics().into_iter().rev().find(|metric| {
            metric.name == name
                && metric.points.iter().any(|point| {
                    point.attributes.get(label.0).and_then(|v| v.as_str()) == Some(label.1)
                        && point.value.or(point.count.map(|c| c as f64)) == Some(value)
                })
        });
        if let Some(metric) = found {
            return metric;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{{{}={}}} = {value} never arrived; received {:?}",
            label.0,
            label.1,
            receiver.metric_names()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn point_with<'a>(
    metric: &'a ReceivedMetric,
    key: &str,
    value: &str,
) -> &'a guildscope_testkit::otlp::MetricPoint {
    metric
        .points
        .iter()
        .find(|p| p.attributes.get(key).and_then(|v| v.as_str()) == Some(value))
        .unwrap_or_else(|| panic!("no point with {key}={value} in {metric:#?}"))
}

async fn registry_arrives(endpoint: OtlpEndpoint, receiver: &OtlpReceiver, transport: Transport) {
    let (mut guard, _logs) = build(endpoint);
    let metrics = registry();
    for elapsed in [2, 5, 40] {
        metrics.command("ping", Outcome::Ok, Duration::from_millis(elapsed));
    }
    metrics.command("roles", Outcome::UserError, Duration::from_millis(1));
    for _ in 0..5 {
        metrics.gateway_event("MESSAGE_CREATE");
        metrics.message(None);
    }
    metrics.rest_request(
        "/interactions/{id}/{token}/callback",
        Some(204),
        Duration::ZERO,
    );
    metrics.guild(
        41,
        GuildGauges {
            members: 1_000,
            channels: 12,
            help_threads_in_use: 3,
        },
    );
    // Gauges refreshed from live state at every scrape are refreshed for OTLP too.
    metrics.on_scrape(Box::new(|metrics| metrics.shard_connected(0, true)));

    assert!(guard.export_metrics(&metrics).unwrap());

    let commands = latest(
        receiver,
        "guildscope_commands_total",
        ("command", "ping"),
        3.0,
    )
    .await;
    assert_eq!(commands.kind, MetricKind::Sum { monotonic: true });
    assert_eq!(commands.transport, transport);
    assert_eq!(commands.scope, "guildscope");
    assert_eq!(
        commands.resource["service.name"].as_str(),
        Some("guildscope-test")
    );
    let instance = commands.resource["service.instance.id"].as_str().unwrap();
    assert_eq!(instance.len(), 36, "a UUID: {instance}");
    let roles = commands
        .points
        .iter()
        .find(|p| {
            p.attributes["command"].as_str() == Some("roles")
                && p.attributes["outcome"].as_str() == Some("user_error")
        })
        .unwrap();
    assert_eq!(roles.value, Some(1.0));

    // The same export carried everything else: each export starts with the build info.
    let export: Vec<ReceivedMetric> = {
        let all = receiver.metrics();
        let at = all.iter().rposition(|m| *m == commands).unwrap();
        let first = |m: &ReceivedMetric| m.name == "guildscope_build_info";
        let start = all[..at].iter().rposition(first).unwrap();
        let end = all[start + 1..]
            .iter()
            .position(first)
            .map_or(all.len(), |n| start + 1 + n);
        all[start..end].to_vec()
    };
    let named = |name: &str| {
        export
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {export:#?}"))
    };

    let durations = named("guildscope_command_duration_seconds");
    assert_eq!(durations.kind, MetricKind::Histogram);
    assert_eq!(durations.unit, "s");
    let ping = point_with(durations, "command", "ping");
    assert_eq!(ping.count, Some(3));
    assert!((ping.sum.unwrap() - 0.047).abs() < 1e-9, "{ping:?}");

    assert_eq!(
        point_with(
            named("guildscope_gateway_events_total"),
            "event",
            "MESSAGE_CREATE"
        )
        .value,
        Some(5.0)
    );
    assert_eq!(
        named("guildscope_messages_total").points[0].value,
        Some(5.0)
    );
    let members = named("guildscope_guild_members");
    assert_eq!(members.kind, MetricKind::Gauge);
    assert_eq!(point_with(members, "guild", "41").value, Some(1_000.0));
    assert_eq!(
        point_with(named("guildscope_help_threads_in_use"), "guild", "41").value,
        Some(3.0)
    );
    assert_eq!(
        point_with(named("guildscope_shard_connected"), "shard", "0").value,
        Some(1.0)
    );
    let rest = named("guildscope_rest_requests_total");
    assert_eq!(point_with(rest, "status", "204").value, Some(1.0));
    // A family with nothing in it is left out, as the SDK leaves out unused instruments.
    assert!(export.iter().all(|m| !m.points.is_empty()));

    // Work done after the last interval goes out with the final export at shutdown.
    metrics.command("ping", Outcome::Ok, Duration::from_millis(1));
    // Counted once the receiver has answered, a moment after it took the request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.metric_exports().0 == 0 {
        assert!(Instant::now() < deadline, "no export was counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(guard.metric_exports().1, 0);
    tokio::time::timeout(Duration::from_secs(10), guard.shutdown())
        .await
        .expect("shutdown must not hang");
    latest(
        receiver,
        "guildscope_commands_total",
        ("command", "ping"),
        4.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_arrives_over_grpc_and_its_final_totals_at_shutdown() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = OtlpEndpoint::new(receiver.grpc_endpoint(), OtlpProtocol::Grpc);
    registry_arrives(endpoint, &receiver, Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_arrives_over_http_and_its_final_totals_at_shutdown() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = OtlpEndpoint::for_signal(
        &receiver.http_endpoint(),
        OtlpProtocol::HttpProtobuf,
        Signal::Metrics,
    );
    registry_arrives(endpoint, &receiver, Transport::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_interval_longer_than_the_run_the_final_export_alone_carries_everything() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = OtlpEndpoint::for_signal(
        &receiver.http_endpoint(),
        OtlpProtocol::HttpProtobuf,
        Signal::Metrics,
    );
    let (mut guard, _logs) = build_every(endpoint, Duration::from_secs(3_600));
    let metrics = registry();
    assert!(guard.export_metrics(&metrics).unwrap());
    metrics.command("ping", Outcome::Ok, Duration::from_millis(2));
    metrics.command("ping", Outcome::Ok, Duration::from_millis(2));
    assert!(receiver.metrics().is_empty());

    tokio::time::timeout(Duration::from_secs(10), guard.shutdown())
        .await
        .expect("shutdown must not hang");
    // Sent before shutdown returned, and only then.
    let received = receiver.metrics();
    let exports = received
        .iter()
        .filter(|m| m.name == "guildscope_build_info")
        .count();
    assert_eq!(exports, 1, "{:?}", receiver.metric_names());
    let commands = received
        .iter()
        .find(|m| m.name == "guildscope_commands_total")
        .unwrap();
    assert_eq!(point_with(commands, "outcome", "ok").value, Some(2.0));
    assert_eq!(commands.transport, Transport::Http);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_is_counted_and_logged_once_and_never_holds_shutdown_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = OtlpEndpoint::new(format!("http://127.0.0.1:{port}"), OtlpProtocol::Grpc)
        .with_timeout(Duration::from_millis(300));
    let (mut guard, logs) = build(endpoint);
    let metrics = registry();
    assert!(guard.export_metrics(&metrics).unwrap());
    // Recording never waits on the exporter.
    let started = Instant::now();
    for _ in 0..100_000 {
        metrics.gateway_event("MESSAGE_CREATE");
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.metric_exports().1 < 2 {
        assert!(Instant::now() < deadline, "no failed export was counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(guard.metric_exports().0, 0);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), guard.shutdown())
        .await
        .expect("shutdown must not hang on a dead collector");
    assert!(started.elapsed() < Duration::from_secs(8));

    let warnings: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["signal"] == "metrics")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["level"], "WARN");
    let last = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["message"] == "the final metrics could not be exported before shutdown")
        .count();
    assert_eq!(last, 1);
}
