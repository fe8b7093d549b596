//! guildscope's REST rate limiter, in front of every request.
//!
//! twilight's limiter is a concrete actor with no hook to time how long a
//! request waited, and with it turned off twilight retries a 429 at once.
//! So requests are sent by `transport`, and this limiter decides when each
//! may go, following Discord's published rules:
//!
//! - Per-route limits. A route template and its major parameter (the channel,
//!   guild, webhook or interaction in the path) start in a bucket of their
//!   own; once a response names its `x-ratelimit-bucket`, the route uses that
//!   bucket, which several routes may share. Until a bucket's limit is known,
//!   one request at a time goes; then up to `x-ratelimit-remaining` go at
//!   once, and the rest wait for `x-ratelimit-reset-after`.
//! - The global limit: 50 requests per second for the whole bot, except on
//!   interaction and webhook-token routes (those sent without the bot token).
//! - A 429 blocks what its `x-ratelimit-scope` names (the whole bot for
//!   `global`, the bucket for `user` and `shared`) for `retry_after`.
//!
//! Every wait runs inside a `discord.ratelimit.wait` span, so a trace shows
//! it. The state sits behind a plain mutex that is never held across an
//! await; waiters sleep until their wait is over or the state changes.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use guildscope_trace::{Span, SpanContext};
use http::HeaderMap;
use tokio::{sync::Notify, time::Instant};

/// Requests per second the whole bot may send on routes the global limit
/// covers (Discord's default for bots).
const GLOBAL_LIMIT: u32 = 50;

/// The global limit's window.
const GLOBAL_WINDOW: Duration = Duration::from_secs(1);

/// Past this many buckets, those with nothing in flight and no window
/// running are forgotten (every interaction has buckets of its own).
const PRUNE_AT: usize = 4_096;

/// Added to every reset Discord announces: `reset-after` and `retry_after`
/// are rounded to the millisecond, and a request that arrives a moment
/// early is a 429, which counts against the bot's invalid-request limit.
const RESET_MARGIN: Duration = Duration::from_millis(50);

/// The longest a waiter sleeps before looking at the state again, in case
/// the request it waits on never reports back.
const MAX_NAP: Duration = Duration::from_secs(5);

/// What a request counts against: its route template and a hash of its
/// major parameter. The hash keeps webhook and interaction tokens out of
/// the limiter's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    /// The route template, e.g. `POST channels/{channel_id}/messages`.
    route: &'static str,
    /// Hash of the major parameter; 0 when the route has none.
    major: u64,
}

/// Which rate limit a 429 reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The route's bucket, for this bot (`user`).
    User,
    /// The route's bucket, for everyone using the resource (`shared`).
    Shared,
    /// Every route for this bot (`global`).
    Global,
}

impl Scope {
    /// The label logs carry.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Shared => "shared",
            Scope::Global => "global",
        }
    }
}

/// The rate-limit headers of one response.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Headers {
    /// `x-ratelimit-bucket`: Discord's id for the bucket.
    pub(crate) bucket: Option<Arc<str>>,
    /// `x-ratelimit-limit`.
    pub(crate) limit: Option<u32>,
    /// `x-ratelimit-remaining`.
    pub(crate) remaining: Option<u32>,
    /// `x-ratelimit-reset-after`.
    pub(crate) reset_after: Option<Duration>,
    /// `x-ratelimit-scope`, and `x-ratelimit-global: true` as `global`.
    pub(crate) scope: Option<Scope>,
    /// `Retry-After` (whole seconds).
    pub(crate) retry_after: Option<Duration>,
}

impl Headers {
    /// Reads the rate-limit headers; a malformed one counts as absent.
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let seconds = |name: &str| {
            text(name)
                .and_then(|value| value.trim().parse::<f64>().ok())
                .and_then(|value| Duration::try_from_secs_f64(value).ok())
        };
        let global = text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let scope = match text("x-ratelimit-scope") {
            _ if global => Some(Scope::Global),
            Some("global") => Some(Scope::Global),
            Some("shared") => Some(Scope::Shared),
            Some("user") => Some(Scope::User),
            _ => None,
        };
        Self {
            bucket: text("x-ratelimit-bucket")
                .filter(|bucket| !bucket.is_empty())
                .map(Arc::from),
            limit: text("x-ratelimit-limit").and_then(|v| v.trim().parse().ok()),
            remaining: text("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
            reset_after: seconds("x-ratelimit-reset-after"),
            scope,
            retry_after: seconds("retry-after"),
        }
    }

