//! A faithful local Discord for tests, benchmarks and demos: gateway v10 over `ws://`, REST
//! v10 over `http://`, a seeded synthetic community, scripted traffic at any rate, fault
//! injection, and a record of every REST call. Any bot, in any language, can be pointed at
//! it; guildscope's own tests use it through [`Simulator`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), guildscope_simulator::SimError> {
//! use guildscope_simulator::{SimConfig, Simulator};
//!
//! let sim = Simulator::start(SimConfig { rate: 50.0, ..SimConfig::default() }).await?;
//! println!("{}", serde_json::to_string(sim.info()).unwrap_or_default());
//! // point a bot at sim.info().gateway_url and sim.info().rest_url …
//! let truth = sim.ground_truth();
//! # let _ = truth;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `config`: [`SimConfig`], what to simulate and the protocol limits.
//! - `sim`: the [`Simulator`] handle (start, inspect, inject, shut down).
//! - `listener`: one port; WebSocket upgrades go to the gateway, the rest to axum.
//! - `gateway`: the gateway server: connections, sessions with replay buffers, the hub that
//!   routes dispatches to shards, compression, framing and payloads.
//! - `rest`: REST v10 routes, Discord's errors, rate limits and the call log.
//! - `control`: the HTTP control API under `/control`.
//! - `community`: the seeded generator and the live world state, plus the
//!   state → twilight-model conversions (`wire`).
//! - `emit`: world changes and the dispatches announcing them, shared by traffic and REST.
//! - `traffic`: the paced event stream and the firehose.
//! - `interactions`, `commands`: interactions, their responses, registered commands.
//! - `messages`: messages typed by members on request, and what the bot posted in channels.
//! - `faults`: gateway and REST fault injection.
//! - `ground_truth`: what was dispatched, for assertions.
//! - `rng`, `snowflake`, `ids`: seeded randomness, snowflake ids, id (de)serialization.
//! - `error`: [`SimError`].
//!
//! # Protocol notes
//!
//! Payloads are built from twilight-model types, plus the fields public Discord docs list
//! that twilight does not model. Dispatches are filtered by the session's intents
//! (`GUILDS`, `GUILD_MEMBERS`, `GUILD_MESSAGES`); message content is always included.
//! Heartbeats do not count toward the 120-sends-per-minute gateway limit, so tests may use
//! short heartbeat intervals.

pub mod config;
pub mod error;

mod commands;
mod community;
mod control;
mod emit;
mod faults;
mod gateway;
mod ground_truth;
mod ids;
mod interactions;
mod listener;
mod messages;
mod rest;
mod rng;
mod sim;
mod snowflake;
mod state;
mod traffic;

pub use crate::{
    community::{ChannelInfo, ChannelKind, Community, GuildInfo, MemberInfo, RoleInfo, shard_of},
    config::SimConfig,
    error::SimError,
    faults::Fault,
    gateway::session::SessionStatus,
    ground_truth::{GroundTruth, GuildTruth},
    interactions::{
        CallbackRecord, InjectedInteraction, InteractionKind, InteractionRecord,
        InteractionRequest, WebhookRecord,
    },
    messages::{BotMessage, InjectedMessage, MessageRequest},
    rest::log::RestCall,
    sim::{SimInfo, Simulator, Status},
};
