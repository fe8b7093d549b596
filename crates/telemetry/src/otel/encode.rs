//! OTLP trace requests encoded straight from span data: the protobuf bytes of an
//! `ExportTraceServiceRequest`, written into one buffer without building the
//! intermediate message structs (and their thousands of small strings) first.
//!
//! The output is exactly what the OpenTelemetry SDK's OTLP exporter sends for the same
//! spans: one `ResourceSpans` for the process's resource, one `ScopeSpans` per
//! instrumentation scope in order of first appearance, fields in tag order, default
//! values left out. A unit test compares the bytes with `opentelemetry-proto`'s own
//! conversion and `prost` encoding.
//!
//! Spans from the span layer ([`TracedSpan`]) carry their attributes and events encoded
//! already: the layer writes each attribute's `KeyValue` message into the span's
//! buffer as it is recorded, so a recorded value is never held as a string of its
//! own, and exporting the span copies those bytes into the request. guildscope's own
//! spans ([`guildscope_trace::Record`]) are encoded whole as they end
//! ([`own_span`](super::own::own_span)), on the thread that ran them, and a request is
//! built around those bytes ([`own_request`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use tracing::Metadata;

use super::batch::Finished;
use crate::decimal::decimal;

/// The SDK's default span limits: attributes, events and links per span, attributes
/// per event. What is over is dropped and counted.
pub(crate) const MAX_ATTRIBUTES: u32 = 128;
pub(crate) const MAX_EVENTS: u32 = 128;
pub(crate) const MAX_LINKS: usize = 128;

/// Protobuf wire types.
pub(super) const VARINT: u32 = 0;
pub(super) const FIXED64: u32 = 1;
pub(super) const LEN: u32 = 2;
pub(super) const FIXED32: u32 = 5;

/// `SpanFlags`: the flags field says whether the parent is remote.
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// The process's resource, encoded once: the body of the `Resource` message and the
/// resource's schema URL.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedResource {
    body: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut body = Vec::new();
        for (key, value) in resource.iter() {
            key_value(&mut body, 1, key.as_str(), value);
        }
        Self {
            body,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// Appends the `ExportTraceServiceRequest` for `spans` to `out`; spans from the span
/// layer belong to `traced_scope`.
pub(crate) fn trace_request(
    resource: &EncodedResource,
    traced_scope: &InstrumentationScope,
    locations: &mut Locations,
    spans: &[Finished],
    out: &mut Vec<u8>,
) {
    fn scope_of<'a>(
        span: &'a Finished,
        traced: &'a InstrumentationScope,
    ) -> &'a InstrumentationScope {
        match span {
            Finished::Traced(_) => traced,
            Finished::Sdk(data) => &data.instrumentation_scope,
        }
    }
    // Scopes in order of first appearance, compared by value as the SDK's exporter
    // groups them; a batch rarely has more than one.
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    for span in spans {
        let scope = scope_of(span, traced_scope);
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let mut scratch = Vec::new();
    message(out, 1, |out| {
        message(out, 1, |out| {
            out.extend_from_slice(&resource.body);
        });
        for scope in &scopes {
            message(out, 2, |out| {
                message(out, 1, |out| instrumentation_scope(out, scope));
                for span in spans.iter().filter(|s| scope_of(s, traced_scope) == *scope) {
                    match span {
                        Finished::Traced(span) => traced_span(out, span, locations, &mut scratch),
                        Finished::Sdk(data) => message(out, 2, |out| span_body(out, data)),
                    }
                }
                if let Some(schema_url) = scope.schema_url() {
                    string(out, 3, schema_url);
                }
            });
        }
        string(out, 3, &resource.schema_url);
    });
}

/// Appends the `ExportTraceServiceRequest` for guildscope's own spans, `spans` being
/// their `Span` messages as [`own_span`](super::own::own_span) wrote them, all of
/// `scope`.
pub(crate) fn own_request(
    resource: &EncodedResource,
    scope: &InstrumentationScope,
    spans: &[u8],
    out: &mut Vec<u8>,
) {
    // Every length is known before anything is written, so the spans (most of the
    // request) are copied once, into place.
    let mut scope_body = Vec::new();
    instrumentation_scope(&mut scope_body, scope);
    let scope_schema = scope.schema_url().unwrap_or_default();
    let scope_spans = nested_len(scope_body.len()) + spans.len() + string_len(scope_schema);
    let resource_spans = nested_len(resource.body.len())
        + nested_len(scope_spans)
        + string_len(&resource.schema_url);
    out.reserve(nested_len(resource_spans));
    tag(out, 1, LEN);
    varint(out, resource_spans as u64);
    tag(out, 1, LEN);
    varint(out, resource.body.len() as u64);
    out.extend_from_slice(&resource.body);
    tag(out, 2, LEN);
    varint(out, scope_spans as u64);
    tag(out, 1, LEN);
    varint(out, scope_body.len() as u64);
    out.extend_from_slice(&scope_body);
    out.extend_from_slice(spans);
    string(out, 3, scope_schema);
    string(out, 3, &resource.schema_url);
}

