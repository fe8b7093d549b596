//! The handle callers keep ([`Statsd`]) and the task that owns the UDP socket.
//!
//! Callers must never wait on telemetry, so the handle encodes a metric straight into a
//! buffer of pending lines of the calling thread's own, under a lock held for that
//! append alone and otherwise taken only by the task, when it collects; when
//! [`StatsdConfig::queue`] metrics are pending on that thread already, the metric is
//! dropped and counted, not waited for. (With one buffer for every thread, each metric
//! moved the buffer's cache line between cores, which cost more than the metric.)
//! Counters (without a sample rate) are not written as lines but summed by name until
//! the next send, as StatsD itself sums them over its own interval: a busy channel
//! costs one line per send, not one per message.
//!
//! The task collects and sends what is waiting every flush interval, on a timer of its
//! own; a metric wakes it early only when it makes [`WAKE_DATAGRAMS`] datagrams' worth
//! wait on its thread, and a flush or the last handle going away wake it too. Waking the
//! task costs the caller far more than the metric itself (a sleeping runtime thread is
//! woken for it), so under load the task is woken once per several datagrams, and at a
//! low rate not at all. It sums the counters across threads, writes their lines, packs
//! lines into datagrams and is the only thing that touches the socket.
//!
//! Timers go out thread by thread; gauges, whose last value is the one the server keeps,
//! go out in the order they were set across every thread.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use thread_local::ThreadLocal;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::config::{StatsdConfig, StatsdError};
use super::encoder::{Encoder, Metric, MetricValue};
use crate::fxhash::FxMap;

/// How many datagrams' worth of lines waiting wakes the task before its interval is up.
pub const WAKE_DATAGRAMS: usize = 8;

/// How long sends must go without an error before failing sends are reported as
/// recovered. A send to a port nobody listens on fails only every other time (the error
/// is the ICMP answer to the send before it), so one success says nothing.
const RECOVERED_AFTER: Duration = Duration::from_secs(10);

/// Whether sends are failing, so a failure is logged once when it starts and once when
/// it is over, however many sends fail in between (each is counted).
#[derive(Debug, Default)]
struct SendHealth {
    /// The last failed send, while sends are failing.
    last_failure: Option<Instant>,
}

impl SendHealth {
    /// A send failed at `now`; whether that starts a failure.
    fn failed(&mut self, now: Instant) -> bool {
        self.last_failure.replace(now).is_none()
    }

    /// A send succeeded at `now`; whether that ends a failure: none for
    /// [`RECOVERED_AFTER`].
    fn succeeded(&mut self, now: Instant) -> bool {
        match self.last_failure {
            Some(last) if now.saturating_duration_since(last) >= RECOVERED_AFTER => {
                self.last_failure = None;
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    send_errors: AtomicU64,
    datagrams: AtomicU64,
}

/// What the handles and the task share.
#[derive(Debug)]
struct Shared {
    /// Each thread's metrics waiting for the task.
    threads: ThreadLocal<Mutex<Pending>>,
    /// What the task has been asked to do.
    orders: Mutex<Orders>,
    /// Wakes the task; a wake-up while it is busy is kept for its next wait.
    wake: Notify,
    counters: Counters,
    max_datagram: usize,
    /// Bytes of lines waiting on one thread that wake the task: [`WAKE_DATAGRAMS`]
    /// datagrams.
    wake_at: usize,
    /// Lines and distinct counters waiting on one thread, at most.
    queue: usize,
    /// The next gauge's place in the order gauges were set, across threads: a
    /// gauge's last value is the one the server keeps, so gauges go out in that order.
    gauge_order: AtomicU64,
}

/// One thread's metrics waiting for the task.
#[derive(Debug, Default)]
struct Pending {
    /// The metrics' lines, one after the other.
    text: String,
    /// Where each metric ends in `text` (a negative gauge is two lines, sent together).
    ends: Vec<usize>,
    /// Counters summed since the last send.
    counts: Counts,
    /// Gauges' lines, one after the other.
    gauge_text: String,
    /// Each gauge's place in the order across threads, and where it ends in
    /// `gauge_text`.
    gauges: Vec<(u64, usize)>,
}

/// What the task has been asked to do.
#[derive(Debug, Default)]
struct Orders {
    /// Callers of [`Statsd::flush`] waiting for what is pending to be sent.
    flushes: Vec<oneshot::Sender<()>>,
    /// Every handle is gone.
    closed: bool,
    /// The task has ended.
    stopped: bool,
}

/// Counters summed by name, in the order they first came.
#[derive(Debug, Default)]
struct Counts {
    index: FxMap<Box<str>, usize>,
    sums: Vec<(Box<str>, i64)>,
}

impl Counts {
    fn len(&self) -> usize {
        self.sums.len()
    }

    /// Adds `n` to `name` if it is counted already; whether it was.
    fn add(&mut self, name: &str, n: i64) -> bool {
        let Some(&at) = self.index.get(name) else {
            return false;
        };
        let sum = &mut self.sums[at].1;
        *sum = sum.saturating_add(n);
        true
    }

    /// Counts `name`, not counted yet, from `n`.
    fn insert(&mut self, name: Box<str>, n: i64) {
        self.index.insert(name.clone(), self.sums.len());
        self.sums.push((name, n));
    }

    /// Adds every sum of `other`, taking them from it.
    fn merge(&mut self, other: &mut Counts) {
        for (name, n) in other.take() {
            if !self.add(&name, n) {
                self.insert(name, n);
            }
        }
    }

    /// The sums so far, leaving none.
    fn take(&mut self) -> Vec<(Box<str>, i64)> {
        self.index.clear();
        std::mem::take(&mut self.sums)
    }
}

/// Locks `mutex`. A panic elsewhere while it was held leaves whole metrics or none.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The calling thread's pending metrics.
    fn pending(&self) -> MutexGuard<'_, Pending> {
        lock(self.threads.get_or_default())
    }

    fn orders(&self) -> MutexGuard<'_, Orders> {
        lock(&self.orders)
    }
}

