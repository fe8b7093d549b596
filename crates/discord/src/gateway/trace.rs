//! The span every traced gateway event carries: a root `discord.event` span,
//! and the timing of its wait on the event bus, recorded on it as
//! `bus.queue_ms` when the consumer takes the event off the bus.
//!
//! It is a DEBUG span, so a subscriber that only wants INFO (the default log
//! filter) skips it at the cost of a level check; a tracing pipeline with its
//! own filter (OpenTelemetry) still sees it. Only ids, names and counters are
//! recorded, never anything a person wrote.

use std::{
    fmt,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Instant,
};

use guildscope_model::{Event, Queued, Snowflake};
use tracing::{Span, field};

/// How many gateway events per second get a root span, shared by every
/// shard. Interactions are not counted: every command is traced (subject to
/// the tracer's sampler).
#[derive(Debug)]
pub(crate) struct TraceBudget {
    per_second: u32,
    started: Instant,
    /// The second (since `started`) the count is for.
    second: AtomicU64,
    used: AtomicU32,
}

impl TraceBudget {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            started: Instant::now(),
            second: AtomicU64::new(0),
            used: AtomicU32::new(0),
        }
    }

    /// Whether an event received at `received_at` may be traced. Off (and
    /// nearly free) when nothing wants DEBUG spans.
    ///
    /// The cheap checks come first: the process's maximum level, then the
    /// budget. Only an event within the budget asks the subscriber whether
    /// this span would be recorded, which costs a filter evaluation per layer;
    /// at 100,000 messages a second that was a measurable part of what
    /// tracing cost. A place taken for an event that then is not traced
    /// (no span layer) is simply unused.
    pub(crate) fn take(&self, event: &Event, received_at: Instant) -> bool {
        if tracing::level_filters::LevelFilter::current() < tracing::Level::DEBUG {
            return false;
        }
        if !matches!(event, Event::Interaction(_)) && !self.slot(received_at) {
            return false;
        }
        tracing::enabled!(
            kind: tracing::metadata::Kind::SPAN,
            target: "guildscope_discord::gateway::trace",
            tracing::Level::DEBUG
        )
    }

    /// Takes one of the places of the second `now` falls in, if any is left.
    fn slot(&self, now: Instant) -> bool {
        if self.per_second == u32::MAX {
            return true;
        }
        let now = now.saturating_duration_since(self.started).as_secs();
        let second = self.second.load(Ordering::Relaxed);
        if now != second
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.used.store(0, Ordering::Relaxed);
        }
        self.used.fetch_add(1, Ordering::Relaxed) < self.per_second
    }
}

/// The root span of one dispatch, with no parent whatever span is current.
///
/// Every value known now is recorded as the span is created, which costs a
/// subscriber one call instead of one per field. The fields the bot records
/// once it has handled the event are declared empty: a field can only be
/// recorded if it was declared at creation.
pub(crate) fn event_span(shard: u32, sequence: u64, name: &'static str, event: &Event) -> Span {
    let command = match event {
        Event::Interaction(interaction) => Some(interaction),
        _ => None,
    };
    // Ids are exported as decimal strings: a snowflake may outgrow an i64
    // attribute, and BI tools join on the text form. They are recorded as
    // u64, which the span layer writes as decimal text without formatting
    // machinery, as `tracing-opentelemetry` did (other subscribers print
    // them the same). A command name is one the bot registered, not text a
    // person wrote.
    tracing::debug_span!(
        parent: None,
        "discord.event",
        discord.event = name,
        discord.shard_id = shard,
        discord.sequence = sequence,
        discord.guild_id = event.guild_id().map(Snowflake::get),
        discord.channel_id = event.channel_id().map(Snowflake::get),
        discord.user_id = event.user_id().map(Snowflake::get),
        discord.message_id = event.message_id().map(Snowflake::get),
        discord.interaction_id = command.map(|c| c.id.get()),
        bus.queue_ms = field::Empty,
        command.name = command.map(|c| c.name.as_str()),
        command.outcome = field::Empty,
        error = field::Empty,
        otel.name = command.map(|c| field::display(Slash(&c.name))),
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    )
}

/// A command's span name: `/name`.
struct Slash<'a>(&'a str);

impl fmt::Display for Slash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

/// Starts timing an event's wait on the bus, as the envelope is put on it.
/// Nothing is timed when the root span is disabled.
pub(crate) fn queued(root: &Span) -> Queued {
    Queued::start(root)
}

#[cfg(test)]
mod budget_tests {
    use super::TraceBudget;

    #[test]
    fn a_budget_gives_its_places_per_second_and_no_more() {
        let budget = TraceBudget::new(3);
        let now = std::time::Instant::now();
        let taken = (0..10).filter(|_| budget.slot(now)).count();
        assert_eq!(taken, 3);
        // The next second has its own places.
        let next = now + std::time::Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| budget.slot(next)).count(), 3);
        assert!((0..10).all(|_| TraceBudget::new(u32::MAX).slot(now)));
        assert!(!TraceBudget::new(0).slot(now));
    }
}
