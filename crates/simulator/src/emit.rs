//! Changes to the world and the dispatches announcing them, in one place: live traffic, REST
//! calls and interaction responses all go through these functions, so the state served by
//! REST, the events on the gateway and the ground truth cannot drift apart.
//!
//! Every function takes the world by `&mut` (the caller holds the world lock) and returns
//! whether at least one session received the dispatch; ground-truth counters only count
//! events that were actually dispatched.

use twilight_model::gateway::payload::incoming::{
    ChannelCreate, ChannelDelete, ChannelUpdate, MemberAdd, MemberRemove, MemberUpdate,
    MessageDelete, MessageDeleteBulk, MessageUpdate, RoleCreate, RoleDelete, RoleUpdate,
    ThreadCreate, ThreadDelete, ThreadUpdate,
};

use crate::{
    community::{
        ChannelKind, ChannelState, MemberState, RoleState, StoredMessage, World,
        wire::{self, MessageParts},
    },
    gateway::{EventKind, payloads, session::Hub},
};

/// Adds a message to its channel (history, last message, thread count) and counts it.
pub(crate) fn record_message(
    world: &mut World,
    g: usize,
    channel_id: u64,
    message: StoredMessage,
    dispatched: bool,
) {
    let limit = world.history_limit;
    let Some(guild) = world.guilds.get_mut(g) else {
        return;
    };
    let mut message = message;
    message.dispatched = dispatched;
    if let Some(channel) = guild.channel_mut(channel_id) {
        channel.last_message_id = Some(message.id);
        if let Some(thread) = channel.thread.as_mut() {
            thread.message_count = thread.message_count.saturating_add(1);
        }
    }
    if dispatched {
        guild.counters.messages_created += 1;
        *guild
            .counters
            .messages_per_channel
            .entry(channel_id)
            .or_default() += 1;
    }
    if limit > 0 {
        guild.remember(channel_id, message, limit);
    }
}

/// MESSAGE_CREATE through plain serialization (REST and interaction responses).
pub(crate) fn message_create(
    hub: &Hub,
    world: &mut World,
    g: usize,
    channel_id: u64,
    message: StoredMessage,
) -> bool {
    let Some(guild) = world.guilds.get(g) else {
        return false;
    };
    let body = payloads::message_create(world, guild, channel_id, &message);
    let dispatched = hub.broadcast(guild.id, EventKind::MessageCreate, &body) > 0;
    record_message(world, g, channel_id, message, dispatched);
    dispatched
}

/// The REST/gateway JSON of a stored message.
pub(crate) fn message_json(
    world: &World,
    g: usize,
    channel_id: u64,
    message: &StoredMessage,
    gateway: bool,
) -> Option<twilight_model::channel::Message> {
    let guild = world.guilds.get(g)?;
    Some(wire::message(
        world,
        MessageParts {
            guild,
            channel_id,
            message,
            content: wire::content(world.seed, message),
            gateway,
        },
    ))
}

/// Edits a message (new revision, `edited_timestamp` now) and sends MESSAGE_UPDATE.
pub(crate) fn message_update(
    hub: &Hub,
    world: &mut World,
    g: usize,
    channel_id: u64,
    message_id: u64,
    new_body: Option<crate::community::MessageBody>,
) -> bool {
    let now = world.now_ms();
    let updated = {
        let Some(message) = world
            .guilds
            .get_mut(g)
            .and_then(|guild| guild.history.get_mut(&channel_id))
            .and_then(|h| h.iter_mut().find(|m| m.id == message_id))
        else {
            return false;
        };
        message.revision += 1;
        message.edited_ms = Some(now.max(crate::snowflake::unix_ms(message_id) + 1));
        if let Some(body) = new_body {
            message.body = body;
        }
        message.clone()
    };
    let Some(message) = message_json(world, g, channel_id, &updated, true) else {
        return false;
    };
    let Some(guild) = world.guilds.get_mut(g) else {
        return false;
    };
    let dispatched = hub.broadcast(
        guild.id,
        EventKind::MessageUpdate,
        &payloads::to_bytes(&MessageUpdate(message)),
    ) > 0;
    if dispatched {
        guild.counters.messages_edited += 1;
    }
    dispatched
}

