//! An HTTP server that answers every method and path with a configurable
//! status and JSON body and records each request, for testing clients of
//! HTTP APIs (annotation endpoints, webhooks) that cannot run here.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::server::{MAX_BODY_BYTES, ServerTask, lock, poll_until};

/// Header names whose values are credentials and never printed by `Debug`.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-sentry-auth",
];

/// One request as received.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method, upper case (`GET`, `POST`, ...).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, without the `?`, if there was one.
    pub query: Option<String>,
    /// Every header in arrival order, names lower case; values that are not
    /// UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body exactly as received (no content decoding).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// Records every request on a loopback port. It serves on the tokio runtime
/// it was started on and stops when dropped.
#[derive(Debug)]
pub struct HttpRecorder {
    shared: Arc<Shared>,
    server: ServerTask,
}

#[derive(Debug)]
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    response: Mutex<(StatusCode, Value)>,
}

impl HttpRecorder {
    /// Binds `127.0.0.1:0` and starts answering 200 with
    /// `{"id": 1, "message": "Annotation added"}`.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            response: Mutex::new((
                StatusCode::OK,
                json!({ "id": 1, "message": "Annotation added" }),
            )),
        });
        let router = Router::new()
            .fallback(record)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let server = ServerTask::axum(router).await?;
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// Answers later requests with `status` and `body`. A status outside
    /// 100..=999 is answered as 500.
    pub fn respond_with(&self, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        *lock(&self.shared.response) = (status, body);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Polls until at least `n` requests have arrived, and returns them all.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first; the message lists the requests that did
    /// arrive (method and path).
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let found = poll_until(timeout, || {
            let requests = self.requests();
            (requests.len() >= n).then_some(requests)
        })
        .await;
        match found {
            Some(requests) => requests,
            None => {
                let requests = self.requests();
                let lines: Vec<String> = requests
                    .iter()
                    .map(|request| format!("  {} {}", request.method, request.path))
                    .collect();
                panic!(
                    "expected {n} request(s) within {timeout:?}, received {}:\n{}",
                    requests.len(),
                    lines.join("\n")
                )
            }
        }
    }

    /// Stops the server and waits until it has stopped.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&shared.requests).push(request);
    let (status, body) = lock(&shared.response).clone();
    (status, axum::Json(body)).into_response()
}
