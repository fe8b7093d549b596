//! Fault injection: gateway faults go to the live connections of a shard; REST faults are
//! kept here and consumed by the REST middleware as matching requests arrive.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{SimError, gateway::ConnCommand, state::Shared};

fn one() -> u32 {
    1
}

fn default_retry_after() -> f64 {
    1.0
}

fn bad_gateway() -> u16 {
    502
}

/// A fault to inject (`POST /control/faults` takes the same JSON).
///
/// Gateway faults name a shard id and act on every connected session of that shard. REST
/// faults name a route as `"METHOD /path-prefix"` (e.g. `"POST /api/v10/channels"`; the
/// method may be left out, and a path without `/api/v10` gets it prepended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Close the connection with `close_code`, or drop TCP without a close frame when `null`.
    /// The session stays resumable whatever the code: only a client closing with 1000/1001
    /// (or a heartbeat timeout, 4009) ends a session.
    DropConnection {
        /// Shard id.
        shard: u32,
        /// Close code, or `null` to drop the TCP connection.
        #[serde(default)]
        close_code: Option<u16>,
    },
    /// Stop answering heartbeats until the shard reconnects (or `clear`).
    StopHeartbeatAcks {
        /// Shard id.
        shard: u32,
    },
    /// Send op 7 RECONNECT.
    Reconnect {
        /// Shard id.
        shard: u32,
    },
    /// Send op 9 INVALID_SESSION; `resumable: false` also ends the session.
    InvalidSession {
        /// Shard id.
        shard: u32,
        /// The payload's `d`.
        #[serde(default)]
        resumable: bool,
    },
    /// Send an arbitrary payload (garbage, truncated JSON, unknown opcodes or dispatch
    /// types); compressed like every other frame when the connection uses compression.
    RawFrame {
        /// Shard id.
        shard: u32,
        /// The payload.
        text: String,
    },
    /// Answer the next `count` matching requests with 429.
    RateLimit {
        /// `"METHOD /path-prefix"`.
        route: String,
        /// Requests to limit.
        #[serde(default = "one")]
        count: u32,
        /// Seconds to advertise in `retry_after`.
        #[serde(default = "default_retry_after")]
        retry_after: f64,
        /// Report a global limit.
        #[serde(default)]
        global: bool,
    },
    /// Answer the next `count` matching requests with a server error.
    ServerError {
        /// `"METHOD /path-prefix"`.
        route: String,
        /// Requests to fail.
        #[serde(default = "one")]
        count: u32,
        /// HTTP status (default 502).
        #[serde(default = "bad_gateway")]
        status: u16,
    },
    /// Delay matching requests by `millis` (the next `count`, or all when `null`).
    Latency {
        /// `"METHOD /path-prefix"`.
        route: String,
        /// Added delay.
        millis: u64,
        /// Requests to delay, or `null` for all until `clear`.
        #[serde(default)]
        count: Option<u32>,
    },
    /// Remove every REST fault and resume heartbeat ACKs.
    Clear,
}

/// What a REST fault does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RestAction {
    RateLimit { retry_after: f64, global: bool },
    ServerError { status: u16 },
    Latency { millis: u64 },
}

#[derive(Debug, Clone)]
struct RestFault {
    method: Option<String>,
    prefix: String,
    action: RestAction,
    remaining: Option<u32>,
}

impl RestFault {
    fn new(route: &str, action: RestAction, remaining: Option<u32>) -> Self {
        let route = route.trim();
        let (method, path) = match route.split_once(' ') {
            Some((method, path)) => (Some(method.trim().to_ascii_uppercase()), path.trim()),
            None if route.starts_with('/') => (None, route),
            None => (Some(route.to_ascii_uppercase()), "/"),
        };
        let prefix = if path.starts_with("/api/") || !path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/api/v10{path}")
        };
        Self {
            method,
            prefix,
            action,
            remaining,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && path.starts_with(&self.prefix)
    }
}

/// Faults applying to the next matching request.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Applied {
    pub(crate) delay: Option<Duration>,
    pub(crate) error: Option<RestAction>,
}

/// Pending REST faults.
#[derive(Debug, Default)]
pub(crate) struct RestFaults {
    faults: Vec<RestFault>,
}

