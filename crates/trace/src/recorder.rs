//! [`Recorder`]: a sink that keeps every finished span in memory, for tests and
//! tools that want to look at spans without an exporter.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::{Record, Sampling, Sink, Tracer};

/// Keeps every span handed to it; cheap to clone, and clones share the spans.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    spans: Arc<Mutex<Vec<Record>>>,
}

impl Sink for Recorder {
    fn finished(&self, record: &Record) {
        self.lock().push(record.clone());
    }
}

impl Recorder {
    /// A recorder behind a tracer that samples every trace, installed as this
    /// thread's `tracing` dispatcher until the guard drops. Spans made on other
    /// threads are not seen: run the test on a current-thread runtime.
    pub fn install() -> (Self, DefaultGuard) {
        let recorder = Self::default();
        let subscriber = tracing_subscriber::registry()
            .with(Tracer::new(recorder.clone(), Sampling::ALWAYS).layer());
        let guard = tracing::subscriber::set_default(subscriber);
        (recorder, guard)
    }

    /// Every span that has ended so far, in the order they ended.
    pub fn spans(&self) -> Vec<Record> {
        self.lock().clone()
    }

    /// The ended spans named `name`.
    pub fn named(&self, name: &str) -> Vec<Record> {
        self.lock()
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }

    /// The ended children of `parent`.
    pub fn children(&self, parent: &Record) -> Vec<Record> {
        self.lock()
            .iter()
            .filter(|span| span.parent == Some(parent.context.span_id))
            .cloned()
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
