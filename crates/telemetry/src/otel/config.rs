//! What an operator sets to send traces, logs and metrics over OTLP and to shape the log
//! lines on stderr, how it is checked, and the pipeline's one error type.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

/// Default exporter timeout, as in the OpenTelemetry specification (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub(crate) const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default interval between metric exports, as in the OpenTelemetry specification
/// (`OTEL_METRIC_EXPORT_INTERVAL`).
pub(crate) const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(60);

/// The wire protocol of an OTLP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (`grpc`), usually port 4317.
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`, or `http`), usually port 4318.
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The name the OpenTelemetry environment variables use: `grpc` or `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

impl fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol name that is neither `grpc`, `http/protobuf` nor `http`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OTLP protocol {0:?}, expected grpc or http/protobuf")]
pub struct UnknownProtocol(pub String);

impl FromStr for OtlpProtocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" | "http" => Ok(Self::HttpProtobuf),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

/// The signal an endpoint receives; decides the path appended to an HTTP base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans, posted to `/v1/traces` over HTTP.
    Traces,
    /// Log records, posted to `/v1/logs` over HTTP.
    Logs,
    /// Metrics, posted to `/v1/metrics` over HTTP.
    Metrics,
}

impl Signal {
    /// The path OTLP/HTTP receivers serve this signal on.
    pub fn http_path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Logs => "/v1/logs",
            Self::Metrics => "/v1/metrics",
        }
    }

    /// The gRPC service and method OTLP receivers serve this signal on.
    pub(crate) fn grpc_method(self) -> (&'static str, &'static str) {
        match self {
            Self::Traces => (
                "opentelemetry.proto.collector.trace.v1.TraceService",
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            ),
            Self::Logs => (
                "opentelemetry.proto.collector.logs.v1.LogsService",
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            ),
            Self::Metrics => (
                "opentelemetry.proto.collector.metrics.v1.MetricsService",
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            ),
        }
    }

    /// The configuration fields of this signal's endpoint, as errors name them: URL,
    /// headers, timeout.
    pub(crate) fn fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Traces => ("traces.url", "traces.headers", "traces.timeout"),
            Self::Logs => ("logs.url", "logs.headers", "logs.timeout"),
            Self::Metrics => ("metrics.url", "metrics.headers", "metrics.timeout"),
        }
    }

    /// The signal's name in messages: `traces` or `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Logs => "logs",
            Self::Metrics => "metrics",
        }
    }
}

/// Where one signal is exported, and how.
///
/// `Debug` prints header names only: header values carry API keys (a Honeycomb team key,
/// a bearer token) and are shown as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpEndpoint {
    /// The URL the exporter talks to. For gRPC the collector's base URL
    /// (`http://127.0.0.1:4317`); for HTTP the full URL of the signal, path included
    /// (`http://127.0.0.1:4318/v1/traces`); [`OtlpEndpoint::for_signal`] builds it from a
    /// base URL.
    pub url: String,
    /// The wire protocol.
    pub protocol: OtlpProtocol,
    /// Headers (gRPC metadata) sent with every export, such as `x-honeycomb-team`.
    pub headers: Vec<(String, String)>,
    /// How long one export may take, retries included.
    pub timeout: Duration,
}

impl OtlpEndpoint {
    /// An endpoint at `url`, used as is, with no headers and the default 10 s timeout.
    pub fn new(url: impl Into<String>, protocol: OtlpProtocol) -> Self {
        Self {
            url: url.into(),
            protocol,
            headers: Vec::new(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
        }
    }

    /// An endpoint for `signal` on the collector at `base`: over HTTP the signal's path
    /// (`/v1/traces`, `/v1/logs`) is appended to `base`, over gRPC `base` is used as is.
    /// This is how the specification treats `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn for_signal(base: &str, protocol: OtlpProtocol, signal: Signal) -> Self {
        Self::new(signal_url(base, protocol, signal), protocol)
    }

    /// Adds a header (gRPC metadata) sent with every export.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets how long one export may take, retries included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL, the headers and the timeout; `signal` names the field in errors.
    pub(crate) fn validate(&self, signal: Signal) -> Result<(), TelemetryError> {
        let (url, headers, timeout) = signal.fields();
        check_url(&self.url).map_err(|reason| invalid(url, reason))?;
        check_headers(&self.headers).map_err(|reason| invalid(headers, reason))?;
        if self.timeout.is_zero() {
            return Err(invalid(timeout, "must be greater than zero"));
        }
        Ok(())
    }
}

