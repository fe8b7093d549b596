//! State → twilight-model values. Every payload the simulator sends is built from these
//! types, so a field twilight requires cannot be forgotten: it would not compile.

use twilight_model::{
    channel::{
        Channel, ChannelType, Message,
        forum::{ForumLayout, ForumSortOrder},
        message::{MessageFlags, MessageReference, MessageType},
        permission_overwrite::{PermissionOverwrite, PermissionOverwriteType},
        thread::{AutoArchiveDuration, ThreadMetadata},
    },
    guild::{
        AfkTimeout, DefaultMessageNotificationLevel, ExplicitContentFilter, Guild, GuildFeature,
        Member, MemberFlags, MfaLevel, NSFWLevel, PartialMember, Permissions, PremiumTier, Role,
        RoleColors, RoleFlags, RoleTags, SystemChannelFlags, VerificationLevel,
    },
    id::Id,
    oauth::{ApplicationFlags, PartialApplication},
    user::{CurrentUser, User},
    util::Timestamp,
};

use super::{
    BotIdentity, ChannelKind, ChannelState, GuildState, MemberState, MessageBody, RoleKind,
    RoleState, StoredMessage, UserRecord, World, text,
};

/// A snowflake as a twilight id (0 is not a valid id; callers never pass it, and 1 is a
/// harmless stand-in if they did).
pub(crate) fn id<T>(raw: u64) -> Id<T> {
    Id::new(raw.max(1))
}

/// A Unix time in milliseconds as a twilight timestamp.
pub(crate) fn timestamp(unix_ms: u64) -> Timestamp {
    // Clamped to 9999-12-31, the largest time twilight can format.
    let micros = i64::try_from(unix_ms.min(253_402_300_799_000))
        .unwrap_or(0)
        .saturating_mul(1000);
    Timestamp::from_micros(micros)
        .or_else(|_| Timestamp::from_micros(0))
        .unwrap_or_else(|_| unreachable!("0 is a valid timestamp"))
}

/// Application flags of a verified bot with the privileged intents enabled.
pub(crate) fn application_flags() -> ApplicationFlags {
    ApplicationFlags::GATEWAY_GUILD_MEMBERS | ApplicationFlags::GATEWAY_MESSAGE_CONTENT
}

pub(crate) fn partial_application(bot: &BotIdentity) -> PartialApplication {
    PartialApplication {
        flags: application_flags(),
        id: id(bot.application_id),
    }
}

pub(crate) fn current_user(bot: &BotIdentity) -> CurrentUser {
    CurrentUser {
        accent_color: None,
        avatar: None,
        banner: None,
        bot: true,
        discriminator: 0,
        email: None,
        flags: None,
        global_name: None,
        id: id(bot.user_id),
        locale: None,
        mfa_enabled: true,
        name: bot.name.clone(),
        premium_type: None,
        public_flags: None,
        verified: Some(true),
    }
}

pub(crate) fn user(user_id: u64, record: Option<&UserRecord>) -> User {
    User {
        accent_color: None,
        avatar: None,
        avatar_decoration: None,
        avatar_decoration_data: None,
        banner: None,
        bot: record.is_some_and(|r| r.bot),
        discriminator: 0,
        email: None,
        flags: None,
        global_name: record.and_then(|r| r.global_name.clone()),
        id: id(user_id),
        locale: None,
        mfa_enabled: None,
        name: record.map_or_else(|| "deleted_user".to_owned(), |r| r.name.clone()),
        premium_type: None,
        primary_guild: None,
        public_flags: Some(twilight_model::user::UserFlags::empty()),
        system: None,
        verified: None,
    }
}

pub(crate) fn member(world: &World, member: &MemberState) -> Member {
    Member {
        avatar: None,
        avatar_decoration_data: None,
        banner: None,
        communication_disabled_until: None,
        deaf: false,
        flags: MemberFlags::empty(),
        joined_at: Some(timestamp(member.joined_ms)),
        mute: false,
        nick: member.nick.clone(),
        pending: false,
        premium_since: None,
        roles: member.roles.iter().map(|&r| id(r)).collect(),
        user: user(member.user_id, world.user(member.user_id)),
    }
}

