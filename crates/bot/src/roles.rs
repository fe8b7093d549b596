//! The guilds' roles, kept current from gateway events, and the rules that
//! decide which of them members may give themselves.
//!
//! `/role add|remove|list` hands out roles with the bot's own authority, so
//! every request is checked here first. A role may be self-assigned when the
//! configuration names it (directly, or by placing it under a divider role)
//! and none of these refuses it, checked in this order:
//!
//! 1. it is not in the configured set;
//! 2. an integration manages it (Discord would refuse to assign it);
//! 3. it is @everyone;
//! 4. it carries an elevated permission ([`ELEVATED`]): handing it out would
//!    let anyone promote themselves to moderator;
//! 5. it is at or above the bot's highest role (Discord would refuse; an
//!    equal position is refused too), or the bot's own roles are not known.
//!
//! The directory is fed by the event dispatcher (one task, every gateway
//! event) and read by commands running concurrently, so everything here is
//! synchronous and short: a read or write lock held for a lookup or a scan
//! of one guild's roles (at most 250), never across an `.await`.

use std::{
    cmp::Reverse,
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use guildscope_model::{Event, GuildId, GuildSnapshot, MemberInfo, RoleId, RoleInfo, Snowflake};

/// A role named in the configuration: by id, or by name (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// The role with this id.
    Id(RoleId),
    /// Every role with this name, compared case-insensitively.
    Name(String),
}

/// Which roles members may give themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleConfig {
    /// Roles members may take, by id or name.
    pub allow: Vec<RoleRef>,
    /// A divider role, such as `── Games ──`, whose section of the role list
    /// holds roles members may take.
    ///
    /// Roles are ranked as Discord ranks them: higher position first, and at
    /// equal positions the older role (smaller id) first. The section is the
    /// roles ranked directly below the marker, down to (not including) the
    /// next divider, or @everyone:
    ///
    /// - when the marker's name (whitespace trimmed) begins with a symbol,
    ///   that is, neither a letter nor a digit (`─` in `── Games ──`, `━`,
    ///   the blank `⠀` used to centre names), the next divider is the next
    ///   role whose name begins with the same symbol (`── Pronouns ──`);
    /// - when it begins with a letter or digit (a marker named `Games`), the
    ///   next divider is the next role whose name begins and ends with a
    ///   symbol (`━━ Pronouns ━━`);
    /// - a role with a blank name (a spacer) always ends the section, and so
    ///   does another role the marker names.
    ///
    /// When several roles match a marker given by name, each opens a section.
    pub marker: Option<RoleRef>,
}

/// A permission that makes a role unfit for self-assignment, with the name
/// Discord's client shows for it.
///
/// Bits as Discord documents them
/// (<https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags>,
/// the same values as `twilight_model::guild::Permissions`, which this crate
/// must not import). The rule: anything that manages the server, its
/// channels, roles or members; moderates; gives insight into the server; or
/// reaches everyone at once (mentioning everyone, text-to-speech, priority
/// speaker, scheduled events, pins). The list runs from the most to the
/// least powerful, which is the order refusals name them in.
pub const ELEVATED: &[(u64, &str)] = &[
    (1 << 3, "Administrator"),
    (1 << 5, "Manage Server"),
    (1 << 28, "Manage Roles"),
    (1 << 4, "Manage Channels"),
    (1 << 2, "Ban Members"),
    (1 << 1, "Kick Members"),
    (1 << 40, "Timeout Members"),
    (1 << 13, "Manage Messages"),
    (1 << 34, "Manage Threads"),
    (1 << 27, "Manage Nicknames"),
    (1 << 29, "Manage Webhooks"),
    (1 << 30, "Manage Expressions"),
    (1 << 33, "Manage Events"),
    (1 << 7, "View Audit Log"),
    (1 << 19, "View Server Insights"),
    (1 << 41, "View Server Subscription Insights"),
    (1 << 22, "Mute Members"),
    (1 << 23, "Deafen Members"),
    (1 << 24, "Move Members"),
    (1 << 17, "Mention Everyone"),
    (1 << 8, "Priority Speaker"),
    (1 << 12, "Send Text-to-Speech Messages"),
    (1 << 43, "Create Expressions"),
    (1 << 44, "Create Events"),
    (1 << 51, "Pin Messages"),
    (1 << 52, "Bypass Slowmode"),
];

/// Autocomplete answers at most this many choices (Discord's limit).
const AUTOCOMPLETE_LIMIT: usize = 25;

/// The names of the elevated permissions among `bits`, most powerful first.
fn elevated(bits: u64) -> Vec<&'static str> {
    ELEVATED
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// One configured role with whether it may be given right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignable {
    /// The role.
    pub role: RoleInfo,
    /// Why it may not be self-assigned now; `None` when it may.
    pub refusal: Option<Refusal>,
}

/// Why a role cannot be self-assigned. `Display` is the sentence the member
/// reads: short, with the role's name in bold (markdown and mentions in the
/// name neutralised) and no ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No role in the guild has that id.
    UnknownRole,
    /// The configuration does not let members take it.
    NotAssignable {
        /// The role's name.
        name: String,
    },
    /// An integration (a bot, boosts, subscriptions) manages it.
    Managed {
        /// The role's name.
        name: String,
    },
    /// It is @everyone, which every member has.
    Everyone,
    /// It carries elevated permissions ([`ELEVATED`]).
    Elevated {
        /// The role's name.
        name: String,
        /// The elevated permissions it has, most powerful first.
        permissions: Vec<&'static str>,
    },
    /// It is at or above the bot's highest role, so Discord would refuse.
    AboveBot {
        /// The role's name.
        name: String,
    },
    /// The bot's own roles in the guild are not known yet, so neither is
    /// where its authority ends ([`RoleDirectory::set_bot_roles`]).
    BotRolesUnknown,
    /// The guild's roles are not known (it has not arrived, or is gone).
    GuildUnknown,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownRole => f.write_str("That role doesn't exist in this server."),
            Refusal::NotAssignable { name } => write!(
                f,
                "**{}** isn't one of the roles members can give themselves.",
                Shown(name)
            ),
            Refusal::Managed { name } => write!(
                f,
                "**{}** can't be self-assigned: an integration manages it.",
                Shown(name)
            ),
            Refusal::Everyone => f.write_str("Every member has the everyone role already."),
            Refusal::Elevated { name, permissions } => {
                // The three most powerful say enough; a moderator role has a dozen.
                const NAMED: usize = 3;
                write!(
                    f,
                    "**{}** can't be self-assigned: it grants moderator or admin permissions",
                    Shown(name)
                )?;
                if let Some((last, first)) = permissions.split_last() {
                    if permissions.len() == 1 {
                        write!(f, " ({last})")?;
                    } else if permissions.len() <= NAMED {
                        write!(f, " ({} and {last})", first.join(", "))?;
                    } else {
                        let more = permissions.len() - NAMED;
                        write!(f, " ({} and {more} more)", permissions[..NAMED].join(", "))?;
                    }
                }
                f.write_str(".")
            }
            Refusal::AboveBot { name } => write!(
                f,
                "**{}** can't be self-assigned: it isn't below my highest role, so I can't give \
                 it. A server admin can move my role above it.",
                Shown(name)
            ),
            Refusal::BotRolesUnknown => {
                f.write_str("I don't know my own roles in this server yet; try again in a moment.")
            }
            Refusal::GuildUnknown => {
                f.write_str("I don't have this server's roles yet; try again in a moment.")
            }
        }
    }
}

