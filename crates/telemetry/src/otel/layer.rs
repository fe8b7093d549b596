//! The span layer: `tracing` spans become OpenTelemetry spans with as little work as
//! possible on the thread that runs them, and finished spans go to the batch
//! processor.
//!
//! It produces what `tracing-opentelemetry` (with the OpenTelemetry SDK behind it)
//! produces for the same spans: the same names, kinds, attributes in the same order
//! (`code.file.path`, `code.module.name`, `code.line.number`, `target`, then the fields),
//! events, links, status, span limits, sampling decisions, and parent-child relations
//! (a span's parent is its explicit parent if this layer sees it, otherwise the innermost
//! entered span this layer sees). What it leaves out is the bookkeeping around it: no
//! SDK span, builder or OpenTelemetry context per span, no mutex per span, ids and
//! timestamps taken once, and attributes written straight into the span's OTLP bytes
//! ([`encode::Attributes`](super::encode::Attributes)) as they are recorded. A span
//! whose trace is not sampled records nothing once it has been entered; before that it
//! records its fields, since [`SpanExt::set_parent`](super::SpanExt::set_parent) may
//! still make it sampled.
//!
//! The JSON log format reads a span's ids from the span itself ([`ids_of`]), so entering
//! and leaving a span costs no more than marking it started and noting the time. With
//! OTLP log export on, the span's OpenTelemetry context is attached to the thread while
//! it is entered, so log records carry its trace and span ids; without it nothing is
//! attached, and OpenTelemetry API spans created directly inside a `tracing` span do not
//! see it as their parent.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState,
};
use opentelemetry::{Context, ContextGuard, KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::{LookupSpan, SpanData as _, SpanRef};

use super::batch::Finished;
use super::config::ParentSampling;
use super::encode::{self, Events, TracedSpan};

/// The SDK's default limit of attributes per link. What is over is dropped and
/// counted.
const MAX_LINK_ATTRIBUTES: usize = 128;

const SPAN_NAME_FIELD: &str = "otel.name";
const SPAN_KIND_FIELD: &str = "otel.kind";
const SPAN_STATUS_CODE_FIELD: &str = "otel.status_code";
const SPAN_STATUS_DESCRIPTION_FIELD: &str = "otel.status_description";
const EXCEPTION_MESSAGE: &str = "exception.message";
const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";

/// Which traces are sampled: by trace id at the given ratio, and, when following
/// parents, as the parent was. The SDK's `AlwaysOn`, `AlwaysOff` and
/// `TraceIdRatioBased` samplers, wrapped in `ParentBased` or not; the same decision
/// guildscope's own spans get ([`guildscope_trace::Sampling`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sampling(guildscope_trace::Sampling);

impl Sampling {
    pub(crate) fn new(ratio: f64, parent: ParentSampling) -> Self {
        Self(guildscope_trace::Sampling {
            ratio,
            follow_parent: parent == ParentSampling::Follow,
        })
    }

    /// The same decision, for guildscope's own spans.
    pub(crate) fn of_own_spans(self) -> guildscope_trace::Sampling {
        self.0
    }

    /// Whether a span of `trace_id` is sampled, given whether its parent (if any) was.
    fn sampled(self, trace_id: TraceId, parent_sampled: Option<bool>) -> bool {
        guildscope_trace::TraceId::from_bytes(trace_id.to_bytes())
            .is_some_and(|trace_id| self.0.sampled(trace_id, parent_sampled))
    }
}

/// A queue finished spans can be handed to: the batch processor, or a test's.
pub(crate) trait SpanQueue: Send + Sync + fmt::Debug {
    /// Takes a sampled span, or drops it. Never waits.
    fn push(&self, span: Finished);
    /// Takes one of guildscope's own spans, or drops it. Never waits.
    fn push_own(&self, record: &guildscope_trace::Record);
    /// Exports what is queued.
    fn force_flush(&self) -> OTelSdkResult;
    /// Exports what is queued and stops.
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult;
}

/// Where finished spans go, until the pipeline shuts down. Shared by the layer and
/// the SDK tracer provider.
#[derive(Debug)]
pub(crate) struct SpanSink {
    queue: Box<dyn SpanQueue>,
    open: AtomicBool,
}

impl SpanSink {
    pub(crate) fn new(queue: impl SpanQueue + 'static) -> Self {
        Self {
            queue: Box::new(queue),
            open: AtomicBool::new(true),
        }
    }

    /// Stops taking spans; those ending later are neither counted nor exported, as
    /// with an SDK tracer provider that was shut down.
    pub(crate) fn close(&self) {
        self.open.store(false, Ordering::Relaxed);
    }

    pub(crate) fn push(&self, span: Finished) {
        if self.open.load(Ordering::Relaxed) {
            self.queue.push(span);
        }
    }

    pub(crate) fn push_own(&self, record: &guildscope_trace::Record) {
        if self.open.load(Ordering::Relaxed) {
            self.queue.push_own(record);
        }
    }

    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        self.queue.force_flush()
    }

    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        self.close();
        self.queue.shutdown(timeout)
    }
}

