//! A standard OTLP receiver: what an OpenTelemetry collector looks like to an
//! exporter, over gRPC and over HTTP with protobuf bodies, keeping what it
//! receives for tests to read.
//!
//! Both transports accept traces, logs and metrics and answer as a collector
//! does: gRPC `OK` with an empty `Export*ServiceResponse`, HTTP 200 with the
//! same response protobuf-encoded. A body that does not decode is answered
//! with HTTP 400 or gRPC `INVALID_ARGUMENT` and counted as rejected. HTTP
//! bodies may be gzip- or deflate-compressed; OTLP/JSON bodies are answered
//! with 415. [`OtlpReceiver::set_unavailable`] simulates a collector outage.

mod grpc;
mod http;
mod model;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::server::{ServerTask, lock, poll_until};

pub use model::{
    AttrValue, MetricKind, MetricPoint, ReceivedEvent, ReceivedLog, ReceivedMetric, ReceivedSpan,
    SpanStatus, Transport, by_name, children, render_tree, roots,
};

/// How many export requests the receiver has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounts {
    /// Exports accepted over gRPC.
    pub grpc: u64,
    /// Exports accepted over HTTP.
    pub http: u64,
    /// Exports refused because their body did not decode (or, over HTTP, had
    /// a content type or encoding the receiver does not take).
    pub rejected: u64,
}

/// The signal an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Logs,
    Metrics,
}

/// Why an export was not accepted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The receiver is in its outage mode.
    Unavailable,
    /// The body is not a valid export request.
    Malformed(prost::DecodeError),
}

/// State shared by both servers and the handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    spans: Mutex<Vec<ReceivedSpan>>,
    logs: Mutex<Vec<ReceivedLog>>,
    metrics: Mutex<Vec<ReceivedMetric>>,
    grpc: AtomicU64,
    http: AtomicU64,
    rejected: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicBool,
}

impl Shared {
    /// Decodes and records one export; on success returns the encoded empty
    /// response for the signal.
    pub(crate) fn accept(
        &self,
        signal: Signal,
        body: &[u8],
        transport: Transport,
    ) -> Result<Vec<u8>, Refusal> {
        if self.unavailable.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Refusal::Unavailable);
        }
        let response = match signal {
            Signal::Traces => {
                let request = self.decode::<ExportTraceServiceRequest>(body)?;
                lock(&self.spans).extend(model::spans_of(&request, transport));
                ExportTraceServiceResponse::default().encode_to_vec()
            }
            Signal::Logs => {
                let request = self.decode::<ExportLogsServiceRequest>(body)?;
                lock(&self.logs).extend(model::logs_of(&request, transport));
                ExportLogsServiceResponse::default().encode_to_vec()
            }
            Signal::Metrics => {
                let request = self.decode::<ExportMetricsServiceRequest>(body)?;
                lock(&self.metrics).extend(model::metrics_of(&request, transport));
                ExportMetricsServiceResponse::default().encode_to_vec()
            }
        };
        let counter = match transport {
            Transport::Grpc => &self.grpc,
            Transport::Http => &self.http,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(response)
    }

    fn decode<M: Message + Default>(&self, body: &[u8]) -> Result<M, Refusal> {
        M::decode(body).map_err(|error| {
            self.reject();
            Refusal::Malformed(error)
        })
    }

    /// Counts a request refused for its body.
    pub(crate) fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the outage mode is on; counts the request as refused if so.
    pub(crate) fn refuse_if_unavailable(&self) -> bool {
        let unavailable = self.unavailable.load(Ordering::SeqCst);
        if unavailable {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        unavailable
    }
}

/// An OTLP receiver listening for gRPC and HTTP on two loopback ports. It
/// serves on the tokio runtime it was started on and stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    shared: std::sync::Arc<Shared>,
    grpc: ServerTask,
    http: ServerTask,
}

