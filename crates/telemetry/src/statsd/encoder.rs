//! The StatsD line format: `<prefix>.<name>:<value>|<type>[|@<rate>]`, with names made safe
//! for the protocol.
//!
//! The encoder is pure (no I/O, no clock) so that the exact bytes can be checked without a
//! socket and the sink task only ever deals with finished lines.

use std::fmt::Write as _;
use std::time::Duration;

use crate::decimal::decimal;

/// One measurement to send: a name (without the prefix) and a typed value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// Metric name without the prefix, e.g. `commands.ping`. Characters outside
    /// `[A-Za-z0-9_.-]` are replaced by `_` when encoded.
    pub name: &'a str,
    /// What was measured.
    pub value: MetricValue,
    /// Fraction of events this one stands for, in `(0, 1]`, when the caller samples.
    /// The caller does the sampling; the encoder only writes `|@<rate>` so that the server
    /// scales the value back up. `None` and `Some(1.0)` mean every event is sent.
    pub sample_rate: Option<f64>,
}

impl<'a> Metric<'a> {
    /// A counter increment: `name:n|c`.
    pub fn counter(name: &'a str, n: i64) -> Self {
        Self::new(name, MetricValue::Counter(n))
    }

    /// A gauge reading: `name:v|g`.
    pub fn gauge(name: &'a str, value: f64) -> Self {
        Self::new(name, MetricValue::Gauge(value))
    }

    /// A timer sample, sent in milliseconds: `name:12.5|ms`.
    pub fn timer(name: &'a str, elapsed: Duration) -> Self {
        Self::new(name, MetricValue::Timer(elapsed))
    }

    /// The same metric, marked as standing for `rate` of the events (see
    /// [`Metric::sample_rate`]).
    pub fn with_sample_rate(self, rate: f64) -> Self {
        Self {
            sample_rate: Some(rate),
            ..self
        }
    }

    fn new(name: &'a str, value: MetricValue) -> Self {
        Self {
            name,
            value,
            sample_rate: None,
        }
    }
}

/// The value of a [`Metric`], which also decides its StatsD type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    /// Added to the server's counter (`|c`).
    Counter(i64),
    /// Replaces the server's gauge (`|g`). A negative value is sent as a reset to zero
    /// followed by the value, because StatsD reads a leading `-` as a decrement.
    Gauge(f64),
    /// A duration, sent in milliseconds with up to six decimals (`|ms`).
    Timer(Duration),
}

/// Why a metric could not be encoded. The sink counts such metrics as dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Neither the prefix nor the name gave the metric a name.
    #[error("metric name is empty")]
    EmptyName,
    /// A gauge was NaN or infinite, which StatsD cannot represent.
    #[error("gauge value {value} is not finite")]
    NonFinite {
        /// The offending value.
        value: f64,
    },
    /// The sample rate was outside `(0, 1]`.
    #[error("sample rate {rate} is not in (0, 1]")]
    InvalidSampleRate {
        /// The offending rate.
        rate: f64,
    },
}

/// Whether `c` may appear in a metric name as is.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Turns [`Metric`]s into StatsD lines under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoder {
    prefix: String,
}

impl Encoder {
    /// An encoder joining `prefix` to every name with `.` (no prefix when empty). The
    /// prefix is sanitised like a name.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.chars().map(sanitise).collect(),
        }
    }

    /// Encodes `metric` as one line (two for a negative gauge), without a trailing newline.
    pub fn encode(&self, metric: &Metric<'_>) -> Result<String, EncodeError> {
        let mut line = String::with_capacity(self.prefix.len() + metric.name.len() + 24);
        self.encode_into(metric, &mut line)?;
        Ok(line)
    }

    /// Appends the encoding of `metric` to `out`. On error `out` is left unchanged.
    pub fn encode_into(&self, metric: &Metric<'_>, out: &mut String) -> Result<(), EncodeError> {
        if self.prefix.is_empty() && metric.name.is_empty() {
            return Err(EncodeError::EmptyName);
        }
        let rate = match metric.sample_rate {
            Some(rate) if !(rate > 0.0 && rate <= 1.0) => {
                return Err(EncodeError::InvalidSampleRate { rate });
            }
            Some(rate) if rate < 1.0 => Some(rate),
            _ => None,
        };
        if let MetricValue::Gauge(value) = metric.value {
            if !value.is_finite() {
                return Err(EncodeError::NonFinite { value });
            }
            if value < 0.0 {
                // StatsD reads `-5|g` as "subtract 5", so set the gauge to zero first.
                self.write_line(metric.name, "g", rate, out, |out| out.push('0'));
                out.push('\n');
            }
        }
        match metric.value {
            MetricValue::Counter(n) => self.write_line(metric.name, "c", rate, out, |out| {
                if n < 0 {
                    out.push('-');
                }
                push_digits(out, decimal(n.unsigned_abs(), &mut [0; 20]));
            }),
            MetricValue::Gauge(value) => self.write_line(metric.name, "g", rate, out, |out| {
                // Writing to a String cannot fail.
                let _ = write!(out, "{value}");
            }),
            MetricValue::Timer(elapsed) => {
                self.write_line(metric.name, "ms", rate, out, |out| millis(out, elapsed))
            }
        }
        Ok(())
    }

    /// Writes `<prefix>.<name>:<value>|<kind>[|@<rate>]`, the value by `value`. Counters
    /// and timers write their numbers without `fmt`, which costs several times as much
    /// per line.
    fn write_line(
        &self,
        name: &str,
        kind: &str,
        rate: Option<f64>,
        out: &mut String,
        value: impl FnOnce(&mut String),
    ) {
        out.push_str(&self.prefix);
        if !self.prefix.is_empty() && !name.is_empty() {
            out.push('.');
        }
        if name.bytes().all(|b| is_name_char(char::from(b))) {
            out.push_str(name);
        } else {
            out.extend(name.chars().map(sanitise));
        }
        out.push(':');
        value(out);
        out.push('|');
        out.push_str(kind);
        if let Some(rate) = rate {
            let _ = write!(out, "|@{rate}");
        }
    }
}

/// Appends decimal digits, which are ASCII and so always UTF-8.
fn push_digits(out: &mut String, digits: &[u8]) {
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

fn sanitise(c: char) -> char {
    if is_name_char(c) { c } else { '_' }
}

/// Appends a duration in milliseconds, exactly, with trailing zeros trimmed: `12.5`,
/// `3`, `0.000001`. Integer arithmetic keeps `12.5 ms` from printing as
/// `12.499999999999998`.
fn millis(out: &mut String, elapsed: Duration) {
    let nanos = elapsed.as_nanos();
    // Whole milliseconds beyond u64 are more than 500 million years.
    let whole = u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX);
    push_digits(out, decimal(whole, &mut [0; 20]));
    let mut fraction = (nanos % 1_000_000) as u64;
    if fraction == 0 {
        return;
    }
    let mut width = 6;
    while fraction.is_multiple_of(10) {
        fraction /= 10;
        width -= 1;
    }
    out.push('.');
    // Six decimals, less the trailing zeros: put the leading ones back.
    let mut buffer = [0; 20];
    let digits = decimal(fraction, &mut buffer);
    out.extend(std::iter::repeat_n('0', width - digits.len()));
    push_digits(out, digits);
}