impl RestFaults {
    /// Consumes the faults matching a request: all latencies add up, the first error wins.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Applied {
        let mut applied = Applied::default();
        for fault in &mut self.faults {
            if !fault.matches(method, path) {
                continue;
            }
            match fault.action {
                RestAction::Latency { millis } => {
                    let delay = applied.delay.unwrap_or_default() + Duration::from_millis(millis);
                    applied.delay = Some(delay);
                }
                ref action if applied.error.is_none() => applied.error = Some(action.clone()),
                _ => continue,
            }
            if let Some(remaining) = fault.remaining.as_mut() {
                *remaining = remaining.saturating_sub(1);
            }
        }
        self.faults.retain(|f| f.remaining != Some(0));
        applied
    }
}

/// Applies a fault.
pub(crate) fn inject(shared: &Shared, fault: Fault) -> Result<(), SimError> {
    tracing::info!(?fault, "fault injected");
    let (shard, command) = match fault {
        Fault::DropConnection { shard, close_code } => (shard, ConnCommand::Close(close_code)),
        Fault::StopHeartbeatAcks { shard } => (shard, ConnCommand::StopHeartbeatAcks),
        Fault::Reconnect { shard } => (shard, ConnCommand::Reconnect),
        Fault::InvalidSession { shard, resumable } => {
            (shard, ConnCommand::InvalidSession { resumable })
        }
        Fault::RawFrame { shard, text } => (shard, ConnCommand::Raw(text)),
        Fault::RateLimit {
            route,
            count,
            retry_after,
            global,
        } => {
            let action = RestAction::RateLimit {
                retry_after: if retry_after.is_finite() {
                    retry_after.max(0.0)
                } else {
                    1.0
                },
                global,
            };
            crate::state::lock(&shared.rest_faults)
                .faults
                .push(RestFault::new(&route, action, Some(count)));
            return Ok(());
        }
        Fault::ServerError {
            route,
            count,
            status,
        } => {
            let status = if (500..600).contains(&status) {
                status
            } else {
                502
            };
            crate::state::lock(&shared.rest_faults)
                .faults
                .push(RestFault::new(
                    &route,
                    RestAction::ServerError { status },
                    Some(count),
                ));
            return Ok(());
        }
        Fault::Latency {
            route,
            millis,
            count,
        } => {
            crate::state::lock(&shared.rest_faults)
                .faults
                .push(RestFault::new(
                    &route,
                    RestAction::Latency { millis },
                    count,
                ));
            return Ok(());
        }
        Fault::Clear => {
            crate::state::lock(&shared.rest_faults).faults.clear();
            for session in shared.hub.all() {
                if let Some(control) = session.control() {
                    let _ = control.try_send(ConnCommand::StartHeartbeatAcks);
                }
            }
            return Ok(());
        }
    };
    let targets: Vec<_> = shared
        .hub
        .all()
        .into_iter()
        .filter(|s| s.shard_id == shard)
        .filter_map(|s| s.control())
        .collect();
    if targets.is_empty() {
        return Err(SimError::NoConnection { shard });
    }
    let last = targets.len() - 1;
    let mut command = Some(command);
    for (i, control) in targets.into_iter().enumerate() {
        let next = if i == last {
            command.take()
        } else {
            command.clone()
        };
        if let Some(next) = next {
            let _ = control.try_send(next);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{RestAction, RestFault, RestFaults};

    #[test]
    fn faults_match_method_and_prefix_and_run_out() {
        let mut faults = RestFaults::default();
        faults.faults.push(RestFault::new(
            "POST /channels",
            RestAction::ServerError { status: 503 },
            Some(2),
        ));
        assert!(
            faults
                .take("GET", "/api/v10/channels/1/messages")
                .error
                .is_none()
        );
        assert!(
            faults
                .take("POST", "/api/v10/channels/1/messages")
                .error
                .is_some()
        );
        assert!(
            faults
                .take("POST", "/api/v10/channels/1/messages")
                .error
                .is_some()
        );
        assert!(
            faults
                .take("POST", "/api/v10/channels/1/messages")
                .error
                .is_none()
        );
    }
}
