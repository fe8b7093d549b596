//! A stand-in for Sentry's servers that speaks Sentry's ingest protocol, so
//! that a real Sentry SDK pointed at [`FakeSentry::dsn`] delivers to it.
//!
//! It serves `POST /api/{project_id}/envelope/` (the envelope format: a JSON
//! header line, then items, each a JSON item-header line with `type` and an
//! optional `length`, then the payload, length-delimited or ending at the next
//! newline) and `POST /api/{project_id}/store/` (one JSON event). Bodies may
//! be gzip- or deflate-encoded as `Content-Encoding` says. The DSN's public
//! key must arrive in `X-Sentry-Auth` or the `sentry_key` query parameter, or
//! the answer is 401. Accepted requests are answered 200 with
//! `{"id": "<event id>"}`.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::server::{BodyError, MAX_BODY_BYTES, ServerTask, decode_body, lock, poll_until};

/// The project id in every DSN this peer hands out.
pub const PROJECT_ID: &str = "42";

/// One item of an envelope as received.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeItem {
    /// The item header's `type` (`event`, `transaction`, `session`, ...).
    pub item_type: String,
    /// The whole item header.
    pub header: Value,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl EnvelopeItem {
    /// The payload parsed as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// A fake Sentry ingest endpoint on a loopback port. It serves on the tokio
/// runtime it was started on and stops when dropped.
pub struct FakeSentry {
    shared: Arc<Shared>,
    server: ServerTask,
}

#[derive(Debug, Default)]
struct Shared {
    public_key: String,
    events: Mutex<Vec<Value>>,
    items: Mutex<Vec<EnvelopeItem>>,
    raw_bodies: Mutex<Vec<Vec<u8>>>,
    rejected: AtomicU64,
    down: AtomicBool,
}

impl fmt::Debug for FakeSentry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The DSN carries the key; it stays out of Debug.
        f.debug_struct("FakeSentry")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl FakeSentry {
    /// Binds `127.0.0.1:0` and starts serving, with a fresh random public
    /// key.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            public_key: random_hex(),
            ..Shared::default()
        });
        let router = Router::new()
            .route("/api/{project_id}/envelope/", post(envelope))
            .route("/api/{project_id}/envelope", post(envelope))
            .route("/api/{project_id}/store/", post(store))
            .route("/api/{project_id}/store", post(store))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let server = ServerTask::axum(router).await?;
        Ok(Self { shared, server })
    }

    /// `http://<public_key>@127.0.0.1:PORT/42`.
    pub fn dsn(&self) -> String {
        format!(
            "http://{}@{}/{PROJECT_ID}",
            self.shared.public_key,
            self.server.addr()
        )
    }

    /// The public key the DSN carries.
    pub fn public_key(&self) -> &str {
        &self.shared.public_key
    }

    /// `http://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// The payloads of every `event` item and every store body accepted, in
    /// arrival order.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.shared.events).clone()
    }

    /// Every envelope item accepted, of any type, in arrival order.
    pub fn items(&self) -> Vec<EnvelopeItem> {
        lock(&self.shared.items).clone()
    }

    /// Every request body that passed the key check, after undoing its
    /// `Content-Encoding`, in arrival order.
    pub fn raw_bodies(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.raw_bodies).clone()
    }

    /// How many requests were refused for a wrong key, a wrong project or a
    /// body that did not decode.
    pub fn rejected_requests(&self) -> u64 {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    /// While `on`, answers 503 and records nothing, as during an outage.
    pub fn set_down(&self, on: bool) {
        self.shared.down.store(on, Ordering::SeqCst);
    }

    /// Polls until at least `n` events have arrived, and returns them all.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first; the message says how many arrived and
    /// their ids and exception types.
    pub async fn wait_for_events(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let found = poll_until(timeout, || {
            let events = self.events();
            (events.len() >= n).then_some(events)
        })
        .await;
        match found {
            Some(events) => events,
            None => {
                let events = self.events();
                let lines: Vec<String> = events.iter().map(describe_event).collect();
                panic!(
                    "expected {n} sentry event(s) within {timeout:?}, received {}:\n{}",
                    events.len(),
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

fn describe_event(event: &Value) -> String {
    let id = event["event_id"].as_str().unwrap_or("?");
    let types: Vec<&str> = event["exception"]["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value["type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    format!("  {id} {}", types.join(", "))
}

async fn envelope(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match admit(&shared, &project_id, query.as_deref(), &headers, &body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let parsed = match parse_envelope(&body) {
        Ok(parsed) => parsed,
        Err(error) => return shared.reject(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let mut events = Vec::new();
    for item in &parsed.items {
        if item.item_type == "event" {
            match serde_json::from_slice::<Value>(&item.payload) {
                Ok(event) => events.push(event),
                Err(error) => {
                    return shared.reject(
                        StatusCode::BAD_REQUEST,
                        &format!("event item is not JSON: {error}"),
                    );
                }
            }
        }
    }
    let id = parsed.header["event_id"]
        .as_str()
        .or_else(|| events.iter().find_map(|event| event["event_id"].as_str()))
        .map_or_else(random_hex, str::to_owned);
    lock(&shared.items).extend(parsed.items);
    lock(&shared.events).extend(events);
    accepted(&id)
}

async fn store(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match admit(&shared, &project_id, query.as_deref(), &headers, &body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let event = match serde_json::from_slice::<Value>(&body) {
        Ok(event @ Value::Object(_)) => event,
        Ok(_) => return shared.reject(StatusCode::BAD_REQUEST, "event is not a JSON object"),
        Err(error) => {
            return shared.reject(
                StatusCode::BAD_REQUEST,
                &format!("event is not JSON: {error}"),
            );
        }
    };
    let id = event["event_id"]
        .as_str()
        .map_or_else(random_hex, str::to_owned);
    lock(&shared.events).push(event);
    accepted(&id)
}

fn accepted(id: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({ "id": id }))).into_response()
}

impl Shared {
    fn reject(&self, status: StatusCode, detail: &str) -> Response {
        self.rejected.fetch_add(1, Ordering::SeqCst);
        (status, axum::Json(json!({ "detail": detail }))).into_response()
    }
}

/// Checks the outage mode, the project and the key, then decodes the body and
/// keeps a copy of it.
fn admit(
    shared: &Shared,
    project_id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<u8>, Box<Response>> {
    if shared.down.load(Ordering::SeqCst) {
        return Err(Box::new(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "detail": "sentry is down" })),
            )
                .into_response(),
        ));
    }
    let key = headers
        .get("x-sentry-auth")
        .and_then(|value| value.to_str().ok())
        .and_then(key_from_auth_header)
        .or_else(|| query.and_then(key_from_query));
    match key {
        None => {
            return Err(Box::new(
                shared.reject(StatusCode::UNAUTHORIZED, "missing authentication"),
            ));
        }
        // The key is not echoed: a wrong key may be someone's real one.
        Some(key) if key != shared.public_key => {
            return Err(Box::new(
                shared.reject(StatusCode::UNAUTHORIZED, "invalid public key"),
            ));
        }
        Some(_) => {}
    }
    if project_id != PROJECT_ID {
        return Err(Box::new(
            shared.reject(StatusCode::NOT_FOUND, "unknown project"),
        ));
    }
    let body = decode_body(headers, body).map_err(|error| {
        let status = match error {
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Corrupt(_) => StatusCode::BAD_REQUEST,
        };
        Box::new(shared.reject(status, &error.to_string()))
    })?;
    lock(&shared.raw_bodies).push(body.clone());
    Ok(body)
}

/// `sentry_key` from `Sentry sentry_key=..., sentry_version=7, ...`.
fn key_from_auth_header(value: &str) -> Option<String> {
    let value = value.trim();
    let fields = match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sentry ") => &value[7..],
        _ => value,
    };
    fields.split(',').find_map(|field| {
        let (name, value) = field.trim().split_once('=')?;
        (name.trim() == "sentry_key").then(|| value.trim().to_owned())
    })
}

/// `sentry_key` from a query string.
fn key_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "sentry_key").then(|| value.to_owned())
    })
}

