//! What a finished span is: a plain record an exporter reads. Recording writes
//! values into it as they are, and all encoding happens on the exporter's side,
//! off the thread that ran the span.

use std::borrow::Cow;
use std::time::SystemTime;

use crate::{SpanContext, SpanId};

/// The most attributes a span keeps, as the OpenTelemetry SDK's default limit;
/// more are dropped and counted.
pub const MAX_ATTRIBUTES: usize = 128;

/// The most events a span keeps; more are dropped and counted.
pub const MAX_EVENTS: usize = 128;

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// A floating-point number.
    F64(f64),
    /// An unsigned integer, exported as its decimal text: OTLP has no unsigned
    /// integers, and a Discord snowflake may not fit an `i64`.
    U64(u64),
    /// Text.
    Str(Cow<'static, str>),
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::I64(value)
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Self::F64(value)
    }
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Self::U64(value)
    }
}

impl From<&'static str> for Value {
    fn from(value: &'static str) -> Self {
        Self::Str(Cow::Borrowed(value))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Str(Cow::Owned(value))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(value: Cow<'static, str>) -> Self {
        Self::Str(value)
    }
}

/// One attribute: a key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The key, `discord.guild_id` say.
    pub key: Cow<'static, str>,
    /// The value.
    pub value: Value,
}

/// A span's attributes in the order they were first set; setting a key again
/// replaces its value. A record is reused span after span on its thread
/// (see `span.rs`), and its attributes' room with it, so setting one costs no
/// allocation once the thread's records have grown to its spans.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    kept: Vec<Attribute>,
    dropped: u32,
    /// The bit of each key kept ([`key_bit`]): a key whose bit is clear is new,
    /// and is added without looking for it.
    keys: u64,
}

impl Attributes {
    /// Sets `key` to `value`: replaces the value of a key already set, else adds
    /// it, or counts it as dropped past [`MAX_ATTRIBUTES`].
    pub fn set(&mut self, key: Cow<'static, str>, value: Value) {
        let bit = key_bit(&key);
        if self.keys & bit != 0
            && let Some(attribute) = self.kept.iter_mut().find(|a| same_key(&a.key, &key))
        {
            attribute.value = value;
            return;
        }
        self.keys |= bit;
        if self.kept.len() < MAX_ATTRIBUTES {
            self.kept.push(Attribute { key, value });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// None yet, with room for `room` without growing.
    pub(crate) fn with_room(room: usize) -> Self {
        Self {
            kept: Vec::with_capacity(room),
            ..Self::default()
        }
    }

    /// Forgets every attribute, keeping the room.
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
        self.dropped = 0;
        self.keys = 0;
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    /// The attributes, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = &Attribute> {
        self.kept.iter()
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many were dropped past the limit.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

/// One of 64 bits for `key`, from its length and two of its bytes: keys are
/// mostly dotted names of similar lengths with a shared prefix, so the length
/// alone would send most new keys looking through the others.
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let (middle, last) = match bytes.last() {
        Some(&last) => (bytes[bytes.len() / 2], last),
        None => (0, 0),
    };
    let mixed = (bytes.len() as u64 | u64::from(middle) << 16 | u64::from(last) << 24)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    1 << (mixed >> 58)
}

/// Whether two keys are the same: the same text, which a key set again from the
/// same literal shows at once by its address.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

/// Something that happened at a moment within a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened (`exception`, or a short sentence).
    pub name: Cow<'static, str>,
    /// When.
    pub time: SystemTime,
    /// Its details.
    pub attributes: Vec<Attribute>,
}

/// What kind of work a span is, as OpenTelemetry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Work inside the process. The default.
    #[default]
    Internal,
    /// Handling a request from outside (a command).
    Server,
    /// A request to another service (Discord's REST API, the database).
    Client,
    /// Handing work to a queue.
    Producer,
    /// Taking work from a queue.
    Consumer,
}

/// How a span ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Not said. The default.
    #[default]
    Unset,
    /// It did what it was for.
    Ok,
    /// It failed, with a short description (an error kind, never user content).
    Error(Cow<'static, str>),
}

