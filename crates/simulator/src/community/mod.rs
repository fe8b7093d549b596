//! The simulated community: its live state (guilds, roles, channels, threads, members and
//! bounded message history, all mutated by traffic and REST) and the read-only snapshot the
//! public API hands out.
//!
//! State is kept in compact simulator-owned structs rather than twilight types: members and
//! messages are many, and message text is never stored (it is regenerated from the id, see
//! [`text`]). `wire` turns state into twilight-model values at the protocol edge.

pub(crate) mod generate;
pub(crate) mod names;
pub(crate) mod text;
pub(crate) mod wire;

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use twilight_model::guild::Permissions;

use crate::{ids, snowflake::IdAllocator};

/// The mutable world behind the simulator: one lock guards it (never held across `.await`).
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) seed: u64,
    /// Simulated "now" in Unix milliseconds: advanced by traffic, and by the wall clock when
    /// `follow_wall_clock` is set.
    pub(crate) clock_ms: u64,
    pub(crate) follow_wall_clock: bool,
    pub(crate) ids: IdAllocator,
    pub(crate) bot: BotIdentity,
    pub(crate) users: HashMap<u64, UserRecord>,
    pub(crate) guilds: Vec<GuildState>,
    pub(crate) guild_index: HashMap<u64, usize>,
    /// Channel or thread id → index of its guild.
    pub(crate) channel_index: HashMap<u64, usize>,
    pub(crate) history_limit: usize,
    /// Bumped whenever members, roles or channels change, so cached payload templates and
    /// channel lists are rebuilt.
    pub(crate) epoch: u64,
}

/// The bot user and its application.
#[derive(Debug, Clone)]
pub(crate) struct BotIdentity {
    pub(crate) user_id: u64,
    pub(crate) application_id: u64,
    pub(crate) name: String,
}

/// A user account (kept after the user leaves, so old messages still have an author).
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub(crate) name: String,
    pub(crate) global_name: Option<String>,
    pub(crate) bot: bool,
}

/// Statistics the ground truth reports per guild.
#[derive(Debug, Default, Clone)]
pub(crate) struct GuildCounters {
    pub(crate) messages_created: u64,
    pub(crate) messages_deleted: u64,
    pub(crate) dispatched_messages_deleted: u64,
    pub(crate) messages_edited: u64,
    pub(crate) joins: u64,
    pub(crate) leaves: u64,
    pub(crate) messages_per_channel: HashMap<u64, u64>,
}

/// One guild's live state.
#[derive(Debug)]
pub(crate) struct GuildState {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) owner_id: u64,
    pub(crate) roles: Vec<RoleState>,
    pub(crate) channels: Vec<ChannelState>,
    pub(crate) threads: Vec<ChannelState>,
    pub(crate) members: Vec<MemberState>,
    pub(crate) member_index: HashMap<u64, usize>,
    pub(crate) history: HashMap<u64, VecDeque<StoredMessage>>,
    pub(crate) counters: GuildCounters,
    pub(crate) target_members: usize,
}

/// What a role is for; decides permissions, hierarchy and whether `/role` may hand it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleKind {
    Everyone,
    Admin,
    Moderator,
    Integration,
    Game,
    Temporary,
}

#[derive(Debug, Clone)]
pub(crate) struct RoleState {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) permissions: u64,
    pub(crate) color: u32,
    pub(crate) position: i64,
    pub(crate) hoist: bool,
    pub(crate) mentionable: bool,
    pub(crate) kind: RoleKind,
}

/// The kind of a channel, as the public view reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A category (Discord type 4).
    Category,
    /// A text channel (type 0).
    Text,
    /// A voice channel (type 2).
    Voice,
    /// A forum channel (type 15) whose posts are threads.
    Forum,
    /// A public thread (type 11) under a text channel or a forum.
    PublicThread,
}