/// Where the length-delimited field starting at `at` ends, reading its tag and its
/// length; `None` when `bytes` do not hold a whole one.
pub(crate) fn field_end(bytes: &[u8], at: usize) -> Option<usize> {
    fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    let mut at = at;
    read_varint(bytes, &mut at)?;
    let len = usize::try_from(read_varint(bytes, &mut at)?).ok()?;
    let end = at.checked_add(len)?;
    (end <= bytes.len()).then_some(end)
}

/// Appends the `ExportTraceServiceRequest` for SDK span data alone.
#[cfg(test)]
fn sdk_request(resource: &EncodedResource, spans: &[SpanData], out: &mut Vec<u8>) {
    let spans: Vec<Finished> = spans
        .iter()
        .map(|span| Finished::Sdk(Box::new(span.clone())))
        .collect();
    let unused = InstrumentationScope::builder("").build();
    trace_request(resource, &unused, &mut Locations::default(), &spans, out);
}

/// A span from the span layer, finished, with its attributes and events encoded.
#[derive(Debug)]
pub(crate) struct TracedSpan {
    /// Its callsite: the location attributes (`code.file.path`, `code.module.name`,
    /// `code.line.number`) and `target` that come first are encoded from it, once per
    /// callsite, when the span is exported.
    pub(crate) callsite: &'static Metadata<'static>,
    pub(crate) context: SpanContext,
    pub(crate) parent_span_id: SpanId,
    pub(crate) parent_is_remote: bool,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attributes: Attributes,
    pub(crate) events: Events,
    pub(crate) links: Vec<Link>,
    pub(crate) status: Status,
}

/// A span's attributes as encoded `KeyValue` messages (field 9 of `Span`), at most
/// [`MAX_ATTRIBUTES`], and how many more were dropped.
#[derive(Debug, Default)]
pub(crate) struct Attributes {
    bytes: Vec<u8>,
    count: u32,
    dropped: u32,
}

impl Attributes {
    /// The attributes of a span from `callsite`, whose location attributes count
    /// already (they are written on export); room for `bytes` without growing.
    pub(crate) fn for_span(callsite: &Metadata<'_>, bytes: usize) -> Self {
        let location = u32::from(callsite.file().is_some())
            + u32::from(callsite.module_path().is_some())
            + u32::from(callsite.line().is_some())
            + 1;
        Self {
            bytes: Vec::with_capacity(bytes),
            count: location,
            dropped: 0,
        }
    }

    /// Whether one more fits; counts it as dropped when not.
    fn room(&mut self) -> bool {
        if self.count < MAX_ATTRIBUTES {
            self.count += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    pub(crate) fn push(&mut self, key: &str, value: &Value) {
        if self.room() {
            key_value(&mut self.bytes, 9, key, value);
        }
    }

    pub(crate) fn push_str(&mut self, key: &str, value: &str) {
        if self.room() {
            string_key_value(&mut self.bytes, 9, key, value);
        }
    }

    pub(crate) fn push_i64(&mut self, key: &str, value: i64) {
        self.push(key, &Value::I64(value));
    }

    pub(crate) fn push_f64(&mut self, key: &str, value: f64) {
        self.push(key, &Value::F64(value));
    }

    pub(crate) fn push_bool(&mut self, key: &str, value: bool) {
        self.push(key, &Value::Bool(value));
    }

    /// A string attribute whose value is `value`'s `Debug` text.
    pub(crate) fn push_debug(&mut self, key: &str, value: &dyn fmt::Debug) {
        if self.room() {
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                scratch.clear();
                // Writing to a String cannot fail; a Debug impl that errs leaves what
                // it wrote.
                let _ = write!(scratch, "{value:?}");
                string_key_value(&mut self.bytes, 9, key, &scratch);
            });
        }
    }

