//! Metrics: one registry per process ([`Metrics`]) that the hot path updates with atomics,
//! rendered for Prometheus, exported over OTLP when configured, and, when given a
//! [`Statsd`](crate::Statsd) handle, fanned out to StatsD under the reference community
//! bot's names.
//!
//! Prometheus names follow DESIGN.md's telemetry conventions
//! (`guildscope_commands_total{command,outcome}`, ...). Labels are bounded: each label
//! keeps at most a fixed number of distinct values ([`LabelLimits`]) and folds the rest
//! into `"other"`, counting it in `guildscope_metrics_labels_folded_total{label}`.
//!
//! # Layout
//!
//! - `registry.rs`: [`Metrics`] and its update methods, [`Outcome`], [`BuildInfo`],
//!   [`GuildGauges`], [`LabelLimits`].
//! - `cells.rs`: the capped, read-mostly label map and the atomic histogram.
//! - `render.rs`: every family in a fixed order, through an `Exposition`; the Prometheus
//!   text exposition format 0.0.4; the `process_*` families read from `/proc` on Linux.
//! - `otlp.rs`: the same families as OTLP metrics, for the OTLP metrics exporter.
//! - `config.rs`: [`PrometheusConfig`] and [`MetricsError`].
//! - `server.rs`: [`PrometheusServer`], serving `/metrics`, `/healthz` and `/readyz`.
//! - `tests.rs`: exact rendered text after known updates, and the StatsD fan-out over a
//!   real UDP socket.

mod cells;
mod config;
mod otlp;
mod registry;
mod render;
mod server;

#[cfg(test)]
mod tests;

pub use config::{MetricsError, PrometheusConfig};
pub use registry::{BuildInfo, GuildGauges, LabelLimits, Metrics, Outcome};
pub use server::{CONTENT_TYPE, PrometheusServer};
