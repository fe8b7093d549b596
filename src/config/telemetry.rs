//! The telemetry sections of the config file: `[service]`, `[traces]`,
//! `[metrics]`, `[statsd]`, `[sentry]` and `[markers.*]`, and the secrets they
//! point at. Every exporter is off until configured, except the Prometheus
//! endpoint, which listens on loopback.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use guildscope_model::Secret;
use guildscope_telemetry::StatsdConfig;
use serde::Deserialize;

use super::{ConfigError, check_url};

/// `[service]`: who is reporting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    name: Option<String>,
    environment: Option<String>,
}

/// `[traces]`: span export over OTLP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraces {
    endpoint: Option<String>,
    protocol: Option<String>,
    headers_file: Option<PathBuf>,
    sample_ratio: Option<f64>,
    queue_size: Option<usize>,
    export_logs: Option<bool>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    enabled: Option<bool>,
    listen: Option<String>,
    bearer_token_file: Option<PathBuf>,
}

/// `[sentry]`: error reports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSentry {
    dsn_file: Option<PathBuf>,
    sample_rate: Option<f32>,
}

/// `[markers]`: where `guildscope marker` posts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMarkers {
    grafana: Option<RawGrafana>,
    honeycomb: Option<RawHoneycomb>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrafana {
    url: String,
    token_file: Option<PathBuf>,
    dashboard_uid: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoneycomb {
    api_url: Option<String>,
    dataset: String,
    key_file: Option<PathBuf>,
}

/// The telemetry sections as written.
#[derive(Debug, Default)]
pub(super) struct RawTelemetry {
    pub(super) service: RawService,
    pub(super) traces: RawTraces,
    pub(super) metrics: RawMetrics,
    pub(super) statsd: Option<StatsdConfig>,
    pub(super) sentry: RawSentry,
    pub(super) markers: RawMarkers,
}

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
}

/// Span export as configured in the file; `OTEL_EXPORTER_OTLP_*` variables
/// are applied over it when telemetry starts.
#[derive(Clone)]
pub struct TracesSettings {
    /// The collector's URL, if the file names one.
    pub endpoint: Option<String>,
    /// gRPC or HTTP.
    pub protocol: OtlpProtocol,
    /// Headers sent with every export (API keys live here).
    pub headers: Vec<(String, Secret)>,
    /// Fraction of traces kept, 0 to 1.
    pub sample_ratio: f64,
    /// Spans waiting for export, at most; more are dropped and counted.
    pub queue_size: usize,
    /// Also export logs over OTLP.
    pub export_logs: bool,
}

impl fmt::Debug for TracesSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("TracesSettings")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &header_names)
            .field("sample_ratio", &self.sample_ratio)
            .field("queue_size", &self.queue_size)
            .field("export_logs", &self.export_logs)
            .finish()
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Where it listens; `None` turns it off.
    pub listen: Option<SocketAddr>,
    /// A bearer token scrapers must present.
    pub bearer_token: Option<Secret>,
}

/// Error reports.
#[derive(Debug, Clone)]
pub struct SentrySettings {
    /// The project's DSN (it holds a key).
    pub dsn: Secret,
    /// Fraction of errors reported, 0 to 1.
    pub sample_rate: f32,
}

/// A Grafana instance that takes annotations.
#[derive(Debug, Clone)]
pub struct GrafanaSettings {
    /// Grafana's base URL.
    pub url: String,
    /// A service account token.
    pub token: Option<Secret>,
    /// Annotate one dashboard only.
    pub dashboard_uid: Option<String>,
    /// Tags on every annotation.
    pub tags: Vec<String>,
}

/// A Honeycomb environment that takes markers.
#[derive(Debug, Clone)]
pub struct HoneycombSettings {
    /// Honeycomb's API base URL.
    pub api_url: String,
    /// The dataset, or `__all__` for the whole environment.
    pub dataset: String,
    /// A configuration API key.
    pub key: Secret,
}

/// Every telemetry setting, validated.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `service.name` in traces.
    pub service_name: String,
    /// `deployment.environment.name` in traces, Sentry's environment.
    pub environment: Option<String>,
    /// Span export.
    pub traces: TracesSettings,
    /// The Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// StatsD, when configured.
    pub statsd: Option<StatsdConfig>,
    /// Sentry, when a DSN is configured.
    pub sentry: Option<SentrySettings>,
    /// Grafana annotations, when configured.
    pub grafana: Option<GrafanaSettings>,
    /// Honeycomb markers, when configured.
    pub honeycomb: Option<HoneycombSettings>,
}

