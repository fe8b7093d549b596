//! `init`: the pipeline installed process-wide, with OpenTelemetry's global tracer
//! provider and the W3C propagator. One test in its own binary, since it sets globals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use guildscope_telemetry::otel::SpanExt as _;
use guildscope_telemetry::otel::{
    LogFormat, OtlpEndpoint, OtlpProtocol, TelemetryConfig, TelemetryError, current_trace_id, init,
};
use guildscope_testkit::otlp::OtlpReceiver;
use opentelemetry::trace::{Span as _, Tracer as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_installs_the_pipeline_the_tracer_provider_and_the_propagator() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let config = TelemetryConfig {
        log_format: LogFormat::Json,
        traces: Some(OtlpEndpoint::new(
            receiver.grpc_endpoint(),
            OtlpProtocol::Grpc,
        )),
        ..TelemetryConfig::default()
    };
    let guard = init(&config).unwrap();
    assert!(matches!(
        init(&config),
        Err(TelemetryError::AlreadyInstalled { .. })
    ));

    let (shown, traceparent) = {
        let span = tracing::info_span!("command", command.name = "stats");
        let _entered = span.enter();
        let mut carrier = HashMap::new();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&span.context(), &mut carrier);
        });
        (current_trace_id().unwrap(), carrier.remove("traceparent"))
    };
    let mut direct = opentelemetry::global::tracer("direct").start("direct.span");
    direct.end();
    guard.shutdown().await;

    let spans = receiver
        .wait_for_spans(|s| s.len() >= 2, Duration::from_secs(10))
        .await;
    let command = spans.iter().find(|s| s.name == "command").unwrap();
    assert_eq!(shown, command.trace_id);
    assert_eq!(
        traceparent.as_deref(),
        Some(format!("00-{}-{}-01", command.trace_id, command.span_id).as_str())
    );
    assert!(spans.iter().any(|s| s.name == "direct.span"), "{spans:#?}");
}