#[derive(Debug, Clone)]
pub(crate) struct ThreadState {
    pub(crate) owner_id: u64,
    pub(crate) archived: bool,
    pub(crate) archive_ms: u64,
    pub(crate) created_ms: u64,
    pub(crate) auto_archive_minutes: u16,
    pub(crate) message_count: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct ChannelState {
    pub(crate) id: u64,
    pub(crate) kind: ChannelKind,
    pub(crate) name: String,
    pub(crate) parent_id: Option<u64>,
    pub(crate) position: i32,
    pub(crate) topic: Option<String>,
    pub(crate) staff_only: bool,
    /// Created by live traffic (and so free for traffic to delete again).
    pub(crate) transient: bool,
    pub(crate) last_message_id: Option<u64>,
    pub(crate) thread: Option<ThreadState>,
}

#[derive(Debug, Clone)]
pub(crate) struct MemberState {
    pub(crate) user_id: u64,
    pub(crate) roles: Vec<u64>,
    pub(crate) joined_ms: u64,
    pub(crate) nick: Option<String>,
}

/// Where a stored message's content comes from.
#[derive(Debug, Clone)]
pub(crate) enum MessageBody {
    /// Generated from the id and revision on demand; never stored.
    Generated,
    /// Posted through REST (by the bot); kept as sent.
    Posted(Box<str>),
}

#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub(crate) id: u64,
    pub(crate) author_id: u64,
    pub(crate) edited_ms: Option<u64>,
    pub(crate) revision: u32,
    pub(crate) body: MessageBody,
    /// Interaction response messages carry the application as webhook.
    pub(crate) webhook_id: Option<u64>,
    /// The message this one replies to (in the same channel).
    pub(crate) reply_to: Option<u64>,
    pub(crate) flags: u64,
    /// Whether its MESSAGE_CREATE reached a session (history generated at
    /// start was never dispatched).
    pub(crate) dispatched: bool,
}

impl World {
    /// Advances the simulated clock to the wall clock when following it; returns "now".
    pub(crate) fn now_ms(&mut self) -> u64 {
        if self.follow_wall_clock {
            self.clock_ms = self.clock_ms.max(crate::snowflake::wall_ms());
        }
        self.clock_ms
    }

    /// A fresh snowflake for something created now.
    pub(crate) fn next_id(&mut self) -> u64 {
        let now = self.now_ms();
        self.ids.next(now)
    }

    pub(crate) fn guild_idx(&self, guild_id: u64) -> Option<usize> {
        self.guild_index.get(&guild_id).copied()
    }

    /// The guild index and the channel or thread for a channel id.
    pub(crate) fn find_channel(&self, channel_id: u64) -> Option<(usize, &ChannelState)> {
        let g = *self.channel_index.get(&channel_id)?;
        self.guilds.get(g)?.channel(channel_id).map(|c| (g, c))
    }

    pub(crate) fn user(&self, user_id: u64) -> Option<&UserRecord> {
        self.users.get(&user_id)
    }
}

impl GuildState {
    pub(crate) fn channel(&self, id: u64) -> Option<&ChannelState> {
        self.channels
            .iter()
            .chain(self.threads.iter())
            .find(|c| c.id == id)
    }

    pub(crate) fn channel_mut(&mut self, id: u64) -> Option<&mut ChannelState> {
        self.channels
            .iter_mut()
            .chain(self.threads.iter_mut())
            .find(|c| c.id == id)
    }

    pub(crate) fn member(&self, user_id: u64) -> Option<&MemberState> {
        self.member_index
            .get(&user_id)
            .and_then(|&i| self.members.get(i))
    }

    pub(crate) fn member_mut(&mut self, user_id: u64) -> Option<&mut MemberState> {
        let i = *self.member_index.get(&user_id)?;
        self.members.get_mut(i)
    }

    pub(crate) fn add_member(&mut self, member: MemberState) {
        self.member_index.insert(member.user_id, self.members.len());
        self.members.push(member);
    }

    pub(crate) fn remove_member(&mut self, user_id: u64) -> Option<MemberState> {
        let i = self.member_index.remove(&user_id)?;
        let removed = self.members.swap_remove(i);
        if let Some(moved) = self.members.get(i) {
            self.member_index.insert(moved.user_id, i);
        }
        Some(removed)
    }

    pub(crate) fn role(&self, id: u64) -> Option<&RoleState> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Guild-level permissions of a member: the union of its roles and @everyone.
    pub(crate) fn permissions(&self, member: &MemberState) -> u64 {
        if member.user_id == self.owner_id {
            return Permissions::all().bits();
        }
        let everyone = self.role(self.id).map_or(0, |r| r.permissions);
        let bits = member
            .roles
            .iter()
            .filter_map(|id| self.role(*id))
            .fold(everyone, |acc, r| acc | r.permissions);
        if bits & Permissions::ADMINISTRATOR.bits() != 0 {
            Permissions::all().bits()
        } else {
            bits
        }
    }

    /// Highest role position a member holds (0 = only @everyone).
    pub(crate) fn top_position(&self, member: &MemberState) -> i64 {
        member
            .roles
            .iter()
            .filter_map(|id| self.role(*id))
            .map(|r| r.position)
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn is_staff(&self, member: &MemberState) -> bool {
        member.roles.iter().any(|id| {
            self.role(*id)
                .is_some_and(|r| matches!(r.kind, RoleKind::Admin | RoleKind::Moderator))
        })
    }

    /// Appends a message to a channel's bounded history.
    pub(crate) fn remember(&mut self, channel_id: u64, message: StoredMessage, limit: usize) {
        let history = self.history.entry(channel_id).or_default();
        history.push_back(message);
        while history.len() > limit {
            history.pop_front();
        }
    }
}

/// A read-only snapshot of the community as generated at start. Live changes (joins,
/// channels created by traffic) show up in [`GroundTruth`](crate::GroundTruth) instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Community {
    /// The bot's user id.
    #[serde(with = "ids::string")]
    pub bot_user_id: u64,
    /// The bot's application id.
    #[serde(with = "ids::string")]
    pub application_id: u64,
    /// Every guild, in generation order.
    pub guilds: Vec<GuildInfo>,
}