impl OtlpReceiver {
    /// Binds `127.0.0.1:0` twice and starts the gRPC and HTTP servers.
    pub async fn start() -> std::io::Result<Self> {
        let shared = std::sync::Arc::new(Shared::default());
        let grpc = grpc::start(shared.clone()).await?;
        let http = ServerTask::axum(http::router(shared.clone())).await?;
        Ok(Self { shared, grpc, http })
    }

    /// The gRPC endpoint, `http://127.0.0.1:PORT`.
    pub fn grpc_endpoint(&self) -> String {
        self.grpc.base_url()
    }

    /// The HTTP base URL, `http://127.0.0.1:PORT`; exporters append
    /// `/v1/traces`, `/v1/logs` or `/v1/metrics`.
    pub fn http_endpoint(&self) -> String {
        self.http.base_url()
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        lock(&self.shared.spans).clone()
    }

    /// Every log record received so far, in arrival order.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        lock(&self.shared.logs).clone()
    }

    /// Every metric received so far, one entry per metric per export, in
    /// arrival order.
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        lock(&self.shared.metrics).clone()
    }

    /// The names of every metric received so far, sorted, each once.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.shared.metrics)
            .iter()
            .map(|metric| metric.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// How many exports were accepted per transport, and how many rejected.
    pub fn export_requests(&self) -> ExportCounts {
        ExportCounts {
            grpc: self.shared.grpc.load(Ordering::SeqCst),
            http: self.shared.http.load(Ordering::SeqCst),
            rejected: self.shared.rejected.load(Ordering::SeqCst),
        }
    }

    /// How many exports were refused while the receiver was unavailable.
    pub fn refused_while_unavailable(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// While `on`, answers gRPC `UNAVAILABLE` and HTTP 503 and records
    /// nothing, as during a collector outage.
    pub fn set_unavailable(&self, on: bool) {
        self.shared.unavailable.store(on, Ordering::SeqCst);
    }

    /// Polls until `what` holds for the spans received, and returns them.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first; the message lists the span tree received
    /// so far.
    pub async fn wait_for_spans(
        &self,
        what: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        let found = poll_until(timeout, || {
            let spans = self.spans();
            what(&spans).then_some(spans)
        })
        .await;
        match found {
            Some(spans) => spans,
            None => {
                let spans = self.spans();
                panic!(
                    "the expected spans did not arrive within {timeout:?}; received {} span(s):\n{}",
                    spans.len(),
                    render_tree(&spans)
                )
            }
        }
    }

    /// Polls until `what` holds for the log records received, and returns
    /// them.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first; the message lists the records received
    /// so far (severity and body).
    pub async fn wait_for_logs(
        &self,
        what: impl Fn(&[ReceivedLog]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedLog> {
        let found = poll_until(timeout, || {
            let logs = self.logs();
            what(&logs).then_some(logs)
        })
        .await;
        match found {
            Some(logs) => logs,
            None => {
                let logs = self.logs();
                let lines: Vec<String> = logs
                    .iter()
                    .map(|log| format!("  {} {}", log.severity_text, log.body))
                    .collect();
                panic!(
                    "the expected log records did not arrive within {timeout:?}; received {}:\n{}",
                    logs.len(),
                    lines.join("\n")
                )
            }
        }
    }

    /// Polls until `what` holds for the metrics received, and returns them.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first; the message lists the metric names
    /// received so far.
    pub async fn wait_for_metrics(
        &self,
        what: impl Fn(&[ReceivedMetric]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedMetric> {
        let found = poll_until(timeout, || {
            let metrics = self.metrics();
            what(&metrics).then_some(metrics)
        })
        .await;
        match found {
            Some(metrics) => metrics,
            None => panic!(
                "the expected metrics did not arrive within {timeout:?}; received: {:?}",
                self.metric_names()
            ),
        }
    }

    /// Stops both servers and waits until they have stopped.
    pub async fn shutdown(self) {
        let Self { grpc, http, .. } = self;
        tokio::join!(grpc.shutdown(), http.shutdown());
    }
}
