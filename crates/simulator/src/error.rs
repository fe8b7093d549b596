//! The simulator's one error type: everything its public API can refuse, with the ids and
//! addresses involved so a failing test says what went wrong.

use std::net::SocketAddr;

/// An error returned by [`Simulator`](crate::Simulator) operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A [`SimConfig`](crate::SimConfig) field has a value the simulator cannot run with.
    #[error("invalid simulator config: `{field}` {reason}")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// What is expected instead.
        reason: String,
    },
    /// The simulator's own runtime could not be built or failed to start it.
    #[error("failed to start the simulator's runtime")]
    Runtime(#[source] std::io::Error),
    /// The listener could not be bound.
    #[error("failed to bind the simulator listener on {addr}")]
    Bind {
        /// Address that was asked for.
        addr: SocketAddr,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The guild does not exist in the simulated community.
    #[error("unknown guild {guild_id}")]
    UnknownGuild {
        /// Guild id that was asked for.
        guild_id: u64,
    },
    /// The channel does not exist in the guild.
    #[error("unknown channel {channel_id} in guild {guild_id}")]
    UnknownChannel {
        /// Guild id that was asked for.
        guild_id: u64,
        /// Channel id that was asked for.
        channel_id: u64,
    },
    /// The user is not a member of the guild.
    #[error("user {user_id} is not a member of guild {guild_id}")]
    UnknownMember {
        /// Guild id that was asked for.
        guild_id: u64,
        /// User id that was asked for.
        user_id: u64,
    },
    /// No gateway session (connected or resumable) covers the guild's shard, so an event for
    /// it would reach nobody.
    #[error("no gateway session covers guild {guild_id}")]
    NotCovered {
        /// Guild whose shard has no session.
        guild_id: u64,
    },
    /// A gateway fault named a shard that has no connected session.
    #[error("no connected gateway session for shard {shard}")]
    NoConnection {
        /// Shard id the fault named.
        shard: u32,
    },
    /// An injected interaction could not be built.
    #[error("invalid interaction request: {reason}")]
    InvalidInteraction {
        /// What is wrong with the request.
        reason: String,
    },
    /// An injected message could not be posted.
    #[error("invalid message request: {reason}")]
    InvalidMessage {
        /// What is wrong with the request.
        reason: String,
    },
}