/// A role name as it appears inside a sentence a member reads (between
/// `**` in every [`Refusal`]): markdown characters escaped and `@` followed
/// by a zero-width space, so a role named `@everyone fans` or `**x**`
/// neither pings nor breaks the formatting.
pub fn escaped(name: &str) -> impl fmt::Display + '_ {
    Shown(name)
}

/// [`escaped`]'s `Display`.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']' => {
                    write!(f, "\\{c}")?;
                }
                '@' => f.write_str("@\u{200B}")?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

/// A role as the directory keeps it: its info and its name folded for
/// case-insensitive comparison.
#[derive(Debug)]
struct Role {
    info: RoleInfo,
    folded: String,
}

impl Role {
    fn new(info: RoleInfo) -> Self {
        let folded = info.name.to_lowercase();
        Self { info, folded }
    }

    /// The order Discord ranks roles in, highest first: position, then the
    /// older (smaller) id at equal positions.
    fn rank(&self) -> (Reverse<i64>, RoleId) {
        (Reverse(self.info.position), self.info.id)
    }

    /// The order roles are listed in: by name, case-insensitively.
    fn alphabetical(&self) -> (&str, &str, RoleId) {
        (&self.folded, &self.info.name, self.info.id)
    }
}

/// What the directory knows of one guild.
#[derive(Debug)]
struct GuildRoles {
    /// The guild, whose id is also @everyone's.
    id: GuildId,
    roles: HashMap<RoleId, Role>,
    /// The bot's own roles, when known.
    bot_roles: Option<Vec<RoleId>>,
}

impl GuildRoles {
    fn everyone(&self) -> RoleId {
        RoleId::new(self.id.get())
    }

    /// The position of the bot's highest role (@everyone's 0 when it has
    /// none), or `None` while the bot's roles are unknown.
    fn bot_top(&self) -> Option<i64> {
        let mine = self.bot_roles.as_ref()?;
        Some(
            mine.iter()
                .filter_map(|id| self.roles.get(id))
                .map(|role| role.info.position)
                .max()
                .unwrap_or(0),
        )
    }
}

/// The configuration, normalised for lookups.
#[derive(Debug)]
struct Rules {
    allow_ids: HashSet<RoleId>,
    /// Folded names.
    allow_names: HashSet<String>,
    marker: Option<Marker>,
}

/// The marker, normalised.
#[derive(Debug)]
enum Marker {
    Id(RoleId),
    /// Folded name.
    Name(String),
}

impl Marker {
    fn matches(&self, role: &Role) -> bool {
        match self {
            Marker::Id(id) => role.info.id == *id,
            Marker::Name(folded) => role.folded == *folded,
        }
    }
}

impl Rules {
    fn new(config: &RoleConfig) -> Self {
        let mut allow_ids = HashSet::new();
        let mut allow_names = HashSet::new();
        for role in &config.allow {
            match role {
                RoleRef::Id(id) => {
                    allow_ids.insert(*id);
                }
                RoleRef::Name(name) => {
                    allow_names.insert(name.trim().to_lowercase());
                }
            }
        }
        let marker = config.marker.as_ref().map(|marker| match marker {
            RoleRef::Id(id) => Marker::Id(*id),
            RoleRef::Name(name) => Marker::Name(name.trim().to_lowercase()),
        });
        Self {
            allow_ids,
            allow_names,
            marker,
        }
    }

    fn allows(&self, role: &Role) -> bool {
        self.allow_ids.contains(&role.info.id) || self.allow_names.contains(&role.folded)
    }

    /// Every role of `guild` the configuration lets members take.
    fn configured(&self, guild: &GuildRoles) -> HashSet<RoleId> {
        let mut set: HashSet<RoleId> = guild
            .roles
            .values()
            .filter(|role| self.allows(role))
            .map(|role| role.info.id)
            .collect();
        if let Some(marker) = &self.marker {
            set.extend(sections(guild, marker));
        }
        set
    }

    /// Whether the configuration lets members take `role`.
    fn configures(&self, guild: &GuildRoles, role: &Role) -> bool {
        self.allows(role)
            || self
                .marker
                .as_ref()
                .is_some_and(|marker| sections(guild, marker).contains(&role.info.id))
    }
}

/// The roles in the sections under every role `marker` names
/// ([`RoleConfig::marker`] has the rule).
fn sections(guild: &GuildRoles, marker: &Marker) -> HashSet<RoleId> {
    let mut ranked: Vec<&Role> = guild.roles.values().collect();
    ranked.sort_unstable_by_key(|role| role.rank());
    let everyone = guild.everyone();
    let mut section = HashSet::new();
    for (i, role) in ranked.iter().enumerate() {
        if !marker.matches(role) {
            continue;
        }
        let symbol = leading_symbol(&role.info.name);
        for below in &ranked[i + 1..] {
            if below.info.id == everyone
                || marker.matches(below)
                || ends_section(symbol, &below.info.name)
            {
                break;
            }
            section.insert(below.info.id);
        }
    }
    section
}

/// The symbol a divider's name begins with (`─` in `── Games ──`), if it
/// begins with one rather than a letter or digit.
fn leading_symbol(name: &str) -> Option<char> {
    name.trim().chars().next().filter(|c| !c.is_alphanumeric())
}

/// Whether a role named `name` is the divider that ends a marker's section,
/// given the symbol the marker's name begins with.
fn ends_section(symbol: Option<char>, name: &str) -> bool {
    let name = name.trim();
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().next_back()) else {
        return true; // a blank spacer role
    };
    match symbol {
        Some(symbol) => first == symbol,
        None => !first.is_alphanumeric() && !last.is_alphanumeric(),
    }
}

/// The roles of every guild the bot is in, and the bot's own place in each.
pub struct RoleDirectory {
    config: RoleConfig,
    rules: Rules,
    /// The bot's user id, 0 until READY. Atomic so member events about other
    /// users are dismissed without taking the lock.
    bot_user: AtomicU64,
    guilds: RwLock<HashMap<GuildId, GuildRoles>>,
}

impl fmt::Debug for RoleDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleDirectory")
            .field("config", &self.config)
            .field("bot_user", &self.bot_user.load(Ordering::Relaxed))
            .field("guilds", &self.read().len())
            .finish()
    }
}

