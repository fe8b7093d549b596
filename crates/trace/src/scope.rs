//! The current span of a task: what [`Span::child`](crate::Span::child) takes as
//! the parent, and what log lines inside report as their trace.
//!
//! A scope is a task-local value, so it follows a future across `.await`s and
//! threads and costs one swap of a thread-local per poll; a child made anywhere
//! inside the future (however deep the calls) finds it without being handed it.

use std::future::Future;

use crate::SpanContext;

tokio::task_local! {
    static CURRENT: Option<SpanContext>;
}

/// The context of the innermost scope around the caller, if any.
pub fn current() -> Option<SpanContext> {
    innermost().flatten()
}

/// The innermost scope around the caller: `None` outside every scope, `Some(None)`
/// inside one made with no span.
pub(crate) fn innermost() -> Option<Option<SpanContext>> {
    CURRENT.try_with(|current| *current).ok()
}

/// Runs `future` with `context` as its current span. `None` makes the future
/// run outside any span (its children start traces of their own), even inside
/// another scope.
pub fn scope<F: Future>(
    context: Option<SpanContext>,
    future: F,
) -> impl Future<Output = F::Output> {
    CURRENT.scope(context, future)
}

/// Runs `f` with `context` as its current span, for blocking work (a database
/// query on the blocking pool) that makes spans or logs.
pub fn sync_scope<R>(context: Option<SpanContext>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(context, f)
}
