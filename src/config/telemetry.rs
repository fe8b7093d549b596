//! The telemetry sections of the config file: `[service]`, `[traces]`,
//! `[metrics]`, `[statsd]`, `[sentry]` and `[markers.*]`, and the secrets they
//! point at. Every exporter is off until configured, except the Prometheus
//! endpoint, which listens on loopback.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use guildscope_discord::DiscordConfig;
use guildscope_model::Secret;
use guildscope_telemetry::StatsdConfig;
use serde::Deserialize;

use super::{ConfigError, check_url, positive};

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
    batch_size: Option<usize>,
    schedule_delay_ms: Option<u64>,
    export_logs: Option<bool>,
    export_metrics: Option<bool>,
    metrics_interval_ms: Option<u64>,
    events_per_second: Option<u32>,
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

impl OtlpProtocol {
    /// The same protocol as the telemetry crate names it.
    pub fn otel(self) -> guildscope_telemetry::otel::OtlpProtocol {
        match self {
            Self::Grpc => guildscope_telemetry::otel::OtlpProtocol::Grpc,
            Self::HttpProtobuf => guildscope_telemetry::otel::OtlpProtocol::HttpProtobuf,
        }
    }
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
    /// Spans per export request, at most (never more than `queue_size`).
    pub batch_size: usize,
    /// Longest a partly filled batch of spans waits before it is exported.
    pub schedule_delay: std::time::Duration,
    /// Also export logs over OTLP.
    pub export_logs: bool,
    /// Also export the metrics registry over OTLP.
    pub export_metrics: bool,
    /// How often metrics are exported over OTLP.
    pub metrics_interval: std::time::Duration,
    /// Gateway events per second that get a root span (commands always do).
    pub events_per_second: u32,
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
            .field("batch_size", &self.batch_size)
            .field("schedule_delay", &self.schedule_delay)
            .field("export_logs", &self.export_logs)
            .field("export_metrics", &self.export_metrics)
            .field("metrics_interval", &self.metrics_interval)
            .field("events_per_second", &self.events_per_second)
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
    // Unset keys take the telemetry pipeline's own defaults, which it also
    // uses when started without a configuration file.
    let defaults = guildscope_telemetry::otel::TelemetryConfig::default();
    let millis =
        |duration: std::time::Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let queue_size = positive(
        "traces.queue_size",
        raw.traces.queue_size,
        defaults.max_queue_size,
        "",
    )?;
    let batch_size = positive(
        "traces.batch_size",
        raw.traces.batch_size,
        defaults.max_export_batch_size,
        "",
    )?;
    let schedule_delay_ms = positive(
        "traces.schedule_delay_ms",
        raw.traces.schedule_delay_ms,
        millis(defaults.scheduled_delay),
        " of milliseconds",
    )?;
    let metrics_interval_ms = positive(
        "traces.metrics_interval_ms",
        raw.traces.metrics_interval_ms,
        millis(defaults.metrics_interval),
        " of milliseconds",
    )?;

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
            batch_size,
            schedule_delay: std::time::Duration::from_millis(schedule_delay_ms),
            export_logs: raw.traces.export_logs.unwrap_or(false),
            export_metrics: raw.traces.export_metrics.unwrap_or(false),
            metrics_interval: std::time::Duration::from_millis(metrics_interval_ms),
            events_per_second: raw
                .traces
                .events_per_second
                .unwrap_or(DiscordConfig::DEFAULT_TRACED_EVENTS_PER_SECOND),
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

/// A secret from the environment, else from a file named in the config
/// (trimmed; an empty file is an error naming `key`).
pub(super) fn secret(
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

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, path::Path};

    use super::*;
    use crate::config::parse;

    /// Validates the telemetry sections of `toml` with `vars` as the whole
    /// environment.
    fn settings(toml: &str, vars: &[(&str, &str)]) -> Result<TelemetrySettings, ConfigError> {
        let raw = parse(toml, Path::new("g.toml")).unwrap();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned();
        validate(
            RawTelemetry {
                service: raw.service,
                traces: raw.traces,
                metrics: raw.metrics,
                statsd: raw.statsd,
                sentry: raw.sentry,
                markers: raw.markers,
            },
            &env,
        )
    }