    /// A string attribute whose value is `value` in decimal: what `Debug` prints
    /// for an unsigned integer, without the formatting machinery.
    pub(crate) fn push_u64_text(&mut self, key: &str, value: u64) {
        if self.room() {
            text_key_value(&mut self.bytes, 9, key, decimal(value, &mut [0; 20]));
        }
    }
}

/// A span's events as encoded `Event` messages (field 11 of `Span`), at most
/// [`MAX_EVENTS`], and how many more were dropped.
#[derive(Debug, Default)]
pub(crate) struct Events {
    bytes: Vec<u8>,
    count: u32,
    dropped: u32,
}

impl Events {
    pub(crate) fn push(&mut self, event: &Event) {
        if self.count >= MAX_EVENTS {
            self.dropped += 1;
            return;
        }
        self.count += 1;
        let kept = event.attributes.len().min(MAX_ATTRIBUTES as usize);
        message(&mut self.bytes, 11, |out| {
            fixed64(out, 1, nanos(event.timestamp));
            string(out, 2, &event.name);
            for attribute in &event.attributes[..kept] {
                key_value(out, 3, attribute.key.as_str(), &attribute.value);
            }
            uint(
                out,
                4,
                (event.attributes.len() - kept) as u64 + u64::from(event.dropped_attributes_count),
            );
        });
    }
}

thread_local! {
    /// Where a value's `Debug` text is formatted before it is encoded.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The encoded location attributes and target of each callsite seen, by the address
/// of its metadata (callsite metadata is static).
#[derive(Debug, Default)]
pub(crate) struct Locations(HashMap<usize, Vec<u8>>);

impl Locations {
    fn of(&mut self, callsite: &'static Metadata<'static>) -> &[u8] {
        let key = std::ptr::from_ref(callsite) as usize;
        self.0.entry(key).or_insert_with(|| {
            let mut bytes = Vec::new();
            if let Some(file) = callsite.file() {
                string_key_value(&mut bytes, 9, "code.file.path", file);
            }
            if let Some(module) = callsite.module_path() {
                string_key_value(&mut bytes, 9, "code.module.name", module);
            }
            if let Some(line) = callsite.line() {
                key_value(
                    &mut bytes,
                    9,
                    "code.line.number",
                    &Value::I64(i64::from(line)),
                );
            }
            string_key_value(&mut bytes, 9, "target", callsite.target());
            bytes
        })
    }
}

/// A [`TracedSpan`] as field 2 of `ScopeSpans`, its length computed from its parts.
fn traced_span(
    out: &mut Vec<u8>,
    span: &TracedSpan,
    locations: &mut Locations,
    scratch: &mut Vec<u8>,
) {
    let location = locations.of(span.callsite);
    let context = &span.context;
    scratch.clear();
    // Fields 1 to 8, before the attributes (9).
    bytes(scratch, 1, &context.trace_id().to_bytes());
    bytes(scratch, 2, &context.span_id().to_bytes());
    trace_state(scratch, 3, context);
    if span.parent_span_id != SpanId::INVALID {
        bytes(scratch, 4, &span.parent_span_id.to_bytes());
    }
    string(scratch, 5, &span.name);
    uint(scratch, 6, span_kind(&span.kind));
    fixed64(scratch, 7, nanos(span.start));
    fixed64(scratch, 8, nanos(span.end));
    let head = scratch.len();
    // Field 10, between the attributes and the events (11).
    uint(scratch, 10, u64::from(span.attributes.dropped));
    let middle = scratch.len();
    // Fields 12 to 16, after the events.
    uint(scratch, 12, u64::from(span.events.dropped));
    let kept = span.links.len().min(MAX_LINKS);
    for link in &span.links[..kept] {
        message(scratch, 13, |out| link_body(out, link));
    }
    uint(scratch, 14, (span.links.len() - kept) as u64);
    message(scratch, 15, |out| status_body(out, &span.status));
    fixed32(
        scratch,
        16,
        flags(span.parent_is_remote, context.trace_flags().to_u8()),
    );
    let len =
        scratch.len() + location.len() + span.attributes.bytes.len() + span.events.bytes.len();
    tag(out, 2, LEN);
    varint(out, len as u64);
    out.extend_from_slice(&scratch[..head]);
    out.extend_from_slice(location);
    out.extend_from_slice(&span.attributes.bytes);
    out.extend_from_slice(&scratch[head..middle]);
    out.extend_from_slice(&span.events.bytes);
    out.extend_from_slice(&scratch[middle..]);
}

fn instrumentation_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(out, 1, scope.name());
    string(out, 2, scope.version().unwrap_or_default());
    for attribute in scope.attributes() {
        key_value(out, 3, attribute.key.as_str(), &attribute.value);
    }
}

