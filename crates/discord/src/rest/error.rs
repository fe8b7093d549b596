//! The one error type of the REST wrapper.
//!
//! A request path contains the interaction or webhook token on some routes,
//! and twilight's errors can quote requests. `RestError` keeps only what is
//! safe to log: the route *template*, the status, Discord's error code and
//! message, and the transport error chain (which never names the URL).

use std::error::Error as StdError;

use twilight_http::error::ErrorType;

/// A Discord REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Discord answered with an error status.
    #[error("{route}: discord answered with status {status}{}", describe(*code, message.as_deref()))]
    Status {
        /// The route template, e.g. `PUT guilds/{guild_id}/members/{user_id}/roles/{role_id}`.
        route: &'static str,
        /// The HTTP status.
        status: u16,
        /// Discord's JSON error code, when the body had one.
        code: Option<u64>,
        /// Discord's error message, when the body had one.
        message: Option<String>,
    },
    /// The token was rejected (401); calls that need it are refused without
    /// being sent after this.
    #[error("{route}: the token was rejected (401 unauthorized)")]
    Unauthorized {
        /// The route template.
        route: &'static str,
    },
    /// No response arrived: connection refused, reset, or timed out.
    #[error("{route}: no response from discord")]
    Transport {
        /// The route template.
        route: &'static str,
        /// What went wrong underneath.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A response arrived but its body did not have the expected shape.
    #[error("{route}: the response body could not be decoded")]
    Decode {
        /// The route template.
        route: &'static str,
    },
    /// The request was refused before being sent (a field out of Discord's
    /// limits, a page with both `before` and `after`, ...).
    #[error("{route}: invalid request: {reason}")]
    Invalid {
        /// The route template.
        route: &'static str,
        /// What is wrong, without the offending value.
        reason: &'static str,
    },
}

/// The kind of a [`RestError`], for metrics labels and matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestErrorKind {
    /// See [`RestError::Status`].
    Status,
    /// See [`RestError::Unauthorized`].
    Unauthorized,
    /// See [`RestError::Transport`].
    Transport,
    /// See [`RestError::Decode`].
    Decode,
    /// See [`RestError::Invalid`].
    Invalid,
}

impl RestErrorKind {
    /// A bounded label (`status`, `unauthorized`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            RestErrorKind::Status => "status",
            RestErrorKind::Unauthorized => "unauthorized",
            RestErrorKind::Transport => "transport",
            RestErrorKind::Decode => "decode",
            RestErrorKind::Invalid => "invalid",
        }
    }
}

impl RestError {
    /// What kind of failure this is.
    pub const fn kind(&self) -> RestErrorKind {
        match self {
            RestError::Status { .. } => RestErrorKind::Status,
            RestError::Unauthorized { .. } => RestErrorKind::Unauthorized,
            RestError::Transport { .. } => RestErrorKind::Transport,
            RestError::Decode { .. } => RestErrorKind::Decode,
            RestError::Invalid { .. } => RestErrorKind::Invalid,
        }
    }

    /// The route template of the failed call.
    pub const fn route(&self) -> &'static str {
        match self {
            RestError::Status { route, .. }
            | RestError::Unauthorized { route }
            | RestError::Transport { route, .. }
            | RestError::Decode { route }
            | RestError::Invalid { route, .. } => route,
        }
    }

    /// The HTTP status, when Discord answered.
    pub const fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            RestError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// Discord's JSON error code (e.g. 10062 "Unknown interaction"), when sent.
    pub const fn discord_code(&self) -> Option<u64> {
        match self {
            RestError::Status { code, .. } => *code,
            _ => None,
        }
    }

    /// Converts an error twilight reported while building a request (a
    /// field outside Discord's limits, a body that did not serialize). The
    /// error itself is dropped: it may quote the request.
    pub(crate) fn from_twilight(route: &'static str, error: twilight_http::Error) -> Self {
        match error.kind() {
            ErrorType::Validation => RestError::Invalid {
                route,
                reason: "a field is outside discord's limits",
            },
            _ => RestError::Invalid {
                route,
                reason: "the request could not be built",
            },
        }
    }
}

/// ` (code 10062: Unknown interaction)`, or what part of it is known.
fn describe(code: Option<u64>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!(" (code {code}: {message})"),
        (Some(code), None) => format!(" (code {code})"),
        (None, Some(message)) => format!(" ({message})"),
        (None, None) => String::new(),
    }
}
