//! Gateway sessions and the hub that routes dispatches to them.
//!
//! A session is created by IDENTIFY and outlives its connection: every dispatch it is sent
//! gets the next sequence number and goes into its bounded replay buffer, which is also the
//! queue the connection's writer drains. RESUME re-attaches a new connection and replays
//! from the client's last sequence number. A session whose connection is down keeps
//! buffering until the buffer is full (then it is invalidated) or the resume window ends.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use super::{ConnCommand, EventCounters, EventKind};
use crate::community::shard_of;

/// One buffered dispatch: its type and its serialized `d`, shared by every session.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) kind: EventKind,
    pub(crate) data: Bytes,
    /// Set to the time the dispatch was first written to a client's socket, for
    /// dispatches whose delivery is timed (INTERACTION_CREATE).
    pub(crate) written: Option<Written>,
}

/// When a timed dispatch was first written to a client: set once, by the first
/// connection writer to flush it.
pub(crate) type Written = Arc<OnceLock<Instant>>;

/// The live connection a session is attached to.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub(crate) generation: u64,
    pub(crate) control: mpsc::Sender<ConnCommand>,
}

#[derive(Debug)]
struct SessionState {
    /// Sequence number of `buffer[0]` (or of the next dispatch when empty).
    first_seq: u64,
    buffer: VecDeque<Entry>,
    /// Highest sequence number handed to the current connection's writer.
    sent_seq: u64,
    conn: Option<Attachment>,
    disconnected_at: Option<Instant>,
    invalid: bool,
}

impl SessionState {
    fn last_seq(&self) -> u64 {
        self.first_seq + self.buffer.len() as u64 - 1
    }
}

/// Why a RESUME was refused (the client gets op 9 `false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeRefused {
    Invalid,
    SeqTooOld,
    SeqInFuture,
}

/// The writer asked for dispatches the buffer no longer holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gap;

/// A gateway session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) shard_id: u32,
    pub(crate) shard_total: u32,
    pub(crate) intents: u64,
    capacity: usize,
    state: Mutex<SessionState>,
    /// Wakes the attached connection's writer.
    pub(crate) wake: Notify,
    /// Wakes producers waiting for the writer to catch up.
    pub(crate) drained: Notify,
}

/// A session's state for `/control/status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SessionStatus {
    /// Session id.
    pub session_id: String,
    /// `[shard_id, shard_total]`.
    pub shard: [u32; 2],
    /// The intents the client identified with (bit flags, as sent in IDENTIFY).
    pub intents: u64,
    /// A connection is attached.
    pub connected: bool,
    /// Last sequence number assigned.
    pub seq: u64,
    /// Dispatches held for replay.
    pub buffered: u64,
    /// Dispatches assigned but not yet written to the connection.
    pub backlog: u64,
}

