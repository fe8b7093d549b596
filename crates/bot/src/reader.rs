//! Read queries for commands: run on the blocking pool (the store's clients
//! block), over a few reused connections, each in a `store.query` span.

use std::sync::{Arc, Mutex};

use guildscope_store::{Location, Store, StoreError, StoreErrorKind};
use tracing::{Instrument, field};

/// Connections kept open between queries, and queries run at once: more
/// wait for a connection rather than open one each.
const IDLE: usize = 4;

/// Runs read queries against the statistics database.
#[derive(Debug)]
pub struct StoreReader {
    location: Location,
    system: &'static str,
    idle: Mutex<Vec<Store>>,
    running: tokio::sync::Semaphore,
}

impl StoreReader {
    /// A reader for `location`; connections open on first use.
    pub fn new(location: Location) -> Arc<Self> {
        let system = location.system_name();
        Arc::new(Self {
            location,
            system,
            idle: Mutex::new(Vec::new()),
            running: tokio::sync::Semaphore::new(IDLE),
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
        // The semaphore is never closed, so a permit always comes.
        let _permit = self.running.acquire().instrument(span.clone()).await;
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
        // If no thread can be started, `spawn` drops the closure, and with it
        // the connections, here on the worker: rare, and better than leaving
        // them open.
        if let Err(error) = std::thread::Builder::new()
            .name("store-reader-close".into())
            .spawn(move || drop(idle))
        {
            tracing::debug!(%error, "could not close idle read connections");
        }
    }
}

/// Answers kept for a short while and shared: while one caller reads a key,
/// the others asking for it wait for that read instead of starting their
/// own, and the answer serves every caller until it is `ttl` old. Statistics
/// over hours and days do not change meaningfully in seconds, and a busy
/// server asking `/stats server` a hundred times a second then costs one
/// query per `ttl`.
#[derive(Debug)]
pub struct Cached<K, V> {
    ttl: std::time::Duration,
    entries: Mutex<std::collections::HashMap<K, Slot<V>>>,
}

type Slot<V> = (std::time::Instant, Arc<tokio::sync::OnceCell<V>>);

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 4_096;

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Cached<K, V> {
    /// Answers live `ttl`.
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The answer for `key`: a fresh one from the cache, or the one `read`
    /// gives (shared with everyone asking meanwhile). A failed read is not
    /// kept; the next caller reads again.
    pub async fn get_or_read<E, F>(&self, key: K, read: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut entries = match self.entries.lock() {
                Ok(entries) => entries,
                Err(poisoned) => poisoned.into_inner(),
            };
            if entries.len() >= SWEEP_AT {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            let now = std::time::Instant::now();
            let slot = entries
                .entry(key)
                .or_insert_with(|| (now, Arc::new(tokio::sync::OnceCell::new())));
            if slot.0.elapsed() >= self.ttl {
                *slot = (now, Arc::new(tokio::sync::OnceCell::new()));
            }
            Arc::clone(&slot.1)
        };
        cell.get_or_try_init(|| read).await.cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicU32, Ordering},
        time::Duration,
    };

    use super::Cached;

    #[tokio::test]
    async fn concurrent_callers_share_one_read_until_it_expires() {
        let cache = Cached::new(Duration::from_millis(200));
        let reads = AtomicU32::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, ()>(7)
        };
        let (a, b, c) = tokio::join!(
            cache.get_or_read(1, read()),
            cache.get_or_read(1, read()),
            cache.get_or_read(2, read()),
        );
        assert_eq!((a, b, c), (Ok(7), Ok(7), Ok(7)));
        assert_eq!(reads.load(Ordering::SeqCst), 2, "one read per key");
        assert_eq!(cache.get_or_read(1, read()).await, Ok(7));
        assert_eq!(reads.load(Ordering::SeqCst), 2, "still fresh");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.get_or_read(1, read()).await, Ok(7));
        assert_eq!(reads.load(Ordering::SeqCst), 3, "read again once expired");
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let cache = Cached::new(Duration::from_secs(60));
        assert_eq!(
            cache.get_or_read(1, async { Err::<u32, _>("down") }).await,
            Err("down")
        );
        assert_eq!(
            cache.get_or_read(1, async { Ok::<_, &str>(5) }).await,
            Ok(5)
        );
    }
}
