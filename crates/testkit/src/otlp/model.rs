//! What the receiver keeps of each export, flattened out of OTLP's
//! resource → scope → item nesting so that tests can assert on plain values,
//! and helpers to walk span trees.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

/// How an export reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    Http,
}

/// An attribute value. OTLP's scalar kinds map one to one; arrays, maps and
/// bytes are kept as a rendered string in [`AttrValue::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string value.
    Str(String),
    /// A 64-bit integer value.
    Int(i64),
    /// A floating-point value.
    Double(f64),
    /// A boolean value.
    Bool(bool),
    /// Anything else (array, key-value list, bytes, empty), rendered as text:
    /// arrays as `[a, b]`, maps as `{k: v}`, bytes as lowercase hex.
    Other(String),
}

impl AttrValue {
    /// The string, if this is [`AttrValue::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(value) => Some(value),
            _ => None,
        }
    }

    /// The integer, if this is [`AttrValue::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// The number, if this is [`AttrValue::Double`] or [`AttrValue::Int`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(value) => Some(*value),
            // Integers are exact up to 2^53, far beyond what tests compare.
            #[allow(clippy::cast_precision_loss)]
            Self::Int(value) => Some(*value as f64),
            _ => None,
        }
    }

    /// The boolean, if this is [`AttrValue::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(value) => Some(*value),
            _ => None,
        }
    }

    fn from_any(value: Option<&AnyValue>) -> Self {
        let Some(value) = value.and_then(|value| value.value.as_ref()) else {
            return Self::Other(String::new());
        };
        match value {
            any_value::Value::StringValue(text) => Self::Str(text.clone()),
            any_value::Value::BoolValue(flag) => Self::Bool(*flag),
            any_value::Value::IntValue(number) => Self::Int(*number),
            any_value::Value::DoubleValue(number) => Self::Double(*number),
            any_value::Value::ArrayValue(array) => {
                let items: Vec<String> = array
                    .values
                    .iter()
                    .map(|item| Self::from_any(Some(item)).to_string())
                    .collect();
                Self::Other(format!("[{}]", items.join(", ")))
            }
            any_value::Value::KvlistValue(list) => {
                let items: Vec<String> = list
                    .values
                    .iter()
                    .map(|kv| format!("{}: {}", kv.key, Self::from_any(kv.value.as_ref())))
                    .collect();
                Self::Other(format!("{{{}}}", items.join(", ")))
            }
            any_value::Value::BytesValue(bytes) => Self::Other(hex(bytes)),
            any_value::Value::StringValueStrindex(index) => {
                Self::Other(format!("strindex:{index}"))
            }
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(value) | Self::Other(value) => f.write_str(value),
            Self::Int(value) => write!(f, "{value}"),
            Self::Double(value) => write!(f, "{value}"),
            Self::Bool(value) => write!(f, "{value}"),
        }
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// No status was set.
    Unset,
    /// Explicitly ok.
    Ok,
    /// An error, with the status message.
    Error(String),
}

/// An event recorded on a span.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The event's name.
    pub name: String,
    /// The event's attributes.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One span as received, with its resource and scope folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The span's name.
    pub name: String,
    /// OTLP `SpanKind` (0 unspecified, 1 internal, 2 server, 3 client,
    /// 4 producer, 5 consumer).
    pub kind: i32,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// The span's attributes.
    pub attributes: BTreeMap<String, AttrValue>,
    /// The span's status.
    pub status: SpanStatus,
    /// Events recorded on the span, in order.
    pub events: Vec<ReceivedEvent>,
    /// Attributes of the resource that exported the span.
    pub resource: BTreeMap<String, AttrValue>,
    /// Name of the instrumentation scope.
    pub scope: String,
    /// How the span arrived.
    pub transport: Transport,
}

impl ReceivedSpan {
    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The attribute `key`, if present and a string.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    /// End minus start (zero if the end is before the start).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }
}

/// One log record as received, with its resource and scope folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedLog {
    /// The trace the record belongs to, 32 lowercase hex digits, if any.
    pub trace_id: Option<String>,
    /// The span the record belongs to, 16 lowercase hex digits, if any.
    pub span_id: Option<String>,
    /// Severity text (`INFO`, `ERROR`, ...).
    pub severity_text: String,
    /// OTLP severity number (9 is INFO, 17 ERROR).
    pub severity_number: i32,
    /// The body rendered as text (see [`AttrValue`]'s `Display`).
    pub body: String,
    /// The record's attributes.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Attributes of the resource that exported the record.
    pub resource: BTreeMap<String, AttrValue>,
    /// Name of the instrumentation scope.
    pub scope: String,
    /// The record's event name, empty when not set.
    pub event_name: String,
    /// How the record arrived.
    pub transport: Transport,
}

