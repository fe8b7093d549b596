//! Test peers that speak real protocols, for guildscope's tests and benchmarks.
//!
//! Each peer binds `127.0.0.1:0`, serves on the tokio runtime it was started
//! on, keeps what it receives for the test to read, and stops when dropped (or
//! through its `shutdown` method). Any client that follows the protocol's
//! public specification can talk to it; nothing here knows about guildscope.
//!
//! # Layout
//!
//! - [`otlp::OtlpReceiver`]: a standard OTLP receiver. gRPC (`TraceService`,
//!   `LogsService`, `MetricsService`) and HTTP (`POST /v1/traces`,
//!   `/v1/logs`, `/v1/metrics`, protobuf bodies) on two ports, answering as a
//!   collector does. It flattens what it receives into [`otlp::ReceivedSpan`],
//!   [`otlp::ReceivedLog`] and [`otlp::ReceivedMetric`], offers span-tree
//!   helpers ([`otlp::children`], [`otlp::roots`], [`otlp::render_tree`]) and
//!   can simulate a collector outage.
//! - [`sentry::FakeSentry`]: Sentry's ingest protocol. `POST
//!   /api/{project_id}/envelope/` (envelopes, identity, gzip or deflate
//!   encoded) and `/api/{project_id}/store/`, checking the DSN's public key,
//!   keeping the events and every raw body; can simulate an outage.
//! - [`http::HttpRecorder`]: answers any method and path with a configurable
//!   status and JSON body, and records every request (method, path, query,
//!   headers, body).
//! - [`logs::LogBuffer`]: a writer for a `tracing` subscriber that a test
//!   reads back, as text or as JSON lines.
//!
//! The `wait_for_*` methods poll with a deadline and panic with a description
//! of what did arrive: they are meant for tests.

pub mod http;
pub mod logs;
pub mod otlp;
pub mod sentry;
mod server;
