//! Counting around the export pipelines: the span counts the batch processor keeps, a
//! log exporter that counts what was exported and what failed, and the rate-limited
//! warning a failing collector gets.
//!
//! The counts are exact: a span is `ended` once, then either exported, part of a failed
//! export, or dropped (the queue was full, or shutdown came first). A dead collector
//! costs the code producing spans nothing: the batch processor's queue is bounded and
//! drops when full, exports run on the processor's own thread, and failures are logged at
//! most once per [`FAILURE_LOG_INTERVAL`] per signal.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use tracing::dispatcher::WeakDispatch;

use super::config::Signal;
use super::own::OwnSpans;

/// How often, at most, a failing export is logged (per signal).
pub(crate) const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Longest error text quoted in the failure warning.
const MAX_ERROR_TEXT: usize = 300;

/// What happened to the spans so far. Once the pipeline is flushed (after
/// [`TelemetryGuard::shutdown`](super::TelemetryGuard::shutdown)), `ended - exported`
/// spans were lost: in failed exports, or dropped because the queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanCounts {
    /// Sampled spans that ended and were handed to the batch processor.
    pub ended: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans in exports that failed (after the exporter's retries).
    pub export_failures: u64,
    /// Spans dropped because the queue was full.
    pub dropped: u64,
}

impl SpanCounts {
    /// Spans ended but not exported: still queued, dropped, or in failed exports.
    pub fn not_exported(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }

    /// Spans lost for good so far: dropped at the full queue or in failed exports.
    /// Unlike [`not_exported`](Self::not_exported) it never goes down, so it can be a
    /// counter.
    pub fn lost(&self) -> u64 {
        self.dropped.saturating_add(self.export_failures)
    }
}

/// Counters shared by the processor, the exporters and the guard.
#[derive(Default)]
pub(crate) struct ExportStats {
    spans_ended: AtomicU64,
    spans_exported: AtomicU64,
    spans_failed: AtomicU64,
    spans_dropped: AtomicU64,
    logs_exported: AtomicU64,
    logs_failed: AtomicU64,
    metric_exports: AtomicU64,
    metric_exports_failed: AtomicU64,
    trace_failures: Mutex<FailureLog>,
    log_failures: Mutex<FailureLog>,
    metric_failures: Mutex<FailureLog>,
    /// The pipeline's own dispatcher: warnings from the exporter threads go to it even
    /// when it is not the global default (as in tests using `with_default`).
    dispatch: OnceLock<WeakDispatch>,
    /// guildscope's own spans, which count what ended and was dropped in their
    /// threads' buffers.
    own_spans: OnceLock<Arc<OwnSpans>>,
}

/// Failures since the last warning, and when that warning was.
#[derive(Default)]
struct FailureLog {
    last_warning: Option<Instant>,
    failed_exports: u64,
    lost: u64,
}

impl fmt::Debug for ExportStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportStats")
            .field("spans", &self.span_counts())
            .finish_non_exhaustive()
    }
}

impl ExportStats {
    pub(crate) fn span_counts(&self) -> SpanCounts {
        let (own_ended, own_dropped) = self.own_spans.get().map_or((0, 0), |own| own.counts());
        SpanCounts {
            ended: self.spans_ended.load(Ordering::Relaxed) + own_ended,
            exported: self.spans_exported.load(Ordering::Relaxed),
            export_failures: self.spans_failed.load(Ordering::Relaxed),
            dropped: self.spans_dropped.load(Ordering::Relaxed) + own_dropped,
        }
    }

    /// Counts guildscope's own spans too, from their threads' buffers.
    pub(crate) fn set_own_spans(&self, own: Arc<OwnSpans>) {
        // Set once, by the one batch processor of the pipeline.
        let _ = self.own_spans.set(own);
    }

    /// Log records exported and log records in failed exports.
    pub(crate) fn log_counts(&self) -> (u64, u64) {
        (
            self.logs_exported.load(Ordering::Relaxed),
            self.logs_failed.load(Ordering::Relaxed),
        )
    }

    /// Metric exports that succeeded and that failed. A metrics export carries the
    /// registry's cumulative totals, so one that fails loses nothing the next one
    /// does not carry.
    pub(crate) fn metric_export_counts(&self) -> (u64, u64) {
        (
            self.metric_exports.load(Ordering::Relaxed),
            self.metric_exports_failed.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn set_dispatch(&self, dispatch: WeakDispatch) {
        // Set once, right after the dispatcher is built; a second call cannot happen.
        let _ = self.dispatch.set(dispatch);
    }

    /// Runs `emit` with the pipeline's dispatcher as the default, if it is still alive.
    pub(crate) fn in_pipeline(&self, emit: impl FnOnce()) {
        match self.dispatch.get().and_then(WeakDispatch::upgrade) {
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, emit),
            None => emit(),
        }
    }

    /// A sampled span was handed to the batch processor.
    pub(crate) fn span_ended(&self) {
        self.spans_ended.fetch_add(1, Ordering::Relaxed);
    }

    /// A span was dropped because the queue was full.
    pub(crate) fn span_dropped(&self) {
        self.spans_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The outcome of one export of `items` spans or log records, or of one metrics
    /// export (`items` is 1).
    pub(crate) fn record(&self, signal: Signal, items: u64, result: &OTelSdkResult) {
        let (exported, failed, log) = match signal {
            Signal::Traces => (
                &self.spans_exported,
                &self.spans_failed,
                &self.trace_failures,
            ),
            Signal::Logs => (&self.logs_exported, &self.logs_failed, &self.log_failures),
            Signal::Metrics => (
                &self.metric_exports,
                &self.metric_exports_failed,
                &self.metric_failures,
            ),
        };
        match result {
            Ok(()) => {
                exported.fetch_add(items, Ordering::Relaxed);
            }
            Err(error) => {
                failed.fetch_add(items, Ordering::Relaxed);
                // A failed metrics export loses nothing: the next carries the totals.
                let lost = if signal == Signal::Metrics { 0 } else { items };
                self.warn_rate_limited(signal, log, lost, error);
            }
        }
    }

    fn warn_rate_limited(
        &self,
        signal: Signal,
        log: &Mutex<FailureLog>,
        items: u64,
        error: &OTelSdkError,
    ) {
        let (failed_exports, lost) = {
            let Ok(mut log) = log.lock() else { return };
            log.failed_exports += 1;
            log.lost += items;
            let now = Instant::now();
            if log
                .last_warning
                .is_some_and(|last| now.duration_since(last) < FAILURE_LOG_INTERVAL)
            {
                return;
            }
            log.last_warning = Some(now);
            (
                std::mem::take(&mut log.failed_exports),
                std::mem::take(&mut log.lost),
            )
        };
        let mut reason = error.to_string();
        if let Some((cut, _)) = reason.char_indices().nth(MAX_ERROR_TEXT) {
            reason.truncate(cut);
            reason.push('…');
        }
        self.in_pipeline(|| {
            tracing::warn!(
                signal = signal.as_str(),
                failed_exports,
                lost,
                error = %reason,
                "OTLP export failed; further failures are counted and reported at most every {} s",
                FAILURE_LOG_INTERVAL.as_secs(),
            );
        });
    }
}

/// A log exporter that counts what it exported and what failed.
#[derive(Debug)]
pub(crate) struct CountingLogExporter<E> {
    pub(crate) inner: E,
    pub(crate) stats: Arc<ExportStats>,
}

impl<E: LogExporter> LogExporter for CountingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let items = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        self.stats.record(Signal::Logs, items, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn event_enabled(
        &self,
        level: opentelemetry::logs::Severity,
        target: &str,
        name: Option<&str>,
    ) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