fn span_body(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    trace_state(out, 3, context);
    if span.parent_span_id != SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    string(out, 5, &span.name);
    uint(out, 6, span_kind(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    for attribute in &span.attributes {
        key_value(out, 9, attribute.key.as_str(), &attribute.value);
    }
    uint(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        message(out, 11, |out| event_body(out, event));
    }
    uint(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        message(out, 13, |out| link_body(out, link));
    }
    uint(out, 14, u64::from(span.links.dropped_count));
    message(out, 15, |out| status_body(out, &span.status));
    fixed32(
        out,
        16,
        flags(span.parent_span_is_remote, context.trace_flags().to_u8()),
    );
}

fn event_body(out: &mut Vec<u8>, event: &Event) {
    fixed64(out, 1, nanos(event.timestamp));
    string(out, 2, &event.name);
    for attribute in &event.attributes {
        key_value(out, 3, attribute.key.as_str(), &attribute.value);
    }
    uint(out, 4, u64::from(event.dropped_attributes_count));
}

fn link_body(out: &mut Vec<u8>, link: &Link) {
    let context = &link.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    trace_state(out, 3, context);
    for attribute in &link.attributes {
        key_value(out, 4, attribute.key.as_str(), &attribute.value);
    }
    uint(out, 5, u64::from(link.dropped_attributes_count));
    fixed32(
        out,
        6,
        flags(context.is_remote(), context.trace_flags().to_u8()),
    );
}

fn status_body(out: &mut Vec<u8>, status: &Status) {
    let code = match status {
        Status::Unset => 0,
        Status::Error { description } => {
            string(out, 2, description);
            2
        }
        Status::Ok => 1,
    };
    uint(out, 3, code);
}

fn trace_state(out: &mut Vec<u8>, field: u32, context: &SpanContext) {
    let state = context.trace_state();
    if *state != opentelemetry::trace::TraceState::NONE {
        string(out, field, &state.header());
    }
}

/// `SpanFlags` as the OTLP exporter sets them: the W3C trace flags, and whether the
/// parent is remote.
pub(super) fn flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    let mut flags = u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE;
    if parent_is_remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

pub(super) fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// A `KeyValue` message as field `field`. Its length is computed rather than
/// back-filled: attributes are the most numerous messages by far.
#[inline]
pub(super) fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let value_len = any_value_len(value);
    let mut len = 0;
    if !key.is_empty() {
        len += 1 + varint_len(key.len() as u64) + key.len();
    }
    len += 1 + varint_len(value_len as u64) + value_len;
    tag(out, field, LEN);
    varint(out, len as u64);
    string(out, 1, key);
    tag(out, 2, LEN);
    varint(out, value_len as u64);
    any_value_body(out, value);
}

/// A `KeyValue` message whose `AnyValue` is `value`: a scalar's tag and bytes, at
/// most eleven of them.
pub(super) fn scalar_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &[u8]) {
    tag(out, field, LEN);
    varint(out, (string_len(key) + 2 + value.len()) as u64);
    string(out, 1, key);
    out.extend_from_slice(&[0x12, value.len() as u8]);
    out.extend_from_slice(value);
}

/// A `KeyValue` message with a string value.
fn string_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    text_key_value(out, field, key, value.as_bytes());
}

/// A `KeyValue` message with a string value given as its UTF-8 bytes.
#[inline]
pub(super) fn text_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &[u8]) {
    // Most attributes (a dotted key, a snowflake or a short name) take one byte for
    // every tag and length: the bytes around the key and the value are then fixed
    // but for the lengths, and go in four at a time.
    let short = key.len() + value.len() + 6;
    if field < 16 && !key.is_empty() && short < 0x80 {
        let tag = (field << 3 | LEN) as u8;
        out.extend_from_slice(&[tag, short as u8, 0x0a, key.len() as u8]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&[0x12, value.len() as u8 + 2, 0x0a, value.len() as u8]);
        out.extend_from_slice(value);
        return;
    }
    let value_len = 1 + varint_len(value.len() as u64) + value.len();
    let mut len = 1 + varint_len(value_len as u64) + value_len;
    if !key.is_empty() {
        len += 1 + varint_len(key.len() as u64) + key.len();
    }
    tag(out, field, LEN);
    varint(out, len as u64);
    string(out, 1, key);
    tag(out, 2, LEN);
    varint(out, value_len as u64);
    tag(out, 1, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// The length of an `AnyValue` message's body.
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => 2,
        Value::I64(v) => 1 + varint_len(*v as u64),
        Value::F64(_) => 9,
        Value::String(s) => 1 + varint_len(s.as_str().len() as u64) + s.as_str().len(),
        Value::Array(array) => {
            let len = array_len(array);
            1 + varint_len(len as u64) + len
        }
        // New value kinds have no OTLP mapping yet: an empty AnyValue.
        _ => 0,
    }
}