/// The layer. Wrap it in the pipeline's per-layer filter.
pub(crate) struct SpanLayer {
    sink: Arc<SpanSink>,
    /// Keeps the SDK tracer provider, whose shutdown stops the export, alive as long
    /// as the layer, as a layer holding an SDK tracer does.
    _provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    sampling: Sampling,
    ids: RandomIdGenerator,
    /// Attach each entered span's OpenTelemetry context to the thread (for log export).
    attach_context: bool,
}

impl SpanLayer {
    pub(crate) fn new(sink: Arc<SpanSink>, sampling: Sampling, attach_context: bool) -> Self {
        Self {
            sink,
            _provider: None,
            sampling,
            ids: RandomIdGenerator::default(),
            attach_context,
        }
    }

    /// The layer, keeping `provider` alive as long as itself.
    pub(crate) fn keeping(self, provider: opentelemetry_sdk::trace::SdkTracerProvider) -> Self {
        Self {
            _provider: Some(provider),
            ..self
        }
    }
}

/// What the layer keeps for one span, in the span's extensions.
pub(crate) struct SpanState {
    callsite: &'static tracing::Metadata<'static>,
    context: SpanContext,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    sampling: Sampling,
    /// Entered, or its context handed out: from then on its identity, name and kind
    /// are fixed and a status only replaces a lesser one, as for a started SDK span.
    started: bool,
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    /// When it was last exited.
    end: Option<SystemTime>,
    attributes: encode::Attributes,
    events: Events,
    links: Vec<Link>,
    status: Status,
    /// The OpenTelemetry context attached while entered, made once (log export only).
    attached: Option<Context>,
}

impl SpanState {
    /// Whether what is recorded on the span can still be exported.
    fn recording(&self) -> bool {
        !self.started || self.context.is_sampled()
    }

    fn apply(&mut self, updates: Updates) {
        if !self.started {
            if let Some(name) = updates.name {
                self.name = name;
            }
            if let Some(kind) = updates.kind {
                self.kind = kind;
            }
        }
        if let Some(status) = updates.status {
            self.set_status(status);
        }
    }

    fn set_status(&mut self, status: Status) {
        if !self.started || status > self.status {
            self.status = status;
        }
    }

    /// The OpenTelemetry context of the span, as a parent for other services.
    fn otel_context(&self) -> Context {
        Context::new().with_remote_span_context(self.context.clone())
    }

    fn finish(self) -> TracedSpan {
        let Self {
            callsite,
            context,
            parent_span_id,
            parent_is_remote,
            name,
            kind,
            start,
            end,
            attributes,
            events,
            mut links,
            status,
            ..
        } = self;
        for link in &mut links {
            link.dropped_attributes_count =
                link.attributes.len().saturating_sub(MAX_LINK_ATTRIBUTES) as u32;
            link.attributes.truncate(MAX_LINK_ATTRIBUTES);
        }
        TracedSpan {
            callsite,
            context,
            parent_span_id,
            parent_is_remote,
            name,
            kind,
            start,
            end: end.unwrap_or_else(SystemTime::now),
            attributes,
            events,
            links,
            status,
        }
    }
}

/// The identity a new span inherits from its parent.
struct Parent {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
    state: TraceState,
    sampled: bool,
    remote: bool,
}

impl Parent {
    /// The identity one of guildscope's own spans hands its children.
    fn of_own(context: guildscope_trace::SpanContext) -> Self {
        Self {
            trace_id: TraceId::from_bytes(context.trace_id.to_bytes()),
            span_id: SpanId::from_bytes(context.span_id.to_bytes()),
            flags: TraceFlags::default().with_sampled(context.sampled),
            state: TraceState::NONE,
            sampled: context.sampled,
            remote: context.remote,
        }
    }

    fn of(context: &SpanContext) -> Self {
        Self {
            trace_id: context.trace_id(),
            span_id: context.span_id(),
            flags: context.trace_flags(),
            state: context.trace_state().clone(),
            sampled: context.is_sampled(),
            remote: context.is_remote(),
        }
    }
}

/// A span's trace id and span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanIds {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
}

