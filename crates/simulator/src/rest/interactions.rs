//! Interaction callbacks and the webhook-token routes (edit original, followups). They carry
//! no bot token; the interaction token authorizes them. The initial response must arrive
//! within the deadline (Discord: 3 s) or it is refused with 10062 Unknown interaction.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde_json::{Value, json};

use super::error::{ApiError, snowflake};
use crate::{
    community::{MessageBody, StoredMessage, World},
    emit,
    interactions::{CallbackRecord, Entry, WebhookRecord},
    state::{Shared, Stats, lock},
};

/// Interaction tokens stay valid this long for webhook routes.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;

/// Embeds from a request body, each with Discord's default `type`.
pub(crate) fn embeds(body: &Value) -> Vec<twilight_model::channel::message::Embed> {
    body["embeds"]
        .as_array()
        .map(|embeds| {
            embeds
                .iter()
                .filter_map(|e| {
                    let mut e = e.clone();
                    if let Value::Object(map) = &mut e {
                        map.entry("type").or_insert(json!("rich"));
                    }
                    serde_json::from_value(e).ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Creates a message authored by the bot through the interaction's webhook; announces it
/// unless ephemeral. Returns the message's JSON.
fn webhook_message(
    shared: &Shared,
    world: &mut World,
    entry: &Entry,
    data: &Value,
    extra_flags: u64,
) -> (u64, Value) {
    let flags = (data["flags"].as_u64().unwrap_or(0) & (EPHEMERAL | (1 << 12))) | extra_flags;
    let stored = StoredMessage {
        id: world.next_id(),
        author_id: world.bot.user_id,
        edited_ms: None,
        revision: 0,
        body: MessageBody::Posted(data["content"].as_str().unwrap_or("").into()),
        webhook_id: Some(world.bot.application_id),
        reply_to: None,
        flags,
        dispatched: false,
    };
    let id = stored.id;
    let channel_id = entry.record.channel_id;
    let g = world.guild_idx(entry.record.guild_id);
    let json = g
        .and_then(|g| emit::message_json(world, g, channel_id, &stored, false))
        .map(|mut m| {
            m.embeds = embeds(data);
            serde_json::to_value(m).unwrap_or(Value::Null)
        })
        .unwrap_or(Value::Null);
    if let Some(g) = g
        && flags & EPHEMERAL == 0
    {
        emit::message_create(&shared.hub, world, g, channel_id, stored);
    }
    (id, json)
}

/// `POST /interactions/{id}/{token}/callback`.
pub(crate) async fn callback(
    State(shared): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let id = snowflake(&id, ApiError::UNKNOWN_INTERACTION)?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| ApiError::INVALID_JSON)?;
    let Some(kind) = body["type"].as_u64() else {
        return Err(ApiError::invalid_form("type is required"));
    };
    let mut world = shared.world();
    let mut registry = lock(&shared.interactions);
    let entry = registry
        .get_mut(id)
        .filter(|e| e.record.token == token)
        .ok_or(ApiError::UNKNOWN_INTERACTION)?;
    if entry.record.callback.is_some() {
        return Err(ApiError::ALREADY_ACKNOWLEDGED);
    }
    let elapsed = entry.elapsed_ms();
    if elapsed > shared.config.interaction_deadline.as_secs_f64() * 1000.0 {
        entry.record.late_callbacks += 1;
        Stats::bump(&shared.stats.interactions_late);
        tracing::info!(
            interaction_id = id,
            elapsed_ms = elapsed,
            "late interaction callback refused"
        );
        return Err(ApiError::UNKNOWN_INTERACTION);
    }
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let original = match kind {
        4 => Some(webhook_message(&shared, &mut world, entry, &data, 0)),
        5 => Some(webhook_message(&shared, &mut world, entry, &data, LOADING)),
        _ => None,
    };
    let message_id = original.as_ref().map(|(id, _)| *id);
    if let Some((_, message)) = original {
        entry.original_message = Some(message.clone());
    }
    entry.record.callback = Some(CallbackRecord {
        kind,
        body,
        ms_after_dispatch: elapsed,
        ms_after_written: entry.ms_after_written(arrived),
    });
    Stats::bump(&shared.stats.interactions_answered);
    tracing::debug!(
        interaction_id = id,
        callback_type = kind,
        elapsed_ms = elapsed,
        "interaction answered"
    );
    if query.get("with_response").is_some_and(|v| v == "true") {
        let resource = match &entry.original_message {
            Some(message) => json!({"type": kind, "message": message}),
            None => json!({"type": kind}),
        };
        let answer = json!({
            "interaction": {
                "id": id.to_string(),
                "type": if entry.record.kind == crate::InteractionKind::Autocomplete { 4 } else { 2 },
                "response_message_id": message_id.map(|m| m.to_string()),
                "response_message_loading": kind == 5,
                "response_message_ephemeral": data["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0,
            },
            "resource": resource,
        });
        return Ok(Json(answer).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Finds the interaction behind a webhook id and token.
fn webhook_entry<'a>(
    shared: &Shared,
    registry: &'a mut crate::interactions::InteractionRegistry,
    webhook: &str,
    token: &str,
) -> Result<&'a mut Entry, ApiError> {
    let webhook = snowflake(webhook, ApiError::UNKNOWN_WEBHOOK)?;
    if webhook != shared.application_id {
        return Err(ApiError::UNKNOWN_WEBHOOK);
    }
    let entry = registry
        .by_token_mut(token)
        .ok_or(ApiError::UNKNOWN_WEBHOOK)?;
    if entry.dispatched.elapsed() > TOKEN_LIFETIME {
        return Err(ApiError::INVALID_WEBHOOK_TOKEN);
    }
    Ok(entry)
}

/// `POST /webhooks/{application}/{token}`: a followup message.
pub(crate) async fn followup(
    State(shared): State<Arc<Shared>>,
    Path((webhook, token)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| ApiError::INVALID_JSON)?;
    let mut world = shared.world();
    let mut registry = lock(&shared.interactions);
    let entry = webhook_entry(&shared, &mut registry, &webhook, &token)?;
    if entry.record.callback.is_none() {
        return Err(ApiError::UNKNOWN_WEBHOOK);
    }
    let (message_id, message) = webhook_message(&shared, &mut world, entry, &body, 0);
    let elapsed = entry.elapsed_ms();
    entry.record.followups.push(WebhookRecord {
        message_id,
        body,
        ms_after_dispatch: elapsed,
    });
    entry.followup_messages.push((message_id, message.clone()));
    Ok(Json(message))
}

/// `PATCH /webhooks/{application}/{token}/messages/{message}` (`@original` or a followup).
pub(crate) async fn edit_message(
    State(shared): State<Arc<Shared>>,
    Path((webhook, token, message)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| ApiError::INVALID_JSON)?;
    let mut world = shared.world();
    let mut registry = lock(&shared.interactions);
    let entry = webhook_entry(&shared, &mut registry, &webhook, &token)?;
    let elapsed = entry.elapsed_ms();
    let slot = named_message(entry, &message)?;
    let message_id: u64 = slot["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(content) = body.get("content") {
        slot["content"] = content.clone();
    }
    if body.get("embeds").is_some() {
        slot["embeds"] = serde_json::to_value(embeds(&body)).unwrap_or(json!([]));
    }
    let flags = slot["flags"].as_u64().unwrap_or(0) & !LOADING;
    slot["flags"] = json!(flags);
    let edited_ms = world.now_ms();
    slot["edited_timestamp"] =
        serde_json::to_value(crate::community::wire::timestamp(edited_ms)).unwrap_or(Value::Null);
    let answer = slot.clone();
    entry.record.edits.push(WebhookRecord {
        message_id,
        body: body.clone(),
        ms_after_dispatch: elapsed,
    });
    let (guild_id, channel_id) = (entry.record.guild_id, entry.record.channel_id);
    drop(registry);
    if flags & EPHEMERAL == 0
        && let Some(g) = world.guild_idx(guild_id)
    {
        let new_body = body["content"]
            .as_str()
            .map(|c| MessageBody::Posted(c.into()));
        emit::message_update(&shared.hub, &mut world, g, channel_id, message_id, new_body);
    }
    Ok(Json(answer))
}

/// The message a webhook route names: `@original` or a followup's id.
fn named_message<'a>(entry: &'a mut Entry, message: &str) -> Result<&'a mut Value, ApiError> {
    if message == "@original" {
        entry.original_message.as_mut()
    } else {
        let id = snowflake(message, ApiError::UNKNOWN_MESSAGE)?;
        entry
            .followup_messages
            .iter_mut()
            .find(|(m, _)| *m == id)
            .map(|(_, v)| v)
    }
    .ok_or(ApiError::UNKNOWN_MESSAGE)
}

/// `GET /webhooks/{application}/{token}/messages/{message}`.
pub(crate) async fn get_message(
    State(shared): State<Arc<Shared>>,
    Path((webhook, token, message)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut registry = lock(&shared.interactions);
    let entry = webhook_entry(&shared, &mut registry, &webhook, &token)?;
    Ok(Json(named_message(entry, &message)?.clone()))
}
