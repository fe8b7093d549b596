//! What a trace would show, without an OpenTelemetry pipeline: every span the
//! crate records, kept by `guildscope_trace`'s recorder, and their attributes as
//! text.

use guildscope_trace::{Record, Recorder, Value};
use tracing::subscriber::DefaultGuard;

/// The spans recorded on this thread (which runs the whole test on a
/// current-thread runtime) until the guard drops.
pub fn install() -> (Recorder, DefaultGuard) {
    Recorder::install()
}

/// An attribute's value as text, the way a trace viewer shows it.
pub fn text(span: &Record, key: &str) -> Option<String> {
    span.attribute(key).map(|value| match value {
        Value::Bool(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        Value::U64(v) => v.to_string(),
        Value::Str(v) => v.to_string(),
    })
}

/// An attribute's value as a number of milliseconds.
pub fn millis(span: &Record, key: &str) -> f64 {
    match span.attribute(key) {
        Some(Value::F64(ms)) => *ms,
        other => panic!("{key} is not a number of milliseconds: {other:?} in {span:#?}"),
    }
}
