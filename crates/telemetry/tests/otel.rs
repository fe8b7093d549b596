//! The tracing and log pipeline against a real OTLP receiver (gRPC and HTTP): span trees,
//! log lines and log records carrying trace ids, sampling, a dead collector, an outage.
//!
//! Each test builds its own pipeline and installs it with `with_default` around code that
//! creates spans on one thread (or with `with_subscriber` on tasks), so the tests do not
//! share global state and run under `cargo test` as under nextest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use guildscope_telemetry::otel::SpanExt as _;
use guildscope_telemetry::otel::{
    LogFormat, OtlpEndpoint, OtlpProtocol, ParentSampling, Signal, SpanCounts, TelemetryConfig,
    TelemetryGuard, build_with_writer, current_trace_id,
};
use guildscope_testkit::logs::LogBuffer;
use guildscope_testkit::otlp::{OtlpReceiver, ReceivedSpan, SpanStatus, Transport};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::Value;
use tracing::Instrument as _;
use tracing::instrument::WithSubscriber as _;

/// How long a test waits for spans that should arrive.
const ARRIVAL: Duration = Duration::from_secs(10);

fn grpc(receiver: &OtlpReceiver) -> OtlpEndpoint {
    OtlpEndpoint::new(receiver.grpc_endpoint(), OtlpProtocol::Grpc)
}

fn http(receiver: &OtlpReceiver, signal: Signal) -> OtlpEndpoint {
    OtlpEndpoint::for_signal(
        &receiver.http_endpoint(),
        OtlpProtocol::HttpProtobuf,
        signal,
    )
}

/// JSON logs, traces to `traces`, a short batch delay, and resource attributes to check.
fn config(traces: OtlpEndpoint) -> TelemetryConfig {
    TelemetryConfig {
        service_name: "guildscope-test".to_owned(),
        service_version: "1.2.3+abc1234".to_owned(),
        environment: Some("ci".to_owned()),
        log_format: LogFormat::Json,
        traces: Some(traces),
        scheduled_delay: Duration::from_millis(50),
        ..TelemetryConfig::default()
    }
}

fn build(config: &TelemetryConfig) -> (tracing::Dispatch, TelemetryGuard, LogBuffer) {
    let buffer = LogBuffer::default();
    let (dispatch, guard) = build_with_writer(config, buffer.clone()).unwrap();
    (dispatch, guard, buffer)
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "exactly one span named {name}: {spans:#?}");
    found[0]
}