    /// Whether the response said nothing about rate limits.
    fn is_empty(&self) -> bool {
        self.bucket.is_none()
            && self.limit.is_none()
            && self.remaining.is_none()
            && self.reset_after.is_none()
    }
}

/// A 429, as the limiter needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limited {
    /// What is limited.
    pub(crate) scope: Scope,
    /// How long to wait before trying again.
    pub(crate) retry_after: Duration,
}

/// The rate limiter shared by every clone of a [`Rest`](crate::Rest).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Buckets and the global window.
    state: Mutex<State>,
    /// Woken whenever a request completes or gives up its place.
    changed: Notify,
    /// Hashes major parameters (keyed per process).
    hasher: RandomState,
}

/// Everything the limiter knows.
#[derive(Debug)]
struct State {
    /// The Discord bucket each route was last seen in.
    routes: HashMap<&'static str, Arc<str>>,
    /// Bucket state per bucket and major parameter.
    buckets: HashMap<BucketKey, Bucket>,
    /// Start of the current global window.
    window_start: Instant,
    /// Requests sent in the current global window.
    window_used: u32,
    /// Until when a global 429 blocks every request the global limit covers.
    global_until: Option<Instant>,
}

/// A bucket's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BucketId {
    /// A route whose Discord bucket is not known yet.
    Route(&'static str),
    /// A bucket named by `x-ratelimit-bucket`.
    Discord(Arc<str>),
}

/// A bucket for one major parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    /// The bucket.
    id: BucketId,
    /// Hash of the major parameter.
    major: u64,
}

/// What is known of a bucket's limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Limit {
    /// No response said yet: one request at a time.
    #[default]
    Unknown,
    /// Responses carry no rate-limit headers: only the global limit applies.
    Unlimited,
    /// This many requests per window.
    Known(u32),
}

/// One bucket's state.
#[derive(Debug, Default)]
struct Bucket {
    /// Its limit.
    limit: Limit,
    /// Requests left in the current window, in-flight ones already taken.
    remaining: u32,
    /// When the current window ends, if one is running.
    reset_at: Option<Instant>,
    /// Requests sent and not answered yet.
    in_flight: u32,
}

impl Bucket {
    /// Starts a new window when the current one is over.
    fn refresh(&mut self, now: Instant) {
        if self.reset_at.is_some_and(|reset| reset <= now) {
            self.reset_at = None;
            if let Limit::Known(limit) = self.limit {
                self.remaining = limit;
            }
        }
    }

    /// `None` when a request may go now; otherwise until when to wait
    /// (`None` inside: until a request in flight reports back).
    fn wait(&self) -> Option<Option<Instant>> {
        match self.limit {
            Limit::Unlimited => None,
            Limit::Unknown => (self.in_flight > 0).then_some(None),
            Limit::Known(_) if self.remaining > 0 => None,
            Limit::Known(_) => Some(self.reset_at),
        }
    }
}

/// Why a request cannot go yet.
struct Wait {
    /// Until when, if known.
    until: Option<Instant>,
    /// What it waits on: `global` or `bucket` (the span's
    /// `discord.ratelimit.scope`).
    on: &'static str,
    /// The Discord bucket, when known.
    bucket: Option<Arc<str>>,
}

/// A place taken in a bucket. Report the response with
/// [`RateLimiter::complete`]; dropping it instead (no response) gives the
/// place back.
pub(crate) struct Ticket<'a> {
    /// The limiter.
    limiter: &'a RateLimiter,
    /// The route it was taken for.
    key: RouteKey,
    /// The bucket it was taken in.
    bucket: BucketKey,
    /// Whether a response was reported.
    completed: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.completed {
            let mut state = self.limiter.lock();
            if let Some(bucket) = state.buckets.get_mut(&self.bucket) {
                bucket.in_flight = bucket.in_flight.saturating_sub(1);
            }
            drop(state);
            self.limiter.changed.notify_waiters();
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                routes: HashMap::new(),
                buckets: HashMap::new(),
                window_start: Instant::now(),
                window_used: 0,
                global_until: None,
            }),
            changed: Notify::new(),
            hasher: RandomState::new(),
        }
    }
}

