//! The rows the store accepts, as plain values with typed ids.
//!
//! Writes are expressed as [`Op`]s so that a batch of mixed events can be
//! applied in one transaction. Every op is idempotent: applying it twice
//! leaves the same rows, and replaying an older op never moves state backwards.

use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId, UserId};

/// A channel or category, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    /// The channel.
    pub id: ChannelId,
    /// Its guild.
    pub guild_id: GuildId,
    /// Its name.
    pub name: String,
    /// What kind of channel it is.
    pub kind: ChannelKind,
    /// The category it sits in.
    pub category_id: Option<ChannelId>,
}

/// A thread, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRow {
    /// The thread.
    pub id: ChannelId,
    /// Its guild.
    pub guild_id: GuildId,
    /// The channel it belongs to.
    pub parent_id: Option<ChannelId>,
    /// Its name.
    pub name: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Whether it is locked.
    pub locked: bool,
    /// When it was created (Unix ms).
    pub created_at_ms: Option<i64>,
}

/// A member of a guild, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The guild.
    pub guild_id: GuildId,
    /// The user.
    pub user_id: UserId,
    /// The account name.
    pub name: String,
    /// Whether the account is a bot.
    pub is_bot: bool,
    /// Whether the member holds a staff role.
    pub is_staff: bool,
    /// Whether the member has not passed membership screening.
    pub pending: bool,
    /// When the member joined (Unix ms).
    pub joined_at_ms: Option<i64>,
}

/// A message's metadata, as stored. There is no content field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// The message.
    pub id: MessageId,
    /// Its guild.
    pub guild_id: GuildId,
    /// The channel it was posted in (for a thread message, the thread's parent).
    pub channel_id: ChannelId,
    /// The thread it was posted in, if any.
    pub thread_id: Option<ChannelId>,
    /// The author.
    pub author_id: UserId,
    /// When it was posted (Unix ms).
    pub created_at_ms: i64,
    /// HMAC-SHA256 of the content under the operator's key, when keyed
    /// hashing is on.
    pub keyed_hash: Option<[u8; 32]>,
}

/// One idempotent write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A guild is present, under this name.
    UpsertGuild {
        /// The guild.
        id: GuildId,
        /// Its name.
        name: String,
    },
    /// The bot left the guild (or was removed) at the given time (Unix ms).
    GuildLeft {
        /// The guild.
        id: GuildId,
        /// When.
        at_ms: i64,
    },
    /// A channel exists with these attributes.
    UpsertChannel(ChannelRow),
    /// A channel was deleted (the row is kept, flagged).
    DeleteChannel {
        /// The channel.
        id: ChannelId,
    },
    /// These are all of the guild's channels and categories now: any other
    /// channel of the guild is flagged deleted. Set-wise, one statement.
    SyncChannels {
        /// The guild.
        guild_id: GuildId,
        /// Every channel and category present.
        present: Vec<ChannelId>,
    },
    /// A thread exists with these attributes.
    UpsertThread(ThreadRow),
    /// A thread was deleted (the row is kept, flagged).
    DeleteThread {
        /// The thread.
        id: ChannelId,
    },
    /// A member is in the guild with these attributes.
    UpsertMember(MemberRow),
    /// These are all of the guild's members now: any other member still
    /// flagged in the guild left at `at_ms`. Set-wise, one statement.
    SyncMembers {
        /// The guild.
        guild_id: GuildId,
        /// Every member present.
        present: Vec<UserId>,
        /// When the list was taken (Unix ms).
        at_ms: i64,
    },
    /// A member left the guild at the given time (Unix ms).
    MemberLeft {
        /// The guild.
        guild_id: GuildId,
        /// The user.
        user_id: UserId,
        /// When they left.
        at_ms: i64,
    },
    /// A message was posted.
    InsertMessage(MessageRow),
    /// A message was edited at the given time (Unix ms).
    EditMessage {
        /// The message.
        id: MessageId,
        /// When it was edited.
        at_ms: i64,
    },
    /// A message was deleted at the given time (Unix ms).
    DeleteMessage {
        /// The message.
        id: MessageId,
        /// When it was deleted.
        at_ms: i64,
    },
}

/// How many rows each table received, for summaries and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// Rows written to `guilds`.
    pub guilds: u64,
    /// Rows written to `channels`.
    pub channels: u64,
    /// Rows written to `threads`.
    pub threads: u64,
    /// Rows written to `users` and `members`.
    pub members: u64,
    /// Rows written to `messages`.
    pub messages: u64,
}

impl RowCounts {
    /// Adds another count to this one.
    pub fn add(&mut self, other: RowCounts) {
        self.guilds += other.guilds;
        self.channels += other.channels;
        self.threads += other.threads;
        self.members += other.members;
        self.messages += other.messages;
    }

    /// The counts as `(table, rows)` pairs, in a fixed order.
    pub fn tables(&self) -> [(&'static str, u64); 5] {
        [
            ("guilds", self.guilds),
            ("channels", self.channels),
            ("threads", self.threads),
            ("members", self.members),
            ("messages", self.messages),
        ]
    }
}
