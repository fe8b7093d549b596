//! The Sentry transport: a bounded queue the client hands envelopes to, and a thread that
//! posts them to Sentry's envelope endpoint.
//!
//! Handing over an envelope is a `try_send`: a full queue costs one dropped report, counted,
//! never a wait. The thread has its own single-threaded runtime, so a slow or absent
//! Sentry ties up neither the caller's thread nor the application's async workers.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use sentry::client_report::{Reason as LossReason, Recorder};
use sentry::transports::{RateLimiter, RateLimitingCategory};
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::config::ReportError;

/// Longest a single post to Sentry may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest connecting to Sentry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

thread_local! {
    /// Whether the last envelope handed to the transport on this thread was queued.
    ///
    /// The client calls [`Transport::send_envelope`] synchronously on the reporting
    /// thread, so this is how `report` learns whether its event was queued or dropped.
    static LAST_QUEUED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Forgets what the last hand-over on this thread did.
pub(super) fn reset_last_queued() {
    LAST_QUEUED.with(|cell| cell.set(None));
}

/// Whether the last hand-over on this thread queued its envelope; `None` if there was none.
pub(super) fn last_queued() -> Option<bool> {
    LAST_QUEUED.with(Cell::get)
}

/// State shared by the transport, the sending thread and the reporter's handles.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Envelopes dropped because the queue was full.
    pub(super) dropped: AtomicU64,
    /// Envelopes queued or being sent.
    pending: AtomicUsize,
    /// Woken whenever `pending` drops to zero.
    idle: Notify,
    /// Records losses for Sentry's client reports; set once, when the client is built.
    recorder: OnceLock<Recorder>,
}

impl Shared {
    fn record_loss(&self, envelope: &Envelope, reason: LossReason) {
        if let Some(recorder) = self.recorder.get() {
            recorder.record_lost_data(envelope, reason);
        }
    }

    fn finished_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until nothing is queued or being sent, or until `timeout` passes. Returns
    /// whether the queue drained.
    pub(super) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before looking, so a wake-up between the look and the wait is kept.
            notified.as_mut().enable();
            if self.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending.load(Ordering::Acquire) == 0;
            }
        }
    }
}

/// The transport the Sentry client sends through. Also its own factory: the client asks
/// the factory once, when it is built, and gets the transport back.
pub(super) struct QueueTransport {
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
}

impl Transport for QueueTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(envelope) {
            Ok(()) => LAST_QUEUED.with(|cell| cell.set(Some(true))),
            Err(err) => {
                let (envelope, reason) = match err {
                    mpsc::error::TrySendError::Full(envelope) => {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        (envelope, LossReason::QueueOverflow)
                    }
                    mpsc::error::TrySendError::Closed(envelope) => {
                        (envelope, LossReason::InternalError)
                    }
                };
                self.shared.record_loss(&envelope, reason);
                self.shared.finished_one();
                LAST_QUEUED.with(|cell| cell.set(Some(false)));
            }
        }
    }

    /// Sentry's own flush is synchronous; the reporter flushes through
    /// [`Shared::wait_idle`] instead, so this one only looks.
    fn flush(&self, _timeout: Duration) -> bool {
        self.shared.pending.load(Ordering::Acquire) == 0
    }
}

/// Hands the client its transport. Holding the sending side of the queue, it keeps the
/// sending thread alive exactly as long as the client.
pub(super) struct QueueFactory {
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
}

impl TransportFactory for QueueFactory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        // The client builds its transport once; should it ever build another, the first
        // recorder stays, which is as good as any.
        let _ = self.shared.recorder.set(options.client_report_recorder);
        Arc::new(QueueTransport {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        })
    }
}

/// Where and how the sending thread posts envelopes.
pub(super) struct Endpoint {
    /// Sentry's envelope URL for the project. It holds no key.
    pub(super) url: reqwest::Url,
    /// The `X-Sentry-Auth` header value. Secret: it holds the DSN's key.
    pub(super) auth: String,
}