/// The length of an `ArrayValue` message's body.
fn array_len(array: &Array) -> usize {
    fn element(len: usize) -> usize {
        1 + varint_len(len as u64) + len
    }
    match array {
        Array::Bool(values) => values.len() * element(2),
        Array::I64(values) => values
            .iter()
            .map(|v| element(1 + varint_len(*v as u64)))
            .sum(),
        Array::F64(values) => values.len() * element(9),
        Array::String(values) => values
            .iter()
            .map(|v| element(1 + varint_len(v.as_str().len() as u64) + v.as_str().len()))
            .sum(),
        _ => 0,
    }
}

#[inline]
fn any_value_body(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(v) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(*v));
        }
        Value::I64(v) => {
            tag(out, 3, VARINT);
            varint(out, *v as u64);
        }
        Value::F64(v) => {
            tag(out, 4, FIXED64);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        Value::String(s) => {
            tag(out, 1, LEN);
            varint(out, s.as_str().len() as u64);
            out.extend_from_slice(s.as_str().as_bytes());
        }
        Value::Array(array) => {
            tag(out, 5, LEN);
            varint(out, array_len(array) as u64);
            array_body(out, array);
        }
        _ => {}
    }
}

fn array_body(out: &mut Vec<u8>, array: &Array) {
    // Each element is an AnyValue message (field 1 of ArrayValue).
    match array {
        Array::Bool(values) => {
            for v in values {
                element(out, &Value::Bool(*v));
            }
        }
        Array::I64(values) => {
            for v in values {
                element(out, &Value::I64(*v));
            }
        }
        Array::F64(values) => {
            for v in values {
                element(out, &Value::F64(*v));
            }
        }
        Array::String(values) => {
            for v in values {
                tag(out, 1, LEN);
                let len = v.as_str().len();
                varint(out, (1 + varint_len(len as u64) + len) as u64);
                tag(out, 1, LEN);
                varint(out, len as u64);
                out.extend_from_slice(v.as_str().as_bytes());
            }
        }
        _ => {}
    }
}

fn element(out: &mut Vec<u8>, value: &Value) {
    tag(out, 1, LEN);
    varint(out, any_value_len(value) as u64);
    any_value_body(out, value);
}

/// A nested message as field `field`, its body written by `body`.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let at = open(out, field);
    body(out);
    close(out, at);
}

/// Bytes [`open`] leaves for a length.
const OPEN_ROOM: usize = 2;

/// Starts a nested message as field `field` whose length is not known yet: its tag,
/// then room for a two-byte length, which most spans take (128 to 16,383 bytes).
/// Returns where that room is, for [`close`].
#[inline]
pub(super) fn open(out: &mut Vec<u8>, field: u32) -> usize {
    tag(out, field, LEN);
    let at = out.len();
    out.extend_from_slice(&[0; OPEN_ROOM]);
    at
}

/// Ends the message [`open`]ed at `at`, its body being everything after the room:
/// writes the body's length there, and moves the body when the length takes other
/// than two bytes, so the bytes are the shortest encoding, as `prost` writes it.
#[inline]
pub(super) fn close(out: &mut Vec<u8>, at: usize) {
    let len = out.len() - at - OPEN_ROOM;
    if (0x80..0x4000).contains(&len) {
        out[at] = len as u8 | 0x80;
        out[at + 1] = (len >> 7) as u8;
        return;
    }
    let mut prefix = [0; 10];
    let used = varint_into(&mut prefix, len as u64);
    out.splice(at..at + OPEN_ROOM, prefix[..used].iter().copied());
}

#[inline]
pub(super) fn tag(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from((field << 3) | wire_type));
}

