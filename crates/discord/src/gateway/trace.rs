//! The span every traced gateway event carries: a root `discord.event` span,
//! and the timing of its wait on the event bus, set on it as `bus.queue_ms`
//! when the consumer takes the event off the bus.
//!
//! Only ids, names and counters are recorded, never anything a person wrote.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Instant,
};

use guildscope_model::{Event, Queued, Snowflake};
use guildscope_trace::Span;

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

    /// Whether an event received at `received_at` may be traced: every
    /// interaction, and other events while the second's places last. Whether
    /// there is a tracer at all is asked once, by the span itself.
    pub(crate) fn take(&self, event: &Event, received_at: Instant) -> bool {
        matches!(event, Event::Interaction(_)) || self.slot(received_at)
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
/// Ids are exported as decimal text: a snowflake may outgrow an i64
/// attribute, and BI tools join on the text form. A command name is one the
/// bot registered, not text a person wrote.
pub(crate) fn event_span(shard: u32, sequence: u64, name: &'static str, event: &Event) -> Span {
    let mut span = Span::root("discord.event");
    if !span.is_recording() {
        return span;
    }
    span.set("discord.event", name);
    span.set("discord.shard_id", u64::from(shard));
    span.set("discord.sequence", sequence);
    let ids = [
        ("discord.guild_id", event.guild_id().map(Snowflake::get)),
        ("discord.channel_id", event.channel_id().map(Snowflake::get)),
        ("discord.user_id", event.user_id().map(Snowflake::get)),
        ("discord.message_id", event.message_id().map(Snowflake::get)),
    ];
    for (key, id) in ids {
        if let Some(id) = id {
            span.set(key, id);
        }
    }
    if let Event::Interaction(interaction) = event {
        span.set("discord.interaction_id", interaction.id.get());
        span.set("command.name", interaction.name.clone());
        let mut name = String::with_capacity(interaction.name.len() + 1);
        name.push('/');
        name.push_str(&interaction.name);
        span.set_name(name);
    }
    span
}

/// Starts timing an event's wait on the bus, as the envelope is put on it.
/// Nothing is timed when the root span is not recorded.
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