/// The member object Discord attaches to guild messages and interactions (no user).
pub(crate) fn partial_member(member: &MemberState, permissions: Option<u64>) -> PartialMember {
    PartialMember {
        avatar: None,
        avatar_decoration_data: None,
        banner: None,
        communication_disabled_until: None,
        deaf: false,
        flags: MemberFlags::empty(),
        joined_at: Some(timestamp(member.joined_ms)),
        mute: false,
        nick: member.nick.clone(),
        permissions: permissions.map(Permissions::from_bits_truncate),
        premium_since: None,
        roles: member.roles.iter().map(|&r| id(r)).collect(),
        user: None,
    }
}

pub(crate) fn role(role: &RoleState, bot_user_id: u64) -> Role {
    #[allow(deprecated)]
    Role {
        color: role.color,
        colors: RoleColors {
            primary_color: role.color,
            secondary_color: None,
            tertiary_color: None,
        },
        hoist: role.hoist,
        icon: None,
        id: id(role.id),
        managed: role.kind == RoleKind::Integration,
        mentionable: role.mentionable,
        name: role.name.clone(),
        permissions: Permissions::from_bits_truncate(role.permissions),
        position: role.position,
        flags: RoleFlags::empty(),
        tags: (role.kind == RoleKind::Integration).then(|| RoleTags {
            available_for_purchase: false,
            bot_id: Some(id(bot_user_id)),
            guild_connections: false,
            integration_id: None,
            subscription_listing_id: None,
            premium_subscriber: false,
        }),
        unicode_emoji: None,
    }
}

pub(crate) fn channel_type(kind: ChannelKind) -> ChannelType {
    match kind {
        ChannelKind::Category => ChannelType::GuildCategory,
        ChannelKind::Text => ChannelType::GuildText,
        ChannelKind::Voice => ChannelType::GuildVoice,
        ChannelKind::Forum => ChannelType::GuildForum,
        ChannelKind::PublicThread => ChannelType::PublicThread,
    }
}

/// A channel or thread; `guild_id` is left out inside GUILD_CREATE, as Discord does.
pub(crate) fn channel(guild: &GuildState, c: &ChannelState, with_guild_id: bool) -> Channel {
    let is_thread = c.kind == ChannelKind::PublicThread;
    let is_text = matches!(c.kind, ChannelKind::Text | ChannelKind::Forum);
    let overwrites = if is_thread {
        None
    } else if c.staff_only {
        let moderators = guild
            .roles
            .iter()
            .find(|r| r.kind == RoleKind::Moderator)
            .map_or(guild.id, |r| r.id);
        Some(vec![
            PermissionOverwrite {
                allow: Permissions::empty(),
                deny: Permissions::VIEW_CHANNEL,
                id: id(guild.id),
                kind: PermissionOverwriteType::Role,
            },
            PermissionOverwrite {
                allow: Permissions::VIEW_CHANNEL,
                deny: Permissions::empty(),
                id: id(moderators),
                kind: PermissionOverwriteType::Role,
            },
        ])
    } else {
        Some(Vec::new())
    };
    let forum = c.kind == ChannelKind::Forum;
    Channel {
        application_id: None,
        applied_tags: is_thread.then(Vec::new),
        available_tags: forum.then(Vec::new),
        bitrate: (c.kind == ChannelKind::Voice).then_some(64_000),
        default_auto_archive_duration: is_text.then_some(AutoArchiveDuration::Day),
        default_forum_layout: forum.then_some(ForumLayout::ListView),
        default_reaction_emoji: None,
        default_sort_order: forum.then_some(ForumSortOrder::LatestActivity),
        default_thread_rate_limit_per_user: forum.then_some(0),
        flags: Some(twilight_model::channel::ChannelFlags::empty()),
        guild_id: with_guild_id.then(|| id(guild.id)),
        icon: None,
        id: id(c.id),
        invitable: None,
        kind: channel_type(c.kind),
        last_message_id: c.last_message_id.map(id),
        last_pin_timestamp: None,
        managed: None,
        member: None,
        member_count: c
            .thread
            .as_ref()
            .map(|t| i8::try_from(t.message_count.min(50) / 5 + 1).unwrap_or(1)),
        message_count: c.thread.as_ref().map(|t| t.message_count),
        name: Some(c.name.clone()),
        newly_created: None,
        nsfw: (!is_thread).then_some(false),
        owner_id: c.thread.as_ref().map(|t| id(t.owner_id)),
        parent_id: c.parent_id.map(id),
        permission_overwrites: overwrites,
        position: (!is_thread).then_some(c.position),
        rate_limit_per_user: matches!(
            c.kind,
            ChannelKind::Text | ChannelKind::Forum | ChannelKind::PublicThread
        )
        .then_some(0),
        recipients: None,
        rtc_region: None,
        thread_metadata: c.thread.as_ref().map(|t| ThreadMetadata {
            archived: t.archived,
            auto_archive_duration: AutoArchiveDuration::from(t.auto_archive_minutes),
            archive_timestamp: timestamp(t.archive_ms),
            create_timestamp: Some(timestamp(t.created_ms)),
            invitable: None,
            locked: false,
        }),
        topic: c.topic.clone(),
        total_message_sent: c.thread.as_ref().map(|t| t.message_count),
        user_limit: (c.kind == ChannelKind::Voice).then_some(0),
        video_quality_mode: None,
    }
}