impl RoleDirectory {
    /// An empty directory applying `config`.
    pub fn new(config: RoleConfig) -> Self {
        Self {
            rules: Rules::new(&config),
            config,
            bot_user: AtomicU64::new(0),
            guilds: RwLock::new(HashMap::new()),
        }
    }

    /// The configuration it applies.
    pub fn config(&self) -> &RoleConfig {
        &self.config
    }

    // A panic elsewhere while the lock was held cannot leave the map half
    // updated (every write is one insert, remove or field assignment), so a
    // poisoned lock is used as it is.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<GuildId, GuildRoles>> {
        self.guilds.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<GuildId, GuildRoles>> {
        self.guilds.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_bot(&self, member: &MemberInfo) -> bool {
        let bot = self.bot_user.load(Ordering::Relaxed);
        bot != 0 && member.user_id.get() == bot
    }

    /// Keeps the directory current. Takes the lock only for the events that
    /// change it: READY (the bot's user id), GUILD_CREATE (roles, and the
    /// bot's roles when its member is included), GUILD_DELETE (the guild is
    /// dropped, outage or not, until it is created again), role creates,
    /// updates and deletes, and member events about the bot itself. Every
    /// other event costs one match.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::Ready { user_id, .. } => self.bot_user.store(user_id.get(), Ordering::Relaxed),
            Event::GuildCreate(guild) => self.guild_create(guild),
            Event::GuildDelete { guild_id, .. } => {
                self.write().remove(guild_id);
            }
            Event::RoleCreate { guild_id, role } | Event::RoleUpdate { guild_id, role } => {
                if let Some(guild) = self.write().get_mut(guild_id) {
                    guild.roles.insert(role.id, Role::new(role.clone()));
                }
            }
            Event::RoleDelete { guild_id, role_id } => {
                if let Some(guild) = self.write().get_mut(guild_id) {
                    guild.roles.remove(role_id);
                    if let Some(mine) = &mut guild.bot_roles {
                        mine.retain(|id| id != role_id);
                    }
                }
            }
            Event::MemberAdd { guild_id, member } | Event::MemberUpdate { guild_id, member }
                if self.is_bot(member) =>
            {
                self.set_bot_roles(*guild_id, member.roles.clone());
            }
            Event::MembersChunk {
                guild_id, members, ..
            } => {
                if let Some(me) = members.iter().find(|member| self.is_bot(member)) {
                    self.set_bot_roles(*guild_id, me.roles.clone());
                }
            }
            _ => {}
        }
    }

    fn guild_create(&self, snapshot: &GuildSnapshot) {
        // A GUILD_CREATE replaces what was known: after an outage the roles,
        // and the bot's own, may have changed. Discord always includes the
        // bot's member; without it, the bot's roles become unknown again.
        let bot_roles = snapshot
            .members
            .iter()
            .find(|member| self.is_bot(member))
            .map(|me| me.roles.clone());
        let guild = GuildRoles {
            id: snapshot.id,
            roles: snapshot
                .roles
                .iter()
                .map(|role| (role.id, Role::new(role.clone())))
                .collect(),
            bot_roles,
        };
        self.write().insert(snapshot.id, guild);
    }

    /// Whether `guild`'s roles are known (it has arrived and is not gone).
    pub fn knows_guild(&self, guild: GuildId) -> bool {
        self.read().contains_key(&guild)
    }

    /// Whether the bot's own roles in `guild` are known. When they are not,
    /// the caller fetches the bot's member over REST and calls
    /// [`set_bot_roles`](Self::set_bot_roles).
    pub fn bot_roles_known(&self, guild: GuildId) -> bool {
        self.read()
            .get(&guild)
            .is_some_and(|guild| guild.bot_roles.is_some())
    }

    /// Records the bot's own roles in `guild`; ignored for a guild whose
    /// roles are not known (its GUILD_CREATE will carry them).
    pub fn set_bot_roles(&self, guild: GuildId, roles: Vec<RoleId>) {
        if let Some(guild) = self.write().get_mut(&guild) {
            guild.bot_roles = Some(roles);
        }
    }

    /// Why `role` may not be self-assigned now, given whether the
    /// configuration lets members take it; `None` when it may.
    fn refusal(guild: &GuildRoles, role: &Role, configured: bool) -> Option<Refusal> {
        let info = &role.info;
        let name = || info.name.clone();
        if !configured {
            return Some(Refusal::NotAssignable { name: name() });
        }
        if info.managed {
            return Some(Refusal::Managed { name: name() });
        }
        if info.id == guild.everyone() {
            return Some(Refusal::Everyone);
        }
        let permissions = elevated(info.permissions);
        if !permissions.is_empty() {
            return Some(Refusal::Elevated {
                name: name(),
                permissions,
            });
        }
        match guild.bot_top() {
            None => Some(Refusal::BotRolesUnknown),
            Some(top) if info.position >= top => Some(Refusal::AboveBot { name: name() }),
            Some(_) => None,
        }
    }

    /// Every role of `guild` the configuration lets members take, sorted by
    /// name (case-insensitive), each with why it may not be given now, if it
    /// may not: `/role list` and error messages can explain. Empty for an
    /// unknown guild ([`knows_guild`](Self::knows_guild) tells the two apart).
    pub fn assignable(&self, guild: GuildId) -> Vec<Assignable> {
        let guilds = self.read();
        let Some(guild) = guilds.get(&guild) else {
            return Vec::new();
        };
        let configured = self.rules.configured(guild);
        let mut roles: Vec<&Role> = configured
            .iter()
            .filter_map(|id| guild.roles.get(id))
            .collect();
        roles.sort_unstable_by(|a, b| a.alphabetical().cmp(&b.alphabetical()));
        roles
            .into_iter()
            .map(|role| Assignable {
                role: role.info.clone(),
                refusal: Self::refusal(guild, role, true),
            })
            .collect()
    }

    /// Resolves what a member typed or picked to one of `guild`'s roles:
    /// a role id (the value autocomplete sends), a mention `<@&id>`, or a
    /// name, matched exactly but case-insensitively (a leading `@` may be
    /// left out of the name or added to it). When several roles share the
    /// name, the one the member may take wins, then a configured one, then
    /// the highest.
    pub fn resolve(&self, guild: GuildId, input: &str) -> Option<RoleInfo> {
        let input = input.trim();
        let guilds = self.read();
        let guild = guilds.get(&guild)?;
        if let Some(id) = mention(input) {
            return guild.roles.get(&id).map(|role| role.info.clone());
        }
        if let Ok(id) = input.parse::<RoleId>()
            && let Some(role) = guild.roles.get(&id)
        {
            return Some(role.info.clone());
        }
        let folded = input.to_lowercase();
        let named = |name: &str| -> Vec<&Role> {
            guild
                .roles
                .values()
                .filter(|role| role.folded == name)
                .collect()
        };
        let mut candidates = named(&folded);
        if candidates.is_empty()
            && let Some(bare) = folded.strip_prefix('@')
        {
            candidates = named(bare.trim_start());
        }
        candidates
            .into_iter()
            .map(|role| {
                let configured = self.rules.configures(guild, role);
                let refused = Self::refusal(guild, role, configured).is_some();
                ((!refused, configured, Reverse(role.rank())), role)
            })
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, role)| role.info.clone())
    }

    /// Whether `role` may be self-assigned in `guild`: the role, or the
    /// first rule that refuses it (see the module documentation for the
    /// order).
    pub fn check(&self, guild: GuildId, role: RoleId) -> Result<RoleInfo, Refusal> {
        let guilds = self.read();
        let guild = guilds.get(&guild).ok_or(Refusal::GuildUnknown)?;
        let role = guild.roles.get(&role).ok_or(Refusal::UnknownRole)?;
        let configured = self.rules.configures(guild, role);
        match Self::refusal(guild, role, configured) {
            Some(refusal) => Err(refusal),
            None => Ok(role.info.clone()),
        }
    }

    /// Autocomplete choices `(name, id)`: up to 25 roles members may take
    /// now whose name matches `partial` case-insensitively, names beginning
    /// with it first, then names containing it, each group alphabetical. An
    /// empty `partial` lists the first 25.
    pub fn autocomplete(&self, guild: GuildId, partial: &str) -> Vec<(String, String)> {
        let guilds = self.read();
        let Some(guild) = guilds.get(&guild) else {
            return Vec::new();
        };
        let partial = partial.trim().to_lowercase();
        let mut prefixed = Vec::new();
        let mut containing = Vec::new();
        for id in self.rules.configured(guild) {
            let Some(role) = guild.roles.get(&id) else {
                continue;
            };
            if Self::refusal(guild, role, true).is_some() {
                continue;
            }
            if role.folded.starts_with(&partial) {
                prefixed.push(role);
            } else if role.folded.contains(&partial) {
                containing.push(role);
            }
        }
        prefixed.sort_unstable_by(|a, b| a.alphabetical().cmp(&b.alphabetical()));
        containing.sort_unstable_by(|a, b| a.alphabetical().cmp(&b.alphabetical()));
        prefixed
            .into_iter()
            .chain(containing)
            .take(AUTOCOMPLETE_LIMIT)
            .map(|role| (role.info.name.clone(), role.info.id.to_string()))
            .collect()
    }
}

