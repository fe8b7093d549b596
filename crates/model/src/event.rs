//! The gateway events guildscope reacts to, reduced to the metadata it is
//! allowed to keep.
//!
//! The `discord` crate turns wire payloads into these types; every other crate
//! sees only these. Message content has no field here on purpose: what is not
//! carried cannot be stored, logged or exported by mistake. The one thing read
//! out of content is a prefix command ([`MessageCommand`]), and only from a
//! message that is one.

use std::time::Instant;

use guildscope_trace::Span;

use crate::{ApplicationId, ChannelId, GuildId, InteractionId, MessageId, RoleId, Secret, UserId};

/// One event as it travels on the event bus.
#[derive(Debug)]
pub struct Envelope {
    /// The shard the event arrived on.
    pub shard: u32,
    /// The gateway sequence number of the dispatch.
    pub sequence: u64,
    /// The dispatch name as Discord sent it (`MESSAGE_CREATE`, ...).
    pub name: &'static str,
    /// When the shard received the frame; handling latency is measured from here.
    pub received_at: Instant,
    /// The event itself.
    pub event: Event,
    /// The event's root span (`discord.event`), with no parent. Handling the
    /// event runs in its scope, and what is known only then (`bus.queue_ms`,
    /// `command.outcome`, the status) is set on it; it ends when the event has
    /// been handled. [`Span::none`] (and free) when the event is not traced.
    pub span: Span,
    /// The envelope's wait on the event bus, from when it was put on the bus.
    /// The consumer ends it when it takes the envelope off the bus, with
    /// [`dequeued`](Self::dequeued), which records it as `bus.queue_ms` on
    /// [`span`](Self::span), so a trace shows the queue wait.
    pub queued: Queued,
}

impl Envelope {
    /// Records the wait on the bus on the root span. Call it as soon as the
    /// envelope is taken off the bus.
    pub fn dequeued(&mut self) {
        self.queued.dequeued(&mut self.span);
    }
}

/// When an envelope was put on the event bus, while its root span is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    since: Option<Instant>,
}

impl Queued {
    /// Starts timing the wait of an envelope whose root span is `span`;
    /// nothing is timed when the span is not recorded.
    pub fn start(span: &Span) -> Self {
        Self {
            since: span.is_recording().then(Instant::now),
        }
    }

    /// A wait that is not timed.
    pub fn none() -> Self {
        Self { since: None }
    }

    /// Records the wait so far as `bus.queue_ms` (milliseconds) on `span`,
    /// once; later calls do nothing.
    pub fn dequeued(&mut self, span: &mut Span) {
        if let Some(since) = self.since.take() {
            span.set("bus.queue_ms", since.elapsed().as_secs_f64() * 1_000.0);
        }
    }
}