/// Starts the sending thread and returns the factory for the client and the shared state.
pub(super) fn start(
    endpoint: Endpoint,
    queue: usize,
) -> Result<(QueueFactory, Arc<Shared>), ReportError> {
    crate::markers::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(crate::markers::USER_AGENT)
        .build()
        .map_err(|source| ReportError::Client { source })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ReportError::Worker { source })?;
    let (tx, rx) = mpsc::channel(queue);
    let shared = Arc::new(Shared::default());
    let sender = Sender {
        client,
        endpoint,
        rx,
        shared: Arc::clone(&shared),
        limits: RateLimiter::new(),
        failing: false,
    };
    std::thread::Builder::new()
        .name("sentry-reports".to_owned())
        .spawn(move || runtime.block_on(sender.run()))
        .map_err(|source| ReportError::Worker { source })?;
    Ok((
        QueueFactory {
            tx,
            shared: Arc::clone(&shared),
        },
        shared,
    ))
}

/// The sending thread's state.
struct Sender {
    client: reqwest::Client,
    endpoint: Endpoint,
    rx: mpsc::Receiver<Envelope>,
    shared: Arc<Shared>,
    limits: RateLimiter,
    /// Whether the last post failed, so an outage is logged once, not per report.
    failing: bool,
}

impl Sender {
    /// Posts envelopes one at a time until every sending handle is gone.
    async fn run(mut self) {
        while let Some(envelope) = self.rx.recv().await {
            self.send(envelope).await;
            self.shared.finished_one();
        }
    }

    async fn send(&mut self, envelope: Envelope) {
        if self.limits.is_disabled(RateLimitingCategory::Any).is_some()
            || self
                .limits
                .is_disabled(RateLimitingCategory::Error)
                .is_some()
        {
            self.shared
                .record_loss(&envelope, LossReason::RatelimitBackoff);
            return;
        }
        let mut body = Vec::new();
        if envelope.to_writer(&mut body).is_err() {
            self.shared
                .record_loss(&envelope, LossReason::InternalError);
            return;
        }
        let request = self
            .client
            .post(self.endpoint.url.clone())
            .header("X-Sentry-Auth", &self.endpoint.auth)
            .header(CONTENT_TYPE, "application/x-sentry-envelope")
            .body(body);
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                self.update_limits(&response);
                if status.is_success() {
                    if self.failing {
                        tracing::info!(host = %crate::markers::host(&self.endpoint.url), "sentry accepts reports again");
                    }
                    self.failing = false;
                } else {
                    // Sentry counts what it refuses with 429 itself.
                    if status != StatusCode::TOO_MANY_REQUESTS {
                        self.shared.record_loss(&envelope, LossReason::SendError);
                    }
                    self.failed(&format!("answered {status}"));
                }
            }
            Err(err) => {
                self.shared.record_loss(&envelope, LossReason::NetworkError);
                let err = err.without_url();
                self.failed(&crate::markers::error_chain(&err));
            }
        }
    }

    fn update_limits(&mut self, response: &reqwest::Response) {
        let headers = response.headers();
        if let Some(limits) = headers
            .get("x-sentry-rate-limits")
            .and_then(|value| value.to_str().ok())
        {
            self.limits.update_from_sentry_header(limits);
        } else if let Some(retry_after) = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
        {
            self.limits.update_from_retry_after(retry_after);
        } else if response.status() == StatusCode::TOO_MANY_REQUESTS {
            self.limits.update_from_429();
        }
    }

    fn failed(&mut self, reason: &str) {
        let host = crate::markers::host(&self.endpoint.url);
        if self.failing {
            tracing::debug!(%host, reason, "sentry did not take an error report");
        } else {
            tracing::warn!(%host, reason, "sentry did not take an error report; reports are being lost");
        }
        self.failing = true;
    }
}