/// A finished span, as the exporter receives it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its own ids, and whether its trace is sampled (always, once finished:
    /// spans of unsampled traces are never recorded).
    pub context: SpanContext,
    /// Its parent's span id; `None` for the root of a trace.
    pub parent: Option<SpanId>,
    /// Whether the parent is in another process.
    pub parent_is_remote: bool,
    /// Its name.
    pub name: Cow<'static, str>,
    /// Its kind.
    pub kind: Kind,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes.
    pub attributes: Attributes,
    /// What happened during it, in order.
    pub events: Vec<Event>,
    /// Events dropped past [`MAX_EVENTS`].
    pub dropped_events: u32,
    /// How it ended.
    pub status: Status,
}

impl Record {
    /// The value of attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{Attributes, MAX_ATTRIBUTES, Value};

    #[test]
    fn setting_a_key_again_replaces_its_value_in_place() {
        let mut attributes = Attributes::default();
        attributes.set("a".into(), Value::I64(1));
        attributes.set("b".into(), Value::Bool(true));
        attributes.set("a".into(), Value::I64(2));
        let seen: Vec<_> = attributes
            .iter()
            .map(|a| (a.key.as_ref(), a.value.clone()))
            .collect();
        assert_eq!(seen, [("a", Value::I64(2)), ("b", Value::Bool(true))]);
    }

    #[test]
    fn keys_alike_in_length_and_letters_stay_apart() {
        let keys = [
            "discord.guild_id",
            "discord.shard_id",
            "discord.sequence",
            "discord.channel_id",
            "discord.message_id",
            "",
            "a",
            "b",
        ];
        let mut attributes = Attributes::default();
        for (n, key) in keys.iter().enumerate() {
            attributes.set(Cow::Borrowed(key), Value::I64(n as i64));
        }
        // Set again from keys at other addresses: found by their text.
        for (n, key) in keys.iter().enumerate().rev() {
            attributes.set(Cow::Owned(key.to_string()), Value::I64(-(n as i64)));
        }
        assert_eq!(attributes.len(), keys.len());
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(attributes.get(key), Some(&Value::I64(-(n as i64))), "{key}");
        }
        let order: Vec<&str> = attributes.iter().map(|a| a.key.as_ref()).collect();
        assert_eq!(order, keys);
    }

    #[test]
    fn attributes_up_to_the_limit_are_kept_in_order_and_past_it_counted() {
        let mut attributes = Attributes::default();
        for n in 0..MAX_ATTRIBUTES + 3 {
            attributes.set(Cow::Owned(format!("k{n}")), Value::U64(n as u64));
        }
        assert_eq!(attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(attributes.dropped(), 3);
        assert_eq!(attributes.get("k15"), Some(&Value::U64(15)));
        assert_eq!(attributes.get("k0"), Some(&Value::U64(0)));
        assert_eq!(attributes.get(&format!("k{MAX_ATTRIBUTES}")), None);
        let order: Vec<String> = attributes.iter().map(|a| a.key.to_string()).collect();
        let expected: Vec<String> = (0..MAX_ATTRIBUTES).map(|n| format!("k{n}")).collect();
        assert_eq!(order, expected);
        // A key set again past the limit still takes its new value.
        attributes.set(Cow::Borrowed("k7"), Value::Bool(true));
        assert_eq!(attributes.get("k7"), Some(&Value::Bool(true)));
        assert_eq!(
            (attributes.len(), attributes.dropped()),
            (MAX_ATTRIBUTES, 3)
        );
        // Cleared, the room stays and the limit starts again.
        let room = attributes.kept.capacity();
        attributes.clear();
        assert!(attributes.is_empty());
        assert_eq!(attributes.dropped(), 0);
        assert_eq!(attributes.kept.capacity(), room);
        for n in 0..=MAX_ATTRIBUTES {
            attributes.set(Cow::Owned(format!("j{n}")), Value::I64(1));
        }
        assert_eq!(
            (attributes.len(), attributes.dropped()),
            (MAX_ATTRIBUTES, 1)
        );
        assert_eq!(attributes.kept.capacity(), room);
    }
}