/// Deletes messages from a channel: MESSAGE_DELETE for one, MESSAGE_DELETE_BULK for more.
pub(crate) fn message_delete(
    hub: &Hub,
    world: &mut World,
    g: usize,
    channel_id: u64,
    ids: &[u64],
) -> bool {
    let Some(guild) = world.guilds.get_mut(g) else {
        return false;
    };
    let mut known = 0;
    if let Some(history) = guild.history.get_mut(&channel_id) {
        known = history
            .iter()
            .filter(|m| m.dispatched && ids.contains(&m.id))
            .count() as u64;
        history.retain(|m| !ids.contains(&m.id));
    }
    let guild_id = guild.id;
    let dispatched = match ids {
        [] => false,
        [id] => {
            let body = payloads::to_bytes(&MessageDelete {
                channel_id: wire::id(channel_id),
                guild_id: Some(wire::id(guild_id)),
                id: wire::id(*id),
            });
            hub.broadcast(guild_id, EventKind::MessageDelete, &body) > 0
        }
        _ => {
            let body = payloads::to_bytes(&MessageDeleteBulk {
                channel_id: wire::id(channel_id),
                guild_id: Some(wire::id(guild_id)),
                ids: ids.iter().map(|&id| wire::id(id)).collect(),
            });
            hub.broadcast(guild_id, EventKind::MessageDeleteBulk, &body) > 0
        }
    };
    if dispatched {
        guild.counters.messages_deleted += ids.len() as u64;
        guild.counters.dispatched_messages_deleted += known;
    }
    dispatched
}

/// A member joins: GUILD_MEMBER_ADD.
pub(crate) fn member_add(hub: &Hub, world: &mut World, g: usize, member: MemberState) -> bool {
    let body = payloads::to_bytes(&MemberAdd {
        guild_id: wire::id(world.guilds.get(g).map_or(1, |guild| guild.id)),
        member: wire::member(world, &member),
    });
    let Some(guild) = world.guilds.get_mut(g) else {
        return false;
    };
    guild.add_member(member);
    let dispatched = hub.broadcast(guild.id, EventKind::GuildMemberAdd, &body) > 0;
    if dispatched {
        guild.counters.joins += 1;
    }
    dispatched
}

/// A member leaves: GUILD_MEMBER_REMOVE.
pub(crate) fn member_remove(hub: &Hub, world: &mut World, g: usize, user_id: u64) -> bool {
    let user = wire::user(user_id, world.user(user_id));
    world.epoch += 1;
    let Some(guild) = world.guilds.get_mut(g) else {
        return false;
    };
    if guild.remove_member(user_id).is_none() {
        return false;
    }
    let body = payloads::to_bytes(&MemberRemove {
        guild_id: wire::id(guild.id),
        user,
    });
    let dispatched = hub.broadcast(guild.id, EventKind::GuildMemberRemove, &body) > 0;
    if dispatched {
        guild.counters.leaves += 1;
    }
    dispatched
}

/// GUILD_MEMBER_UPDATE with the member's current state.
pub(crate) fn member_update(hub: &Hub, world: &mut World, g: usize, user_id: u64) -> bool {
    world.epoch += 1;
    let Some(guild) = world.guilds.get(g) else {
        return false;
    };
    let Some(member) = guild.member(user_id) else {
        return false;
    };
    let body = payloads::to_bytes(&MemberUpdate {
        avatar: None,
        communication_disabled_until: None,
        guild_id: wire::id(guild.id),
        flags: Some(twilight_model::guild::MemberFlags::empty()),
        deaf: Some(false),
        joined_at: Some(wire::timestamp(member.joined_ms)),
        mute: Some(false),
        nick: member.nick.clone(),
        pending: false,
        premium_since: None,
        roles: member.roles.iter().map(|&r| wire::id(r)).collect(),
        user: wire::user(user_id, world.user(user_id)),
    });
    hub.broadcast(guild.id, EventKind::GuildMemberUpdate, &body) > 0
}

/// Which channel event to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Create,
    Update,
    Delete,
}