/// A gateway dispatch, reduced to metadata.
#[derive(Debug)]
pub enum Event {
    /// The shard identified; `guilds` is how many guilds it will receive.
    Ready {
        /// The bot's own user.
        user_id: UserId,
        /// The bot's application.
        application_id: ApplicationId,
        /// Number of guilds announced in READY.
        guilds: usize,
    },
    /// The shard resumed its session; missed events were replayed before this.
    Resumed,
    /// A guild became available (on connect, or when the bot joined it).
    GuildCreate(Box<GuildSnapshot>),
    /// A guild's settings changed.
    GuildUpdate {
        /// The guild.
        guild_id: GuildId,
        /// Its (possibly new) name.
        name: String,
    },
    /// A guild went away: an outage (`unavailable`) or the bot left it.
    GuildDelete {
        /// The guild.
        guild_id: GuildId,
        /// True for an outage, false when the bot was removed.
        unavailable: bool,
    },
    /// A chunk of members, answering a member request.
    MembersChunk {
        /// The guild.
        guild_id: GuildId,
        /// The members in this chunk.
        members: Vec<MemberInfo>,
        /// Index of this chunk, from 0.
        chunk_index: u32,
        /// How many chunks answer the request.
        chunk_count: u32,
        /// The nonce of the request this chunk answers, if it had one.
        nonce: Option<String>,
    },
    /// A message was posted.
    MessageCreate(MessageMeta),
    /// A message was edited.
    MessageUpdate {
        /// The guild, absent in DMs.
        guild_id: Option<GuildId>,
        /// The channel or thread.
        channel_id: ChannelId,
        /// The message.
        message_id: MessageId,
        /// When it was edited (Unix ms), when Discord says so.
        edited_at_ms: Option<i64>,
    },
    /// A message was deleted.
    MessageDelete {
        /// The guild, absent in DMs.
        guild_id: Option<GuildId>,
        /// The channel or thread.
        channel_id: ChannelId,
        /// The message.
        message_id: MessageId,
    },
    /// Several messages were deleted at once.
    MessageDeleteBulk {
        /// The guild, absent in DMs.
        guild_id: Option<GuildId>,
        /// The channel or thread.
        channel_id: ChannelId,
        /// The messages.
        message_ids: Vec<MessageId>,
    },
    /// A member joined.
    MemberAdd {
        /// The guild.
        guild_id: GuildId,
        /// The member.
        member: MemberInfo,
    },
    /// A member's roles, name or pending state changed.
    MemberUpdate {
        /// The guild.
        guild_id: GuildId,
        /// The member as it is now.
        member: MemberInfo,
    },
    /// A member left, was kicked or was banned.
    MemberRemove {
        /// The guild.
        guild_id: GuildId,
        /// The user.
        user_id: UserId,
    },
    /// A channel or category was created.
    ChannelCreate(ChannelInfo),
    /// A channel or category changed.
    ChannelUpdate(ChannelInfo),
    /// A channel or category was deleted.
    ChannelDelete(ChannelInfo),
    /// A thread was created (or the bot was added to one).
    ThreadCreate(ThreadInfo),
    /// A thread changed (archived, locked, renamed).
    ThreadUpdate(ThreadInfo),
    /// A thread was deleted.
    ThreadDelete {
        /// The guild.
        guild_id: GuildId,
        /// The thread.
        thread_id: ChannelId,
        /// The channel the thread lived in.
        parent_id: Option<ChannelId>,
    },
    /// A role was created.
    RoleCreate {
        /// The guild.
        guild_id: GuildId,
        /// The role.
        role: RoleInfo,
    },
    /// A role changed.
    RoleUpdate {
        /// The guild.
        guild_id: GuildId,
        /// The role as it is now.
        role: RoleInfo,
    },
    /// A role was deleted.
    RoleDelete {
        /// The guild.
        guild_id: GuildId,
        /// The role.
        role_id: RoleId,
    },
    /// A slash command or an autocomplete request.
    Interaction(Box<Interaction>),
    /// A dispatch guildscope does not model (typing, presences, ...).
    Other,
}

impl Event {
    /// The guild the event belongs to, where there is one.
    pub fn guild_id(&self) -> Option<GuildId> {
        match self {
            Event::Ready { .. } | Event::Resumed | Event::Other => None,
            Event::GuildCreate(guild) => Some(guild.id),
            Event::GuildUpdate { guild_id, .. }
            | Event::GuildDelete { guild_id, .. }
            | Event::MembersChunk { guild_id, .. }
            | Event::MemberAdd { guild_id, .. }
            | Event::MemberUpdate { guild_id, .. }
            | Event::MemberRemove { guild_id, .. }
            | Event::ThreadDelete { guild_id, .. }
            | Event::RoleCreate { guild_id, .. }
            | Event::RoleUpdate { guild_id, .. }
            | Event::RoleDelete { guild_id, .. } => Some(*guild_id),
            Event::MessageCreate(meta) => meta.guild_id,
            Event::MessageUpdate { guild_id, .. }
            | Event::MessageDelete { guild_id, .. }
            | Event::MessageDeleteBulk { guild_id, .. } => *guild_id,
            Event::ChannelCreate(channel)
            | Event::ChannelUpdate(channel)
            | Event::ChannelDelete(channel) => channel.guild_id,
            Event::ThreadCreate(thread) | Event::ThreadUpdate(thread) => Some(thread.guild_id),
            Event::Interaction(interaction) => interaction.guild_id,
        }
    }

