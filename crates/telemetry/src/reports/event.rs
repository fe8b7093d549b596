//! What a caller says about an error ([`ErrorReport`]) and the Sentry event made from it.
//!
//! The event is built field by field from the report and nothing else: no integration,
//! scope or default adds to it, so what reaches Sentry is exactly what is listed here.

use std::str::FromStr;

use sentry::protocol::{
    Context, Event, Exception, Level, Map, SpanId, TraceContext, TraceId, User, Value,
};

/// One error to report. Every field is metadata: there is deliberately no field for what
/// anyone wrote, so message content cannot reach Sentry through a report.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorReport<'a> {
    /// Where the error happened: `command`, `event`, `store`, ... Sentry shows it as the
    /// exception type and groups by it.
    pub kind: &'a str,
    /// The error's text: its `Display`, never message content.
    pub error: &'a str,
    /// The command that failed, if any (tag `command`).
    pub command: Option<&'a str>,
    /// The user who ran the command or caused the event (Sentry's `user.id`).
    pub user_id: Option<u64>,
    /// The guild (tag `guild_id`).
    pub guild_id: Option<u64>,
    /// The channel (tag `channel_id`).
    pub channel_id: Option<u64>,
    /// The message (tag `message_id`).
    pub message_id: Option<u64>,
    /// The interaction (tag `interaction_id`).
    pub interaction_id: Option<u64>,
    /// The gateway shard (tag `shard`).
    pub shard: Option<u32>,
    /// The trace the error happened in (tag `trace_id`; a 32-digit hex id also becomes
    /// the event's trace context, which links the report to the trace).
    pub trace_id: Option<&'a str>,
}

impl<'a> ErrorReport<'a> {
    /// A report of `error` of the given `kind`, with no context yet.
    pub fn new(kind: &'a str, error: &'a str) -> Self {
        Self {
            kind,
            error,
            ..Self::default()
        }
    }
}

/// The link Discord's clients open at a message, when all three ids are known.
pub(crate) fn jump_link(report: &ErrorReport<'_>) -> Option<String> {
    let (guild, channel, message) = (report.guild_id?, report.channel_id?, report.message_id?);
    Some(format!(
        "https://discord.com/channels/{guild}/{channel}/{message}"
    ))
}

/// The Sentry event for `report`: level error, the error text as message and exception
/// value, the kind as exception type, the ids as tags, the user id as the only user field,
/// and the jump link as extra `jump_to`.
pub(crate) fn build(report: &ErrorReport<'_>) -> Event<'static> {
    let mut event = Event::new();
    event.level = Level::Error;
    event.message = Some(report.error.to_owned());
    event.exception = vec![Exception {
        ty: report.kind.to_owned(),
        value: Some(report.error.to_owned()),
        ..Exception::default()
    }]
    .into();

    let mut tags = Map::new();
    let mut tag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            tags.insert(name.to_owned(), value);
        }
    };
    tag("command", report.command.map(str::to_owned));
    tag("guild_id", report.guild_id.map(|id| id.to_string()));
    tag("channel_id", report.channel_id.map(|id| id.to_string()));
    tag("message_id", report.message_id.map(|id| id.to_string()));
    tag(
        "interaction_id",
        report.interaction_id.map(|id| id.to_string()),
    );
    tag("shard", report.shard.map(|shard| shard.to_string()));
    tag("trace_id", report.trace_id.map(str::to_owned));
    event.tags = tags;

    event.user = report.user_id.map(|id| User {
        id: Some(id.to_string()),
        ..User::default()
    });

    if let Some(link) = jump_link(report) {
        event
            .extra
            .insert("jump_to".to_owned(), Value::String(link));
    }

    // Without a trace context of its own, the event would get the scope's, one random
    // trace id shared by every report, which Sentry would show as one long trace.
    let trace_id = report
        .trace_id
        .and_then(|id| TraceId::from_str(id).ok())
        .unwrap_or_default();
    let context = TraceContext {
        trace_id,
        span_id: SpanId::default(),
        ..TraceContext::default()
    };
    event
        .contexts
        .insert("trace".to_owned(), Context::Trace(Box::new(context)));
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_link_needs_all_three_ids() {
        let mut report = ErrorReport::new("command", "boom");
        report.guild_id = Some(1);
        report.channel_id = Some(2);
        assert_eq!(jump_link(&report), None);
        report.message_id = Some(3);
        assert_eq!(
            jump_link(&report).as_deref(),
            Some("https://discord.com/channels/1/2/3")
        );
    }

    #[test]
    fn unset_fields_leave_no_tags_and_no_user() {
        let event = build(&ErrorReport::new("store", "disk full"));
        assert!(event.tags.is_empty());
        assert!(event.user.is_none());
        assert!(event.extra.is_empty());
        assert_eq!(event.message.as_deref(), Some("disk full"));
        assert_eq!(event.exception.values[0].ty, "store");
    }

    #[test]
    fn a_hex_trace_id_becomes_the_trace_context() {
        let mut report = ErrorReport::new("event", "bad payload");
        report.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736");
        let event = build(&report);
        let Some(Context::Trace(trace)) = event.contexts.get("trace") else {
            panic!("no trace context: {:?}", event.contexts);
        };
        assert_eq!(
            trace.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            event.tags.get("trace_id").map(String::as_str),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