/// The content of a stored message (generated text is recomputed from the id).
pub(crate) fn content(seed: u64, message: &StoredMessage) -> String {
    match &message.body {
        MessageBody::Generated => {
            text::message(text::content_key(seed, message.id, message.revision))
        }
        MessageBody::Posted(body) => body.to_string(),
    }
}

/// Message fields shared by gateway and REST messages; `content` is given separately so
/// the hot path can substitute it in a template.
pub(crate) struct MessageParts<'a> {
    pub(crate) guild: &'a GuildState,
    pub(crate) channel_id: u64,
    pub(crate) message: &'a StoredMessage,
    pub(crate) content: String,
    /// Gateway messages carry `guild_id` and `member`; REST ones do not.
    pub(crate) gateway: bool,
}

/// A message; a reply carries its `message_reference` and, while the replied-to message is
/// still in the channel's history, that message as `referenced_message`, as Discord sends it.
pub(crate) fn message(world: &World, parts: MessageParts<'_>) -> Message {
    let (guild, channel_id) = (parts.guild, parts.channel_id);
    let reply_to = parts.message.reply_to;
    let mut message = message_alone(world, parts);
    if let Some(reply_to) = reply_to {
        message.referenced_message = guild
            .history
            .get(&channel_id)
            .and_then(|history| history.iter().find(|m| m.id == reply_to))
            .map(|referenced| {
                Box::new(message_alone(
                    world,
                    MessageParts {
                        guild,
                        channel_id,
                        message: referenced,
                        content: content(world.seed, referenced),
                        gateway: false,
                    },
                ))
            });
    }
    message
}

