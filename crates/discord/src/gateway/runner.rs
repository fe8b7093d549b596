//! One shard's task: read frames from twilight's shard, decode them, count
//! them, and put dispatches on the event bus.
//!
//! twilight's `Shard` owns the connection (heartbeats, identify, resume,
//! reconnect with backoff); this loop sees every text frame it received and
//! every close, so it can count what twilight would otherwise drop silently.

use std::{
    future::poll_fn,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::StreamExt;
use guildscope_model::{Envelope, Event};
use guildscope_trace::Span;
use tokio::{
    sync::{mpsc, watch},
    time::{Instant, timeout},
};
use tracing::{debug, error, info, warn};
use twilight_gateway::{
    CloseFrame, Message, Shard, ShardState,
    error::{ReceiveMessageError, ReceiveMessageErrorType},
};
use twilight_model::gateway::CloseCode;

use super::{stats::GatewayStats, trace};
use crate::convert::{self, Decoded, DispatchName, names::DISPATCH_NAMES};

/// How long a closing shard waits for the gateway to answer its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a shard task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardExit {
    /// [`GatewayHandle::shutdown`](super::GatewayHandle::shutdown) was called.
    Shutdown,
    /// The gateway closed with a code after which reconnecting is pointless.
    Fatal {
        /// The close code.
        code: u16,
    },
    /// Every receiver of the event bus was dropped.
    BusClosed,
}

/// The state of one shard task.
pub(crate) struct Runner {
    /// twilight's shard.
    pub(crate) shard: Shard,
    /// The shard number.
    pub(crate) id: u32,
    /// The event bus.
    pub(crate) bus: super::bus::BusSender,
    /// Shared counters.
    pub(crate) stats: Arc<GatewayStats>,
    /// Becomes `true` when the gateway shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The key for keyed hashes of message content, when configured.
    pub(crate) content_key: Option<crate::ContentKey>,
    /// The prefix commands to find in messages, when configured.
    pub(crate) prefix_commands: Option<crate::PrefixCommands>,
    /// Which events get a root span.
    pub(crate) trace_budget: Arc<trace::TraceBudget>,
}

/// What handling one frame asks the loop to do next.
enum Next {
    /// Keep reading.
    Continue,
    /// Stop: the bus is gone.
    Stop(ShardExit),
}

impl Runner {
    /// Runs the shard until shutdown, a fatal close, or the bus closing.
    pub(crate) async fn run(mut self) -> ShardExit {
        let mut last_close: Option<u16> = None;
        loop {
            // The shard comes first: when frames are waiting, the shutdown
            // future is never built, which keeps the hot path free of the
            // watch channel's waiter bookkeeping. Shutdown is seen as soon as
            // the socket has nothing buffered.
            let (shard, stats, id) = (&mut self.shard, &*self.stats, self.id);
            let item = tokio::select! {
                biased;
                item = poll_fn(|cx| poll_shard(shard, stats, id, cx)) => item,
                // Any change means shutdown; so does a dropped sender (every
                // handle gone).
                _ = self.shutdown.changed() => return self.close().await,
            };
            let received_at = std::time::Instant::now();
            let Some(item) = item else {
                // twilight ends the stream only after a fatal close.
                let code = last_close.unwrap_or(0);
                return self.fatal(code);
            };
            match item {
                Ok(Message::Text(text)) => {
                    if let Next::Stop(exit) = self.handle_text(&text, received_at).await {
                        return exit;
                    }
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.as_ref().map(|frame| frame.code);
                    last_close = code;
                    self.stats.set_connected(self.id, false);
                    if let Some(code) = code.filter(|code| is_fatal(*code)) {
                        return self.fatal(code);
                    }
                    info!(
                        shard = self.id,
                        close_code = code.unwrap_or(0),
                        "shard disconnected; twilight will reconnect and try to resume"
                    );
                }
                Err(error) => {
                    // Never log the error itself: a deserializing error
                    // carries the whole frame, message content included.
                    match error.kind() {
                        ReceiveMessageErrorType::Deserializing { .. } => {
                            self.stats.record_parse_error();
                            warn!(
                                shard = self.id,
                                kind = "malformed_json",
                                "dropped an undecodable gateway frame"
                            );
                        }
                        ReceiveMessageErrorType::Compression => {
                            self.stats.record_parse_error();
                            warn!(
                                shard = self.id,
                                kind = "compression",
                                "dropped a frame that did not decompress"
                            );
                        }
                        ReceiveMessageErrorType::Reconnect => {
                            warn!(
                                shard = self.id,
                                "connecting to the gateway failed; retrying with backoff"
                            );
                        }
                        _ => warn!(shard = self.id, "gateway receive error"),
                    }
                }
            }
        }
    }

