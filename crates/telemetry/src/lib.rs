//! guildscope's telemetry sinks: ways to get numbers out of the process without ever
//! slowing down the code that produces them.
//!
//! Today there is one sink, a StatsD client over UDP in the style of the reference
//! community bot's (fire and forget, never blocks the event loop). Metric names follow
//! DESIGN.md's telemetry conventions: `<prefix>.commands.<name>`, `<prefix>.messages`,
//! `<prefix>.channels.<name>`, `<prefix>.guild.total_members`, `<prefix>.errors.<kind>`.
//!
//! # Layout
//!
//! - [`statsd`]: the StatsD sink, one folder with fixed roles.
//!   - `statsd/config.rs`: [`StatsdConfig`], what an operator writes, and its validation.
//!   - `statsd/encoder.rs`: [`Encoder`] and [`Metric`], the StatsD line format.
//!   - `statsd/sink.rs`: [`Statsd`], the clonable handle, and the task that packs lines
//!     into datagrams and owns the socket.
//!   - `statsd/tests.rs`: tests over a real UDP socket that assert the exact bytes.
//!
//! **Architecture Invariant:** `telemetry` knows nothing about Discord, twilight or the
//! store; callers hand it names and numbers.

pub mod markers;
pub mod metrics;
pub mod otel;
pub mod probe;
pub mod reports;
pub mod spans;
pub mod statsd;

pub use statsd::{EncodeError, Encoder, Metric, MetricValue, Statsd, StatsdConfig, StatsdError};