impl fmt::Debug for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a [(String, String)]);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(name, _)| (name, "[redacted]")))
                    .finish()
            }
        }
        f.debug_struct("OtlpEndpoint")
            .field("url", &shown_url(&self.url))
            .field("protocol", &self.protocol)
            .field("headers", &Redacted(&self.headers))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` for `Debug` output: without the user name, password or query it may carry
/// (`https://user:key@collector/?token=...`).
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(mut parsed) => {
            let hidden = !parsed.username().is_empty()
                || parsed.password().is_some()
                || parsed.query().is_some();
            // Neither fails on an http(s) URL with a host; what does fail is shown redacted.
            let cleared = parsed.set_username("").is_ok() && parsed.set_password(None).is_ok();
            parsed.set_query(None);
            match (cleared, hidden) {
                (true, false) => parsed.to_string(),
                (true, true) => format!("{parsed} [credentials or query redacted]"),
                (false, _) => "[redacted]".to_owned(),
            }
        }
        Err(_) => "[not a URL, redacted]".to_owned(),
    }
}

/// The URL of `signal` on the collector at `base`, as the specification derives it from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub(crate) fn signal_url(base: &str, protocol: OtlpProtocol, signal: Signal) -> String {
    match protocol {
        OtlpProtocol::Grpc => base.to_owned(),
        OtlpProtocol::HttpProtobuf => {
            format!("{}{}", base.trim_end_matches('/'), signal.http_path())
        }
    }
}

/// Checks that `url` is an absolute `http` or `https` URL with a host. Messages do not
/// repeat the URL, which may carry credentials.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|err| format!("is not a URL ({err})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".to_owned());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    Ok(())
}

/// Checks that every header has a valid name and value. Messages name the header, never
/// its value.
pub(crate) fn check_headers(headers: &[(String, String)]) -> Result<(), String> {
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{name:?} is not a valid header name"));
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "the value of header {name:?} has characters a header cannot carry"
            ));
        }
    }
    Ok(())
}

/// How log lines on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise (a file, a pipe, journald).
    #[default]
    Auto,
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's
    /// fields (a field named like one of these keys is written as `fields.<name>`), `span`
    /// (the current span's name) and, when traces are exported and a span is current,
    /// `trace_id` and `span_id` in hex. The ids are printed for unsampled spans too, so
    /// the lines of one request share an id even when its trace was not kept.
    Json,
}

impl LogFormat {
    /// The concrete format for an output that is (or is not) a terminal.
    pub(crate) fn resolve(self, terminal: bool) -> Self {
        match self {
            Self::Auto if terminal => Self::Pretty,
            Self::Auto => Self::Json,
            other => other,
        }
    }
}

/// A log format name that is neither `auto`, `pretty` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}, expected auto, pretty or json")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// Whether a span with a parent follows the parent's sampling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParentSampling {
    /// A span with a parent (local or remote) is sampled exactly when its parent was; only
    /// root spans are sampled by trace id (`parentbased_*` samplers). The default.
    #[default]
    Follow,
    /// Every span is sampled by its trace id alone, whatever its parent decided
    /// (`always_on`, `always_off`, `traceidratio`).
    Ignore,
}

/// Configuration of the tracing and log pipeline.
///
/// Build one with [`TelemetryConfig::default`], set fields from the config file, then
/// let [`TelemetryConfig::apply_env`] apply the standard `OTEL_*` environment variables
/// on top. [`build`](super::build) and [`init`](super::init) validate it.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `service.name` on every span and log record. Default `guildscope`.
    pub service_name: String,
    /// `service.version`, such as `0.1.0+abc1234`. Default: this crate's version.
    pub service_version: String,
    /// `deployment.environment.name` (`production`, `staging`), when set.
    pub environment: Option<String>,
    /// `EnvFilter` directives for what is logged and traced: `info`, or
    /// `info,guildscope_discord=debug`. The exporter's own crates (opentelemetry, tonic,
    /// h2, hyper, reqwest) are held at `warn` unless a directive names them.
    pub log_filter: String,
    /// How log lines on stderr look.
    pub log_format: LogFormat,
    /// Where spans go. `None`: no span export and no OpenTelemetry layer at all, so spans
    /// cost what plain `tracing` spans cost.
    pub traces: Option<OtlpEndpoint>,
    /// Where log records go over OTLP. `None`: logs stay on stderr only.
    pub logs: Option<OtlpEndpoint>,
    /// Where the metrics registry is sent over OTLP, every `metrics_interval`, once
    /// [`TelemetryGuard::export_metrics`](super::TelemetryGuard::export_metrics) hands
    /// it over. `None`: metrics are served to Prometheus (and StatsD) only.
    pub metrics: Option<OtlpEndpoint>,
    /// How often metrics are exported over OTLP (`OTEL_METRIC_EXPORT_INTERVAL`).
    pub metrics_interval: Duration,
    /// Fraction of traces sampled, from 0.0 (none) to 1.0 (all), decided by trace id.
    pub sample_ratio: f64,
    /// Whether spans with a parent follow the parent's decision instead of the ratio.
    pub parent_sampling: ParentSampling,
    /// Spans (and log records) waiting for export, at most. When the queue is full, new
    /// ones are dropped and counted; the code that produced them never waits.
    pub max_queue_size: usize,
    /// Spans (log records) per export request, at most; no larger than `max_queue_size`.
    pub max_export_batch_size: usize,
    /// How long a partly filled batch waits before it is exported.
    pub scheduled_delay: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service_name: "guildscope".to_owned(),
            service_version: env!("CARGO_PKG_VERSION").to_owned(),
            environment: None,
            log_filter: "info".to_owned(),
            log_format: LogFormat::Auto,
            traces: None,
            logs: None,
            metrics: None,
            metrics_interval: DEFAULT_METRICS_INTERVAL,
            sample_ratio: 1.0,
            parent_sampling: ParentSampling::Follow,
            max_queue_size: 8192,
            max_export_batch_size: 2048,
            scheduled_delay: Duration::from_secs(1),
        }
    }
}

