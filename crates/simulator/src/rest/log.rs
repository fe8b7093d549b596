//! The record of every REST call (bounded), for tests and the control API.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Calls kept in the log.
const CAPACITY: usize = 100_000;

/// One REST call as the simulator saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestCall {
    /// HTTP method.
    pub method: String,
    /// Request path (without query).
    pub path: String,
    /// Route template, e.g. `/api/v10/channels/{channel_id}/messages` (`unknown` when no
    /// route matched).
    pub route: String,
    /// Response status.
    pub status: u16,
    /// Unix time in milliseconds when the request arrived.
    pub at: u64,
    /// Milliseconds spent answering (including injected latency).
    pub duration_ms: f64,
}

/// The bounded log.
#[derive(Debug, Default)]
pub(crate) struct RestLog {
    calls: VecDeque<RestCall>,
}

impl RestLog {
    pub(crate) fn push(&mut self, call: RestCall) {
        self.calls.push_back(call);
        while self.calls.len() > CAPACITY {
            self.calls.pop_front();
        }
    }

    pub(crate) fn all(&self) -> Vec<RestCall> {
        self.calls.iter().cloned().collect()
    }
}
