//! One gateway connection: HELLO, IDENTIFY / RESUME, heartbeats, op 8 member requests, the
//! per-connection send limit, faults, and the writer that drains the session's buffer.
//!
//! The writer takes dispatches in batches, feeds them to the socket without flushing, and
//! flushes once the session has nothing more queued, so a firehose costs one syscall per
//! batch instead of one per event.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
};
use tokio_websockets::{
    CloseCode, Config, Limits, Message, Payload, ServerBuilder, WebSocketStream,
};

use super::{
    ConnCommand, EventKind,
    compression::{Compressor, Transport},
    frame,
    payloads::{self, ChunkRequest},
    session::{Attachment, Entry, Session},
};
use crate::{community::shard_of, rng::mix64, state::Shared};

/// Dispatches written per turn of the connection loop before reads get a chance.
const WRITE_BATCH: usize = 512;
/// Gateway sends a client may make per window (heartbeats exempt, see `check_send_limit`).
const SEND_LIMIT: usize = 120;
const SEND_WINDOW: Duration = Duration::from_secs(60);
/// Discord's guild limit per shard.
const MAX_GUILDS_PER_SHARD: usize = 2500;

/// How a connection ended, which decides what happens to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The client sent a close frame with this code.
    ClientClosed(u16),
    /// The simulator closed with this code.
    ServerClosed(u16),
    /// The TCP connection ended or failed without a close frame (either side).
    Dropped,
    /// Another connection resumed the session.
    Superseded,
}

/// The connection should stop; the reason is in `Ended`.
struct Stop(Ended);

/// Query parameters of the gateway URL.
#[derive(Debug, Default)]
struct Query {
    version: Option<String>,
    encoding: Option<String>,
    compress: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut out = Self::default();
        for pair in query.unwrap_or_default().split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "v" => out.version = Some(value.to_owned()),
                "encoding" => out.encoding = Some(value.to_owned()),
                "compress" => out.compress = Some(value.to_owned()),
                _ => {}
            }
        }
        out
    }
}

/// Accepts the WebSocket handshake on a sniffed connection and runs it to completion.
pub(crate) async fn serve<S>(shared: Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let builder = ServerBuilder::new()
        .config(Config::default().flush_threshold(256 * 1024))
        .limits(Limits::default().max_payload_len(Some(1 << 20)));
    let (request, ws) = match builder.accept(stream).await {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::debug!(%error, "gateway handshake failed");
            return;
        }
    };
    let query = Query::parse(request.uri().query());
    let (control_tx, control_rx) = mpsc::channel(64);
    let mut conn = Connection {
        generation: shared.hub.next_generation(),
        shared,
        ws,
        compressor: Compressor::Plain,
        control_tx,
        control_rx,
        session: None,
        next_seq: 1,
        acks: true,
        sends: VecDeque::new(),
        heartbeat_deadline: Instant::now(),
        batch: Vec::with_capacity(WRITE_BATCH),
        scratch: Vec::new(),
        unflushed: false,
    };
    let ended = match conn.run(query).await {
        Ok(()) => Ended::Dropped,
        Err(Stop(ended)) => ended,
    };
    conn.finish(ended);
}

struct Connection<S> {
    shared: Arc<Shared>,
    generation: u64,
    ws: WebSocketStream<S>,
    compressor: Compressor,
    control_tx: mpsc::Sender<ConnCommand>,
    control_rx: mpsc::Receiver<ConnCommand>,
    session: Option<Arc<Session>>,
    /// Sequence number of the next dispatch to write.
    next_seq: u64,
    acks: bool,
    sends: VecDeque<Instant>,
    heartbeat_deadline: Instant,
    batch: Vec<(u64, Entry)>,
    scratch: Vec<u8>,
    unflushed: bool,
}

/// What woke the connection loop.
enum Wake {
    Shutdown,
    Control(Option<ConnCommand>),
    Incoming(Option<Result<Message, tokio_websockets::Error>>),
    Queued,
    HeartbeatTimeout,
}

#[derive(Deserialize)]
struct Incoming {
    op: i64,
    #[serde(default)]
    d: Value,
}

