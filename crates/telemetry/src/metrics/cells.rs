//! The building blocks of the registry: a read-mostly map from a label value to its cell,
//! capped in size, and a histogram made of atomics.
//!
//! The hot path writes only memory no other busy thread writes: each thread keeps
//! handles to the cells it has used, so after a label value's first use on a thread an
//! update takes no lock, and counters and histograms are sharded, each thread adding
//! to a shard (a cache line) of its own. A read lock's count, or one counter that every
//! thread adds to, is a cache line every thread writes; on two busy cores that line
//! moving back and forth cost more than the update. The shared map's write lock is
//! taken once per new label value, and its read lock once per value per thread; a
//! scrape adds the shards up.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use thread_local::ThreadLocal;

use crate::fxhash::FxMap;

/// The label value that stands for every value past a label's cap.
pub(super) const OTHER: &str = "other";

/// What a label map needs to know about a key beyond hashing it.
pub(super) trait LabelKey {
    /// Whether this is the literal value `"other"`, which must share the fold cell so that
    /// two samples never carry the same label set.
    fn is_other(&self) -> bool;
}

impl LabelKey for str {
    fn is_other(&self) -> bool {
        self == OTHER
    }
}

impl LabelKey for u32 {
    fn is_other(&self) -> bool {
        false
    }
}

/// Shards per counter and histogram. Threads take shards in turn, so the first few
/// threads that count (the runtime's workers) each have one; past that, threads share.
const SHARDS: usize = 8;

/// The shard of the calling thread.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.try_with(|shard| *shard).unwrap_or(0)
}

/// An atomic on a cache line of its own.
#[derive(Default)]
#[repr(align(64))]
struct Line(AtomicU64);

/// A counter sharded by thread: adding writes the calling thread's shard only.
#[derive(Default)]
pub(super) struct Counter {
    shards: [Line; SHARDS],
}