    /// Decodes, counts and forwards one text frame.
    async fn handle_text(&mut self, text: &str, received_at: std::time::Instant) -> Next {
        let decoded = match convert::decode(
            text,
            convert::Reading {
                content_key: self.content_key.as_ref(),
                prefix_commands: self.prefix_commands.as_ref(),
            },
        ) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.stats.record_parse_error();
                let (category, column) = error.json_position().unwrap_or(("none", 0));
                warn!(
                    shard = self.id,
                    kind = error.kind(),
                    event_type = error.event_type(),
                    json_error = category,
                    column,
                    frame_bytes = text.len(),
                    "dropped an undecodable gateway frame"
                );
                return Next::Continue;
            }
        };
        match decoded {
            Decoded::Dispatch {
                sequence,
                name,
                event,
            } => {
                let name = match name {
                    DispatchName::Known(slot) => {
                        self.stats.record_event(self.id, slot);
                        DISPATCH_NAMES[slot]
                    }
                    DispatchName::Unknown(raw) => {
                        let name = self.stats.record_unknown_event(self.id, raw);
                        warn!(
                            shard = self.id,
                            event_type = name,
                            "received an undocumented dispatch type"
                        );
                        name
                    }
                };
                match &event {
                    Event::Ready { guilds, .. } => {
                        self.stats.record_ready(self.id);
                        info!(shard = self.id, guilds, "shard identified");
                    }
                    Event::Resumed => {
                        self.stats.record_resumed(self.id);
                        info!(shard = self.id, sequence, "shard resumed its session");
                    }
                    _ => {}
                }
                let span = if self.trace_budget.take(&event, received_at) {
                    trace::event_span(self.id, sequence, name, &event)
                } else {
                    Span::none()
                };
                let queued = trace::queued(&span);
                let envelope = Envelope {
                    shard: self.id,
                    sequence,
                    name,
                    received_at,
                    event,
                    span,
                    queued,
                };
                publish(&self.bus, &self.stats, envelope).await
            }
            Decoded::Hello => {
                if self.stats.record_hello(self.id) {
                    info!(shard = self.id, "shard reconnected");
                }
                Next::Continue
            }
            Decoded::HeartbeatAck => {
                if let Some(latency) = self.shard.latency().recent().first() {
                    self.stats.set_latency(self.id, *latency);
                }
                Next::Continue
            }
            Decoded::Control(op) => {
                debug!(shard = self.id, op, "gateway control frame");
                Next::Continue
            }
            Decoded::UnknownOpcode(op) => {
                self.stats.record_unknown_opcode();
                warn!(shard = self.id, op, "received an unknown gateway opcode");
                Next::Continue
            }
        }
    }

    /// Records and logs a fatal close.
    fn fatal(&self, code: u16) -> ShardExit {
        self.stats.record_fatal_close(self.id);
        error!(
            shard = self.id,
            close_code = code,
            reason = fatal_reason(code),
            "gateway closed the shard for good; not reconnecting"
        );
        ShardExit::Fatal { code }
    }

    /// Closes the connection with a normal close frame and forwards whatever
    /// arrives until the gateway answers (bounded by [`CLOSE_TIMEOUT`]).
    async fn close(mut self) -> ShardExit {
        self.stats.set_connected(self.id, false);
        if matches!(
            self.shard.state(),
            ShardState::Disconnected { .. } | ShardState::FatallyClosed
        ) {
            // Not connected: twilight would only send the close frame after
            // reconnecting, so there is nothing to close.
            return ShardExit::Shutdown;
        }
        self.shard.close(CloseFrame::NORMAL);
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        loop {
            let step = timeout(
                deadline.saturating_duration_since(Instant::now()),
                poll_fn(|cx| match self.shard.poll_next_unpin(cx) {
                    Poll::Ready(Some(item)) => Poll::Ready(Closing::Item(item)),
                    Poll::Ready(None) => Poll::Ready(Closing::Done),
                    // twilight marks the shard disconnected once it has sent
                    // the close frame. Stop polling then: a gateway that
                    // drops TCP instead of echoing the close would otherwise
                    // make twilight reconnect and identify again.
                    Poll::Pending
                        if matches!(self.shard.state(), ShardState::Disconnected { .. }) =>
                    {
                        Poll::Ready(Closing::Done)
                    }
                    Poll::Pending => Poll::Pending,
                }),
            )
            .await;
            match step {
                Ok(Closing::Done | Closing::Item(Ok(Message::Close(_)))) => break,
                Ok(Closing::Item(Ok(Message::Text(text)))) => {
                    let received_at = std::time::Instant::now();
                    if let Next::Stop(exit) = self.handle_text(&text, received_at).await {
                        return exit;
                    }
                }
                Ok(Closing::Item(Err(_))) => self.stats.record_parse_error(),
                Err(_) => {
                    warn!(
                        shard = self.id,
                        "gateway did not take the close frame in time"
                    );
                    break;
                }
            }
        }
        self.stats.set_connected(self.id, false);
        info!(shard = self.id, "shard closed");
        ShardExit::Shutdown
    }
}

