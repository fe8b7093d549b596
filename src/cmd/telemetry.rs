//! Starting and stopping the process's telemetry: logs and traces, the
//! metrics registry with its Prometheus endpoint, StatsD sink and OTLP
//! export, and Sentry.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use guildscope_discord::GatewayHandle;
use guildscope_telemetry::{
    Statsd,
    metrics::{BuildInfo, Metrics, PrometheusConfig, PrometheusServer},
    otel::{self, OtlpEndpoint, Signal, SpanCounter, TelemetryConfig, TelemetryGuard},
    reports::{ErrorReporter, SentryConfig},
};
use tokio::task::JoinHandle;

use crate::{
    config::{Config, ConfigError, TelemetrySettings},
    logging,
};

/// The version reported everywhere: the crate version and the commit it was
/// built from.
pub fn version() -> String {
    format!("{}+{}", env!("CARGO_PKG_VERSION"), git_sha())
}

/// The commit the binary was built from, or `unknown`.
pub fn git_sha() -> &'static str {
    option_env!("GUILDSCOPE_GIT_SHA").unwrap_or("unknown")
}

/// The logs, traces and OTLP metrics configuration: the file's settings,
/// then the standard `OTEL_*` variables over them.
pub fn otel_config(config: &Config) -> anyhow::Result<TelemetryConfig> {
    let settings = &config.telemetry;
    let protocol = settings.traces.protocol.otel();
    // A configured endpoint is a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is.
    let endpoint = |signal| {
        settings.traces.endpoint.as_ref().map(|base| {
            let mut endpoint = OtlpEndpoint::for_signal(base, protocol, signal);
            endpoint.headers = settings
                .traces
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect();
            endpoint
        })
    };
    // Logs and metrics, when asked for, go to the collector the traces go to,
    // which the file may leave to OTEL_EXPORTER_OTLP_ENDPOINT: until the
    // environment is applied, such an endpoint has no URL yet.
    let wanted = |on: bool, signal| {
        on.then(|| endpoint(signal).unwrap_or_else(|| OtlpEndpoint::new(String::new(), protocol)))
    };
    let mut otel = TelemetryConfig {
        service_name: settings.service_name.clone(),
        service_version: version(),
        environment: settings.environment.clone(),
        log_filter: logging::filter(&config.log_level),
        log_format: logging::format(config.log_format),
        traces: endpoint(Signal::Traces),
        logs: wanted(settings.traces.export_logs, Signal::Logs),
        metrics: wanted(settings.traces.export_metrics, Signal::Metrics),
        metrics_interval: settings.traces.metrics_interval,
        sample_ratio: settings.traces.sample_ratio,
        max_queue_size: settings.traces.queue_size,
        max_export_batch_size: settings.traces.batch_size,
        scheduled_delay: settings.traces.schedule_delay,
        ..TelemetryConfig::default()
    };
    otel.apply_env(|name| std::env::var(name).ok())
        .context("in the OTEL_* environment")?;
    for (key, endpoint) in [
        ("traces.export_logs", &otel.logs),
        ("traces.export_metrics", &otel.metrics),
    ] {
        if endpoint.as_ref().is_some_and(|e| e.url.is_empty()) {
            return Err(ConfigError::key(
                key,
                "is on, but no collector is set (set traces.endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)",
            )
            .into());
        }
    }
    // What the pipeline would refuse at start, `check-config` reports now.
    otel.validate().context("in the telemetry settings")?;
    Ok(otel)
}

