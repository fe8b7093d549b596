//! guildscope's telemetry: ways to get traces, logs, metrics, error reports and deploy
//! markers out of the process without ever slowing down the code that produces them.
//!
//! Every exporter sits behind a bounded queue and works on a task or thread of its own:
//! recording a span, a metric or a report is an atomic update or a `try_send`, and what
//! does not fit is dropped and counted. A slow or dead collector costs the hot path
//! nothing. Names follow DESIGN.md's telemetry conventions: Prometheus metrics
//! `guildscope_<name>_<unit>` with bounded labels, StatsD names in the style of the
//! reference community bot (`<prefix>.commands.<name>`, `<prefix>.messages`,
//! `<prefix>.channels.<name>`, `<prefix>.guild.total_members`, `<prefix>.errors.<kind>`).
//!
//! # Layout
//!
//! - [`otel`]: the `tracing` pipeline. Log lines on stderr (pretty, or JSON carrying
//!   `trace_id` and `span_id`), spans exported over OTLP (gRPC or HTTP) through a sampler
//!   and a bounded batch processor, optionally log records over OTLP; configured by
//!   [`otel::TelemetryConfig`] with the standard `OTEL_*` environment variables applied
//!   over it. [`otel::init`] installs it; [`otel::TelemetryGuard`] flushes it and counts
//!   what was dropped.
//! - [`metrics`]: [`metrics::Metrics`], the process's one registry (atomics behind
//!   capped label maps), rendered in the Prometheus text format and served by
//!   [`metrics::PrometheusServer`] on `/metrics`, `/healthz` and `/readyz`; fans out to
//!   StatsD when given a [`Statsd`] handle.
//! - [`statsd`]: the StatsD sink, one folder with fixed roles.
//!   - `statsd/config.rs`: [`StatsdConfig`], what an operator writes, and its validation.
//!   - `statsd/encoder.rs`: [`Encoder`] and [`Metric`], the StatsD line format.
//!   - `statsd/sink.rs`: [`Statsd`], the clonable handle, and the task that packs lines
//!     into datagrams and owns the socket.
//!   - `statsd/tests.rs`: tests over a real UDP socket that assert the exact bytes.
//! - [`reports`]: [`reports::ErrorReporter`], error reports to Sentry built from an
//!   [`reports::ErrorReport`] alone (ids and the error's text, never message content), on
//!   a Sentry client and hub of their own, sent from a thread behind a bounded queue.
//! - [`markers`]: deploy markers, as Grafana annotations ([`markers::post_grafana`]) and
//!   Honeycomb markers ([`markers::post_honeycomb`]).
//! - [`probe`]: does an exporter's endpoint answer? One probe per kind of endpoint (OTLP,
//!   HTTP, Honeycomb's key check, Sentry, UDP, TCP), none sending data a backend would
//!   keep; what `guildscope check-config` prints.
//!
//! **Architecture Invariant:** `telemetry` knows nothing about Discord, twilight or the
//! store; callers hand it names and numbers.

mod decimal;
mod fxhash;
pub mod markers;
pub mod metrics;
pub mod otel;
pub mod probe;
pub mod reports;
pub mod statsd;

pub use statsd::{EncodeError, Encoder, Metric, MetricValue, Statsd, StatsdConfig, StatsdError};