thread_local! {
    /// The OpenTelemetry contexts attached for the spans entered on this thread,
    /// innermost last (log export only).
    static ATTACHED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// The ids of `span`, when the layer sees it.
pub(crate) fn ids_of<R>(span: &SpanRef<'_, R>) -> Option<SpanIds>
where
    R: for<'a> LookupSpan<'a>,
{
    let extensions = span.extensions();
    let state = extensions.get::<SpanState>()?;
    Some(SpanIds {
        trace_id: state.context.trace_id(),
        span_id: state.context.span_id(),
    })
}

/// The ids of guildscope's own current span ([`guildscope_trace::current`]), if any.
pub(crate) fn own_ids() -> Option<SpanIds> {
    guildscope_trace::current().map(|own| {
        let parent = Parent::of_own(own);
        SpanIds {
            trace_id: parent.trace_id,
            span_id: parent.span_id,
        }
    })
}

/// Removes the innermost entry for `id`: spans may be exited out of order.
fn pop<T>(stack: &RefCell<Vec<(Id, T)>>, id: &Id) -> Option<T> {
    let mut stack = stack.borrow_mut();
    let at = stack.iter().rposition(|(entered, _)| entered == id)?;
    Some(stack.remove(at).1)
}

impl SpanLayer {
    /// The parent a new span gets: its explicit parent if this layer sees it (a parent
    /// filtered away makes it a root), else the innermost entered span this layer
    /// sees, else the span of the current [`guildscope_trace::scope`], unless it asked
    /// for none. A parent found here is started from now on.
    fn parent<S>(&self, attrs: &Attributes<'_>, ctx: &LayerContext<'_, S>) -> Option<Parent>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = if let Some(parent) = attrs.parent() {
            ctx.span(parent)?
        } else if attrs.is_contextual() {
            match ctx.lookup_current() {
                Some(span) => span,
                None => return guildscope_trace::current().map(Parent::of_own),
            }
        } else {
            return None;
        };
        let mut extensions = span.extensions_mut();
        let state = extensions.get_mut::<SpanState>()?;
        state.started = true;
        Some(Parent::of(&state.context))
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let parent = self.parent(attrs, &ctx);
        let Some(span) = ctx.span(id) else { return };
        let meta = attrs.metadata();
        let span_id = self.ids.new_span_id();
        let (trace_id, parent_span_id, parent_is_remote, flags, trace_state, sampled) = match parent
        {
            Some(parent) => (
                parent.trace_id,
                parent.span_id,
                parent.remote,
                parent.flags,
                parent.state,
                self.sampling.sampled(parent.trace_id, Some(parent.sampled)),
            ),
            None => {
                let trace_id = self.ids.new_trace_id();
                (
                    trace_id,
                    SpanId::INVALID,
                    false,
                    TraceFlags::default(),
                    TraceState::NONE,
                    self.sampling.sampled(trace_id, None),
                )
            }
        };
        // Room for a few short fields without growing. The location attributes and
        // the target come first; they are encoded on export, once per callsite.
        let attributes = encode::Attributes::for_span(meta, 64 + 40 * attrs.fields().len());
        let mut state = SpanState {
            callsite: meta,
            context: SpanContext::new(
                trace_id,
                span_id,
                flags.with_sampled(sampled),
                false,
                trace_state,
            ),
            parent_span_id,
            parent_is_remote,
            sampling: self.sampling,
            started: false,
            name: Cow::Borrowed(meta.name()),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            end: None,
            attributes,
            events: Events::default(),
            links: Vec::new(),
            status: Status::Unset,
            attached: None,
        };
        let mut updates = Updates::default();
        attrs.record(&mut SpanFields {
            attributes: &mut state.attributes,
            updates: &mut updates,
        });
        state.apply(updates);
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        if !state.recording() {
            return;
        }
        let mut updates = Updates::default();
        values.record(&mut SpanFields {
            attributes: &mut state.attributes,
            updates: &mut updates,
        });
        state.apply(updates);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        let Some(follows) = ctx.span(follows) else {
            return;
        };
        let context = {
            let mut extensions = follows.extensions_mut();
            let Some(state) = extensions.get_mut::<SpanState>() else {
                return;
            };
            state.started = true;
            state.context.clone()
        };
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<SpanState>()
            && state.recording()
        {
            state.links.push(Link::with_context(context));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let span = match event.parent() {
            Some(parent) => ctx.span(parent),
            None if event.is_contextual() => ctx.lookup_current(),
            None => None,
        };
        let Some(span) = span else { return };
        let meta = event.metadata();
        let mut otel_event = Event::new(
            String::new(),
            SystemTime::now(),
            vec![
                KeyValue::new("level", meta.level().as_str()),
                KeyValue::new("target", meta.target()),
            ],
            0,
        );
        let mut updates = EventUpdates::default();
        event.record(&mut EventFields {
            event: &mut otel_event,
            updates: &mut updates,
        });
        if otel_event.name.is_empty() {
            otel_event.name = Cow::Borrowed(meta.name());
        }
        if let Some(file) = meta.file() {
            otel_event
                .attributes
                .push(KeyValue::new("code.file.path", file));
        }
        if let Some(module) = meta.module_path() {
            otel_event
                .attributes
                .push(KeyValue::new("code.module.name", module));
        }
        if let Some(line) = meta.line() {
            otel_event
                .attributes
                .push(KeyValue::new("code.line.number", i64::from(line)));
        }
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        if !state.recording() {
            return;
        }
        let error = *meta.level() == Level::ERROR;
        if state.started {
            if error {
                state.set_status(Status::error(""));
            }
        } else if error && state.status == Status::Unset {
            state.status = Status::error("");
        }
        if let Some(status) = updates.status {
            state.set_status(status);
        }
        for attribute in &updates.attributes {
            state
                .attributes
                .push(attribute.key.as_str(), &attribute.value);
        }
        state.events.push(&otel_event);
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        state.started = true;
        if self.attach_context {
            let context = state
                .attached
                .get_or_insert_with(|| {
                    Context::new().with_remote_span_context(state.context.clone())
                })
                .clone();
            drop(extensions);
            let guard = context.attach();
            ATTACHED.with(|attached| attached.borrow_mut().push((id.clone(), guard)));
        }
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        state.end = Some(SystemTime::now());
        drop(extensions);
        if self.attach_context {
            // The guard detaches the context when dropped, here.
            ATTACHED.with(|attached| pop(attached, id));
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let state = span.extensions_mut().remove::<SpanState>();
        if let Some(state) = state
            && state.context.is_sampled()
        {
            self.sink.push(Finished::Traced(state.finish()));
        }
    }
}

/// A log layer (the OTLP log bridge) whose records carry the trace and span ids of
/// guildscope's own current span ([`guildscope_trace::scope`]) when no `tracing`
/// span has attached an OpenTelemetry context: the bridge reads the ids from the
/// thread's current context, and this attaches one for the span while the bridge
/// runs.
pub(crate) struct WithOwnContext<L>(pub(crate) L);

impl<S, L> Layer<S> for WithOwnContext<L>
where
    S: Subscriber,
    L: Layer<S>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let own = guildscope_trace::current()
            .filter(|_| !Context::map_current(|current| current.has_active_span()));
        let _attached = own.map(|own| {
            let parent = Parent::of_own(own);
            Context::new()
                .with_remote_span_context(SpanContext::new(
                    parent.trace_id,
                    parent.span_id,
                    parent.flags,
                    false,
                    TraceState::NONE,
                ))
                .attach()
        });
        self.0.on_event(event, ctx);
    }
}

/// Name, kind and status changes asked for by `otel.*` fields in one `record` call;
/// applied together afterwards, the last of each winning.
#[derive(Default)]
struct Updates {
    name: Option<Cow<'static, str>>,
    kind: Option<SpanKind>,
    status: Option<Status>,
}

fn span_kind(name: &str) -> Option<SpanKind> {
    [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find(|(known, _)| name.eq_ignore_ascii_case(known))
    .map(|(_, kind)| kind)
}

fn status(code: &str) -> Status {
    if code.eq_ignore_ascii_case("ok") {
        Status::Ok
    } else if code.eq_ignore_ascii_case("error") {
        Status::error("")
    } else {
        Status::Unset
    }
}

/// The chain of sources under an error, as strings.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<StringValue> {
    let mut chain = Vec::new();
    let mut next = error.source();
    while let Some(source) = next {
        chain.push(StringValue::from(source.to_string()));
        next = source.source();
    }
    chain
}

/// Records a span's fields as attributes, except the `otel.*` fields that steer its
/// name, kind and status. Unsigned and 128-bit integers, like any other value without
/// its own method, are recorded as their `Debug` text.
struct SpanFields<'a> {
    attributes: &'a mut encode::Attributes,
    updates: &'a mut Updates,
}