    fn error(toml: &str, vars: &[(&str, &str)]) -> String {
        settings(toml, vars).unwrap_err().to_string()
    }

    /// A TOML string literal holding `path`.
    fn quoted(path: &Path) -> String {
        format!("{:?}", path.display().to_string())
    }

    #[test]
    fn with_nothing_configured_only_prometheus_is_on_and_on_loopback() {
        let s = settings("", &[]).unwrap();
        assert_eq!(s.service_name, "guildscope");
        assert_eq!(s.environment, None);
        assert_eq!(s.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(s.metrics.bearer_token.is_none());
        assert_eq!(s.traces.endpoint, None);
        assert_eq!(s.traces.protocol, OtlpProtocol::Grpc);
        assert!(s.traces.headers.is_empty());
        assert_eq!(s.traces.sample_ratio, 1.0);
        assert!(!s.traces.export_logs);
        assert!(!s.traces.export_metrics);
        assert_eq!(s.traces.metrics_interval.as_secs(), 60);
        assert!(s.statsd.is_none());
        assert!(s.sentry.is_none());
        assert!(s.grafana.is_none());
        assert!(s.honeycomb.is_none());
    }

    #[test]
    fn the_metrics_listen_variable_wins_over_the_file_and_off_turns_it_off() {
        let file = "[metrics]\nlisten = \"0.0.0.0:9100\"\n";
        let s = settings(file, &[]).unwrap();
        assert_eq!(s.metrics.listen, Some("0.0.0.0:9100".parse().unwrap()));
        let s = settings(file, &[("GUILDSCOPE_METRICS_LISTEN", "127.0.0.1:9200")]).unwrap();
        assert_eq!(s.metrics.listen, Some("127.0.0.1:9200".parse().unwrap()));
        let s = settings(file, &[("GUILDSCOPE_METRICS_LISTEN", "off")]).unwrap();
        assert_eq!(s.metrics.listen, None);
        let s = settings("[metrics]\nenabled = false\n", &[]).unwrap();
        assert_eq!(s.metrics.listen, None);
    }

    #[test]
    fn a_bad_listen_address_names_the_key_and_the_value() {
        let err = error("[metrics]\nlisten = \"localhost:metrics\"\n", &[]);
        assert_eq!(
            err,
            "config key `metrics.listen`: expected an address like 127.0.0.1:9464 or \"off\", got \"localhost:metrics\""
        );
        let err = error("", &[("GUILDSCOPE_METRICS_LISTEN", "9464")]);
        assert!(err.starts_with("config key `metrics.listen`"), "{err}");
    }

    #[test]
    fn span_batches_are_set_in_the_file_and_zero_is_refused() {
        let s = settings("", &[]).unwrap();
        assert_eq!(
            (
                s.traces.queue_size,
                s.traces.batch_size,
                s.traces.schedule_delay.as_millis()
            ),
            (8_192, 2_048, 1_000)
        );
        let s = settings(
            "[traces]\nqueue_size = 4096\nbatch_size = 256\nschedule_delay_ms = 250\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            (
                s.traces.queue_size,
                s.traces.batch_size,
                s.traces.schedule_delay.as_millis()
            ),
            (4_096, 256, 250)
        );
        for (key, expected) in [
            ("queue_size", "expected a positive number, got 0"),
            ("batch_size", "expected a positive number, got 0"),
            (
                "schedule_delay_ms",
                "expected a positive number of milliseconds, got 0",
            ),
        ] {
            let err = error(&format!("[traces]\n{key} = 0\n"), &[]);
            assert_eq!(err, format!("config key `traces.{key}`: {expected}"));
        }
    }