impl ReceivedLog {
    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }
}

/// What kind of data a metric carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge.
    Gauge,
    /// A sum (a counter when monotonic).
    Sum {
        /// Whether the sum only goes up.
        monotonic: bool,
    },
    /// An explicit-bucket histogram.
    Histogram,
    /// An exponential histogram.
    ExponentialHistogram,
    /// A summary.
    Summary,
    /// No data was set.
    Empty,
}

/// One data point of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The point's attributes (the metric's labels).
    pub attributes: BTreeMap<String, AttrValue>,
    /// The value of a gauge or sum point.
    pub value: Option<f64>,
    /// The count of a histogram or summary point.
    pub count: Option<u64>,
    /// The sum of a histogram or summary point, where sent.
    pub sum: Option<f64>,
}

/// One metric as received in one export.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMetric {
    /// The metric's name.
    pub name: String,
    /// The metric's description.
    pub description: String,
    /// The metric's unit.
    pub unit: String,
    /// What kind of data it carries.
    pub kind: MetricKind,
    /// Its data points.
    pub points: Vec<MetricPoint>,
    /// Attributes of the resource that exported the metric.
    pub resource: BTreeMap<String, AttrValue>,
    /// Name of the instrumentation scope.
    pub scope: String,
    /// How the metric arrived.
    pub transport: Transport,
}

/// The spans in `spans` whose parent is `parent`, by start time.
pub fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    let mut found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| {
            span.trace_id == parent.trace_id
                && span.parent_span_id.as_deref() == Some(parent.span_id.as_str())
        })
        .collect();
    found.sort_by_key(|span| span.start_unix_nanos);
    found
}

/// The spans in `spans` that have no parent, or whose parent is not in
/// `spans` (so that a partial export still shows every span), by start time.
pub fn roots(spans: &[ReceivedSpan]) -> Vec<&ReceivedSpan> {
    let present: BTreeSet<(&str, &str)> = spans
        .iter()
        .map(|span| (span.trace_id.as_str(), span.span_id.as_str()))
        .collect();
    let mut found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| match &span.parent_span_id {
            None => true,
            Some(parent) => !present.contains(&(span.trace_id.as_str(), parent.as_str())),
        })
        .collect();
    found.sort_by_key(|span| span.start_unix_nanos);
    found
}

/// The spans in `spans` named `name`, in the order received.
pub fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|span| span.name == name).collect()
}

/// An indented tree of span names with their attributes and error status,
/// one span a line, children two spaces in; for assertion messages.
pub fn render_tree(spans: &[ReceivedSpan]) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for root in roots(spans) {
        render_span(spans, root, 0, &mut seen, &mut out);
    }
    // Spans caught in a parent cycle are reachable from no root; list them
    // rather than hide them.
    for span in spans {
        if !seen.contains(&(span.trace_id.as_str(), span.span_id.as_str())) {
            render_span(spans, span, 0, &mut seen, &mut out);
        }
    }
    out
}

fn render_span<'a>(
    spans: &'a [ReceivedSpan],
    span: &'a ReceivedSpan,
    depth: usize,
    seen: &mut BTreeSet<(&'a str, &'a str)>,
    out: &mut String,
) {
    if !seen.insert((span.trace_id.as_str(), span.span_id.as_str())) {
        return;
    }
    let _ = write!(out, "{:indent$}{}", "", span.name, indent = depth * 2);
    if !span.attributes.is_empty() {
        let attributes: Vec<String> = span
            .attributes
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let _ = write!(out, " {{{}}}", attributes.join(", "));
    }
    if let SpanStatus::Error(message) = &span.status {
        let _ = write!(out, " !error({message})");
    }
    out.push('\n');
    for child in children(spans, span) {
        render_span(spans, child, depth + 1, seen, out);
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn non_empty_hex(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| hex(bytes))
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    list.iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_any(kv.value.as_ref())))
        .collect()
}

fn resource_attributes(resource: Option<&Resource>) -> BTreeMap<String, AttrValue> {
    resource
        .map(|resource| attributes(&resource.attributes))
        .unwrap_or_default()
}

fn scope_name(scope: Option<&InstrumentationScope>) -> String {
    scope.map(|scope| scope.name.clone()).unwrap_or_default()
}

