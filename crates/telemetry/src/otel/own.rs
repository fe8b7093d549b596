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

use std::sync::{Mutex, MutexGuard, PoisonError};

use guildscope_trace::Record;
use thread_local::ThreadLocal;

use super::encode;

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
        }
    }

    /// Encodes `record` into this thread's buffer. Returns how many spans the
    /// buffer holds now, or `None` when the span was dropped because it was full.
    pub(crate) fn push(&self, record: &Record) -> Option<usize> {
        let mut waiting = lock(self.threads.get_or_default());
        waiting.ended += 1;
        if waiting.spans >= self.per_thread {
            waiting.dropped += 1;
            return None;
        }
        encode::own_span(&mut waiting.bytes, record);
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

/// The end of the first `limit` spans in `spans` (encoded by [`OwnSpans::push`]),
/// and how many that is: where to cut a batch.
pub(crate) fn cut(spans: &[u8], limit: usize) -> (usize, usize) {
    let mut at = 0;
    let mut count = 0;
    while count < limit && at < spans.len() {
        match encode::field_end(spans, at) {
            Some(end) => at = end,
            // Never happens: the bytes were written by `push`. Take the rest whole
            // rather than loop.
            None => return (spans.len(), count + 1),
        }
        count += 1;
    }
    (at, count)
}

#[cfg(test)]
mod tests {
    use guildscope_trace::{Recorder, Span};

    use super::{OwnSpans, cut};

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
        assert_eq!(cut(&bytes, usize::MAX), (bytes.len(), 4));
        let (end, count) = cut(&bytes, 3);
        assert_eq!(count, 3);
        assert_eq!(cut(&bytes[end..], usize::MAX), (bytes.len() - end, 1));
        // A buffer taken is the next one swapped in: one spare goes round.
        assert_eq!(spares.len(), 1);
        assert_eq!(own.drain(&mut spares, &mut Vec::new()), 0);
        assert_eq!(own.push(&records[0]), Some(1));
        assert_eq!(own.counts(), (6, 1));
    }
}