/// Adds, updates or removes a channel or thread and sends CHANNEL_* or THREAD_*.
pub(crate) fn channel_change(
    hub: &Hub,
    world: &mut World,
    g: usize,
    channel: ChannelState,
    change: Change,
) -> bool {
    let is_thread = channel.kind == ChannelKind::PublicThread;
    world.epoch += 1;
    let Some(guild) = world.guilds.get_mut(g) else {
        return false;
    };
    let list = if is_thread {
        &mut guild.threads
    } else {
        &mut guild.channels
    };
    match change {
        Change::Create => list.push(channel.clone()),
        Change::Update => {
            if let Some(slot) = list.iter_mut().find(|c| c.id == channel.id) {
                *slot = channel.clone();
            }
        }
        Change::Delete => {
            list.retain(|c| c.id != channel.id);
            guild.history.remove(&channel.id);
        }
    }
    let guild_idx = g;
    match change {
        Change::Create => {
            world.channel_index.insert(channel.id, guild_idx);
        }
        Change::Delete => {
            world.channel_index.remove(&channel.id);
        }
        Change::Update => {}
    }
    let Some(guild) = world.guilds.get(g) else {
        return false;
    };
    let mut wire_channel = wire::channel(guild, &channel, true);
    let (kind, body) = match (is_thread, change) {
        (false, Change::Create) => (
            EventKind::ChannelCreate,
            payloads::to_bytes(&ChannelCreate(wire_channel)),
        ),
        (false, Change::Update) => (
            EventKind::ChannelUpdate,
            payloads::to_bytes(&ChannelUpdate(wire_channel)),
        ),
        (false, Change::Delete) => (
            EventKind::ChannelDelete,
            payloads::to_bytes(&ChannelDelete(wire_channel)),
        ),
        (true, Change::Create) => {
            wire_channel.newly_created = Some(true);
            (
                EventKind::ThreadCreate,
                payloads::to_bytes(&ThreadCreate(wire_channel)),
            )
        }
        (true, Change::Update) => (
            EventKind::ThreadUpdate,
            payloads::to_bytes(&ThreadUpdate(wire_channel)),
        ),
        (true, Change::Delete) => (
            EventKind::ThreadDelete,
            payloads::to_bytes(&ThreadDelete {
                guild_id: wire::id(guild.id),
                id: wire::id(channel.id),
                kind: wire::channel_type(channel.kind),
                parent_id: wire::id(channel.parent_id.unwrap_or(guild.id)),
            }),
        ),
    };
    hub.broadcast(guild.id, kind, &body) > 0
}

/// Adds, updates or removes a role and sends GUILD_ROLE_*.
pub(crate) fn role_change(
    hub: &Hub,
    world: &mut World,
    g: usize,
    role: RoleState,
    change: Change,
) -> bool {
    let bot = world.bot.user_id;
    world.epoch += 1;
    let Some(guild) = world.guilds.get_mut(g) else {
        return false;
    };
    match change {
        Change::Create => guild.roles.push(role.clone()),
        Change::Update => {
            if let Some(slot) = guild.roles.iter_mut().find(|r| r.id == role.id) {
                *slot = role.clone();
            }
        }
        Change::Delete => {
            guild.roles.retain(|r| r.id != role.id);
            for member in &mut guild.members {
                member.roles.retain(|&r| r != role.id);
            }
        }
    }
    let guild_id = wire::id(guild.id);
    let (kind, body) = match change {
        Change::Create => (
            EventKind::GuildRoleCreate,
            payloads::to_bytes(&RoleCreate {
                guild_id,
                role: wire::role(&role, bot),
            }),
        ),
        Change::Update => (
            EventKind::GuildRoleUpdate,
            payloads::to_bytes(&RoleUpdate {
                guild_id,
                role: wire::role(&role, bot),
            }),
        ),
        Change::Delete => (
            EventKind::GuildRoleDelete,
            payloads::to_bytes(&RoleDelete {
                guild_id,
                role_id: wire::id(role.id),
            }),
        ),
    };
    hub.broadcast(guild.id, kind, &body) > 0
}
