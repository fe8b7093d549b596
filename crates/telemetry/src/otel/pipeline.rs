//! Assembling the pipeline: the `EnvFilter`, the fmt layer, and, when configured, the
//! span layer and the OpenTelemetry log bridge with their providers, batch processors
//! and OTLP exporters.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{
    Protocol, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer, Registry};

use super::batch::{BatchProcessor, BatchSettings, RecordedSpans, SdkSpans};
use super::config::{
    OtlpEndpoint, OtlpProtocol, ParentSampling, Signal, TelemetryConfig, TelemetryError, invalid,
};
use super::export::{CountingLogExporter, ExportStats};
use super::layer::{Sampling, SpanLayer, SpanSink, WithOwnContext, current_as_parent};
use super::logfmt::{Output, TraceIds, fmt_layer};
use super::transport::OtlpSpanExporter;
use super::{MetricsSettings, TelemetryGuard};

/// Name of the instrumentation scope of guildscope's spans.
const SCOPE: &str = "guildscope";

/// Targets of the crates that carry exports (and of this module, which reports on them).
/// Their events are never exported themselves, so an export problem cannot feed on
/// itself, and they are held at `warn` on stderr unless the log filter names them.
const EXPORTER_TARGETS: [&str; 7] = [
    "opentelemetry",
    "tonic",
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "tower",
];

/// This module's own target prefix; its warnings are about exports and stay local.
const OWN_TARGET: &str = "guildscope_telemetry::otel";

