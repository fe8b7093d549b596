//! Read queries for commands: run on the blocking pool (the store's clients
//! block), over a few reused connections, each in a `store.query` span.

use std::sync::{Arc, Mutex};

use guildscope_store::{Location, Store, StoreError, StoreErrorKind};
use tracing::field;

/// Connections kept open between queries.
const IDLE: usize = 4;

/// Runs read queries against the statistics database.
#[derive(Debug)]
pub struct StoreReader {
    location: Location,
    system: &'static str,
    idle: Mutex<Vec<Store>>,
}

impl StoreReader {
    /// A reader for `location`; connections open on first use.
    pub fn new(location: Location) -> Arc<Self> {
        let system = location.system_name();
        Arc::new(Self {
            location,
            system,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `query` on a pooled connection off the async workers, inside a
    /// `store.query` span named by `operation` (a child of the current span).
    pub async fn query<T: Send + 'static>(
        self: &Arc<Self>,
        operation: &'static str,
        query: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let span = tracing::info_span!(
            "store.query",
            otel.kind = "client",
            db.system.name = self.system,
            db.operation.name = operation,
            otel.status_code = field::Empty,
            otel.status_description = field::Empty,
        );
        let this = Arc::clone(self);
        let inner = span.clone();
        let result = tokio::task::spawn_blocking(move || {
            inner.in_scope(|| {
                let mut store = this.checkout()?;
                let result = query(&mut store);
                // A failed query may have broken the connection: drop it.
                if result.is_ok() {
                    this.checkin(store);
                }
                result
            })
        })
        .await
        .unwrap_or_else(|join| {
            Err(StoreError {
                kind: StoreErrorKind::Query,
                database: self.location.to_string(),
                step: "while running a read query".into(),
                source: join.to_string().into(),
            })
        });
        match &result {
            Ok(_) => {
                span.record("otel.status_code", "OK");
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", error.to_string());
            }
        }
        result
    }

    fn checkout(&self) -> Result<Store, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(store) => Ok(store),
            None => Store::open(&self.location),
        }
    }

    fn checkin(&self, store: Store) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE
        {
            idle.push(store);
        }
    }
}

impl Drop for StoreReader {
    /// Closing a PostgreSQL connection blocks (it runs a small runtime of its
    /// own), which must not happen on an async worker: idle connections are
    /// closed on a thread of their own.
    fn drop(&mut self) {
        let idle = match self.idle.get_mut() {
            Ok(idle) => std::mem::take(idle),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            drop(idle);
            return;
        }
        // If no thread can be started, the closure (and the connections)
        // comes back in the error: leak them rather than block a worker.
        if let Err(error) = std::thread::Builder::new()
            .name("store-reader-close".into())
            .spawn(move || drop(idle))
        {
            tracing::debug!(%error, "could not close idle read connections");
        }
    }
}
