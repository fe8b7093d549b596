//! What the bot may ask of the gateway: heartbeat latency for `/ping` and
//! member requests for startup sync. A trait, so the runtime does not need
//! live shards to be exercised.

use std::time::Duration;

use guildscope_discord::{GatewayError, GatewayHandle};
use guildscope_model::GuildId;

/// The gateway, as the bot's handlers see it.
pub trait GatewayControl: Send + Sync {
    /// The last heartbeat round trip of a shard, once one was measured.
    fn latency(&self, shard: u32) -> Option<Duration>;

    /// Asks for a guild's whole member list; the chunks carry `nonce`.
    fn request_members(&self, guild: GuildId, nonce: &str) -> Result<(), GatewayError>;
}

impl GatewayControl for GatewayHandle {
    fn latency(&self, shard: u32) -> Option<Duration> {
        GatewayHandle::latency(self, shard)
    }

    fn request_members(&self, guild: GuildId, nonce: &str) -> Result<(), GatewayError> {
        GatewayHandle::request_members(self, guild, nonce)
    }
}
