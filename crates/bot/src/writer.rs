//! The store writer: batches of ops are committed on a thread of their own,
//! one transaction each, so a slow disk never stalls the event loop.
//!
//! The channel into the writer is bounded: when the database falls behind,
//! the collector waits (backpressure) instead of buffering without limit. A
//! failed batch is retried with backoff and never dropped.

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use guildscope_store::{Location, Op, Store, StoreError, StoreErrorKind};
use guildscope_trace::{Kind, Span, Status};
use tokio::sync::mpsc;

use crate::BotStats;

/// How the writer batches.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The database.
    pub location: Location,
    /// Largest number of ops in one transaction.
    pub batch_size: usize,
    /// Longest time an op waits before its batch is committed.
    pub batch_interval: Duration,
    /// Batches that may wait for the writer.
    pub queue_batches: usize,
    /// Writes held in memory while the writer is behind (a slow or absent
    /// database) before event handling waits for it. Commands keep being
    /// answered until then.
    pub max_pending: usize,
}

impl WriterConfig {
    /// Defaults for the given database.
    pub fn new(location: Location) -> Self {
        Self {
            location,
            batch_size: 2_000,
            batch_interval: Duration::from_millis(100),
            queue_batches: 8,
            max_pending: 1_000_000,
        }
    }
}

/// Writes to commit together, and when the oldest of them was received.
#[derive(Debug, Default)]
pub struct Batch {
    /// The writes, in order.
    pub ops: Vec<Op>,
    /// When the event behind the first write arrived; commit latency is
    /// measured from here.
    pub oldest: Option<std::time::Instant>,
}

/// The sending half: the runtime pushes finished batches here.
#[derive(Debug)]
pub struct StoreWriter {
    tx: mpsc::Sender<Batch>,
    thread: thread::JoinHandle<()>,
}

impl StoreWriter {
    /// Starts the writer thread, which opens the database (applying
    /// migrations); returns once the database is open.
    ///
    /// The database is opened on the writer thread because the PostgreSQL
    /// client blocks, which must not happen on the async runtime.
    pub async fn start(config: &WriterConfig, stats: Arc<BotStats>) -> Result<Self, StoreError> {
        let (tx, mut rx) = mpsc::channel::<Batch>(config.queue_batches.max(1));
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let location = config.location.clone();
        let thread = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let mut store = match Store::open(&location) {
                    Ok(store) => {
                        let _ = opened_tx.send(Ok(()));
                        store
                    }
                    Err(error) => {
                        let _ = opened_tx.send(Err(error));
                        return;
                    }
                };
                let system = location.system_name();
                while let Some(batch) = rx.blocking_recv() {
                    commit_with_retry(&mut store, system, &batch.ops, &stats);
                    let syncs = batch
                        .ops
                        .iter()
                        .filter(|op| matches!(op, Op::SyncMembers { .. }))
                        .count();
                    stats.member_syncs_committed(syncs as u64);
                    if let Some(oldest) = batch.oldest {
                        stats.batch_committed(oldest.elapsed());
                    }
                }
            })
            .map_err(|e| StoreError {
                kind: StoreErrorKind::Open,
                database: config.location.to_string(),
                step: "while starting the writer thread".into(),
                source: Box::new(e),
            })?;
        match opened_rx.await {
            Ok(Ok(())) => Ok(Self { tx, thread }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(StoreError {
                kind: StoreErrorKind::Open,
                database: config.location.to_string(),
                step: "while opening the database".into(),
                source: "the writer thread stopped".into(),
            }),
        }
    }

    /// Queues a batch if the writer has room; hands it back otherwise.
    pub fn try_send(&self, batch: Batch) -> Result<(), Batch> {
        self.tx.try_send(batch).map_err(|e| match e {
            mpsc::error::TrySendError::Full(batch) | mpsc::error::TrySendError::Closed(batch) => {
                batch
            }
        })
    }

    /// Queues a batch, waiting while the writer is behind.
    pub async fn send(&self, batch: Batch) {
        // The writer thread only stops when every sender is gone, so this
        // cannot fail while `self` exists.
        let _ = self.tx.send(batch).await;
    }

    /// Waits for every queued batch to be committed.
    pub async fn finish(self) {
        let Self { tx, thread } = self;
        drop(tx);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// The longest wait between two tries of a failed batch: short, so a
/// database that comes back is written to within seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Commits one batch, retrying until it lands. Each try is a `store.batch`
/// span of its own trace (a batch mixes writes from many events).
fn commit_with_retry(store: &mut Store, system: &'static str, batch: &[Op], stats: &BotStats) {
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut span = Span::root("store.batch");
        span.set_kind(Kind::Client);
        span.set("db.system.name", system);
        span.set("db.operation.name", "apply");
        span.set("db.operation.batch.size", batch.len() as i64);
        span.set("store.attempt", i64::from(attempt));
        let started = Instant::now();
        let result = guildscope_trace::sync_scope(span.context(), || store.apply(batch));
        stats.store_transaction(started.elapsed(), result.is_ok());
        match result {
            Ok(counts) => {
                let rows: u64 = counts.tables().iter().map(|(_, n)| n).sum();
                span.set("store.rows", rows as i64);
                span.set_status(Status::Ok);
                stats.rows_written(counts);
                return;
            }
            Err(error) => {
                span.set_status(Status::Error(error.to_string().into()));
                drop(span);
                stats.error("store_write");
                tracing::warn!(%error, ops = batch.len(), retry_in_ms = backoff.as_millis() as u64, "store batch failed; keeping it and retrying");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