/// Flattens a trace export into spans.
pub(crate) fn spans_of(
    request: &ExportTraceServiceRequest,
    transport: Transport,
) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_attributes(resource_spans.resource.as_ref());
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_name(scope_spans.scope.as_ref());
            for span in &scope_spans.spans {
                let status = match &span.status {
                    Some(status) if status.code == StatusCode::Error as i32 => {
                        SpanStatus::Error(status.message.clone())
                    }
                    Some(status) if status.code == StatusCode::Ok as i32 => SpanStatus::Ok,
                    _ => SpanStatus::Unset,
                };
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: non_empty_hex(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: span.kind,
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                    attributes: attributes(&span.attributes),
                    status,
                    events: span
                        .events
                        .iter()
                        .map(|event| ReceivedEvent {
                            name: event.name.clone(),
                            attributes: attributes(&event.attributes),
                        })
                        .collect(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    transport,
                });
            }
        }
    }
    out
}

/// Flattens a logs export into records.
pub(crate) fn logs_of(
    request: &ExportLogsServiceRequest,
    transport: Transport,
) -> Vec<ReceivedLog> {
    let mut out = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource = resource_attributes(resource_logs.resource.as_ref());
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_name(scope_logs.scope.as_ref());
            for record in &scope_logs.log_records {
                out.push(ReceivedLog {
                    trace_id: non_empty_hex(&record.trace_id),
                    span_id: non_empty_hex(&record.span_id),
                    severity_text: record.severity_text.clone(),
                    severity_number: record.severity_number,
                    body: AttrValue::from_any(record.body.as_ref()).to_string(),
                    attributes: attributes(&record.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    event_name: record.event_name.clone(),
                    transport,
                });
            }
        }
    }
    out
}

fn number_value(value: Option<&number_data_point::Value>) -> Option<f64> {
    match value? {
        number_data_point::Value::AsDouble(number) => Some(*number),
        // See `AttrValue::as_f64`.
        #[allow(clippy::cast_precision_loss)]
        number_data_point::Value::AsInt(number) => Some(*number as f64),
    }
}

/// Flattens a metrics export into metrics.
pub(crate) fn metrics_of(
    request: &ExportMetricsServiceRequest,
    transport: Transport,
) -> Vec<ReceivedMetric> {
    let mut out = Vec::new();
    for resource_metrics in &request.resource_metrics {
        let resource = resource_attributes(resource_metrics.resource.as_ref());
        for scope_metrics in &resource_metrics.scope_metrics {
            let scope = scope_name(scope_metrics.scope.as_ref());
            for metric in &scope_metrics.metrics {
                let numbers =
                    |points: &[opentelemetry_proto::tonic::metrics::v1::NumberDataPoint]| {
                        points
                            .iter()
                            .map(|point| MetricPoint {
                                attributes: attributes(&point.attributes),
                                value: number_value(point.value.as_ref()),
                                count: None,
                                sum: None,
                            })
                            .collect()
                    };
                let (kind, points) = match &metric.data {
                    Some(metric::Data::Gauge(gauge)) => {
                        (MetricKind::Gauge, numbers(&gauge.data_points))
                    }
                    Some(metric::Data::Sum(sum)) => (
                        MetricKind::Sum {
                            monotonic: sum.is_monotonic,
                        },
                        numbers(&sum.data_points),
                    ),
                    Some(metric::Data::Histogram(histogram)) => (
                        MetricKind::Histogram,
                        histogram
                            .data_points
                            .iter()
                            .map(|point| MetricPoint {
                                attributes: attributes(&point.attributes),
                                value: None,
                                count: Some(point.count),
                                sum: point.sum,
                            })
                            .collect(),
                    ),
                    Some(metric::Data::ExponentialHistogram(histogram)) => (
                        MetricKind::ExponentialHistogram,
                        histogram
                            .data_points
                            .iter()
                            .map(|point| MetricPoint {
                                attributes: attributes(&point.attributes),
                                value: None,
                                count: Some(point.count),
                                sum: point.sum,
                            })
                            .collect(),
                    ),
                    Some(metric::Data::Summary(summary)) => (
                        MetricKind::Summary,
                        summary
                            .data_points
                            .iter()
                            .map(|point| MetricPoint {
                                attributes: attributes(&point.attributes),
                                value: None,
                                count: Some(point.count),
                                sum: Some(point.sum),
                            })
                            .collect(),
                    ),
                    None => (MetricKind::Empty, Vec::new()),
                };
                out.push(ReceivedMetric {
                    name: metric.name.clone(),
                    description: metric.description.clone(),
                    unit: metric.unit.clone(),
                    kind,
                    points,
                    resource: resource.clone(),
                    scope: scope.clone(),
                    transport,
                });
            }
        }
    }
    out
}