#[derive(Deserialize)]
struct IdentifyIn {
    token: String,
    #[serde(default)]
    intents: Option<u64>,
    #[serde(default)]
    large_threshold: Option<u64>,
    #[serde(default)]
    shard: Option<[u32; 2]>,
}

#[derive(Deserialize)]
struct ResumeIn {
    token: String,
    session_id: String,
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct RequestMembersIn {
    guild_id: Value,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    user_ids: Option<Value>,
    #[serde(default)]
    nonce: Option<String>,
}

/// Snowflakes from a JSON string, number, or array of either.
fn snowflakes(value: &Value) -> Option<Vec<u64>> {
    match value {
        Value::String(s) => s.parse().ok().map(|id| vec![id]),
        Value::Number(n) => n.as_u64().map(|id| vec![id]),
        Value::Array(items) => items
            .iter()
            .map(|v| snowflakes(v).and_then(|ids| ids.first().copied()))
            .collect(),
        _ => None,
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn run(&mut self, query: Query) -> Result<(), Stop> {
        if query.version.as_deref().is_some_and(|v| v != "10") {
            return Err(self.close(4012, "Invalid API version.").await);
        }
        if query.encoding.as_deref().is_some_and(|e| e != "json") {
            return Err(self
                .close(4002, "Decode error: only encoding=json is supported.")
                .await);
        }
        let Some(transport) = Transport::from_query(query.compress.as_deref()) else {
            return Err(self.close(4000, "Unknown compress value.").await);
        };
        match Compressor::new(transport) {
            Ok(compressor) => self.compressor = compressor,
            Err(error) => {
                tracing::error!(%error, "creating a compressor failed");
                return Err(self.close(4000, "Unknown error.").await);
            }
        }
        let interval = self.shared.config.heartbeat_interval;
        let hello = frame::hello(u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
        self.send_now(hello.as_bytes()).await?;
        self.reset_heartbeat_deadline();
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            let more = self.write_queued().await?;
            if !more && self.unflushed {
                self.ws.flush().await.map_err(|_| Stop(Ended::Dropped))?;
                self.unflushed = false;
                if let Some(session) = &self.session {
                    session.drained.notify_waiters();
                }
            }
            let session = self.session.clone();
            let queued = async {
                match &session {
                    Some(s) if !more => s.wake.notified().await,
                    Some(_) => {}
                    None => std::future::pending().await,
                }
            };
            let deadline = tokio::time::Instant::from_std(self.heartbeat_deadline);
            let wake = tokio::select! {
                biased;
                _ = shutdown.changed() => Wake::Shutdown,
                cmd = self.control_rx.recv() => Wake::Control(cmd),
                msg = self.ws.next() => Wake::Incoming(msg),
                () = queued => Wake::Queued,
                () = tokio::time::sleep_until(deadline) => Wake::HeartbeatTimeout,
            };
            match wake {
                Wake::Shutdown => return Err(self.close(1001, "Simulator shutting down.").await),
                Wake::Control(Some(command)) => self.control(command).await?,
                Wake::Control(None) | Wake::Queued => {}
                Wake::Incoming(None) | Wake::Incoming(Some(Err(_))) => {
                    return Err(Stop(Ended::Dropped));
                }
                Wake::Incoming(Some(Ok(message))) => self.incoming(message).await?,
                Wake::HeartbeatTimeout => {
                    tracing::info!(session_id = self.session_id(), "no heartbeat, closing");
                    return Err(self.close(4009, "Session timed out.").await);
                }
            }
        }
    }

    fn session_id(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.id.as_str())
    }

    fn reset_heartbeat_deadline(&mut self) {
        let interval = self.shared.config.heartbeat_interval;
        self.heartbeat_deadline = Instant::now() + interval * 2 + Duration::from_secs(1);
    }

    /// Writes up to one batch of queued dispatches; returns whether more are waiting.
    async fn write_queued(&mut self) -> Result<bool, Stop> {
        let Some(session) = self.session.clone() else {
            return Ok(false);
        };
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        if session
            .take(self.next_seq, WRITE_BATCH, &mut batch)
            .is_err()
        {
            // The client fell further behind than the replay buffer holds.
            tracing::warn!(session_id = %session.id, "replay buffer overrun, invalidating session");
            session.invalidate();
            return Err(self.close(4000, "Replay buffer overrun.").await);
        }
        let count = batch.len();
        for (seq, entry) in batch.drain(..) {
            let message = self.dispatch_message(seq, &entry)?;
            self.ws
                .feed(message)
                .await
                .map_err(|_| Stop(Ended::Dropped))?;
            // A timed dispatch (an interaction) goes out at once, not after the
            // rest of the batch. It is noted as written just before the flush,
            // so no answer can arrive before the note.
            if let Some(written) = entry.written {
                let _ = written.set(Instant::now());
                self.ws.flush().await.map_err(|_| Stop(Ended::Dropped))?;
            }
        }
        self.batch = batch;
        self.next_seq += count as u64;
        if count > 0 {
            self.unflushed = true;
        }
        Ok(count == WRITE_BATCH)
    }

    fn dispatch_message(&mut self, seq: u64, entry: &Entry) -> Result<Message, Stop> {
        let name = entry.kind.name();
        if self.compressor.is_plain() {
            let mut out = Vec::with_capacity(entry.data.len() + name.len() + 40);
            frame::dispatch(&mut out, seq, name, &entry.data);
            return Ok(Message::text(Payload::from(out)));
        }
        self.scratch.clear();
        frame::dispatch(&mut self.scratch, seq, name, &entry.data);
        let mut out = Vec::with_capacity(self.scratch.len() / 3 + 64);
        let scratch = std::mem::take(&mut self.scratch);
        let result = self.compressor.compress(&scratch, &mut out);
        self.scratch = scratch;
        match result {
            Ok(()) => Ok(Message::binary(Payload::from(out))),
            Err(error) => {
                tracing::error!(%error, "compression failed");
                Err(Stop(Ended::Dropped))
            }
        }
    }

    /// Sends a non-dispatch payload (compressed like everything else) and flushes.
    async fn send_now(&mut self, text: &[u8]) -> Result<(), Stop> {
        let message = if self.compressor.is_plain() {
            Message::text(Payload::from(Bytes::copy_from_slice(text)))
        } else {
            let mut out = Vec::with_capacity(text.len() / 2 + 64);
            if self.compressor.compress(text, &mut out).is_err() {
                return Err(Stop(Ended::Dropped));
            }
            Message::binary(Payload::from(out))
        };
        self.ws
            .send(message)
            .await
            .map_err(|_| Stop(Ended::Dropped))?;
        self.unflushed = false;
        Ok(())
    }

    /// Sends a close frame, waits briefly for the client's reply, and reports the close.
    async fn close(&mut self, code: u16, reason: &'static str) -> Stop {
        tracing::debug!(
            code,
            reason,
            session_id = self.session_id(),
            "closing gateway connection"
        );
        if let Ok(close_code) = CloseCode::try_from(code) {
            let _ = self.ws.send(Message::close(Some(close_code), reason)).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = self.ws.next().await {}
            })
            .await;
        }
        Stop(Ended::ServerClosed(code))
    }

    async fn control(&mut self, command: ConnCommand) -> Result<(), Stop> {
        match command {
            ConnCommand::Close(Some(code)) => Err(self.close(code, "Fault injected.").await),
            ConnCommand::Close(None) => Err(Stop(Ended::Dropped)),
            ConnCommand::StopHeartbeatAcks => {
                self.acks = false;
                Ok(())
            }
            ConnCommand::StartHeartbeatAcks => {
                self.acks = true;
                Ok(())
            }
            ConnCommand::Reconnect => self.send_now(frame::RECONNECT.as_bytes()).await,
            ConnCommand::InvalidSession { resumable } => {
                if !resumable && let Some(session) = self.session.take() {
                    session.invalidate();
                    self.shared.hub.remove(&session.id);
                }
                self.send_now(frame::invalid_session(resumable).as_bytes())
                    .await
            }
            ConnCommand::Raw(text) => self.send_now(text.as_bytes()).await,
            ConnCommand::Superseded => {
                self.session = None;
                let _ = self.close(4000, "Session resumed elsewhere.").await;
                Err(Stop(Ended::Superseded))
            }
        }
    }

    async fn incoming(&mut self, message: Message) -> Result<(), Stop> {
        if let Some((code, _)) = message.as_close() {
            let code = code.into();
            // RFC 6455 §5.5.1: answer a close frame with one. tokio-websockets
            // queued the reply when it read the frame; closing the sink sends it.
            let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close()).await;
            return Err(Stop(Ended::ClientClosed(code)));
        }
        if !(message.is_text() || message.is_binary()) {
            return Ok(());
        }
        let Ok(payload) = serde_json::from_slice::<Incoming>(message.as_payload()) else {
            return Err(self.close(4002, "Error while decoding payload.").await);
        };
        if payload.op != 1 {
            self.check_send_limit().await?;
        }
        let identified = self.session.is_some();
        match payload.op {
            1 => {
                self.reset_heartbeat_deadline();
                if self.acks {
                    self.send_now(frame::HEARTBEAT_ACK.as_bytes()).await?;
                }
                Ok(())
            }
            2 => self.identify(payload.d).await,
            6 => self.resume(payload.d).await,
            _ if !identified => Err(self.close(4003, "Not authenticated.").await),
            8 => self.request_members(payload.d).await,
            3 | 4 => Ok(()),
            op => {
                tracing::debug!(op, "unknown opcode from client");
                Err(self.close(4001, "Unknown opcode.").await)
            }
        }
    }

    /// Discord allows 120 sends per 60 s per connection. Heartbeats are exempt here so that
    /// short test heartbeat intervals cannot trip the limit by themselves.
    async fn check_send_limit(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        while self
            .sends
            .front()
            .is_some_and(|&t| now.duration_since(t) >= SEND_WINDOW)
        {
            self.sends.pop_front();
        }
        if self.sends.len() >= SEND_LIMIT {
            return Err(self.close(4008, "Rate limited.").await);
        }
        self.sends.push_back(now);
        Ok(())
    }

    fn token_ok(&self, token: &str) -> bool {
        token.strip_prefix("Bot ").unwrap_or(token) == self.shared.config.token
    }

    async fn identify(&mut self, d: Value) -> Result<(), Stop> {
        let Ok(identify) = serde_json::from_value::<IdentifyIn>(d) else {
            return Err(self.close(4002, "Error while decoding payload.").await);
        };
        if !self.token_ok(&identify.token) {
            return Err(self.close(4004, "Authentication failed.").await);
        }
        if self.session.is_some() {
            return Err(self.close(4005, "Already authenticated.").await);
        }
        let Some(intents) = identify.intents else {
            return Err(self.close(4013, "Invalid intent(s).").await);
        };
        let shard = identify.shard.unwrap_or([0, 1]);
        if shard[1] == 0 || shard[0] >= shard[1] {
            return Err(self.close(4010, "Invalid shard.").await);
        }
        let large_threshold =
            usize::try_from(identify.large_threshold.unwrap_or(50).clamp(50, 250)).unwrap_or(50);
        let shared = Arc::clone(&self.shared);
        let n = shared.stats.identify();
        let session_id = format!(
            "{:016x}{:016x}",
            mix64(shared.config.seed ^ n),
            mix64(shared.config.seed.wrapping_add(n) ^ 0x5E55)
        );
        let session = Arc::new(Session::new(
            session_id,
            shard,
            intents,
            shared.config.replay_buffer,
        ));
        session.attach_new(Attachment {
            generation: self.generation,
            control: self.control_tx.clone(),
        });
        // READY and every GUILD_CREATE are queued under the world lock, so no live event
        // for these guilds can slip in before the guild was announced.
        let sharding_required = {
            let world = shared.world();
            let guilds: Vec<_> = world
                .guilds
                .iter()
                .filter(|g| shard_of(g.id, shard[1]) == shard[0])
                .collect();
            if guilds.len() > MAX_GUILDS_PER_SHARD {
                true
            } else {
                shared.hub.register(Arc::clone(&session));
                let ready = payloads::ready(&world, &session.id, &shared.info.gateway_url, shard);
                shared.hub.send_to(&session, EventKind::Ready, ready);
                for g in guilds {
                    let body = payloads::guild_create(&world, g, large_threshold);
                    shared.hub.send_to(&session, EventKind::GuildCreate, body);
                }
                false
            }
        };
        if sharding_required {
            return Err(self.close(4011, "Sharding required.").await);
        }
        tracing::info!(session_id = %session.id, shard_id = shard[0], shard_total = shard[1], "session identified");
        self.session = Some(session);
        self.next_seq = 1;
        Ok(())
    }

    async fn resume(&mut self, d: Value) -> Result<(), Stop> {
        let Ok(resume) = serde_json::from_value::<ResumeIn>(d) else {
            return Err(self.close(4002, "Error while decoding payload.").await);
        };
        if !self.token_ok(&resume.token) {
            return Err(self.close(4004, "Authentication failed.").await);
        }
        if self.session.is_some() {
            return Err(self.close(4005, "Already authenticated.").await);
        }
        let shared = Arc::clone(&self.shared);
        let client_seq = resume.seq.unwrap_or(0);
        let Some(session) = shared.hub.find(&resume.session_id) else {
            tracing::info!(session_id = %resume.session_id, "resume of an unknown session");
            return self
                .send_now(frame::invalid_session(false).as_bytes())
                .await;
        };
        let attachment = Attachment {
            generation: self.generation,
            control: self.control_tx.clone(),
        };
        match session.attach_resume(attachment, client_seq, shared.hub.resume_window) {
            Ok(previous) => {
                if let Some(previous) = previous {
                    let _ = previous.control.try_send(ConnCommand::Superseded);
                }
                shared.stats.resume();
                tracing::info!(session_id = %session.id, seq = client_seq, "session resumed");
                self.next_seq = client_seq + 1;
                shared
                    .hub
                    .send_to(&session, EventKind::Resumed, payloads::resumed());
                self.session = Some(session);
                Ok(())
            }
            Err(reason) => {
                tracing::info!(session_id = %session.id, seq = client_seq, ?reason, "resume refused");
                session.invalidate();
                shared.hub.remove(&session.id);
                self.send_now(frame::invalid_session(false).as_bytes())
                    .await
            }
        }
    }

    async fn request_members(&mut self, d: Value) -> Result<(), Stop> {
        let Ok(request) = serde_json::from_value::<RequestMembersIn>(d) else {
            return Err(self.close(4002, "Error while decoding payload.").await);
        };
        let Some(guild_ids) = snowflakes(&request.guild_id) else {
            return Err(self.close(4002, "Error while decoding payload.").await);
        };
        let user_ids = match &request.user_ids {
            None | Some(Value::Null) => None,
            Some(value) => match snowflakes(value) {
                Some(ids) => Some(ids),
                None => return Err(self.close(4002, "Error while decoding payload.").await),
            },
        };
        let Some(session) = self.session.clone() else {
            return Ok(());
        };
        let chunk_request = ChunkRequest {
            query: request.query,
            limit: request.limit.unwrap_or(0),
            user_ids,
            nonce: request.nonce.filter(|n| n.len() <= 32),
        };
        let shared = Arc::clone(&self.shared);
        let world = shared.world();
        for guild_id in guild_ids {
            if !session.covers(guild_id) {
                continue;
            }
            let Some(g) = world.guild_idx(guild_id).and_then(|i| world.guilds.get(i)) else {
                continue;
            };
            for body in payloads::member_chunks(&world, g, &chunk_request) {
                shared
                    .hub
                    .send_to(&session, EventKind::GuildMembersChunk, body);
            }
        }
        Ok(())
    }

    /// Settles the session after the connection ended.
    fn finish(self, ended: Ended) {
        tracing::debug!(
            ?ended,
            session_id = self.session_id(),
            "gateway connection ended"
        );
        let Some(session) = self.session else {
            return;
        };
        match ended {
            Ended::ClientClosed(1000 | 1001) => {
                session.detach(self.generation, true);
                self.shared.hub.remove(&session.id);
            }
            Ended::ServerClosed(4009) => {
                session.detach(self.generation, true);
                self.shared.hub.remove(&session.id);
            }
            Ended::Superseded => {}
            Ended::ClientClosed(_) | Ended::ServerClosed(_) | Ended::Dropped => {
                session.detach(self.generation, false);
            }
        }
    }
}
