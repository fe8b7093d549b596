//! Discord-style REST rate limits: a fixed-window bucket per route template and major
//! parameter (channel, guild, webhook), and a global per-second limit that interaction and
//! webhook routes are exempt from. Every response carries the `x-ratelimit-*` headers
//! twilight-http reads (it reads them only when `x-ratelimit-scope` is present).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{SimConfig, rng::mix64, snowflake::wall_ms};

/// Rate-limit state of one bucket at the time of a response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketState {
    pub(crate) bucket: String,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset_after: f64,
}

impl BucketState {
    /// Unix time in seconds at which the bucket resets.
    pub(crate) fn reset_at(&self) -> f64 {
        wall_ms() as f64 / 1000.0 + self.reset_after
    }
}

/// The verdict for one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Allowed(BucketState),
    Limited {
        state: BucketState,
        retry_after: f64,
        global: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    used: u32,
}

impl Window {
    fn current(&mut self, now: Instant, length: Duration) -> &mut Self {
        if now.duration_since(self.start) >= length {
            self.start = now;
            self.used = 0;
        }
        self
    }

    fn reset_after(&self, now: Instant, length: Duration) -> f64 {
        (length.saturating_sub(now.duration_since(self.start))).as_secs_f64()
    }
}

/// All buckets.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    bucket_limit: u32,
    window: Duration,
    global_limit: u32,
    global: Window,
    buckets: HashMap<(String, String), Window>,
}

/// The bucket hash Discord would send for a route template.
pub(crate) fn bucket_hash(route: &str) -> String {
    let hash = route.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    format!("{:016x}", mix64(hash))
}

impl RateLimiter {
    pub(crate) fn new(config: &SimConfig) -> Self {
        Self {
            bucket_limit: config.rest_bucket_limit,
            window: config.rest_bucket_window,
            global_limit: config.rest_global_limit,
            global: Window {
                start: Instant::now(),
                used: 0,
            },
            buckets: HashMap::new(),
        }
    }

    /// The bucket's state without spending a request (for answers that bypass limits).
    pub(crate) fn peek(&mut self, route: &str, major: &str) -> BucketState {
        let now = Instant::now();
        let (limit, window) = (self.bucket_limit, self.window);
        let entry = self
            .buckets
            .entry((route.to_owned(), major.to_owned()))
            .or_insert(Window {
                start: now,
                used: 0,
            })
            .current(now, window);
        BucketState {
            bucket: bucket_hash(route),
            limit,
            remaining: limit.saturating_sub(entry.used),
            reset_after: entry.reset_after(now, window),
        }
    }

    /// Spends one request from the global limit (unless exempt) and the route's bucket.
    pub(crate) fn check(&mut self, route: &str, major: &str, exempt_global: bool) -> Verdict {
        let now = Instant::now();
        if self.buckets.len() > 100_000 {
            let window = self.window;
            self.buckets
                .retain(|_, w| now.duration_since(w.start) < window);
        }
        let state = self.peek(route, major);
        if !exempt_global {
            let second = Duration::from_secs(1);
            let global = self.global.current(now, second);
            if global.used >= self.global_limit {
                let retry_after = global.reset_after(now, second);
                return Verdict::Limited {
                    state,
                    retry_after,
                    global: true,
                };
            }
        }
        if state.remaining == 0 {
            let retry_after = state.reset_after;
            return Verdict::Limited {
                state,
                retry_after,
                global: false,
            };
        }
        if !exempt_global {
            self.global.used += 1;
        }
        if let Some(window) = self.buckets.get_mut(&(route.to_owned(), major.to_owned())) {
            window.used += 1;
        }
        Verdict::Allowed(BucketState {
            remaining: state.remaining - 1,
            ..state
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{RateLimiter, Verdict};
    use crate::SimConfig;

    #[test]
    fn bucket_runs_out_per_major_parameter() {
        let config = SimConfig {
            rest_bucket_limit: 2,
            ..SimConfig::default()
        };
        let mut limiter = RateLimiter::new(&config);
        let route = "/api/v10/channels/{channel_id}/messages";
        assert!(matches!(
            limiter.check(route, "1", false),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            limiter.check(route, "1", false),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            limiter.check(route, "1", false),
            Verdict::Limited { global: false, .. }
        ));
        assert!(matches!(
            limiter.check(route, "2", false),
            Verdict::Allowed(_)
        ));
    }
}
