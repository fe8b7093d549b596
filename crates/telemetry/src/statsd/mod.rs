//! A StatsD sink: a cheap, clonable [`Statsd`] handle whose calls never block or await,
//! and a task that packs metrics into UDP datagrams.
//!
//! Metrics go from the handle into a bounded queue; when the queue is full the metric is
//! dropped and counted ([`Statsd::dropped`]) rather than making the caller wait. The task
//! packs many `\n`-separated metrics into each datagram, never more than
//! [`StatsdConfig::max_datagram`] bytes and never splitting a metric, and sends when a
//! datagram is full or [`StatsdConfig::flush_interval`] after the first metric in it. Send
//! errors are counted ([`Statsd::send_errors`]) and never stop the task.

mod config;
mod encoder;
mod sink;

#[cfg(test)]
mod tests;

pub use config::{StatsdConfig, StatsdError};
pub use encoder::{EncodeError, Encoder, Metric, MetricValue};
pub use sink::{Statsd, WAKE_DATAGRAMS};
