//! Messages typed by members on request (the control API's `POST /messages`), so a bot's
//! prefix commands (`!role add Chess`) can be tested, and the record of what the bot posted
//! with `POST /channels/{id}/messages` (content, the message it replied to, how long after
//! that message it came), for tests to assert on.
//!
//! An injected message goes through the same path as a message of live traffic: it is
//! stored in the channel's history, dispatched on the guild's shard with the author's member
//! object, and counted in the ground truth when a session received it.

use std::{
    collections::{HashMap, VecDeque},
    time::Instant,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    SimError,
    community::{ChannelKind, MessageBody, StoredMessage},
    emit, ids,
    state::{Shared, lock},
};

/// Bot messages and injected messages remembered.
const CAPACITY: usize = 100_000;

/// Longest message content Discord accepts from a member without Nitro.
const MAX_CONTENT_CHARS: usize = 2000;

/// A message for a member to type (the control API's `POST /messages`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// Guild the message is posted in.
    #[serde(with = "ids::string")]
    pub guild_id: u64,
    /// Text channel or thread it is posted in.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// Member who types it.
    #[serde(with = "ids::string")]
    pub user_id: u64,
    /// What they type (1 to 2000 characters), e.g. `!role add Chess`.
    pub content: String,
}

/// The id of an injected message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct InjectedMessage {
    /// Message id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Whether a gateway session received its MESSAGE_CREATE. A message posted while no
    /// session covers the guild exists all the same (for backfill) but reached no bot.
    pub dispatched: bool,
}

/// A message the bot posted with `POST /channels/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BotMessage {
    /// Message id.
    #[serde(with = "ids::string")]
    pub id: u64,
    /// Channel or thread it was posted in.
    #[serde(with = "ids::string")]
    pub channel_id: u64,
    /// Its content as sent.
    pub content: String,
    /// The message it replies to (`message_reference`), if any.
    #[serde(with = "ids::option")]
    pub reply_to: Option<u64>,
    /// `allowed_mentions` as sent, if any.
    pub allowed_mentions: Option<Value>,
    /// Whether the reply pings the author of the message it replies to: Discord does unless
    /// `allowed_mentions` is given without `replied_user: true`.
    pub mentions_replied_user: bool,
    /// Milliseconds from the dispatch of the message it replies to until this one was
    /// posted, when that message was injected through [`MessageRequest`].
    pub ms_after_trigger: Option<f64>,
}

/// Injected messages (channel and dispatch time) and the bot's messages, both bounded.
#[derive(Debug, Default)]
pub(crate) struct MessageLog {
    injected: HashMap<u64, (u64, Instant)>,
    injected_order: VecDeque<u64>,
    bot: VecDeque<BotMessage>,
}

impl MessageLog {
    fn injected(&mut self, id: u64, channel_id: u64, at: Instant) {
        self.injected.insert(id, (channel_id, at));
        self.injected_order.push_back(id);
        while self.injected_order.len() > CAPACITY {
            if let Some(old) = self.injected_order.pop_front() {
                self.injected.remove(&old);
            }
        }
    }

    /// Milliseconds since the message `id` was injected in `channel_id`, if it was.
    pub(crate) fn ms_since_injected(&self, id: u64, channel_id: u64) -> Option<f64> {
        self.injected
            .get(&id)
            .filter(|(channel, _)| *channel == channel_id)
            .map(|(_, at)| at.elapsed().as_secs_f64() * 1000.0)
    }

    pub(crate) fn bot_posted(&mut self, message: BotMessage) {
        self.bot.push_back(message);
        while self.bot.len() > CAPACITY {
            self.bot.pop_front();
        }
    }

    /// The bot's messages in one channel, oldest first.
    pub(crate) fn bot_messages(&self, channel_id: u64) -> Vec<BotMessage> {
        self.bot
            .iter()
            .filter(|m| m.channel_id == channel_id)
            .cloned()
            .collect()
    }
}

/// Posts a message as a member and dispatches its MESSAGE_CREATE.
pub(crate) fn inject(
    shared: &Shared,
    request: MessageRequest,
) -> Result<InjectedMessage, SimError> {
    let length = request.content.chars().count();
    if !(1..=MAX_CONTENT_CHARS).contains(&length) {
        return Err(SimError::InvalidMessage {
            reason: format!("content must be 1 to {MAX_CONTENT_CHARS} characters, not {length}"),
        });
    }
    let mut world = shared.world();
    let g = world
        .guild_idx(request.guild_id)
        .ok_or(SimError::UnknownGuild {
            guild_id: request.guild_id,
        })?;
    let guild = world.guilds.get(g).ok_or(SimError::UnknownGuild {
        guild_id: request.guild_id,
    })?;
    let channel = guild
        .channel(request.channel_id)
        .ok_or(SimError::UnknownChannel {
            guild_id: request.guild_id,
            channel_id: request.channel_id,
        })?;
    if !matches!(channel.kind, ChannelKind::Text | ChannelKind::PublicThread) {
        return Err(SimError::InvalidMessage {
            reason: format!(
                "channel {} is not a text channel or thread",
                request.channel_id
            ),
        });
    }
    if guild.member(request.user_id).is_none() {
        return Err(SimError::UnknownMember {
            guild_id: request.guild_id,
            user_id: request.user_id,
        });
    }
    let stored = StoredMessage {
        id: world.next_id(),
        author_id: request.user_id,
        edited_ms: None,
        revision: 0,
        body: MessageBody::Posted(request.content.into()),
        webhook_id: None,
        reply_to: None,
        flags: 0,
        dispatched: false,
    };
    let id = stored.id;
    // Recorded before the dispatch so a fast reply always finds it.
    lock(&shared.messages).injected(id, request.channel_id, Instant::now());
    let dispatched = emit::message_create(&shared.hub, &mut world, g, request.channel_id, stored);
    Ok(InjectedMessage { id, dispatched })
}
