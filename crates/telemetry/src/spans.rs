//! Span attributes whose names are only known at run time, which `tracing`'s
//! fields (declared when the span is created) cannot carry.

use tracing::Span;

use crate::otel::SpanExt as _;

/// Sets `flags.<name> = on` on `span`, as the traced bots of the seed posts
/// do for every feature flag a command evaluated. Does nothing when spans
/// are not exported.
pub fn set_flag(span: &Span, name: &str, on: bool) {
    if span.is_disabled() {
        return;
    }
    span.set_attribute(format!("flags.{name}"), on);
}