impl Session {
    pub(crate) fn new(id: String, shard: [u32; 2], intents: u64, capacity: usize) -> Self {
        Self {
            id,
            shard_id: shard[0],
            shard_total: shard[1],
            intents,
            capacity,
            state: Mutex::new(SessionState {
                first_seq: 1,
                buffer: VecDeque::new(),
                sent_seq: 0,
                conn: None,
                disconnected_at: None,
                invalid: false,
            }),
            wake: Notify::new(),
            drained: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SessionState> {
        // A panic while holding this lock cannot leave the buffer inconsistent in a way that
        // matters more than losing the simulator, so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn covers(&self, guild_id: u64) -> bool {
        shard_of(guild_id, self.shard_total) == self.shard_id
    }

    /// Whether the session would receive this kind of dispatch (intents).
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        let intent = kind.intent();
        intent == 0 || self.intents & intent != 0
    }

    /// Assigns the next sequence number to a dispatch; `None` if the session is invalid.
    pub(crate) fn push(&self, kind: EventKind, data: Bytes) -> Option<u64> {
        self.push_entry(Entry {
            kind,
            data,
            written: None,
        })
    }

    /// [`push`](Self::push) for a whole entry.
    fn push_entry(&self, entry: Entry) -> Option<u64> {
        let seq = {
            let mut state = self.lock();
            if state.invalid {
                return None;
            }
            state.buffer.push_back(entry);
            let seq = state.last_seq();
            if state.buffer.len() > self.capacity {
                if state.conn.is_none() {
                    // Nobody is reading and the replay buffer is full: the session is lost.
                    state.invalid = true;
                    state.buffer.clear();
                    state.first_seq = seq + 1;
                    tracing::info!(session_id = %self.id, "replay buffer full, session invalidated");
                    return None;
                }
                state.buffer.pop_front();
                state.first_seq += 1;
            }
            seq
        };
        self.wake.notify_one();
        Some(seq)
    }

    /// Copies up to `max` dispatches starting at `from_seq` into `out` and marks them sent.
    pub(crate) fn take(
        &self,
        from_seq: u64,
        max: usize,
        out: &mut Vec<(u64, Entry)>,
    ) -> Result<(), Gap> {
        let mut state = self.lock();
        if from_seq < state.first_seq {
            return Err(Gap);
        }
        let start = usize::try_from(from_seq - state.first_seq).unwrap_or(usize::MAX);
        let end = state.buffer.len().min(start.saturating_add(max));
        if start >= end {
            return Ok(());
        }
        for (offset, entry) in state.buffer.range(start..end).enumerate() {
            out.push((from_seq + offset as u64, entry.clone()));
        }
        state.sent_seq = from_seq + (end - start) as u64 - 1;
        Ok(())
    }

    /// Dispatches assigned but not yet taken by the attached connection's writer (0 when
    /// detached: a detached session never slows producers down).
    pub(crate) fn backlog(&self) -> u64 {
        let state = self.lock();
        if state.conn.is_none() || state.buffer.is_empty() {
            return 0;
        }
        state.last_seq().saturating_sub(state.sent_seq)
    }

    /// Attaches a freshly identified connection.
    pub(crate) fn attach_new(&self, attachment: Attachment) {
        let mut state = self.lock();
        state.conn = Some(attachment);
        state.disconnected_at = None;
    }

    /// Attaches a resuming connection; returns the previous attachment (to be told it was
    /// superseded) or why the resume is refused.
    pub(crate) fn attach_resume(
        &self,
        attachment: Attachment,
        client_seq: u64,
        window: Duration,
    ) -> Result<Option<Attachment>, ResumeRefused> {
        let mut state = self.lock();
        let expired = state
            .disconnected_at
            .is_some_and(|at| at.elapsed() > window);
        if state.invalid || expired {
            return Err(ResumeRefused::Invalid);
        }
        let last = if state.buffer.is_empty() {
            state.first_seq - 1
        } else {
            state.last_seq()
        };
        if client_seq > last {
            return Err(ResumeRefused::SeqInFuture);
        }
        if client_seq + 1 < state.first_seq {
            return Err(ResumeRefused::SeqTooOld);
        }
        state.sent_seq = client_seq;
        state.disconnected_at = None;
        Ok(state.conn.replace(attachment))
    }

    /// Detaches a connection that ended; the session stays resumable unless `invalidate`.
    pub(crate) fn detach(&self, generation: u64, invalidate: bool) {
        let mut state = self.lock();
        if state
            .conn
            .as_ref()
            .is_some_and(|c| c.generation == generation)
        {
            state.conn = None;
            state.disconnected_at = Some(Instant::now());
        }
        if invalidate {
            state.invalid = true;
            state.buffer.clear();
        }
        drop(state);
        self.drained.notify_waiters();
    }

    pub(crate) fn invalidate(&self) {
        let mut state = self.lock();
        state.invalid = true;
        state.buffer.clear();
    }

    pub(crate) fn control(&self) -> Option<mpsc::Sender<ConnCommand>> {
        self.lock().conn.as_ref().map(|c| c.control.clone())
    }

    /// Still counts as covering its shard: valid, and connected or within the resume window.
    pub(crate) fn is_alive(&self, window: Duration) -> bool {
        let state = self.lock();
        !state.invalid
            && (state.conn.is_some()
                || state
                    .disconnected_at
                    .is_none_or(|at| at.elapsed() <= window))
    }

    pub(crate) fn status(&self) -> SessionStatus {
        let state = self.lock();
        let seq = if state.buffer.is_empty() {
            state.first_seq - 1
        } else {
            state.last_seq()
        };
        SessionStatus {
            session_id: self.id.clone(),
            shard: [self.shard_id, self.shard_total],
            intents: self.intents,
            connected: state.conn.is_some(),
            seq,
            buffered: state.buffer.len() as u64,
            backlog: if state.conn.is_some() {
                seq.saturating_sub(state.sent_seq)
            } else {
                0
            },
        }
    }
}

/// All sessions, and the routing of guild dispatches to them.
#[derive(Debug)]
pub(crate) struct Hub {
    sessions: Mutex<Vec<Arc<Session>>>,
    pub(crate) counters: EventCounters,
    pub(crate) resume_window: Duration,
    generation: AtomicU64,
}

impl Hub {
    pub(crate) fn new(resume_window: Duration) -> Self {
        Self {
            sessions: Mutex::new(Vec::new()),
            counters: EventCounters::default(),
            resume_window,
            generation: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Session>>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(&self, session: Arc<Session>) {
        self.lock().push(session);
    }

    pub(crate) fn find(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().iter().find(|s| s.id == id).cloned()
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().retain(|s| s.id != id);
    }

    /// Drops sessions that are invalid or whose resume window ended.
    pub(crate) fn sweep(&self) {
        let window = self.resume_window;
        self.lock().retain(|s| s.is_alive(window));
    }

    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        self.lock().clone()
    }

    /// Whether any live or resumable session covers the guild's shard.
    pub(crate) fn covers(&self, guild_id: u64) -> bool {
        let window = self.resume_window;
        self.lock()
            .iter()
            .any(|s| s.covers(guild_id) && s.is_alive(window))
    }

    /// Sends a guild dispatch to every session covering the guild; returns how many got it.
    /// The event is counted once if anyone got it.
    pub(crate) fn broadcast(&self, guild_id: u64, kind: EventKind, data: &Bytes) -> usize {
        self.broadcast_timed(guild_id, kind, data, None)
    }

    /// [`broadcast`](Self::broadcast), noting in `written` when the dispatch was
    /// first written to a client.
    pub(crate) fn broadcast_timed(
        &self,
        guild_id: u64,
        kind: EventKind,
        data: &Bytes,
        written: Option<&Written>,
    ) -> usize {
        let delivered = self
            .lock()
            .iter()
            .filter(|s| s.covers(guild_id) && s.wants(kind))
            .filter(|s| {
                s.push_entry(Entry {
                    kind,
                    data: data.clone(),
                    written: written.cloned(),
                })
                .is_some()
            })
            .count();
        if delivered > 0 {
            self.counters.record(kind);
        }
        delivered
    }

    /// Sends a dispatch to one session (READY, GUILD_CREATE, chunks, RESUMED).
    pub(crate) fn send_to(&self, session: &Session, kind: EventKind, data: Bytes) -> Option<u64> {
        let seq = session.push(kind, data)?;
        self.counters.record(kind);
        Some(seq)
    }
}
