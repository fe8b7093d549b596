//! What an operator writes to expose metrics to Prometheus, how it is checked, and the
//! metrics endpoint's one error type.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use serde::Deserialize;

/// Where the Prometheus endpoint listens and whether it asks for a token.
///
/// In a config file (TOML shown):
///
/// ```toml
/// listen = "127.0.0.1:9464"    # the default; use 0.0.0.0:9464 to accept remote scrapes
/// bearer_token = "s3cret"      # optional; then every route but /healthz needs
///                              # `Authorization: Bearer s3cret`
/// ```
///
/// Unknown keys are rejected. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// The address to listen on; `127.0.0.1:9464` by default.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A token scrapers must present as `Authorization: Bearer <token>`; `None` to
    /// serve without authentication. Visible ASCII (no spaces), at least one character.
    #[serde(default)]
    pub bearer_token: Option<String>,
}

fn default_listen() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 9464).into()
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            bearer_token: None,
        }
    }
}

impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusConfig")
            .field("listen", &self.listen)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl PrometheusConfig {
    /// Checks every field, returning the first one the endpoint cannot run with.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if let Some(token) = &self.bearer_token {
            if token.is_empty() {
                return Err(MetricsError::InvalidConfig {
                    field: "bearer_token",
                    reason: "must not be empty".to_owned(),
                });
            }
            // A header value can carry only these, so any other token could never match.
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(MetricsError::InvalidConfig {
                    field: "bearer_token",
                    reason: "may only contain visible ASCII characters, without spaces".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Everything the Prometheus endpoint can fail at. None of these ever includes the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A [`PrometheusConfig`] field has a value the endpoint cannot run with.
    #[error("invalid prometheus config: `{field}` {reason}")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// What is expected instead.
        reason: String,
    },
    /// The listening socket could not be bound (address in use, no permission, no such
    /// interface).
    #[error("failed to bind the prometheus endpoint to {addr}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket's own address could not be read.
    #[error("failed to read the local address of the prometheus endpoint bound to {addr}")]
    LocalAddr {
        /// The configured address.
        addr: SocketAddr,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}
