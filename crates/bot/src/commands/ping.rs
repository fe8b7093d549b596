//! `/ping`: gateway heartbeat latency and a measured REST round trip.

use std::time::{Duration, Instant};

use guildscope_discord::{Rest, RestError};

use super::{Answer, CommandContext, Invocation};

/// How long a measured REST round trip is reported before it is measured
/// again.
const ROUND_TRIP_MAX_AGE: Duration = Duration::from_secs(10);

/// The REST round trip `/ping` reports, measured at most once per
/// [`ROUND_TRIP_MAX_AGE`] however often `/ping` is used, so pings never
/// spend the bot's rate limit (or wait on it).
#[derive(Debug, Default)]
pub struct RoundTrip {
    last: std::sync::Mutex<Option<(Instant, Duration)>>,
    measuring: tokio::sync::Mutex<()>,
}

impl RoundTrip {
    fn fresh(&self) -> Option<Duration> {
        let last = *self.last.lock().ok()?;
        last.filter(|(at, _)| at.elapsed() < ROUND_TRIP_MAX_AGE)
            .map(|(_, d)| d)
    }

    /// The last round trip if it is recent, else a new measurement (one at a
    /// time; pings arriving meanwhile share it).
    pub async fn measure(&self, rest: &Rest) -> Result<Duration, RestError> {
        if let Some(d) = self.fresh() {
            return Ok(d);
        }
        let _one = self.measuring.lock().await;
        if let Some(d) = self.fresh() {
            return Ok(d);
        }
        let d = rest.ping_rest().await?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), d));
        }
        Ok(d)
    }
}

/// `/ping`. A REST failure is part of the answer, not a command failure:
/// the user asked whether Discord answers.
pub(super) async fn ping(ctx: &CommandContext, invocation: &Invocation) -> Answer {
    let gateway = ctx
        .gateway
        .latency(invocation.shard)
        .map(|d| format!("{} ms", d.as_millis()))
        .unwrap_or_else(|| "not measured yet".to_owned());
    let rest = match ctx.round_trip.measure(&ctx.rest).await {
        Ok(d) => format!("{} ms", d.as_millis()),
        Err(_) => "unreachable".to_owned(),
    };
    Answer::public(format!(
        "Pong! Gateway heartbeat {gateway}, REST round trip {rest}."
    ))
}