/// Tells the task when the last handle is gone.
#[derive(Debug)]
struct Handles(Arc<Shared>);

impl Drop for Handles {
    fn drop(&mut self) {
        self.0.orders().closed = true;
        self.0.wake.notify_one();
    }
}

/// A cheap, clonable handle for sending metrics. Every method returns at once.
#[derive(Debug, Clone)]
pub struct Statsd {
    encoder: Arc<Encoder>,
    shared: Arc<Shared>,
    _handles: Arc<Handles>,
}

impl Statsd {
    /// Starts the sink task on the current tokio runtime and returns a handle plus the
    /// task. The task ends once every handle is dropped, after sending what is queued.
    pub async fn start(config: StatsdConfig) -> Result<(Self, JoinHandle<()>), StatsdError> {
        config.validate()?;
        let addr = resolve(&config.address).await?;
        let local: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket_error = |source| StatsdError::Socket { addr, source };
        let socket = UdpSocket::bind(local).await.map_err(socket_error)?;
        socket.connect(addr).await.map_err(socket_error)?;

        let shared = Arc::new(Shared {
            threads: ThreadLocal::new(),
            orders: Mutex::default(),
            wake: Notify::new(),
            counters: Counters::default(),
            max_datagram: config.max_datagram,
            wake_at: config.max_datagram.saturating_mul(WAKE_DATAGRAMS),
            queue: config.queue,
            gauge_order: AtomicU64::new(0),
        });
        let encoder = Arc::new(Encoder::new(&config.prefix));
        let task = SinkTask {
            socket,
            addr,
            shared: Arc::clone(&shared),
            encoder: Arc::clone(&encoder),
            flush_interval: config.flush_interval,
            buffer: String::with_capacity(config.max_datagram),
            line: String::new(),
            counts: Counts::default(),
            health: SendHealth::default(),
        };
        let join = tokio::spawn(task.run());
        tracing::debug!(%addr, prefix = %config.prefix, "statsd sink started");
        let statsd = Self {
            encoder,
            _handles: Arc::new(Handles(Arc::clone(&shared))),
            shared,
        };
        Ok((statsd, join))
    }

    /// Adds `n` to the counter `name`.
    pub fn count(&self, name: &str, n: i64) {
        self.send(Metric::counter(name, n));
    }

    /// Sets the gauge `name` to `value`.
    pub fn gauge(&self, name: &str, value: f64) {
        self.send(Metric::gauge(name, value));
    }

    /// Records a timer sample for `name`, sent in milliseconds.
    pub fn timing(&self, name: &str, elapsed: Duration) {
        self.send(Metric::timer(name, elapsed));
    }

