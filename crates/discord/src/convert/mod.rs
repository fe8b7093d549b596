//! Decoding of gateway frames into guildscope's domain events.
//!
//! The shard hands over every text frame it received. This module reads the
//! opcode, sequence and dispatch name, then deserializes only the payload
//! fields guildscope keeps (see [`wire`]) into `guildscope_model::Event`.
//! Anything that does not parse is reported as a [`DecodeError`] so the shard
//! can count it; nothing here panics on bad input. What is read out of message
//! content (a keyed hash, a prefix command) is decided by [`Reading`].

mod command;
mod interaction;
pub(crate) mod names;
pub(crate) mod wire;

use guildscope_model::{ChannelId, Event, GuildId, MessageId, RoleId, UserId};
use serde::{Deserialize, de::IgnoredAny};
use twilight_model::gateway::event::GatewayEventDeserializer;

use self::wire::Frame;
use crate::{ContentKey, PrefixCommands};

/// What decoding may read out of a message's content; by default, nothing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reading<'r> {
    /// The key for a keyed hash of the content, when configured.
    pub(crate) content_key: Option<&'r ContentKey>,
    /// The prefix commands to look for, when configured.
    pub(crate) prefix_commands: Option<&'r PrefixCommands>,
}

impl<'r> From<Option<&'r ContentKey>> for Reading<'r> {
    /// A keyed hash at most; no prefix commands.
    fn from(content_key: Option<&'r ContentKey>) -> Self {
        Self {
            content_key,
            prefix_commands: None,
        }
    }
}

/// A frame, decoded.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    /// A dispatch (op 0).
    Dispatch {
        /// Its sequence number.
        sequence: u64,
        /// Its name.
        name: DispatchName<'a>,
        /// The event.
        event: Event,
    },
    /// op 10: a new connection said hello.
    Hello,
    /// op 11: the gateway acknowledged a heartbeat.
    HeartbeatAck,
    /// op 1, 7 or 9: handled by twilight's shard itself.
    Control(u8),
    /// An opcode the gateway protocol does not define.
    UnknownOpcode(u8),
}

/// The name of a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DispatchName<'a> {
    /// A name Discord documents, with its slot in [`names::DISPATCH_NAMES`].
    Known(usize),
    /// A name Discord does not document (yet).
    Unknown(&'a str),
}

/// Why a frame could not be decoded. Carries no payload text: the payload
/// may contain message content.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not JSON, truncated JSON, or JSON without an opcode.
    Malformed(Option<serde_json::Error>),
    /// A dispatch without a name or sequence number.
    MissingHeader,
    /// A dispatch whose payload does not have the shape of its name.
    Payload {
        /// The dispatch name's slot.
        slot: usize,
        /// The JSON error, when the payload did not deserialize.
        source: Option<serde_json::Error>,
    },
}

impl DecodeError {
    /// A short, bounded label for logs and metrics.
    pub(crate) const fn kind(&self) -> &'static str {
        match self {
            DecodeError::Malformed(_) => "malformed_json",
            DecodeError::MissingHeader => "missing_dispatch_header",
            DecodeError::Payload { .. } => "unexpected_payload",
        }
    }

    /// The dispatch name, when the frame was a documented dispatch.
    pub(crate) fn event_type(&self) -> &'static str {
        match self {
            DecodeError::Payload { slot, .. } => {
                names::DISPATCH_NAMES.get(*slot).copied().unwrap_or("")
            }
            _ => "",
        }
    }

    /// The JSON error category and column, when there is one. serde_json's
    /// message is not used because it may quote values from the payload.
    pub(crate) fn json_position(&self) -> Option<(&'static str, usize)> {
        let source = match self {
            DecodeError::Malformed(source) | DecodeError::Payload { source, .. } => {
                source.as_ref()?
            }
            DecodeError::MissingHeader => return None,
        };
        let category = match source.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        };
        Some((category, source.column()))
    }
}