impl Visit for SpanFields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push_bool(field.name(), value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push_f64(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push_i64(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            SPAN_NAME_FIELD
            | SPAN_KIND_FIELD
            | SPAN_STATUS_CODE_FIELD
            | SPAN_STATUS_DESCRIPTION_FIELD => self.record_debug(field, &value),
            name => self.attributes.push_u64_text(name, value),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            SPAN_NAME_FIELD => self.updates.name = Some(Cow::Owned(value.to_owned())),
            SPAN_KIND_FIELD => self.updates.kind = span_kind(value),
            SPAN_STATUS_CODE_FIELD => self.updates.status = Some(status(value)),
            SPAN_STATUS_DESCRIPTION_FIELD => {
                self.updates.status = Some(Status::error(value.to_owned()));
            }
            name => self.attributes.push_str(name, value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            SPAN_NAME_FIELD => self.updates.name = Some(Cow::Owned(format!("{value:?}"))),
            SPAN_KIND_FIELD => self.updates.kind = span_kind(&format!("{value:?}")),
            SPAN_STATUS_CODE_FIELD => self.updates.status = Some(status(&format!("{value:?}"))),
            SPAN_STATUS_DESCRIPTION_FIELD => {
                self.updates.status = Some(Status::error(format!("{value:?}")));
            }
            name => self.attributes.push_debug(name, value),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let chain = error_chain(value);
        let message = value.to_string();
        self.attributes.push_str(EXCEPTION_MESSAGE, &message);
        self.attributes
            .push(EXCEPTION_STACKTRACE, &Value::Array(chain.clone().into()));
        self.attributes.push_str(field.name(), &message);
        self.attributes.push(
            &format!("{}.chain", field.name()),
            &Value::Array(chain.into()),
        );
    }
}

/// What an event changes on its span: the status an `error` field sets, and the
/// exception attributes an error value adds.
#[derive(Default)]
struct EventUpdates {
    status: Option<Status>,
    attributes: Vec<KeyValue>,
}

/// Records an event's fields as the attributes of a span event, its message as the
/// event's name, and an `error` field of a message-less event as an exception.
struct EventFields<'a> {
    event: &'a mut Event,
    updates: &'a mut EventUpdates,
}

impl EventFields<'_> {
    /// An `error` field on an event without a message so far: an exception, and the
    /// span's status.
    fn exception(&mut self, text: String) {
        self.updates.status = Some(Status::error(text.clone()));
        self.event.name = Cow::Borrowed("exception");
        self.event
            .attributes
            .push(KeyValue::new(EXCEPTION_MESSAGE, text));
    }
}

