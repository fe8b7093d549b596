//! What the reporter needs to know ([`SentryConfig`]), how it is checked, and the one
//! error type of error reporting.

use std::fmt;
use std::str::FromStr;

use sentry::types::Dsn;

/// Reports waiting to be sent, at most, when [`SentryConfig::new`] picks the size.
const DEFAULT_QUEUE: usize = 100;

/// Configuration of the Sentry error reporter.
///
/// The DSN holds the project's key, so `Debug` prints `[redacted]` in its place.
#[derive(Clone, PartialEq)]
pub struct SentryConfig {
    /// The project's DSN, `https://<key>@<host>/<project id>`. Secret.
    pub dsn: String,
    /// Sentry's `environment` on every report (`production`, `staging`); none if `None`.
    pub environment: Option<String>,
    /// Sentry's `release` on every report: `guildscope@0.1.0+<git sha>`.
    pub release: String,
    /// Fraction of reports sent, from 0 to 1.
    pub sample_rate: f32,
    /// Reports waiting to be sent, at most. When the queue is full a new report is dropped
    /// and counted instead of making the caller wait.
    pub queue: usize,
}

impl SentryConfig {
    /// A configuration for `dsn` and `release` that sends every report, with no
    /// environment and room for 100 waiting reports.
    pub fn new(dsn: impl Into<String>, release: impl Into<String>) -> Self {
        Self {
            dsn: dsn.into(),
            environment: None,
            release: release.into(),
            sample_rate: 1.0,
            queue: DEFAULT_QUEUE,
        }
    }

    /// Checks every field, returning the first problem found. An error names the field
    /// (`sentry.dsn`, ...) and never repeats the DSN.
    pub fn validate(&self) -> Result<(), ReportError> {
        self.checked().map(|_| ())
    }

    /// Checks every field and returns the parsed DSN.
    pub(super) fn checked(&self) -> Result<Dsn, ReportError> {
        let dsn = parse_dsn(&self.dsn)?;
        // `contains` is false for NaN, so a NaN rate is refused too.
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(invalid(
                "sentry.sample_rate",
                format!("expected a number from 0 to 1, got {}", self.sample_rate),
            ));
        }
        if self.queue == 0 {
            return Err(invalid("sentry.queue", "expected at least 1, got 0"));
        }
        if self.release.trim().is_empty() {
            return Err(invalid(
                "sentry.release",
                "expected a release name, got nothing",
            ));
        }
        if self
            .environment
            .as_deref()
            .is_some_and(|environment| environment.trim().is_empty())
        {
            return Err(invalid(
                "sentry.environment",
                "expected a name or no environment, got an empty string",
            ));
        }
        Ok(dsn)
    }
}

impl fmt::Debug for SentryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryConfig")
            .field("dsn", &"[redacted]")
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("sample_rate", &self.sample_rate)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Parses a DSN without letting any of its text into the error.
pub(crate) fn parse_dsn(text: &str) -> Result<Dsn, ReportError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(
            "sentry.dsn",
            "expected a DSN like https://<key>@<host>/<project id>, got an empty string",
        ));
    }
    // The parser's messages are fixed phrases ("no valid scheme", ...), never the input.
    Dsn::from_str(text).map_err(|err| {
        invalid(
            "sentry.dsn",
            format!("expected a DSN like https://<key>@<host>/<project id> ({err})"),
        )
    })
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ReportError {
    ReportError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// Everything starting the error reporter can fail on. Reporting itself never fails: a
/// report that cannot be queued is counted in
/// [`ErrorReporter::dropped`](super::ErrorReporter::dropped).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A [`SentryConfig`] field has a value the reporter cannot run with. The message names
    /// the field and never contains the DSN.
    #[error("invalid `{field}`: {reason}")]
    InvalidConfig {
        /// The field, as an operator writes it (`sentry.dsn`).
        field: &'static str,
        /// What is expected instead.
        reason: String,
    },
    /// The HTTP client that talks to Sentry could not be built.
    #[error("failed to build the http client for sentry")]
    Client {
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The thread that sends reports could not be started.
    #[error("failed to start the sentry reporting thread")]
    Worker {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
