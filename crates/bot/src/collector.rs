//! The statistics collector: turns gateway events into idempotent store
//! writes.
//!
//! Rules: DMs are skipped; bot and system messages are skipped unless
//! configured otherwise; a thread message is stored with its parent channel
//! and the thread; staff is derived from the configured staff roles every time
//! a member is seen, so it stays current.
//!
//! Startup sync: every GUILD_CREATE reconciles the guild's channels set-wise
//! (channels no longer there are flagged deleted) and its members (members no
//! longer there are flagged as having left). A large guild's member list
//! arrives in chunks after a member request the collector asks the runtime to
//! send; the reconciliation happens once the last chunk of that request is in.
//! A newer GUILD_CREATE for the same guild replaces a sync still under way, so
//! two syncs of one guild never run at once.

use std::{
    collections::{HashMap, HashSet},
    time::{SystemTime, UNIX_EPOCH},
};

use guildscope_model::{
    ChannelId, ChannelInfo, ChannelKind, Event, GuildId, GuildSnapshot, MemberInfo, MessageMeta,
    RoleId, ThreadInfo, UserId,
};
use guildscope_store::{ChannelRow, MemberRow, MessageRow, Op, ThreadRow};

/// What the collector keeps and what it skips.
#[derive(Debug, Clone, Default)]
pub struct CollectorConfig {
    /// Roles whose holders count as staff.
    pub staff_roles: Vec<RoleId>,
    /// Store messages written by bot accounts too.
    pub include_bots: bool,
    /// Channels and categories whose messages are not stored.
    pub ignored_channels: Vec<ChannelId>,
}

/// Turns events into [`Op`]s. Keeps the little state it needs to do so: which
/// channels are threads (and their parents) and which are ignored.
#[derive(Debug, Default)]
pub struct Collector {
    staff_roles: HashSet<RoleId>,
    include_bots: bool,
    ignored: HashSet<ChannelId>,
    /// Thread id → parent channel id.
    thread_parents: HashMap<ChannelId, Option<ChannelId>>,
    /// Channel id → category id, to apply ignored categories.
    categories: HashMap<ChannelId, ChannelId>,
    /// Channel id → name, for per-channel message counters.
    names: HashMap<ChannelId, String>,
    /// Member syncs waiting for their chunks, by guild.
    member_syncs: HashMap<GuildId, MemberSync>,
    /// Member requests the runtime should send: guild and nonce.
    member_requests: Vec<(GuildId, String)>,
    /// Numbers member requests, so each has its own nonce.
    requests_made: u64,
}