/// A message without the message it replies to.
fn message_alone(world: &World, parts: MessageParts<'_>) -> Message {
    let m = parts.message;
    let author = user(m.author_id, world.user(m.author_id));
    let member = if parts.gateway && m.webhook_id.is_none() {
        parts
            .guild
            .member(m.author_id)
            .map(|member| partial_member(member, None))
    } else {
        None
    };
    #[allow(deprecated)]
    Message {
        activity: None,
        application: None,
        application_id: m.webhook_id.map(id),
        attachments: Vec::new(),
        author,
        call: None,
        channel_id: id(parts.channel_id),
        components: Vec::new(),
        content: parts.content,
        edited_timestamp: m.edited_ms.map(timestamp),
        embeds: Vec::new(),
        flags: Some(MessageFlags::from_bits_truncate(m.flags)),
        guild_id: parts.gateway.then(|| id(parts.guild.id)),
        id: id(m.id),
        interaction: None,
        interaction_metadata: None,
        kind: if m.reply_to.is_some() {
            MessageType::Reply
        } else {
            MessageType::Regular
        },
        member,
        mention_channels: Vec::new(),
        mention_everyone: false,
        mention_roles: Vec::new(),
        mentions: Vec::new(),
        message_snapshots: Vec::new(),
        pinned: false,
        poll: None,
        reactions: Vec::new(),
        reference: m.reply_to.map(|reply_to| MessageReference {
            channel_id: Some(id(parts.channel_id)),
            guild_id: Some(id(parts.guild.id)),
            kind: Default::default(),
            message_id: Some(id(reply_to)),
            fail_if_not_exists: None,
        }),
        referenced_message: None,
        role_subscription_data: None,
        sticker_items: Vec::new(),
        timestamp: timestamp(crate::snowflake::unix_ms(m.id)),
        thread: None,
        tts: false,
        webhook_id: m.webhook_id.map(id),
    }
}

/// A guild object; GUILD_CREATE passes channels, threads and members, REST passes none.
pub(crate) fn guild(
    world: &World,
    g: &GuildState,
    members: Vec<Member>,
    with_channels: bool,
) -> Guild {
    let system_channel = g
        .channels
        .iter()
        .find(|c| c.name == "general")
        .map(|c| id(c.id));
    let rules_channel = g
        .channels
        .iter()
        .find(|c| c.name == "rules")
        .map(|c| id(c.id));
    let joined = g.member(world.bot.user_id).map(|m| timestamp(m.joined_ms));
    Guild {
        afk_channel_id: None,
        afk_timeout: AfkTimeout::FIVE_MINUTES,
        application_id: None,
        approximate_member_count: None,
        approximate_presence_count: None,
        banner: None,
        channels: if with_channels {
            g.channels.iter().map(|c| channel(g, c, false)).collect()
        } else {
            Vec::new()
        },
        default_message_notifications: DefaultMessageNotificationLevel::Mentions,
        description: Some(format!("{} community", g.name)),
        discovery_splash: None,
        emojis: Vec::new(),
        explicit_content_filter: ExplicitContentFilter::AllMembers,
        features: vec![GuildFeature::Community, GuildFeature::News],
        guild_scheduled_events: Vec::new(),
        icon: None,
        id: id(g.id),
        joined_at: joined,
        large: false,
        max_members: Some(500_000),
        max_presences: None,
        max_stage_video_channel_users: None,
        max_video_channel_users: Some(25),
        member_count: Some(g.members.len() as u64),
        members,
        mfa_level: MfaLevel::Elevated,
        name: g.name.clone(),
        nsfw_level: NSFWLevel::Default,
        owner_id: id(g.owner_id),
        owner: None,
        permissions: None,
        preferred_locale: "en-US".to_owned(),
        premium_progress_bar_enabled: false,
        premium_subscription_count: Some(0),
        premium_tier: PremiumTier::None,
        presences: Vec::new(),
        public_updates_channel_id: rules_channel,
        roles: g.roles.iter().map(|r| role(r, world.bot.user_id)).collect(),
        rules_channel_id: rules_channel,
        safety_alerts_channel_id: None,
        splash: None,
        stage_instances: Vec::new(),
        stickers: Vec::new(),
        system_channel_flags: SystemChannelFlags::empty(),
        system_channel_id: system_channel,
        threads: if with_channels {
            g.threads.iter().map(|c| channel(g, c, false)).collect()
        } else {
            Vec::new()
        },
        unavailable: with_channels.then_some(false),
        vanity_url_code: None,
        verification_level: VerificationLevel::Medium,
        voice_states: Vec::new(),
        widget_channel_id: None,
        widget_enabled: None,
    }
}
