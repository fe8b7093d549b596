//! The Prometheus endpoint: `GET /metrics`, `/healthz` and `/readyz` on a listener of
//! their own, served by axum on the caller's tokio runtime.
//!
//! Rendering is cheap (a walk over atomics), so `/metrics` renders in place on the
//! request's task. With a bearer token, every route but `/healthz` (which orchestrators
//! probe without credentials) checks `Authorization: Bearer <token>` in constant time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::{MetricsError, PrometheusConfig};
use super::registry::Metrics;

/// The `Content-Type` of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running Prometheus endpoint.
///
/// [`shutdown`](Self::shutdown) stops it gracefully; dropping it also stops it, without
/// waiting. Not ready (`/readyz` answers 503) until [`set_ready`](Self::set_ready).
#[derive(Debug)]
pub struct PrometheusServer {
    local_addr: SocketAddr,
    ready: Arc<AtomicBool>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl PrometheusServer {
    /// Validates `config`, binds its address and serves `metrics` from a task spawned on
    /// the current tokio runtime.
    pub async fn start(
        config: PrometheusConfig,
        metrics: Arc<Metrics>,
    ) -> Result<PrometheusServer, MetricsError> {
        config.validate()?;
        let addr = config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| MetricsError::LocalAddr { addr, source })?;

        let ready = Arc::new(AtomicBool::new(false));
        let state = AppState {
            metrics,
            ready: Arc::clone(&ready),
            token: config.bearer_token.map(Arc::from),
        };
        let (shutdown, signal) = oneshot::channel::<()>();
        let serve = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
            // Either an explicit shutdown or the server handle being dropped.
            let _ = signal.await;
        });
        let task = tokio::spawn(async move {
            if let Err(error) = serve.await {
                tracing::warn!(addr = %local_addr, %error, "prometheus endpoint stopped");
            }
        });
        tracing::info!(addr = %local_addr, "prometheus endpoint listening");
        Ok(PrometheusServer {
            local_addr,
            ready,
            shutdown,
            task,
        })
    }

    /// The address actually bound (useful when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sets what `/readyz` answers: 200 when ready, 503 when not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Stops accepting connections, lets requests in flight finish, and returns once the
    /// server has stopped.
    pub async fn shutdown(self) {
        // The task may already have ended on its own; either way it is stopping.
        let _ = self.shutdown.send(());
        if let Err(error) = self.task.await {
            tracing::warn!(addr = %self.local_addr, %error, "prometheus endpoint task failed");
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    token: Option<Arc<str>>,
}

impl AppState {
    /// Whether the request may proceed: no token is configured, or it presents it.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.token {
            None => true,
            Some(expected) => presented_token(headers)
                .is_some_and(|presented| constant_time_eq(expected.as_bytes(), presented)),
        }
    }
}

/// The router: `/metrics`, `/healthz`, `/readyz`.
fn app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    state.metrics.record_scrape();
    let body = state.metrics.render();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        "unauthorized",
    )
        .into_response()
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is matched without
/// regard to case, as HTTP requires.
fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer ") {
        return None;
    }
    let token = value.get(7..)?;
    let start = token.iter().position(|&b| b != b' ')?;
    token.get(start..)
}

/// Compares `expected` with `presented` in time that depends only on `expected`'s length,
/// so response timing does not reveal how much of a guess was right.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut difference = u8::from(expected.len() != presented.len());
    for (i, &byte) in expected.iter().enumerate() {
        difference |= byte ^ presented.get(i).copied().unwrap_or(!byte);
    }
    std::hint::black_box(difference) == 0
}