impl Visit for EventFields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "message" => self.event.name = Cow::Owned(value.to_string()),
            name => self.event.attributes.push(KeyValue::new(name, value)),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "message" => self.event.name = Cow::Owned(value.to_string()),
            name => self.event.attributes.push(KeyValue::new(name, value)),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "message" => self.event.name = Cow::Owned(value.to_string()),
            name => self.event.attributes.push(KeyValue::new(name, value)),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.event.name = Cow::Owned(value.to_owned()),
            "error" if self.event.name.is_empty() => self.exception(format!("{value:?}")),
            name => self
                .event
                .attributes
                .push(KeyValue::new(name, value.to_owned())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.event.name = Cow::Owned(format!("{value:?}")),
            "error" if self.event.name.is_empty() => self.exception(format!("{value:?}")),
            name => self
                .event
                .attributes
                .push(KeyValue::new(name, format!("{value:?}"))),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let chain = error_chain(value);
        let message = value.to_string();
        self.event
            .attributes
            .push(KeyValue::new(EXCEPTION_MESSAGE, message.clone()));
        self.event.attributes.push(KeyValue::new(
            EXCEPTION_STACKTRACE,
            Value::Array(chain.clone().into()),
        ));
        self.updates
            .attributes
            .push(KeyValue::new(EXCEPTION_MESSAGE, message.clone()));
        self.updates.attributes.push(KeyValue::new(
            EXCEPTION_STACKTRACE,
            Value::Array(chain.clone().into()),
        ));
        self.event
            .attributes
            .push(KeyValue::new(field.name(), message));
        self.event.attributes.push(KeyValue::new(
            opentelemetry::Key::new(format!("{}.chain", field.name())),
            Value::Array(chain.into()),
        ));
    }
}

/// Runs `f` on the layer's state for `span`, if the layer sees it.
fn with_state<R>(span: &tracing::Span, f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = registry.span_data(id)?;
        let mut extensions = data.extensions_mut();
        extensions.get_mut::<SpanState>().map(f)
    })
    .flatten()
}

/// Why [`SpanExt::set_parent`](super::SpanExt::set_parent) could not set the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetParentError {
    /// The span is not exported (disabled, filtered away, or no span pipeline).
    #[error("the span is not exported")]
    NotExported,
    /// The span has been entered (or has children): its trace is decided.
    #[error("the span has started; its parent can no longer change")]
    AlreadyStarted,
}