    /// Queues any metric. Drops it (counted in [`Statsd::dropped`]) if it cannot be
    /// encoded, does not fit in a datagram, or the queue is full.
    pub fn send(&self, metric: Metric<'_>) {
        let shared = &*self.shared;
        let summed = match metric.value {
            MetricValue::Counter(n) if metric.sample_rate.is_none() => Some(n),
            _ => None,
        };
        let gauge = matches!(metric.value, MetricValue::Gauge(_));
        let mut guard = shared.pending();
        let pending = &mut *guard;
        // A counter already pending since the last send: the timer runs for it.
        if let Some(n) = summed
            && pending.counts.add(metric.name, n)
        {
            return;
        }
        if pending.ends.len() + pending.counts.len() + pending.gauges.len() >= shared.queue {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let text = if gauge {
            &mut pending.gauge_text
        } else {
            &mut pending.text
        };
        let start = text.len();
        let encoded = self.encoder.encode_into(&metric, text);
        if encoded.is_err() || text.len() - start > shared.max_datagram {
            // Unencodable, or it would never fit: splitting it would corrupt it.
            text.truncate(start);
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if gauge {
            // Taken under the thread's lock, so a thread's gauges keep their order.
            let order = shared.gauge_order.fetch_add(1, Ordering::Relaxed);
            pending.gauges.push((order, pending.gauge_text.len()));
            return;
        }
        let end = match summed {
            // Checked as a line; the task writes the line with the sum.
            Some(n) => {
                pending.text.truncate(start);
                pending.counts.insert(metric.name.into(), n);
                start
            }
            None => {
                let end = pending.text.len();
                pending.ends.push(end);
                end
            }
        };
        drop(guard);
        // Once, as the lines waiting reach the mark: the task takes them all.
        if start < shared.wake_at && end >= shared.wake_at {
            shared.wake.notify_one();
        }
    }

    /// Sends everything queued so far now, and waits until it has been handed to the
    /// socket. Only an error if the sink task is gone.
    pub async fn flush(&self) -> Result<(), StatsdError> {
        let (done, sent) = oneshot::channel();
        {
            let mut orders = self.shared.orders();
            if orders.stopped {
                return Err(StatsdError::Closed);
            }
            orders.flushes.push(done);
        }
        self.shared.wake.notify_one();
        sent.await.map_err(|_| StatsdError::Closed)
    }

    /// Metrics dropped so far: queue full, too large for a datagram, or unencodable.
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams the socket refused to send so far.
    pub fn send_errors(&self) -> u64 {
        self.shared.counters.send_errors.load(Ordering::Relaxed)
    }

    /// Datagrams sent so far.
    pub fn datagrams_sent(&self) -> u64 {
        self.shared.counters.datagrams.load(Ordering::Relaxed)
    }
}

async fn resolve(address: &str) -> Result<SocketAddr, StatsdError> {
    if let Ok(addr) = address.parse() {
        return Ok(addr);
    }
    let mut addrs =
        tokio::net::lookup_host(address)
            .await
            .map_err(|source| StatsdError::Resolve {
                address: address.to_owned(),
                source,
            })?;
    addrs.next().ok_or_else(|| StatsdError::NoAddress {
        address: address.to_owned(),
    })
}

/// The task that owns the socket and packs lines into datagrams.
struct SinkTask {
    socket: UdpSocket,
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Writes the summed counters' lines.
    encoder: Arc<Encoder>,
    flush_interval: Duration,
    /// The datagram being filled.
    buffer: String,
    /// One summed counter's line, kept for its allocation.
    line: String,
    /// The counters taken from the threads, summed.
    counts: Counts,
    health: SendHealth,
}

/// What the task takes from the handles in one go.
struct Taken {
    text: String,
    ends: Vec<usize>,
    /// Gauges' lines, in the order they were set.
    gauges: Vec<(u64, String)>,
    counts: Vec<(Box<str>, i64)>,
    flushes: Vec<oneshot::Sender<()>>,
    closed: bool,
}

impl SinkTask {
    async fn run(mut self) {
        let mut text = String::new();
        let mut ends = Vec::new();
        let mut tick = tokio::time::interval(self.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is now; what is sent on a tick has waited an interval.
        tick.tick().await;
        loop {
            let due = tokio::select! {
                () = self.shared.wake.notified() => false,
                _ = tick.tick() => true,
            };
            // Woken early, the task sends the full datagrams only.
            let taken = self.take(&mut text, &mut ends);
            self.pack(&taken.text, &taken.ends).await;
            for (_, line) in &taken.gauges {
                self.pack_line(line).await;
            }
            self.pack_counts(&taken.counts).await;
            // A partly filled datagram waits for the next tick, unless this is
            // the tick or someone waits for it.
            if due || taken.closed || !taken.flushes.is_empty() {
                self.send_buffer().await;
            }
            for done in taken.flushes {
                let _ = done.send(());
            }
            if taken.closed {
                break;
            }
            // Keep the allocations for next time.
            text = taken.text;
            ends = taken.ends;
        }
        self.shared.orders().stopped = true;
        tracing::debug!(addr = %self.addr, "statsd sink stopped");
    }

    /// Takes every thread's pending metrics, the counters summed across threads, and
    /// what the task has been asked to do.
    fn take(&mut self, text: &mut String, ends: &mut Vec<usize>) -> Taken {
        let (flushes, closed) = {
            let mut orders = self.shared.orders();
            (std::mem::take(&mut orders.flushes), orders.closed)
        };
        text.clear();
        ends.clear();
        let mut gauges = Vec::new();
        for pending in self.shared.threads.iter() {
            let mut pending = lock(pending);
            let offset = text.len();
            text.push_str(&pending.text);
            ends.extend(pending.ends.iter().map(|end| offset + end));
            pending.text.clear();
            pending.ends.clear();
            self.counts.merge(&mut pending.counts);
            let mut start = 0;
            for &(order, end) in &pending.gauges {
                gauges.push((order, pending.gauge_text[start..end].to_owned()));
                start = end;
            }
            pending.gauges.clear();
            pending.gauge_text.clear();
        }
        gauges.sort_unstable_by_key(|&(order, _)| order);
        Taken {
            text: std::mem::take(text),
            ends: std::mem::take(ends),
            gauges,
            counts: self.counts.take(),
            flushes,
            closed,
        }
    }

    /// Packs metrics into the datagram being filled, sending each one that is full.
    async fn pack(&mut self, text: &str, ends: &[usize]) {
        let mut start = 0;
        for &end in ends {
            let line = &text[start..end];
            start = end;
            self.pack_line(line).await;
        }
    }

    /// Writes the summed counters' lines and packs them. A sum whose line has grown
    /// past a datagram is dropped and counted, as a metric that never fits is.
    async fn pack_counts(&mut self, counts: &[(Box<str>, i64)]) {
        let mut line = std::mem::take(&mut self.line);
        for (name, sum) in counts {
            line.clear();
            let encoded = self
                .encoder
                .encode_into(&Metric::counter(name, *sum), &mut line);
            if encoded.is_err() || line.len() > self.shared.max_datagram {
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.pack_line(&line).await;
        }
        self.line = line;
    }

    async fn pack_line(&mut self, line: &str) {
        if !self.buffer.is_empty() && self.buffer.len() + 1 + line.len() > self.shared.max_datagram
        {
            self.send_buffer().await;
        }
        if !self.buffer.is_empty() {
            self.buffer.push('\n');
        }
        self.buffer.push_str(line);
        if self.buffer.len() == self.shared.max_datagram {
            self.send_buffer().await;
        }
    }

    async fn send_buffer(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        match self.socket.send(self.buffer.as_bytes()).await {
            Ok(_) => {
                self.shared
                    .counters
                    .datagrams
                    .fetch_add(1, Ordering::Relaxed);
                if self.health.succeeded(Instant::now()) {
                    tracing::info!(addr = %self.addr, "statsd sends recovered");
                }
            }
            Err(error) => {
                self.shared
                    .counters
                    .send_errors
                    .fetch_add(1, Ordering::Relaxed);
                if self.health.failed(Instant::now()) {
                    tracing::warn!(addr = %self.addr, %error, "statsd send failed; metrics are being lost");
                }
            }
        }
        self.buffer.clear();
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_once_and_over_only_after_a_quiet_stretch() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut health = SendHealth::default();
        assert!(!health.succeeded(at(0)), "nothing to recover from");
        assert!(health.failed(at(100)), "the first failure starts one");
        // Sends to a closed port alternate: every other one fails.
        for tick in 2..100 {
            let now = at(tick * 100);
            if tick % 2 == 0 {
                assert!(!health.succeeded(now), "recovered at tick {tick}");
            } else {
                assert!(
                    !health.failed(now),
                    "a second failure reported at tick {tick}"
                );
            }
        }
        // The last failure was at 9.9 s: recovered once 10 s have passed since.
        assert!(!health.succeeded(at(19_800)));
        assert!(health.succeeded(at(19_900)));
        assert!(!health.succeeded(at(20_000)), "recovered twice");
        assert!(health.failed(at(20_100)), "a new failure is reported again");
    }
}
