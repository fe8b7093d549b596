//! Spans as a recorder sees them: parents through scopes, sampling, the end of
//! a span, and what happens without a tracer.

use std::time::SystemTime;

use tracing_subscriber::layer::SubscriberExt as _;

use crate::{
    Kind, Record, Recorder, Sampling, Span, SpanContext, SpanId, Status, TraceId, Tracer, Value,
    current, enabled, scope, sync_scope,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn only(recorder: &Recorder, name: &str) -> Record {
    let named = recorder.named(name);
    assert_eq!(named.len(), 1, "one {name}: {:#?}", recorder.spans());
    named.into_iter().next().unwrap()
}

#[test]
fn children_found_through_scopes_form_one_trace() {
    let (recorder, _guard) = Recorder::install();
    runtime().block_on(async {
        let mut root = Span::root("root");
        root.set("answer", 42_i64);
        let context = root.context();
        scope(context, async {
            assert_eq!(current(), context);
            let mut child = Span::child("child");
            child.set_kind(Kind::Client);
            let child_context = child.context();
            scope(child_context, async {
                Span::child("grandchild").end();
            })
            .await;
            // Back in the root's scope once the inner one is done.
            assert_eq!(current(), context);
            tokio::task::yield_now().await;
            child.set_status(Status::Ok);
        })
        .await;
        assert_eq!(current(), None);
        root.end();
        // A root ignores the scope it is made in.
        scope(context, async { Span::root("other").end() }).await;
    });
    let root = only(&recorder, "root");
    let child = only(&recorder, "child");
    let grandchild = only(&recorder, "grandchild");
    let other = only(&recorder, "other");
    assert_eq!(root.parent, None);
    assert_eq!(root.attribute("answer"), Some(&Value::I64(42)));
    assert_eq!(child.parent, Some(root.context.span_id));
    assert_eq!(child.kind, Kind::Client);
    assert_eq!(child.status, Status::Ok);
    assert_eq!(grandchild.parent, Some(child.context.span_id));
    for span in [&child, &grandchild] {
        assert_eq!(span.context.trace_id, root.context.trace_id);
        assert!(span.context.sampled);
    }
    assert_ne!(other.context.trace_id, root.context.trace_id);
    assert_eq!(other.parent, None);
    // Children end before their parents here, and every span ends after it
    // starts.
    let order: Vec<String> = recorder
        .spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(order, ["grandchild", "child", "root", "other"]);
    for span in recorder.spans() {
        assert!(
            span.start <= span.end && span.end <= SystemTime::now(),
            "{span:?}"
        );
    }
}

#[test]
fn blocking_work_in_a_sync_scope_makes_children_of_its_span() {
    let (recorder, _guard) = Recorder::install();
    let root = Span::root("root");
    sync_scope(root.context(), || Span::child("query").end());
    let root_id = root.context().unwrap().span_id;
    root.end();
    assert_eq!(only(&recorder, "query").parent, Some(root_id));
    // Outside any scope, a child is a root of its own.
    Span::child("alone").end();
    assert_eq!(only(&recorder, "alone").parent, None);
}

#[test]
fn an_unsampled_trace_records_nothing_and_keeps_its_children_unsampled() {
    let recorder = Recorder::default();
    let never = Sampling {
        ratio: 0.0,
        follow_parent: true,
    };
    let subscriber =
        tracing_subscriber::registry().with(Tracer::new(recorder.clone(), never).layer());
    tracing::subscriber::with_default(subscriber, || {
        let mut root = Span::root("root");
        assert!(!root.is_recording());
        root.set("ignored", true);
        let context = root
            .context()
            .expect("an unsampled span still has a context");
        assert!(!context.sampled);
        assert_eq!(root.sampled_trace_id(), None);
        sync_scope(Some(context), || {
            let child = Span::child("child");
            assert!(!child.is_recording());
            assert_eq!(child.context().unwrap().trace_id, context.trace_id);
        });
        // A sampled remote parent is followed even at a ratio of zero.
        let remote = SpanContext {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            sampled: true,
            remote: true,
        };
        let continued = Span::child_of(remote, "continued");
        assert!(continued.is_recording());
    });
    let spans = recorder.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].name, "continued");
    assert!(spans[0].parent_is_remote);
}

