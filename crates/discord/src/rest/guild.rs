//! A guild's name, channel list and active threads over REST, for work that
//! needs them without a gateway session (history backfill).

use guildscope_model::{ChannelInfo, ChannelKind, GuildId, Snowflake, ThreadInfo};
use serde::Deserialize;

use twilight_http::request::TryIntoRequest;

use super::{Rest, RestError, json, twid};
use crate::convert::wire;

/// Route templates of this file.
mod route {
    pub(super) const GUILD: &str = "GET guilds/{guild_id}";
    pub(super) const GUILD_CHANNELS: &str = "GET guilds/{guild_id}/channels";
    pub(super) const ACTIVE_THREADS: &str = "GET guilds/{guild_id}/threads/active";
}

/// `GET guilds/{guild_id}/threads/active`, without the thread members.
#[derive(Deserialize)]
struct ThreadsListing {
    /// The active threads.
    threads: Vec<wire::Channel>,
}

impl Rest {
    /// A guild's name.
    pub async fn guild_name(&self, guild: GuildId) -> Result<String, RestError> {
        let route = route::GUILD;
        let id = twid(guild.get(), route)?;
        let request = self.inner.builder.guild(id).try_into_request();
        let guild: wire::GuildUpdate = self.call(route, request, json).await?;
        Ok(guild.name)
    }

    /// A guild's channels and categories (threads are listed by
    /// [`active_threads`](Self::active_threads)).
    pub async fn guild_channels(&self, guild: GuildId) -> Result<Vec<ChannelInfo>, RestError> {
        let route = route::GUILD_CHANNELS;
        let id = twid(guild.get(), route)?;
        let request = self.inner.builder.guild_channels(id).try_into_request();
        let channels: Vec<wire::Channel> = self.call(route, request, json).await?;
        Ok(channels
            .into_iter()
            .map(|c| c.into_channel_info(Some(guild)))
            .filter(|c| c.kind != ChannelKind::Thread)
            .collect())
    }

    /// A guild's active (not archived) threads.
    pub async fn active_threads(&self, guild: GuildId) -> Result<Vec<ThreadInfo>, RestError> {
        let route = route::ACTIVE_THREADS;
        let id = twid(guild.get(), route)?;
        let request = self.inner.builder.active_threads(id).try_into_request();
        let listing: ThreadsListing = self.call(route, request, json).await?;
        Ok(listing
            .threads
            .into_iter()
            .map(|t| t.into_thread_info(guild))
            .collect())
    }
}