/// Everything that reports on the running bot.
pub struct Telemetry {
    guard: TelemetryGuard,
    /// The metrics registry every part of the bot updates.
    pub metrics: Arc<Metrics>,
    prometheus: Option<PrometheusServer>,
    statsd: Option<(Statsd, JoinHandle<()>)>,
    /// Sentry, when configured.
    pub reporter: Option<ErrorReporter>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("prometheus", &self.prometheus_addr())
            .field("statsd", &self.statsd.is_some())
            .field("sentry", &self.reporter.is_some())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts logs and traces, the metrics registry, the Prometheus endpoint,
    /// StatsD, OTLP metrics and Sentry, as configured.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let otel = otel_config(config)?;
        let guard = otel::init(&otel).context("while starting logs and traces")?;
        Self::start_with(guard, &config.telemetry).await
    }

    /// Starts the rest of telemetry around logs and traces already running.
    pub async fn start_with(
        mut guard: TelemetryGuard,
        settings: &TelemetrySettings,
    ) -> anyhow::Result<Self> {
        let statsd = match &settings.statsd {
            Some(statsd) => Some(
                Statsd::start(statsd.clone())
                    .await
                    .context("while starting the StatsD sink")?,
            ),
            None => None,
        };
        let metrics = Arc::new(Metrics::new(
            BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_sha: git_sha().to_owned(),
            },
            statsd.as_ref().map(|(s, _)| s.clone()),
        ));
        let span_counts = guard.span_counter();
        metrics.on_scrape(Box::new(move |metrics| {
            let counts = span_counts.counts();
            // Spans lost for good; those still queued are not, and a counter
            // must never go down.
            metrics.set_telemetry_dropped("spans", counts.lost());
        }));
        guard
            .export_metrics(&metrics)
            .context("while starting the OTLP metrics export")?;
        let prometheus = match settings.metrics.listen {
            Some(listen) => Some(
                PrometheusServer::start(
                    PrometheusConfig {
                        listen,
                        bearer_token: settings
                            .metrics
                            .bearer_token
                            .as_ref()
                            .map(|t| t.expose().to_owned()),
                    },
                    Arc::clone(&metrics),
                )
                .await
                .with_context(|| format!("while starting the metrics endpoint on {listen}"))?,
            ),
            None => None,
        };
        let reporter = match &settings.sentry {
            Some(sentry) => Some(
                ErrorReporter::start(SentryConfig {
                    dsn: sentry.dsn.expose().to_owned(),
                    environment: settings.environment.clone(),
                    release: format!("guildscope@{}", version()),
                    sample_rate: sentry.sample_rate,
                    queue: 100,
                })
                .context("while starting error reports")?,
            ),
            None => None,
        };
        Ok(Self {
            guard,
            metrics,
            prometheus,
            statsd,
            reporter,
        })
    }

    /// Reads how many spans ended and were exported.
    pub fn span_counter(&self) -> SpanCounter {
        self.guard.span_counter()
    }

    /// Where the Prometheus endpoint listens, if it is on.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus.as_ref().map(PrometheusServer::local_addr)
    }

    /// Keeps the shard gauges current: they are read from the gateway at
    /// every scrape, and `/readyz` answers ready from now on.
    pub fn watch_gateway(&self, gateway: GatewayHandle) {
        self.metrics.on_scrape(Box::new(move |metrics| {
            for state in gateway.shard_states() {
                metrics.shard_connected(state.shard, state.connected);
                metrics.gateway_latency(state.shard, state.latency);
            }
        }));
        if let Some(prometheus) = &self.prometheus {
            prometheus.set_ready(true);
        }
    }

    /// Flushes error reports, the final OTLP metrics, StatsD and spans, and
    /// stops the endpoint.
    pub async fn shutdown(self) {
        let Self {
            mut guard,
            metrics,
            prometheus,
            statsd,
            reporter,
        } = self;
        if let Some(reporter) = reporter {
            reporter.flush(Duration::from_secs(5)).await;
        }
        if let Some(prometheus) = prometheus {
            prometheus.shutdown().await;
        }
        // The OTLP metrics exporter reads the registry a last time while it
        // is still here. The registry holds a StatsD handle; the sink drains
        // once every handle is gone.
        guard.stop_metrics_export().await;
        drop(metrics);
        if let Some((handle, task)) = statsd {
            drop(handle);
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        guard.shutdown().await;
    }
}