/// Builds the dispatcher and the guard owning the providers.
pub(crate) fn build_pipeline(
    config: &TelemetryConfig,
    output: Output,
) -> Result<(tracing::Dispatch, TelemetryGuard), TelemetryError> {
    config.validate()?;
    let filter = env_filter(&config.log_filter)?;
    let stats = Arc::new(ExportStats::default());

    if config.traces.is_some() || config.logs.is_some() || config.metrics.is_some() {
        // reqwest is built without a default TLS provider; install ring's once for the
        // process. An error means one is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let resource = resource(config);
    let metrics_resource = resource.clone();
    let traces = config
        .traces
        .as_ref()
        .map(|endpoint| span_pipeline(config, endpoint, resource.clone(), &stats))
        .transpose()?;
    let logger_provider = config
        .logs
        .as_ref()
        .map(|endpoint| logger_provider(config, endpoint, resource, &stats))
        .transpose()?;

    let trace_ids = if traces.is_some() {
        TraceIds::Include
    } else {
        TraceIds::Omit
    };
    // Each layer has its own filter. Logs (stderr and OTLP) follow the log
    // filter; spans go to OpenTelemetry down to DEBUG whatever the log level,
    // so the per-event root spans (DEBUG, invisible in logs) are traced.
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![Box::new(
        fmt_layer(config.log_format, output, trace_ids).with_filter(filter),
    )];
    if let Some((sink, provider)) = &traces {
        let events = EventFilter::new(&config.log_filter)?;
        // Other crates' DEBUG spans (per frame, per connection) would cost on
        // every event and say little: only guildscope's go down to DEBUG.
        // The level hints keep the process's maximum level at DEBUG, so
        // TRACE callsites everywhere stay off.
        let spans = filter_fn(|meta| {
            meta.is_span()
                && (*meta.level() <= tracing::Level::INFO
                    || (*meta.level() <= tracing::Level::DEBUG
                        && meta.target().starts_with("guildscope")))
        })
        .with_max_level_hint(LevelFilter::DEBUG);
        let sampling = Sampling::new(config.sample_ratio, config.parent_sampling);
        // guildscope's own spans: found by `guildscope_trace` through this
        // dispatcher, recorded without it, and exported with the rest.
        let tracer =
            guildscope_trace::Tracer::new(RecordedSpans(Arc::clone(sink)), sampling.of_own_spans())
                .with_outer_parent(current_as_parent);
        layers.insert(0, Box::new(tracer.layer()));
        let layer = SpanLayer::new(
            Arc::clone(sink),
            sampling,
            // The log bridge reads the trace context from the thread's current
            // OpenTelemetry context.
            logger_provider.is_some(),
        )
        .keeping(provider.clone())
        .with_filter(
            spans.or(events).and(
                filter_fn(|meta| !is_exporter_target(meta.target()))
                    .with_max_level_hint(LevelFilter::TRACE),
            ),
        );
        layers.push(Box::new(layer));
    }
    if let Some(provider) = &logger_provider {
        let events = env_filter(&config.log_filter)?;
        let layer = WithOwnContext(OpenTelemetryTracingBridge::new(provider))
            .with_filter(events.and(filter_fn(|meta| !is_exporter_target(meta.target()))));
        layers.push(Box::new(layer));
    }
    let subscriber = Registry::default().with(layers);
    let dispatch = tracing::Dispatch::new(subscriber);
    stats.set_dispatch(dispatch.downgrade());

    let (span_sink, tracer_provider) = traces.unzip();
    let guard = TelemetryGuard {
        span_sink,
        tracer_provider,
        logger_provider,
        stats,
        metrics_settings: config.metrics.clone().map(|endpoint| MetricsSettings {
            endpoint,
            interval: config.metrics_interval,
            resource: metrics_resource,
        }),
        metrics_export: None,
        dispatch: dispatch.clone(),
    };
    Ok((dispatch, guard))
}

/// The log filter deciding which events become span events. It decides for events only:
/// which spans are traced is the span filter's to say, so a log filter that shows another
/// crate's DEBUG spans in the logs does not export them. An `EnvFilter` tracks the
/// spans its directives name (`[command]=debug`) on every span operation; without such
/// directives there is nothing to track, and this filter skips that work, which would
/// otherwise cost a lock and a lookup each time any traced span is entered, exited or
/// recorded.
struct EventFilter {
    filter: EnvFilter,
    spans_matter: bool,
}

impl EventFilter {
    fn new(directives: &str) -> Result<Self, TelemetryError> {
        Ok(Self {
            filter: env_filter(directives)?,
            spans_matter: directives.contains('['),
        })
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for EventFilter
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        meta.is_event()
            && <EnvFilter as tracing_subscriber::layer::Filter<S>>::enabled(&self.filter, meta, cx)
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.is_span() {
            return tracing::subscriber::Interest::never();
        }
        <EnvFilter as tracing_subscriber::layer::Filter<S>>::callsite_enabled(&self.filter, meta)
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        <EnvFilter as tracing_subscriber::layer::Filter<S>>::event_enabled(&self.filter, event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        <EnvFilter as tracing_subscriber::layer::Filter<S>>::max_level_hint(&self.filter)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if self.spans_matter {
            <EnvFilter as tracing_subscriber::layer::Filter<S>>::on_new_span(
                &self.filter,
                attrs,
                id,
                cx,
            );
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if self.spans_matter {
            <EnvFilter as tracing_subscriber::layer::Filter<S>>::on_record(
                &self.filter,
                id,
                values,
                cx,
            );
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, cx: tracing_subscriber::layer::Context<'_, S>) {
        if self.spans_matter {
            <EnvFilter as tracing_subscriber::layer::Filter<S>>::on_enter(&self.filter, id, cx);
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, cx: tracing_subscriber::layer::Context<'_, S>) {
        if self.spans_matter {
            <EnvFilter as tracing_subscriber::layer::Filter<S>>::on_exit(&self.filter, id, cx);
        }
    }

    fn on_close(&self, id: tracing::span::Id, cx: tracing_subscriber::layer::Context<'_, S>) {
        if self.spans_matter {
            <EnvFilter as tracing_subscriber::layer::Filter<S>>::on_close(&self.filter, id, cx);
        }
    }
}

/// Whether events of `target` belong to the export machinery.
pub(crate) fn is_exporter_target(target: &str) -> bool {
    fn under(target: &str, prefix: &str) -> bool {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    }
    // Every opentelemetry crate: opentelemetry, opentelemetry_sdk, opentelemetry-otlp, ...
    target.starts_with("opentelemetry")
        || EXPORTER_TARGETS.iter().any(|prefix| under(target, prefix))
        || under(target, OWN_TARGET)
}

/// The `EnvFilter` for `directives`, with [`filter_directives`] applied.
pub(crate) fn env_filter(directives: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(filter_directives(directives))
        .map_err(|source| TelemetryError::LogFilter {
            filter: directives.to_owned(),
            source,
        })
}

/// The user's directives, plus `warn` for each exporter crate the user did not name (or
/// the user's bare level when it is stricter than `warn`).
pub(crate) fn filter_directives(directives: &str) -> String {
    let user: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let quiet_level = user
        .iter()
        .rev()
        .find(|d| !d.contains('='))
        .filter(|d| d.eq_ignore_ascii_case("error") || d.eq_ignore_ascii_case("off"))
        .map_or("warn", |d| d);
    let mut full = user.join(",");
    for target in EXPORTER_TARGETS {
        let named = user.iter().any(|d| {
            let name = d.split(['=', '[']).next().unwrap_or_default();
            name == target || name.starts_with(&format!("{target}::"))
        });
        if !named {
            full.push_str(&format!(",{target}={quiet_level}"));
        }
    }
    full
}

fn resource(config: &TelemetryConfig) -> Resource {
    let mut attributes = vec![
        KeyValue::new("service.version", config.service_version.clone()),
        // Tells replicas (and the old and new process of a rolling deploy) apart,
        // as a scrape's `instance` label does for Prometheus.
        KeyValue::new("service.instance.id", instance_id()),
    ];
    if let Some(environment) = &config.environment {
        attributes.push(KeyValue::new(
            "deployment.environment.name",
            environment.clone(),
        ));
    }
    Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes(attributes)
        .build()
}

/// A random version 4 UUID, new for each process.
fn instance_id() -> String {
    use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
    let mut bytes = RandomIdGenerator::default().new_trace_id().to_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn sampler(config: &TelemetryConfig) -> Sampler {
    let by_trace_id = if config.sample_ratio >= 1.0 {
        Sampler::AlwaysOn
    } else if config.sample_ratio <= 0.0 {
        Sampler::AlwaysOff
    } else {
        Sampler::TraceIdRatioBased(config.sample_ratio)
    };
    match config.parent_sampling {
        ParentSampling::Follow => Sampler::ParentBased(Box::new(by_trace_id)),
        ParentSampling::Ignore => by_trace_id,
    }
}

/// The span pipeline: the OTLP exporter behind the batch processor, fed by the span
/// layer through the returned sink and, for spans made with the OpenTelemetry API
/// directly, by the returned tracer provider.
fn span_pipeline(
    config: &TelemetryConfig,
    endpoint: &OtlpEndpoint,
    resource: Resource,
    stats: &Arc<ExportStats>,
) -> Result<(Arc<SpanSink>, SdkTracerProvider), TelemetryError> {
    let exporter = OtlpSpanExporter::new(
        endpoint,
        &resource,
        InstrumentationScope::builder(SCOPE).build(),
    )?;
    let batch = BatchProcessor::start(
        exporter,
        BatchSettings {
            max_queue_size: config.max_queue_size,
            max_export_batch_size: config.max_export_batch_size,
            scheduled_delay: config.scheduled_delay,
        },
        Arc::clone(stats),
    );
    let sink = Arc::new(SpanSink::new(batch));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(SdkSpans(Arc::clone(&sink)))
        .with_sampler(sampler(config))
        .with_resource(resource)
        .build();
    Ok((sink, provider))
}

fn logger_provider(
    config: &TelemetryConfig,
    endpoint: &OtlpEndpoint,
    resource: Resource,
    stats: &Arc<ExportStats>,
) -> Result<SdkLoggerProvider, TelemetryError> {
    let exporter = CountingLogExporter {
        inner: log_exporter(endpoint)?,
        stats: Arc::clone(stats),
    };
    let batch_config = opentelemetry_sdk::logs::BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_size)
        .with_max_export_batch_size(config.max_export_batch_size)
        .with_scheduled_delay(config.scheduled_delay)
        .build();
    let batch = BatchLogProcessor::builder(exporter)
        .with_batch_config(batch_config)
        .build();
    Ok(SdkLoggerProvider::builder()
        .with_log_processor(batch)
        .with_resource(resource)
        .build())
}

fn log_exporter(
    endpoint: &OtlpEndpoint,
) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
    let signal = Signal::Logs;
    let exporter = opentelemetry_otlp::LogExporter::builder();
    let built = match endpoint.protocol {
        OtlpProtocol::Grpc => {
            let (metadata, tls) = grpc_settings(endpoint, signal)?;
            let mut builder = exporter
                .with_tonic()
                .with_endpoint(endpoint.url.trim())
                .with_timeout(endpoint.timeout)
                .with_metadata(metadata);
            if let Some(tls) = tls {
                builder = builder.with_tls_config(tls);
            }
            builder.build()
        }
        OtlpProtocol::HttpProtobuf => exporter
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.url.trim())
            .with_timeout(endpoint.timeout)
            .with_headers(http_headers(endpoint))
            .build(),
    };
    built.map_err(|source| TelemetryError::Exporter {
        signal: signal.as_str(),
        source,
    })
}

/// The gRPC metadata and, for `https`, the TLS settings with the bundled web PKI roots.
/// Refuses to go on outside a tokio runtime, where tonic's channel would panic.
fn grpc_settings(
    endpoint: &OtlpEndpoint,
    signal: Signal,
) -> Result<(MetadataMap, Option<ClientTlsConfig>), TelemetryError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoRuntime {
            signal: signal.as_str(),
        });
    }
    let (_, field, _) = signal.fields();
    let mut headers = HeaderMap::new();
    for (name, value) in &endpoint.headers {
        // Validated already; checked again rather than trusted.
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(field, format!("{name:?} is not a valid header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            invalid(
                field,
                format!("the value of header {name:?} has characters a header cannot carry"),
            )
        })?;
        headers.append(name, value);
    }
    let tls = endpoint
        .url
        .trim()
        .starts_with("https://")
        .then(|| ClientTlsConfig::new().with_enabled_roots());
    Ok((MetadataMap::from_headers(headers), tls))
}

fn http_headers(endpoint: &OtlpEndpoint) -> HashMap<String, String> {
    endpoint.headers.iter().cloned().collect()
}
