//! Dispatch bodies (`d`) built from twilight-model types and serialized once per event.
//!
//! Where public Discord docs list fields twilight does not model (READY's `_trace` and
//! `private_channels`, GUILD_CREATE's `stage_instances` …), they are added so clients other
//! than twilight find what the docs promise. MESSAGE_CREATE, the hot event, is rendered from
//! a per-(channel, author) template that was itself serialized from a twilight
//! `MessageCreate`, with the id, timestamp and content substituted.

use std::io::Write as _;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use twilight_model::{
    gateway::{
        ShardId,
        payload::incoming::{GuildCreate, MemberChunk, MessageCreate, Ready},
    },
    guild::UnavailableGuild,
};

use crate::community::{
    GuildState, MemberState, StoredMessage, World, shard_of,
    wire::{self, MessageParts},
};

/// Serializes a payload body. The twilight types cannot fail to serialize to JSON; should
/// one ever do, the failure is logged and an empty object sent rather than crashing.
pub(crate) fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    match serde_json::to_vec(value) {
        Ok(v) => Bytes::from(v),
        Err(error) => {
            tracing::error!(%error, "serializing a gateway payload failed");
            Bytes::from_static(b"{}")
        }
    }
}

fn with_extra(value: impl Serialize, extra: &[(&str, Value)]) -> Bytes {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for (key, v) in extra {
            map.entry(*key).or_insert_with(|| v.clone());
        }
    }
    to_bytes(&value)
}

/// READY for a new session.
pub(crate) fn ready(world: &World, session_id: &str, resume_url: &str, shard: [u32; 2]) -> Bytes {
    let guilds = world
        .guilds
        .iter()
        .filter(|g| shard_of(g.id, shard[1]) == shard[0])
        .map(|g| UnavailableGuild {
            id: wire::id(g.id),
            unavailable: true,
        })
        .collect();
    let ready = Ready {
        application: wire::partial_application(&world.bot),
        guilds,
        resume_gateway_url: resume_url.to_owned(),
        session_id: session_id.to_owned(),
        shard: ShardId::new_checked(shard[0], shard[1]),
        user: wire::current_user(&world.bot),
        version: 10,
    };
    with_extra(
        ready,
        &[
            ("_trace", json!(["[\"guildscope-sim\",{}]"])),
            ("private_channels", json!([])),
            ("relationships", json!([])),
            ("presences", json!([])),
            ("guild_join_requests", json!([])),
            ("geo_ordered_rtc_regions", json!([])),
            ("user_settings", json!({})),
            ("session_type", json!("normal")),
        ],
    )
}

/// RESUMED.
pub(crate) fn resumed() -> Bytes {
    Bytes::from_static(br#"{"_trace":["[\"guildscope-sim\",{}]"]}"#)
}

/// GUILD_CREATE with up to `large_threshold` members (the bot always included).
pub(crate) fn guild_create(world: &World, g: &GuildState, large_threshold: usize) -> Bytes {
    let large = g.members.len() > large_threshold;
    let bot = g.member(world.bot.user_id);
    let members = bot
        .into_iter()
        .chain(g.members.iter().filter(|m| m.user_id != world.bot.user_id))
        .take(large_threshold)
        .map(|m| wire::member(world, m))
        .collect();
    let mut guild = wire::guild(world, g, members, true);
    guild.large = large;
    with_extra(
        GuildCreate::Available(guild),
        &[
            ("stage_instances", json!([])),
            ("stickers", json!([])),
            ("guild_scheduled_events", json!([])),
            ("soundboard_sounds", json!([])),
            ("lazy", json!(true)),
        ],
    )
}

/// What an op 8 REQUEST_GUILD_MEMBERS asked for.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChunkRequest {
    pub(crate) query: Option<String>,
    pub(crate) limit: u64,
    pub(crate) user_ids: Option<Vec<u64>>,
    pub(crate) nonce: Option<String>,
}

/// Members per GUILD_MEMBERS_CHUNK (Discord's limit).
pub(crate) const CHUNK_SIZE: usize = 1000;

