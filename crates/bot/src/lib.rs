//! The bot's behaviour: everything that happens to an event after it leaves
//! the event bus. It never imports twilight; it sees `guildscope-model`
//! events and talks to Discord through `guildscope-discord`'s `Rest`.
//!
//! # Layout
//!
//! - [`runtime`]: the dispatcher that drains the event bus and routes each
//!   event to the statistics collector or the command handlers.
//! - [`collector`]: turns gateway events into idempotent store writes.
//! - [`writer`]: batches those writes and commits them on a thread of its own.
//! - [`commands`]: slash and `!`-prefix commands, their catalog and handlers,
//!   inside one error boundary.
//! - [`roles`]: the guilds' roles and which of them members may take.
//! - [`control`]: what the bot may ask of the gateway ([`GatewayControl`]).
//! - [`flags`]: feature flags, evaluated in spans, gating commands.
//! - [`reader`]: read queries for commands, off the async workers.
//! - [`backfill`]: fills in history missed while the bot was away, over REST.
//! - [`stats`]: counters and latency histograms for progress and summaries.

pub mod backfill;
pub mod collector;
pub mod commands;
pub mod control;
pub mod flags;
pub mod reader;
pub mod roles;
pub mod runtime;
pub mod stats;
pub mod writer;

pub use backfill::{BackfillConfig, BackfillError, BackfillEvent, BackfillSummary, backfill};
pub use collector::{Collector, CollectorConfig};
pub use control::GatewayControl;
pub use flags::{Flag, Flags, LiveFlags};
pub use reader::StoreReader;
pub use runtime::{Bot, BotConfig};
pub use stats::{BotStats, LatencySummary, RestMetrics, Snapshot};
pub use writer::{StoreWriter, WriterConfig};
