//! Channel routes: the channel itself, its history (for backfill) and sending messages.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use twilight_model::channel::{Channel, Message};

use super::error::{ApiError, snowflake};
use crate::{
    BotMessage,
    community::{ChannelKind, MessageBody, StoredMessage, World, wire},
    emit,
    state::{Shared, lock},
};

/// The guild index of a channel the bot may read, or Discord's error.
fn readable(world: &World, channel_id: u64) -> Result<(usize, ChannelKind), ApiError> {
    let (g, channel) = world
        .find_channel(channel_id)
        .ok_or(ApiError::UNKNOWN_CHANNEL)?;
    if channel.staff_only {
        // The bot holds no staff role: the overwrite denying @everyone applies to it.
        return Err(ApiError::MISSING_ACCESS);
    }
    Ok((g, channel.kind))
}

/// `GET /channels/{channel}`.
pub(crate) async fn get_channel(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
) -> Result<Json<Channel>, ApiError> {
    let channel_id = snowflake(&channel, ApiError::UNKNOWN_CHANNEL)?;
    let world = shared.world();
    let (g, channel) = world
        .find_channel(channel_id)
        .ok_or(ApiError::UNKNOWN_CHANNEL)?;
    let guild = world.guilds.get(g).ok_or(ApiError::UNKNOWN_CHANNEL)?;
    Ok(Json(wire::channel(guild, channel, true)))
}

fn parse_id(query: &HashMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::invalid_form(format!("{key} is not a snowflake")))
        })
        .transpose()
}

/// `GET /channels/{channel}/messages?before=&after=&around=&limit=`: newest first.
pub(crate) async fn history(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Message>>, ApiError> {
    let channel_id = snowflake(&channel, ApiError::UNKNOWN_CHANNEL)?;
    let limit = match query.get("limit") {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid_form("limit must be between 1 and 100"))?,
    };
    let before = parse_id(&query, "before")?;
    let after = parse_id(&query, "after")?;
    let around = parse_id(&query, "around")?;
    let world = shared.world();
    let (g, kind) = readable(&world, channel_id)?;
    if !matches!(kind, ChannelKind::Text | ChannelKind::PublicThread) {
        return Ok(Json(Vec::new()));
    }
    let Some(history) = world
        .guilds
        .get(g)
        .and_then(|guild| guild.history.get(&channel_id))
    else {
        return Ok(Json(Vec::new()));
    };
    // History is ordered oldest first; pick a window, then answer newest first.
    let ascending: Vec<&StoredMessage> = history.iter().collect();
    let window: Vec<&StoredMessage> = if let Some(around) = around {
        let at = ascending.partition_point(|m| m.id < around);
        let start = at.saturating_sub(limit / 2);
        ascending.iter().skip(start).take(limit).copied().collect()
    } else if let Some(before) = before {
        let end = ascending.partition_point(|m| m.id < before);
        ascending[..end]
            .iter()
            .rev()
            .take(limit)
            .rev()
            .copied()
            .collect()
    } else if let Some(after) = after {
        let start = ascending.partition_point(|m| m.id <= after);
        ascending.iter().skip(start).take(limit).copied().collect()
    } else {
        ascending.iter().rev().take(limit).rev().copied().collect()
    };
    let messages = window
        .into_iter()
        .rev()
        .filter_map(|m| emit::message_json(&world, g, channel_id, m, false))
        .collect();
    Ok(Json(messages))
}

/// A reply's `message_reference`, as a bot sends it.
struct Reference {
    /// The message replied to.
    message_id: u64,
    /// The channel it was named in, if the reference named one.
    channel_id: Option<u64>,
    /// Whether an unknown message fails the request (Discord's default) or sends a plain
    /// message.
    fail_if_not_exists: bool,
}

/// A snowflake in a request body (a string or a number).
fn body_snowflake(value: &Value, path: &'static str) -> Result<u64, ApiError> {
    let id = match value {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    id.filter(|&id| id > 0).ok_or_else(|| {
        ApiError::invalid_field(
            path,
            "NUMBER_TYPE_COERCE",
            format!(
                "Value \"{}\" is not snowflake.",
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            ),
        )
    })
}

/// The `message_reference` of a message body, checked the way Discord checks it.
fn reference(body: &Value) -> Result<Option<Reference>, ApiError> {
    let reference = match body.get("message_reference") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(reference)) => reference,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "message_reference",
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            ));
        }
    };
    match reference.get("type").and_then(Value::as_u64) {
        None | Some(0) => {}
        Some(1) => {
            return Err(ApiError::invalid_field(
                "message_reference.type",
                "BASE_TYPE_CHOICES",
                "Forwarding messages is not simulated; only replies (type 0) are.",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "message_reference.type",
                "BASE_TYPE_CHOICES",
                "Value must be one of {0, 1}.",
            ));
        }
    }
    let message_id = match reference.get("message_id") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_field(
                "message_reference.message_id",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        }
        Some(id) => body_snowflake(id, "message_reference.message_id")?,
    };
    let channel_id = match reference.get("channel_id") {
        None | Some(Value::Null) => None,
        Some(id) => Some(body_snowflake(id, "message_reference.channel_id")?),
    };
    Ok(Some(Reference {
        message_id,
        channel_id,
        fail_if_not_exists: reference
            .get("fail_if_not_exists")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    }))
}

