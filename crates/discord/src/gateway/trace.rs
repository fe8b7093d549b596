//! The spans every gateway event carries: a root `discord.event` span and a
//! `bus.queue` child that covers the wait on the event bus.
//!
//! Both are DEBUG spans, so a subscriber that only wants INFO (the default
//! log filter) skips them at the cost of a level check; a tracing pipeline
//! with its own filter (OpenTelemetry) still sees them. Only ids, names and
//! counters are recorded, never anything a person wrote.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Instant,
};

use guildscope_model::Event;
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

    /// Whether the next event may be traced. Off (and nearly free) when no
    /// subscriber wants DEBUG spans.
    pub(crate) fn take(&self, event: &Event) -> bool {
        if !tracing::enabled!(
            kind: tracing::metadata::Kind::SPAN,
            target: "guildscope_discord::gateway::trace",
            tracing::Level::DEBUG
        ) {
            return false;
        }
        matches!(event, Event::Interaction(_)) || self.slot()
    }

    /// Takes one of this second's places, if any is left.
    fn slot(&self) -> bool {
        if self.per_second == u32::MAX {
            return true;
        }
        let now = self.started.elapsed().as_secs();
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
/// Declares, empty, the fields the bot records once it has handled the
/// event: a field can only be recorded if it was declared at creation.
pub(crate) fn event_span(shard: u32, sequence: u64, name: &'static str, event: &Event) -> Span {
    let span = tracing::debug_span!(
        parent: None,
        "discord.event",
        discord.event = name,
        discord.shard_id = shard,
        discord.sequence = sequence,
        discord.guild_id = field::Empty,
        discord.channel_id = field::Empty,
        discord.user_id = field::Empty,
        discord.message_id = field::Empty,
        discord.interaction_id = field::Empty,
        command.name = field::Empty,
        command.outcome = field::Empty,
        error = field::Empty,
        otel.name = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    // Ids are recorded as decimal strings: a snowflake may outgrow an i64
    // attribute, and BI tools join on the text form.
    if let Some(guild) = event.guild_id() {
        span.record("discord.guild_id", field::display(guild));
    }
    if let Some(channel) = event.channel_id() {
        span.record("discord.channel_id", field::display(channel));
    }
    if let Some(user) = event.user_id() {
        span.record("discord.user_id", field::display(user));
    }
    if let Some(message) = event.message_id() {
        span.record("discord.message_id", field::display(message));
    }
    if let Event::Interaction(interaction) = event {
        span.record("discord.interaction_id", field::display(interaction.id));
        // A command name is one the bot registered, not text a person wrote.
        span.record("command.name", interaction.name.as_str());
        span.record("otel.name", format_args!("/{}", interaction.name));
    }
    span
}

/// The `bus.queue` child of an event's root span, opened as the envelope is
/// put on the bus. Disabled when the root span is.
pub(crate) fn queue_span(root: &Span) -> Span {
    if root.is_disabled() {
        return Span::none();
    }
    tracing::debug_span!(parent: root, "bus.queue")
}

#[cfg(test)]
mod budget_tests {
    use super::TraceBudget;

    #[test]
    fn a_budget_gives_its_places_per_second_and_no_more() {
        let budget = TraceBudget::new(3);
        let taken = (0..10).filter(|_| budget.slot()).count();
        assert_eq!(taken, 3);
        assert!((0..10).all(|_| TraceBudget::new(u32::MAX).slot()));
        assert!(!TraceBudget::new(0).slot());
    }
}
