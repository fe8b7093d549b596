//! guildscope's tracing and log pipeline: `tracing` spans exported over OTLP (gRPC or
//! HTTP) to any OpenTelemetry collector or vendor, log lines on stderr (human-readable or
//! JSON carrying trace ids), and, when asked, log records and the metrics registry over
//! OTLP too.
//!
//! ```text
//! tracing ──► EnvFilter ──┬─► fmt layer ──► stderr (pretty | JSON with trace_id/span_id)
//!                         ├─► span layer (sampler) ──► batch processor ──► OTLP encoder ──► OTLP
//!                         └─► log bridge ─────────────► batch processor ──────────────────► OTLP
//! ```
//!
//! The span layer and the log bridge exist only when their signal is configured: with
//! [`TelemetryConfig::traces`] unset a span costs what a plain `tracing` span costs.
//!
//! Spans are the hot path: every command and every traced gateway event makes a few.
//! The span layer keeps the work on the thread that runs a span small (ids, a timestamp,
//! the attributes, one hand-off to the batch processor), and the exporter encodes a batch
//! into OTLP protobuf in one pass; both produce exactly what `tracing-opentelemetry` and
//! the OpenTelemetry SDK's OTLP exporter produce for the same spans (unit tests compare
//! them). Spans made with the OpenTelemetry API directly go through the SDK tracer
//! provider [`init`] installs, to the same batch processor and exporter.
//!
//! Exports run on the batch processors' own threads behind bounded queues, so a slow or
//! dead collector never blocks or slows the code that creates spans; what does not fit is
//! dropped and counted ([`TelemetryGuard::span_counts`]), and failures are logged at most
//! once every 30 seconds.
//!
//! The metrics registry is exported over OTLP, when [`TelemetryConfig::metrics`] is set,
//! by a thread of its own once the registry is handed over
//! ([`TelemetryGuard::export_metrics`]): every interval, and once more on shutdown.
//!
//! Configuration comes from the config file ([`TelemetryConfig`]) with the standard
//! `OTEL_*` environment variables applied on top ([`TelemetryConfig::apply_env`]).
//!
//! # Layout
//!
//! - `config.rs`: [`TelemetryConfig`], [`OtlpEndpoint`] and the other settings, their
//!   validation, and [`TelemetryError`].
//! - `env.rs`: the `OTEL_*` environment variables.
//! - `pipeline.rs`: the filter, the layers, the providers and the OTLP exporters.
//! - `layer.rs`: the span layer, sampling, and the span operations of [`SpanExt`].
//! - `encode.rs`: OTLP trace requests encoded from span data, and the protobuf field
//!   writers; a nested message's length is written after its body, into room left
//!   for it.
//! - `own.rs`: guildscope's own spans, encoded where they end into buffers of their
//!   threads', taken whole by the batch processor.
//! - `batch.rs`: the span batch processor: the bounded queue and the export thread.
//! - `transport.rs`: sending OTLP requests over gRPC and HTTP, timeouts and retries; the
//!   span exporter.
//! - `metrics_export.rs`: the periodic OTLP metrics exporter.
//! - `export.rs`: the exact span and log counts, the log exporter's counting, and the
//!   rate-limited warning for failing exports.
//! - `logfmt.rs`: the JSON log line format.
//! - `tests.rs`: unit tests; the end-to-end tests against a real OTLP receiver live in
//!   `tests/otel*.rs`.

mod batch;
mod config;
mod encode;
mod env;
mod export;
mod layer;
mod logfmt;
mod metrics_export;
mod own;
mod pipeline;
mod transport;

#[cfg(test)]
mod tests;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

pub use config::{
    LogFormat, OtlpEndpoint, OtlpProtocol, ParentSampling, Signal, TelemetryConfig, TelemetryError,
    UnknownLogFormat, UnknownProtocol,
};
pub use env::{
    OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_LOGS_HEADERS,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_HEADERS,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_METRIC_EXPORT_INTERVAL, OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG,
};
pub use export::SpanCounts;
pub use layer::SetParentError;

use export::ExportStats;
use layer::SpanSink;
use logfmt::Output;

/// How long [`TelemetryGuard::shutdown`] lets each provider flush before giving up.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the pipeline without installing it: the dispatcher to install (globally with
/// [`tracing::dispatcher::set_global_default`], or for a scope with
/// [`tracing::dispatcher::with_default`]) and the guard that flushes it.
///
/// Log lines go to stderr. Spans and metrics over gRPC need no runtime of the caller's:
/// their connection lives on the exporting thread. OTLP logs over gRPC do: call it inside
/// a tokio runtime then, which must outlive the guard (a multi-threaded runtime is best;
/// on a current-thread runtime log exports progress only while that thread is awaiting).
pub fn build(
    config: &TelemetryConfig,
) -> Result<(tracing::Dispatch, TelemetryGuard), TelemetryError> {
    let output = Output {
        writer: BoxMakeWriter::new(std::io::stderr),
        terminal: std::io::stderr().is_terminal(),
    };
    pipeline::build_pipeline(config, output)
}

