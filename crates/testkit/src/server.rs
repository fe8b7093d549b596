//! What every peer shares: a listener on `127.0.0.1:0`, a server task on the
//! current tokio runtime that stops when its handle is dropped, body
//! decompression, and polling with a deadline.

use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long `shutdown` waits for open connections to finish before it stops
/// the server task outright.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often the `wait_for_*` helpers look again.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Request bodies larger than this are refused with 413; OTLP batches and
/// Sentry envelopes are far smaller.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A server task bound to a loopback port. Dropping it signals the server to
/// stop accepting and to close its connections.
#[derive(Debug)]
pub(crate) struct ServerTask {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Binds `127.0.0.1:0`.
    pub(crate) async fn bind() -> std::io::Result<(TcpListener, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok((listener, addr))
    }

    /// Serves `router` over HTTP/1.1 on a fresh loopback port.
    pub(crate) async fn axum(router: Router) -> std::io::Result<Self> {
        let (listener, addr) = Self::bind().await?;
        Ok(Self::spawn(addr, move |stop| async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // A dropped sender means the same as a sent signal.
                    let _ = stop.await;
                })
                .await;
            if let Err(error) = served {
                eprintln!("testkit http server on {addr} stopped: {error}");
            }
        }))
    }

    /// Spawns `serve` on the current runtime; the future it builds must
    /// return once the receiver it is given resolves.
    pub(crate) fn spawn<F, Fut>(addr: SocketAddr, serve: F) -> Self
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(stopped));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals the server to stop and waits (a bounded time) until it has.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Locks `mutex`, carrying on past a panic in another holder: the peers only
/// append to or copy what they guard, so the data stays consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Calls `check` until it returns `Some` or `timeout` passes; `None` on
/// timeout.
pub(crate) async fn poll_until<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Why a request body could not be decoded.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The `Content-Encoding` is not one this peer understands.
    UnsupportedEncoding(String),
    /// The body did not decompress.
    Corrupt(std::io::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnsupportedEncoding(encoding) => {
                write!(f, "unsupported content-encoding {encoding:?}")
            }
            Self::Corrupt(error) => write!(f, "body does not decompress: {error}"),
        }
    }
}

/// Undoes `Content-Encoding`: identity, gzip (`x-gzip` too) and deflate
/// (zlib-wrapped, as HTTP defines it, with raw deflate accepted as well).
pub(crate) fn decode_body(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Vec<u8>, BodyError> {
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    match encoding.as_str() {
        "" | "identity" => return Ok(body.to_vec()),
        "gzip" | "x-gzip" => {
            flate2::read::MultiGzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(BodyError::Corrupt)?;
        }
        "deflate" => {
            if flate2::read::ZlibDecoder::new(body)
                .read_to_end(&mut out)
                .is_err()
            {
                out.clear();
                flate2::read::DeflateDecoder::new(body)
                    .read_to_end(&mut out)
                    .map_err(BodyError::Corrupt)?;
            }
        }
        other => return Err(BodyError::UnsupportedEncoding(other.to_owned())),
    }
    Ok(out)
}
