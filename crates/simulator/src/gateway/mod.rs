//! The gateway: a Discord gateway v10 server over `ws://`.
//!
//! A connection (`connection`) speaks the protocol; a session (`session`) outlives
//! connections so RESUME can replay what a client missed; the `Hub` routes each dispatch to
//! the sessions whose shard covers its guild. Payload bodies are serialized once per event
//! and framed per session with that session's sequence number (`frame`).

pub(crate) mod compression;
pub(crate) mod connection;
pub(crate) mod frame;
pub(crate) mod payloads;
pub(crate) mod session;

use std::sync::atomic::{AtomicU64, Ordering};

/// Intent bits the simulator filters dispatches by.
pub(crate) mod intents {
    pub(crate) const GUILDS: u64 = 1;
    pub(crate) const GUILD_MEMBERS: u64 = 1 << 1;
    pub(crate) const GUILD_MESSAGES: u64 = 1 << 9;
}

macro_rules! event_kinds {
    ($($variant:ident => $name:literal, $intent:expr;)*) => {
        /// Every dispatch type the simulator produces.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum EventKind {
            $($variant,)*
        }

        impl EventKind {
            pub(crate) const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The dispatch's `t`.
            pub(crate) const fn name(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }

            /// The intent a session needs to receive this dispatch (0: none).
            pub(crate) const fn intent(self) -> u64 {
                match self {
                    $(EventKind::$variant => $intent,)*
                }
            }
        }
    };
}

event_kinds! {
    Ready => "READY", 0;
    Resumed => "RESUMED", 0;
    GuildCreate => "GUILD_CREATE", 0;
    GuildMembersChunk => "GUILD_MEMBERS_CHUNK", 0;
    MessageCreate => "MESSAGE_CREATE", intents::GUILD_MESSAGES;
    MessageUpdate => "MESSAGE_UPDATE", intents::GUILD_MESSAGES;
    MessageDelete => "MESSAGE_DELETE", intents::GUILD_MESSAGES;
    MessageDeleteBulk => "MESSAGE_DELETE_BULK", intents::GUILD_MESSAGES;
    GuildMemberAdd => "GUILD_MEMBER_ADD", intents::GUILD_MEMBERS;
    GuildMemberUpdate => "GUILD_MEMBER_UPDATE", intents::GUILD_MEMBERS;
    GuildMemberRemove => "GUILD_MEMBER_REMOVE", intents::GUILD_MEMBERS;
    ChannelCreate => "CHANNEL_CREATE", intents::GUILDS;
    ChannelUpdate => "CHANNEL_UPDATE", intents::GUILDS;
    ChannelDelete => "CHANNEL_DELETE", intents::GUILDS;
    ThreadCreate => "THREAD_CREATE", intents::GUILDS;
    ThreadUpdate => "THREAD_UPDATE", intents::GUILDS;
    ThreadDelete => "THREAD_DELETE", intents::GUILDS;
    GuildRoleCreate => "GUILD_ROLE_CREATE", intents::GUILDS;
    GuildRoleUpdate => "GUILD_ROLE_UPDATE", intents::GUILDS;
    GuildRoleDelete => "GUILD_ROLE_DELETE", intents::GUILDS;
    InteractionCreate => "INTERACTION_CREATE", 0;
}

/// How many dispatches of each kind got a sequence number (once per event, however many
/// sessions received it).
#[derive(Debug, Default)]
pub(crate) struct EventCounters {
    counts: [AtomicU64; 32],
}

impl EventCounters {
    pub(crate) fn record(&self, kind: EventKind) {
        if let Some(counter) = self.counts.get(kind as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(&'static str, u64)> {
        EventKind::ALL
            .iter()
            .map(|&kind| {
                let n = self
                    .counts
                    .get(kind as usize)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                (kind.name(), n)
            })
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}

/// Orders sent to one live connection (faults and session management).
#[derive(Debug, Clone)]
pub(crate) enum ConnCommand {
    /// Close with a code, or drop the TCP connection without a close frame (`None`).
    Close(Option<u16>),
    /// Stop answering heartbeats until the client reconnects.
    StopHeartbeatAcks,
    /// Answer heartbeats again.
    StartHeartbeatAcks,
    /// Send op 7 RECONNECT.
    Reconnect,
    /// Send op 9 INVALID_SESSION.
    InvalidSession {
        /// The `d` of the payload.
        resumable: bool,
    },
    /// Send an arbitrary text payload.
    Raw(String),
    /// Another connection resumed this connection's session.
    Superseded,
}