    #[test]
    fn a_sample_ratio_outside_zero_to_one_is_refused() {
        for ratio in ["1.5", "-0.1"] {
            let err = error(&format!("[traces]\nsample_ratio = {ratio}\n"), &[]);
            assert!(
                err.starts_with("config key `traces.sample_ratio`: expected a number from 0 to 1"),
                "{err}"
            );
        }
        let s = settings("[traces]\nsample_ratio = 0.25\n", &[]).unwrap();
        assert_eq!(s.traces.sample_ratio, 0.25);
        let err = error("[sentry]\nsample_rate = 2.0\n", &[]);
        assert!(err.starts_with("config key `sentry.sample_rate`"), "{err}");
    }

    #[test]
    fn an_unknown_protocol_is_refused_and_http_is_protobuf() {
        let err = error("[traces]\nprotocol = \"http/json\"\n", &[]);
        assert_eq!(
            err,
            "config key `traces.protocol`: expected \"grpc\" or \"http/protobuf\", got \"http/json\""
        );
        for name in ["http", "http/protobuf"] {
            let s = settings(&format!("[traces]\nprotocol = \"{name}\"\n"), &[]).unwrap();
            assert_eq!(s.traces.protocol, OtlpProtocol::HttpProtobuf);
        }
        let err = error("[traces]\nendpoint = \"otel:4317\"\n", &[]);
        assert!(err.starts_with("config key `traces.endpoint`"), "{err}");
    }

