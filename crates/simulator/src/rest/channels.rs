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
    community::{ChannelKind, MessageBody, StoredMessage, World, wire},
    emit,
    state::Shared,
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

/// `POST /channels/{channel}/messages`: a message by the bot, announced on the gateway.
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
    let mut world = shared.world();
    let (g, kind) = readable(&world, channel_id)?;
    if !matches!(kind, ChannelKind::Text | ChannelKind::PublicThread) {
        return Err(ApiError::NOT_TEXT_CHANNEL);
    }
    let stored = StoredMessage {
        id: world.next_id(),
        author_id: world.bot.user_id,
        edited_ms: None,
        revision: 0,
        body: MessageBody::Posted(content.into()),
        webhook_id: None,
        flags: body["flags"].as_u64().unwrap_or(0) & 0x1004,
        dispatched: false,
    };
    let mut message = emit::message_json(&world, g, channel_id, &stored, false)
        .ok_or(ApiError::UNKNOWN_CHANNEL)?;
    emit::message_create(&shared.hub, &mut world, g, channel_id, stored);
    drop(world);
    message.embeds = super::interactions::embeds(&body);
    Ok(Json(message).into_response())
}
