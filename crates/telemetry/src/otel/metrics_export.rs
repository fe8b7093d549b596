//! The metrics exporter: a thread of its own sends the whole metrics registry to an
//! OTLP endpoint every interval, and once more when it stops, so a clean shutdown
//! exports the final totals. Counters are cumulative, so an export that fails loses
//! nothing: the next one carries the totals again. The hot path never sees it; it
//! reads the registry's atomics as a Prometheus scrape does.
//!
//! The thread holds the registry only while it reads it, never while it sends: a
//! collector that is slow to answer at shutdown cannot keep the registry (and the
//! StatsD handle inside it) alive after the process has let go of it.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use prost::Message as _;

use super::config::Signal;
use super::export::ExportStats;
use super::transport::OtlpClient;
use crate::metrics::Metrics;

/// The running exporter.
#[derive(Debug)]
pub(crate) struct MetricsExport {
    /// Asks the thread to export a last time and stop; it answers with the result.
    stop: SyncSender<SyncSender<OTelSdkResult>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsExport {
    /// Starts exporting `metrics` through `client` every `interval`.
    pub(crate) fn start(
        client: OtlpClient,
        resource: &Resource,
        metrics: &Arc<Metrics>,
        interval: Duration,
        stats: Arc<ExportStats>,
    ) -> std::io::Result<Self> {
        let (stop, orders) = sync_channel(1);
        let worker = Worker {
            client,
            resource: otlp_resource(resource),
            metrics: Arc::downgrade(metrics),
            stats,
        };
        let thread = std::thread::Builder::new()
            .name("guildscope-otlp-metrics".to_owned())
            .spawn(move || worker.run(&orders, interval))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Exports once more and stops, waiting at most `timeout` for that export.
    pub(crate) fn shutdown(mut self, timeout: Duration) -> OTelSdkResult {
        let (done, result) = sync_channel(1);
        self.stop
            .try_send(done)
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        let result = result
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        result
    }
}

struct Worker {
    client: OtlpClient,
    resource: OtlpResource,
    metrics: Weak<Metrics>,
    stats: Arc<ExportStats>,
}

impl Worker {
    fn run(self, orders: &Receiver<SyncSender<OTelSdkResult>>, interval: Duration) {
        loop {
            match orders.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {
                    // Failures are counted and logged by `export`.
                    let _ = self.export();
                }
                Ok(done) => {
                    let _ = done.send(self.export());
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn export(&self) -> OTelSdkResult {
        // Read, then let go before sending.
        let Some(metrics) = self.metrics.upgrade() else {
            return Err(OTelSdkError::InternalFailure(
                "the metrics registry is gone".to_owned(),
            ));
        };
        let read = metrics.otlp(SystemTime::now());
        drop(metrics);
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "guildscope".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    metrics: read,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let result = self.client.export_blocking(request.encode_to_vec());
        self.stats.record(Signal::Metrics, 1, &result);
        result
    }
}

/// The process's resource as OTLP's message.
fn otlp_resource(resource: &Resource) -> OtlpResource {
    OtlpResource {
        attributes: resource
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.as_str().to_owned(),
                value: Some(AnyValue {
                    value: Some(match value {
                        opentelemetry::Value::Bool(b) => any_value::Value::BoolValue(*b),
                        opentelemetry::Value::I64(i) => any_value::Value::IntValue(*i),
                        opentelemetry::Value::F64(f) => any_value::Value::DoubleValue(*f),
                        other => any_value::Value::StringValue(other.to_string()),
                    }),
                }),
                ..KeyValue::default()
            })
            .collect(),
        ..OtlpResource::default()
    }
}