/// Decodes one text frame, reading from message content what `reading`
/// asks for and nothing else.
pub(crate) fn decode<'a, 'r>(
    text: &'a str,
    reading: impl Into<Reading<'r>>,
) -> Result<Decoded<'a>, DecodeError> {
    let reading = reading.into();
    let header = GatewayEventDeserializer::from_json(text).ok_or(DecodeError::Malformed(None))?;
    let (op, sequence, name) = header.into_parts();
    if op != 0 {
        // Non-dispatch frames are rare; validate them in full so truncated
        // control frames are counted too.
        serde_json::from_str::<IgnoredAny>(text).map_err(|e| DecodeError::Malformed(Some(e)))?;
        return Ok(match op {
            10 => Decoded::Hello,
            11 => Decoded::HeartbeatAck,
            1 | 7 | 9 => Decoded::Control(op),
            other => Decoded::UnknownOpcode(other),
        });
    }
    let (Some(sequence), Some(name)) = (sequence, name) else {
        return Err(DecodeError::MissingHeader);
    };
    // The header borrows the frame, so a borrowed name is always available.
    let name: &str = match name {
        std::borrow::Cow::Borrowed(name) => name,
        std::borrow::Cow::Owned(_) => return Err(DecodeError::MissingHeader),
    };
    let Some(slot) = names::slot(name) else {
        serde_json::from_str::<IgnoredAny>(text).map_err(|e| DecodeError::Malformed(Some(e)))?;
        return Ok(Decoded::Dispatch {
            sequence,
            name: DispatchName::Unknown(name),
            event: Event::Other,
        });
    };
    let event = dispatch(names::DISPATCH_NAMES[slot], text, reading)
        .map_err(|source| DecodeError::Payload { slot, source })?;
    Ok(Decoded::Dispatch {
        sequence,
        name: DispatchName::Known(slot),
        event,
    })
}

/// Deserializes the `d` payload of a frame.
fn payload<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, Option<serde_json::Error>> {
    serde_json::from_str::<Frame<T>>(text)
        .map(|frame| frame.d)
        .map_err(Some)
}