/// A random 32-digit lowercase hex string (a UUID's worth of bits).
fn random_hex() -> String {
    let state = RandomState::new();
    let mut high = state.build_hasher();
    high.write_u8(1);
    let mut low = state.build_hasher();
    low.write_u8(2);
    format!("{:016x}{:016x}", high.finish(), low.finish())
}

/// A parsed envelope.
#[derive(Debug)]
struct Envelope {
    header: Value,
    items: Vec<EnvelopeItem>,
}

/// Why an envelope did not parse.
#[derive(Debug)]
enum EnvelopeError {
    Header(String),
    ItemHeader(String),
    ItemType,
    Length,
    Truncated { expected: usize, remaining: usize },
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(error) => write!(f, "envelope header is not a JSON object: {error}"),
            Self::ItemHeader(error) => write!(f, "item header is not a JSON object: {error}"),
            Self::ItemType => f.write_str("item header has no string \"type\""),
            Self::Length => f.write_str("item header \"length\" is not a non-negative integer"),
            Self::Truncated {
                expected,
                remaining,
            } => write!(
                f,
                "item payload is truncated: length {expected}, {remaining} byte(s) left"
            ),
        }
    }
}

/// Splits `input` at the first newline: the line, and what follows it.
fn split_line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|&byte| byte == b'\n') {
        Some(end) => (&input[..end], &input[end + 1..]),
        None => (input, &[]),
    }
}

