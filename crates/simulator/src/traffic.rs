//! Live traffic: a seeded stream of realistic events at a configured rate, and the firehose
//! (N MESSAGE_CREATE as fast as the clients take them) for benchmarks.
//!
//! Events arrive as a Poisson process; their timestamps follow the pacing schedule, so the
//! same seed gives the same events with the same ids. Guilds, channels and authors are
//! chosen with Zipf-like skew. Traffic is generated only for guilds whose shard has a live
//! or resumable session, and producers wait (bounded backlog) when a connected client reads
//! slower than events are produced.

use std::{
    collections::{HashMap, VecDeque, hash_map::Entry},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;

use crate::{
    community::{
        ChannelKind, ChannelState, GuildState, MemberState, MessageBody, RoleKind, RoleState,
        StoredMessage, ThreadState, UserRecord, World, names, text,
    },
    emit::{self, Change},
    gateway::{EventKind, payloads::MessageTemplate, session::Session},
    interactions,
    rng::Rng,
    snowflake::wall_ms,
    state::{Shared, lock},
};

/// Events produced per world-lock acquisition. REST handlers and injected
/// interactions wait for the lock on a runtime worker, so it is held for short
/// chunks (≈ 0.5 ms), and the producer yields between them.
const BATCH: usize = 256;
/// MESSAGE_CREATE templates kept.
const TEMPLATE_CACHE: usize = 16_384;
/// Busiest channels first; channels not listed come after.
const BUSY_CHANNELS: &[&str] = &[
    "general",
    "off-topic",
    "dev-chat",
    "memes",
    "gaming",
    "code-review",
    "looking-for-group",
    "web-dev",
    "algorithms",
    "showcase",
    "introductions",
    "changelog",
    "announcements",
    "rules",
];

/// Event mix, per thousand events.
const MIX: &[(Kind, u32)] = &[
    (Kind::MessageCreate, 821),
    (Kind::MessageUpdate, 50),
    (Kind::MessageDelete, 25),
    (Kind::MessageDeleteBulk, 3),
    (Kind::MemberAdd, 15),
    (Kind::MemberRemove, 12),
    (Kind::MemberUpdate, 20),
    (Kind::ChannelCreate, 2),
    (Kind::ChannelUpdate, 4),
    (Kind::ChannelDelete, 2),
    (Kind::ThreadCreate, 8),
    (Kind::ThreadUpdate, 8),
    (Kind::ThreadDelete, 2),
    (Kind::RoleCreate, 1),
    (Kind::RoleUpdate, 3),
    (Kind::RoleDelete, 1),
    (Kind::Interaction, 23),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MessageCreate,
    MessageUpdate,
    MessageDelete,
    MessageDeleteBulk,
    MemberAdd,
    MemberRemove,
    MemberUpdate,
    ChannelCreate,
    ChannelUpdate,
    ChannelDelete,
    ThreadCreate,
    ThreadUpdate,
    ThreadDelete,
    RoleCreate,
    RoleUpdate,
    RoleDelete,
    Interaction,
}

/// Channels messages may go to, busiest first, per guild.
#[derive(Debug, Default, Clone)]
struct Postable {
    epoch: u64,
    channels: Vec<u64>,
    threads: Vec<u64>,
}

/// MESSAGE_CREATE templates by channel and author. Past [`TEMPLATE_CACHE`]
/// entries the oldest one makes room for the new one, and a template built
/// before the community last changed is rebuilt in place when next used.
/// Nothing is ever dropped in bulk: freeing tens of thousands of templates
/// at once made the allocator consolidate for tens of milliseconds, and
/// gateway writes and REST answers on the same thread waited for it.
#[derive(Default)]
struct TemplateCache {
    templates: HashMap<(u64, u64), CachedTemplate>,
    /// Keys, oldest first.
    order: VecDeque<(u64, u64)>,
}

struct CachedTemplate {
    epoch: u64,
    template: MessageTemplate,
}

impl TemplateCache {
    /// The template of `author_id` writing in `channel_id`.
    fn get(
        &mut self,
        world: &World,
        guild: &GuildState,
        channel_id: u64,
        author_id: u64,
    ) -> &MessageTemplate {
        let key = (channel_id, author_id);
        if !self.templates.contains_key(&key) {
            if self.templates.len() >= TEMPLATE_CACHE
                && let Some(oldest) = self.order.pop_front()
            {
                self.templates.remove(&oldest);
            }
            self.order.push_back(key);
        }
        let build = || MessageTemplate::build(world, guild, channel_id, author_id);
        match self.templates.entry(key) {
            Entry::Occupied(occupied) => {
                let cached = occupied.into_mut();
                if cached.epoch != world.epoch {
                    cached.template = build();
                    cached.epoch = world.epoch;
                }
                &cached.template
            }
            Entry::Vacant(vacant) => {
                &vacant
                    .insert(CachedTemplate {
                        epoch: world.epoch,
                        template: build(),
                    })
                    .template
            }
        }
    }
}

/// The traffic task's state.
pub(crate) struct Generator {
    rng: Rng,
    templates: TemplateCache,
    postable: HashMap<usize, Postable>,
    content: String,
    covered: Vec<usize>,
    targets: Vec<Arc<Session>>,
    weights: Vec<u32>,
    /// Backlog (dispatches not yet written to a connected client) at which producers wait.
    high_water: u64,
    /// Events produced between backpressure checks; at most `high_water`, so a connected
    /// client's backlog never exceeds the replay buffer.
    batch: usize,
}

/// Pacing of the Poisson process against the wall clock.
struct Pacer {
    rate: f64,
    anchor: Instant,
    /// Simulated Unix ms at the anchor.
    base_ms: f64,
    /// Offset (ms from the anchor) of the next event.
    next_ms: f64,
    active: bool,
}

impl Pacer {
    fn new() -> Self {
        Self {
            rate: 0.0,
            anchor: Instant::now(),
            base_ms: 0.0,
            next_ms: 0.0,
            active: false,
        }
    }
}

impl Generator {
    pub(crate) fn new(shared: &Shared) -> Self {
        Self {
            rng: Rng::derive(shared.config.seed, 0x07EA_FF1C),
            templates: TemplateCache::default(),
            postable: HashMap::new(),
            content: String::with_capacity(256),
            covered: Vec::new(),
            targets: Vec::new(),
            weights: MIX.iter().map(|&(_, w)| w).collect(),
            high_water: (shared.config.replay_buffer as u64 / 2).clamp(8, 16_384),
            batch: (shared.config.replay_buffer / 4).clamp(1, BATCH),
        }
    }

    /// Refreshes the list of guilds some session covers.
    fn refresh_coverage(&mut self, shared: &Shared, world: &World) {
        self.covered.clear();
        for (i, g) in world.guilds.iter().enumerate() {
            if shared.hub.covers(g.id) {
                self.covered.push(i);
            }
        }
    }

    /// Waits while a connected client is far behind (bounded backlog).
    async fn backpressure(&mut self, shared: &Shared) {
        loop {
            self.targets.clear();
            self.targets.extend(shared.hub.all());
            let behind = self
                .targets
                .iter()
                .find(|s| s.backlog() > self.high_water)
                .cloned();
            let Some(session) = behind else {
                return;
            };
            if *shared.shutdown.borrow() {
                return;
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(5), session.drained.notified()).await;
        }
    }

    /// Sends `n` MESSAGE_CREATE as fast as the clients read them.
    async fn firehose(&mut self, shared: &Shared, n: u64) {
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < n {
            if *shared.shutdown.borrow() {
                return;
            }
            self.backpressure(shared).await;
            match self.firehose_chunk(shared, n - sent) {
                Some(chunk) => sent += chunk,
                None => {
                    tracing::warn!(
                        remaining = n - sent,
                        "firehose stopped: no session covers any guild"
                    );
                    return;
                }
            }
            // Let REST handlers and the sessions' writers in between chunks.
            tokio::task::yield_now().await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        tracing::info!(
            messages = n,
            seconds = elapsed,
            per_second = n as f64 / elapsed.max(1e-9),
            "firehose done"
        );
    }

    /// Sends up to `remaining` MESSAGE_CREATE under one hold of the world
    /// lock; `None` when no session covers any guild.
    fn firehose_chunk(&mut self, shared: &Shared, remaining: u64) -> Option<u64> {
        let mut world = shared.world();
        self.refresh_coverage(shared, &world);
        if self.covered.is_empty() {
            return None;
        }
        if world.follow_wall_clock {
            world.clock_ms = world.clock_ms.max(wall_ms());
        }
        let chunk = remaining.min(self.batch as u64);
        for _ in 0..chunk {
            let g = self.pick_guild();
            self.message_create(shared, &mut world, g, None);
        }
        Some(chunk)
    }

    fn pick_guild(&mut self) -> usize {
        let i = self.rng.zipf(self.covered.len());
        self.covered.get(i).copied().unwrap_or(0)
    }

    fn postable(&mut self, world: &World, g: usize) -> &Postable {
        let epoch = world.epoch;
        let stale = self.postable.get(&g).is_none_or(|p| p.epoch != epoch);
        if stale {
            let mut p = Postable {
                epoch,
                ..Postable::default()
            };
            if let Some(guild) = world.guilds.get(g) {
                let mut channels: Vec<&ChannelState> = guild
                    .channels
                    .iter()
                    .filter(|c| c.kind == ChannelKind::Text && !c.staff_only)
                    .collect();
                channels.sort_by_key(|c| {
                    BUSY_CHANNELS
                        .iter()
                        .position(|&n| n == c.name)
                        .unwrap_or(BUSY_CHANNELS.len())
                });
                p.channels = channels.iter().map(|c| c.id).collect();
                p.threads = guild
                    .threads
                    .iter()
                    .filter(|t| t.thread.as_ref().is_some_and(|s| !s.archived))
                    .map(|t| t.id)
                    .collect();
            }
            self.postable.insert(g, p);
        }
        self.postable.entry(g).or_default()
    }

    fn pick_channel(&mut self, world: &World, g: usize) -> Option<u64> {
        let in_thread = self.rng.chance(0.15);
        let p = self.postable(world, g).clone();
        let list = if in_thread && !p.threads.is_empty() {
            &p.threads
        } else {
            &p.channels
        };
        let i = self.rng.zipf(list.len());
        list.get(i).copied()
    }

    /// An active author: Zipf over the member list, never the bot under test.
    fn pick_author(&mut self, world: &World, g: usize) -> Option<u64> {
        let guild = world.guilds.get(g)?;
        let i = self.rng.zipf(guild.members.len());
        let member = guild.members.get(i)?;
        if member.user_id == world.bot.user_id {
            guild.members.first().map(|m| m.user_id)
        } else {
            Some(member.user_id)
        }
    }

    /// The hot path: MESSAGE_CREATE rendered from a cached template.
    fn message_create(
        &mut self,
        shared: &Shared,
        world: &mut World,
        g: usize,
        id: Option<u64>,
    ) -> bool {
        let (Some(channel_id), Some(author_id)) =
            (self.pick_channel(world, g), self.pick_author(world, g))
        else {
            return false;
        };
        self.message_in(shared, world, g, channel_id, author_id, id)
    }

    fn message_in(
        &mut self,
        shared: &Shared,
        world: &mut World,
        g: usize,
        channel_id: u64,
        author_id: u64,
        id: Option<u64>,
    ) -> bool {
        let id = id.unwrap_or_else(|| world.next_id());
        let Some(guild) = world.guilds.get(g) else {
            return false;
        };
        let template = self.templates.get(world, guild, channel_id, author_id);
        self.content.clear();
        text::write_message(&mut self.content, text::content_key(world.seed, id, 0));
        let mut body = Vec::with_capacity(1024);
        template.render(&mut body, id, &self.content);
        let body = Bytes::from(body);
        let dispatched = shared
            .hub
            .broadcast(guild.id, EventKind::MessageCreate, &body)
            > 0;
        let stored = StoredMessage {
            id,
            author_id,
            edited_ms: None,
            revision: 0,
            body: MessageBody::Generated,
            webhook_id: None,
            reply_to: None,
            flags: 0,
            dispatched: false,
        };
        emit::record_message(world, g, channel_id, stored, dispatched);
        dispatched
    }

    /// A recent generated message in a busy channel (newest are likeliest).
    fn recent_message(&mut self, world: &World, g: usize) -> Option<(u64, u64)> {
        let channel_id = self.pick_channel(world, g)?;
        let history = world.guilds.get(g)?.history.get(&channel_id)?;
        let back = self.rng.zipf(history.len().min(50));
        let message = history.iter().rev().nth(back)?;
        matches!(message.body, MessageBody::Generated).then_some((channel_id, message.id))
    }

    /// One event of the mix in guild `g`.
    fn event(&mut self, shared: &Shared, world: &mut World, g: usize) {
        let mut kind = MIX
            .get(self.rng.weighted(&self.weights))
            .map_or(Kind::MessageCreate, |&(k, _)| k);
        // Joins and leaves are a random walk; lean it back towards the configured size.
        if let Some(guild) = world.guilds.get(g) {
            let (now, target) = (guild.members.len(), guild.target_members);
            if kind == Kind::MemberAdd && now > target + target / 10 {
                kind = Kind::MemberRemove;
            } else if kind == Kind::MemberRemove && now + target / 10 < target {
                kind = Kind::MemberAdd;
            }
        }
        let done = match kind {
            Kind::MessageCreate => self.message_create(shared, world, g, None),
            Kind::MessageUpdate => self
                .recent_message(world, g)
                .is_some_and(|(c, id)| emit::message_update(&shared.hub, world, g, c, id, None)),
            Kind::MessageDelete => self
                .recent_message(world, g)
                .is_some_and(|(c, id)| emit::message_delete(&shared.hub, world, g, c, &[id])),
            Kind::MessageDeleteBulk => self.bulk_delete(shared, world, g),
            Kind::MemberAdd => self.member_add(shared, world, g),
            Kind::MemberRemove => self.member_remove(shared, world, g),
            Kind::MemberUpdate => self.member_update(shared, world, g),
            Kind::ChannelCreate => self.channel_create(shared, world, g),
            Kind::ChannelUpdate => self.channel_update(shared, world, g),
            Kind::ChannelDelete => self.channel_delete(shared, world, g),
            Kind::ThreadCreate => self.thread_create(shared, world, g),
            Kind::ThreadUpdate => self.thread_update(shared, world, g),
            Kind::ThreadDelete => self.thread_delete(shared, world, g),
            Kind::RoleCreate => self.role_create(shared, world, g),
            Kind::RoleUpdate => self.role_update(shared, world, g),
            Kind::RoleDelete => self.role_delete(shared, world, g),
            Kind::Interaction => self.interaction(shared, world, g),
        };
        if !done && kind != Kind::MessageCreate {
            // The event had no target (nothing to delete, …): keep the rate with a message.
            self.message_create(shared, world, g, None);
        }
    }

    fn bulk_delete(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let Some(channel_id) = self.pick_channel(world, g) else {
            return false;
        };
        let count = usize::try_from(self.rng.range(2, 8)).unwrap_or(2);
        let ids: Vec<u64> = world
            .guilds
            .get(g)
            .and_then(|guild| guild.history.get(&channel_id))
            .map(|h| {
                h.iter()
                    .rev()
                    .filter(|m| matches!(m.body, MessageBody::Generated))
                    .take(count)
                    .map(|m| m.id)
                    .collect()
            })
            .unwrap_or_default();
        ids.len() >= 2 && emit::message_delete(&shared.hub, world, g, channel_id, &ids)
    }

    fn member_add(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let id = world.next_id();
        let name = format!(
            "{}_{}{}",
            names::USER_FIRST[self.rng.index(names::USER_FIRST.len())],
            names::USER_SECOND[self.rng.index(names::USER_SECOND.len())],
            self.rng.below(10_000)
        );
        world.users.insert(
            id,
            UserRecord {
                name,
                global_name: None,
                bot: false,
            },
        );
        let joined_ms = world.now_ms();
        world.epoch += 1;
        emit::member_add(
            &shared.hub,
            world,
            g,
            MemberState {
                user_id: id,
                roles: Vec::new(),
                joined_ms,
                nick: None,
            },
        )
    }

    /// A random ordinary member (not staff, not a bot).
    fn ordinary_member(&mut self, world: &World, g: usize) -> Option<u64> {
        let guild = world.guilds.get(g)?;
        for _ in 0..8 {
            let member = guild.members.get(self.rng.index(guild.members.len()))?;
            let bot = world.user(member.user_id).is_none_or(|u| u.bot);
            if !bot && !guild.is_staff(member) && member.user_id != guild.owner_id {
                return Some(member.user_id);
            }
        }
        None
    }

    fn member_remove(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let small = world
            .guilds
            .get(g)
            .is_none_or(|guild| guild.members.len() <= 10);
        if small {
            return false;
        }
        match self.ordinary_member(world, g) {
            Some(user) => emit::member_remove(&shared.hub, world, g, user),
            None => false,
        }
    }

    fn member_update(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let Some(user) = self.ordinary_member(world, g) else {
            return false;
        };
        let toggle_role = self.rng.chance(0.5);
        let games: Vec<u64> = world
            .guilds
            .get(g)
            .map(|guild| {
                guild
                    .roles
                    .iter()
                    .filter(|r| r.kind == RoleKind::Game)
                    .map(|r| r.id)
                    .collect()
            })
            .unwrap_or_default();
        let role = self.rng.pick(&games).copied();
        let nick = format!(
            "{} {}",
            names::USER_FIRST[self.rng.index(names::USER_FIRST.len())],
            names::USER_SECOND[self.rng.index(names::USER_SECOND.len())]
        );
        let Some(member) = world
            .guilds
            .get_mut(g)
            .and_then(|guild| guild.member_mut(user))
        else {
            return false;
        };
        match (toggle_role, role) {
            (true, Some(role)) => {
                if member.roles.contains(&role) {
                    member.roles.retain(|&r| r != role);
                } else {
                    member.roles.push(role);
                }
            }
            _ => {
                member.nick = if member.nick.is_some() {
                    None
                } else {
                    Some(nick)
                }
            }
        }
        emit::member_update(&shared.hub, world, g, user)
    }

    fn channel_create(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let id = world.next_id();
        let topic = names::TEMP_TOPICS[self.rng.index(names::TEMP_TOPICS.len())];
        let Some(guild) = world.guilds.get(g) else {
            return false;
        };
        let parent = guild
            .channels
            .iter()
            .find(|c| c.kind == ChannelKind::Category && c.name == "Community")
            .map(|c| c.id);
        let position = i32::try_from(guild.channels.len()).unwrap_or(i32::MAX);
        let channel = ChannelState {
            id,
            kind: ChannelKind::Text,
            name: format!("{topic}-{}", id % 1000),
            parent_id: parent,
            position,
            topic: Some(format!("Temporary channel for {topic}")),
            staff_only: false,
            transient: true,
            last_message_id: None,
            thread: None,
        };
        emit::channel_change(&shared.hub, world, g, channel, Change::Create)
    }

    fn channel_update(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let Some(channel_id) = self.pick_channel(world, g) else {
            return false;
        };
        let revision = self.rng.below(1000);
        let Some(mut channel) = world
            .guilds
            .get(g)
            .and_then(|guild| guild.channel(channel_id))
            .filter(|c| c.kind == ChannelKind::Text)
            .cloned()
        else {
            return false;
        };
        channel.topic = Some(format!(
            "Talk about {} (rev {revision})",
            channel.name.replace('-', " ")
        ));
        emit::channel_change(&shared.hub, world, g, channel, Change::Update)
    }

    fn channel_delete(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let channel = world.guilds.get(g).and_then(|guild| {
            let transient: Vec<&ChannelState> =
                guild.channels.iter().filter(|c| c.transient).collect();
            self.rng.pick(&transient).map(|c| (*c).clone())
        });
        match channel {
            Some(channel) => emit::channel_change(&shared.hub, world, g, channel, Change::Delete),
            None => false,
        }
    }

    fn thread_create(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let Some(owner) = self.ordinary_member(world, g) else {
            return false;
        };
        let id = world.next_id();
        let now = world.now_ms();
        let forum_post = self.rng.chance(0.6);
        let Some(guild) = world.guilds.get(g) else {
            return false;
        };
        let parent = if forum_post {
            guild.channels.iter().find(|c| c.kind == ChannelKind::Forum)
        } else {
            guild
                .channels
                .iter()
                .find(|c| c.kind == ChannelKind::Text && c.name == "dev-chat")
        }
        .map(|c| c.id);
        let Some(parent) = parent else {
            return false;
        };
        let words = names::WORDS.len();
        let name = format!(
            "{} {} {}",
            if forum_post { "help:" } else { "thread:" },
            names::WORDS[self.rng.index(words)],
            names::WORDS[self.rng.index(words)]
        );
        let thread = ChannelState {
            id,
            kind: ChannelKind::PublicThread,
            name,
            parent_id: Some(parent),
            position: 0,
            topic: None,
            staff_only: false,
            transient: true,
            last_message_id: None,
            thread: Some(ThreadState {
                owner_id: owner,
                archived: false,
                archive_ms: now,
                created_ms: now,
                auto_archive_minutes: 1440,
                message_count: 0,
            }),
        };
        let dispatched = emit::channel_change(&shared.hub, world, g, thread, Change::Create);
        if forum_post {
            // A forum post's starter message shares the thread's id, as on Discord.
            self.message_in(shared, world, g, id, owner, Some(id));
        }
        dispatched
    }

    fn pick_thread(&mut self, world: &World, g: usize) -> Option<ChannelState> {
        let guild = world.guilds.get(g)?;
        self.rng.pick(&guild.threads).cloned()
    }

    fn thread_update(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let Some(mut thread) = self.pick_thread(world, g) else {
            return false;
        };
        let now = world.now_ms();
        if let Some(state) = thread.thread.as_mut() {
            state.archived = !state.archived;
            state.archive_ms = now;
        }
        emit::channel_change(&shared.hub, world, g, thread, Change::Update)
    }

    fn thread_delete(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        if world
            .guilds
            .get(g)
            .is_none_or(|guild| guild.threads.len() <= 3)
        {
            return false;
        }
        match self.pick_thread(world, g) {
            Some(thread) => emit::channel_change(&shared.hub, world, g, thread, Change::Delete),
            None => false,
        }
    }

    fn role_create(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let id = world.next_id();
        let topic = names::TEMP_TOPICS[self.rng.index(names::TEMP_TOPICS.len())];
        let role = RoleState {
            id,
            name: format!("{topic} {}", id % 100),
            permissions: 0,
            color: u32::try_from(self.rng.below(0xFF_FFFF)).unwrap_or(0),
            position: 1,
            hoist: false,
            mentionable: true,
            kind: RoleKind::Temporary,
        };
        emit::role_change(&shared.hub, world, g, role, Change::Create)
    }

    fn role_update(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let role = world.guilds.get(g).and_then(|guild| {
            let games: Vec<&RoleState> = guild
                .roles
                .iter()
                .filter(|r| r.kind == RoleKind::Game)
                .collect();
            self.rng.pick(&games).map(|r| (*r).clone())
        });
        let Some(mut role) = role else {
            return false;
        };
        role.color = u32::try_from(self.rng.below(0xFF_FFFF)).unwrap_or(0);
        emit::role_change(&shared.hub, world, g, role, Change::Update)
    }

    fn role_delete(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let role = world.guilds.get(g).and_then(|guild| {
            let temporary: Vec<&RoleState> = guild
                .roles
                .iter()
                .filter(|r| r.kind == RoleKind::Temporary)
                .collect();
            self.rng.pick(&temporary).map(|r| (*r).clone())
        });
        match role {
            Some(role) => emit::role_change(&shared.hub, world, g, role, Change::Delete),
            None => false,
        }
    }

    fn interaction(&mut self, shared: &Shared, world: &mut World, g: usize) -> bool {
        let Some(user) = self.ordinary_member(world, g) else {
            return false;
        };
        let Some(guild_id) = world.guilds.get(g).map(|guild| guild.id) else {
            return false;
        };
        let channel = self.postable(world, g).channels.first().copied();
        let Some(channel) = channel else {
            return false;
        };
        let commands: Vec<serde_json::Value> = lock(&shared.commands)
            .visible(guild_id)
            .into_iter()
            .cloned()
            .collect();
        let Some(invocation) =
            interactions::random_invocation(&mut self.rng, world, &commands, g, channel, user)
        else {
            return false;
        };
        interactions::dispatch(shared, world, invocation).is_ok()
    }
}

/// The traffic task: paces events at the configured rate and runs firehose requests.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut generator = Generator::new(&shared);
    let mut pacer = Pacer::new();
    let mut shutdown = shared.shutdown.clone();
    let mut last_sweep = Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if last_sweep.elapsed() > Duration::from_secs(1) {
            shared.hub.sweep();
            last_sweep = Instant::now();
        }
        let pending = shared.traffic.firehose_pending.swap(0, Ordering::Relaxed);
        if pending > 0 {
            generator.firehose(&shared, pending).await;
            pacer.active = false;
            continue;
        }
        let rate = shared.traffic.rate();
        let wait = if rate > 0.0 {
            generator.paced(&shared, &mut pacer, rate).await
        } else {
            pacer.active = false;
            Duration::from_millis(250)
        };
        tokio::select! {
            _ = shutdown.changed() => {}
            () = shared.traffic.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

impl Generator {
    /// Produces the events that are due; returns how long to sleep until the next one.
    async fn paced(&mut self, shared: &Shared, pacer: &mut Pacer, rate: f64) -> Duration {
        {
            let world = shared.world();
            self.refresh_coverage(shared, &world);
            if self.covered.is_empty() {
                pacer.active = false;
                return Duration::from_millis(50);
            }
            if !pacer.active || (pacer.rate - rate).abs() > f64::EPSILON {
                // (Re)start the schedule: in wall-clock mode it starts now, in fixed-clock
                // mode it continues the simulated time where it stopped.
                let now = if world.follow_wall_clock {
                    world.clock_ms.max(wall_ms())
                } else {
                    world.clock_ms
                };
                pacer.anchor = Instant::now();
                pacer.base_ms = now as f64;
                pacer.rate = rate;
                pacer.next_ms = self.rng.exponential(1000.0 / rate);
                pacer.active = true;
            }
        }
        let mut produced = 0usize;
        loop {
            let elapsed_ms = pacer.anchor.elapsed().as_secs_f64() * 1000.0;
            if pacer.next_ms > elapsed_ms {
                let wait = Duration::from_secs_f64((pacer.next_ms - elapsed_ms) / 1000.0);
                return wait.min(Duration::from_millis(100));
            }
            if produced >= BATCH * 4 {
                return Duration::ZERO;
            }
            self.backpressure(shared).await;
            {
                let mut world = shared.world();
                let mut in_batch = 0;
                while in_batch < self.batch && pacer.next_ms <= elapsed_ms {
                    let at = (pacer.base_ms + pacer.next_ms) as u64;
                    world.clock_ms = world.clock_ms.max(at);
                    let g = self.pick_guild();
                    self.event(shared, &mut world, g);
                    pacer.next_ms += self.rng.exponential(1000.0 / rate);
                    in_batch += 1;
                }
                produced += in_batch;
            }
            tokio::task::yield_now().await;
        }
    }
}
