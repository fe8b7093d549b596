//! Ground truth: what the simulator actually dispatched and what its world now looks like,
//! for tests and benchmarks to compare a bot's records against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{Shared, Stats};

/// What was dispatched, and the community's current shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Dispatches that got a sequence number, by type; an event sent to several sessions
    /// counts once. READY, GUILD_CREATE, chunks and RESUMED are included (once per session).
    pub events_sent: BTreeMap<String, u64>,
    /// Per guild id.
    pub guilds: BTreeMap<String, GuildTruth>,
    /// INTERACTION_CREATE dispatched.
    pub interactions_sent: u64,
    /// Interactions whose initial response was accepted.
    pub interactions_answered: u64,
    /// Initial responses refused for coming after the deadline.
    pub interactions_late: u64,
    /// Sessions started with IDENTIFY.
    pub identifies: u64,
    /// Successful RESUMEs.
    pub resumes: u64,
    /// REST requests under `/api/`.
    pub rest_requests: u64,
    /// REST requests answered with 429.
    pub rest_rate_limited: u64,
}

/// One guild's ground truth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildTruth {
    /// MESSAGE_CREATE dispatched in this guild.
    pub messages_created: u64,
    /// Messages deleted (MESSAGE_DELETE, plus each id of MESSAGE_DELETE_BULK).
    pub messages_deleted: u64,
    /// Of `messages_deleted`, those whose MESSAGE_CREATE had been dispatched
    /// (the rest were history from before any bot connected): what a bot
    /// that stored every message it saw has flagged deleted.
    pub dispatched_messages_deleted: u64,
    /// MESSAGE_UPDATE dispatched.
    pub messages_edited: u64,
    /// Members now (including the bot).
    pub members_in_guild: u64,
    /// Channels now (categories, text, voice, forum; not threads).
    pub channels: u64,
    /// Threads now (active and archived).
    pub threads: u64,
    /// GUILD_MEMBER_ADD dispatched.
    pub joins: u64,
    /// GUILD_MEMBER_REMOVE dispatched.
    pub leaves: u64,
    /// MESSAGE_CREATE dispatched per channel or thread id.
    pub messages_per_channel: BTreeMap<String, u64>,
}

pub(crate) fn snapshot(shared: &Shared) -> GroundTruth {
    let guilds = {
        let world = shared.world();
        world
            .guilds
            .iter()
            .map(|g| {
                let c = &g.counters;
                let truth = GuildTruth {
                    messages_created: c.messages_created,
                    messages_deleted: c.messages_deleted,
                    dispatched_messages_deleted: c.dispatched_messages_deleted,
                    messages_edited: c.messages_edited,
                    members_in_guild: g.members.len() as u64,
                    channels: g.channels.len() as u64,
                    threads: g.threads.len() as u64,
                    joins: c.joins,
                    leaves: c.leaves,
                    messages_per_channel: c
                        .messages_per_channel
                        .iter()
                        .map(|(id, n)| (id.to_string(), *n))
                        .collect(),
                };
                (g.id.to_string(), truth)
            })
            .collect()
    };
    let stats = &shared.stats;
    GroundTruth {
        events_sent: shared
            .hub
            .counters
            .snapshot()
            .into_iter()
            .map(|(name, n)| (name.to_owned(), n))
            .collect(),
        guilds,
        interactions_sent: Stats::get(&stats.interactions_sent),
        interactions_answered: Stats::get(&stats.interactions_answered),
        interactions_late: Stats::get(&stats.interactions_late),
        identifies: Stats::get(&stats.identifies),
        resumes: Stats::get(&stats.resumes),
        rest_requests: Stats::get(&stats.rest_requests),
        rest_rate_limited: Stats::get(&stats.rest_rate_limited),
    }
}