fn parse_object(line: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("not an object".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let (header_line, mut rest) = split_line(body);
    let header = parse_object(header_line).map_err(EnvelopeError::Header)?;
    let mut items = Vec::new();
    loop {
        // Blank lines between items (and a trailing newline) are allowed.
        while let [b'\n' | b'\r', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            break;
        }
        let (item_line, after_header) = split_line(rest);
        let item_header = parse_object(item_line).map_err(EnvelopeError::ItemHeader)?;
        let item_type = item_header["type"]
            .as_str()
            .ok_or(EnvelopeError::ItemType)?
            .to_owned();
        let (payload, after_payload) = match item_header.get("length") {
            None | Some(Value::Null) => split_line(after_header),
            Some(length) => {
                let length = length
                    .as_u64()
                    .and_then(|length| usize::try_from(length).ok())
                    .ok_or(EnvelopeError::Length)?;
                if after_header.len() < length {
                    return Err(EnvelopeError::Truncated {
                        expected: length,
                        remaining: after_header.len(),
                    });
                }
                let (payload, tail) = after_header.split_at(length);
                (payload, tail.strip_prefix(b"\n").unwrap_or(tail))
            }
        };
        items.push(EnvelopeItem {
            item_type,
            header: item_header,
            payload: payload.to_vec(),
        });
        rest = after_payload;
    }
    Ok(Envelope { header, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_delimited_and_newline_terminated_items() {
        let body = b"{\"event_id\":\"abc\"}\n{\"type\":\"event\",\"length\":11}\n{\"a\":\"x\ny\"}\n{\"type\":\"attachment\"}\nraw bytes\n";
        let parsed = parse_envelope(body).unwrap();
        assert_eq!(parsed.header["event_id"], "abc");
        assert_eq!(parsed.items.len(), 2);
        assert_eq!(parsed.items[0].item_type, "event");
        assert_eq!(parsed.items[0].payload, b"{\"a\":\"x\ny\"}");
        assert_eq!(parsed.items[1].item_type, "attachment");
        assert_eq!(parsed.items[1].payload, b"raw bytes");
    }

    #[test]
    fn last_item_may_end_without_newline() {
        let parsed = parse_envelope(b"{}\n{\"type\":\"session\"}\n{\"sid\":1}").unwrap();
        assert_eq!(parsed.items.len(), 1);
        assert_eq!(parsed.items[0].json()["sid"], 1);
    }

    #[test]
    fn envelope_with_header_only_has_no_items() {
        let parsed = parse_envelope(b"{\"dsn\":\"x\"}\n").unwrap();
        assert!(parsed.items.is_empty());
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let error = parse_envelope(b"{}\n{\"type\":\"event\",\"length\":50}\n{}").unwrap_err();
        assert!(matches!(
            error,
            EnvelopeError::Truncated {
                expected: 50,
                remaining: 2
            }
        ));
    }

    #[test]
    fn item_without_type_is_an_error() {
        let error = parse_envelope(b"{}\n{\"length\":2}\n{}").unwrap_err();
        assert!(matches!(error, EnvelopeError::ItemType));
    }

    #[test]
    fn header_that_is_not_json_is_an_error() {
        assert!(matches!(
            parse_envelope(b"not json\n").unwrap_err(),
            EnvelopeError::Header(_)
        ));
    }

    #[test]
    fn auth_header_key_is_found_among_fields() {
        let key = key_from_auth_header(
            "Sentry sentry_version=7, sentry_client=sentry.rust/0.49, sentry_key=abc123",
        );
        assert_eq!(key.as_deref(), Some("abc123"));
        assert_eq!(key_from_auth_header("sentry_version=7"), None);
        assert_eq!(
            key_from_query("foo=1&sentry_key=k&sentry_version=7").as_deref(),
            Some("k")
        );
    }
}
