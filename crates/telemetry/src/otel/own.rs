//! guildscope's own spans ([`guildscope_trace::Span`]) on their way out: each is
//! encoded into OTLP bytes on the thread where it ends, into a buffer of that
//! thread's, and the batch thread takes the buffers whole when it exports.
//!
//! A span's record is in the ending thread's cache, so encoding it there is cheap;
//! what crosses to the batch thread is a run of bytes, read in order, instead of one
//! record per span (allocated on one core, read and freed on another). Nothing is
//! allocated per span, and no lock is shared between the threads that end spans:
//! each thread's buffer has a lock of its own, which only the batch thread also
//! takes, to swap the buffer for an empty one.
//!
//! Each thread holds at most `per_thread` spans waiting; past that a span is dropped
//! and counted, as at the batch processor's full queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use guildscope_trace::{Attribute, Kind, Record, Status, Value};
use thread_local::ThreadLocal;

use super::encode::{
    self, LEN, Out, Room, bytes, fixed32, fixed64, flags, key_value, nanos, nested_len, string,
    string_len, tag, text_key_value, uint, varint, varint_len,
};
use crate::decimal::decimal;

/// One thread's encoded spans, waiting for the batch thread.
#[derive(Debug, Default)]
struct Waiting {
    /// `Span` messages, each as field 2 of `ScopeSpans`, one after the other.
    bytes: Vec<u8>,
    /// How many spans `bytes` holds.
    spans: usize,
    /// Spans that ended on this thread, ever (dropped ones included).
    ended: u64,
    /// Spans dropped because `per_thread` were waiting already.
    dropped: u64,
}

/// Every thread's waiting spans.
#[derive(Debug)]
pub(crate) struct OwnSpans {
    threads: ThreadLocal<Mutex<Waiting>>,
    per_thread: usize,
    /// Set at shutdown, before the last drain: spans ending later are not taken.
    closed: AtomicBool,
}

fn lock(waiting: &Mutex<Waiting>) -> MutexGuard<'_, Waiting> {
    // Whole spans or none are written under the lock; a panic elsewhere leaves
    // nothing half done.
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OwnSpans {
    pub(crate) fn new(per_thread: usize) -> Self {
        Self {
            threads: ThreadLocal::new(),
            per_thread: per_thread.max(1),
            closed: AtomicBool::new(false),
        }
    }

    /// Encodes `record` into this thread's buffer. Returns how many spans the
    /// buffer holds now, or `None` when the span was dropped because it was full,
    /// or not taken because the spans are [`close`](Self::close)d.
    pub(crate) fn push(&self, record: &Record) -> Option<usize> {
        let mut waiting = lock(self.threads.get_or_default());
        // Read under the lock: see `close`.
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        waiting.ended += 1;
        if waiting.spans >= self.per_thread {
            waiting.dropped += 1;
            return None;
        }
        if !own_span(&mut waiting.bytes, record) {
            waiting.dropped += 1;
            return None;
        }
        waiting.spans += 1;
        Some(waiting.spans)
    }

    /// Appends every thread's waiting spans to `into` and returns how many there
    /// were. Each buffer is swapped for one of `spares` (or a new one) under its
    /// lock and copied outside it, so a thread ending a span never waits for the
    /// copy; emptied buffers go back to `spares`.
    pub(crate) fn drain(&self, spares: &mut Vec<Vec<u8>>, into: &mut Vec<u8>) -> usize {
        let mut spans = 0;
        for waiting in self.threads.iter() {
            let mut taken = {
                let mut waiting = lock(waiting);
                if waiting.spans == 0 {
                    continue;
                }
                spans += std::mem::take(&mut waiting.spans);
                std::mem::replace(&mut waiting.bytes, spares.pop().unwrap_or_default())
            };
            into.extend_from_slice(&taken);
            taken.clear();
            spares.push(taken);
        }
        spans
    }

    /// Takes no more spans: those ending from now on are neither counted nor kept,
    /// as after the pipeline's shutdown. Each thread's lock is taken once after the
    /// flag is set, so a span being written as this is called is in its buffer when
    /// it returns: the drain that follows exports every span ever counted.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for waiting in self.threads.iter() {
            drop(lock(waiting));
        }
    }

    /// Spans that ended, and those dropped, on every thread so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.threads
            .iter()
            .fold((0, 0), |(ended, dropped), waiting| {
                let waiting = lock(waiting);
                (ended + waiting.ended, dropped + waiting.dropped)
            })
    }
}

/// Span bytes one export request carries, at most (a span larger than this goes
/// alone): well under the 4 MiB a gRPC server accepts by default (the
/// OpenTelemetry Collector's OTLP receiver among them), whatever the spans'
/// sizes, with room for the request's resource and scope.
pub(crate) const MAX_REQUEST_SPAN_BYTES: usize = 2 * 1024 * 1024;

