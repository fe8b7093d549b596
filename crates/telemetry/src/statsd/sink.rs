//! The handle callers keep ([`Statsd`]) and the task that owns the UDP socket.
//!
//! Callers must never wait on telemetry, so the handle encodes a metric and `try_send`s the
//! line into a bounded queue; a full queue costs one dropped metric, counted, not a stall.
//! The task packs lines into datagrams and is the only thing that touches the socket.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::{StatsdConfig, StatsdError};
use super::encoder::{Encoder, Metric};

/// What the handles send to the sink task.
enum Command {
    /// One encoded metric (two lines for a negative gauge, which must not be split).
    Line(String),
    /// Send whatever is buffered, then answer.
    Flush(oneshot::Sender<()>),
}

/// Counters shared by the handles and the task.
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    send_errors: AtomicU64,
    datagrams: AtomicU64,
}

/// A handle to the StatsD sink. Cloning it is cheap; every clone feeds the same task.
///
/// [`count`](Self::count), [`gauge`](Self::gauge), [`timing`](Self::timing) and
/// [`send`](Self::send) never block or await: they encode the metric and queue it, or drop
/// and count it when the queue is full. When the last handle is dropped the task sends what
/// is queued and ends.
#[derive(Debug, Clone)]
pub struct Statsd {
    encoder: Arc<Encoder>,
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
}

impl Statsd {
    /// Validates `config`, resolves its address, opens a non-blocking UDP socket connected
    /// to it and spawns the sink task on the current tokio runtime.
    ///
    /// Returns the handle and the task's [`JoinHandle`], which completes once every handle
    /// has been dropped and the last datagram has been sent.
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
        // A connected socket lets the kernel report ICMP "port unreachable" as
        // ECONNREFUSED on a later send, so a dead server shows up in `send_errors`.
        socket.connect(addr).await.map_err(socket_error)?;

        let (tx, rx) = mpsc::channel(config.queue);
        let counters = Arc::new(Counters::default());
        let task = SinkTask {
            socket,
            addr,
            rx,
            counters: Arc::clone(&counters),
            max_datagram: config.max_datagram,
            flush_interval: config.flush_interval,
            buffer: String::with_capacity(config.max_datagram),
            deadline: None,
            failing: false,
        };
        let join = tokio::spawn(task.run());
        tracing::debug!(%addr, prefix = %config.prefix, "statsd sink started");
        let statsd = Self {
            encoder: Arc::new(Encoder::new(&config.prefix)),
            tx,
            counters,
        };
        Ok((statsd, join))
    }

    /// Adds `n` to the counter `name` (`<prefix>.<name>:<n>|c`).
    pub fn count(&self, name: &str, n: i64) {
        self.send(Metric::counter(name, n));
    }

    /// Sets the gauge `name` to `value` (`<prefix>.<name>:<value>|g`).
    pub fn gauge(&self, name: &str, value: f64) {
        self.send(Metric::gauge(name, value));
    }

    /// Records `elapsed` for the timer `name`, in milliseconds (`<prefix>.<name>:12.5|ms`).
    pub fn timing(&self, name: &str, elapsed: Duration) {
        self.send(Metric::timer(name, elapsed));
    }

    /// Queues any [`Metric`], e.g. one with a sample rate. A metric that cannot be encoded
    /// (see [`EncodeError`](crate::EncodeError)) or finds the queue full is dropped and
    /// counted in [`dropped`](Self::dropped).
    pub fn send(&self, metric: Metric<'_>) {
        let queued = match self.encoder.encode(&metric) {
            Ok(line) => self.tx.try_send(Command::Line(line)).is_ok(),
            Err(_) => false,
        };
        if !queued {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends everything queued before this call and waits until it has been handed to the
    /// socket. Unlike the metric calls this may wait for room in the queue.
    pub async fn flush(&self) -> Result<(), StatsdError> {
        let (done, sent) = oneshot::channel();
        self.tx
            .send(Command::Flush(done))
            .await
            .map_err(|_| StatsdError::Closed)?;
        sent.await.map_err(|_| StatsdError::Closed)
    }

    /// Metrics dropped so far: the queue was full, the sink had stopped, the metric could
    /// not be encoded, or it was larger than a datagram on its own.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams that the socket refused to send (e.g. ECONNREFUSED after the server's host
    /// answered "port unreachable", or no route to the host).
    pub fn send_errors(&self) -> u64 {
        self.counters.send_errors.load(Ordering::Relaxed)
    }

    /// Datagrams sent so far.
    pub fn datagrams_sent(&self) -> u64 {
        self.counters.datagrams.load(Ordering::Relaxed)
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
    rx: mpsc::Receiver<Command>,
    counters: Arc<Counters>,
    max_datagram: usize,
    flush_interval: Duration,
    /// Lines waiting to be sent, separated by `\n`; never longer than `max_datagram`.
    buffer: String,
    /// When the buffer must be sent even if it is not full: `flush_interval` after the
    /// first line went into it.
    deadline: Option<Instant>,
    /// Whether the last send failed, so that a dead server logs once, not per datagram.
    failing: bool,
}

impl SinkTask {
    async fn run(mut self) {
        loop {
            let deadline = self.deadline;
            tokio::select! {
                command = self.rx.recv() => match command {
                    Some(Command::Line(line)) => self.push(line).await,
                    Some(Command::Flush(done)) => {
                        self.send_buffer().await;
                        // The flusher may have given up waiting; that is fine.
                        let _ = done.send(());
                    }
                    None => break,
                },
                () = sleep_until(deadline), if deadline.is_some() => self.send_buffer().await,
            }
        }
        // Every handle is gone: send what is left and stop.
        self.send_buffer().await;
        tracing::debug!(addr = %self.addr, "statsd sink stopped");
    }

    async fn push(&mut self, line: String) {
        if line.len() > self.max_datagram {
            // It would never fit, and splitting it would corrupt it.
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !self.buffer.is_empty() && self.buffer.len() + 1 + line.len() > self.max_datagram {
            self.send_buffer().await;
        }
        if self.buffer.is_empty() {
            self.deadline = Some(Instant::now() + self.flush_interval);
        } else {
            self.buffer.push('\n');
        }
        self.buffer.push_str(&line);
        if self.buffer.len() == self.max_datagram {
            self.send_buffer().await;
        }
    }

    async fn send_buffer(&mut self) {
        self.deadline = None;
        if self.buffer.is_empty() {
            return;
        }
        match self.socket.send(self.buffer.as_bytes()).await {
            Ok(_) => {
                self.counters.datagrams.fetch_add(1, Ordering::Relaxed);
                if self.failing {
                    self.failing = false;
                    tracing::info!(addr = %self.addr, "statsd sends recovered");
                }
            }
            Err(error) => {
                self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(addr = %self.addr, %error, "statsd send failed; metrics are being lost");
                }
            }
        }
        self.buffer.clear();
    }
}

/// Sleeps until `deadline`; never completes without one (the caller guards on that).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