/// Converts the payload of a documented dispatch. `Err(None)` means the
/// payload parsed but lacks something guildscope needs.
fn dispatch(
    name: &'static str,
    text: &str,
    reading: Reading<'_>,
) -> Result<Event, Option<serde_json::Error>> {
    let guild = |id: twilight_model::id::Id<twilight_model::id::marker::GuildMarker>| {
        GuildId::new(id.get())
    };
    Ok(match name {
        // The hot path first.
        "MESSAGE_CREATE" => {
            let message = payload::<wire::Message<'_>>(text)?;
            let command = reading
                .prefix_commands
                .and_then(|commands| message.command(commands, text));
            let mut meta = message.into_meta(None, reading.content_key);
            meta.command = command;
            Event::MessageCreate(meta)
        }
        "MESSAGE_UPDATE" => {
            let update = payload::<wire::MessageUpdate<'_>>(text)?;
            Event::MessageUpdate {
                guild_id: update.guild_id.map(guild),
                channel_id: ChannelId::new(update.channel_id.get()),
                message_id: MessageId::new(update.id.get()),
                edited_at_ms: update.edited_timestamp.as_deref().and_then(wire::parse_ms),
            }
        }
        "MESSAGE_DELETE" => {
            let delete = payload::<wire::MessageDelete>(text)?;
            Event::MessageDelete {
                guild_id: delete.guild_id.map(guild),
                channel_id: ChannelId::new(delete.channel_id.get()),
                message_id: MessageId::new(delete.id.get()),
            }
        }
        "MESSAGE_DELETE_BULK" => {
            let delete = payload::<wire::MessageDeleteBulk>(text)?;
            Event::MessageDeleteBulk {
                guild_id: delete.guild_id.map(guild),
                channel_id: ChannelId::new(delete.channel_id.get()),
                message_ids: delete
                    .ids
                    .into_iter()
                    .map(|id| MessageId::new(id.get()))
                    .collect(),
            }
        }
        "READY" => {
            let (user_id, application_id, guilds) = payload::<wire::Ready>(text)?.into_parts();
            Event::Ready {
                user_id,
                application_id,
                guilds,
            }
        }
        "RESUMED" => {
            serde_json::from_str::<IgnoredAny>(text).map_err(Some)?;
            Event::Resumed
        }
        "GUILD_CREATE" => {
            let guild_payload = payload::<wire::Guild>(text)?;
            if guild_payload.unavailable == Some(true) {
                // An unavailable guild at connect time: an outage, which the
                // model expresses as GuildDelete { unavailable: true }.
                Event::GuildDelete {
                    guild_id: guild(guild_payload.id),
                    unavailable: true,
                }
            } else {
                Event::GuildCreate(Box::new(guild_payload.into_snapshot()))
            }
        }
        "GUILD_UPDATE" => {
            let update = payload::<wire::GuildUpdate>(text)?;
            Event::GuildUpdate {
                guild_id: guild(update.id),
                name: update.name,
            }
        }
        "GUILD_DELETE" => {
            let delete = payload::<wire::GuildDelete>(text)?;
            Event::GuildDelete {
                guild_id: guild(delete.id),
                unavailable: delete.unavailable.unwrap_or(false),
            }
        }
        "GUILD_MEMBERS_CHUNK" => {
            let chunk = payload::<wire::MembersChunk>(text)?;
            Event::MembersChunk {
                guild_id: guild(chunk.guild_id),
                members: chunk
                    .members
                    .into_iter()
                    .filter_map(wire::Member::into_info)
                    .collect(),
                chunk_index: chunk.chunk_index,
                chunk_count: chunk.chunk_count,
                nonce: chunk.nonce,
            }
        }
        "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE" => {
            let member = payload::<wire::Member>(text)?;
            let guild_id = member.guild_id.map(guild).ok_or(None)?;
            let member = member.into_info().ok_or(None)?;
            if name == "GUILD_MEMBER_ADD" {
                Event::MemberAdd { guild_id, member }
            } else {
                Event::MemberUpdate { guild_id, member }
            }
        }
        "GUILD_MEMBER_REMOVE" => {
            let remove = payload::<wire::MemberRemove>(text)?;
            Event::MemberRemove {
                guild_id: guild(remove.guild_id),
                user_id: UserId::new(remove.user.id.get()),
            }
        }
        "CHANNEL_CREATE" | "CHANNEL_UPDATE" | "CHANNEL_DELETE" => {
            let channel = payload::<wire::Channel>(text)?.into_channel_info(None);
            match name {
                "CHANNEL_CREATE" => Event::ChannelCreate(channel),
                "CHANNEL_UPDATE" => Event::ChannelUpdate(channel),
                _ => Event::ChannelDelete(channel),
            }
        }
        "THREAD_CREATE" | "THREAD_UPDATE" => {
            let thread = payload::<wire::Channel>(text)?;
            let guild_id = thread.guild_id.map(guild).ok_or(None)?;
            let thread = thread.into_thread_info(guild_id);
            if name == "THREAD_CREATE" {
                Event::ThreadCreate(thread)
            } else {
                Event::ThreadUpdate(thread)
            }
        }
        "THREAD_DELETE" => {
            let delete = payload::<wire::ThreadDelete>(text)?;
            Event::ThreadDelete {
                guild_id: guild(delete.guild_id),
                thread_id: ChannelId::new(delete.id.get()),
                parent_id: delete.parent_id.map(|p| ChannelId::new(p.get())),
            }
        }
        "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" => {
            let event = payload::<wire::RoleEvent>(text)?;
            let guild_id = guild(event.guild_id);
            let role = event.role.into_info();
            if name == "GUILD_ROLE_CREATE" {
                Event::RoleCreate { guild_id, role }
            } else {
                Event::RoleUpdate { guild_id, role }
            }
        }
        "GUILD_ROLE_DELETE" => {
            let delete = payload::<wire::RoleDelete>(text)?;
            Event::RoleDelete {
                guild_id: guild(delete.guild_id),
                role_id: RoleId::new(delete.role_id.get()),
            }
        }
        "INTERACTION_CREATE" => {
            let wire = payload::<twilight_model::application::interaction::Interaction>(text)?;
            match interaction::convert(wire) {
                Ok(interaction) => Event::Interaction(Box::new(interaction)),
                Err(interaction::Unsupported::Kind) => Event::Other,
                Err(interaction::Unsupported::Incomplete) => return Err(None),
            }
        }
        _ => {
            serde_json::from_str::<IgnoredAny>(text).map_err(Some)?;
            Event::Other
        }
    })
}

#[cfg(test)]
mod tests;