pub(crate) fn set_parent(span: &tracing::Span, parent: &Context) -> Result<(), SetParentError> {
    with_state(span, |state| {
        if state.started {
            return Err(SetParentError::AlreadyStarted);
        }
        let remote = parent.span();
        let remote = remote.span_context();
        if remote.is_valid() {
            let parent = Parent::of(remote);
            state.context = SpanContext::new(
                parent.trace_id,
                state.context.span_id(),
                parent.flags.with_sampled(
                    state
                        .sampling
                        .sampled(parent.trace_id, Some(parent.sampled)),
                ),
                false,
                parent.state,
            );
            state.parent_span_id = parent.span_id;
            state.parent_is_remote = parent.remote;
        } else {
            let trace_id = RandomIdGenerator::default().new_trace_id();
            state.context = SpanContext::new(
                trace_id,
                state.context.span_id(),
                TraceFlags::default().with_sampled(state.sampling.sampled(trace_id, None)),
                false,
                TraceState::NONE,
            );
            state.parent_span_id = SpanId::INVALID;
            state.parent_is_remote = false;
        }
        Ok(())
    })
    .unwrap_or(Err(SetParentError::NotExported))
}

/// The span's OpenTelemetry context; the span is started from now on. Empty when the
/// span is not exported.
pub(crate) fn context(span: &tracing::Span) -> Context {
    with_state(span, |state| {
        state.started = true;
        state.otel_context()
    })
    .unwrap_or_default()
}

/// The span's trace id when it is sampled; the span is started from now on.
pub(crate) fn sampled_trace_id(span: &tracing::Span) -> Option<TraceId> {
    with_state(span, |state| {
        state.started = true;
        state.context.is_sampled().then(|| state.context.trace_id())
    })
    .flatten()
}

/// The context of the current `tracing` span when the layer sees it, as the parent of
/// guildscope's own spans made inside it ([`guildscope_trace::Tracer::with_outer_parent`]).
/// The span is started from then on.
pub(crate) fn current_as_parent() -> Option<guildscope_trace::SpanContext> {
    with_state(&tracing::Span::current(), |state| {
        state.started = true;
        let context = &state.context;
        Some(guildscope_trace::SpanContext {
            trace_id: guildscope_trace::TraceId::from_bytes(context.trace_id().to_bytes())?,
            span_id: guildscope_trace::SpanId::from_bytes(context.span_id().to_bytes())?,
            sampled: context.is_sampled(),
            remote: false,
        })
    })
    .flatten()
}

pub(crate) fn set_attribute(span: &tracing::Span, attribute: KeyValue) {
    with_state(span, |state| {
        if state.recording() {
            state
                .attributes
                .push(attribute.key.as_str(), &attribute.value);
        }
    });
}

#[cfg(test)]
mod tests {
    //! The layer against `tracing-opentelemetry` with the OpenTelemetry SDK, configured
    //! as the pipeline configured them: the same code must give the same spans, as
    //! OTLP messages (the SDK's through `opentelemetry-proto`'s conversion, the
    //! layer's through the exporter's encoding).

    use std::collections::HashMap;
    use std::sync::Mutex;

    use opentelemetry::InstrumentationScope;
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::{SpanKind, TracerProvider as _};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::{
        Sampler, SdkTracerProvider, ShouldSample as _, SpanData, SpanProcessor,
    };
    use prost::Message as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::super::encode::{EncodedResource, Locations, trace_request};
    use super::*;

    /// Keeps every span handed to it: an SDK span processor, and a span queue.
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    #[derive(Debug, Clone, Default)]
    struct Queue(Arc<Mutex<Vec<Finished>>>);

    impl SpanQueue for Queue {
        fn push(&self, span: Finished) {
            self.0.lock().unwrap().push(span);
        }

        fn push_own(&self, _record: &guildscope_trace::Record) {}

        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }

        fn shutdown(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    impl SpanProcessor for Collect {
        fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }

        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }

        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    /// The span operations the scenario needs, from either implementation.
    struct Ops {
        set_attribute: fn(&tracing::Span, KeyValue),
        set_parent: fn(&tracing::Span, Context) -> bool,
        context: fn(&tracing::Span) -> Context,
    }

    #[derive(Debug)]
    struct Failure {
        source: std::io::Error,
    }

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the store failed")
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    fn remote(sampled: bool) -> Context {
        let flags = if sampled { "01" } else { "00" };
        let carrier = HashMap::from([
            (
                "traceparent".to_owned(),
                format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"),
            ),
            ("tracestate".to_owned(), "vendor=abc".to_owned()),
        ]);
        TraceContextPropagator::new().extract(&carrier)
    }

