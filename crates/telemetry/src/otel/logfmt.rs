//! The log lines on stderr: the human-readable format from `tracing-subscriber`, or one
//! JSON object per line for log shippers, carrying the trace and span ids of the span the
//! event happened in so a log line leads to its trace.

use std::fmt::{self, Write as _};

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::config::LogFormat;

/// Keys the JSON format writes itself; an event field with one of these names is written
/// as `fields.<name>` instead.
const RESERVED: [&str; 7] = [
    "timestamp",
    "level",
    "target",
    "message",
    "span",
    "trace_id",
    "span_id",
];

/// Where and how the fmt layer writes.
pub(crate) struct Output {
    /// The destination: stderr in production, a buffer in tests.
    pub(crate) writer: BoxMakeWriter,
    /// Whether the destination is a terminal (colours, and `Auto` means pretty).
    pub(crate) terminal: bool,
}

/// Which ids a JSON line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceIds {
    /// Traces are exported: add `trace_id` and `span_id` of the current span.
    Include,
    /// No trace pipeline: there are no ids worth printing.
    Omit,
}

/// The fmt layer for `format` writing to `output`.
pub(crate) fn fmt_layer<S>(
    format: LogFormat,
    output: Output,
    trace_ids: TraceIds,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format.resolve(output.terminal) {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(output.writer)
            .with_ansi(false)
            .event_format(JsonFormat { trace_ids })
            .boxed(),
        LogFormat::Pretty | LogFormat::Auto => tracing_subscriber::fmt::layer()
            .with_writer(output.writer)
            .with_ansi(output.terminal)
            .boxed(),
    }
}

/// Formats an event as one JSON object on one line.
pub(crate) struct JsonFormat {
    pub(crate) trace_ids: TraceIds,
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;

        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);

        let mut line = String::with_capacity(256);
        line.push('{');
        push_entry(&mut line, "timestamp", &Value::String(timestamp))?;
        push_entry(&mut line, "level", &Value::from(meta.level().as_str()))?;
        push_entry(&mut line, "target", &Value::from(meta.target()))?;
        let message = visitor.message.take().unwrap_or_default();
        push_entry(&mut line, "message", &Value::String(message))?;
        for (name, value) in &visitor.fields {
            if RESERVED.contains(&name.as_str()) {
                push_entry(&mut line, &format!("fields.{name}"), value)?;
            } else {
                push_entry(&mut line, name, value)?;
            }
        }
        // The span the event happened in, then its ancestors.
        let mut scope = ctx.event_scope().into_iter().flatten();
        let span = scope.next();
        if let Some(span) = &span {
            push_entry(&mut line, "span", &Value::from(span.name()))?;
        }
        if self.trace_ids == TraceIds::Include {
            // Its ids, or its nearest traced ancestor's when it is not traced itself,
            // or those of guildscope's own span the event happened in.
            let traced = span
                .and_then(|span| {
                    super::layer::ids_of(&span)
                        .or_else(|| scope.find_map(|ancestor| super::layer::ids_of(&ancestor)))
                })
                .or_else(super::layer::own_ids);
            if let Some(ids) = traced {
                let trace_id = ids.trace_id.to_string();
                let span_id = ids.span_id.to_string();
                push_entry(&mut line, "trace_id", &Value::String(trace_id))?;
                push_entry(&mut line, "span_id", &Value::String(span_id))?;
            }
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// Appends `"key":value`, with a comma unless it is the first entry.
fn push_entry(line: &mut String, key: &str, value: &Value) -> fmt::Result {
    if !line.ends_with('{') {
        line.push(',');
    }
    let key = serde_json::to_string(key).map_err(|_| fmt::Error)?;
    let value = serde_json::to_string(value).map_err(|_| fmt::Error)?;
    line.push_str(&key);
    line.push(':');
    line.push_str(&value);
    Ok(())
}

/// Collects an event's message and fields as JSON values.
#[derive(Default)]
struct JsonVisitor {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(err) = source {
            // Writing to a String cannot fail.
            let _ = write!(text, ": {err}");
            source = err.source();
        }
        self.put(field, Value::String(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}