/// [`build`], writing log lines to `writer` instead of stderr. The writer is taken not to
/// be a terminal: no colours, and [`LogFormat::Auto`] means JSON.
pub fn build_with_writer<W>(
    config: &TelemetryConfig,
    writer: W,
) -> Result<(tracing::Dispatch, TelemetryGuard), TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let output = Output {
        writer: BoxMakeWriter::new(writer),
        terminal: false,
    };
    pipeline::build_pipeline(config, output)
}

/// [`build`], then installs the pipeline as the process's global `tracing` dispatcher,
/// its tracer provider as OpenTelemetry's global one, and the W3C trace-context
/// propagator (`traceparent`) as the global propagator.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let (dispatch, guard) = build(config)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|source| TelemetryError::AlreadyInstalled { source })?;
    if let Some(provider) = &guard.tracer_provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }
    Ok(guard)
}

/// The trace id (32 hex digits) of the current span, when traces are exported and the
/// span is sampled: an id to show a user next to an error, which leads to the trace. The
/// current span is the entered `tracing` span, or else guildscope's own span of the
/// current [`guildscope_trace::scope`].
pub fn current_trace_id() -> Option<String> {
    layer::sampled_trace_id(&tracing::Span::current())
        .map(|id| id.to_string())
        .or_else(|| {
            guildscope_trace::current()
                .filter(|own| own.sampled)
                .map(|own| own.trace_id.to_string())
        })
}

/// OpenTelemetry operations on a `tracing` span of this pipeline. On a span the
/// pipeline does not export (disabled, filtered away, or no traces configured) they
/// do nothing.
pub trait SpanExt {
    /// Continues a trace from another service: `parent` (a context extracted from a
    /// `traceparent` header) becomes the span's parent, its trace the span's trace, and
    /// its sampling decision the span's when parents are followed. Only before the span
    /// is entered or has children.
    fn set_parent(&self, parent: opentelemetry::Context) -> Result<(), SetParentError>;

    /// The span's OpenTelemetry context, to inject into an outgoing request (an empty
    /// context when the span is not exported). The span's trace is fixed from then on.
    fn context(&self) -> opentelemetry::Context;

    /// Sets an attribute whose name is only known at run time.
    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>);
}

impl SpanExt for tracing::Span {
    fn set_parent(&self, parent: opentelemetry::Context) -> Result<(), SetParentError> {
        layer::set_parent(self, &parent)
    }

    fn context(&self) -> opentelemetry::Context {
        layer::context(self)
    }

    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        layer::set_attribute(self, KeyValue::new(key, value));
    }
}

/// Reads a pipeline's span counts; cheap to clone.
#[derive(Clone)]
pub struct SpanCounter(Arc<ExportStats>);

impl SpanCounter {
    /// What happened to the spans so far (see [`TelemetryGuard::span_counts`]).
    pub fn counts(&self) -> SpanCounts {
        self.0.span_counts()
    }
}

impl std::fmt::Debug for SpanCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SpanCounter").field(&self.counts()).finish()
    }
}

/// Owns the OpenTelemetry providers of a pipeline; [`TelemetryGuard::shutdown`] flushes
/// them. Dropping the guard without shutting down flushes nothing: spans still queued
/// when the process exits are lost.
#[derive(Debug)]
pub struct TelemetryGuard {
    /// Where the span layer hands finished spans; closed at shutdown.
    span_sink: Option<Arc<SpanSink>>,
    tracer_provider: Option<SdkTracerProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    stats: Arc<ExportStats>,
    /// Where and how often to export the metrics registry, until it is handed over.
    metrics_settings: Option<MetricsSettings>,
    metrics_export: Option<metrics_export::MetricsExport>,
    /// Keeps the pipeline's dispatcher alive until the shutdown summary is logged through
    /// it, whether or not it is the global one.
    dispatch: tracing::Dispatch,
}

/// What the metrics exporter needs from the configuration.
#[derive(Debug)]
struct MetricsSettings {
    endpoint: OtlpEndpoint,
    interval: Duration,
    resource: opentelemetry_sdk::Resource,
}

impl TelemetryGuard {
    /// What happened to the spans so far. Exact at every moment; spans still queued count
    /// as ended but not yet exported.
    pub fn span_counts(&self) -> SpanCounts {
        self.stats.span_counts()
    }

    /// A handle that reads the same counts, for a metrics scrape hook that outlives a
    /// borrow of the guard.
    pub fn span_counter(&self) -> SpanCounter {
        SpanCounter(Arc::clone(&self.stats))
    }

