//! Interactions: building INTERACTION_CREATE (application commands and autocomplete),
//! remembering every interaction's token, and recording what the bot answered (callback,
//! edits of the original response, followups) with timings, for tests to assert on.

use std::{
    collections::{HashMap, VecDeque},
    time::Instant,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use twilight_model::{
    application::{
        command::{CommandOptionType, CommandType},
        interaction::{
            Interaction, InteractionContextType, InteractionData, InteractionDataResolved,
            InteractionPartialGuild, InteractionType,
            application_command::{CommandData, CommandDataOption, CommandOptionValue},
        },
    },
    gateway::payload::incoming::InteractionCreate,
    guild::{GuildFeature, Permissions},
    id::AnonymizableId,
    oauth::ApplicationIntegrationMap,
};

use crate::{
    SimError,
    community::{ChannelKind, RoleKind, World, names, wire},
    gateway::{EventKind, payloads, session::Written},
    ids,
    rng::{Rng, mix64},
    state::{Shared, Stats},
};

/// Interactions remembered for callbacks and inspection.
const REGISTRY_CAPACITY: usize = 100_000;

/// Which interaction type to inject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    /// An application command (type 2).
    #[default]
    Command,
    /// Application command autocomplete (type 4); one option should be `focused`.
    Autocomplete,
}

/// A request to inject an INTERACTION_CREATE (the control API's `POST /interactions`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InteractionRequest {
    /// Guild the command is used in.
    #[serde(with = "ids::string")]
    pub guild_id: u64,
    /// Member using the command.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// Channel the command is used in.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// Command name (need not be registered; an unregistered name gets a stable fake id).
    pub name: String,
    /// Options in Discord's format: `[{"name": "role", "type": 3, "value": "Chess"}]`,
    /// subcommands as `{"name": "add", "type": 1, "options": [...]}`.
    #[serde(default)]
    pub options: Value,
    /// Command or autocomplete.
    #[serde(default, rename = "type")]
    pub kind: InteractionKind,
}

/// The id and token of an injected interaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InjectedInteraction {
    /// Interaction id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Interaction token (for callbacks and webhooks).
    pub token: String,
}

/// The initial response the bot sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// Interaction callback type (4 message, 5 deferred, 8 autocomplete result …).
    #[serde(rename = "type")]
    pub kind: u64,
    /// The request body as sent.
    pub body: Value,
    /// Milliseconds from dispatch to the callback.
    pub ms_after_dispatch: f64,
    /// Milliseconds from the INTERACTION_CREATE being written to the bot's
    /// socket to the callback request arriving: the bot's own time to answer,
    /// plus both trips over the network. `None` if it was never written (the
    /// callback came from elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_after_written: Option<f64>,
}

/// An edit of the original response or a followup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// Id of the message created or edited.
    #[serde(with = "ids::string")]
    pub message_id: u64,
    /// The request body as sent.
    pub body: Value,
    /// Milliseconds from dispatch to this request.
    pub ms_after_dispatch: f64,
}

/// Everything known about one interaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InteractionRecord {
    /// Interaction id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Interaction token.
    pub token: String,
    /// Command name.
    pub name: String,
    /// Command or autocomplete.
    #[serde(rename = "type")]
    pub kind: InteractionKind,
    /// Guild.
    #[serde(with = "ids::string")]
    pub guild_id: u64,
    /// Channel.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// Invoking user.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// Unix time in milliseconds at dispatch.
    pub dispatched_at_ms: u64,
    /// The accepted initial response, if any.
    pub callback: Option<CallbackRecord>,
    /// Initial responses rejected because they came after the deadline.
    pub late_callbacks: u32,
    /// Edits of the original response.
    pub edits: Vec<WebhookRecord>,
    /// Followup messages.
    pub followups: Vec<WebhookRecord>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) record: InteractionRecord,
    pub(crate) dispatched: Instant,
    /// When the INTERACTION_CREATE was first written to a bot's socket.
    pub(crate) written: Written,
    pub(crate) original_message: Option<Value>,
    pub(crate) followup_messages: Vec<(u64, Value)>,
}

impl Entry {
    pub(crate) fn elapsed_ms(&self) -> f64 {
        self.dispatched.elapsed().as_secs_f64() * 1000.0
    }

    /// Milliseconds from the INTERACTION_CREATE being written to `at`, once
    /// it has been written.
    pub(crate) fn ms_after_written(&self, at: Instant) -> Option<f64> {
        let written = *self.written.get()?;
        Some(at.saturating_duration_since(written).as_secs_f64() * 1000.0)
    }
}

/// Recent interactions by id and by token.
#[derive(Debug, Default)]
pub(crate) struct InteractionRegistry {
    by_id: HashMap<u64, Entry>,
    by_token: HashMap<String, u64>,
    order: VecDeque<u64>,
}