/// The end of the first `limit` spans in `spans` (encoded by [`OwnSpans::push`])
/// that fit in `max_bytes`, and how many that is: where to cut a batch. The first
/// span is always taken, however large, so every span is sent once.
pub(crate) fn cut(spans: &[u8], limit: usize, max_bytes: usize) -> (usize, usize) {
    let mut at = 0;
    let mut count = 0;
    while count < limit && at < spans.len() {
        match encode::field_end(spans, at) {
            Some(end) if count > 0 && end > max_bytes => break,
            Some(end) => at = end,
            // Never happens: the bytes were written by `push`. Take the rest whole
            // rather than loop.
            None => return (spans.len(), count + 1),
        }
        count += 1;
    }
    (at, count)
}

/// Appends `record` to `out` as a `Span` message, field 2 of `ScopeSpans`: exactly
/// the bytes the OpenTelemetry SDK's exporter writes for the same span (a unit test in
/// `encode.rs` compares them). Every length is worked out before anything is written,
/// so nothing written is moved again and every byte goes straight into room made for
/// it; this runs on the thread that ran the span, once per span, and is most of what a
/// span costs there.
///
/// Returns `false`, with `out` as it was, if the bytes written did not fill the room
/// measured for them exactly: a mistake in a length, which the tests rule out, costs
/// the span rather than a malformed request.
pub(crate) fn own_span(out: &mut Vec<u8>, record: &Record) -> bool {
    let start = nanos(record.start);
    let end = nanos(record.end);
    let status = status_len(&record.status);
    let mut len = 18 + 10 // trace id (16 bytes) and span id (8), each a field
        + record.parent.map_or(0, |_| 10)
        + string_len(&record.name)
        + 2 // kind, never unspecified
        + fixed64_len(start)
        + fixed64_len(end)
        + uint_len(u64::from(record.attributes.dropped()))
        + uint_len(u64::from(record.dropped_events))
        + nested_len(status)
        + 6; // flags: a two-byte tag (field 16) and four bytes
    for attribute in record.attributes.iter() {
        len += nested_len(attribute_len(attribute));
    }
    for event in &record.events {
        len += nested_len(event_len(event));
    }
    let begin = out.len();
    out.resize(begin + nested_len(len), 0);
    let mut room = Room::new(&mut out[begin..]);
    write_span(&mut room, record, [start, end], len, status);
    let filled = room.filled();
    if !filled {
        out.truncate(begin);
    }
    filled
}

/// Writes `record` as [`own_span`] measured it: `[start, end]` are its times in
/// nanoseconds, `len` the `Span` message's length, `status` its `Status` message's.
fn write_span(
    out: &mut Room<'_>,
    record: &Record,
    [start, end]: [u64; 2],
    len: usize,
    status: usize,
) {
    tag(out, 2, LEN);
    varint(out, len as u64);
    bytes(out, 1, &record.context.trace_id.to_bytes());
    bytes(out, 2, &record.context.span_id.to_bytes());
    if let Some(parent) = record.parent {
        bytes(out, 4, &parent.to_bytes());
    }
    string(out, 5, &record.name);
    uint(out, 6, kind(record.kind));
    fixed64(out, 7, start);
    fixed64(out, 8, end);
    for attribute in record.attributes.iter() {
        write_attribute(out, 9, attribute);
    }
    uint(out, 10, u64::from(record.attributes.dropped()));
    for event in &record.events {
        tag(out, 11, LEN);
        varint(out, event_len(event) as u64);
        fixed64(out, 1, nanos(event.time));
        string(out, 2, &event.name);
        for attribute in &event.attributes {
            write_attribute(out, 3, attribute);
        }
    }
    uint(out, 12, u64::from(record.dropped_events));
    tag(out, 15, LEN);
    varint(out, status as u64);
    match &record.status {
        Status::Unset => {}
        Status::Ok => uint(out, 3, 1),
        Status::Error(description) => {
            string(out, 2, description);
            uint(out, 3, 2);
        }
    }
    let sampled = u8::from(record.context.sampled);
    fixed32(out, 16, flags(record.parent_is_remote, sampled));
}

/// An unsigned field, left out when zero.
fn uint_len(value: u64) -> usize {
    if value == 0 { 0 } else { 1 + varint_len(value) }
}

/// A fixed 64-bit field, left out when zero.
fn fixed64_len(value: u64) -> usize {
    if value == 0 { 0 } else { 9 }
}

fn kind(kind: Kind) -> u64 {
    match kind {
        Kind::Internal => 1,
        Kind::Server => 2,
        Kind::Client => 3,
        Kind::Producer => 4,
        Kind::Consumer => 5,
    }
}

/// The body of the `Status` message.
fn status_len(status: &Status) -> usize {
    match status {
        Status::Unset => 0,
        Status::Ok => 2,
        Status::Error(description) => string_len(description) + 2,
    }
}