/// The `allowed_mentions` of a message body, checked the way Discord checks it.
fn allowed_mentions(body: &Value) -> Result<Option<Value>, ApiError> {
    let mentions = match body.get("allowed_mentions") {
        None | Some(Value::Null) => return Ok(None),
        Some(mentions @ Value::Object(_)) => mentions,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "allowed_mentions",
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            ));
        }
    };
    let parse = match &mentions["parse"] {
        Value::Null => Vec::new(),
        Value::Array(parse) => parse.iter().map(|p| p.as_str().unwrap_or("")).collect(),
        _ => vec![""],
    };
    if parse
        .iter()
        .any(|p| !matches!(*p, "roles" | "users" | "everyone"))
    {
        return Err(ApiError::invalid_field(
            "allowed_mentions.parse",
            "BASE_TYPE_CHOICES",
            "Value must be one of ('roles', 'users', 'everyone').",
        ));
    }
    for (list, path) in [
        ("users", "allowed_mentions.users"),
        ("roles", "allowed_mentions.roles"),
    ] {
        let ids = match &mentions[list] {
            Value::Null => continue,
            Value::Array(ids) => ids,
            _ => {
                return Err(ApiError::invalid_field(
                    path,
                    "BASE_TYPE_LIST",
                    "Must be a list.",
                ));
            }
        };
        if ids.len() > 100 {
            return Err(ApiError::invalid_field(
                path,
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            ));
        }
        for id in ids {
            body_snowflake(id, path)?;
        }
        if !ids.is_empty() && parse.contains(&list) {
            return Err(ApiError::invalid_field(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                format!("parse:[\"{list}\"] and {list}: [ids...] are mutually exclusive."),
            ));
        }
    }
    Ok(Some(mentions.clone()))
}

/// `POST /channels/{channel}/messages`: a message by the bot, announced on the gateway and
/// recorded for the control API. A reply (`message_reference`) must name a message of the
/// same channel that is still in its history or was injected there through the control API;
/// otherwise Discord's 50035 answers, unless `fail_if_not_exists` is false, which sends a
/// plain message instead.
pub(crate) async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let channel_id = snowflake(&channel, ApiError::UNKNOWN_CHANNEL)?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| ApiError::INVALID_JSON)?;
    let content = body["content"].as_str().unwrap_or("").to_owned();
    let has_embeds = body["embeds"].as_array().is_some_and(|e| !e.is_empty());
    if content.is_empty() && !has_embeds {
        return Err(ApiError::EMPTY_MESSAGE);
    }
    if content.chars().count() > 2000 {
        return Err(ApiError::invalid_form(
            "content must be 2000 or fewer in length",
        ));
    }
    let reference = reference(&body)?;
    let allowed_mentions = allowed_mentions(&body)?;
    let mut world = shared.world();
    let (g, kind) = readable(&world, channel_id)?;
    if !matches!(kind, ChannelKind::Text | ChannelKind::PublicThread) {
        return Err(ApiError::NOT_TEXT_CHANNEL);
    }
    let reply_to = match reference {
        None => None,
        Some(reference) => {
            let in_channel = reference.channel_id.is_none_or(|c| c == channel_id);
            let in_history = world
                .guilds
                .get(g)
                .and_then(|guild| guild.history.get(&channel_id))
                .is_some_and(|h| h.iter().any(|m| m.id == reference.message_id));
            let injected = || {
                lock(&shared.messages)
                    .ms_since_injected(reference.message_id, channel_id)
                    .is_some()
            };
            if in_channel && (in_history || injected()) {
                Some(reference.message_id)
            } else if reference.fail_if_not_exists {
                return Err(ApiError::invalid_field(
                    "message_reference",
                    "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                    "Unknown message",
                ));
            } else {
                None
            }
        }
    };
    let stored = StoredMessage {
        id: world.next_id(),
        author_id: world.bot.user_id,
        edited_ms: None,
        revision: 0,
        body: MessageBody::Posted(content.as_str().into()),
        webhook_id: None,
        reply_to,
        flags: body["flags"].as_u64().unwrap_or(0) & 0x1004,
        dispatched: false,
    };
    let mut message = emit::message_json(&world, g, channel_id, &stored, false)
        .ok_or(ApiError::UNKNOWN_CHANNEL)?;
    emit::message_create(&shared.hub, &mut world, g, channel_id, stored);
    drop(world);
    let mentions_replied_user = reply_to.is_some()
        && allowed_mentions
            .as_ref()
            .is_none_or(|m| m["replied_user"].as_bool().unwrap_or(false));
    {
        let mut log = lock(&shared.messages);
        let ms_after_trigger = reply_to.and_then(|id| log.ms_since_injected(id, channel_id));
        log.bot_posted(BotMessage {
            id: message.id.get(),
            channel_id,
            content,
            reply_to,
            allowed_mentions,
            mentions_replied_user,
            ms_after_trigger,
        });
    }
    message.embeds = super::interactions::embeds(&body);
    Ok(Json(message).into_response())
}
