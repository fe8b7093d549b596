//! Read queries for commands: run on the blocking pool (the store's clients
//! block), over a few reused connections, each in a `store.query` span.

use std::sync::{Arc, Mutex};

use guildscope_store::{Location, Store, StoreError, StoreErrorKind};
use guildscope_trace::{Kind, Span, Status};

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

    /// Runs `query` on a pooled connection off the async workers, in a
    /// `store.query` span for `operation` (a child of the current scope's
    /// span).
    pub async fn query<T: Send + 'static>(
        self: &Arc<Self>,
        operation: &'static str,
        query: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut span = Span::child("store.query");
        span.set_kind(Kind::Client);
        span.set("db.system.name", self.system);
        span.set("db.operation.name", operation);
        let scope = span.context();
        let this = Arc::clone(self);
        // The semaphore is never closed, so a permit always comes.
        let _permit = self.running.acquire().await;
        let result = tokio::task::spawn_blocking(move || {
            guildscope_trace::sync_scope(scope, || {
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
            Ok(_) => span.set_status(Status::Ok),
            Err(error) => span.set_status(Status::Error(error.to_string().into())),
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
///
/// An answer past `ttl` is still given at once while a new one is read in
/// the background (stale while revalidating), so no caller waits for a
/// query once the first answer is in: on a large guild those take hundreds
/// of milliseconds. Past [`STALE_FOR`] times `ttl` (the reads keep failing),
/// callers wait for a read again.
#[derive(Debug)]
pub struct Cached<K, V> {
    ttl: std::time::Duration,
    entries: Arc<Mutex<std::collections::HashMap<K, Slot<V>>>>,
    /// Background reads run one at a time per semaphore permit: answers
    /// that expire together are read again in turn rather than all at once
    /// on every core.
    refreshes: Arc<tokio::sync::Semaphore>,
}

/// One key's answer, or the read that will give it.
#[derive(Debug)]
struct Slot<V> {
    /// When the answer was asked for.
    at: tokio::time::Instant,
    cell: Arc<tokio::sync::OnceCell<V>>,
    /// A background read is under way.
    refreshing: bool,
}

impl<V> Slot<V> {
    fn new(now: tokio::time::Instant) -> Self {
        Self {
            at: now,
            cell: Arc::new(tokio::sync::OnceCell::new()),
            refreshing: false,
        }
    }
}

/// How many `ttl`s an answer may serve while new reads fail.
const STALE_FOR: u32 = 6;

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 4_096;

/// What a caller does about a key.
enum Plan<V> {
    /// Wait for this cell (a fresh answer, or a read under way).
    Wait(Arc<tokio::sync::OnceCell<V>>),
    /// Give this answer; start a background read if `refresh`.
    Serve { value: V, refresh: bool },
}

impl<K, V> Cached<K, V>
where
    K: std::hash::Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Answers live `ttl`; one background read at a time.
    pub fn new(ttl: std::time::Duration) -> Self {
        Self::sharing_refreshes(ttl, Arc::new(tokio::sync::Semaphore::new(1)))
    }

    /// Answers live `ttl`; background reads take a permit of `refreshes`,
    /// which other caches may share.
    pub fn sharing_refreshes(
        ttl: std::time::Duration,
        refreshes: Arc<tokio::sync::Semaphore>,
    ) -> Self {
        Self {
            ttl,
            entries: Arc::default(),
            refreshes,
        }
    }

    fn entries(
        entries: &Mutex<std::collections::HashMap<K, Slot<V>>>,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, Slot<V>>> {
        entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer for `key`: a fresh one from the cache, an expired one
    /// while `read` runs in the background, or the one `read` gives
    /// (shared with everyone asking meanwhile). A failed read is not kept;
    /// the next caller reads again.
    pub async fn get_or_read<E, F>(&self, key: K, read: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let plan = {
            let mut entries = Self::entries(&self.entries);
            let stale_for = self.ttl * STALE_FOR;
            if entries.len() >= SWEEP_AT {
                entries.retain(|_, slot| slot.refreshing || slot.at.elapsed() < stale_for);
            }
            let now = tokio::time::Instant::now();
            let slot = entries.entry(key.clone()).or_insert_with(|| Slot::new(now));
            let age = slot.at.elapsed();
            match slot.cell.get() {
                _ if age < self.ttl => Plan::Wait(Arc::clone(&slot.cell)),
                Some(value) if age < stale_for => {
                    let refresh = !slot.refreshing;
                    slot.refreshing = true;
                    Plan::Serve {
                        value: value.clone(),
                        refresh,
                    }
                }
                // Too old, or the last read failed: read again, and wait.
                _ => {
                    *slot = Slot::new(now);
                    Plan::Wait(Arc::clone(&slot.cell))
                }
            }
        };
        match plan {
            Plan::Wait(cell) => cell.get_or_try_init(|| read).await.cloned(),
            Plan::Serve { value, refresh } => {
                if refresh {
                    self.refresh(key, read);
                }
                Ok(value)
            }
        }
    }

    /// Reads `key` again on a task of its own and keeps the answer; on
    /// failure the old answer stays and the next caller tries again.
    fn refresh<E, F>(&self, key: K, read: F)
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let entries = Arc::clone(&self.entries);
        let refreshes = Arc::clone(&self.refreshes);
        tokio::spawn(async move {
            // The semaphore is never closed: every cache holds it.
            let _turn = refreshes.acquire_owned().await;
            let asked = tokio::time::Instant::now();
            let result = read.await;
            let mut entries = Self::entries(&entries);
            let Some(slot) = entries.get_mut(&key) else {
                return;
            };
            slot.refreshing = false;
            match result {
                Ok(value) => {
                    slot.at = asked;
                    slot.cell = Arc::new(tokio::sync::OnceCell::from(value));
                }
                Err(error) => {
                    tracing::warn!(%error, "refreshing cached statistics failed; the last answer stays");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering},
        },
        time::Duration,
    };

    use super::Cached;

    /// A read that counts itself, takes `ms`, and answers `value`.
    fn counted(
        reads: &Arc<AtomicU32>,
        ms: u64,
        value: u32,
    ) -> impl Future<Output = Result<u32, &'static str>> + Send + 'static {
        let reads = Arc::clone(reads);
        async move {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(value)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_read_while_it_is_fresh() {
        let cache = Cached::new(Duration::from_millis(200));
        let reads = Arc::new(AtomicU32::new(0));
        let (a, b, c) = tokio::join!(
            cache.get_or_read(1, counted(&reads, 20, 7)),
            cache.get_or_read(1, counted(&reads, 20, 7)),
            cache.get_or_read(2, counted(&reads, 20, 7)),
        );
        assert_eq!((a, b, c), (Ok(7), Ok(7), Ok(7)));
        assert_eq!(reads.load(Ordering::SeqCst), 2, "one read per key");
        assert_eq!(cache.get_or_read(1, counted(&reads, 20, 7)).await, Ok(7));
        assert_eq!(reads.load(Ordering::SeqCst), 2, "still fresh");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_answer_is_given_at_once_and_read_again_in_the_background() {
        let cache = Cached::new(Duration::from_millis(100));
        let reads = Arc::new(AtomicU32::new(0));
        assert_eq!(cache.get_or_read(1, counted(&reads, 0, 7)).await, Ok(7));
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The new read takes longer than the caller is given here.
        let stale = tokio::time::timeout(
            Duration::from_millis(100),
            cache.get_or_read(1, counted(&reads, 300, 8)),
        )
        .await;
        assert_eq!(stale, Ok(Ok(7)), "the old answer, without waiting");
        // Callers meanwhile get the old answer too, and start no other read.
        assert_eq!(cache.get_or_read(1, counted(&reads, 0, 9)).await, Ok(7));
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2, "one background read");
        // Its answer is in (and, older than the ttl, being read again).
        assert_eq!(cache.get_or_read(1, counted(&reads, 0, 9)).await, Ok(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_background_read_keeps_the_last_answer() {
        let cache = Cached::new(Duration::from_millis(50));
        assert_eq!(
            cache.get_or_read(1, async { Ok::<u32, &str>(5) }).await,
            Ok(5)
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.get_or_read(1, async { Err("down") }).await, Ok(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The failed read changed nothing; this caller starts another.
        assert_eq!(
            cache.get_or_read(1, async { Ok::<u32, &str>(6) }).await,
            Ok(5)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            cache.get_or_read(1, async { Ok::<u32, &str>(7) }).await,
            Ok(6)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_too_old_is_not_given_while_reads_fail() {
        let cache = Cached::new(Duration::from_millis(10));
        assert_eq!(
            cache.get_or_read(1, async { Ok::<u32, &str>(5) }).await,
            Ok(5)
        );
        // Past STALE_FOR times the ttl, the caller waits for its own read.
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(
            cache.get_or_read(1, async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            cache.get_or_read(1, async { Ok::<u32, &str>(6) }).await,
            Ok(6)
        );
    }

    #[tokio::test(start_paused = true)]
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