/// Reads an environment variable; a function so tests can supply their own.
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Validates the telemetry sections.
pub(super) fn validate(raw: RawTelemetry, env: Env<'_>) -> Result<TelemetrySettings, ConfigError> {
    let service_name = raw.service.name.unwrap_or_else(|| "guildscope".into());
    if service_name.trim().is_empty() {
        return Err(ConfigError::key(
            "service.name",
            "expected a name, got an empty string",
        ));
    }
    let environment = raw.service.environment.filter(|e| !e.trim().is_empty());

    if let Some(url) = &raw.traces.endpoint {
        check_url("traces.endpoint", url, &["http://", "https://"])?;
    }
    let protocol = match raw.traces.protocol.as_deref().unwrap_or("grpc") {
        "grpc" => OtlpProtocol::Grpc,
        "http/protobuf" | "http" => OtlpProtocol::HttpProtobuf,
        other => {
            return Err(ConfigError::key(
                "traces.protocol",
                format!("expected \"grpc\" or \"http/protobuf\", got {other:?}"),
            ));
        }
    };
    let headers = match &raw.traces.headers_file {
        Some(path) => read_headers("traces.headers_file", path)?,
        None => Vec::new(),
    };
    let sample_ratio = raw.traces.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(ConfigError::key(
            "traces.sample_ratio",
            format!("expected a number from 0 to 1, got {sample_ratio}"),
        ));
    }
    let queue_size = raw.traces.queue_size.unwrap_or(8_192);
    if queue_size == 0 {
        return Err(ConfigError::key(
            "traces.queue_size",
            "expected a positive number, got 0",
        ));
    }

    // `GUILDSCOPE_METRICS_LISTEN` wins over the file; "off" turns the
    // endpoint off.
    let listen_text = env("GUILDSCOPE_METRICS_LISTEN").or(raw.metrics.listen);
    let listen = match listen_text.as_deref() {
        Some("off") => None,
        _ if !raw.metrics.enabled.unwrap_or(true) => None,
        text => {
            let text = text.unwrap_or("127.0.0.1:9464");
            Some(text.parse().map_err(|_| {
                ConfigError::key(
                    "metrics.listen",
                    format!("expected an address like 127.0.0.1:9464 or \"off\", got {text:?}"),
                )
            })?)
        }
    };
    let bearer_token = secret(
        "metrics.bearer_token_file",
        env("GUILDSCOPE_METRICS_TOKEN"),
        raw.metrics.bearer_token_file.as_deref(),
    )?;

    if let Some(statsd) = &raw.statsd {
        statsd
            .validate()
            .map_err(|e| ConfigError::key("statsd", e))?;
    }

    let dsn = secret(
        "sentry.dsn_file",
        env("SENTRY_DSN").or_else(|| env("GUILDSCOPE_SENTRY_DSN")),
        raw.sentry.dsn_file.as_deref(),
    )?;
    let sample_rate = raw.sentry.sample_rate.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_rate) {
        return Err(ConfigError::key(
            "sentry.sample_rate",
            format!("expected a number from 0 to 1, got {sample_rate}"),
        ));
    }
    let sentry = dsn.map(|dsn| SentrySettings { dsn, sample_rate });

    let grafana = match raw.markers.grafana {
        Some(g) => {
            check_url("markers.grafana.url", &g.url, &["http://", "https://"])?;
            Some(GrafanaSettings {
                token: secret(
                    "markers.grafana.token_file",
                    env("GUILDSCOPE_GRAFANA_TOKEN"),
                    g.token_file.as_deref(),
                )?,
                url: g.url,
                dashboard_uid: g.dashboard_uid,
                tags: g.tags,
            })
        }
        None => None,
    };
    let honeycomb = match raw.markers.honeycomb {
        Some(h) => {
            let api_url = h
                .api_url
                .unwrap_or_else(|| "https://api.honeycomb.io".into());
            check_url(
                "markers.honeycomb.api_url",
                &api_url,
                &["http://", "https://"],
            )?;
            if h.dataset.trim().is_empty() {
                return Err(ConfigError::key(
                    "markers.honeycomb.dataset",
                    "expected a dataset slug or \"__all__\", got an empty string",
                ));
            }
            let key = secret(
                "markers.honeycomb.key_file",
                env("GUILDSCOPE_HONEYCOMB_KEY").or_else(|| env("HONEYCOMB_API_KEY")),
                h.key_file.as_deref(),
            )?
            .ok_or_else(|| {
                ConfigError::key(
                    "markers.honeycomb.key_file",
                    "no API key: set GUILDSCOPE_HONEYCOMB_KEY or point markers.honeycomb.key_file at a file holding it",
                )
            })?;
            Some(HoneycombSettings {
                api_url,
                dataset: h.dataset,
                key,
            })
        }
        None => None,
    };

    Ok(TelemetrySettings {
        service_name,
        environment,
        traces: TracesSettings {
            endpoint: raw.traces.endpoint,
            protocol,
            headers,
            sample_ratio,
            queue_size,
            export_logs: raw.traces.export_logs.unwrap_or(false),
        },
        metrics: MetricsSettings {
            listen,
            bearer_token,
        },
        statsd: raw.statsd,
        sentry,
        grafana,
        honeycomb,
    })
}

/// A secret from the environment, else from a file named in the config.
fn secret(
    key: &str,
    env: Option<String>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(value) = env.filter(|v| !v.trim().is_empty()) {
        return Ok(Some(Secret::new(value.trim())));
    }
    let Some(file) = file else { return Ok(None) };
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", file.display())))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(ConfigError::key(
            key,
            format!("{} is empty", file.display()),
        ));
    }
    Ok(Some(Secret::new(value)))
}

/// Export headers from a file of `name=value` lines (`#` starts a comment),
/// the shape of `OTEL_EXPORTER_OTLP_HEADERS` one per line.
fn read_headers(key: &str, path: &Path) -> Result<Vec<(String, Secret)>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))?;
    let mut headers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(ConfigError::key(
                key,
                format!("{}:{}: expected name=value", path.display(), n + 1),
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::key(
                key,
                format!(
                    "{}:{}: {name:?} is not a header name",
                    path.display(),
                    n + 1
                ),
            ));
        }
        headers.push((name.to_ascii_lowercase(), Secret::new(value.trim())));
    }
    Ok(headers)
}
