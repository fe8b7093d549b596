//! The seeded community generator: guilds with a realistic role hierarchy, channel layout,
//! threads, members and message history, all derived from the seed alone.

use std::collections::{HashMap, VecDeque};

use twilight_model::guild::Permissions;

use super::{
    BotIdentity, ChannelKind, ChannelState, GuildCounters, GuildState, MemberState, MessageBody,
    RoleKind, RoleState, StoredMessage, ThreadState, UserRecord, World, names,
};
use crate::{
    SimConfig,
    rng::Rng,
    snowflake::{DISCORD_EPOCH_MS, IdAllocator, snowflake, wall_ms},
};

const DAY_MS: u64 = 86_400_000;
/// lcm(1..=16): a guild whose creation offset is ≡ i (mod this) lands on shard `i % n` for
/// every shard count n ≤ 16, so small communities spread evenly over shards.
const SHARD_SPREAD: u64 = 720_720;
/// Game roles per guild.
const GAME_ROLES_PER_GUILD: usize = 6;
/// Threads seeded per guild under the forum and under text channels.
const FORUM_POSTS: usize = 6;
const TEXT_THREADS: usize = 2;

/// Permissions of @everyone in a typical community.
pub(crate) fn everyone_permissions() -> u64 {
    (Permissions::VIEW_CHANNEL
        | Permissions::SEND_MESSAGES
        | Permissions::READ_MESSAGE_HISTORY
        | Permissions::ADD_REACTIONS
        | Permissions::EMBED_LINKS
        | Permissions::ATTACH_FILES
        | Permissions::USE_EXTERNAL_EMOJIS
        | Permissions::CONNECT
        | Permissions::SPEAK
        | Permissions::CHANGE_NICKNAME
        | Permissions::CREATE_PUBLIC_THREADS
        | Permissions::SEND_MESSAGES_IN_THREADS
        | Permissions::USE_SLASH_COMMANDS)
        .bits()
}

fn moderator_permissions() -> u64 {
    everyone_permissions()
        | (Permissions::KICK_MEMBERS
            | Permissions::BAN_MEMBERS
            | Permissions::MANAGE_CHANNELS
            | Permissions::MANAGE_MESSAGES
            | Permissions::MANAGE_ROLES
            | Permissions::MANAGE_THREADS
            | Permissions::MANAGE_NICKNAMES
            | Permissions::MODERATE_MEMBERS
            | Permissions::VIEW_AUDIT_LOG)
            .bits()
}

fn bot_role_permissions() -> u64 {
    everyone_permissions() | (Permissions::MANAGE_ROLES | Permissions::MANAGE_MESSAGES).bits()
}

/// Hands out unique ids for seeded objects created at chosen past times.
struct SeededIds {
    counter: u64,
}

impl SeededIds {
    fn at(&mut self, ms: u64) -> u64 {
        self.counter += 1;
        snowflake(ms, self.counter & 0x3F_FFFF)
    }
}

/// Builds the world for a config.
pub(crate) fn generate(config: &SimConfig) -> World {
    let start_ms = config.start_time_ms.unwrap_or_else(wall_ms);
    let bot_id = config.bot_user_id();
    let bot = BotIdentity {
        user_id: bot_id,
        application_id: bot_id,
        name: "guildscope".to_owned(),
    };
    let mut users = HashMap::new();
    users.insert(
        bot_id,
        UserRecord {
            name: bot.name.clone(),
            global_name: None,
            bot: true,
        },
    );
    let mut rng = Rng::derive(config.seed, 0x00C0_FFEE);
    let mut ids = SeededIds { counter: 0 };
    let members = config.members as usize;
    let mut guilds = Vec::with_capacity(config.guilds as usize);
    for index in 0..config.guilds as usize {
        let guild = generate_guild(
            &mut rng,
            &mut ids,
            &mut users,
            &bot,
            GuildParams {
                index,
                start_ms,
                members,
                history: config.history_per_channel,
            },
        );
        guilds.push(guild);
    }
    let guild_index = guilds.iter().enumerate().map(|(i, g)| (g.id, i)).collect();
    let channel_index = guilds
        .iter()
        .enumerate()
        .flat_map(|(i, g)| {
            g.channels
                .iter()
                .chain(g.threads.iter())
                .map(move |c| (c.id, i))
        })
        .collect();
    World {
        seed: config.seed,
        clock_ms: start_ms,
        follow_wall_clock: config.start_time_ms.is_none(),
        ids: IdAllocator::new(1),
        bot,
        users,
        guilds,
        guild_index,
        channel_index,
        history_limit: config.history_per_channel,
        epoch: 0,
    }
}