/// The role id in a role mention, `<@&id>`.
fn mention(input: &str) -> Option<RoleId> {
    input.strip_prefix("<@&")?.strip_suffix('>')?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use guildscope_discord::{DiscordConfig, Gateway, Rest};
    use guildscope_model::{ApplicationId, ChannelId, MessageId, MessageMeta, Secret, UserId};
    use guildscope_simulator::{SimConfig, Simulator};

    use super::*;

    const ADMINISTRATOR: u64 = 1 << 3;
    const KICK_MEMBERS: u64 = 1 << 1;
    const BAN_MEMBERS: u64 = 1 << 2;
    const MANAGE_ROLES: u64 = 1 << 28;
    const MANAGE_MESSAGES: u64 = 1 << 13;
    const MENTION_EVERYONE: u64 = 1 << 17;
    const VIEW_CHANNEL: u64 = 1 << 10;
    const SEND_MESSAGES: u64 = 1 << 11;

    const GUILD: GuildId = GuildId::new(1_000);
    const BOT: UserId = UserId::new(42);
    const MEMBER: UserId = UserId::new(7);

    fn role(id: u64, name: &str, position: i64, permissions: u64) -> RoleInfo {
        RoleInfo {
            id: RoleId::new(id),
            name: name.to_owned(),
            permissions,
            managed: false,
            position,
        }
    }

    fn member(user: UserId, roles: &[u64]) -> MemberInfo {
        MemberInfo {
            user_id: user,
            name: format!("user{user}"),
            is_bot: user == BOT,
            roles: roles.iter().copied().map(RoleId::new).collect(),
            joined_at_ms: None,
            pending: false,
        }
    }

    fn ready() -> Event {
        Event::Ready {
            user_id: BOT,
            application_id: ApplicationId::new(43),
            guilds: 1,
        }
    }

    fn guild_create(id: GuildId, roles: Vec<RoleInfo>, members: Vec<MemberInfo>) -> Event {
        Event::GuildCreate(Box::new(GuildSnapshot {
            id,
            name: "Guild".to_owned(),
            member_count: members.len() as u64,
            large: false,
            roles,
            channels: Vec::new(),
            threads: Vec::new(),
            members,
        }))
    }

    /// The simulator's seeded layout: @everyone, six game roles at 1..6,
    /// the bot's managed role at 7, Moderators at 8 and Admins at 9.
    fn community() -> Vec<RoleInfo> {
        let mut bot = role(17, "guildscope", 7, MANAGE_ROLES | MANAGE_MESSAGES);
        bot.managed = true;
        vec![
            role(GUILD.get(), "@everyone", 0, VIEW_CHANNEL | SEND_MESSAGES),
            role(11, "Chess", 1, 0),
            role(12, "Go", 2, 0),
            role(13, "Minecraft", 3, 0),
            role(14, "Factorio", 4, 0),
            role(15, "Tetris", 5, 0),
            role(16, "Dota", 6, 0),
            bot,
            role(
                18,
                "Moderators",
                8,
                KICK_MEMBERS | BAN_MEMBERS | MANAGE_MESSAGES,
            ),
            role(19, "Admins", 9, ADMINISTRATOR),
        ]
    }

    const GAMES: [&str; 6] = ["Chess", "Go", "Minecraft", "Factorio", "Tetris", "Dota"];

    fn allow_names(names: &[&str]) -> RoleConfig {
        RoleConfig {
            allow: names
                .iter()
                .map(|n| RoleRef::Name((*n).to_owned()))
                .collect(),
            marker: None,
        }
    }

    /// A directory that has seen READY and a GUILD_CREATE of `roles` with
    /// the bot (holding role 17) and one member.
    fn directory(config: RoleConfig, roles: Vec<RoleInfo>) -> RoleDirectory {
        let directory = RoleDirectory::new(config);
        directory.observe(&ready());
        directory.observe(&guild_create(
            GUILD,
            roles,
            vec![member(MEMBER, &[11]), member(BOT, &[17])],
        ));
        directory
    }

    fn id(raw: u64) -> RoleId {
        RoleId::new(raw)
    }

    fn refusal(directory: &RoleDirectory, role: u64) -> Option<Refusal> {
        directory.check(GUILD, id(role)).err()
    }

    #[test]
    fn game_roles_of_the_seeded_community_pass_and_the_rest_are_refused() {
        let everything = [
            "@everyone",
            "Chess",
            "Go",
            "Minecraft",
            "Factorio",
            "Tetris",
            "Dota",
            "guildscope",
            "Moderators",
            "Admins",
        ];
        let directory = directory(allow_names(&everything), community());
        for raw in 11..=16 {
            assert_eq!(directory.check(GUILD, id(raw)).unwrap().id, id(raw));
        }
        assert_eq!(refusal(&directory, GUILD.get()), Some(Refusal::Everyone));
        assert_eq!(
            refusal(&directory, 17),
            Some(Refusal::Managed {
                name: "guildscope".into()
            })
        );
        assert_eq!(
            refusal(&directory, 18),
            Some(Refusal::Elevated {
                name: "Moderators".into(),
                permissions: vec!["Ban Members", "Kick Members", "Manage Messages"],
            })
        );
        assert_eq!(
            refusal(&directory, 19),
            Some(Refusal::Elevated {
                name: "Admins".into(),
                permissions: vec!["Administrator"],
            })
        );
    }

    #[test]
    fn every_refusal_case() {
        let mut roles = community();
        roles.push(role(20, "Lounge", 8, 0)); // above the bot, harmless
        roles.push(role(21, "Level", 7, 0)); // level with the bot's role
        roles.push(role(22, "Unlisted", 3, 0));
        let directory = directory(
            allow_names(&[
                "Chess",
                "guildscope",
                "@everyone",
                "Admins",
                "Lounge",
                "Level",
            ]),
            roles,
        );
        assert_eq!(directory.check(GUILD, id(11)).unwrap().name, "Chess");
        assert_eq!(refusal(&directory, 999), Some(Refusal::UnknownRole));
        assert_eq!(
            refusal(&directory, 22),
            Some(Refusal::NotAssignable {
                name: "Unlisted".into()
            })
        );
        assert_eq!(
            refusal(&directory, 17),
            Some(Refusal::Managed {
                name: "guildscope".into()
            })
        );
        assert_eq!(refusal(&directory, GUILD.get()), Some(Refusal::Everyone));
        assert!(matches!(
            refusal(&directory, 19),
            Some(Refusal::Elevated { .. })
        ));
        assert_eq!(
            refusal(&directory, 20),
            Some(Refusal::AboveBot {
                name: "Lounge".into()
            })
        );
        assert_eq!(
            refusal(&directory, 21),
            Some(Refusal::AboveBot {
                name: "Level".into()
            }),
            "a role level with the bot's highest is refused"
        );
        assert_eq!(
            directory.check(GuildId::new(5), id(11)),
            Err(Refusal::GuildUnknown)
        );

        // Without the bot's member, its authority is unknown until told.
        let unknown = RoleDirectory::new(allow_names(&["Chess"]));
        unknown.observe(&ready());
        unknown.observe(&guild_create(GUILD, community(), vec![member(MEMBER, &[])]));
        assert!(!unknown.bot_roles_known(GUILD));
        assert_eq!(refusal(&unknown, 11), Some(Refusal::BotRolesUnknown));
        unknown.set_bot_roles(GUILD, vec![id(17)]);
        assert!(unknown.bot_roles_known(GUILD));
        assert!(unknown.check(GUILD, id(11)).is_ok());
    }

    #[test]
    fn the_first_rule_that_refuses_decides() {
        let mut both = role(30, "Integration mods", 8, KICK_MEMBERS);
        both.managed = true;
        let mut roles = community();
        roles.push(both);
        roles.push(role(31, "Loud", 9, MENTION_EVERYONE)); // elevated and above the bot
        roles.push(role(32, "Off list", 9, ADMINISTRATOR));
        let directory = directory(allow_names(&["Integration mods", "Loud"]), roles);
        assert!(matches!(
            refusal(&directory, 32),
            Some(Refusal::NotAssignable { .. })
        ));
        assert!(matches!(
            refusal(&directory, 30),
            Some(Refusal::Managed { .. })
        ));
        assert_eq!(
            refusal(&directory, 31),
            Some(Refusal::Elevated {
                name: "Loud".into(),
                permissions: vec!["Mention Everyone"],
            })
        );
    }

    #[test]
    fn a_bot_without_roles_can_give_nothing() {
        let directory = RoleDirectory::new(allow_names(&GAMES));
        directory.observe(&ready());
        directory.observe(&guild_create(GUILD, community(), vec![member(BOT, &[])]));
        assert!(directory.bot_roles_known(GUILD));
        assert_eq!(
            refusal(&directory, 11),
            Some(Refusal::AboveBot {
                name: "Chess".into()
            })
        );
    }

    #[test]
    fn allow_by_id_and_by_name_case_insensitively() {
        let config = RoleConfig {
            allow: vec![RoleRef::Id(id(12)), RoleRef::Name("  cHeSs ".into())],
            marker: None,
        };
        let directory = directory(config, community());
        assert!(directory.check(GUILD, id(11)).is_ok());
        assert!(directory.check(GUILD, id(12)).is_ok());
        assert!(matches!(
            refusal(&directory, 13),
            Some(Refusal::NotAssignable { .. })
        ));
        let listed: Vec<String> = directory
            .assignable(GUILD)
            .into_iter()
            .map(|a| a.role.name)
            .collect();
        assert_eq!(listed, ["Chess", "Go"]);
    }

    /// A community with divider roles, from the top: Admins, the bot,
    /// `── Staff ──`, Moderators, `── Games ──`, three games,
    /// `── Pronouns ──`, two pronoun roles, @everyone.
    fn divided() -> Vec<RoleInfo> {
        let mut bot = role(2, "guildscope", 19, MANAGE_ROLES);
        bot.managed = true;
        vec![
            role(1, "Admins", 20, ADMINISTRATOR),
            bot,
            role(3, "── Staff ──", 18, 0),
            role(4, "Moderators", 17, KICK_MEMBERS),
            role(5, "── Games ──", 16, 0),
            role(6, "Chess", 15, 0),
            role(7, "go", 14, 0),
            role(8, "Minecraft", 13, 0),
            role(9, "── Pronouns ──", 12, 0),
            role(10, "they/them", 11, 0),
            role(11, "she/her", 10, 0),
            role(GUILD.get(), "@everyone", 0, 0),
        ]
    }

    fn with_bot_role(config: RoleConfig, roles: Vec<RoleInfo>) -> RoleDirectory {
        let directory = RoleDirectory::new(config);
        directory.observe(&ready());
        directory.observe(&guild_create(GUILD, roles, vec![member(BOT, &[2])]));
        directory
    }

    fn marker(marker: RoleRef) -> RoleConfig {
        RoleConfig {
            allow: Vec::new(),
            marker: Some(marker),
        }
    }

    fn listed(directory: &RoleDirectory) -> Vec<(String, bool)> {
        directory
            .assignable(GUILD)
            .into_iter()
            .map(|a| (a.role.name, a.refusal.is_none()))
            .collect()
    }

    fn names(directory: &RoleDirectory) -> Vec<String> {
        listed(directory)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    #[test]
    fn marker_section_ends_at_the_next_divider_with_the_same_symbol() {
        let by_name = with_bot_role(marker(RoleRef::Name("── GAMES ──".into())), divided());
        assert_eq!(names(&by_name), ["Chess", "go", "Minecraft"]);
        let by_id = with_bot_role(marker(RoleRef::Id(id(9))), divided());
        assert_eq!(
            names(&by_id),
            ["she/her", "they/them"],
            "the last section ends at @everyone"
        );
        assert!(matches!(
            refusal(&by_name, 10),
            Some(Refusal::NotAssignable { .. })
        ));
        // The staff section is configured but every role in it is refused.
        let staff = with_bot_role(marker(RoleRef::Name("── Staff ──".into())), divided());
        assert_eq!(listed(&staff), [("Moderators".to_owned(), false)]);
    }

    #[test]
    fn marker_with_a_plain_name_ends_at_a_divider_shaped_role() {
        let roles = vec![
            role(2, "guildscope", 19, MANAGE_ROLES),
            role(5, "Games", 16, 0),
            role(6, "🎮 Chess", 15, 0), // a symbol on one side only: a game
            role(7, "Go", 14, 0),
            role(9, "━━ Pronouns ━━", 12, 0),
            role(10, "they/them", 11, 0),
            role(GUILD.get(), "@everyone", 0, 0),
        ];
        let directory = with_bot_role(marker(RoleRef::Name("games".into())), roles);
        assert_eq!(names(&directory), ["Go", "🎮 Chess"]);
    }

    #[test]
    fn marker_section_ends_at_a_blank_spacer_and_ranks_ties_by_age() {
        let roles = vec![
            role(2, "guildscope", 19, MANAGE_ROLES),
            role(5, "\u{2800}\u{2800}Games\u{2800}\u{2800}", 16, 0), // blank-padded
            // Equal positions: the older (smaller id) role ranks higher, so
            // Chess sits directly under the marker and the spacer under it.
            role(9, "   ", 15, 0),
            role(6, "Chess", 15, 0),
            role(10, "Go", 14, 0),
            role(GUILD.get(), "@everyone", 0, 0),
        ];
        let directory = with_bot_role(marker(RoleRef::Id(id(5))), roles.clone());
        assert_eq!(names(&directory), ["Chess"]);
        // Ties with the marker itself: the older role ranks above it, the
        // younger below.
        let mut tied = roles;
        tied.push(role(4, "Older", 16, 0));
        tied.push(role(12, "Younger", 16, 0));
        let directory = with_bot_role(marker(RoleRef::Id(id(5))), tied);
        assert_eq!(names(&directory), ["Chess", "Younger"]);
    }

    #[test]
    fn marker_and_allow_combine() {
        let config = RoleConfig {
            allow: vec![RoleRef::Name("she/her".into())],
            marker: Some(RoleRef::Name("── Games ──".into())),
        };
        let directory = with_bot_role(config, divided());
        assert_eq!(names(&directory), ["Chess", "go", "Minecraft", "she/her"]);
        assert!(directory.check(GUILD, id(11)).is_ok());
        assert!(directory.check(GUILD, id(7)).is_ok());
    }

    #[test]
    fn moving_a_role_moves_it_between_sections() {
        let directory = with_bot_role(marker(RoleRef::Name("── Games ──".into())), divided());
        assert!(directory.check(GUILD, id(10)).is_err());
        // they/them moves up between Chess and go.
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(10, "they/them", 14, 0),
        });
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(7, "go", 13, 0),
        });
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(8, "Minecraft", 12, 0),
        });
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(9, "── Pronouns ──", 11, 0),
        });
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(11, "she/her", 10, 0),
        });
        assert_eq!(names(&directory), ["Chess", "go", "Minecraft", "they/them"]);
    }

    #[test]
    fn assignable_is_sorted_by_name_and_explains_refusals() {
        let mut roles = community();
        roles.push(role(20, "apex", 8, 0)); // above the bot
        let directory = directory(
            allow_names(&["Tetris", "chess", "Admins", "apex", "guildscope"]),
            roles,
        );
        let got: Vec<(String, Option<Refusal>)> = directory
            .assignable(GUILD)
            .into_iter()
            .map(|a| (a.role.name, a.refusal))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "Admins".to_owned(),
                    Some(Refusal::Elevated {
                        name: "Admins".into(),
                        permissions: vec!["Administrator"]
                    })
                ),
                (
                    "apex".to_owned(),
                    Some(Refusal::AboveBot {
                        name: "apex".into()
                    })
                ),
                ("Chess".to_owned(), None),
                (
                    "guildscope".to_owned(),
                    Some(Refusal::Managed {
                        name: "guildscope".into()
                    })
                ),
                ("Tetris".to_owned(), None),
            ]
        );
        assert!(
            RoleDirectory::new(RoleConfig::default())
                .assignable(GUILD)
                .is_empty()
        );
    }

    #[test]
    fn autocomplete_puts_prefix_matches_first_and_skips_refused_roles() {
        let mut roles = community();
        roles.push(role(20, "Among Us", 1, 0));
        roles.push(role(21, "Age of Empires", 1, 0));
        roles.push(role(22, "Hearthstone", 1, 0));
        roles.push(role(23, "Stardew", 8, 0)); // above the bot: never offered
        let directory = directory(
            allow_names(&[
                "Chess",
                "Go",
                "Among Us",
                "Age of Empires",
                "Hearthstone",
                "Stardew",
                "Admins",
            ]),
            roles,
        );
        let names = |partial: &str| -> Vec<String> {
            directory
                .autocomplete(GUILD, partial)
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        };
        assert_eq!(names("A"), ["Age of Empires", "Among Us", "Hearthstone"]);
        assert_eq!(names("st"), ["Hearthstone"]);
        assert_eq!(names("  ch"), ["Chess"]);
        assert_eq!(
            names(""),
            ["Age of Empires", "Among Us", "Chess", "Go", "Hearthstone"]
        );
        assert!(names("zzz").is_empty());
        assert_eq!(
            directory.autocomplete(GUILD, "go"),
            [("Go".to_owned(), "12".to_owned())]
        );
        assert!(directory.autocomplete(GuildId::new(5), "").is_empty());
    }

    #[test]
    fn autocomplete_answers_at_most_25() {
        let mut roles = community();
        let mut allow = Vec::new();
        for i in 0..30_u64 {
            let name = format!("Game {i:02}");
            roles.push(role(100 + i, &name, 1, 0));
            allow.push(RoleRef::Name(name));
        }
        let config = RoleConfig {
            allow,
            marker: None,
        };
        let directory = directory(config, roles);
        let all = directory.autocomplete(GUILD, "");
        assert_eq!(all.len(), 25);
        assert_eq!(all[0], ("Game 00".to_owned(), "100".to_owned()));
        assert_eq!(all[24].0, "Game 24");
        assert_eq!(directory.autocomplete(GUILD, "game 2").len(), 10);
        assert_eq!(directory.assignable(GUILD).len(), 30);
    }

    #[test]
    fn resolve_by_id_mention_and_name() {
        let mut roles = community();
        roles.push(role(20, "2048", 1, 0)); // a name that looks like an id
        let directory = directory(allow_names(&GAMES), roles);
        let resolved = |input: &str| directory.resolve(GUILD, input).map(|r| r.id.get());
        assert_eq!(resolved("13"), Some(13));
        assert_eq!(resolved("<@&14>"), Some(14));
        assert_eq!(resolved(" <@&14> "), Some(14));
        assert_eq!(resolved("mInEcRaFt"), Some(13));
        assert_eq!(resolved("@chess"), Some(11));
        assert_eq!(resolved("@everyone"), Some(GUILD.get()));
        assert_eq!(resolved("2048"), Some(20));
        assert_eq!(resolved("Admins"), Some(19), "refused roles still resolve");
        assert_eq!(resolved("<@&999>"), None);
        assert_eq!(resolved("<@&chess>"), None);
        assert_eq!(resolved("999"), None);
        assert_eq!(resolved("Ches"), None);
        assert_eq!(resolved(""), None);
        assert_eq!(directory.resolve(GuildId::new(5), "Chess"), None);
    }

    #[test]
    fn resolve_prefers_the_role_a_member_may_take_among_namesakes() {
        let mut roles = community();
        roles.push(role(20, "chess", 9, 0)); // above the bot
        roles.push(role(21, "CHESS", 3, 0)); // not configured
        let config = RoleConfig {
            allow: vec![RoleRef::Id(id(11)), RoleRef::Id(id(20))],
            marker: None,
        };
        let directory = directory(config, roles);
        assert_eq!(directory.resolve(GUILD, "Chess").unwrap().id, id(11));
        directory.observe(&Event::RoleDelete {
            guild_id: GUILD,
            role_id: id(11),
        });
        assert_eq!(
            directory.resolve(GUILD, "Chess").unwrap().id,
            id(20),
            "then a configured one"
        );
    }

    #[test]
    fn observe_tracks_roles_and_guilds() {
        let directory = directory(allow_names(&["Chess", "Poker", "Go"]), community());
        assert!(directory.knows_guild(GUILD));

        // Create: a new configured role is assignable at once.
        let poker = role(30, "Poker", 2, 0);
        directory.observe(&Event::RoleCreate {
            guild_id: GUILD,
            role: poker.clone(),
        });
        assert_eq!(directory.check(GUILD, id(30)), Ok(poker));

        // Update: a permission added makes it elevated; a rename drops it
        // from the configured set.
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(30, "Poker", 2, MANAGE_MESSAGES),
        });
        assert!(matches!(
            refusal(&directory, 30),
            Some(Refusal::Elevated { .. })
        ));
        directory.observe(&Event::RoleUpdate {
            guild_id: GUILD,
            role: role(11, "Checkers", 1, 0),
        });
        assert!(matches!(
            refusal(&directory, 11),
            Some(Refusal::NotAssignable { .. })
        ));

        // Delete.
        directory.observe(&Event::RoleDelete {
            guild_id: GUILD,
            role_id: id(30),
        });
        assert_eq!(refusal(&directory, 30), Some(Refusal::UnknownRole));

        // Role events for a guild not (yet) known change nothing.
        let elsewhere = GuildId::new(2_000);
        directory.observe(&Event::RoleCreate {
            guild_id: elsewhere,
            role: role(40, "Chess", 1, 0),
        });
        assert!(!directory.knows_guild(elsewhere));

        // Delete, as an outage or not: gone until created again.
        for unavailable in [true, false] {
            directory.observe(&Event::GuildDelete {
                guild_id: GUILD,
                unavailable,
            });
            assert!(!directory.knows_guild(GUILD));
            assert_eq!(refusal(&directory, 12), Some(Refusal::GuildUnknown));
            assert!(directory.assignable(GUILD).is_empty());
            directory.observe(&guild_create(GUILD, community(), vec![member(BOT, &[17])]));
            assert!(directory.check(GUILD, id(12)).is_ok());
        }
    }

    #[test]
    fn the_bots_roles_come_from_guild_create_and_member_events() {
        let mut roles = community();
        roles.push(role(20, "Lounge", 8, 0)); // above the bot's role at 7
        let directory = directory(allow_names(&["Chess", "Lounge"]), roles.clone());
        assert!(directory.bot_roles_known(GUILD), "from GUILD_CREATE");
        assert!(matches!(
            refusal(&directory, 20),
            Some(Refusal::AboveBot { .. })
        ));

        // The bot is given Admins (position 9): Lounge is below it now.
        directory.observe(&Event::MemberUpdate {
            guild_id: GUILD,
            member: member(BOT, &[17, 19]),
        });
        assert!(directory.check(GUILD, id(20)).is_ok());

        // Another member's update says nothing about the bot.
        directory.observe(&Event::MemberUpdate {
            guild_id: GUILD,
            member: member(MEMBER, &[]),
        });
        assert!(directory.check(GUILD, id(20)).is_ok());

        // Deleting the bot's top role lowers its reach again.
        directory.observe(&Event::RoleDelete {
            guild_id: GUILD,
            role_id: id(19),
        });
        assert!(matches!(
            refusal(&directory, 20),
            Some(Refusal::AboveBot { .. })
        ));

        // A member chunk that includes the bot.
        directory.observe(&Event::MembersChunk {
            guild_id: GUILD,
            members: vec![member(MEMBER, &[11]), member(BOT, &[20])],
            chunk_index: 0,
            chunk_count: 1,
            nonce: None,
        });
        assert!(matches!(
            refusal(&directory, 20),
            Some(Refusal::AboveBot { .. })
        ));
        assert!(directory.check(GUILD, id(11)).is_ok());
        directory.observe(&Event::MembersChunk {
            guild_id: GUILD,
            members: vec![member(MEMBER, &[])],
            chunk_index: 0,
            chunk_count: 1,
            nonce: None,
        });
        assert!(directory.bot_roles_known(GUILD));

        // The bot joins a guild: MEMBER_ADD, then its GUILD_CREATE.
        let other = GuildId::new(2_000);
        directory.observe(&Event::MemberAdd {
            guild_id: other,
            member: member(BOT, &[]),
        });
        assert!(
            !directory.bot_roles_known(other),
            "the guild is not known yet"
        );
        directory.observe(&guild_create(other, Vec::new(), Vec::new()));
        assert!(!directory.bot_roles_known(other));
        directory.observe(&Event::MemberAdd {
            guild_id: other,
            member: member(BOT, &[]),
        });
        assert!(directory.bot_roles_known(other));
    }

    #[test]
    fn guild_create_before_ready_leaves_the_bots_roles_unknown() {
        let directory = RoleDirectory::new(allow_names(&["Chess"]));
        directory.observe(&guild_create(GUILD, community(), vec![member(BOT, &[17])]));
        assert!(!directory.bot_roles_known(GUILD));
        assert_eq!(refusal(&directory, 11), Some(Refusal::BotRolesUnknown));
        assert!(directory.autocomplete(GUILD, "").is_empty());
        directory.observe(&ready());
        directory.observe(&Event::MemberUpdate {
            guild_id: GUILD,
            member: member(BOT, &[17]),
        });
        assert!(directory.check(GUILD, id(11)).is_ok());
    }

    #[test]
    fn a_message_changes_nothing() {
        let directory = directory(allow_names(&["Chess"]), community());
        directory.observe(&Event::MessageCreate(MessageMeta {
            id: MessageId::new(1),
            guild_id: Some(GUILD),
            channel_id: ChannelId::new(2),
            author_id: BOT,
            author_is_bot: true,
            is_system: false,
            is_webhook: false,
            created_at_ms: 0,
            keyed_hash: None,
            command: None,
        }));
        directory.observe(&Event::Other);
        assert_eq!(names(&directory), ["Chess"]);
        assert!(directory.bot_roles_known(GUILD));
    }

    #[test]
    fn refusals_read_as_sentences_without_ids_or_live_markup() {
        let admins = Refusal::Elevated {
            name: "Admins".into(),
            permissions: vec!["Administrator"],
        };
        assert_eq!(
            admins.to_string(),
            "**Admins** can't be self-assigned: it grants moderator or admin permissions \
             (Administrator)."
        );
        let many = Refusal::Elevated {
            name: "Moderators".into(),
            permissions: elevated(KICK_MEMBERS | BAN_MEMBERS | MANAGE_MESSAGES | MANAGE_ROLES),
        };
        assert_eq!(
            many.to_string(),
            "**Moderators** can't be self-assigned: it grants moderator or admin permissions \
             (Manage Roles, Ban Members, Kick Members and 1 more)."
        );
        let two = Refusal::Elevated {
            name: "Helpers".into(),
            permissions: vec!["Manage Messages", "Manage Threads"],
        };
        assert!(
            two.to_string()
                .ends_with("(Manage Messages and Manage Threads).")
        );
        assert_eq!(escaped("a_b @here").to_string(), "a\\_b @\u{200B}here");
        let sneaky = Refusal::NotAssignable {
            name: "@everyone **fans** <@&1>".into(),
        };
        assert_eq!(
            sneaky.to_string(),
            "**@\u{200B}everyone \\*\\*fans\\*\\* \\<@\u{200B}&1\\>** isn't one of the roles \
             members can give themselves."
        );
        for refusal in [
            Refusal::UnknownRole,
            Refusal::Everyone,
            Refusal::BotRolesUnknown,
            Refusal::GuildUnknown,
            Refusal::Managed { name: "x".into() },
            Refusal::AboveBot { name: "x".into() },
        ] {
            let text = refusal.to_string();
            assert!(text.ends_with('.'), "{text}");
            assert!(!text.contains("@everyone"), "{text}");
            assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
        }
    }

    #[test]
    fn elevated_bits_are_distinct_and_everyday_permissions_are_not_elevated() {
        let mut seen = 0_u64;
        for (bit, name) in ELEVATED {
            assert_eq!(bit.count_ones(), 1, "{name}");
            assert_eq!(seen & bit, 0, "{name} listed twice");
            seen |= bit;
        }
        // What @everyone has in a typical community: view, send, history,
        // reactions, embeds, files, emojis, voice, nickname, threads, commands.
        let everyday: u64 = (1 << 10)
            | (1 << 11)
            | (1 << 16)
            | (1 << 6)
            | (1 << 14)
            | (1 << 15)
            | (1 << 18)
            | (1 << 20)
            | (1 << 21)
            | (1 << 26)
            | (1 << 35)
            | (1 << 38)
            | (1 << 31);
        assert!(elevated(everyday).is_empty());
        assert_eq!(elevated(ADMINISTRATOR | everyday), ["Administrator"]);
    }

    /// Over real sockets: the simulator's GUILD_CREATE of a large guild
    /// (only 50 of its 500 members sent) still carries the bot's own
    /// member, so the directory knows where the bot's authority ends without
    /// asking REST, and its verdicts match the seeded community: game roles
    /// pass, the bot's integration role is managed, staff roles are
    /// elevated, @everyone is @everyone.
    #[tokio::test]
    async fn the_simulators_guild_create_carries_the_bots_own_member() {
        let sim = Simulator::start(SimConfig {
            guilds: 2,
            members: 500,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let info = sim.info();
        let mut discord = DiscordConfig::local(
            Secret::new(info.token.clone()),
            info.rest_url.clone(),
            info.gateway_url.clone(),
        );
        discord.large_threshold = 50;
        let rest = Rest::new(&discord);
        let Gateway { handle, mut events } = Gateway::start(&discord, &rest).await.unwrap();
        let community = sim.community().clone();
        let every_name = community
            .guilds
            .iter()
            .flat_map(|guild| &guild.roles)
            .map(|role| RoleRef::Name(role.name.clone()))
            .collect();
        let directory = RoleDirectory::new(RoleConfig {
            allow: every_name,
            marker: None,
        });

        let mut created = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), async {
            while created.len() < community.guilds.len() {
                let envelope = events.recv().await.expect("the gateway stopped");
                directory.observe(&envelope.event);
                if let Event::GuildCreate(guild) = &envelope.event {
                    created.push((guild.large, guild.members.len()));
                }
            }
        })
        .await
        .expect("every guild to arrive");
        assert_eq!(created, [(true, 50), (true, 50)]);

        for guild in &community.guilds {
            let guild_id = GuildId::new(guild.id);
            assert!(directory.bot_roles_known(guild_id), "{}", guild.name);
            for role in &guild.roles {
                let verdict = directory.check(guild_id, RoleId::new(role.id));
                let name = role.name.clone();
                match verdict {
                    Ok(_) => assert!(role.self_assignable, "{name} passed"),
                    Err(Refusal::Managed { .. }) => assert!(role.managed, "{name}"),
                    Err(Refusal::Elevated { .. }) => assert!(role.staff, "{name}"),
                    Err(Refusal::Everyone) => assert_eq!(role.id, guild.id),
                    Err(other) => panic!("{name} refused: {other:?}"),
                }
            }
            let mut offered: Vec<String> = directory
                .autocomplete(guild_id, "")
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let mut seeded = guild.self_assignable_roles.clone();
            offered.sort();
            seeded.sort();
            assert_eq!(offered, seeded);
        }
        handle.shutdown().await;
        sim.shutdown().await;
    }
}