    /// The channel or thread the event is about, where there is one.
    pub fn channel_id(&self) -> Option<ChannelId> {
        match self {
            Event::MessageCreate(meta) => Some(meta.channel_id),
            Event::MessageUpdate { channel_id, .. }
            | Event::MessageDelete { channel_id, .. }
            | Event::MessageDeleteBulk { channel_id, .. } => Some(*channel_id),
            Event::ChannelCreate(channel)
            | Event::ChannelUpdate(channel)
            | Event::ChannelDelete(channel) => Some(channel.id),
            Event::ThreadCreate(thread) | Event::ThreadUpdate(thread) => Some(thread.id),
            Event::ThreadDelete { thread_id, .. } => Some(*thread_id),
            Event::Interaction(interaction) => interaction.channel_id,
            _ => None,
        }
    }

    /// The person the event is about: a message's author, the member who
    /// joined, changed or left, or the user who invoked an interaction.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Event::MessageCreate(meta) => Some(meta.author_id),
            Event::MemberAdd { member, .. } | Event::MemberUpdate { member, .. } => {
                Some(member.user_id)
            }
            Event::MemberRemove { user_id, .. } => Some(*user_id),
            Event::Interaction(interaction) => Some(interaction.user_id),
            _ => None,
        }
    }

    /// The message the event is about, for single-message events.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Event::MessageCreate(meta) => Some(meta.id),
            Event::MessageUpdate { message_id, .. } | Event::MessageDelete { message_id, .. } => {
                Some(*message_id)
            }
            _ => None,
        }
    }
}

/// What guildscope keeps of a message: who, where and when. Never what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The message.
    pub id: MessageId,
    /// The guild, absent in DMs.
    pub guild_id: Option<GuildId>,
    /// The channel or thread it was posted in.
    pub channel_id: ChannelId,
    /// The author.
    pub author_id: UserId,
    /// Whether the author is a bot account.
    pub author_is_bot: bool,
    /// Whether Discord generated it (joins, pins, boosts) rather than a person.
    pub is_system: bool,
    /// Whether a webhook posted it.
    pub is_webhook: bool,
    /// When it was posted (Unix ms).
    pub created_at_ms: i64,
    /// HMAC-SHA256 of the content under the operator's key, when keyed
    /// hashing is configured; never the content, never a plain hash.
    pub keyed_hash: Option<[u8; 32]>,
    /// The prefix command the message is (`!role add Chess`), when prefix
    /// commands are configured and the message is one. `None` for every
    /// other message, and always for history read over REST. It exists to
    /// answer the command: it is never stored, logged, traced or counted.
    pub command: Option<Box<MessageCommand>>,
}

/// A prefix command found in a message: the command name and the rest of the
/// line. The message's content is read only to find it and is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCommand {
    /// The command name, lowercase, without the prefix (`role`).
    pub name: String,
    /// The rest of the message after the name, trimmed (`add Chess Club`); may be empty.
    pub args: String,
    /// The author's roles in the guild, from the message's member object (empty in DMs).
    pub member_roles: Vec<RoleId>,
}