/// A string field, left out when empty (the protobuf default).
#[inline]
pub(super) fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    if value.is_empty() {
        return;
    }
    tag(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

#[inline]
pub(super) fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    tag(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// An unsigned (or enum) field, left out when zero.
#[inline]
pub(super) fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value == 0 {
        return;
    }
    tag(out, field, VARINT);
    varint(out, value);
}

#[inline]
pub(super) fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value == 0 {
        return;
    }
    tag(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
pub(super) fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    if value == 0 {
        return;
    }
    tag(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
pub(super) fn varint(out: &mut Vec<u8>, value: u64) {
    varint_bytes(value, |byte| out.push(byte));
}

/// Writes `value` as a varint at the start of `into`; returns how many bytes it took.
pub(super) fn varint_into(into: &mut [u8; 10], value: u64) -> usize {
    let mut used = 0;
    varint_bytes(value, |byte| {
        into[used] = byte;
        used += 1;
    });
    used
}

/// Hands `value`'s varint bytes to `put`, low seven bits first.
#[inline(always)]
fn varint_bytes(mut value: u64, mut put: impl FnMut(u8)) {
    while value >= 0x80 {
        put(value as u8 | 0x80);
        value >>= 7;
    }
    put(value as u8);
}

/// A message or string of `len` bytes as a field, tag and length included (for the
/// field numbers below 16 that take a one-byte tag).
#[inline]
pub(super) fn nested_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A string field, left out when empty.
#[inline]
pub(super) fn string_len(value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        nested_len(value.len())
    }
}

#[inline]
pub(super) fn varint_len(value: u64) -> usize {
    // One byte per started group of seven bits; zero takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry::{KeyValue, StringValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message as _;

    use guildscope_trace::{Attribute, Kind, Record, Status as RecordStatus, Value as RecordValue};

    use super::*;

    fn context(trace: u128, span: u64, sampled: bool, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            remote,
            if state.is_empty() {
                TraceState::NONE
            } else {
                TraceState::from_key_value([("vendor", state)]).unwrap()
            },
        )
    }

    fn span(name: &'static str, scope: &InstrumentationScope) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        SpanData {
            span_context: context(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                7,
                true,
                false,
                "",
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: start + Duration::from_micros(350),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    }

    /// Spans covering every field and value kind the exporter can meet.
    fn spans() -> Vec<SpanData> {
        let guildscope = InstrumentationScope::builder("guildscope").build();
        let other = InstrumentationScope::builder("direct")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build();

        let mut root = span("/stats", &guildscope);
        root.span_kind = SpanKind::Server;
        root.attributes = vec![
            KeyValue::new("code.file.path", "crates/discord/src/gateway/trace.rs"),
            KeyValue::new("code.line.number", 77_i64),
            KeyValue::new("discord.guild_id", "1100000000000000001".to_owned()),
            KeyValue::new("negative", -5_i64),
            KeyValue::new("ratio", 0.25_f64),
            KeyValue::new("zero", 0.0_f64),
            KeyValue::new("flags.stats_beta", true),
            KeyValue::new("flags.off", false),
            KeyValue::new("empty", ""),
            KeyValue::new("", "no key"),
            KeyValue::new("long", "x".repeat(300)),
            KeyValue::new(
                "error.chain",
                Value::Array(Array::String(vec![
                    StringValue::from("outer"),
                    StringValue::from(""),
                ])),
            ),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, 300]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, 0.0]))),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
        ];
        root.dropped_attributes_count = 3;
        root.status = Status::error("stats failed");
        root.events.events = vec![
            Event::new(
                "command failed",
                root.start_time + Duration::from_micros(10),
                vec![
                    KeyValue::new("level", "WARN"),
                    KeyValue::new("target", "guildscope_bot::commands"),
                ],
                2,
            ),
            Event::new("", UNIX_EPOCH, Vec::new(), 0),
        ];
        root.events.dropped_count = 1;

        let mut child = span("store.query", &guildscope);
        child.span_context = context(1, 8, true, false, "");
        child.parent_span_id = SpanId::from(7);
        child.status = Status::Ok;
        child.span_kind = SpanKind::Client;

        let mut remote = span("continued", &guildscope);
        remote.span_context = context(2, 9, true, false, "abc");
        remote.parent_span_id = SpanId::from(u64::MAX);
        remote.parent_span_is_remote = true;
        remote.links.links = vec![Link::new(
            context(3, 10, false, true, "def"),
            vec![KeyValue::new("link.attr", "x")],
            4,
        )];
        remote.links.dropped_count = 2;

        let mut direct = span("direct.span", &other);
        direct.span_kind = SpanKind::Producer;
        let mut consumer = span("consume", &other);
        consumer.span_kind = SpanKind::Consumer;
        consumer.start_time = UNIX_EPOCH;

        vec![root, child, direct, remote, consumer]
    }

    fn resource() -> Resource {
        Resource::builder()
            .with_service_name("guildscope")
            .with_attributes([
                KeyValue::new("service.version", "0.1.0+abc"),
                KeyValue::new("deployment.environment.name", "test"),
            ])
            .with_schema_url(Vec::<KeyValue>::new(), "https://example.com/schema")
            .build()
    }

    /// Our encoding of `spans` is byte for byte the SDK's conversion
    /// encoded by prost.
    fn assert_same_bytes_as_the_sdk(resource: &Resource, spans: Vec<SpanData>) {
        let mut ours = Vec::new();
        sdk_request(&EncodedResource::new(resource), &spans, &mut ours);
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(resource),
            ),
        }
        .encode_to_vec();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_bytes_are_those_of_the_sdk_conversion_and_prost() {
        assert_same_bytes_as_the_sdk(&resource(), spans());
    }

    #[test]
    fn an_empty_resource_and_one_bare_span_match_too() {
        let scope = InstrumentationScope::builder("").build();
        assert_same_bytes_as_the_sdk(&Resource::builder_empty().build(), vec![span("", &scope)]);
    }

    /// The SDK's span data for one of guildscope's own records: what the SDK would
    /// hold had the span been made with its API, unsigned integers as decimal text.
    fn as_sdk(record: &Record, scope: &InstrumentationScope) -> SpanData {
        fn value(value: &RecordValue) -> Value {
            match value {
                RecordValue::Bool(v) => Value::Bool(*v),
                RecordValue::I64(v) => Value::I64(*v),
                RecordValue::F64(v) => Value::F64(*v),
                RecordValue::U64(v) => Value::String(v.to_string().into()),
                RecordValue::Str(v) => Value::String(v.to_string().into()),
            }
        }
        fn key_values(attributes: &[&Attribute]) -> Vec<KeyValue> {
            attributes
                .iter()
                .map(|a| KeyValue::new(a.key.to_string(), value(&a.value)))
                .collect()
        }
        let context = &record.context;
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(context.trace_id.to_bytes()),
                SpanId::from_bytes(context.span_id.to_bytes()),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: record
                .parent
                .map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.to_bytes())),
            parent_span_is_remote: record.parent_is_remote,
            span_kind: match record.kind {
                Kind::Internal => SpanKind::Internal,
                Kind::Server => SpanKind::Server,
                Kind::Client => SpanKind::Client,
                Kind::Producer => SpanKind::Producer,
                Kind::Consumer => SpanKind::Consumer,
            },
            name: record.name.clone(),
            start_time: record.start,
            end_time: record.end,
            attributes: key_values(&record.attributes.iter().collect::<Vec<_>>()),
            dropped_attributes_count: record.attributes.dropped(),
            events: {
                let mut events = SpanEvents::default();
                events.events = record
                    .events
                    .iter()
                    .map(|e| {
                        let attributes: Vec<&Attribute> = e.attributes.iter().collect();
                        Event::new(e.name.clone(), e.time, key_values(&attributes), 0)
                    })
                    .collect();
                events.dropped_count = record.dropped_events;
                events
            },
            links: SpanLinks::default(),
            status: match &record.status {
                RecordStatus::Unset => Status::Unset,
                RecordStatus::Ok => Status::Ok,
                RecordStatus::Error(description) => Status::error(description.clone()),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn own_spans_are_encoded_as_the_sdk_would_encode_the_same_spans() {
        use guildscope_trace::{Recorder, Span, SpanContext as OwnContext, sync_scope};

        let (recorder, guard) = Recorder::install();
        let mut root = Span::root("discord.event");
        root.set_name("/stats");
        root.set_kind(Kind::Server);
        root.set("discord.guild_id", u64::MAX);
        root.set("discord.shard_id", 0_u64);
        root.set("bus.queue_ms", 0.25);
        root.set("zero", 0.0);
        root.set("negative", -5_i64);
        root.set("largest", i64::MAX);
        root.set("smallest", i64::MIN);
        root.set("flags.stats_beta", true);
        root.set("flags.off", false);
        root.set("empty", "");
        root.set("", "no key");
        root.set("long", "x".repeat(300));
        root.add_event(
            "exception",
            [("exception.message", RecordValue::from("the store failed"))],
        );
        root.add_event("", []);
        // Long enough that its length takes two bytes, as an error's text may.
        root.set_status(RecordStatus::Error("the store failed: ".repeat(10).into()));
        sync_scope(root.context(), || {
            let mut query = Span::child("store.query");
            query.set_kind(Kind::Client);
            query.set_status(RecordStatus::Ok);
            for n in 0..guildscope_trace::MAX_ATTRIBUTES + 2 {
                query.set(format!("n{n}"), n as i64);
            }
        });
        root.end();
        let remote = OwnContext {
            trace_id: guildscope_trace::TraceId::random(),
            span_id: guildscope_trace::SpanId::random(),
            sampled: true,
            remote: true,
        };
        let mut continued = Span::child_of(remote, "continued");
        for kind in [Kind::Producer, Kind::Consumer, Kind::Internal] {
            continued.set_kind(kind);
        }
        for n in 0..guildscope_trace::MAX_EVENTS + 1 {
            continued.add_event("tick", [("n", RecordValue::from(n as i64))]);
        }
        continued.end();
        drop(guard);
        let records = recorder.spans();
        assert_eq!(records.len(), 3);

        let mut spans = Vec::new();
        for record in &records {
            super::super::own::own_span(&mut spans, record);
        }
        // The spans can be told apart again, and a cut-off one is not whole.
        let mut at = 0;
        for _ in &records {
            at = field_end(&spans, at).unwrap();
        }
        assert_eq!(at, spans.len());
        let last = (0..records.len() - 1).fold(0, |at, _| field_end(&spans, at).unwrap());
        assert_eq!(field_end(&spans[..spans.len() - 1], last), None);
        assert_same_request_as_the_sdk(&records, &spans);
    }

    #[test]
    fn own_spans_match_the_sdk_where_lengths_take_more_bytes() {
        use guildscope_trace::{Recorder, Span};

        let (recorder, guard) = Recorder::install();
        // Around each point where a length's varint grows a byte; from 117 to 121,
        // around where an attribute keyed or valued `text` outgrows one-byte lengths.
        let lens = [0, 1, 100, 117, 118, 119, 120, 121, 126, 127, 128, 129];
        for len in lens.into_iter().chain([16_383, 16_384, 16_385]) {
            let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let mut span = Span::root("span");
            span.set_name(text.clone());
            span.set("text", text.clone());
            span.set(text.clone(), len as u64);
            span.add_event(
                "event",
                [
                    ("text", RecordValue::from(text.clone())),
                    ("n", RecordValue::from(-(len as i64))),
                ],
            );
            span.set_status(RecordStatus::Error(text.into()));
        }
        drop(guard);
        let records = recorder.spans();
        let mut spans = Vec::new();
        for record in &records {
            super::super::own::own_span(&mut spans, record);
        }
        assert_same_request_as_the_sdk(&records, &spans);
    }

    /// The request made of `spans` (the encoded `records`) is byte for byte the one
    /// the SDK makes of the same spans.
    fn assert_same_request_as_the_sdk(records: &[guildscope_trace::Record], spans: &[u8]) {
        let scope = InstrumentationScope::builder("guildscope").build();
        let resource = resource();
        let mut ours = Vec::new();
        own_request(&EncodedResource::new(&resource), &scope, spans, &mut ours);
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                records.iter().map(|r| as_sdk(r, &scope)).collect(),
                &ResourceAttributesWithSchema::from(&resource),
            ),
        }
        .encode_to_vec();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_message_closed_after_its_body_has_the_shortest_length_prefix() {
        // Around each length where the prefix takes one byte more or less than
        // the two left for it.
        for len in [0, 1, 127, 128, 129, 16_383, 16_384, 16_385, 2_097_152] {
            let body: Vec<u8> = (0..len).map(|n| n as u8).collect();
            let mut out = vec![7];
            let at = open(&mut out, 15);
            out.extend_from_slice(&body);
            close(&mut out, at);
            let mut expected = vec![7];
            tag(&mut expected, 15, LEN);
            varint(&mut expected, len as u64);
            expected.extend_from_slice(&body);
            assert_eq!(out, expected, "{len}");
        }
    }

    #[test]
    fn varint_lengths_match_the_encoding() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }
}