    /// Spans of every shape the product makes, and then some.
    fn scenario(ops: &Ops) {
        let root = tracing::debug_span!(
            parent: None,
            "discord.event",
            discord.event = "INTERACTION_CREATE",
            discord.shard_id = 3_u32,
            discord.sequence = u64::MAX,
            discord.guild_id = tracing::field::Empty,
            command.name = tracing::field::Empty,
            command.outcome = tracing::field::Empty,
            otel.name = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            latency = 1.5_f64,
            negative = -4_i64,
            on = true,
            big = 1_u128 << 100,
        );
        root.record(
            "discord.guild_id",
            tracing::field::display(1_100_000_000_000_000_001_u64),
        );
        root.record("command.name", "stats");
        root.record("otel.name", format_args!("/{}", "stats"));
        (ops.set_attribute)(&root, KeyValue::new("flags.stats_beta", true));
        {
            let _root = root.enter();
            let flag = tracing::info_span!(
                "flag.evaluate",
                flag.name = "stats_beta",
                flag.result = tracing::field::Empty
            );
            flag.in_scope(|| {
                flag.record("flag.result", true);
                tracing::info!(rule = "insider", "flag evaluated");
            });
            let hidden = tracing::info_span!("hidden");
            hidden.in_scope(|| {
                let _under = tracing::info_span!("under.hidden").entered();
                tracing::warn!("inside a hidden span");
            });
            let _explicit = tracing::info_span!(parent: &hidden, "explicit.hidden.parent");
            let store = tracing::info_span!(
                "store.query",
                db.system.name = "sqlite",
                otel.status_code = "ERROR",
                otel.status_description = "disk full",
            );
            store.in_scope(|| {
                let failure = Failure {
                    source: std::io::Error::other("no space left"),
                };
                tracing::error!(error = &failure as &(dyn std::error::Error + 'static));
                tracing::error!(error = %"rate limited");
                tracing::error!(error = "quoted");
            });
            drop(store);
            let rest = tracing::info_span!(
                "discord.rest",
                otel.name = "POST interactions/{interaction_id}/{interaction_token}/callback",
                otel.kind = "client",
                http.response.status_code = tracing::field::Empty,
            );
            rest.follows_from(&root);
            async_like(&rest);
            rest.record("http.response.status_code", 204_u16);
            rest.record("otel.name", "renamed too late");
            rest.record("otel.status_code", "OK");
            rest.record("otel.status_code", "ERROR");
            drop(rest);
            root.record("command.outcome", "ok");
            root.record("otel.status_description", "late");
            root.record("otel.status_code", "OK");
            tracing::warn!(parent: &root, error_id = "abc", "command failed");
            let recorded_before =
                tracing::info_span!("recorded.error", error = tracing::field::Empty);
            recorded_before.record(
                "error",
                &Failure {
                    source: std::io::Error::other("root cause"),
                } as &(dyn std::error::Error + 'static),
            );
            drop(recorded_before);
            let context = (ops.context)(&root);
            assert!(context.span().span_context().is_valid());
        }
        drop(root);

        let never_entered = tracing::info_span!("never.entered", otel.status_code = "error");
        never_entered.record("otel.name", "renamed");
        drop(never_entered);

        let continued = tracing::info_span!("continued", step = 1_i64);
        assert!((ops.set_parent)(&continued, remote(true)));
        continued.in_scope(|| {
            let _child = tracing::info_span!("continued.child").entered();
        });
        assert!(
            !(ops.set_parent)(&continued, remote(true)),
            "already started"
        );
        drop(continued);

        let unsampled = tracing::info_span!("after.unsampled.parent");
        assert!((ops.set_parent)(&unsampled, remote(false)));
        unsampled.in_scope(|| {
            let _child = tracing::info_span!("unsampled.child", n = 1_i64).entered();
            tracing::error!("not recorded");
        });
        drop(unsampled);

        let many_events = tracing::info_span!("many.events");
        many_events.in_scope(|| {
            for i in 0..130_i64 {
                tracing::info!(i, "tick");
            }
        });
        let many_attributes = tracing::info_span!("many.attributes");
        for i in 0..130_i64 {
            (ops.set_attribute)(&many_attributes, KeyValue::new(format!("a{i}"), i));
        }
        many_attributes.in_scope(|| {});
        (ops.set_attribute)(&many_attributes, KeyValue::new("after.start", true));
    }

    /// A span entered and exited several times, as an instrumented future is.
    fn async_like(span: &tracing::Span) {
        for _ in 0..3 {
            let _entered = span.enter();
        }
    }

    fn run(subscriber: impl Subscriber + Send + Sync + 'static, ops: &Ops) {
        tracing::subscriber::with_default(subscriber, || scenario(ops));
    }

    fn hide(meta: &tracing::Metadata<'_>) -> bool {
        meta.name() != "hidden"
    }

    fn theirs(sampler: Sampler) -> Vec<ProtoSpan> {
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(collect.clone())
            .with_sampler(sampler)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("guildscope"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(filter_fn(hide));
        let ops = Ops {
            set_attribute: |span, kv| span.set_attribute(kv.key, kv.value),
            set_parent: |span, cx| {
                tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(span, cx).is_ok()
            },
            context: |span| tracing_opentelemetry::OpenTelemetrySpanExt::context(span),
        };
        run(tracing_subscriber::Registry::default().with(layer), &ops);
        let spans = collect.0.lock().unwrap().clone();
        let resource = Resource::builder_empty().build();
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        proto_spans(&request)
    }

    fn ours(sampling: Sampling) -> Vec<ProtoSpan> {
        let queue = Queue::default();
        let layer = SpanLayer::new(Arc::new(SpanSink::new(queue.clone())), sampling, false)
            .with_filter(filter_fn(hide));
        let ops = Ops {
            set_attribute: |span, kv| set_attribute(span, kv),
            set_parent: |span, cx| super::set_parent(span, &cx).is_ok(),
            context: |span| super::context(span),
        };
        run(tracing_subscriber::Registry::default().with(layer), &ops);
        let spans = std::mem::take(&mut *queue.0.lock().unwrap());
        let resource = EncodedResource::new(&Resource::builder_empty().build());
        let mut bytes = Vec::new();
        trace_request(
            &resource,
            &InstrumentationScope::builder("guildscope").build(),
            &mut Locations::default(),
            &spans,
            &mut bytes,
        );
        proto_spans(&ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap())
    }

    fn proto_spans(request: &ExportTraceServiceRequest) -> Vec<ProtoSpan> {
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .inspect(|s| assert_eq!(s.scope.as_ref().unwrap().name, "guildscope"))
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// The spans with ids replaced by their order of appearance, and times checked
    /// and cleared: what must be equal.
    fn shapes(mut spans: Vec<ProtoSpan>) -> Vec<ProtoSpan> {
        fn index(list: &mut Vec<Vec<u8>>, id: &mut Vec<u8>) {
            if id.is_empty() {
                return;
            }
            let at = match list.iter().position(|seen| seen == id) {
                Some(at) => at,
                None => {
                    list.push(id.clone());
                    list.len() - 1
                }
            };
            *id = vec![at as u8];
        }
        let mut traces = Vec::new();
        let mut ids = Vec::new();
        for span in &mut spans {
            assert!(span.start_time_unix_nano > 0, "{span:?}");
            assert!(
                span.start_time_unix_nano <= span.end_time_unix_nano,
                "{span:?}"
            );
            index(&mut traces, &mut span.trace_id);
            index(&mut ids, &mut span.span_id);
            index(&mut ids, &mut span.parent_span_id);
            span.start_time_unix_nano = 0;
            span.end_time_unix_nano = 0;
            for event in &mut span.events {
                assert!(event.time_unix_nano > 0, "{event:?}");
                event.time_unix_nano = 0;
            }
            for link in &mut span.links {
                index(&mut traces, &mut link.trace_id);
                index(&mut ids, &mut link.span_id);
            }
        }
        spans
    }

    #[test]
    fn the_layer_makes_the_spans_tracing_opentelemetry_makes() {
        let theirs = shapes(theirs(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))));
        let ours = shapes(ours(Sampling::new(1.0, ParentSampling::Follow)));
        assert_eq!(theirs.len(), ours.len(), "{theirs:#?}\n{ours:#?}");
        for (theirs, ours) in theirs.iter().zip(&ours) {
            assert_eq!(theirs, ours);
        }
        assert!(ours.iter().any(|s| s.name == "/stats" && s.kind == 2));
        assert!(ours.iter().any(|s| s.flags & 0x200 != 0), "a remote parent");
        assert!(ours.iter().any(|s| s.dropped_attributes_count == 7));
        assert!(ours.iter().any(|s| s.dropped_events_count == 2));
        assert!(ours.iter().any(|s| !s.links.is_empty()));
        assert!(!ours.iter().any(|s| s.name.contains("unsampled")));
    }

    #[test]
    fn ignoring_parents_samples_what_the_sdk_samples() {
        let theirs = shapes(theirs(Sampler::AlwaysOn));
        let ours = shapes(ours(Sampling::new(1.0, ParentSampling::Ignore)));
        assert_eq!(theirs, ours);
        assert!(ours.iter().any(|s| s.name == "unsampled.child"));
    }

    #[test]
    fn sampling_by_trace_id_decides_as_the_sdk_does() {
        let ids = RandomIdGenerator::default();
        for ratio in [0.0, 0.001, 0.25, 0.5, 0.999, 1.0] {
            let sdk = Sampler::TraceIdRatioBased(ratio);
            for _ in 0..2_000 {
                let trace_id = ids.new_trace_id();
                let decision = sdk
                    .should_sample(None, trace_id, "s", &SpanKind::Internal, &[], &[])
                    .decision;
                assert_eq!(
                    Sampling::new(ratio, ParentSampling::Ignore).sampled(trace_id, None),
                    decision == opentelemetry_sdk::trace::SamplingDecision::RecordAndSample,
                    "{ratio} {trace_id}"
                );
            }
        }
    }
}