/// One guild of the [`Community`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuildInfo {
    /// Guild id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Guild name.
    pub name: String,
    /// Owner's user id.
    #[serde(with = "ids::string")]
    pub owner_id: u64,
    /// Members at start (including the bot).
    pub member_count: u64,
    /// Roles, @everyone first.
    pub roles: Vec<RoleInfo>,
    /// Categories, text, voice and forum channels.
    pub channels: Vec<ChannelInfo>,
    /// Threads (forum posts and threads under text channels).
    pub threads: Vec<ChannelInfo>,
    /// Names of the self-assignable roles (to configure a `/role` command with).
    pub self_assignable_roles: Vec<String>,
    /// Every member at start.
    pub members: Vec<MemberInfo>,
}

impl GuildInfo {
    /// The shard this guild belongs to when the bot runs `total` shards.
    pub fn shard(&self, total: u32) -> u32 {
        shard_of(self.id, total)
    }
}

/// The shard a guild belongs to: `(guild_id >> 22) % total`.
pub fn shard_of(guild_id: u64, total: u32) -> u32 {
    u32::try_from((guild_id >> 22) % u64::from(total.max(1))).unwrap_or(0)
}

/// One role of a [`GuildInfo`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleInfo {
    /// Role id (the @everyone role's id is the guild id).
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Role name.
    pub name: String,
    /// Permission bits.
    pub permissions: u64,
    /// Position in the hierarchy (higher is more powerful).
    pub position: i64,
    /// Managed by an integration (the bot's own role); cannot be assigned.
    pub managed: bool,
    /// A "game" role members may give themselves (no permissions).
    pub self_assignable: bool,
    /// A staff role (administrator or moderator permissions).
    pub staff: bool,
}

/// One channel or thread of a [`GuildInfo`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Channel id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Channel name.
    pub name: String,
    /// Channel kind.
    pub kind: ChannelKind,
    /// Category of a channel, or parent channel of a thread.
    #[serde(with = "ids::option")]
    pub parent_id: Option<u64>,
}

/// One member of a [`GuildInfo`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberInfo {
    /// User id.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// Username.
    pub username: String,
    /// A bot account.
    pub bot: bool,
    /// Holds a staff role.
    pub staff: bool,
    /// Role ids (without @everyone).
    #[serde(with = "ids::vec")]
    pub roles: Vec<u64>,
}

impl Community {
    /// Snapshot of the world's current state.
    pub(crate) fn snapshot(world: &World) -> Self {
        let channel_info = |c: &ChannelState| ChannelInfo {
            id: c.id,
            name: c.name.clone(),
            kind: c.kind,
            parent_id: c.parent_id,
        };
        let guilds = world
            .guilds
            .iter()
            .map(|g| GuildInfo {
                id: g.id,
                name: g.name.clone(),
                owner_id: g.owner_id,
                member_count: g.members.len() as u64,
                roles: g
                    .roles
                    .iter()
                    .map(|r| RoleInfo {
                        id: r.id,
                        name: r.name.clone(),
                        permissions: r.permissions,
                        position: r.position,
                        managed: r.kind == RoleKind::Integration,
                        self_assignable: r.kind == RoleKind::Game,
                        staff: matches!(r.kind, RoleKind::Admin | RoleKind::Moderator),
                    })
                    .collect(),
                channels: g.channels.iter().map(channel_info).collect(),
                threads: g.threads.iter().map(channel_info).collect(),
                self_assignable_roles: g
                    .roles
                    .iter()
                    .filter(|r| r.kind == RoleKind::Game)
                    .map(|r| r.name.clone())
                    .collect(),
                members: g
                    .members
                    .iter()
                    .map(|m| {
                        let user = world.user(m.user_id);
                        MemberInfo {
                            user_id: m.user_id,
                            username: user.map(|u| u.name.clone()).unwrap_or_default(),
                            bot: user.is_some_and(|u| u.bot),
                            staff: g.is_staff(m),
                            roles: m.roles.clone(),
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            bot_user_id: world.bot.user_id,
            application_id: world.bot.application_id,
            guilds,
        }
    }
}
