//! [`Span`]: one operation of a trace, recorded as it runs and handed to the
//! tracer's sink, whole, when it ends.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::record::{Attribute, Attributes, Event, Kind, MAX_EVENTS, Record, Status, Value};
use crate::tracer::{Sampling, Tracer};
use crate::{SpanId, TraceId, scope};

/// What identifies a span to its children and to other services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// The span itself.
    pub span_id: SpanId,
    /// Whether its trace is sampled (recorded and exported).
    pub sampled: bool,
    /// Whether it lives in another process (a parent from a `traceparent`).
    pub remote: bool,
}

/// One operation of a trace.
///
/// Made with [`root`](Self::root), [`child`](Self::child) or
/// [`child_of`](Self::child_of); set its attributes, status and events as the
/// work goes; it ends when dropped (or [`end`](Self::end)ed) and goes to the
/// sink of the current dispatcher's tracer then (the one it was made under: a
/// span ends where it was made, or in a task of the same dispatcher). Children
/// made inside a [`scope`](crate::scope) of its context are its children.
///
/// A span is recorded only when the current `tracing` dispatcher carries a
/// tracer ([`Tracer::layer`]) and its trace is sampled. Otherwise every method
/// does nothing: a span with no tracer costs a lookup, and one of an unsampled
/// trace carries only its context, so its children stay unsampled too.
pub struct Span {
    context: Option<SpanContext>,
    /// The record, while the span is recorded.
    live: Option<Box<Record>>,
}

/// Attributes a new record has room for: a gateway event's or a REST call's
/// span sets about ten. (Records are reused, and keep what room they grew.)
const NEW_RECORD_ATTRIBUTES: usize = 16;

/// Records kept for reuse per thread, at most.
const SPARE_RECORDS: usize = 8;

thread_local! {
    /// Records of spans that ended on this thread, emptied, for the next spans
    /// made on it: a span then costs neither an allocation nor the writing of a
    /// whole new record.
    // Boxes, not records: a span holds its record boxed, and a spare box is
    // handed over as it is, where a `Vec<Record>` would copy a whole record in
    // and out.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<Record>>> = const { RefCell::new(Vec::new()) };
}

/// A record for a new span, a spare one if this thread has one.
fn new_record(
    context: SpanContext,
    parent: Option<SpanContext>,
    name: &'static str,
) -> Box<Record> {
    let spare = SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten();
    // A spare record is empty already (see `recycle`); the fields below are the
    // ones each span sets anew.
    let mut record = spare.unwrap_or_else(|| {
        Box::new(Record {
            context,
            parent: None,
            parent_is_remote: false,
            name: Cow::Borrowed(""),
            kind: Kind::Internal,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            attributes: Attributes::with_room(NEW_RECORD_ATTRIBUTES),
            events: Vec::new(),
            dropped_events: 0,
            status: Status::Unset,
        })
    });
    record.context = context;
    record.parent = parent.map(|p| p.span_id);
    record.parent_is_remote = parent.is_some_and(|p| p.remote);
    record.name = Cow::Borrowed(name);
    record.kind = Kind::Internal;
    record.start = SystemTime::now();
    record
}

/// Empties `record` and keeps it for this thread's next span, if there is room.
fn recycle(mut record: Box<Record>) {
    record.attributes.clear();
    record.events.clear();
    record.dropped_events = 0;
    record.status = Status::Unset;
    record.name = Cow::Borrowed("");
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_RECORDS {
            spare.push(record);
        }
    });
}

impl Span {
    /// A span that records nothing and has no context.
    pub const fn none() -> Self {
        Self {
            context: None,
            live: None,
        }
    }

    /// The first span of a new trace, whatever scope it is made in.
    pub fn root(name: &'static str) -> Self {
        match Tracer::current() {
            Some((sampling, _)) => Self::start(sampling, name, None),
            None => Self::none(),
        }
    }

    /// A child of the current scope's span ([`scope::current`]); outside any
    /// scope, of the span the tracer's outer parent names, if any; else (or in a
    /// scope made with no span) the first span of a new trace.
    pub fn child(name: &'static str) -> Self {
        let Some((sampling, outer)) = Tracer::current() else {
            return Self::none();
        };
        let parent = match scope::innermost() {
            Some(scoped) => scoped,
            None => outer.and_then(|outer| outer()),
        };
        Self::start(sampling, name, parent)
    }

    /// A child of `parent`, which may be in another process.
    pub fn child_of(parent: SpanContext, name: &'static str) -> Self {
        match Tracer::current() {
            Some((sampling, _)) => Self::start(sampling, name, Some(parent)),
            None => Self::none(),
        }
    }

    fn start(sampling: Sampling, name: &'static str, parent: Option<SpanContext>) -> Self {
        let (trace_id, sampled) = match parent {
            Some(parent) => (
                parent.trace_id,
                sampling.sampled(parent.trace_id, Some(parent.sampled)),
            ),
            None => {
                let trace_id = TraceId::random();
                (trace_id, sampling.sampled(trace_id, None))
            }
        };
        let context = SpanContext {
            trace_id,
            span_id: SpanId::random(),
            sampled,
            remote: false,
        };
        let live = sampled.then(|| new_record(context, parent, name));
        Self {
            context: Some(context),
            live,
        }
    }

    /// Its context, to make children with or hand to another service; `None`
    /// when no tracer was there to make it.
    pub fn context(&self) -> Option<SpanContext> {
        self.context
    }

    /// Its trace id when the trace is sampled: an id to show a user beside an
    /// error, which leads to the trace.
    pub fn sampled_trace_id(&self) -> Option<TraceId> {
        self.context
            .filter(|context| context.sampled)
            .map(|context| context.trace_id)
    }

    /// Whether it is recorded (a tracer made it and its trace is sampled).
    pub fn is_recording(&self) -> bool {
        self.live.is_some()
    }

    fn record(&mut self) -> Option<&mut Record> {
        self.live.as_deref_mut()
    }

    /// Sets attribute `key`, replacing its value if it has one.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        if let Some(record) = self.record() {
            record.attributes.set(key.into(), value.into());
        }
    }

    /// Renames it (a command's root span takes the command's name).
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(record) = self.record() {
            record.name = name.into();
        }
    }

    /// Sets its kind.
    pub fn set_kind(&mut self, kind: Kind) {
        if let Some(record) = self.record() {
            record.kind = kind;
        }
    }

    /// Sets how it ended. An `Ok` is final, as OpenTelemetry has it: later
    /// statuses are ignored.
    pub fn set_status(&mut self, status: Status) {
        if let Some(record) = self.record()
            && record.status != Status::Ok
        {
            record.status = status;
        }
    }

    /// Notes that something happened now.
    pub fn add_event(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = (&'static str, Value)>,
    ) {
        if let Some(record) = self.record() {
            if record.events.len() >= MAX_EVENTS {
                record.dropped_events = record.dropped_events.saturating_add(1);
                return;
            }
            record.events.push(Event {
                name: name.into(),
                time: SystemTime::now(),
                attributes: attributes
                    .into_iter()
                    .map(|(key, value)| Attribute {
                        key: Cow::Borrowed(key),
                        value,
                    })
                    .collect(),
            });
        }
    }

    /// Ends it now; dropping it does the same.
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut record) = self.live.take() {
            record.end = SystemTime::now();
            Tracer::finish(&record);
            recycle(record);
        }
    }
}

impl Default for Span {
    fn default() -> Self {
        Self::none()
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Span");
        if let Some(record) = &self.live {
            debug.field("name", &record.name);
        }
        debug.field("context", &self.context).finish()
    }
}
