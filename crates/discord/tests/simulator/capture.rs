//! A `tracing` layer that keeps every span it sees (name, parent, fields,
//! whether it closed), so tests can assert what a trace would show without
//! an OpenTelemetry pipeline.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{Arc, Mutex, MutexGuard},
};

use tracing::{
    Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
    subscriber::DefaultGuard,
};
use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

/// One span as the layer saw it.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Its position in [`Captured::spans`].
    pub index: usize,
    /// Its name.
    pub name: &'static str,
    /// The position of its parent, if it has one.
    pub parent: Option<usize>,
    /// Recorded fields, as text (fields declared empty and never recorded
    /// are absent).
    pub fields: BTreeMap<&'static str, String>,
    /// Every field the span declared, recorded or not.
    pub declared: Vec<&'static str>,
    /// Whether it has closed.
    pub closed: bool,
}

impl SpanRecord {
    /// A recorded field's text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// What the layer saw so far; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The spans and the open ones' positions by span id (ids are reused
    /// once a span closes).
    state: Arc<Mutex<State>>,
}

/// The spans seen and which ids are open.
#[derive(Debug, Default)]
struct State {
    /// Every span, in creation order.
    spans: Vec<SpanRecord>,
    /// Position of each open span by id.
    open: HashMap<u64, usize>,
}

impl Captured {
    /// Starts capturing every span created on this thread (which runs the
    /// whole test on a current-thread runtime) until the guard drops.
    pub fn install() -> (Captured, DefaultGuard) {
        let captured = Captured::default();
        let layer = Capture {
            captured: captured.clone(),
        };
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        (captured, guard)
    }

    /// A copy of every span seen so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.lock().spans.clone()
    }

    /// The spans named `name`.
    pub fn named(&self, name: &str) -> Vec<SpanRecord> {
        self.lock()
            .spans
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }

    /// The children of a span.
    pub fn children(&self, parent: &SpanRecord) -> Vec<SpanRecord> {
        self.lock()
            .spans
            .iter()
            .filter(|span| span.parent == Some(parent.index))
            .cloned()
            .collect()
    }

    /// The state (never held across an await).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The layer itself.
struct Capture {
    /// Where it writes.
    captured: Captured,
}

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent_id = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id().into_u64());
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let mut state = self.captured.lock();
        let index = state.spans.len();
        let parent = parent_id.and_then(|parent| state.open.get(&parent).copied());
        state.spans.push(SpanRecord {
            index,
            name: attrs.metadata().name(),
            parent,
            fields: fields.0,
            declared: attrs.metadata().fields().iter().map(|f| f.name()).collect(),
            closed: false,
        });
        state.open.insert(id.into_u64(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut state = self.captured.lock();
        if let Some(index) = state.open.get(&id.into_u64()).copied() {
            state.spans[index].fields.extend(fields.0);
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut state = self.captured.lock();
        if let Some(index) = state.open.remove(&id.into_u64()) {
            state.spans[index].closed = true;
        }
    }
}

/// Field values as text.
#[derive(Default)]
struct Fields(BTreeMap<&'static str, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}
