//! The span batch processor: finished spans wait in a bounded queue and a thread of
//! its own exports them in batches, when a batch is full, when the oldest has waited
//! the scheduled delay, or on flush and shutdown. It works as the OpenTelemetry SDK's
//! `BatchSpanProcessor` does, and counts as the pipeline always has: a span is `ended`
//! once it is handed over (a full queue drops it, and it is never exported), then
//! exported or part of a failed export.
//!
//! What it carries differs: spans from the span layer arrive with their attributes
//! already encoded ([`TracedSpan`]), spans made with the OpenTelemetry API as SDK span
//! data; the exporter writes both into one request. guildscope's own spans do not go
//! through the queue: they wait encoded in their threads' buffers ([`OwnSpans`]),
//! which the thread takes whole at each export and sends in requests of their own,
//! and a thread's buffer is bounded the way the queue is.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};

use super::config::Signal;
use super::encode::TracedSpan;
use super::export::ExportStats;
use super::own::{MAX_REQUEST_SPAN_BYTES, OwnSpans, cut};
use super::transport::OtlpSpanExporter;

/// How long a flush waits for the batch thread, as in the SDK.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A finished span on its way out.
#[derive(Debug)]
// Layer spans are nearly all of them and move by value into the queue;
// boxing them would add an allocation per span.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished {
    /// From the span layer.
    Traced(TracedSpan),
    /// From the OpenTelemetry API, through the SDK tracer provider.
    Sdk(Box<SpanData>),
}

enum Control {
    /// A batch is full.
    Export,
    Flush(SyncSender<OTelSdkResult>),
    Shutdown(SyncSender<OTelSdkResult>),
}

/// The batch sizes and delay, from the pipeline's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) scheduled_delay: Duration,
}

/// The queue's sending side. Cheap to share; every method takes `&self`.
#[derive(Debug)]
pub(crate) struct BatchProcessor {
    spans: SyncSender<Finished>,
    /// guildscope's own spans, waiting encoded in their threads' buffers.
    own: Arc<OwnSpans>,
    control: SyncSender<Control>,
    /// Spans queued and not yet taken by the thread.
    queued: Arc<AtomicUsize>,
    /// Whether an [`Control::Export`] is on its way already.
    export_asked: Arc<AtomicBool>,
    max_export_batch_size: usize,
    stats: Arc<ExportStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl BatchProcessor {
    /// Starts the thread exporting through `exporter`.
    pub(crate) fn start(
        exporter: OtlpSpanExporter,
        settings: BatchSettings,
        stats: Arc<ExportStats>,
    ) -> Self {
        let (spans, queue) = sync_channel(settings.max_queue_size);
        let (control, orders) = sync_channel(64);
        let queued = Arc::new(AtomicUsize::new(0));
        let export_asked = Arc::new(AtomicBool::new(false));
        let own = Arc::new(OwnSpans::new(settings.max_queue_size));
        stats.set_own_spans(Arc::clone(&own));
        let worker = Worker {
            exporter,
            queue,
            own: Arc::clone(&own),
            spares: Vec::new(),
            own_bytes: Vec::new(),
            orders,
            queued: Arc::clone(&queued),
            export_asked: Arc::clone(&export_asked),
            settings,
            stats: Arc::clone(&stats),
            batch: Vec::with_capacity(settings.max_export_batch_size),
        };
        let thread = std::thread::Builder::new()
            .name("OpenTelemetry.Traces.BatchProcessor".to_owned())
            .spawn(move || worker.run())
            .ok();
        Self {
            spans,
            own,
            control,
            queued,
            export_asked,
            max_export_batch_size: settings.max_export_batch_size,
            stats,
            thread: Mutex::new(thread),
        }
    }

    /// Queues a sampled span, or drops it when the queue is full. Never waits.
    pub(crate) fn push(&self, span: Finished) {
        self.stats.span_ended();
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        match self.spans.try_send(span) {
            Ok(()) => {
                if before + 1 >= self.max_export_batch_size {
                    self.ask_for_export();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                self.stats.span_dropped();
            }
        }
    }

    /// Encodes one of guildscope's own spans into this thread's buffer, or drops
    /// and counts it when the buffer is full. Never waits.
    pub(crate) fn push_own(&self, record: &guildscope_trace::Record) {
        if self
            .own
            .push(record)
            .is_some_and(|waiting| waiting >= self.max_export_batch_size)
        {
            self.ask_for_export();
        }
    }

    /// Asks the thread for an export, unless it has been asked already.
    fn ask_for_export(&self) {
        if !self.export_asked.swap(true, Ordering::AcqRel)
            && self.control.try_send(Control::Export).is_err()
        {
            self.export_asked.store(false, Ordering::Release);
        }
    }

    /// Exports what is queued, waiting at most five seconds.
    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        let (done, wait) = sync_channel(1);
        self.order(Control::Flush(done))?;
        wait.recv_timeout(FLUSH_TIMEOUT)
            .map_err(|_| OTelSdkError::Timeout(FLUSH_TIMEOUT))?
    }

    /// Exports what is queued and stops the thread, waiting at most `timeout`.
    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        let (done, wait) = sync_channel(1);
        self.order(Control::Shutdown(done))?;
        let result = wait
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?;
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        result
    }