impl RateLimiter {
    /// The key of a request on `route` to `path` (`channels/1/messages?...`).
    pub(crate) fn key(&self, route: &'static str, path: &str) -> RouteKey {
        let path = path.split('?').next().unwrap_or_default();
        let mut segments = path.split('/');
        let major = match segments.next() {
            Some(top @ ("channels" | "guilds")) => self
                .hasher
                .hash_one((top, segments.next().unwrap_or_default())),
            // A webhook's or an interaction's token is part of its major
            // parameter.
            Some(top @ ("webhooks" | "interactions")) => self.hasher.hash_one((
                top,
                segments.next().unwrap_or_default(),
                segments.next().unwrap_or_default(),
            )),
            _ => 0,
        };
        RouteKey { route, major }
    }

    /// Waits until a request on `key` may be sent and takes its place.
    /// `global` says whether the global limit covers it. Returns the ticket
    /// and how long it waited; a wait is a `discord.ratelimit.wait` span,
    /// a child of `parent`.
    pub(crate) async fn acquire(
        &self,
        key: RouteKey,
        global: bool,
        parent: Option<SpanContext>,
    ) -> (Ticket<'_>, Duration) {
        let mut waiting: Option<(Span, Instant)> = None;
        loop {
            let mut changed = pin!(self.changed.notified());
            // Registered before the state is read, so a change in between
            // still wakes this waiter.
            changed.as_mut().enable();
            let now = Instant::now();
            let wait = match self.lock().try_take(key, global, now) {
                Ok(bucket) => {
                    let waited = waiting.map_or(Duration::ZERO, |(mut span, started)| {
                        let waited = started.elapsed();
                        span.set("discord.ratelimit.wait_ms", millis(waited));
                        waited
                    });
                    let ticket = Ticket {
                        limiter: self,
                        key,
                        bucket,
                        completed: false,
                    };
                    return (ticket, waited);
                }
                Err(wait) => wait,
            };
            let (span, _) = waiting.get_or_insert_with(|| {
                let span = match parent {
                    Some(parent) => Span::child_of(parent, "discord.ratelimit.wait"),
                    None => Span::none(),
                };
                (span, now)
            });
            span.set("discord.ratelimit.scope", wait.on);
            if let Some(bucket) = &wait.bucket {
                span.set("discord.ratelimit.bucket", bucket.to_string());
            }
            let nap = wait
                .until
                .map_or(MAX_NAP, |until| until.saturating_duration_since(now))
                .min(MAX_NAP);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = changed => {}
            }
        }
    }

    /// Reports the response to a ticket's request: learns the bucket from
    /// its headers and, for a 429, blocks what it names for `retry_after`.
    pub(crate) fn complete(
        &self,
        mut ticket: Ticket<'_>,
        headers: &Headers,
        limited: Option<Limited>,
    ) {
        ticket.completed = true;
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(bucket) = state.buckets.get_mut(&ticket.bucket) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
        }
        if let Some(id) = &headers.bucket {
            state.routes.insert(ticket.key.route, Arc::clone(id));
        }
        let key = state.bucket_key(ticket.key);
        match limited {
            Some(Limited {
                scope: Scope::Global,
                retry_after,
            }) => {
                let until = now + retry_after + RESET_MARGIN;
                state.global_until = Some(state.global_until.map_or(until, |u| u.max(until)));
            }
            Some(Limited { retry_after, .. }) => {
                let bucket = state.buckets.entry(key).or_default();
                if !matches!(bucket.limit, Limit::Known(_)) {
                    bucket.limit = Limit::Known(headers.limit.unwrap_or(1).max(1));
                }
                bucket.remaining = 0;
                let until = now + retry_after + RESET_MARGIN;
                bucket.reset_at = Some(bucket.reset_at.map_or(until, |u| u.max(until)));
            }
            None => {
                let bucket = state.buckets.entry(key).or_default();
                match (headers.limit, headers.remaining, headers.reset_after) {
                    (Some(limit), Some(remaining), Some(reset_after)) => {
                        bucket.limit = Limit::Known(limit.max(1));
                        // Requests still in flight were counted by Discord
                        // or will be: keep their places taken.
                        bucket.remaining = remaining.saturating_sub(bucket.in_flight);
                        bucket.reset_at = Some(now + reset_after + RESET_MARGIN);
                    }
                    _ if headers.is_empty() => bucket.limit = Limit::Unlimited,
                    // Partial headers: keep what was known.
                    _ => {}
                }
            }
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// The state; a poisoned lock only means a panic elsewhere mid-update
    /// of plain numbers, so the state is still used.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The bucket a route uses now.
    fn bucket_key(&self, key: RouteKey) -> BucketKey {
        let id = match self.routes.get(key.route) {
            Some(id) => BucketId::Discord(Arc::clone(id)),
            None => BucketId::Route(key.route),
        };
        BucketKey {
            id,
            major: key.major,
        }
    }

    /// Takes a place for a request on `key` if both its bucket and (when it
    /// applies) the global limit allow one now.
    fn try_take(&mut self, key: RouteKey, global: bool, now: Instant) -> Result<BucketKey, Wait> {
        let bucket_key = self.bucket_key(key);
        let discord_bucket = match &bucket_key.id {
            BucketId::Discord(id) => Some(Arc::clone(id)),
            BucketId::Route(_) => None,
        };
        if global {
            if let Some(until) = self.global_until.filter(|until| *until > now) {
                return Err(Wait {
                    until: Some(until),
                    on: "global",
                    bucket: discord_bucket,
                });
            }
            if now.duration_since(self.window_start) >= GLOBAL_WINDOW {
                self.window_start = now;
                self.window_used = 0;
            }
            if self.window_used >= GLOBAL_LIMIT {
                return Err(Wait {
                    until: Some(self.window_start + GLOBAL_WINDOW),
                    on: "global",
                    bucket: discord_bucket,
                });
            }
        }
        if !self.buckets.contains_key(&bucket_key) && self.buckets.len() >= PRUNE_AT {
            self.buckets.retain(|_, bucket| {
                bucket.in_flight > 0 || bucket.reset_at.is_some_and(|reset| reset > now)
            });
        }
        let bucket = self.buckets.entry(bucket_key.clone()).or_default();
        bucket.refresh(now);
        if let Some(until) = bucket.wait() {
            return Err(Wait {
                until,
                on: "bucket",
                bucket: discord_bucket,
            });
        }
        bucket.in_flight += 1;
        if matches!(bucket.limit, Limit::Known(_)) {
            bucket.remaining -= 1;
        }
        if global {
            self.window_used += 1;
        }
        Ok(bucket_key)
    }
}

