//! The control API under `/control` (no authentication): ground truth, the REST log,
//! injected interactions and messages, what the bot posted, faults, traffic and status — the
//! same operations as the Rust [`Simulator`](crate::Simulator) methods, for bots in any
//! language.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::{
    Fault, InteractionRequest, MessageRequest, SimError, faults, ground_truth, messages, sim,
    state::{Shared, lock},
};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/info", get(info))
        .route("/ground-truth", get(truth))
        .route("/rest-log", get(rest_log))
        .route("/community", get(community))
        .route("/status", get(status))
        .route("/interactions", post(inject_interaction))
        .route("/interactions/{id}", get(interaction))
        .route("/messages", post(inject_message))
        .route("/channels/{id}/bot-messages", get(bot_messages))
        .route("/faults", post(inject_fault))
        .route("/traffic", post(traffic))
        .with_state(shared)
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn sim_error(e: &SimError) -> Response {
    let status = match e {
        SimError::UnknownGuild { .. }
        | SimError::UnknownChannel { .. }
        | SimError::UnknownMember { .. } => StatusCode::NOT_FOUND,
        SimError::NotCovered { .. } | SimError::NoConnection { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, e)))
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.info.clone()).into_response()
}

async fn truth(State(shared): State<Arc<Shared>>) -> Response {
    Json(ground_truth::snapshot(&shared)).into_response()
}

async fn rest_log(State(shared): State<Arc<Shared>>) -> Response {
    Json(lock(&shared.rest_log).all()).into_response()
}

async fn community(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = crate::Community::snapshot(&shared.world());
    Json(snapshot).into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    Json(sim::status(&shared)).into_response()
}

async fn inject_interaction(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: InteractionRequest = match parse(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match sim::inject_interaction(&shared, request) {
        Ok(injected) => Json(injected).into_response(),
        Err(e) => sim_error(&e),
    }
}

async fn interaction(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let record = id
        .parse()
        .ok()
        .and_then(|id| sim::interaction_record(&shared, id));
    match record {
        Some(record) => Json(record).into_response(),
        None => error(StatusCode::NOT_FOUND, "unknown interaction"),
    }
}

async fn inject_message(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: MessageRequest = match parse(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match messages::inject(&shared, request) {
        Ok(injected) => Json(injected).into_response(),
        Err(e) => sim_error(&e),
    }
}

async fn bot_messages(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(channel_id) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "channel id must be a snowflake");
    };
    let posted = lock(&shared.messages).bot_messages(channel_id);
    if posted.is_empty() && shared.world().find_channel(channel_id).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown channel {channel_id}"),
        );
    }
    Json(posted).into_response()
}

async fn inject_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let fault: Fault = match parse(&body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    match faults::inject(&shared, fault) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficRequest {
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    firehose: Option<u64>,
}

async fn traffic(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: TrafficRequest = match parse(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    if let Some(rate) = request.rate {
        if !(rate.is_finite() && rate >= 0.0) {
            return error(StatusCode::BAD_REQUEST, "rate must be a number >= 0");
        }
        shared.traffic.set_rate(rate);
    }
    if let Some(n) = request.firehose {
        shared.traffic.firehose(n);
    }
    Json(sim::status(&shared)).into_response()
}