/// A `traceparent` from another service, as a request would carry it.
fn remote_parent(sampled: bool) -> (opentelemetry::Context, &'static str, &'static str) {
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span_id = "00f067aa0ba902b7";
    let flags = if sampled { "01" } else { "00" };
    let carrier = HashMap::from([(
        "traceparent".to_owned(),
        format!("00-{trace_id}-{span_id}-{flags}"),
    )]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    (cx, trace_id, span_id)
}

/// A nested tree with attributes, an explicit error status and an error event.
fn make_span_tree() {
    let root = tracing::info_span!(
        "discord.event",
        discord.event = "INTERACTION_CREATE",
        discord.shard_id = 3_i64,
        discord.guild_id = "1100000000000000001",
        otel.kind = "server",
    );
    let _root = root.enter();
    {
        let command = tracing::info_span!(
            "command",
            command.name = "stats",
            command.outcome = tracing::field::Empty,
            flags.new_stats = true,
        );
        let _command = command.enter();
        {
            let store = tracing::info_span!(
                "store.write",
                table = "messages",
                otel.status_code = "ERROR",
                otel.status_description = "disk full",
            );
            let _store = store.enter();
        }
        command.record("command.outcome", "ok");
    }
    {
        let rest = tracing::info_span!("rest.request", route = "/channels/{id}/messages");
        let _rest = rest.enter();
        tracing::error!(error = %"rate limited");
    }
}

async fn span_tree_arrives(endpoint: OtlpEndpoint, receiver: &OtlpReceiver, transport: Transport) {
    let (dispatch, guard, _logs) = build(&config(endpoint));
    tracing::dispatcher::with_default(&dispatch, make_span_tree);
    assert_eq!(guard.span_counts().ended, 4);
    let counts = guard.shutdown().await;
    assert_eq!(
        counts,
        SpanCounts {
            ended: 4,
            exported: 4,
            export_failures: 0,
            dropped: 0,
        }
    );

    let spans = receiver.wait_for_spans(|s| s.len() >= 4, ARRIVAL).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let root = named(&spans, "discord.event");
    let command = named(&spans, "command");
    let store = named(&spans, "store.write");
    let rest = named(&spans, "rest.request");

    assert_eq!(root.parent_span_id, None);
    assert_eq!(
        command.parent_span_id.as_deref(),
        Some(root.span_id.as_str())
    );
    assert_eq!(
        store.parent_span_id.as_deref(),
        Some(command.span_id.as_str())
    );
    assert_eq!(rest.parent_span_id.as_deref(), Some(root.span_id.as_str()));
    for span in &spans {
        assert_eq!(span.trace_id, root.trace_id);
        assert_eq!(span.transport, transport);
        assert_eq!(span.scope, "guildscope");
        assert_eq!(
            span.resource["service.name"].as_str(),
            Some("guildscope-test")
        );
        assert_eq!(
            span.resource["service.version"].as_str(),
            Some("1.2.3+abc1234")
        );
        assert_eq!(
            span.resource["deployment.environment.name"].as_str(),
            Some("ci")
        );
    }

    assert_eq!(root.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(root.str_attr("discord.event"), Some("INTERACTION_CREATE"));
    assert_eq!(root.attributes["discord.shard_id"].as_i64(), Some(3));
    assert_eq!(
        root.str_attr("discord.guild_id"),
        Some("1100000000000000001")
    );
    assert_eq!(root.status, SpanStatus::Unset);

    assert_eq!(command.str_attr("command.name"), Some("stats"));
    assert_eq!(command.str_attr("command.outcome"), Some("ok"));
    assert_eq!(command.attributes["flags.new_stats"].as_bool(), Some(true));
    assert_eq!(command.status, SpanStatus::Unset);

    assert_eq!(store.str_attr("table"), Some("messages"));
    assert_eq!(store.status, SpanStatus::Error("disk full".to_owned()));
    // The status fields steer the status; they are not attributes.
    assert_eq!(store.attr("otel.status_code"), None);

    assert_eq!(rest.str_attr("route"), Some("/channels/{id}/messages"));
    assert_eq!(rest.status, SpanStatus::Error("rate limited".to_owned()));
    assert_eq!(rest.events.len(), 1, "{:?}", rest.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_tree_arrives_over_grpc() {
    let receiver = OtlpReceiver::start().await.unwrap();
    span_tree_arrives(grpc(&receiver), &receiver, Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_tree_arrives_over_http() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = http(&receiver, Signal::Traces);
    span_tree_arrives(endpoint, &receiver, Transport::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_spans_created_just_before_it() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let config = TelemetryConfig {
        // Only shutdown can send these in time.
        scheduled_delay: Duration::from_secs(600),
        ..config(grpc(&receiver))
    };
    let (dispatch, guard, _logs) = build(&config);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100_i64 {
            let _span = tracing::info_span!("late", i).entered();
        }
    });
    let counts = guard.shutdown().await;
    assert_eq!(counts.ended, 100);
    assert_eq!(counts.exported, 100);
    // The export finished inside shutdown, so the receiver has every span already.
    assert_eq!(receiver.spans().len(), 100);
}

/// Spans go over gRPC from a pipeline built and used where no runtime is: the
/// exporter's connection lives on a runtime of its own.
#[test]
fn grpc_spans_need_no_runtime_of_the_caller() {
    // The receiver stands for a collector elsewhere; its runtime is not the pipeline's.
    let collector = tokio::runtime::Runtime::new().unwrap();
    let receiver = collector.block_on(OtlpReceiver::start()).unwrap();
    let (dispatch, guard, _logs) = build(&config(grpc(&receiver)));
    tracing::dispatcher::with_default(&dispatch, || {
        let _command = tracing::info_span!("command", command.name = "ping").entered();
        let _own = guildscope_trace::Span::child("own.child");
    });
    let counts = collector.block_on(guard.shutdown());
    assert_eq!((counts.ended, counts.exported, counts.dropped), (2, 2, 0));
    let spans = receiver.spans();
    assert_eq!(
        named(&spans, "own.child").parent_span_id.as_deref(),
        Some(named(&spans, "command").span_id.as_str())
    );
    collector.block_on(receiver.shutdown());
}

/// A URL the configuration accepts (a space in its path, percent-encoded by a URL
/// parser) but gRPC's refuses is an error naming the setting, also inside a runtime,
/// where a half-built exporter once panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_endpoint_tonic_refuses_is_an_error_inside_a_runtime() {
    let config = config(OtlpEndpoint::new(
        "http://127.0.0.1:4317/a b",
        OtlpProtocol::Grpc,
    ));
    match build_with_writer(&config, LogBuffer::default()) {
        Err(error) => assert!(error.to_string().contains("traces.url"), "{error}"),
        Ok(_) => panic!("a URL gRPC cannot use was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_exported_span_ids() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (dispatch, guard, logs) = build(&config(grpc(&receiver)));
    let shown_id = tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("discord.event");
        let _root = root.enter();
        let command = tracing::info_span!("command", command.name = "ping");
        let _command = command.enter();
        tracing::info!(latency_ms = 12_i64, "answered");
        current_trace_id()
    });
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("outside any span"));
    guard.shutdown().await;

    let spans = receiver.wait_for_spans(|s| s.len() >= 2, ARRIVAL).await;
    let command = named(&spans, "command");
    let answered = logs.lines_with_message("answered");
    assert_eq!(answered.len(), 1);
    let line = &answered[0];
    assert_eq!(line["span"], "command");
    assert_eq!(line["latency_ms"], 12);
    assert_eq!(line["trace_id"].as_str(), Some(command.trace_id.as_str()));
    assert_eq!(line["span_id"].as_str(), Some(command.span_id.as_str()));
    assert_eq!(shown_id.as_deref(), Some(command.trace_id.as_str()));

    let outside = &logs.lines_with_message("outside any span")[0];
    assert!(outside.get("trace_id").is_none(), "{outside}");
    assert!(outside.get("span").is_none(), "{outside}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_log_line_carries_the_ids_of_the_span_it_names_as_parent() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let config = TelemetryConfig {
        log_filter: "info,other_crate=debug".to_owned(),
        ..config(grpc(&receiver))
    };
    let (dispatch, guard, logs) = build(&config);
    tracing::dispatcher::with_default(&dispatch, || {
        let command = tracing::info_span!("command", command.name = "ping");
        let _command = command.enter();
        // A REST call's span is never entered; its events name it.
        let rest = tracing::info_span!("discord.rest");
        tracing::warn!(parent: &rest, "rate limited");
        // Another crate's DEBUG span is logged (the log filter asks for it)
        // but not traced; an event in it carries its nearest traced
        // ancestor's ids.
        let _other = tracing::debug_span!(target: "other_crate", "connect").entered();
        tracing::warn!("inside an untraced span");
    });
    guard.shutdown().await;

    let spans = receiver.wait_for_spans(|s| s.len() >= 2, ARRIVAL).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let rest = named(&spans, "discord.rest");
    let command = named(&spans, "command");
    assert_eq!(
        rest.parent_span_id.as_deref(),
        Some(command.span_id.as_str())
    );
    let line = &logs.lines_with_message("rate limited")[0];
    assert_eq!(line["span"], "discord.rest");
    assert_eq!(line["trace_id"].as_str(), Some(rest.trace_id.as_str()));
    assert_eq!(line["span_id"].as_str(), Some(rest.span_id.as_str()));
    let line = &logs.lines_with_message("inside an untraced span")[0];
    assert_eq!(line["span"], "connect");
    assert_eq!(line["span_id"].as_str(), Some(command.span_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_logs_arrive_with_trace_and_span_ids() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let config = TelemetryConfig {
        logs: Some(http(&receiver, Signal::Logs)),
        ..config(grpc(&receiver))
    };
    let (dispatch, guard, _lines) = build(&config);
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("discord.event", discord.event = "GUILD_MEMBER_ADD");
        let entered = span.enter();
        tracing::info!(guild_id = 5_i64, "member joined");
        tracing::debug!("below the filter");
        drop(entered);
        tracing::warn!("no span here");
    });
    guard.shutdown().await;

    let spans = receiver.wait_for_spans(|s| !s.is_empty(), ARRIVAL).await;
    let event = named(&spans, "discord.event");
    let logs = receiver.wait_for_logs(|l| l.len() >= 2, ARRIVAL).await;
    assert_eq!(logs.len(), 2, "{logs:#?}");
    let joined = logs.iter().find(|l| l.body == "member joined").unwrap();
    assert_eq!(joined.severity_text, "INFO");
    assert_eq!(joined.attr("guild_id").and_then(|v| v.as_i64()), Some(5));
    assert_eq!(joined.trace_id.as_deref(), Some(event.trace_id.as_str()));
    assert_eq!(joined.span_id.as_deref(), Some(event.span_id.as_str()));
    assert_eq!(joined.transport, Transport::Http);
    assert_eq!(
        joined.resource["service.name"].as_str(),
        Some("guildscope-test")
    );
    let alone = logs.iter().find(|l| l.body == "no span here").unwrap();
    assert_eq!(alone.severity_text, "WARN");
    assert_eq!(alone.trace_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_spans_share_traces_log_ids_and_the_export_with_tracing_spans() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let config = TelemetryConfig {
        logs: Some(http(&receiver, Signal::Logs)),
        ..config(grpc(&receiver))
    };
    let (dispatch, guard, lines) = build(&config);
    let shown_id = async {
        let mut root = guildscope_trace::Span::root("discord.event");
        root.set_name("/ping");
        root.set("command.name", "ping");
        let shown_id = guildscope_trace::scope(root.context(), async {
            // A `tracing` span made in the scope is the command's child, and
            // one of guildscope's spans made inside it is too: the scope is
            // the parent of guildscope's spans.
            async { guildscope_trace::Span::child("discord.rest").end() }
                .instrument(tracing::info_span!("library.call"))
                .await;
            tracing::info!("inside the command");
            current_trace_id()
        })
        .await;
        root.end();
        // Outside any scope, one of guildscope's spans made inside a `tracing`
        // span joins that span's trace.
        async { guildscope_trace::Span::child("store.query").end() }
            .instrument(tracing::info_span!("backfill"))
            .await;
        shown_id
    }
    .with_subscriber(dispatch.clone())
    .await;
    let counts = guard.shutdown().await;
    assert_eq!((counts.ended, counts.exported), (5, 5), "{counts:?}");

    let spans = receiver.wait_for_spans(|s| s.len() >= 5, ARRIVAL).await;
    let root = named(&spans, "/ping");
    let library = named(&spans, "library.call");
    let rest = named(&spans, "discord.rest");
    let backfill = named(&spans, "backfill");
    let query = named(&spans, "store.query");
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.str_attr("command.name"), Some("ping"));
    assert_eq!(root.scope, "guildscope");
    assert_eq!(
        root.resource["service.name"].as_str(),
        Some("guildscope-test")
    );
    for child in [library, rest] {
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_span_id.as_deref(), Some(root.span_id.as_str()));
    }
    assert_eq!(query.trace_id, backfill.trace_id);
    assert_eq!(
        query.parent_span_id.as_deref(),
        Some(backfill.span_id.as_str())
    );
    assert_ne!(backfill.trace_id, root.trace_id);

    assert_eq!(shown_id.as_deref(), Some(root.trace_id.as_str()));
    let line = &lines.lines_with_message("inside the command")[0];
    assert_eq!(line["trace_id"].as_str(), Some(root.trace_id.as_str()));
    assert_eq!(line["span_id"].as_str(), Some(root.span_id.as_str()));
    let logs = receiver.wait_for_logs(|l| !l.is_empty(), ARRIVAL).await;
    let record = logs
        .iter()
        .find(|l| l.body == "inside the command")
        .unwrap();
    assert_eq!(record.trace_id.as_deref(), Some(root.trace_id.as_str()));
    assert_eq!(record.span_id.as_deref(), Some(root.span_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_zero_exports_nothing_but_follows_a_sampled_remote_parent() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let config = TelemetryConfig {
        sample_ratio: 0.0,
        ..config(grpc(&receiver))
    };
    let (dispatch, guard, _logs) = build(&config);
    let (parent, trace_id, parent_id) = remote_parent(true);
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..20 {
            let root = tracing::info_span!("unsampled");
            let _root = root.enter();
            assert_eq!(current_trace_id(), None);
            let _child = tracing::info_span!("unsampled.child").entered();
        }
        let span = tracing::info_span!("continued");
        span.set_parent(parent).unwrap();
        let _entered = span.enter();
        let _child = tracing::info_span!("continued.child").entered();
        assert_eq!(current_trace_id().as_deref(), Some(trace_id));
    });
    let counts = guard.shutdown().await;
    assert_eq!(counts.ended, 2, "only the continued trace is sampled");
    assert_eq!(counts.exported, 2);

    // Shutdown has flushed: what arrived is everything that was sent.
    let spans = receiver.wait_for_spans(|s| s.len() >= 2, ARRIVAL).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let continued = named(&spans, "continued");
    let child = named(&spans, "continued.child");
    assert_eq!(continued.trace_id, trace_id);
    assert_eq!(continued.parent_span_id.as_deref(), Some(parent_id));
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some(continued.span_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_one_exports_everything() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (dispatch, guard, _logs) = build(&config(http(&receiver, Signal::Traces)));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..50_i64 {
            let _root = tracing::info_span!("root", i).entered();
            let _child = tracing::info_span!("child", i).entered();
        }
    });
    let counts = guard.shutdown().await;
    assert_eq!(counts.ended, 100);
    assert_eq!(counts.exported, 100);
    let spans = receiver.wait_for_spans(|s| s.len() >= 100, ARRIVAL).await;
    assert_eq!(spans.len(), 100);
    let roots = spans.iter().filter(|s| s.parent_span_id.is_none()).count();
    assert_eq!(roots, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_sampled_remote_parent_is_followed_unless_parents_are_ignored() {
    let receiver = OtlpReceiver::start().await.unwrap();
    for (parent_sampling, expected) in [(ParentSampling::Follow, 0), (ParentSampling::Ignore, 1)] {
        let config = TelemetryConfig {
            sample_ratio: 1.0,
            parent_sampling,
            ..config(grpc(&receiver))
        };
        let (dispatch, guard, _logs) = build(&config);
        let (parent, trace_id, _) = remote_parent(false);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("after.unsampled.parent", ?parent_sampling);
            span.set_parent(parent).unwrap();
            let _entered = span.enter();
        });
        let counts = guard.shutdown().await;
        assert_eq!(counts.ended, expected, "{parent_sampling:?}");
        assert_eq!(counts.exported, expected, "{parent_sampling:?}");
        if expected == 1 {
            let spans = receiver.wait_for_spans(|s| !s.is_empty(), ARRIVAL).await;
            assert_eq!(spans.len(), 1);
            assert_eq!(spans[0].trace_id, trace_id);
        }
    }
    assert_eq!(receiver.spans().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_from_tasks_on_a_multi_threaded_runtime_are_exported_over_grpc() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (dispatch, guard, _logs) = build(&config(grpc(&receiver)));
    let mut tasks = Vec::new();
    for task in 0..32_i64 {
        let work = async move {
            // Created inside the task, on a worker thread, under the task's dispatcher.
            let span = tracing::info_span!("task", task);
            async {
                for step in 0..3_i64 {
                    let _step = tracing::info_span!("step", step).entered();
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            .instrument(span)
            .await;
        };
        tasks.push(tokio::spawn(work.with_subscriber(dispatch.clone())));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Exports run while the runtime's workers are busy with other things.
    let spans = receiver
        .wait_for_spans(|s| s.len() >= 32 * 4, ARRIVAL)
        .await;
    assert_eq!(spans.len(), 128);
    for task in spans.iter().filter(|s| s.name == "task") {
        let steps = spans
            .iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(task.span_id.as_str()))
            .count();
        assert_eq!(steps, 3, "{task:?}");
    }
    let counts = guard.shutdown().await;
    assert_eq!(counts.exported, 128);
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn dead_endpoint_costs_nothing(endpoint: OtlpEndpoint) {
    let config = config(endpoint.with_timeout(Duration::from_millis(400)));
    let (dispatch, guard, logs) = build(&config);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..10_000_i64 {
            let _span = tracing::info_span!("doomed", i).entered();
        }
    });
    let counts = guard.span_counts();
    assert_eq!(counts.ended, 10_000);
    assert_eq!(counts.exported, 0);

    let deadline = Instant::now() + Duration::from_secs(15);
    while guard.span_counts().export_failures == 0 {
        assert!(Instant::now() < deadline, "no export failure was counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let counts = tokio::time::timeout(Duration::from_secs(15), guard.shutdown())
        .await
        .expect("shutdown must not hang on a dead collector");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(counts.ended, 10_000);
    assert_eq!(counts.exported, 0);
    assert!(counts.export_failures > 0);
    assert_eq!(counts.not_exported(), 10_000);

    // Many exports failed; the warning was logged once (the rate limit is 30 s).
    let warnings: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("OTLP export failed"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["level"], "WARN");
    assert_eq!(warnings[0]["signal"], "traces");
    let summary = logs.lines_with_message("not every span could be exported before shutdown");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["spans_not_exported"], 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_grpc_endpoint_drops_and_counts_without_hanging() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    dead_endpoint_costs_nothing(OtlpEndpoint::new(url, OtlpProtocol::Grpc)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_http_endpoint_drops_and_counts_without_hanging() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let endpoint = OtlpEndpoint::for_signal(&base, OtlpProtocol::HttpProtobuf, Signal::Traces);
    dead_endpoint_costs_nothing(endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_counted_and_export_resumes_after_it() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = grpc(&receiver).with_timeout(Duration::from_millis(300));
    let (dispatch, guard, _logs) = build(&config(endpoint));

    receiver.set_unavailable(true);
    tracing::dispatcher::with_default(&dispatch, || {
        let _span = tracing::info_span!("during.outage").entered();
    });
    let deadline = Instant::now() + ARRIVAL;
    while guard.span_counts().export_failures == 0 {
        assert!(
            Instant::now() < deadline,
            "the failed export was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(receiver.refused_while_unavailable() > 0);

    receiver.set_unavailable(false);
    tracing::dispatcher::with_default(&dispatch, || {
        let _span = tracing::info_span!("after.outage").entered();
    });
    let spans = receiver.wait_for_spans(|s| !s.is_empty(), ARRIVAL).await;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "after.outage");
    let counts = guard.shutdown().await;
    assert_eq!(
        counts,
        SpanCounts {
            ended: 2,
            exported: 1,
            export_failures: 1,
            dropped: 0,
        }
    );
}
