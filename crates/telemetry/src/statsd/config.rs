//! What an operator writes to point guildscope at a StatsD server, how it is checked, and
//! the sink's one error type.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Largest UDP payload over IPv4 (65,535 minus the IP and UDP headers).
const MAX_UDP_PAYLOAD: usize = 65_507;

/// Smallest datagram size accepted: below this even an ordinary metric would not fit.
const MIN_DATAGRAM: usize = 64;

/// Configuration of the StatsD sink.
///
/// In a config file (TOML shown):
///
/// ```toml
/// address = "127.0.0.1:8125"   # required: an IP socket address or host:port
/// prefix = "guildscope"        # joined to every metric name with "."; "" for none
/// max_datagram = 1432          # bytes per datagram, at most
/// flush_interval_ms = 100      # send a partly filled datagram (and summed counters) after this long
/// queue = 10000                # lines and distinct counters waiting for the sink task, at most
/// ```
///
/// Unknown keys are rejected. Build one in code with [`StatsdConfig::new`], adjust the
/// public fields, and hand it to [`Statsd::start`](crate::Statsd::start), which validates
/// it again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsdConfig {
    /// Where the StatsD server listens: `127.0.0.1:8125`, `[::1]:8125` or
    /// `statsd.internal:8125`. A host name is resolved once, when the sink starts.
    pub address: String,
    /// Prefix joined to every metric name with `.`; empty for none. Only
    /// `[A-Za-z0-9_.-]` is allowed, and it may not start or end with `.`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Upper bound on the size of one datagram, in bytes. The default, 1432, fits in a
    /// typical 1500-byte MTU with room for IP and UDP headers and tunnel overhead.
    #[serde(default = "default_max_datagram")]
    pub max_datagram: usize,
    /// How long a partly filled datagram may wait before it is sent; counters are
    /// summed by name over the same time. Written as `flush_interval_ms`
    /// (milliseconds) in config files.
    #[serde(
        default = "default_flush_interval",
        rename = "flush_interval_ms",
        deserialize_with = "duration_ms"
    )]
    pub flush_interval: Duration,
    /// Capacity of each thread's queue of metrics waiting for the sink task, in lines
    /// and distinct counters (a counter already waiting is added to, taking no more
    /// room). When it is full, new metrics from that thread are dropped and counted
    /// instead of blocking the caller.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_prefix() -> String {
    "guildscope".to_owned()
}

fn default_max_datagram() -> usize {
    1432
}

fn default_flush_interval() -> Duration {
    Duration::from_millis(100)
}

fn default_queue() -> usize {
    10_000
}

fn duration_ms<'de, D>(deserializer: D) -> Result<Duration, D::Error>
where
    D: serde::Deserializer<'de>,
{
    u64::deserialize(deserializer).map(Duration::from_millis)
}

impl StatsdConfig {
    /// A configuration sending to `address` with every other field at its default,
    /// refused if `address` is not an IP socket address or `host:port`.
    pub fn new(address: impl Into<String>) -> Result<Self, StatsdError> {
        let config = Self {
            address: address.into(),
            prefix: default_prefix(),
            max_datagram: default_max_datagram(),
            flush_interval: default_flush_interval(),
            queue: default_queue(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field, returning the first one that the sink cannot run with.
    pub fn validate(&self) -> Result<(), StatsdError> {
        validate_address(&self.address)?;
        validate_prefix(&self.prefix)?;
        if !(MIN_DATAGRAM..=MAX_UDP_PAYLOAD).contains(&self.max_datagram) {
            return Err(invalid(
                "max_datagram",
                format!("must be between {MIN_DATAGRAM} and {MAX_UDP_PAYLOAD} bytes"),
            ));
        }
        if self.flush_interval.is_zero() {
            return Err(invalid("flush_interval", "must be greater than zero"));
        }
        if self.queue == 0 {
            return Err(invalid("queue", "must be at least 1"));
        }
        Ok(())
    }
}

fn validate_address(address: &str) -> Result<(), StatsdError> {
    if address.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(invalid("address", "must be host:port, e.g. 127.0.0.1:8125"));
    };
    if host.is_empty() || host.contains(':') {
        return Err(invalid(
            "address",
            "must be host:port, with IPv6 addresses in brackets",
        ));
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(()),
        _ => Err(invalid("address", "must end in a port between 1 and 65535")),
    }
}

fn validate_prefix(prefix: &str) -> Result<(), StatsdError> {
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.chars().all(super::encoder::is_name_char) {
        return Err(invalid(
            "prefix",
            "may only contain A-Z, a-z, 0-9, '_', '.' and '-'",
        ));
    }
    if prefix.starts_with('.') || prefix.ends_with('.') {
        return Err(invalid("prefix", "may not start or end with '.'"));
    }
    Ok(())
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StatsdError {
    StatsdError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// Everything the StatsD sink can refuse. Sending never returns an error: a failed send is
/// counted in [`Statsd::send_errors`](crate::Statsd::send_errors) instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsdError {
    /// A [`StatsdConfig`] field has a value the sink cannot run with.
    #[error("invalid statsd config: `{field}` {reason}")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// What is expected instead.
        reason: String,
    },
    /// The address could not be resolved.
    #[error("failed to resolve statsd address {address}")]
    Resolve {
        /// Address as configured.
        address: String,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The address resolved to nothing.
    #[error("statsd address {address} resolved to no socket address")]
    NoAddress {
        /// Address as configured.
        address: String,
    },
    /// The local UDP socket could not be bound or connected to the server's address.
    #[error("failed to open a udp socket to statsd at {addr}")]
    Socket {
        /// The resolved server address.
        addr: SocketAddr,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The sink task is no longer running, so a flush could not be carried out.
    #[error("the statsd sink task has stopped")]
    Closed,
}
