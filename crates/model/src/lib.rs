//! Domain types shared by every guildscope crate: typed Discord ids and the
//! events the bot reacts to, with no I/O and no knowledge of any wire format.
//!
//! # Layout
//!
//! - [`id`]: typed snowflake ids (`GuildId`, `ChannelId`, ...), so a role id can
//!   never be passed where a user id is expected.
//! - [`event`]: the gateway events the bot handles, already reduced to the
//!   metadata guildscope is allowed to keep (never message content; at most
//!   the prefix command a message is).
//! - [`secret`]: a wrapper for secrets whose `Debug` prints `[redacted]`.
//!
//! The wire protocol stays at the edge: nothing here derives `Serialize`.

pub mod event;
pub mod id;
pub mod secret;

pub use event::{
    ChannelInfo, ChannelKind, CommandOption, CommandValue, Envelope, Event, GuildSnapshot,
    Interaction, InteractionKind, MemberInfo, MessageCommand, MessageMeta, Queued, RoleInfo,
    ThreadInfo,
};
pub use id::{
    ApplicationId, ChannelId, GuildId, InteractionId, MessageId, RoleId, Snowflake, UserId,
};
pub use secret::Secret;