struct GuildParams {
    index: usize,
    start_ms: u64,
    members: usize,
    history: usize,
}

fn generate_guild(
    rng: &mut Rng,
    ids: &mut SeededIds,
    users: &mut HashMap<u64, UserRecord>,
    bot: &BotIdentity,
    params: GuildParams,
) -> GuildState {
    let earliest = 1_514_764_800_000u64; // 2018-01-01
    let latest = params
        .start_ms
        .saturating_sub(120 * DAY_MS)
        .max(earliest + 1);
    let mut offset = rng.range(earliest, latest) - DISCORD_EPOCH_MS;
    offset = offset - offset % SHARD_SPREAD + params.index as u64 % SHARD_SPREAD;
    let created_ms = DISCORD_EPOCH_MS + offset;
    let guild_id = snowflake(created_ms, (params.index as u64) & 0x3F_FFFF);
    let name = format!(
        "{} {}",
        names::GUILD_ADJECTIVES[rng.index(names::GUILD_ADJECTIVES.len())],
        names::GUILD_NOUNS[rng.index(names::GUILD_NOUNS.len())]
    );
    let mut clock = created_ms;
    let mut later = |rng: &mut Rng, spread: u64| {
        clock += rng.range(1, spread);
        clock
    };

    // Roles: @everyone, games (below the bot), the bot's managed role, staff above it.
    let mut roles = vec![RoleState {
        id: guild_id,
        name: "@everyone".to_owned(),
        permissions: everyone_permissions(),
        color: 0,
        position: 0,
        hoist: false,
        mentionable: false,
        kind: RoleKind::Everyone,
    }];
    let first_game = rng.index(names::GAME_ROLES.len());
    for i in 0..GAME_ROLES_PER_GUILD {
        let name = names::GAME_ROLES[(first_game + i) % names::GAME_ROLES.len()];
        roles.push(RoleState {
            id: ids.at(later(rng, 600_000)),
            name: name.to_owned(),
            permissions: 0,
            color: u32::try_from(rng.below(0xFF_FFFF)).unwrap_or(0),
            position: i as i64 + 1,
            hoist: false,
            mentionable: true,
            kind: RoleKind::Game,
        });
    }
    let base = GAME_ROLES_PER_GUILD as i64;
    let staff_roles = [
        (
            bot.name.as_str(),
            RoleKind::Integration,
            bot_role_permissions(),
            0x5865F2,
            base + 1,
        ),
        (
            "Moderators",
            RoleKind::Moderator,
            moderator_permissions(),
            0x2ECC71,
            base + 2,
        ),
        (
            "Admins",
            RoleKind::Admin,
            Permissions::ADMINISTRATOR.bits(),
            0xE74C3C,
            base + 3,
        ),
    ];
    for (name, kind, permissions, color, position) in staff_roles {
        roles.push(RoleState {
            id: ids.at(later(rng, 600_000)),
            name: name.to_owned(),
            permissions,
            color,
            position,
            hoist: kind != RoleKind::Integration,
            mentionable: false,
            kind,
        });
    }
    let role_id = |kind: RoleKind| roles.iter().find(|r| r.kind == kind).map_or(0, |r| r.id);
    let (admin_role, mod_role, bot_role) = (
        role_id(RoleKind::Admin),
        role_id(RoleKind::Moderator),
        role_id(RoleKind::Integration),
    );
    let game_role_ids: Vec<u64> = roles
        .iter()
        .filter(|r| r.kind == RoleKind::Game)
        .map(|r| r.id)
        .collect();

    // Channels.
    let mut channels = Vec::new();
    let mut position = 0;
    for (category, children) in names::CATEGORY_LAYOUT {
        let category_id = ids.at(later(rng, 600_000));
        let staff_only = *category == "Staff";
        channels.push(ChannelState {
            id: category_id,
            kind: ChannelKind::Category,
            name: (*category).to_owned(),
            parent_id: None,
            position,
            topic: None,
            staff_only,
            transient: false,
            last_message_id: None,
            thread: None,
        });
        position += 1;
        for child in *children {
            channels.push(ChannelState {
                id: ids.at(later(rng, 600_000)),
                kind: ChannelKind::Text,
                name: (*child).to_owned(),
                parent_id: Some(category_id),
                position,
                topic: Some(format!("Talk about {}", child.replace('-', " "))),
                staff_only,
                transient: false,
                last_message_id: None,
                thread: None,
            });
            position += 1;
        }
        if *category == "Development" {
            channels.push(ChannelState {
                id: ids.at(later(rng, 600_000)),
                kind: ChannelKind::Forum,
                name: names::FORUM_NAME.to_owned(),
                parent_id: Some(category_id),
                position,
                topic: Some("Ask for help here: one post per question".to_owned()),
                staff_only: false,
                transient: false,
                last_message_id: None,
                thread: None,
            });
            position += 1;
        }
        if *category == "Games" {
            for voice in names::VOICE_NAMES {
                channels.push(ChannelState {
                    id: ids.at(later(rng, 600_000)),
                    kind: ChannelKind::Voice,
                    name: (*voice).to_owned(),
                    parent_id: Some(category_id),
                    position,
                    topic: None,
                    staff_only: false,
                    transient: false,
                    last_message_id: None,
                    thread: None,
                });
                position += 1;
            }
        }
    }

    // Members: the bot, staff, humans, other bots. Order is activity rank for traffic.
    let mut member_list = Vec::with_capacity(params.members);
    let join_span = params.start_ms.saturating_sub(clock).max(1);
    let mut add_user = |rng: &mut Rng, ids: &mut SeededIds, bot_name: Option<&str>| {
        let account_ms = rng.range(1_451_606_400_000, params.start_ms.saturating_sub(DAY_MS));
        let id = ids.at(account_ms);
        let name = match bot_name {
            Some(name) => name.to_owned(),
            None => format!(
                "{}_{}{}",
                names::USER_FIRST[rng.index(names::USER_FIRST.len())],
                names::USER_SECOND[rng.index(names::USER_SECOND.len())],
                rng.below(10_000)
            ),
        };
        let global_name = (bot_name.is_none() && rng.chance(0.4)).then(|| {
            let mut g = name.replace('_', " ");
            g.truncate(g.find(char::is_numeric).unwrap_or(g.len()));
            g.trim().to_owned()
        });
        users.insert(
            id,
            UserRecord {
                name,
                global_name,
                bot: bot_name.is_some(),
            },
        );
        id
    };
    let staff = (params.members / 200).clamp(2, 50);
    let other_bots = (params.members / 250).clamp(1, names::BOT_NAMES.len());
    let humans = params.members.saturating_sub(1 + staff + other_bots);
    let mut owner_id = 0;
    for i in 0..staff {
        let id = add_user(rng, ids, None);
        let role = if i < 2 { admin_role } else { mod_role };
        if i == 0 {
            owner_id = id;
        }
        member_list.push(MemberState {
            user_id: id,
            roles: vec![role],
            joined_ms: clock + rng.below(join_span / 4 + 1),
            nick: None,
        });
    }
    for _ in 0..humans {
        let id = add_user(rng, ids, None);
        let mut member_roles = Vec::new();
        for &game in &game_role_ids {
            if rng.chance(0.15) {
                member_roles.push(game);
            }
        }
        let nick = rng.chance(0.1).then(|| {
            format!(
                "{} {}",
                names::USER_FIRST[rng.index(names::USER_FIRST.len())],
                names::USER_SECOND[rng.index(names::USER_SECOND.len())]
            )
        });
        member_list.push(MemberState {
            user_id: id,
            roles: member_roles,
            joined_ms: clock + rng.below(join_span),
            nick,
        });
    }
    for i in 0..other_bots {
        let id = add_user(rng, ids, Some(names::BOT_NAMES[i % names::BOT_NAMES.len()]));
        member_list.push(MemberState {
            user_id: id,
            roles: Vec::new(),
            joined_ms: clock + rng.below(join_span),
            nick: None,
        });
    }
    member_list.push(MemberState {
        user_id: bot.user_id,
        roles: vec![bot_role],
        joined_ms: clock + rng.below(join_span / 2 + 1),
        nick: None,
    });

    let mut guild = GuildState {
        id: guild_id,
        name,
        owner_id,
        roles,
        channels,
        threads: Vec::new(),
        members: Vec::new(),
        member_index: HashMap::new(),
        history: HashMap::new(),
        counters: GuildCounters::default(),
        target_members: params.members,
    };
    for member in member_list {
        guild.add_member(member);
    }

    // Threads: forum posts and threads under busy text channels.
    let history_start = params.start_ms.saturating_sub(7 * DAY_MS);
    let forum = guild
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Forum)
        .map(|c| c.id);
    let text_parents: Vec<u64> = guild
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Text && !c.staff_only)
        .map(|c| c.id)
        .take(4)
        .collect();
    let humans_range = staff + humans.max(1);
    let mut thread_specs = Vec::new();
    if let Some(forum) = forum {
        for i in 0..FORUM_POSTS {
            thread_specs.push((
                forum,
                format!("help: {} question {}", names::WORDS[30 + i], i + 1),
            ));
        }
    }
    for i in 0..TEXT_THREADS {
        if let Some(parent) = rng.pick(&text_parents) {
            thread_specs.push((*parent, format!("thread about {}", names::WORDS[40 + i])));
        }
    }
    for (i, (parent, name)) in thread_specs.into_iter().enumerate() {
        let created = rng.range(history_start, params.start_ms.saturating_sub(3_600_000));
        let owner = guild.members[rng.zipf(humans_range)].user_id;
        let archived = i % 4 == 3;
        guild.threads.push(ChannelState {
            id: ids.at(created),
            kind: ChannelKind::PublicThread,
            name,
            parent_id: Some(parent),
            position: 0,
            topic: None,
            staff_only: false,
            transient: false,
            last_message_id: None,
            thread: Some(ThreadState {
                owner_id: owner,
                archived,
                archive_ms: created,
                created_ms: created,
                auto_archive_minutes: 1440,
                message_count: 0,
            }),
        });
    }

    // History: evenly spread over the last week, authors skewed towards active members.
    if params.history > 0 {
        let postable: Vec<(u64, Option<u64>)> = guild
            .channels
            .iter()
            .filter(|c| c.kind == ChannelKind::Text)
            .map(|c| (c.id, None))
            .chain(
                guild
                    .threads
                    .iter()
                    .map(|t| (t.id, t.thread.as_ref().map(|s| s.created_ms))),
            )
            .collect();
        for (channel_id, since) in postable {
            let from = since.unwrap_or(history_start);
            let span = params.start_ms.saturating_sub(from).max(1);
            let step = (span / params.history as u64).max(1);
            let mut history = VecDeque::with_capacity(params.history);
            for n in 0..params.history as u64 {
                let at = from + n * step + rng.below(step);
                let author = guild.members[rng.zipf(humans_range)].user_id;
                history.push_back(StoredMessage {
                    id: ids.at(at),
                    author_id: author,
                    edited_ms: None,
                    revision: 0,
                    body: MessageBody::Generated,
                    webhook_id: None,
                    reply_to: None,
                    flags: 0,
                    dispatched: false,
                });
            }
            let last = history.back().map(|m| m.id);
            let count = history.len();
            if let Some(channel) = guild.channel_mut(channel_id) {
                channel.last_message_id = last;
                if let Some(thread) = channel.thread.as_mut() {
                    thread.message_count = u32::try_from(count).unwrap_or(u32::MAX);
                }
            }
            guild.history.insert(channel_id, history);
        }
    }
    guild
}