/// The body of an `Event` message.
fn event_len(event: &guildscope_trace::Event) -> usize {
    let mut len = fixed64_len(nanos(event.time)) + string_len(&event.name);
    for attribute in &event.attributes {
        len += nested_len(attribute_len(attribute));
    }
    len
}

/// How many decimal digits `value` has.
fn digits(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The body of an `AnyValue` message.
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => 2,
        Value::I64(v) => 1 + varint_len(*v as u64),
        Value::F64(_) => 9,
        Value::U64(v) => nested_len(digits(*v)),
        Value::Str(text) => nested_len(text.len()),
    }
}

/// The body of a `KeyValue` message.
fn attribute_len(attribute: &Attribute) -> usize {
    string_len(&attribute.key) + nested_len(any_value_len(&attribute.value))
}

/// A `KeyValue` message as field `field`, written by the SDK span encoder's own
/// functions; [`attribute_len`] is its body's length.
#[inline]
fn write_attribute(out: &mut impl Out, field: u32, attribute: &Attribute) {
    let key = &attribute.key;
    match &attribute.value {
        Value::Str(text) => text_key_value(out, field, key, text.as_bytes()),
        Value::U64(v) => text_key_value(out, field, key, decimal(*v, &mut [0; 20])),
        Value::Bool(v) => key_value(out, field, key, &opentelemetry::Value::Bool(*v)),
        Value::I64(v) => key_value(out, field, key, &opentelemetry::Value::I64(*v)),
        Value::F64(v) => key_value(out, field, key, &opentelemetry::Value::F64(*v)),
    }
}

#[cfg(test)]
mod tests {
    use guildscope_trace::{Recorder, Span};

    use super::{OwnSpans, cut};

    const ANY: usize = usize::MAX;

    fn records(n: usize) -> Vec<guildscope_trace::Record> {
        let (recorder, _guard) = Recorder::install();
        for i in 0..n {
            let mut span = Span::root("work");
            span.set("i", i as i64);
        }
        recorder.spans()
    }

    #[test]
    fn each_thread_keeps_its_spans_until_drained_and_drops_past_its_limit() {
        let own = OwnSpans::new(3);
        let records = records(5);
        assert_eq!(own.push(&records[0]), Some(1));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for record in &records[1..] {
                    own.push(record);
                }
            });
        });
        // The other thread took three and dropped one.
        assert_eq!(own.counts(), (5, 1));
        let mut spares = Vec::new();
        let mut bytes = Vec::new();
        assert_eq!(own.drain(&mut spares, &mut bytes), 4);
        assert_eq!(cut(&bytes, ANY, ANY), (bytes.len(), 4));
        let (end, count) = cut(&bytes, 3, ANY);
        assert_eq!(count, 3);
        assert_eq!(cut(&bytes[end..], ANY, ANY), (bytes.len() - end, 1));
        // A buffer taken is the next one swapped in: one spare goes round.
        assert_eq!(spares.len(), 1);
        assert_eq!(own.drain(&mut spares, &mut Vec::new()), 0);
        assert_eq!(own.push(&records[0]), Some(1));
        assert_eq!(own.counts(), (6, 1));
    }

    #[test]
    fn a_batch_stops_before_its_byte_limit_and_a_span_past_it_goes_alone() {
        let own = OwnSpans::new(8);
        for record in &records(4) {
            own.push(record);
        }
        let mut bytes = Vec::new();
        assert_eq!(own.drain(&mut Vec::new(), &mut bytes), 4);
        let (one, _) = cut(&bytes, 1, ANY);
        let (two, _) = cut(&bytes, 2, ANY);
        // Two spans fit exactly; a byte less and the second waits.
        assert_eq!(cut(&bytes, ANY, two), (two, 2));
        assert_eq!(cut(&bytes, ANY, two - 1), (one, 1));
        // A limit smaller than one span still sends that span, then the next alone.
        assert_eq!(cut(&bytes, ANY, 1), (one, 1));
        assert_eq!(cut(&bytes[one..], ANY, 1), (two - one, 1));
    }

    #[test]
    fn after_close_no_thread_takes_a_span_and_the_last_drain_has_every_one_counted() {
        let own = OwnSpans::new(8);
        let records = records(3);
        assert_eq!(own.push(&records[0]), Some(1));
        own.close();
        assert_eq!(own.push(&records[1]), None);
        // A thread that never ended a span before the close takes none either.
        std::thread::scope(|scope| {
            scope.spawn(|| assert_eq!(own.push(&records[2]), None));
        });
        assert_eq!(own.counts(), (1, 0));
        let mut bytes = Vec::new();
        assert_eq!(own.drain(&mut Vec::new(), &mut bytes), 1);
        assert_eq!(cut(&bytes, ANY, ANY), (bytes.len(), 1));
    }
}
