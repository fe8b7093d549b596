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
    self, LEN, bytes, close, fixed32, fixed64, flags, nanos, open, scalar_key_value, string,
    string_len, tag, text_key_value, uint, varint, varint_into,
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
        own_span(&mut waiting.bytes, record);
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

/// Room reserved per span before it is written, beyond its attributes: ids, times,
/// name, status and flags of a usual span fit.
const SPAN_ROOM: usize = 128;

/// Room reserved per attribute: a dotted key and a snowflake's digits fit.
const ATTRIBUTE_ROOM: usize = 48;

/// Appends `record` to `out` as a `Span` message, field 2 of `ScopeSpans`: exactly
/// the bytes the OpenTelemetry SDK's exporter writes for the same span (a unit test in
/// `encode.rs` compares them). This runs on the thread that ran the span, once per
/// span, and is most of what a span costs there, so it is one pass: every field is
/// written in order as it is read, and only the span's own length, unknown until the
/// end, is written afterwards into room left for it (moving the span when the length
/// takes other than the two bytes most spans need).
pub(crate) fn own_span(out: &mut Vec<u8>, record: &Record) {
    out.reserve(SPAN_ROOM + ATTRIBUTE_ROOM * record.attributes.len());
    let at = open(out, 2);
    bytes(out, 1, &record.context.trace_id.to_bytes());
    bytes(out, 2, &record.context.span_id.to_bytes());
    if let Some(parent) = record.parent {
        bytes(out, 4, &parent.to_bytes());
    }
    string(out, 5, &record.name);
    uint(out, 6, kind(record.kind));
    fixed64(out, 7, nanos(record.start));
    fixed64(out, 8, nanos(record.end));
    for attribute in record.attributes.iter() {
        write_attribute(out, 9, attribute);
    }
    uint(out, 10, u64::from(record.attributes.dropped()));
    for event in &record.events {
        let at = open(out, 11);
        fixed64(out, 1, nanos(event.time));
        string(out, 2, &event.name);
        for attribute in &event.attributes {
            write_attribute(out, 3, attribute);
        }
        close(out, at);
    }
    uint(out, 12, u64::from(record.dropped_events));
    // The status is always there, empty or not.
    tag(out, 15, LEN);
    match &record.status {
        Status::Unset => varint(out, 0),
        Status::Ok => {
            varint(out, 2);
            uint(out, 3, 1);
        }
        Status::Error(description) => {
            varint(out, string_len(description) as u64 + 2);
            string(out, 2, description);
            uint(out, 3, 2);
        }
    }
    let sampled = u8::from(record.context.sampled);
    fixed32(out, 16, flags(record.parent_is_remote, sampled));
    close(out, at);
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

/// A `KeyValue` message as field `field`, written by the SDK span encoder's own
/// functions.
#[inline]
fn write_attribute(out: &mut Vec<u8>, field: u32, attribute: &Attribute) {
    let key = &attribute.key;
    match &attribute.value {
        Value::Str(text) => text_key_value(out, field, key, text.as_bytes()),
        Value::U64(v) => text_key_value(out, field, key, decimal(*v, &mut [0; 20])),
        // `AnyValue`'s `bool_value` (field 2), `int_value` (3) and `double_value` (4).
        Value::Bool(v) => scalar_key_value(out, field, key, &[0x10, u8::from(*v)]),
        Value::I64(v) => {
            let mut value = [0; 11];
            value[0] = 0x18;
            let [_, rest @ ..] = &mut value;
            let used = varint_into(rest, *v as u64);
            scalar_key_value(out, field, key, &value[..=used]);
        }
        Value::F64(v) => {
            let mut value = [0x21; 9];
            value[1..].copy_from_slice(&v.to_bits().to_le_bytes());
            scalar_key_value(out, field, key, &value);
        }
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