/// A large guild's member list being gathered from chunks.
#[derive(Debug)]
struct MemberSync {
    /// The nonce of the request the chunks answer.
    nonce: String,
    /// Members seen so far.
    present: Vec<UserId>,
    /// Chunks seen so far.
    chunks: u32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Collector {
    /// A collector following `config`.
    pub fn new(config: &CollectorConfig) -> Self {
        Self {
            staff_roles: config.staff_roles.iter().copied().collect(),
            include_bots: config.include_bots,
            ignored: config.ignored_channels.iter().copied().collect(),
            ..Self::default()
        }
    }

    fn member_row(&self, guild_id: GuildId, member: &MemberInfo) -> MemberRow {
        MemberRow {
            guild_id,
            user_id: member.user_id,
            name: member.name.clone(),
            is_bot: member.is_bot,
            is_staff: member
                .roles
                .iter()
                .any(|role| self.staff_roles.contains(role)),
            pending: member.pending,
            joined_at_ms: member.joined_at_ms,
        }
    }

    fn channel_op(&mut self, channel: &ChannelInfo) -> Option<Op> {
        let guild_id = channel.guild_id?;
        let row = channel_row(guild_id, channel);
        if let Some(category) = row.category_id {
            self.categories.insert(channel.id, category);
        }
        if self.names.get(&channel.id) != Some(&channel.name) {
            self.names.insert(channel.id, channel.name.clone());
        }
        Some(Op::UpsertChannel(row))
    }

    fn thread_op(&mut self, thread: &ThreadInfo) -> Op {
        self.thread_parents.insert(thread.id, thread.parent_id);
        Op::UpsertThread(thread_row(thread))
    }

    /// The channel's name, or for a thread its parent channel's, as last
    /// seen on the gateway.
    pub fn channel_name(&self, channel: ChannelId) -> Option<&str> {
        let named = match self.thread_parents.get(&channel) {
            Some(Some(parent)) => *parent,
            _ => channel,
        };
        self.names.get(&named).map(String::as_str)
    }

    fn is_ignored(&self, channel: ChannelId) -> bool {
        self.ignored.contains(&channel)
            || self
                .categories
                .get(&channel)
                .is_some_and(|category| self.ignored.contains(category))
    }

    /// Member requests (guild, nonce) the runtime should send on the
    /// gateway, gathered while collecting.
    pub fn take_member_requests(&mut self) -> Vec<(GuildId, String)> {
        std::mem::take(&mut self.member_requests)
    }

    /// Starts the sync of a guild that just became available.
    fn start_sync(&mut self, guild: &GuildSnapshot, out: &mut Vec<Op>) {
        out.push(Op::SyncChannels {
            guild_id: guild.id,
            present: guild.channels.iter().map(|c| c.id).collect(),
        });
        if guild.large {
            self.requests_made += 1;
            let nonce = format!("sync-{}-{}", guild.id, self.requests_made);
            tracing::info!(guild_id = %guild.id, members = guild.member_count, "member sync started");
            self.member_requests.push((guild.id, nonce.clone()));
            self.member_syncs.insert(
                guild.id,
                MemberSync {
                    nonce,
                    present: Vec::new(),
                    chunks: 0,
                },
            );
        } else {
            self.member_syncs.remove(&guild.id);
            out.push(Op::SyncMembers {
                guild_id: guild.id,
                present: guild.members.iter().map(|m| m.user_id).collect(),
                at_ms: now_ms(),
            });
        }
    }

    /// Adds a chunk to the guild's sync if it answers the sync's request, and
    /// reconciles once the last chunk is in.
    fn sync_chunk(
        &mut self,
        guild_id: GuildId,
        members: &[MemberInfo],
        chunk_count: u32,
        nonce: Option<&str>,
        out: &mut Vec<Op>,
    ) {
        let Some(sync) = self.member_syncs.get_mut(&guild_id) else {
            return;
        };
        if nonce != Some(sync.nonce.as_str()) {
            return;
        }
        sync.present.extend(members.iter().map(|m| m.user_id));
        sync.chunks += 1;
        let step = (chunk_count / 10).max(1);
        if sync.chunks % step == 0 || sync.chunks == chunk_count {
            tracing::info!(
                guild_id = %guild_id,
                chunks = sync.chunks,
                chunk_count,
                members = sync.present.len(),
                "member sync progress"
            );
        }
        if sync.chunks >= chunk_count
            && let Some(sync) = self.member_syncs.remove(&guild_id)
        {
            out.push(Op::SyncMembers {
                guild_id,
                present: sync.present,
                at_ms: now_ms(),
            });
        }
    }

    /// Appends the writes `event` calls for to `out`.
    pub fn collect(&mut self, event: &Event, out: &mut Vec<Op>) {
        match event {
            Event::GuildCreate(guild) => {
                out.push(Op::UpsertGuild {
                    id: guild.id,
                    name: guild.name.clone(),
                });
                for channel in &guild.channels {
                    out.extend(self.channel_op(channel));
                }
                for thread in &guild.threads {
                    let op = self.thread_op(thread);
                    out.push(op);
                }
                for member in &guild.members {
                    out.push(Op::UpsertMember(self.member_row(guild.id, member)));
                }
                self.start_sync(guild, out);
            }
            Event::GuildDelete {
                guild_id,
                unavailable: false,
            } => {
                self.member_syncs.remove(guild_id);
                out.push(Op::GuildLeft {
                    id: *guild_id,
                    at_ms: now_ms(),
                });
            }
            Event::GuildUpdate { guild_id, name } => {
                out.push(Op::UpsertGuild {
                    id: *guild_id,
                    name: name.clone(),
                });
            }
            Event::MembersChunk {
                guild_id,
                members,
                chunk_count,
                nonce,
                ..
            } => {
                for member in members {
                    out.push(Op::UpsertMember(self.member_row(*guild_id, member)));
                }
                self.sync_chunk(*guild_id, members, *chunk_count, nonce.as_deref(), out);
            }
            Event::MemberAdd { guild_id, member } | Event::MemberUpdate { guild_id, member } => {
                out.push(Op::UpsertMember(self.member_row(*guild_id, member)));
            }
            Event::MemberRemove { guild_id, user_id } => {
                out.push(Op::MemberLeft {
                    guild_id: *guild_id,
                    user_id: *user_id,
                    at_ms: now_ms(),
                });
            }
            Event::ChannelCreate(channel) | Event::ChannelUpdate(channel) => {
                out.extend(self.channel_op(channel));
            }
            Event::ChannelDelete(channel) => out.push(Op::DeleteChannel { id: channel.id }),
            Event::ThreadCreate(thread) | Event::ThreadUpdate(thread) => {
                let op = self.thread_op(thread);
                out.push(op);
            }
            Event::ThreadDelete { thread_id, .. } => out.push(Op::DeleteThread { id: *thread_id }),
            Event::MessageCreate(meta) => {
                let Some(guild_id) = meta.guild_id else {
                    return;
                };
                if !keeps_message(meta, self.include_bots) {
                    return;
                }
                let (channel_id, thread_id) = match self.thread_parents.get(&meta.channel_id) {
                    Some(Some(parent)) => (*parent, Some(meta.channel_id)),
                    _ => (meta.channel_id, None),
                };
                if self.is_ignored(channel_id) {
                    return;
                }
                out.push(Op::InsertMessage(MessageRow {
                    id: meta.id,
                    guild_id,
                    channel_id,
                    thread_id,
                    author_id: meta.author_id,
                    created_at_ms: meta.created_at_ms,
                    keyed_hash: meta.keyed_hash,
                }));
            }
            Event::MessageUpdate {
                guild_id: Some(_),
                message_id,
                edited_at_ms: Some(at),
                ..
            } => {
                out.push(Op::EditMessage {
                    id: *message_id,
                    at_ms: *at,
                });
            }
            Event::MessageDelete {
                guild_id: Some(_),
                message_id,
                ..
            } => {
                out.push(Op::DeleteMessage {
                    id: *message_id,
                    at_ms: now_ms(),
                });
            }
            Event::MessageDeleteBulk {
                guild_id: Some(_),
                message_ids,
                ..
            } => {
                let at_ms = now_ms();
                out.extend(
                    message_ids
                        .iter()
                        .map(|id| Op::DeleteMessage { id: *id, at_ms }),
                );
            }
            _ => {}
        }
    }
}

/// A channel or category as stored; `guild_id` stands in when the payload
/// has none (REST lists).
pub(crate) fn channel_row(guild_id: GuildId, channel: &ChannelInfo) -> ChannelRow {
    ChannelRow {
        id: channel.id,
        guild_id: channel.guild_id.unwrap_or(guild_id),
        name: channel.name.clone(),
        kind: channel.kind,
        // A category's parent is meaningless; a channel's is its category.
        category_id: channel
            .parent_id
            .filter(|_| channel.kind != ChannelKind::Category),
    }
}

/// A thread as stored.
pub(crate) fn thread_row(thread: &ThreadInfo) -> ThreadRow {
    ThreadRow {
        id: thread.id,
        guild_id: thread.guild_id,
        parent_id: thread.parent_id,
        name: thread.name.clone(),
        archived: thread.archived,
        locked: thread.locked,
        created_at_ms: thread.created_at_ms,
    }
}

/// The message rule: people's messages are kept, Discord's system messages
/// never, bots' only when the operator asks (`include_bots`).
pub(crate) fn keeps_message(meta: &MessageMeta, include_bots: bool) -> bool {
    !meta.is_system && (include_bots || !meta.author_is_bot)
}

#[cfg(test)]
mod tests {
    use guildscope_model::{MessageId, MessageMeta, UserId};