impl Counter {
    pub(super) fn add(&self, n: u64) {
        if let Some(line) = self.shards.get(shard()) {
            line.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total so far.
    pub(super) fn get(&self) -> u64 {
        self.shards.iter().fold(0_u64, |sum, line| {
            sum.wrapping_add(line.0.load(Ordering::Relaxed))
        })
    }
}

/// A hash map keyed by label values (see [`FxMap`]).
pub(super) type Map<K, V> = FxMap<K, V>;

/// A map from one label's values to their cells, holding at most `cap` values; the rest
/// share one cell rendered as `"other"`, and each update that lands there because of the
/// cap is counted.
///
/// Cells are never removed, so the map only grows, up to `cap`.
pub(super) struct LabelMap<K: Send, V: Send + Sync> {
    label: &'static str,
    cap: usize,
    cells: RwLock<Map<K, Arc<V>>>,
    /// Each thread's handles to the cells it has used.
    local: ThreadLocal<RefCell<Map<K, Arc<V>>>>,
    other: V,
    /// Whether anything has been recorded in `other`, so that an unused fold cell does not
    /// render as a sample.
    other_used: AtomicBool,
    /// Updates that went to `other` because the map was full.
    folded: AtomicU64,
}

impl<K: Hash + Eq + Clone + Send, V: Send + Sync> LabelMap<K, V> {
    /// An empty map for the label `label`, holding at most `cap` values, with `other` as
    /// the cell that every value past the cap shares.
    pub(super) fn new(label: &'static str, cap: usize, other: V) -> Self {
        Self {
            label,
            cap,
            cells: RwLock::new(Map::default()),
            local: ThreadLocal::new(),
            other,
            other_used: AtomicBool::new(false),
            folded: AtomicU64::new(0),
        }
    }

    /// Runs `update` on the cell of `key`, creating it with `to_key` and `make` on first
    /// use, or on the fold cell when the map is full.
    pub(super) fn with<Q, R>(
        &self,
        key: &Q,
        to_key: impl FnOnce(&Q) -> K,
        make: impl FnOnce(&Q) -> V,
        update: impl FnOnce(&V) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + LabelKey + ?Sized,
    {
        if key.is_other() {
            return self.with_other(update);
        }
        let local = self.local.get_or_default();
        // An update never runs another update of the same map on the same thread, but
        // a failed borrow only costs the slow path.
        if let Ok(cached) = local.try_borrow()
            && let Some(cell) = cached.get(key)
        {
            return update(cell);
        }
        let Some((key, cell)) = self.shared(key, to_key, make) else {
            return self.fold(update);
        };
        if let Ok(mut cached) = local.try_borrow_mut() {
            cached.insert(key, Arc::clone(&cell));
        }
        update(&cell)
    }

    /// The key and cell of `key` in the shared map, adding them with `to_key` and `make`
    /// if there is room; `None` when the map is full.
    fn shared<Q>(
        &self,
        key: &Q,
        to_key: impl FnOnce(&Q) -> K,
        make: impl FnOnce(&Q) -> V,
    ) -> Option<(K, Arc<V>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        {
            let cells = self.cells.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((key, cell)) = cells.get_key_value(key) {
                return Some((key.clone(), Arc::clone(cell)));
            }
            if cells.len() >= self.cap {
                return None;
            }
        }
        let mut cells = self.cells.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have added the key, or filled the map, in between.
        if !cells.contains_key(key) {
            if cells.len() >= self.cap {
                return None;
            }
            cells.insert(to_key(key), Arc::new(make(key)));
        }
        cells
            .get_key_value(key)
            .map(|(key, cell)| (key.clone(), Arc::clone(cell)))
    }

    /// Runs `update` on the fold cell, counting the update as folded.
    pub(super) fn fold<R>(&self, update: impl FnOnce(&V) -> R) -> R {
        self.folded.fetch_add(1, Ordering::Relaxed);
        self.with_other(update)
    }

    fn with_other<R>(&self, update: impl FnOnce(&V) -> R) -> R {
        // A plain load first keeps the hot path from writing a shared cache line.
        if !self.other_used.load(Ordering::Relaxed) {
            self.other_used.store(true, Ordering::Relaxed);
        }
        update(&self.other)
    }

    /// The cells, under a read lock, for rendering.
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Map<K, Arc<V>>> {
        self.cells.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fold cell, if anything has been recorded in it.
    pub(super) fn other(&self) -> Option<&V> {
        self.other_used
            .load(Ordering::Relaxed)
            .then_some(&self.other)
    }

    /// The label's name, as in `guildscope_metrics_labels_folded_total{label="..."}`.
    pub(super) fn label(&self) -> &'static str {
        self.label
    }

    /// Updates that went to the fold cell because the map was full.
    pub(super) fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }
}

/// Upper bounds (inclusive, in nanoseconds) of the command duration buckets, 1 ms to 10 s.
pub(super) const COMMAND_BUCKETS: &[u64] = &[
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds (in nanoseconds) of the rate-limit wait buckets, 1 ms to 60 s.
pub(super) const RATELIMIT_BUCKETS: &[u64] = &[
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Upper bounds (in nanoseconds) of the store batch buckets, 0.5 ms to 10 s.
pub(super) const STORE_BATCH_BUCKETS: &[u64] = &[
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The most buckets a histogram has: its bounds and one above them all.
const MAX_BUCKETS: usize = 16;

/// One thread's share of a histogram, on cache lines of its own.
#[repr(align(64))]
struct HistogramShard {
    buckets: [AtomicU64; MAX_BUCKETS],
    sum_nanos: AtomicU64,
}

/// A histogram of durations: one atomic per bucket (not cumulative; rendering adds them
/// up) and the sum in nanoseconds, which keeps it exact; sharded by thread like
/// [`Counter`].
///
/// There is no separate count: it is the total of the buckets, so a scrape that races an
/// update still shows a `+Inf` bucket equal to `_count`.
pub(super) struct Histogram {
    bounds: &'static [u64],
    shards: Box<[HistogramShard]>,
}

impl Histogram {
    /// An empty histogram with the given upper bounds, in nanoseconds, ascending; at
    /// most [`MAX_BUCKETS`]` - 1` of them (the constants below).
    pub(super) fn new(bounds: &'static [u64]) -> Self {
        Self {
            // Every caller passes one of the constants below, checked at compile time.
            bounds: &bounds[..bounds.len().min(MAX_BUCKETS - 1)],
            shards: (0..SHARDS)
                .map(|_| HistogramShard {
                    buckets: Default::default(),
                    sum_nanos: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Records one observation.
    pub(super) fn observe(&self, elapsed: Duration) {
        let nanos = nanos(elapsed);
        let index = self.bounds.partition_point(|&bound| bound < nanos);
        let Some(shard) = self.shards.get(shard()) else {
            return;
        };
        if let Some(bucket) = shard.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        // Wraps after 584 years of summed time, which is acceptable for a counter.
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The bounds, in nanoseconds.
    pub(super) fn bounds(&self) -> &'static [u64] {
        self.bounds
    }

    /// Observations per bucket (not cumulative), the last one being above every bound.
    pub(super) fn counts(&self) -> impl Iterator<Item = u64> + '_ {
        (0..=self.bounds.len()).map(|index| {
            self.shards.iter().fold(0_u64, |sum, shard| {
                sum.wrapping_add(shard.buckets[index].load(Ordering::Relaxed))
            })
        })
    }

    /// Sum of all observations, in nanoseconds.
    pub(super) fn sum_nanos(&self) -> u64 {
        self.shards.iter().fold(0_u64, |sum, shard| {
            sum.wrapping_add(shard.sum_nanos.load(Ordering::Relaxed))
        })
    }
}

const _: () = assert!(COMMAND_BUCKETS.len() < MAX_BUCKETS);
const _: () = assert!(RATELIMIT_BUCKETS.len() < MAX_BUCKETS);
const _: () = assert!(STORE_BATCH_BUCKETS.len() < MAX_BUCKETS);

/// `elapsed` in nanoseconds, saturating at `u64::MAX` (584 years).
pub(super) fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}