/// A guild as received in GUILD_CREATE.
#[derive(Debug, Clone)]
pub struct GuildSnapshot {
    /// The guild.
    pub id: GuildId,
    /// Its name.
    pub name: String,
    /// Total members, as Discord counts them.
    pub member_count: u64,
    /// Whether the guild is over the large threshold (members must be requested).
    pub large: bool,
    /// Its roles.
    pub roles: Vec<RoleInfo>,
    /// Its channels and categories.
    pub channels: Vec<ChannelInfo>,
    /// Its active threads.
    pub threads: Vec<ThreadInfo>,
    /// The members sent with the guild (all of them unless `large`).
    pub members: Vec<MemberInfo>,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// The role.
    pub id: RoleId,
    /// Its name.
    pub name: String,
    /// Its permission bits.
    pub permissions: u64,
    /// Whether an integration manages it (it cannot be assigned by hand).
    pub managed: bool,
    /// Its position in the hierarchy.
    pub position: i64,
}

/// The kinds of channel guildscope tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A text channel.
    Text,
    /// An announcement channel.
    Announcement,
    /// A voice or stage channel.
    Voice,
    /// A category holding other channels.
    Category,
    /// A forum (or media) channel whose posts are threads.
    Forum,
    /// A thread.
    Thread,
    /// A DM or group DM.
    Private,
    /// Anything else.
    Other,
}

/// A channel or category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel.
    pub id: ChannelId,
    /// The guild, absent for DMs.
    pub guild_id: Option<GuildId>,
    /// What kind of channel it is.
    pub kind: ChannelKind,
    /// Its name.
    pub name: String,
    /// The category it sits in.
    pub parent_id: Option<ChannelId>,
    /// Its position in the channel list.
    pub position: i64,
}

/// A thread (a forum post or a thread under a text channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The thread.
    pub id: ChannelId,
    /// The guild.
    pub guild_id: GuildId,
    /// The channel it belongs to.
    pub parent_id: Option<ChannelId>,
    /// Its name.
    pub name: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Whether it is locked.
    pub locked: bool,
    /// Minutes of inactivity before it archives itself.
    pub auto_archive_minutes: u32,
    /// When it was created (Unix ms), when known.
    pub created_at_ms: Option<i64>,
}

/// A guild member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The user.
    pub user_id: UserId,
    /// The account name.
    pub name: String,
    /// Whether the account is a bot.
    pub is_bot: bool,
    /// Role ids held in the guild.
    pub roles: Vec<RoleId>,
    /// When the member joined (Unix ms), when known.
    pub joined_at_ms: Option<i64>,
    /// Whether the member has not yet passed membership screening.
    pub pending: bool,
}

/// Whether an interaction runs a command or asks for autocomplete choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractionKind {
    /// A slash command invocation.
    Command,
    /// An autocomplete request for a focused option.
    Autocomplete,
}

/// A slash command invocation or autocomplete request.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// The interaction; with `token` it addresses the response.
    pub id: InteractionId,
    /// The application it is for.
    pub application_id: ApplicationId,
    /// The response token (valid for 15 minutes, a secret).
    pub token: Secret,
    /// Command or autocomplete.
    pub kind: InteractionKind,
    /// The guild, absent in DMs.
    pub guild_id: Option<GuildId>,
    /// The channel it was invoked in.
    pub channel_id: Option<ChannelId>,
    /// The invoking user.
    pub user_id: UserId,
    /// The invoking member's roles (empty in DMs).
    pub member_roles: Vec<RoleId>,
    /// The command name.
    pub name: String,
    /// The options given, with subcommands nested.
    pub options: Vec<CommandOption>,
}

/// One command option as the user filled it in.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOption {
    /// The option name.
    pub name: String,
    /// Its value.
    pub value: CommandValue,
}

/// The value of a command option.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandValue {
    /// Text.
    String(String),
    /// A whole number.
    Integer(i64),
    /// A number.
    Number(f64),
    /// A yes/no choice.
    Boolean(bool),
    /// A user, channel, role or mentionable id.
    Id(u64),
    /// A subcommand (or group) with its own options.
    SubCommand(Vec<CommandOption>),
    /// The option being typed during autocomplete, with its partial text.
    Focused(String),
}
