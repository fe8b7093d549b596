//! How guildscope reaches Discord (the real one or the simulator), in terms
//! that do not leak twilight into the rest of the program.

use guildscope_model::Secret;
use twilight_gateway::Intents;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// The bot token.
    pub token: Secret,
    /// Base URL of the REST API, e.g. `http://127.0.0.1:PORT` for the
    /// simulator; `None` for Discord itself. Requests go to
    /// `{api_base}/api/v10/...`.
    pub api_base: Option<String>,
    /// Base URL of the gateway, e.g. `ws://127.0.0.1:PORT`; `None` for
    /// Discord itself (the URL from `GET gateway/bot`). A local gateway also
    /// gets an identify queue that never waits.
    pub gateway_base: Option<String>,
    /// Number of shards; `None` uses the count Discord recommends in
    /// `GET gateway/bot`.
    pub shards: Option<u32>,
    /// Member count above which a guild's member list is not sent in
    /// GUILD_CREATE (Discord accepts 50 to 250).
    pub large_threshold: u64,
    /// Which events to subscribe to.
    pub intents: GatewayIntents,
    /// Capacity of the event bus; shards wait when it is full.
    pub bus_capacity: usize,
    /// When set, each message's content is hashed with this key (HMAC-SHA256)
    /// into `MessageMeta::keyed_hash`; the content itself is still dropped.
    /// Off by default. Needs the `message_content` intent to see content.
    pub content_key: Option<crate::ContentKey>,
    /// Gateway events per second, across all shards, that get a root span
    /// (interactions always do). A cap keeps tracing cheap at high event
    /// rates; `u32::MAX` traces every event, 0 only interactions.
    pub traced_events_per_second: u32,
    /// When set, guild messages are read for prefix commands (`!role add
    /// Chess`) and the gateway also asks for the `message_content` intent.
    /// A message that is one gets `MessageMeta::command`; the content itself
    /// is still dropped. Off by default.
    pub prefix_commands: Option<PrefixCommands>,
}

/// The prefix commands guildscope answers in messages.
///
/// A message is a command when its content starts with `prefix` (exactly as
/// written) immediately followed by one of `commands` (compared without
/// regard to case), then whitespace or the end of the message. An empty
/// prefix matches nothing, so it can never turn ordinary chat into commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixCommands {
    /// What a command starts with, e.g. `!`.
    pub prefix: String,
    /// The command names answered, e.g. `role`, `stats`, `ping`, `help`.
    pub commands: Vec<String>,
}

impl DiscordConfig {
    /// Default bus capacity: enough to ride out a burst of a few tens of
    /// milliseconds at 100,000 events/s without stalling the shards.
    pub const DEFAULT_BUS_CAPACITY: usize = 8_192;

    /// Default cap on traced gateway events: every event of a small
    /// community, a steady sample of a busy one.
    pub const DEFAULT_TRACED_EVENTS_PER_SECOND: u32 = 100;

    /// A configuration for Discord itself with the default intents, the
    /// maximum large threshold and the recommended shard count.
    pub fn new(token: Secret) -> Self {
        Self {
            token,
            api_base: None,
            gateway_base: None,
            shards: None,
            large_threshold: 250,
            intents: GatewayIntents::default(),
            bus_capacity: Self::DEFAULT_BUS_CAPACITY,
            content_key: None,
            traced_events_per_second: Self::DEFAULT_TRACED_EVENTS_PER_SECOND,
            prefix_commands: None,
        }
    }

    /// The intents the gateway asks for: [`intents`](Self::intents), plus
    /// `message_content` when prefix commands are configured (without it
    /// Discord sends guild messages with empty content).
    pub fn gateway_intents(&self) -> GatewayIntents {
        GatewayIntents {
            message_content: self.intents.message_content || self.prefix_commands.is_some(),
            ..self.intents
        }
    }

    /// Points REST and gateway at a local Discord such as the simulator.
    pub fn local(
        token: Secret,
        api_base: impl Into<String>,
        gateway_base: impl Into<String>,
    ) -> Self {
        Self {
            api_base: Some(api_base.into()),
            gateway_base: Some(gateway_base.into()),
            ..Self::new(token)
        }
    }
}

/// The gateway events guildscope subscribes to.
///
/// `message_content` is off by default: guildscope never stores content and
/// does not need Discord to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayIntents {
    /// Guilds, channels, threads and roles (`GUILDS`).
    pub guilds: bool,
    /// Member joins, updates and leaves, and member chunks (`GUILD_MEMBERS`,
    /// privileged).
    pub members: bool,
    /// Message creates, edits and deletes in guilds (`GUILD_MESSAGES`).
    pub messages: bool,
    /// Message content (`MESSAGE_CONTENT`, privileged).
    pub message_content: bool,
}

impl Default for GatewayIntents {
    fn default() -> Self {
        Self {
            guilds: true,
            members: true,
            messages: true,
            message_content: false,
        }
    }
}

impl GatewayIntents {
    /// twilight's intent bits.
    pub(crate) fn to_twilight(self) -> Intents {
        let mut intents = Intents::empty();
        if self.guilds {
            intents |= Intents::GUILDS;
        }
        if self.members {
            intents |= Intents::GUILD_MEMBERS;
        }
        if self.messages {
            intents |= Intents::GUILD_MESSAGES;
        }
        if self.message_content {
            intents |= Intents::MESSAGE_CONTENT;
        }
        intents
    }
}

/// Installs rustls' `ring` crypto provider as the process default.
///
/// twilight panics when it builds a TLS connector without a default provider,
/// even for plain `ws://` and `http://`. Calling this more than once, or after
/// another provider was installed, does nothing. [`Rest::new`](crate::Rest::new)
/// and [`Gateway::start`](crate::Gateway::start) call it themselves.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is
        // installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