impl TelemetryConfig {
    /// Checks every field, returning the first one the pipeline cannot run with.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        if self.service_name.trim().is_empty() {
            return Err(invalid("service_name", "must not be empty"));
        }
        if self
            .environment
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            return Err(invalid("environment", "must not be empty when set"));
        }
        if self.log_filter.trim().is_empty() {
            return Err(invalid(
                "log_filter",
                "must not be empty (use \"off\" to log nothing)",
            ));
        }
        if !(self.sample_ratio.is_finite() && (0.0..=1.0).contains(&self.sample_ratio)) {
            return Err(invalid(
                "sample_ratio",
                format!("must be between 0.0 and 1.0, got {}", self.sample_ratio),
            ));
        }
        if self.max_queue_size == 0 {
            return Err(invalid("max_queue_size", "must be at least 1"));
        }
        if self.max_export_batch_size == 0 || self.max_export_batch_size > self.max_queue_size {
            return Err(invalid(
                "max_export_batch_size",
                format!(
                    "must be between 1 and max_queue_size ({})",
                    self.max_queue_size
                ),
            ));
        }
        if self.scheduled_delay.is_zero() {
            return Err(invalid("scheduled_delay", "must be greater than zero"));
        }
        if let Some(traces) = &self.traces {
            traces.validate(Signal::Traces)?;
        }
        if let Some(logs) = &self.logs {
            logs.validate(Signal::Logs)?;
        }
        if let Some(metrics) = &self.metrics {
            metrics.validate(Signal::Metrics)?;
        }
        if self.metrics_interval.is_zero() {
            return Err(invalid("metrics_interval", "must be greater than zero"));
        }
        Ok(())
    }
}

/// Why the pipeline could not be configured, built or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An `OTEL_*` environment variable has a value that cannot be used.
    #[error("invalid environment variable {var}: {reason}")]
    Env {
        /// The variable's name.
        var: &'static str,
        /// What is wrong and what is expected; never the value of a header.
        reason: String,
    },
    /// A [`TelemetryConfig`] field has a value the pipeline cannot run with.
    #[error("invalid telemetry config: `{field}` {reason}")]
    InvalidConfig {
        /// The field, such as `sample_ratio` or `traces.url`.
        field: &'static str,
        /// What is expected instead.
        reason: String,
    },
    /// The log filter does not parse as `EnvFilter` directives.
    #[error("invalid log filter {filter:?}")]
    LogFilter {
        /// The filter as configured.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A gRPC exporter was requested outside a tokio runtime, which its channel needs.
    #[error("the OTLP {signal} exporter over gRPC must be built inside a tokio runtime")]
    NoRuntime {
        /// `traces` or `logs`.
        signal: &'static str,
    },
    /// The OTLP exporter refused its configuration.
    #[error("failed to build the OTLP {signal} exporter")]
    Exporter {
        /// `traces` or `logs`.
        signal: &'static str,
        /// The exporter's complaint.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// An OTLP exporter of spans or metrics could not be built (its TLS settings, HTTP
    /// client or thread).
    #[error("failed to build the OTLP {signal} exporter")]
    Client {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another global `tracing` subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled {
        /// `tracing`'s complaint.
        #[source]
        source: tracing::dispatcher::SetGlobalDefaultError,
    },
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> TelemetryError {
    TelemetryError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