    #[test]
    fn a_headers_file_skips_comments_and_its_values_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("otlp-headers");
        std::fs::write(
            &file,
            "# vendor keys\n\nX-Api-Key = header-secret-1\n  # indented comment\nauthorization=Basic aGVhZGVyLXNlY3JldC0y\n",
        )
        .unwrap();
        let s = settings(
            &format!(
                "[traces]\nendpoint = \"http://otel:4317\"\nheaders_file = {}\n",
                quoted(&file)
            ),
            &[],
        )
        .unwrap();
        let headers: Vec<(&str, &str)> = s
            .traces
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(
            headers,
            [
                ("x-api-key", "header-secret-1"),
                ("authorization", "Basic aGVhZGVyLXNlY3JldC0y"),
            ]
        );
        let debug = format!("{s:?}");
        assert!(debug.contains("x-api-key"), "{debug}");
        assert!(!debug.contains("header-secret-1"), "{debug}");
        assert!(!debug.contains("aGVhZGVyLXNlY3JldC0y"), "{debug}");
    }

    #[test]
    fn a_bad_line_in_the_headers_file_is_named_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("otlp-headers");
        let toml = format!("[traces]\nheaders_file = {}\n", quoted(&file));

        std::fs::write(&file, "# keys\nx-api-key=ok\nheader-secret-3\n").unwrap();
        let err = error(&toml, &[]);
        assert_eq!(
            err,
            format!(
                "config key `traces.headers_file`: {}:3: expected name=value",
                file.display()
            )
        );

        std::fs::write(&file, "x api key=header-secret-4\n").unwrap();
        let err = error(&toml, &[]);
        assert!(
            err.starts_with(&format!(
                "config key `traces.headers_file`: {}:1:",
                file.display()
            )),
            "{err}"
        );
        assert!(err.contains("is not a header name"), "{err}");
        assert!(!err.contains("header-secret-4"), "{err}");

        std::fs::remove_file(&file).unwrap();
        let err = error(&toml, &[]);
        assert!(
            err.starts_with(&format!(
                "config key `traces.headers_file`: cannot read {}",
                file.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_honeycomb_section_without_a_key_names_both_places_to_put_it() {
        let toml = "[markers.honeycomb]\ndataset = \"guildscope\"\n";
        let err = error(toml, &[]);
        assert!(
            err.starts_with("config key `markers.honeycomb.key_file`"),
            "{err}"
        );
        assert!(err.contains("GUILDSCOPE_HONEYCOMB_KEY"), "{err}");
        assert!(err.contains("markers.honeycomb.key_file"), "{err}");

        // Honeycomb's own variable works too; the default API is the US one.
        let s = settings(toml, &[("HONEYCOMB_API_KEY", "hc-secret-1")]).unwrap();
        let honeycomb = s.honeycomb.as_ref().unwrap();
        assert_eq!(honeycomb.key.expose(), "hc-secret-1");
        assert_eq!(honeycomb.api_url, "https://api.honeycomb.io");
        assert_eq!(honeycomb.dataset, "guildscope");
        let s = settings(
            toml,
            &[
                ("GUILDSCOPE_HONEYCOMB_KEY", "hc-secret-2"),
                ("HONEYCOMB_API_KEY", "hc-secret-1"),
            ],
        )
        .unwrap();
        assert_eq!(s.honeycomb.unwrap().key.expose(), "hc-secret-2");

        let err = error("[markers.honeycomb]\ndataset = \" \"\n", &[]);
        assert!(
            err.starts_with("config key `markers.honeycomb.dataset`"),
            "{err}"
        );
    }

    #[test]
    fn secrets_read_from_files_are_trimmed_and_never_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            quoted(&path)
        };
        let toml = format!(
            "[metrics]\nbearer_token_file = {}\n\n[sentry]\ndsn_file = {}\n\n\
             [markers.grafana]\nurl = \"http://grafana:3000\"\ntoken_file = {}\ntags = [\"prod\"]\n\n\
             [markers.honeycomb]\ndataset = \"__all__\"\nkey_file = {}\n",
            write("metrics-token", "  scrape-secret-1\n"),
            write("dsn", "https://dsnkey-secret-2@o1.ingest.sentry.io/42\n\n"),
            write("grafana-token", "\tglsa_secret-3 \n"),
            write("honeycomb-key", "hc-secret-4\r\n"),
        );
        let s = settings(&toml, &[]).unwrap();
        assert_eq!(
            s.metrics.bearer_token.as_ref().unwrap().expose(),
            "scrape-secret-1"
        );
        let sentry = s.sentry.as_ref().unwrap();
        assert_eq!(
            sentry.dsn.expose(),
            "https://dsnkey-secret-2@o1.ingest.sentry.io/42"
        );
        assert_eq!(sentry.sample_rate, 1.0);
        let grafana = s.grafana.as_ref().unwrap();
        assert_eq!(grafana.token.as_ref().unwrap().expose(), "glsa_secret-3");
        assert_eq!(grafana.tags, ["prod"]);
        assert_eq!(s.honeycomb.as_ref().unwrap().key.expose(), "hc-secret-4");
        let debug = format!("{s:?}");
        for secret in [
            "scrape-secret-1",
            "dsnkey-secret-2",
            "glsa_secret-3",
            "hc-secret-4",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }

        // The environment wins over a file, and is trimmed too.
        let s = settings(
            &toml,
            &[
                ("GUILDSCOPE_GRAFANA_TOKEN", " glsa_env \n"),
                ("GUILDSCOPE_SENTRY_DSN", "https://second@sentry.example/1"),
                ("SENTRY_DSN", "https://first@sentry.example/1"),
            ],
        )
        .unwrap();
        assert_eq!(s.grafana.unwrap().token.unwrap().expose(), "glsa_env");
        assert_eq!(
            s.sentry.unwrap().dsn.expose(),
            "https://first@sentry.example/1"
        );

        // An empty secret file is a mistake, not an absent secret.
        let toml = format!("[metrics]\nbearer_token_file = {}\n", write("empty", " \n"));
        let err = error(&toml, &[]);
        assert!(
            err.starts_with("config key `metrics.bearer_token_file`") && err.ends_with("is empty"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_in_traces_is_refused_with_its_line() {
        let err = parse(
            "[service]\nname = \"bot\"\n\n[traces]\nendpoint = \"http://otel:4317\"\nsample_rate = 0.5\n",
            Path::new("g.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("g.toml:6:"), "{err}");
        assert!(err.contains("sample_rate"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