impl InteractionRegistry {
    fn insert(&mut self, entry: Entry) {
        let id = entry.record.id;
        self.by_token.insert(entry.record.token.clone(), id);
        self.by_id.insert(id, entry);
        self.order.push_back(id);
        while self.order.len() > REGISTRY_CAPACITY {
            if let Some(old) = self.order.pop_front()
                && let Some(entry) = self.by_id.remove(&old)
            {
                self.by_token.remove(&entry.record.token);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(entry) = self.by_id.remove(&id) {
            self.by_token.remove(&entry.record.token);
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Entry> {
        self.by_id.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.by_id.get_mut(&id)
    }

    pub(crate) fn by_token_mut(&mut self, token: &str) -> Option<&mut Entry> {
        let id = *self.by_token.get(token)?;
        self.by_id.get_mut(&id)
    }
}

/// A command invocation to dispatch.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) guild_id: u64,
    pub(crate) channel_id: u64,
    pub(crate) user_id: u64,
    pub(crate) name: String,
    pub(crate) command_id: u64,
    pub(crate) command_guild: Option<u64>,
    pub(crate) options: Vec<CommandDataOption>,
    pub(crate) kind: InteractionKind,
}

/// Builds an invocation for an injection request, checking guild, channel and member.
pub(crate) fn invocation_for(
    shared: &Shared,
    world: &World,
    request: InteractionRequest,
) -> Result<Invocation, SimError> {
    let guild = world
        .guild_idx(request.guild_id)
        .and_then(|i| world.guilds.get(i))
        .ok_or(SimError::UnknownGuild {
            guild_id: request.guild_id,
        })?;
    if guild.channel(request.channel_id).is_none() {
        return Err(SimError::UnknownChannel {
            guild_id: request.guild_id,
            channel_id: request.channel_id,
        });
    }
    if guild.member(request.user_id).is_none() {
        return Err(SimError::UnknownMember {
            guild_id: request.guild_id,
            user_id: request.user_id,
        });
    }
    let options = match request.options {
        Value::Null => Vec::new(),
        value => serde_json::from_value(value).map_err(|e| SimError::InvalidInteraction {
            reason: format!("options: {e}"),
        })?,
    };
    let registered = crate::state::lock(&shared.commands)
        .find(request.guild_id, &request.name)
        .map(|c| {
            (
                c["id"].as_str().and_then(|s| s.parse().ok()),
                c["guild_id"].as_str().and_then(|s| s.parse().ok()),
            )
        });
    let (command_id, command_guild) = match registered {
        Some((Some(id), guild)) => (id, guild),
        _ => (fake_command_id(world.seed, &request.name), None),
    };
    Ok(Invocation {
        guild_id: request.guild_id,
        channel_id: request.channel_id,
        user_id: request.user_id,
        name: request.name,
        command_id,
        command_guild,
        options,
        kind: request.kind,
    })
}

/// A stable, valid-looking id for a command that was never registered.
fn fake_command_id(seed: u64, name: &str) -> u64 {
    let hash = name
        .bytes()
        .fold(mix64(seed), |h, b| mix64(h ^ u64::from(b)));
    crate::snowflake::snowflake(1_700_000_000_000 + hash % 10_000_000_000, hash >> 42)
}

/// Dispatches an INTERACTION_CREATE to the sessions covering the guild and registers it.
pub(crate) fn dispatch(
    shared: &Shared,
    world: &mut World,
    invocation: Invocation,
) -> Result<InjectedInteraction, SimError> {
    let guild_idx = world
        .guild_idx(invocation.guild_id)
        .ok_or(SimError::UnknownGuild {
            guild_id: invocation.guild_id,
        })?;
    let id = world.next_id();
    let token = format!(
        "aW50ZXJhY3Rpb246{id}OnNpbXVsYXRvcg.{:016x}{:016x}{:016x}",
        mix64(id ^ world.seed),
        mix64(id.rotate_left(17)),
        mix64(!id)
    );
    let now_ms = world.now_ms();
    let Some(guild) = world.guilds.get(guild_idx) else {
        return Err(SimError::UnknownGuild {
            guild_id: invocation.guild_id,
        });
    };
    let channel = guild
        .channel(invocation.channel_id)
        .ok_or(SimError::UnknownChannel {
            guild_id: guild.id,
            channel_id: invocation.channel_id,
        })?;
    let member = guild
        .member(invocation.user_id)
        .ok_or(SimError::UnknownMember {
            guild_id: guild.id,
            user_id: invocation.user_id,
        })?;
    let bot_permissions = guild
        .member(world.bot.user_id)
        .map_or(0, |m| guild.permissions(m));
    let mut partial = wire::partial_member(member, Some(guild.permissions(member)));
    partial.user = Some(wire::user(member.user_id, world.user(member.user_id)));
    let resolved = resolve(world, guild_idx, &invocation.options);
    #[allow(deprecated)]
    let interaction = Interaction {
        app_permissions: Some(Permissions::from_bits_truncate(bot_permissions)),
        application_id: wire::id(world.bot.application_id),
        attachment_size_limit: 10_485_760,
        authorizing_integration_owners: ApplicationIntegrationMap {
            guild: Some(AnonymizableId::Id(wire::id(guild.id))),
            user: None,
        },
        channel: Some(wire::channel(guild, channel, true)),
        channel_id: Some(wire::id(channel.id)),
        context: Some(InteractionContextType::Guild),
        data: Some(InteractionData::ApplicationCommand(Box::new(CommandData {
            guild_id: invocation.command_guild.map(wire::id),
            id: wire::id(invocation.command_id),
            kind: CommandType::ChatInput,
            name: invocation.name.clone(),
            options: invocation.options,
            resolved,
            target_id: None,
        }))),
        entitlements: Vec::new(),
        guild: Some(InteractionPartialGuild {
            features: Some(vec![GuildFeature::Community]),
            id: Some(wire::id(guild.id)),
            locale: Some("en-US".to_owned()),
        }),
        guild_id: Some(wire::id(guild.id)),
        guild_locale: Some("en-US".to_owned()),
        id: wire::id(id),
        kind: match invocation.kind {
            InteractionKind::Command => InteractionType::ApplicationCommand,
            InteractionKind::Autocomplete => InteractionType::ApplicationCommandAutocomplete,
        },
        locale: Some("en-US".to_owned()),
        member: Some(partial),
        message: None,
        token: token.clone(),
        user: None,
    };
    let body = payloads::to_bytes(&InteractionCreate(interaction));
    let guild_id = guild.id;
    let record = InteractionRecord {
        id,
        token: token.clone(),
        name: invocation.name,
        kind: invocation.kind,
        guild_id,
        channel_id: invocation.channel_id,
        user_id: invocation.user_id,
        dispatched_at_ms: now_ms,
        callback: None,
        late_callbacks: 0,
        edits: Vec::new(),
        followups: Vec::new(),
    };
    let written = Written::default();
    // Registered before it is sent so a fast callback always finds it.
    crate::state::lock(&shared.interactions).insert(Entry {
        record,
        dispatched: Instant::now(),
        written: written.clone(),
        original_message: None,
        followup_messages: Vec::new(),
    });
    if shared.hub.broadcast_timed(
        guild_id,
        EventKind::InteractionCreate,
        &body,
        Some(&written),
    ) == 0
    {
        crate::state::lock(&shared.interactions).remove(id);
        return Err(SimError::NotCovered { guild_id });
    }
    Stats::bump(&shared.stats.interactions_sent);
    Ok(InjectedInteraction { id, token })
}

/// `resolved` data for role and user options, as Discord sends it.
fn resolve(
    world: &World,
    guild_idx: usize,
    options: &[CommandDataOption],
) -> Option<InteractionDataResolved> {
    let guild = world.guilds.get(guild_idx)?;
    let mut resolved = InteractionDataResolved {
        attachments: HashMap::new(),
        channels: HashMap::new(),
        members: HashMap::new(),
        messages: HashMap::new(),
        roles: HashMap::new(),
        users: HashMap::new(),
    };
    fn walk(options: &[CommandDataOption], f: &mut dyn FnMut(&CommandOptionValue)) {
        for option in options {
            match &option.value {
                CommandOptionValue::SubCommand(inner)
                | CommandOptionValue::SubCommandGroup(inner) => {
                    walk(inner, f);
                }
                value => f(value),
            }
        }
    }
    walk(options, &mut |value| match value {
        CommandOptionValue::Role(id) => {
            if let Some(role) = guild.role(id.get()) {
                resolved
                    .roles
                    .insert(*id, wire::role(role, world.bot.user_id));
            }
        }
        CommandOptionValue::User(id) => {
            resolved
                .users
                .insert(*id, wire::user(id.get(), world.user(id.get())));
        }
        _ => {}
    });
    (!(resolved.roles.is_empty() && resolved.users.is_empty())).then_some(resolved)
}

/// A random invocation of a registered command (or `/ping` when none is registered), as a
/// member would make it: options filled from the command's definition.
pub(crate) fn random_invocation(
    rng: &mut Rng,
    world: &World,
    commands: &[Value],
    guild_idx: usize,
    channel_id: u64,
    user_id: u64,
) -> Option<Invocation> {
    let guild = world.guilds.get(guild_idx)?;
    let Some(command) = rng.pick(commands) else {
        return Some(Invocation {
            guild_id: guild.id,
            channel_id,
            user_id,
            name: "ping".to_owned(),
            command_id: fake_command_id(world.seed, "ping"),
            command_guild: None,
            options: Vec::new(),
            kind: InteractionKind::Command,
        });
    };
    let mut want_focus = rng.chance(0.25);
    let options = fill_options(rng, world, guild_idx, &command["options"], &mut want_focus);
    let kind = if has_focused(&options) {
        InteractionKind::Autocomplete
    } else {
        InteractionKind::Command
    };
    Some(Invocation {
        guild_id: guild.id,
        channel_id,
        user_id,
        name: command["name"].as_str().unwrap_or("ping").to_owned(),
        command_id: command["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
        command_guild: command["guild_id"].as_str().and_then(|s| s.parse().ok()),
        options,
        kind,
    })
}

fn has_focused(options: &[CommandDataOption]) -> bool {
    options.iter().any(|o| match &o.value {
        CommandOptionValue::Focused(..) => true,
        CommandOptionValue::SubCommand(inner) | CommandOptionValue::SubCommandGroup(inner) => {
            has_focused(inner)
        }
        _ => false,
    })
}

/// Fills options from a command's option definitions. `want_focus` is set to false once an
/// autocomplete option was made the focused one.
fn fill_options(
    rng: &mut Rng,
    world: &World,
    guild_idx: usize,
    definitions: &Value,
    want_focus: &mut bool,
) -> Vec<CommandDataOption> {
    let Some(defs) = definitions.as_array() else {
        return Vec::new();
    };
    let Some(guild) = world.guilds.get(guild_idx) else {
        return Vec::new();
    };
    let subcommands: Vec<&Value> = defs
        .iter()
        .filter(|d| matches!(d["type"].as_u64(), Some(1 | 2)))
        .collect();
    if let Some(sub) = rng.pick(&subcommands) {
        let name = sub["name"].as_str().unwrap_or_default().to_owned();
        let inner = fill_options(rng, world, guild_idx, &sub["options"], want_focus);
        let value = if sub["type"] == 2 {
            CommandOptionValue::SubCommandGroup(inner)
        } else {
            CommandOptionValue::SubCommand(inner)
        };
        return vec![CommandDataOption { name, value }];
    }
    let mut out = Vec::new();
    for def in defs {
        let required = def["required"].as_bool().unwrap_or(false);
        if !required && rng.chance(0.5) {
            continue;
        }
        let name = def["name"].as_str().unwrap_or_default().to_owned();
        let choices = def["choices"].as_array().filter(|c| !c.is_empty());
        let game_roles: Vec<_> = guild
            .roles
            .iter()
            .filter(|r| r.kind == RoleKind::Game)
            .collect();
        let value = match def["type"].as_u64() {
            Some(3) => {
                let text = if let Some(choices) = choices {
                    rng.pick(choices)
                        .and_then(|c| c["value"].as_str())
                        .unwrap_or_default()
                        .to_owned()
                } else if name.contains("role") {
                    rng.pick(&game_roles)
                        .map(|r| r.name.clone())
                        .unwrap_or_default()
                } else {
                    names::WORDS[rng.index(names::WORDS.len())].to_owned()
                };
                if *want_focus && def["autocomplete"].as_bool().unwrap_or(false) {
                    *want_focus = false;
                    let cut = text.char_indices().nth(2).map_or(text.len(), |(i, _)| i);
                    CommandOptionValue::Focused(text[..cut].to_owned(), CommandOptionType::String)
                } else {
                    CommandOptionValue::String(text)
                }
            }
            Some(4) => {
                let lo = def["min_value"].as_i64().unwrap_or(1);
                let hi = def["max_value"].as_i64().unwrap_or(100).max(lo);
                let span = u64::try_from(hi - lo).unwrap_or(0);
                CommandOptionValue::Integer(lo + i64::try_from(rng.range(0, span)).unwrap_or(0))
            }
            Some(5) => CommandOptionValue::Boolean(rng.chance(0.5)),
            Some(6 | 9) => {
                let member = guild.members.get(rng.zipf(guild.members.len()));
                match member {
                    Some(m) if def["type"] == 6 => CommandOptionValue::User(wire::id(m.user_id)),
                    Some(m) => CommandOptionValue::Mentionable(wire::id(m.user_id)),
                    None => continue,
                }
            }
            Some(7) => {
                let texts: Vec<_> = guild
                    .channels
                    .iter()
                    .filter(|c| c.kind == ChannelKind::Text)
                    .collect();
                match rng.pick(&texts) {
                    Some(c) => CommandOptionValue::Channel(wire::id(c.id)),
                    None => continue,
                }
            }
            Some(8) => match rng.pick(&game_roles) {
                Some(r) => CommandOptionValue::Role(wire::id(r.id)),
                None => continue,
            },
            Some(10) => CommandOptionValue::Number(rng.unit() * 100.0),
            _ => continue,
        };
        out.push(CommandDataOption { name, value });
    }
    out
}
