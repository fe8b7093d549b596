//! The store writer: batches of ops are committed on a thread of their own,
//! one transaction each, so a slow disk never stalls the event loop.
//!
//! The channel into the writer is bounded: when the database falls behind,
//! the collector waits (backpressure) instead of buffering without limit. A
//! failed batch is retried with backoff and never dropped.

use std::{sync::Arc, thread, time::Duration};

use guildscope_store::{Location, Op, Store, StoreError, StoreErrorKind};
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
    /// Batches that may wait for the writer before the collector blocks.
    pub queue_batches: usize,
}

impl WriterConfig {
    /// Defaults for the given database.
    pub fn new(location: Location) -> Self {
        Self {
            location,
            batch_size: 2_000,
            batch_interval: Duration::from_millis(100),
            queue_batches: 8,
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
    /// Opens the database (applying migrations) and starts the writer thread.
    pub fn start(config: &WriterConfig, stats: Arc<BotStats>) -> Result<Self, StoreError> {
        let mut store = Store::open(&config.location)?;
        let (tx, mut rx) = mpsc::channel::<Batch>(config.queue_batches.max(1));
        let thread = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                while let Some(batch) = rx.blocking_recv() {
                    commit_with_retry(&mut store, &batch.ops, &stats);
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
        Ok(Self { tx, thread })
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

fn commit_with_retry(store: &mut Store, batch: &[Op], stats: &BotStats) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.apply(batch) {
            Ok(counts) => {
                stats.rows_written(counts);
                return;
            }
            Err(error) => {
                stats.error("store_write");
                tracing::warn!(%error, ops = batch.len(), retry_in_ms = backoff.as_millis() as u64, "store batch failed; keeping it and retrying");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
