//! The tracer: where finished spans go and which traces are sampled. It lives in
//! the process's `tracing` dispatcher, as a layer that sees nothing
//! ([`Tracer::layer`]), so spans follow the same dispatcher as log lines: the
//! global one in the bot, a scoped one in a test.

use tracing::Subscriber;
use tracing::dispatcher;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{Filtered, LevelFilter};
use tracing_subscriber::layer::Context;

use crate::{Record, SpanContext, TraceId};

/// Takes finished spans, on the thread where each ends. It must not wait: an
/// exporter encodes or queues the span, or drops and counts it when its queue is
/// full. The record is lent: what the sink keeps, it copies.
pub trait Sink: Send + Sync + 'static {
    /// A span has ended.
    fn finished(&self, record: &Record);
}

/// Which traces are sampled: by trace id at `ratio`, and, when `follow_parent`
/// is set, a span with a parent exactly when its parent was. The OpenTelemetry
/// SDK's `TraceIdRatioBased` sampler, wrapped in `ParentBased` or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// The fraction of traces sampled, from 0.0 to 1.0.
    pub ratio: f64,
    /// Whether a span with a parent follows its parent's decision.
    pub follow_parent: bool,
}

impl Sampling {
    /// Every trace.
    pub const ALWAYS: Self = Self {
        ratio: 1.0,
        follow_parent: true,
    };

    /// Whether a span of `trace_id` is sampled, given whether its parent (if
    /// any) was.
    pub fn sampled(self, trace_id: TraceId, parent_sampled: Option<bool>) -> bool {
        match parent_sampled {
            Some(sampled) if self.follow_parent => sampled,
            _ => by_trace_id(self.ratio, trace_id),
        }
    }
}

/// The SDK's `TraceIdRatioBased` decision: the low 63 bits of the trace id's
/// last eight bytes against the ratio's share of them.
fn by_trace_id(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

/// Names the parent of a span made outside any scope: the context of a span another
/// tracing system has entered on this thread.
pub type OuterParent = fn() -> Option<SpanContext>;

/// Where spans go and which are sampled.
pub struct Tracer {
    sink: Box<dyn Sink>,
    sampling: Sampling,
    outer: Option<OuterParent>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("sampling", &self.sampling)
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// A tracer handing finished spans to `sink`.
    pub fn new(sink: impl Sink, sampling: Sampling) -> Self {
        Self {
            sink: Box::new(sink),
            sampling,
            outer: None,
        }
    }

    /// Also asks `outer` for a parent when a span is made outside any
    /// [`scope`](crate::scope): the context of a span another tracing system
    /// has entered on this thread (a `tracing` span, say), so spans made inside
    /// one still join its trace.
    pub fn with_outer_parent(self, outer: OuterParent) -> Self {
        Self {
            outer: Some(outer),
            ..self
        }
    }

    /// The layer that carries the tracer in a `tracing` subscriber. It is
    /// filtered to see nothing, so it costs other layers nothing; it is there to
    /// be found.
    pub fn layer<S>(self) -> Filtered<TracerLayer, LevelFilter, S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        TracerLayer(self).with_filter(LevelFilter::OFF)
    }

    /// The sampling and the outer parent of the current `tracing` dispatcher's
    /// tracer, if it has one: copies, taken out of the dispatcher's lookup before
    /// anything else is asked of it (inside that lookup, `tracing` answers every
    /// other question with no dispatcher).
    pub(crate) fn current() -> Option<(Sampling, Option<OuterParent>)> {
        dispatcher::get_default(|dispatch| {
            dispatch
                .downcast_ref::<TracerLayer>()
                .map(|layer| (layer.0.sampling, layer.0.outer))
        })
    }

    /// Hands `record` to the sink of the current `tracing` dispatcher's tracer, the
    /// one the span was made under (a span ends where it was made, or in a task of
    /// the same dispatcher); with none, it is dropped. Looked up again rather than
    /// kept: a reference count shared by every thread that makes spans would be a
    /// cache line they all write to, twice a span.
    pub(crate) fn finish(record: &Record) {
        dispatcher::get_default(|dispatch| {
            if let Some(layer) = dispatch.downcast_ref::<TracerLayer>() {
                layer.0.sink.finished(record);
            }
        });
    }
}

/// Whether spans made now would be recorded: the current `tracing` dispatcher
/// carries a tracer. Sampling aside, a span made when this is false costs
/// nothing.
pub fn enabled() -> bool {
    dispatcher::get_default(|dispatch| dispatch.downcast_ref::<TracerLayer>().is_some())
}

/// The layer carrying a [`Tracer`]; see [`Tracer::layer`].
#[derive(Debug)]
pub struct TracerLayer(Tracer);

impl<S: Subscriber> Layer<S> for TracerLayer {
    fn enabled(&self, _: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::{Sampling, TraceId};

    fn trace_id(low: u64) -> TraceId {
        let mut bytes = [0u8; 16];
        bytes[0] = 1;
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        TraceId::from_bytes(bytes).unwrap()
    }

    #[test]
    fn a_ratio_samples_trace_ids_below_its_share() {
        let half = Sampling {
            ratio: 0.5,
            follow_parent: false,
        };
        assert!(half.sampled(trace_id(0), None));
        assert!(half.sampled(trace_id(((1 << 62) - 1) << 1), None));
        assert!(!half.sampled(trace_id(1 << 63), None));
        let none = Sampling {
            ratio: 0.0,
            follow_parent: false,
        };
        assert!(!none.sampled(trace_id(0), None));
        assert!(Sampling::ALWAYS.sampled(trace_id(u64::MAX), None));
    }

    #[test]
    fn following_the_parent_overrides_the_ratio_only_for_spans_with_one() {
        let none = Sampling {
            ratio: 0.0,
            follow_parent: true,
        };
        assert!(none.sampled(trace_id(0), Some(true)));
        assert!(!none.sampled(trace_id(0), None));
        assert!(!Sampling::ALWAYS.sampled(trace_id(0), Some(false)));
        let ignore = Sampling {
            ratio: 1.0,
            follow_parent: false,
        };
        assert!(ignore.sampled(trace_id(0), Some(false)));
    }
}