    /// Starts exporting `metrics` over OTLP, when the configuration asks for it; returns
    /// whether it did. The exporter
    /// is started once: a second call returns `false`. It reads the registry while the
    /// caller holds it, and exports nothing once every holder has let go.
    pub fn export_metrics(
        &mut self,
        metrics: &Arc<crate::metrics::Metrics>,
    ) -> Result<bool, TelemetryError> {
        let Some(settings) = self.metrics_settings.take() else {
            return Ok(false);
        };
        let client = transport::OtlpClient::new(&settings.endpoint, Signal::Metrics)?;
        let export = metrics_export::MetricsExport::start(
            client,
            &settings.resource,
            metrics,
            settings.interval,
            Arc::clone(&self.stats),
        )
        .map_err(|source| TelemetryError::Client {
            signal: Signal::Metrics.as_str(),
            source: Box::new(source),
        })?;
        self.metrics_export = Some(export);
        Ok(true)
    }

    /// Exports the metrics a last time and stops exporting them, waiting at most
    /// [`SHUTDOWN_TIMEOUT`] (plus a little); logs a warning when that export fails.
    /// Call it before letting go of the registry, so the last export can read it. Also
    /// done by [`shutdown`](Self::shutdown).
    pub async fn stop_metrics_export(&mut self) {
        let Some(export) = self.metrics_export.take() else {
            return;
        };
        // The last export carries the final totals.
        let task = tokio::task::spawn_blocking(move || export.shutdown(SHUTDOWN_TIMEOUT));
        let result = tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), task).await;
        let problem = match result {
            Ok(Ok(Ok(()))) => return,
            Ok(Ok(Err(err))) => err.to_string(),
            Ok(Err(_)) => "the exporting task failed".to_owned(),
            Err(_) => "timed out".to_owned(),
        };
        self.stats.in_pipeline(|| {
            tracing::warn!(
                problem = problem.as_str(),
                "the final metrics could not be exported before shutdown"
            );
        });
    }

    /// Metric exports that succeeded and that failed so far.
    pub fn metric_exports(&self) -> (u64, u64) {
        self.stats.metric_export_counts()
    }

    /// Exports the metrics a last time, then what is queued, and shuts the providers
    /// down, waiting at most [`SHUTDOWN_TIMEOUT`] (plus a little) for the metrics and as
    /// long for the spans and logs, however slow or dead the collector is. Logs a warning
    /// with what could not be exported, and returns the span counts, which are final
    /// unless the flush ran out of time.
    pub async fn shutdown(mut self) -> SpanCounts {
        self.stop_metrics_export().await;
        let started = Instant::now();
        if let Some(sink) = &self.span_sink {
            // Spans ending from now on are neither counted nor exported.
            sink.close();
        }
        let traces = self.tracer_provider.clone().map(|provider| {
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
        });
        let logs = self.logger_provider.clone().map(|provider| {
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
        });
        // The providers bound their own wait; this bounds the blocking tasks themselves.
        let deadline = SHUTDOWN_TIMEOUT + Duration::from_secs(1);
        let trace_result = match traces {
            Some(task) => Some(tokio::time::timeout(deadline, task).await),
            None => None,
        };
        let remaining = deadline.saturating_sub(started.elapsed());
        let log_result = match logs {
            Some(task) => Some(tokio::time::timeout(remaining, task).await),
            None => None,
        };

        let counts = self.stats.span_counts();
        let (logs_exported, logs_failed) = self.stats.log_counts();
        let describe = |result: Option<Result<Result<Result<(), _>, _>, _>>| match result {
            None | Some(Ok(Ok(Ok(())))) => None,
            Some(Ok(Ok(Err(err)))) => Some(format!("{err}")),
            Some(Ok(Err(_))) => Some("the flushing task failed".to_owned()),
            Some(Err(_)) => Some("timed out".to_owned()),
        };
        let trace_problem = describe(trace_result);
        let log_problem = describe(log_result);
        self.stats.in_pipeline(|| {
            if trace_problem.is_some() || counts.not_exported() > 0 {
                tracing::warn!(
                    spans_ended = counts.ended,
                    spans_exported = counts.exported,
                    spans_not_exported = counts.not_exported(),
                    spans_in_failed_exports = counts.export_failures,
                    problem = trace_problem.as_deref().unwrap_or("none"),
                    "not every span could be exported before shutdown"
                );
            }
            if log_problem.is_some() || logs_failed > 0 {
                tracing::warn!(
                    logs_exported,
                    logs_in_failed_exports = logs_failed,
                    problem = log_problem.as_deref().unwrap_or("none"),
                    "log records may not all have been exported before shutdown"
                );
            }
        });
        drop(self.dispatch);
        counts
    }
}
