//! guildscope's edge to Discord: the only crate that imports twilight.
//!
//! It connects the shards, wraps the REST client, and turns wire events into
//! `guildscope_model` types, so every other crate sees Discord only through
//! those types. Message content is never read into anything this crate
//! returns; at most its keyed hash is, when an operator configures a key, and
//! the prefix command a message is, when prefix commands are configured.
//!
//! # Layout
//!
//! - [`config`]: [`DiscordConfig`] (token, where Discord is, shard count,
//!   intents, bus capacity, [`PrefixCommands`]) and
//!   [`install_crypto_provider`].
//! - [`gateway`]: [`Gateway::start`] spawns one task per shard feeding a
//!   bounded event bus of [`Envelope`](guildscope_model::Envelope)s, each
//!   with a root `discord.event` span and a `bus.queue` span for its wait on
//!   the bus; [`GatewayHandle`] requests members, reads latency and
//!   [`ShardState`]s, shuts down and reports fatal closes; [`GatewayStats`]
//!   counts events, parse errors, reconnects.
//! - [`rest`]: [`Rest`], domain-level REST calls (interaction answers, roles,
//!   channel history, command registration) with [`RestError`]; guildscope's
//!   own rate limiter honours Discord's headers and 429s and shows its waits
//!   in `discord.rest` spans; a [`RestObserver`] sees every request.
//! - [`content_key`]: [`ContentKey`], the HMAC-SHA256 key for the optional
//!   keyed hash of message content (the only thing ever derived from it).
//! - `convert` (private): decoding of gateway frames into domain events, with
//!   lean serde mirrors of the payloads.
//!
//! Architecture invariant: no twilight type appears in this crate's public
//! API, and this crate knows nothing about storage.

pub mod config;
pub mod content_key;
mod convert;
pub mod gateway;
pub mod rest;

pub use config::{DiscordConfig, GatewayIntents, PrefixCommands, install_crypto_provider};
pub use content_key::ContentKey;
pub use gateway::{
    EventBus, Gateway, GatewayError, GatewayHandle, GatewayStats, ShardState, UNKNOWN_DISPATCH,
};
pub use rest::{
    Choice, ChoiceValue, CommandScope, CommandSpec, GatewayInfo, InteractionReply, OptionKind,
    OptionSpec, Page, Rest, RestError, RestErrorKind, RestObserver, Visibility,
};