/// GUILD_MEMBERS_CHUNK bodies answering a request.
pub(crate) fn member_chunks(world: &World, g: &GuildState, request: &ChunkRequest) -> Vec<Bytes> {
    let mut not_found = Vec::new();
    let selected: Vec<&MemberState> = if let Some(ids) = &request.user_ids {
        ids.iter()
            .take(100)
            .filter_map(|&id| {
                let found = g.member(id);
                if found.is_none() {
                    not_found.push(wire::id(id));
                }
                found
            })
            .collect()
    } else {
        let query = request.query.as_deref().unwrap_or("").to_lowercase();
        let limit = match (query.is_empty(), request.limit) {
            (true, 0) => usize::MAX,
            (false, 0) => 100,
            (_, n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        g.members
            .iter()
            .filter(|m| {
                query.is_empty()
                    || world
                        .user(m.user_id)
                        .is_some_and(|u| u.name.starts_with(&query))
                    || m.nick
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().starts_with(&query))
            })
            .take(limit)
            .collect()
    };
    let chunk_count = selected.len().div_ceil(CHUNK_SIZE).max(1);
    let mut bodies = Vec::with_capacity(chunk_count);
    for index in 0..chunk_count {
        let members = selected
            .iter()
            .skip(index * CHUNK_SIZE)
            .take(CHUNK_SIZE)
            .map(|m| wire::member(world, m))
            .collect();
        let chunk = MemberChunk {
            chunk_count: u32::try_from(chunk_count).unwrap_or(u32::MAX),
            chunk_index: u32::try_from(index).unwrap_or(u32::MAX),
            guild_id: wire::id(g.id),
            members,
            nonce: request.nonce.clone(),
            not_found: if index == 0 {
                std::mem::take(&mut not_found)
            } else {
                Vec::new()
            },
            presences: Vec::new(),
        };
        bodies.push(to_bytes(&chunk));
    }
    bodies
}

/// A full MESSAGE_CREATE body, serialized directly (used off the hot path).
pub(crate) fn message_create(
    world: &World,
    g: &GuildState,
    channel_id: u64,
    m: &StoredMessage,
) -> Bytes {
    let kind = g.channel(channel_id).map(|c| wire::channel_type(c.kind));
    let message = wire::message(
        world,
        MessageParts {
            guild: g,
            channel_id,
            message: m,
            content: wire::content(world.seed, m),
            gateway: true,
        },
    );
    to_bytes(&MessageCreate {
        channel_type: kind,
        message,
    })
}

/// A slot in a [`MessageTemplate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Id,
    Timestamp,
    Content,
}

const SENTINEL_ID: u64 = 4_611_686_018_427_387_903;
const SENTINEL_MS: u64 = 253_402_300_799_000;
const SENTINEL_CONTENT: &str = "@@guildscope-sim-content@@";

/// MESSAGE_CREATE for one (channel, author), pre-serialized around its variable parts.
#[derive(Debug, Clone)]
pub(crate) struct MessageTemplate {
    pieces: Vec<Vec<u8>>,
    slots: Vec<Slot>,
}

impl MessageTemplate {
    /// Serializes a twilight `MessageCreate` with sentinel id, timestamp and content and
    /// splits it at those values.
    pub(crate) fn build(world: &World, g: &GuildState, channel_id: u64, author_id: u64) -> Self {
        let sentinel = StoredMessage {
            id: SENTINEL_ID,
            author_id,
            edited_ms: None,
            revision: 0,
            body: crate::community::MessageBody::Posted(SENTINEL_CONTENT.into()),
            webhook_id: None,
            reply_to: None,
            flags: 0,
            dispatched: false,
        };
        let kind = g.channel(channel_id).map(|c| wire::channel_type(c.kind));
        let mut message = wire::message(
            world,
            MessageParts {
                guild: g,
                channel_id,
                message: &sentinel,
                content: SENTINEL_CONTENT.to_owned(),
                gateway: true,
            },
        );
        message.timestamp = wire::timestamp(SENTINEL_MS);
        let body = to_bytes(&MessageCreate {
            channel_type: kind,
            message,
        });
        let markers = [
            (format!("\"{SENTINEL_ID}\""), Slot::Id),
            (
                serde_json::to_string(&wire::timestamp(SENTINEL_MS)).unwrap_or_default(),
                Slot::Timestamp,
            ),
            (format!("\"{SENTINEL_CONTENT}\""), Slot::Content),
        ];
        let mut found: Vec<(usize, usize, Slot)> = markers
            .iter()
            .filter_map(|(marker, slot)| {
                find(&body, marker.as_bytes()).map(|at| (at, marker.len(), *slot))
            })
            .collect();
        found.sort_by_key(|&(at, _, _)| at);
        let mut pieces = Vec::with_capacity(found.len() + 1);
        let mut slots = Vec::with_capacity(found.len());
        let mut cursor = 0;
        for (at, len, slot) in found {
            pieces.push(body.get(cursor..at).unwrap_or_default().to_vec());
            slots.push(slot);
            cursor = at + len;
        }
        pieces.push(body.get(cursor..).unwrap_or_default().to_vec());
        Self { pieces, slots }
    }

    /// Renders the body for one message; `content` must not need JSON escaping beyond what
    /// this function does (it escapes quotes, backslashes and control characters).
    pub(crate) fn render(&self, out: &mut Vec<u8>, id: u64, content: &str) {
        for (i, piece) in self.pieces.iter().enumerate() {
            out.extend_from_slice(piece);
            match self.slots.get(i) {
                Some(Slot::Id) => {
                    out.push(b'"');
                    super::frame::push_u64(out, id);
                    out.push(b'"');
                }
                Some(Slot::Timestamp) => {
                    let ts = wire::timestamp(crate::snowflake::unix_ms(id));
                    // Writing to a Vec cannot fail.
                    let _ = write!(out, "\"{}\"", ts.iso_8601());
                }
                Some(Slot::Content) => push_json_str(out, content),
                None => {}
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Appends a JSON string literal.
pub(crate) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}