/// A duration in (fractional) milliseconds, as spans record it.
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Headers, Limited, RESET_MARGIN, RateLimiter, Scope};
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> Headers {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Headers::parse(&map)
    }

    #[test]
    fn headers_are_read_and_malformed_ones_ignored() {
        let parsed = headers(&[
            ("x-ratelimit-bucket", "abcd"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "4"),
            ("x-ratelimit-reset-after", "1.250"),
            ("x-ratelimit-scope", "shared"),
            ("retry-after", "oops"),
        ]);
        assert_eq!(parsed.bucket.as_deref(), Some("abcd"));
        assert_eq!((parsed.limit, parsed.remaining), (Some(5), Some(4)));
        assert_eq!(parsed.reset_after, Some(Duration::from_millis(1_250)));
        assert_eq!(parsed.scope, Some(Scope::Shared));
        assert_eq!(parsed.retry_after, None);
        let global = headers(&[
            ("x-ratelimit-global", "true"),
            ("x-ratelimit-scope", "user"),
        ]);
        assert_eq!(global.scope, Some(Scope::Global));
        assert!(headers(&[]).is_empty());
    }

    #[test]
    fn major_parameters_split_buckets_and_tokens_are_not_kept() {
        let limiter = RateLimiter::default();
        let route = "POST channels/{channel_id}/messages";
        assert_eq!(
            limiter.key(route, "channels/1/messages"),
            limiter.key(route, "channels/1/messages?limit=5")
        );
        assert_ne!(
            limiter.key(route, "channels/1/messages"),
            limiter.key(route, "channels/2/messages")
        );
        let callback = "POST interactions/{interaction_id}/{interaction_token}/callback";
        assert_ne!(
            limiter.key(callback, "interactions/1/token-a/callback"),
            limiter.key(callback, "interactions/1/token-b/callback")
        );
        let debug = format!(
            "{:?}",
            limiter.key(callback, "interactions/1/token-a/callback")
        );
        assert!(!debug.contains("token-a"), "{debug}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_bucket_sends_one_request_at_a_time_then_what_discord_allows() {
        let limiter = RateLimiter::default();
        let key = limiter.key("GET guilds/{guild_id}/roles", "guilds/1/roles");
        let (first, waited) = limiter.acquire(key, true, None).await;
        assert_eq!(waited, Duration::ZERO);
        // A second request waits for the first answer, which names the limit.
        let second = async { limiter.acquire(key, true, None).await };
        let answer = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            limiter.complete(
                first,
                &headers(&[
                    ("x-ratelimit-bucket", "roles"),
                    ("x-ratelimit-limit", "2"),
                    ("x-ratelimit-remaining", "1"),
                    ("x-ratelimit-reset-after", "1"),
                ]),
                None,
            );
        };
        let ((second, waited), ()) = tokio::join!(second, answer);
        assert_eq!(waited, Duration::from_millis(30));
        // The window is used up: the third waits for the reset.
        let (third, waited) = limiter.acquire(key, true, None).await;
        assert_eq!(waited, Duration::from_secs(1) + RESET_MARGIN);
        drop((second, third));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_blocks_its_bucket_or_everything_for_retry_after() {
        let limiter = RateLimiter::default();
        let roles = limiter.key("GET guilds/{guild_id}/roles", "guilds/1/roles");
        let other = limiter.key("GET guilds/{guild_id}/roles", "guilds/2/roles");
        let (ticket, _) = limiter.acquire(roles, true, None).await;
        let limited = Limited {
            scope: Scope::User,
            retry_after: Duration::from_millis(250),
        };
        limiter.complete(ticket, &Headers::default(), Some(limited));
        let (ticket, waited) = limiter.acquire(other, true, None).await;
        assert_eq!(waited, Duration::ZERO, "another guild's bucket is free");
        drop(ticket);
        let (ticket, waited) = limiter.acquire(roles, true, None).await;
        assert_eq!(waited, Duration::from_millis(250) + RESET_MARGIN);
        let global = Limited {
            scope: Scope::Global,
            retry_after: Duration::from_millis(400),
        };
        limiter.complete(ticket, &Headers::default(), Some(global));
        let (ticket, waited) = limiter.acquire(other, true, None).await;
        assert_eq!(waited, Duration::from_millis(400) + RESET_MARGIN);
        drop(ticket);
        // Routes the global limit does not cover go on.
        let callback = limiter.key(
            "POST interactions/{interaction_id}/{interaction_token}/callback",
            "interactions/1/t/callback",
        );
        let (_ticket, waited) = limiter.acquire(callback, false, None).await;
        assert_eq!(waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_limit_spreads_requests_over_seconds() {
        let limiter = RateLimiter::default();
        let mut waits = Vec::new();
        for guild in 0..60 {
            let key = limiter.key(
                "GET guilds/{guild_id}/roles",
                &format!("guilds/{guild}/roles"),
            );
            let (ticket, waited) = limiter.acquire(key, true, None).await;
            limiter.complete(ticket, &Headers::default(), None);
            waits.push(waited);
        }
        assert!(waits[..50].iter().all(|w| w.is_zero()), "{waits:?}");
        assert_eq!(waits[50], Duration::from_secs(1));
        assert!(waits[51..].iter().all(|w| w.is_zero()), "{waits:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_ticket_gives_its_place_back() {
        let limiter = RateLimiter::default();
        let key = limiter.key("GET users/@me", "users/@me");
        let (ticket, _) = limiter.acquire(key, true, None).await;
        drop(ticket);
        let (_ticket, waited) = limiter.acquire(key, true, None).await;
        assert_eq!(waited, Duration::ZERO);
    }
}