/// Polls the shard for its next message and marks the shard disconnected
/// whenever twilight says it has no active session.
///
/// twilight reconnects by itself after a connection ends without a close
/// frame, yielding nothing meanwhile; its state is the only sign of that
/// gap. Becoming connected is recorded where READY or RESUMED is handled,
/// after they are counted.
fn poll_shard(
    shard: &mut Shard,
    stats: &GatewayStats,
    id: u32,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Message, ReceiveMessageError>>> {
    let poll = shard.poll_next_unpin(cx);
    if !matches!(shard.state(), ShardState::Active) {
        stats.set_connected(id, false);
    }
    poll
}

/// Puts an envelope on the bus, waiting (and counting the wait) when the bus
/// is full.
async fn publish(bus: &super::bus::BusSender, stats: &GatewayStats, envelope: Envelope) -> Next {
    let bus = bus.lane(&envelope);
    match bus.try_send(envelope) {
        Ok(()) => Next::Continue,
        Err(mpsc::error::TrySendError::Full(envelope)) => {
            stats.record_bus_full();
            match bus.send(envelope).await {
                Ok(()) => Next::Continue,
                Err(_) => Next::Stop(ShardExit::BusClosed),
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Next::Stop(ShardExit::BusClosed),
    }
}

/// One step of closing a shard.
enum Closing {
    /// The shard yielded a message or an error.
    Item(Result<Message, twilight_gateway::error::ReceiveMessageError>),
    /// The close frame is sent (or the shard ended): stop.
    Done,
}

/// Whether a close code forbids reconnecting (bad token, bad shard, bad
/// intents...). Unknown codes allow reconnecting, as twilight does.
pub(crate) fn is_fatal(code: u16) -> bool {
    CloseCode::try_from(code).is_ok_and(|code| !code.can_reconnect())
}

/// A one-line reason for a fatal close code.
pub(crate) const fn fatal_reason(code: u16) -> &'static str {
    match code {
        4004 => "authentication failed: the token was rejected",
        4010 => "invalid shard: the shard id or shard count sent when identifying is not valid",
        4011 => {
            "sharding required: the bot is in too many guilds for this shard count, use more shards"
        }
        4012 => "invalid api version: the gateway does not support the requested version",
        4013 => "invalid intents: the intents value is not a valid bitfield",
        4014 => {
            "disallowed intents: a privileged intent (members, presences or message content) is not enabled for this application"
        }
        _ => "the gateway closed the connection and does not allow reconnecting",
    }
}
