//! Log output for the commands that export nothing: pretty text on a
//! terminal, one JSON object per line otherwise, through the same pipeline
//! as `run` (which adds span export; see `cmd::telemetry`).

use guildscope_telemetry::otel::{self, LogFormat as OtelLogFormat, TelemetryConfig};

use crate::config::LogFormat;

/// The log filter: `GUILDSCOPE_LOG`, else `RUST_LOG`, else `configured`.
pub fn filter(configured: &str) -> String {
    std::env::var("GUILDSCOPE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| configured.to_owned())
}

/// The pipeline's name for a log format.
pub fn format(format: LogFormat) -> OtelLogFormat {
    match format {
        LogFormat::Auto => OtelLogFormat::Auto,
        LogFormat::Pretty => OtelLogFormat::Pretty,
        LogFormat::Json => OtelLogFormat::Json,
    }
}

/// Installs the global subscriber for logs only. A bad filter falls back to
/// `info` with a warning rather than losing the logs.
pub fn init(level: &str, log_format: LogFormat) {
    let mut config = TelemetryConfig {
        log_filter: filter(level),
        log_format: format(log_format),
        ..TelemetryConfig::default()
    };
    let fallback = match otel::init(&config) {
        Ok(_logs_only) => return,
        Err(error) => error,
    };
    config.log_filter = "info".into();
    if otel::init(&config).is_ok() {
        tracing::warn!(error = %fallback, "the log filter was refused; logging at info");
    }
}