    fn order(&self, control: Control) -> OTelSdkResult {
        self.control.try_send(control).map_err(|error| match error {
            TrySendError::Full(_) => {
                OTelSdkError::InternalFailure("the batch processor is busy".to_owned())
            }
            TrySendError::Disconnected(_) => OTelSdkError::AlreadyShutdown,
        })
    }
}

impl super::layer::SpanQueue for BatchProcessor {
    fn push(&self, span: Finished) {
        BatchProcessor::push(self, span);
    }

    fn push_own(&self, record: &guildscope_trace::Record) {
        BatchProcessor::push_own(self, record);
    }

    fn force_flush(&self) -> OTelSdkResult {
        BatchProcessor::force_flush(self)
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        BatchProcessor::shutdown(self, timeout)
    }
}

/// The batch processor as the SDK tracer provider's span processor, for spans made
/// with the OpenTelemetry API directly.
#[derive(Debug)]
pub(crate) struct SdkSpans(pub(crate) Arc<super::layer::SpanSink>);

impl SpanProcessor for SdkSpans {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(Finished::Sdk(Box::new(span)));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown(timeout)
    }

    fn set_resource(&mut self, _resource: &Resource) {
        // The exporter is given the resource when it is built.
    }
}

/// The batch processor as the sink of guildscope's own spans.
#[derive(Debug)]
pub(crate) struct RecordedSpans(pub(crate) Arc<super::layer::SpanSink>);

impl guildscope_trace::Sink for RecordedSpans {
    fn finished(&self, record: &guildscope_trace::Record) {
        self.0.push_own(record);
    }
}

/// The thread's side.
struct Worker {
    exporter: OtlpSpanExporter,
    queue: Receiver<Finished>,
    own: Arc<OwnSpans>,
    /// Emptied thread buffers, swapped in for full ones.
    spares: Vec<Vec<u8>>,
    /// guildscope's own spans taken from the threads, not yet exported.
    own_bytes: Vec<u8>,
    orders: Receiver<Control>,
    queued: Arc<AtomicUsize>,
    export_asked: Arc<AtomicBool>,
    settings: BatchSettings,
    stats: Arc<ExportStats>,
    batch: Vec<Finished>,
}

impl Worker {
    fn run(mut self) {
        let mut last_export = Instant::now();
        loop {
            let wait = self
                .settings
                .scheduled_delay
                .checked_sub(last_export.elapsed())
                .unwrap_or(self.settings.scheduled_delay);
            match self.orders.recv_timeout(wait) {
                Ok(Control::Export) => {
                    self.export_asked.store(false, Ordering::Release);
                    // Failures are counted and logged by `export_queued`.
                    let _ = self.export_queued(&mut last_export);
                }
                Ok(Control::Flush(done)) => {
                    let result = self.export_queued(&mut last_export);
                    let _ = done.send(result);
                }
                Ok(Control::Shutdown(done)) => {
                    // Spans ending from now on are not counted, so every span counted
                    // is in this last export.
                    self.own.close();
                    let result = self.export_queued(&mut last_export);
                    self.exporter.shutdown();
                    let _ = done.send(result);
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.export_queued(&mut last_export);
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Exports the spans queued when called, in batches; the last batch's result.
    fn export_queued(&mut self, last_export: &mut Instant) -> OTelSdkResult {
        let target = self.queued.load(Ordering::Acquire);
        let mut exported = 0;
        let mut result = Ok(());
        while exported < target {
            let limit = self.settings.max_export_batch_size.min(target - exported);
            while self.batch.len() < limit {
                match self.queue.try_recv() {
                    Ok(span) => self.batch.push(span),
                    Err(_) => break,
                }
            }
            let count = self.batch.len();
            if count == 0 {
                break;
            }
            exported += count;
            *last_export = Instant::now();
            result = self.exporter.export(&self.batch);
            self.stats.record(Signal::Traces, count as u64, &result);
            // The spans are freed here, on this thread.
            self.batch.clear();
            self.queued.fetch_sub(count, Ordering::AcqRel);
        }
        let own = self.export_own(last_export);
        *last_export = Instant::now();
        if own.is_err() { own } else { result }
    }

    /// Exports guildscope's own spans waiting in the threads' buffers when called,
    /// in batches; the last batch's result.
    fn export_own(&mut self, last_export: &mut Instant) -> OTelSdkResult {
        self.own_bytes.clear();
        self.own.drain(&mut self.spares, &mut self.own_bytes);
        let mut result = Ok(());
        let mut at = 0;
        while at < self.own_bytes.len() {
            let (len, count) = cut(
                &self.own_bytes[at..],
                self.settings.max_export_batch_size,
                MAX_REQUEST_SPAN_BYTES,
            );
            *last_export = Instant::now();
            result = self.exporter.export_own(&self.own_bytes[at..at + len]);
            self.stats.record(Signal::Traces, count as u64, &result);
            at += len;
        }
        result
    }
}
