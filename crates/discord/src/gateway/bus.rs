//! The event bus between the shards and the bot, in two lanes: commands
//! (interactions and prefix-command messages) and everything else. The
//! receiver takes from the command lane first, so a member's command never
//! waits behind a backlog of ordinary traffic; each lane keeps its shard's
//! arrival order.

use guildscope_model::{Envelope, Event};
use tokio::sync::mpsc;

/// Commands queued before the shards wait.
const COMMAND_CAPACITY: usize = 1_024;

/// The receiving end: what [`Gateway::start`](super::Gateway::start) hands
/// the bot.
#[derive(Debug)]
pub struct EventBus {
    commands: mpsc::Receiver<Envelope>,
    events: mpsc::Receiver<Envelope>,
}

/// The sending end, one clone per shard.
#[derive(Debug, Clone)]
pub(crate) struct BusSender {
    commands: mpsc::Sender<Envelope>,
    events: mpsc::Sender<Envelope>,
}

/// A bus whose ordinary lane holds `capacity` events.
pub(crate) fn channel(capacity: usize) -> (BusSender, EventBus) {
    let (commands_tx, commands) = mpsc::channel(COMMAND_CAPACITY);
    let (events_tx, events) = mpsc::channel(capacity);
    (
        BusSender {
            commands: commands_tx,
            events: events_tx,
        },
        EventBus { commands, events },
    )
}

impl BusSender {
    /// The lane `envelope` travels in.
    pub(crate) fn lane(&self, envelope: &Envelope) -> &mpsc::Sender<Envelope> {
        let command = match &envelope.event {
            Event::Interaction(_) => true,
            Event::MessageCreate(message) => message.command.is_some(),
            _ => false,
        };
        if command {
            &self.commands
        } else {
            &self.events
        }
    }
}

impl EventBus {
    /// The next event, commands first; `None` once every shard has stopped
    /// and both lanes are drained.
    pub async fn recv(&mut self) -> Option<Envelope> {
        tokio::select! {
            biased;
            Some(envelope) = self.commands.recv() => Some(envelope),
            Some(envelope) = self.events.recv() => Some(envelope),
            else => None,
        }
    }
}
