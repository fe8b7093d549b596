//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs` and `/v1/metrics` with
//! `application/x-protobuf` bodies, optionally gzip- or deflate-compressed.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{Refusal, Shared, Signal, Transport};
use crate::server::{BodyError, MAX_BODY_BYTES, decode_body};

const PROTOBUF: &str = "application/x-protobuf";

/// The HTTP receiver's routes.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn traces(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    export(&shared, Signal::Traces, &headers, &body)
}

async fn logs(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    export(&shared, Signal::Logs, &headers, &body)
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    export(&shared, Signal::Metrics, &headers, &body)
}

fn export(shared: &Shared, signal: Signal, headers: &HeaderMap, body: &[u8]) -> Response {
    if shared.refuse_if_unavailable() {
        return (StatusCode::SERVICE_UNAVAILABLE, "collector unavailable").into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type != PROTOBUF {
        shared.reject();
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {media_type:?} is not supported; send {PROTOBUF}"),
        )
            .into_response();
    }
    let body = match decode_body(headers, body) {
        Ok(body) => body,
        Err(error) => {
            shared.reject();
            let status = match error {
                BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                BodyError::Corrupt(_) => StatusCode::BAD_REQUEST,
            };
            return (status, error.to_string()).into_response();
        }
    };
    match shared.accept(signal, &body, Transport::Http) {
        Ok(response) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))],
            response,
        )
            .into_response(),
        Err(Refusal::Unavailable) => {
            (StatusCode::SERVICE_UNAVAILABLE, "collector unavailable").into_response()
        }
        Err(Refusal::Malformed(error)) => (
            StatusCode::BAD_REQUEST,
            format!("export request does not decode: {error}"),
        )
            .into_response(),
    }
}