#[test]
fn without_a_tracer_spans_cost_nothing_and_have_no_context() {
    assert!(!enabled());
    let mut span = Span::root("root");
    span.set("key", "value");
    assert!(!span.is_recording());
    assert_eq!(span.context(), None);
    let (_recorder, _guard) = Recorder::install();
    assert!(enabled());
}

#[test]
fn a_status_of_ok_is_final_and_events_keep_their_order() {
    let (recorder, _guard) = Recorder::install();
    let mut span = Span::root("work");
    span.set_name("/work");
    span.add_event("first", [("n", Value::I64(1))]);
    span.set_status(Status::Error("boom".into()));
    span.add_event("second", []);
    span.set_status(Status::Ok);
    span.set_status(Status::Error("after".into()));
    span.end();
    let span = only(&recorder, "/work");
    assert_eq!(span.status, Status::Ok);
    let events: Vec<&str> = span.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["first", "second"]);
    assert_eq!(span.events[0].attributes[0].value, Value::I64(1));
}

#[test]
fn the_outer_parent_is_asked_only_outside_every_scope() {
    fn outer() -> Option<SpanContext> {
        Some(SpanContext {
            trace_id: TraceId::from_bytes([7; 16]).unwrap(),
            span_id: SpanId::from_bytes([7; 8]).unwrap(),
            sampled: true,
            remote: false,
        })
    }
    let recorder = Recorder::default();
    let tracer = Tracer::new(recorder.clone(), Sampling::ALWAYS).with_outer_parent(outer);
    let subscriber = tracing_subscriber::registry().with(tracer.layer());
    tracing::subscriber::with_default(subscriber, || {
        Span::child("under.outer").end();
        let root = Span::root("root");
        sync_scope(root.context(), || Span::child("under.root").end());
        // A scope with no span is outside every span, the outer one included.
        sync_scope(None, || Span::child("detached").end());
    });
    let detached = only(&recorder, "detached");
    assert_eq!(detached.parent, None);
    assert_ne!(detached.context.trace_id, outer().unwrap().trace_id);
    let under_outer = only(&recorder, "under.outer");
    assert_eq!(under_outer.parent, outer().map(|c| c.span_id));
    assert_eq!(under_outer.context.trace_id, outer().unwrap().trace_id);
    let root = only(&recorder, "root");
    assert_eq!(
        only(&recorder, "under.root").parent,
        Some(root.context.span_id)
    );
}

#[test]
fn a_record_stays_small_enough_for_the_allocators_thread_cache() {
    // glibc serves allocations up to 1,032 bytes from a per-thread cache; a
    // span is one such allocation on the thread that makes it.
    assert!(
        std::mem::size_of::<Record>() <= 1_024,
        "{}",
        std::mem::size_of::<Record>()
    );
}

#[test]
fn a_span_after_another_on_the_same_thread_starts_empty() {
    let (recorder, _guard) = Recorder::install();
    for _ in 0..20 {
        let mut first = Span::root("first");
        first.set_name("renamed");
        first.set_kind(Kind::Server);
        first.set("owned", String::from("text"));
        first.add_event("happened", [("n", Value::I64(1))]);
        first.set_status(Status::Error("failed".into()));
        first.end();
        let mut second = Span::root("second");
        // Keys of the same length are told apart, and setting one again
        // replaces it.
        second.set("aaaa", 1_i64);
        second.set("bbbb", 2_i64);
        second.set("aaaa", 3_i64);
        second.end();
    }
    let seconds = recorder.named("second");
    assert_eq!(seconds.len(), 20);
    for second in seconds {
        assert_eq!(second.kind, Kind::Internal);
        assert_eq!(second.status, Status::Unset);
        assert!(second.events.is_empty());
        let attributes: Vec<(&str, &Value)> = second
            .attributes
            .iter()
            .map(|a| (a.key.as_ref(), &a.value))
            .collect();
        assert_eq!(
            attributes,
            [("aaaa", &Value::I64(3)), ("bbbb", &Value::I64(2))]
        );
    }
    assert_eq!(recorder.named("renamed").len(), 20);
}
