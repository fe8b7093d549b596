//! Error reports to Sentry: a cheap, clonable [`ErrorReporter`] whose
//! [`report`](ErrorReporter::report) never blocks, and a thread that posts reports to
//! Sentry's envelope endpoint.
//!
//! The reporter uses a Sentry client of its own behind a hub of its own, never the
//! process-wide hub, so nothing else in the process can add to or read from its reports.
//! The client runs with no integrations (nothing reads the environment, the host, stack
//! frames or their locals), no `server_name`, no breadcrumbs and `send_default_pii` off.
//! Each event is built from an [`ErrorReport`] alone; see `event.rs` for its exact shape.
//!
//! # Layout
//!
//! - `config.rs`: [`SentryConfig`], its validation, and [`ReportError`].
//! - `event.rs`: [`ErrorReport`] and the Sentry event made from it.
//! - `transport.rs`: the bounded queue and the sending thread.

mod config;
mod event;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sentry::{Client, ClientOptions, EventSamplingStrategy, Hub, Scope};

pub use config::{ReportError, SentryConfig};
pub use event::ErrorReport;

use transport::{Endpoint, Shared};

/// A handle to the error reporter. Cloning it is cheap; every clone feeds the same queue.
///
/// [`report`](Self::report) never blocks or awaits: it builds the event and queues it, or
/// drops and counts it when the queue is full. A Sentry outage costs callers nothing; the
/// reports it loses are counted by Sentry's client reports once it is back.
#[derive(Clone)]
pub struct ErrorReporter {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    shared: Arc<Shared>,
    release: String,
    environment: Option<String>,
}

impl ErrorReporter {
    /// Validates `config`, builds the Sentry client and starts the thread that sends
    /// reports. Needs no async runtime.
    ///
    /// A bad DSN is an error naming `sentry.dsn` that does not repeat the DSN.
    pub fn start(config: SentryConfig) -> Result<ErrorReporter, ReportError> {
        let dsn = config.checked()?;
        let endpoint = Endpoint {
            url: dsn.envelope_api_url(),
            auth: dsn
                .to_auth(Some(&ClientOptions::default().user_agent))
                .to_string(),
        };
        let (factory, shared) = transport::start(endpoint, config.queue)?;

        let mut options = ClientOptions::default();
        options.dsn = Some(dsn.clone());
        options.release = Some(config.release.clone().into());
        options.environment = config.environment.clone().map(Into::into);
        options.event_sampling_strategy = EventSamplingStrategy::FixedRate(config.sample_rate);
        options.transport = Some(Arc::new(factory));
        // Privacy: nothing describing the host or the people involved beyond the ids in
        // the report, and nothing collected on the side.
        options.server_name = None;
        options.send_default_pii = false;
        options.default_integrations = false;
        options.integrations = Vec::new();
        options.attach_stacktrace = false;
        options.max_breadcrumbs = 0;
        options.auto_session_tracking = false;
        let client = Client::with_options(options);
        let hub = Hub::new(Some(Arc::new(client)), Arc::new(Scope::default()));
        tracing::debug!(
            host = %dsn.host(),
            release = %config.release,
            "sentry error reporter started"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                hub,
                shared,
                release: config.release,
                environment: config.environment,
            }),
        })
    }

    /// Queues `report` for Sentry and returns the event's id (32 hex digits), or `None`
    /// when the report was sampled out or dropped because the queue was full.
    ///
    /// Never blocks: the report is built and handed to a bounded queue, nothing more.
    pub fn report(&self, report: &ErrorReport<'_>) -> Option<String> {
        let event = event::build(report);
        transport::reset_last_queued();
        let id = self.inner.hub.capture_event(event);
        let queued = transport::last_queued();
        transport::reset_last_queued();
        if id.is_nil() || queued == Some(false) {
            return None;
        }
        Some(id.simple().to_string())
    }

    /// Reports dropped because the queue was full, since the reporter started.
    pub fn dropped(&self) -> u64 {
        self.inner.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every queued report has been sent (or has failed), at most `timeout`.
    /// Returns whether the queue drained in time. Call it on shutdown.
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.inner.shared.wait_idle(timeout).await
    }
}

impl fmt::Debug for ErrorReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorReporter")
            .field("release", &self.inner.release)
            .field("environment", &self.inner.environment)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}