    use super::*;

    fn message(channel: u64, author_is_bot: bool) -> Event {
        Event::MessageCreate(MessageMeta {
            id: MessageId::new(10),
            guild_id: Some(GuildId::new(1)),
            channel_id: ChannelId::new(channel),
            author_id: UserId::new(7),
            author_is_bot,
            is_system: false,
            is_webhook: false,
            created_at_ms: 1_700_000_000_000,
            keyed_hash: None,
            command: None,
        })
    }

    #[test]
    fn thread_messages_store_parent_and_thread() {
        let mut collector = Collector::new(&CollectorConfig::default());
        let mut ops = Vec::new();
        collector.collect(
            &Event::ThreadCreate(ThreadInfo {
                id: ChannelId::new(50),
                guild_id: GuildId::new(1),
                parent_id: Some(ChannelId::new(5)),
                name: "help: lifetimes".into(),
                archived: false,
                locked: false,
                auto_archive_minutes: 1440,
                created_at_ms: None,
            }),
            &mut ops,
        );
        ops.clear();
        collector.collect(&message(50, false), &mut ops);
        let [Op::InsertMessage(row)] = ops.as_slice() else {
            panic!("{ops:?}")
        };
        assert_eq!(row.channel_id, ChannelId::new(5));
        assert_eq!(row.thread_id, Some(ChannelId::new(50)));
    }

    #[test]
    fn bot_messages_and_dms_are_skipped() {
        let mut collector = Collector::new(&CollectorConfig::default());
        let mut ops = Vec::new();
        collector.collect(&message(5, true), &mut ops);
        let Event::MessageCreate(mut dm) = message(5, false) else {
            unreachable!()
        };
        dm.guild_id = None;
        collector.collect(&Event::MessageCreate(dm), &mut ops);
        assert!(ops.is_empty(), "{ops:?}");
    }

    #[test]
    fn staff_follows_current_roles() {
        let staff = RoleId::new(99);
        let collector = Collector::new(&CollectorConfig {
            staff_roles: vec![staff],
            ..Default::default()
        });
        let mut member = MemberInfo {
            user_id: UserId::new(7),
            name: "ada".into(),
            is_bot: false,
            roles: vec![staff],
            joined_at_ms: None,
            pending: false,
        };
        assert!(collector.member_row(GuildId::new(1), &member).is_staff);
        member.roles.clear();
        assert!(!collector.member_row(GuildId::new(1), &member).is_staff);
    }
}
