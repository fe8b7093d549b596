//! Simulator configuration: what the community looks like, how busy it is, and how the
//! protocol limits are set. Defaults model a small but real community and Discord's own
//! limits; tests shrink intervals and grow guilds as they need.

use std::{fmt, net::SocketAddr, time::Duration};

use crate::SimError;

/// A token in the shape of a real bot token: base64 of the bot's user id, a timestamp part
/// and an HMAC part. The simulator takes the bot's user id from the first part.
pub(crate) const DEFAULT_TOKEN: &str =
    "MTE4MDAwMDAwMDAwMDAwMDAwMA.GsImLr.Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC10b2tlbg";

/// How the simulator is set up. Build it with struct update syntax over
/// [`SimConfig::default`]:
///
/// ```
/// let config = guildscope_simulator::SimConfig {
///     guilds: 4,
///     shards: 2,
///     ..Default::default()
/// };
/// assert_eq!(config.members, 500);
/// ```
#[derive(Clone)]
pub struct SimConfig {
    /// Address of the one listener that serves the gateway (`ws://`), REST (`/api/v10`) and
    /// control (`/control`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Seed of the community and the event stream: the same seed gives the same community
    /// and (with the same `start_time_ms` and the same connections) the same events.
    pub seed: u64,
    /// Live traffic in events per second across the community (0 = quiet).
    pub rate: f64,
    /// Number of guilds.
    pub guilds: u32,
    /// Members per guild (including the bot itself and a few other bots).
    pub members: u32,
    /// Shard count recommended by `GET /gateway/bot`.
    pub shards: u32,
    /// The bot token clients must present (`Bot ` prefix optional on the gateway).
    pub token: String,
    /// Heartbeat interval announced in HELLO.
    pub heartbeat_interval: Duration,
    /// Dispatches kept per session for RESUME; a disconnected session that would need more is
    /// invalidated.
    pub replay_buffer: usize,
    /// Messages kept per channel for `GET /channels/{id}/messages` (backfill).
    pub history_per_channel: usize,
    /// Unix time in milliseconds at which the simulated clock starts. `None` follows the wall
    /// clock (realistic timestamps); a fixed value makes ids and timestamps of the history and
    /// the traffic identical across runs.
    pub start_time_ms: Option<u64>,
    /// Requests per REST rate-limit bucket (route + major parameter) per `rest_bucket_window`.
    pub rest_bucket_limit: u32,
    /// Length of a REST rate-limit bucket window.
    pub rest_bucket_window: Duration,
    /// Global REST limit per second (interaction and webhook routes are exempt).
    pub rest_global_limit: u32,
    /// `max_concurrency` reported by `GET /gateway/bot`.
    pub max_concurrency: u32,
    /// How long a session stays resumable after its connection dropped.
    pub resume_window: Duration,
    /// Deadline for the initial interaction response (Discord: 3 s).
    pub interaction_deadline: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            rate: 0.0,
            guilds: 2,
            members: 500,
            shards: 1,
            token: DEFAULT_TOKEN.to_owned(),
            heartbeat_interval: Duration::from_millis(41_250),
            replay_buffer: 200_000,
            history_per_channel: 200,
            start_time_ms: None,
            rest_bucket_limit: 50,
            rest_bucket_window: Duration::from_secs(1),
            rest_global_limit: 50,
            max_concurrency: 1,
            resume_window: Duration::from_secs(300),
            interaction_deadline: Duration::from_secs(3),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("seed", &self.seed)
            .field("rate", &self.rate)
            .field("guilds", &self.guilds)
            .field("members", &self.members)
            .field("shards", &self.shards)
            .field("token", &"[redacted]")
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("replay_buffer", &self.replay_buffer)
            .field("history_per_channel", &self.history_per_channel)
            .field("start_time_ms", &self.start_time_ms)
            .field("rest_bucket_limit", &self.rest_bucket_limit)
            .field("rest_bucket_window", &self.rest_bucket_window)
            .field("rest_global_limit", &self.rest_global_limit)
            .field("max_concurrency", &self.max_concurrency)
            .field("resume_window", &self.resume_window)
            .field("interaction_deadline", &self.interaction_deadline)
            .finish()
    }
}

impl SimConfig {
    /// Checks every field; the first bad one is reported.
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        fn bad(field: &'static str, reason: &str) -> Result<(), SimError> {
            Err(SimError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return bad("rate", "must be a finite number of events per second, >= 0");
        }
        if self.guilds == 0 || self.guilds > 10_000 {
            return bad("guilds", "must be between 1 and 10000");
        }
        if self.members < 10 || self.members > 1_000_000 {
            return bad("members", "must be between 10 and 1000000");
        }
        if self.shards == 0 || self.shards > 1024 {
            return bad("shards", "must be between 1 and 1024");
        }
        if self.token.trim().is_empty() || self.token.contains(char::is_whitespace) {
            return bad("token", "must be a non-empty token without spaces");
        }
        if self.heartbeat_interval < Duration::from_millis(10) {
            return bad("heartbeat_interval", "must be at least 10ms");
        }
        if self.replay_buffer < 16 {
            return bad("replay_buffer", "must hold at least 16 dispatches");
        }
        if self.rest_bucket_limit == 0 || self.rest_bucket_limit > u32::from(u16::MAX) {
            return bad("rest_bucket_limit", "must be between 1 and 65535");
        }
        if self.rest_bucket_window.is_zero() {
            return bad("rest_bucket_window", "must be longer than zero");
        }
        if self.rest_global_limit == 0 {
            return bad("rest_global_limit", "must be at least 1");
        }
        if self.max_concurrency == 0 || self.max_concurrency > u32::from(u16::MAX) {
            return bad("max_concurrency", "must be between 1 and 65535");
        }
        Ok(())
    }

    /// The bot's user id: decoded from the token's first part when it is base64 of a
    /// snowflake (as in real tokens), otherwise derived from the seed.
    pub(crate) fn bot_user_id(&self) -> u64 {
        let first = self.token.split('.').next().unwrap_or_default();
        decode_base64(first)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .filter(|&id| id > (1 << 22))
            .unwrap_or_else(|| {
                crate::snowflake::snowflake(
                    1_600_000_000_000 + crate::rng::mix64(self.seed) % 100_000_000_000,
                    0,
                )
            })
    }
}

/// Decodes unpadded standard or URL-safe base64; `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::SimConfig;

    #[test]
    fn default_token_names_the_bot() {
        let config = SimConfig::default();
        assert_eq!(config.bot_user_id(), 1_180_000_000_000_000_000);
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains(&config.token));
    }
}
