//! guildscope's own spans.
//!
//! The bot makes a few spans for every command and every traced gateway event.
//! Made with `tracing`, each span operation goes through the subscriber's
//! registry, every layer and every per-layer filter; most of what telemetry cost
//! a command was there. A [`Span`] here is a plain [`Record`] owned by the code
//! that runs it: setting an attribute is a write into the record, and the
//! finished record goes to the tracer's [`Sink`] whole, in one call on the
//! thread where it ended. The exporter (`guildscope-telemetry`) encodes it there,
//! into a buffer of that thread's, while the record is still in its cache.
//!
//! Parents are found through a task-local [`scope`]: a command runs inside its
//! root span's scope, and the REST call, flag check or query it makes deep down
//! becomes that root's child without being handed it. The tracer lives in the
//! current `tracing` dispatcher ([`Tracer::layer`]), so spans go wherever that
//! dispatcher's pipeline sends them, and nowhere when it has none.
//!
//! # Layout
//!
//! - `id.rs`: [`TraceId`] and [`SpanId`].
//! - `span.rs`: [`Span`] and [`SpanContext`].
//! - `record.rs`: [`Record`], what a finished span is, with its [`Attributes`],
//!   [`Value`]s, [`Event`]s, [`Kind`] and [`Status`].
//! - `scope.rs`: the current span of a task: [`scope`], [`sync_scope`],
//!   [`current`].
//! - `tracer.rs`: [`Tracer`], [`Sink`] and [`Sampling`]; [`enabled`].
//! - `recorder.rs`: [`Recorder`], a sink that keeps spans in memory for tests.
//!
//! **Architecture Invariant:** this crate does no I/O and knows nothing about
//! Discord or OTLP: it records, the sink exports.

mod id;
mod record;
mod recorder;
mod scope;
mod span;
mod tracer;

#[cfg(test)]
mod tests;

pub use id::{SpanId, TraceId};
pub use record::{
    Attribute, Attributes, Event, Kind, MAX_ATTRIBUTES, MAX_EVENTS, Record, Status, Value,
};
pub use recorder::Recorder;
pub use scope::{current, scope, sync_scope};
pub use span::{Span, SpanContext};
pub use tracer::{OuterParent, Sampling, Sink, Tracer, TracerLayer, enabled};
