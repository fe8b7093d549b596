//! History backfill: fills the statistics with messages posted while the bot
//! was not listening (before it joined, or while it was down).
//!
//! For each guild it refreshes the channel list from REST (falling back to
//! what the store knows when REST refuses), then pages through each readable
//! channel's and thread's history over the window, oldest page first
//! (`after` a cursor, 100 at a time, each page newest first as Discord
//! returns it). Each page is written as idempotent
//! [`Op::InsertMessage`]s and then the channel's cursor is recorded, so a
//! rerun of the same window continues where the last one stopped, and an
//! interruption loses at most the page in flight. Channels the bot may not
//! read are skipped and counted, never fatal. Rate limits are twilight's
//! business: the [`Rest`] client waits on buckets and honours 429s.
//!
//! Like the collector, it skips system messages and (unless configured)
//! bot messages, stores a thread's messages under the thread's parent
//! channel with the thread alongside, and never sees message content.

use std::{collections::HashSet, future::Future, pin::pin, time::Duration};

use guildscope_discord::{Page, Rest, RestError, RestErrorKind};
use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId, MessageMeta};
use guildscope_store::{
    BackfillTarget, BackfillWindow, ChannelProgress, MessageRow, Op, RowCounts, Store, StoreError,
};

use crate::collector::{channel_row, keeps_message, thread_row};

/// Milliseconds between the Unix epoch and the Discord epoch (2015-01-01).
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// Attempts per page when Discord is unreachable or answers 5xx.
const ATTEMPTS: u32 = 4;

/// What to backfill and what to keep.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// The window of history.
    pub window: BackfillWindow,
    /// Only this guild; `None` is every guild the store knows.
    pub guild: Option<GuildId>,
    /// Only this channel (with its threads); `None` is every channel.
    pub channel: Option<ChannelId>,
    /// Store messages written by bot accounts too.
    pub include_bots: bool,
    /// Channels and categories whose messages are not stored.
    pub ignored_channels: Vec<ChannelId>,
    /// Messages per request, 1 to 100.
    pub page_size: u16,
}

impl BackfillConfig {
    /// Every channel of every known guild over `window`, 100 messages a page.
    pub fn new(window: BackfillWindow) -> Self {
        Self {
            window,
            guild: None,
            channel: None,
            include_bots: false,
            ignored_channels: Vec::new(),
            page_size: 100,
        }
    }
}

/// Where a guild's channel list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelSource {
    /// Refreshed from REST, then read back from the store (which also keeps
    /// threads REST no longer lists as active).
    Rest,
    /// REST refused; what the store already knew.
    Store,
}

/// What a backfill is doing, for progress output.
#[derive(Debug)]
pub enum BackfillEvent<'a> {
    /// A guild's channel list is ready.
    ChannelsListed {
        /// The guild.
        guild_id: GuildId,
        /// Channels and threads to page through.
        channels: usize,
        /// Where the list came from.
        source: ChannelSource,
        /// Why REST could not refresh it, when it could not.
        refresh_error: Option<&'a RestError>,
    },
    /// A page of history was stored.
    Page {
        /// The channel or thread.
        target: &'a BackfillTarget,
        /// Messages in the window fetched from this channel in this run.
        seen: u64,
        /// Messages of those that were new to the database.
        inserted: u64,
    },
    /// A channel's window is complete.
    ChannelDone {
        /// The channel or thread.
        target: &'a BackfillTarget,
        /// Messages in the window fetched from it in this run.
        seen: u64,
        /// Messages of those that were new to the database.
        inserted: u64,
        /// Whether an earlier run had already completed it.
        earlier: bool,
    },
    /// A channel the bot cannot read (403) or that no longer exists (404).
    ChannelSkipped {
        /// The channel or thread.
        target: &'a BackfillTarget,
        /// What Discord said.
        error: &'a RestError,
    },
}

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillSummary {
    /// Channels and threads whose window is complete (now or earlier).
    pub channels_done: u64,
    /// Channels and threads skipped because the bot cannot read them.
    pub channels_skipped: u64,
    /// Channels and threads left alone because the configuration ignores them.
    pub channels_ignored: u64,
    /// Messages in the window fetched in this run.
    pub messages_seen: u64,
    /// Messages of those that were new to the database.
    pub messages_inserted: u64,
    /// Whether the run was interrupted before finishing; a rerun of the same
    /// window continues from where it stopped.
    pub interrupted: bool,
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The database failed.
    #[error("while backfilling")]
    Store(#[source] StoreError),
    /// Discord refused a page for a reason other than access.
    #[error("while fetching the history of channel {channel_id}")]
    Rest {
        /// The channel or thread.
        channel_id: ChannelId,
        /// What Discord said.
        #[source]
        source: RestError,
    },
    /// Neither the configuration nor the database names a guild.
    #[error(
        "no guild to backfill: the database knows none yet; name one, or run the bot once so it \
         records its guilds"
    )]
    NoGuilds,
    /// The blocking task running the database calls died.
    #[error("the database task stopped unexpectedly")]
    StoreTask,
}

/// A date the user typed that is not one.
#[derive(Debug, thiserror::Error)]
pub enum DateError {
    /// Not `YYYY-MM-DD` or RFC 3339.
    #[error("expected a date like 2024-05-01 or 2024-05-01T12:00:00Z, got {0:?}")]
    Format(String),
    /// The start is not before the end.
    #[error("the start of the window must be before its end")]
    EmptyWindow,
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp
/// (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`) into Unix
/// milliseconds.
pub fn parse_date(text: &str) -> Result<i64, DateError> {
    let bad = || DateError::Format(text.to_owned());
    let text = text.trim();
    let number = |s: &str| -> Result<i64, DateError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let date = text.get(..10).ok_or_else(bad)?;
    let (year, month, day) = match date.split('-').collect::<Vec<_>>()[..] {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (number(y)?, number(m)?, number(d)?)
        }
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let rest = &text[10..];
    if rest.is_empty() {
        return Ok(ms);
    }
    let rest = rest
        .strip_prefix(['T', 't', ' '])
        .filter(|r| r.len() >= 8)
        .ok_or_else(bad)?;
    let (hour, minute, second) = match rest[..8].split(':').collect::<Vec<_>>()[..] {
        [h, m, s] if h.len() == 2 && m.len() == 2 && s.len() == 2 => {
            (number(h)?, number(m)?, number(s)?)
        }
        _ => return Err(bad()),
    };
    // 60 is a leap second; Unix time has none, so it folds into :59.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    ms += ((hour * 60 + minute) * 60 + second.min(59)) * 1_000;
    let mut rest = &rest[8..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let millis = format!("{:0<3}", &fraction[..digits.min(3)]);
        ms += number(&millis)?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        offset if offset.len() == 6 && matches!(&offset[3..4], ":") => {
            let sign = match &offset[..1] {
                "+" => 1,
                "-" => -1,
                _ => return Err(bad()),
            };
            let (h, m) = (number(&offset[1..3])?, number(&offset[4..6])?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * (h * 60 + m)
        }
        _ => return Err(bad()),
    };
    Ok(ms - offset_minutes * 60_000)
}

/// The window from `since_ms` (inclusive) to `until_ms` (exclusive; `None`
/// is "up to now"), as snowflake bounds.
pub fn window_between(since_ms: i64, until_ms: Option<i64>) -> Result<BackfillWindow, DateError> {
    if until_ms.is_some_and(|until| until <= since_ms) {
        return Err(DateError::EmptyWindow);
    }
    // An `after` of 0 is not an id; 1 is older than every real message.
    let since = snowflake_floor(since_ms).saturating_sub(1).max(1);
    Ok(BackfillWindow {
        since: MessageId::new(since),
        until: until_ms.map(|until| MessageId::new(snowflake_floor(until))),
    })
}

/// The smallest snowflake minted at `ms` (Unix milliseconds).
fn snowflake_floor(ms: i64) -> u64 {
    ((ms - DISCORD_EPOCH_MS).max(0) as u64) << 22
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The store, moved to a blocking thread for each call: the SQLite and
/// PostgreSQL clients block, and PostgreSQL's refuses to run inside the
/// async runtime at all.
struct Blocking(Option<Store>);

impl Blocking {
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, BackfillError> {
        let mut store = self.0.take().ok_or(BackfillError::StoreTask)?;
        let (store, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut store);
            (store, result)
        })
        .await
        .map_err(|_| BackfillError::StoreTask)?;
        self.0 = Some(store);
        result.map_err(BackfillError::Store)
    }
}

impl Drop for Blocking {
    /// PostgreSQL's client closes its connection by blocking, which it
    /// refuses to do on an async worker; close it on a blocking thread.
    fn drop(&mut self) {
        if let Some(store) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            drop(runtime.spawn_blocking(move || drop(store)));
        }
    }
}

/// How one channel ended.
enum Outcome {
    Done,
    Skipped,
    Interrupted,
}

/// Backfills `config.window` into `store` until done or until `shutdown`
/// resolves (then what was fetched is already committed), reporting
/// progress to `observer`.
pub async fn backfill(
    rest: &Rest,
    store: Store,
    config: &BackfillConfig,
    shutdown: impl Future<Output = ()>,
    observer: &mut dyn FnMut(&BackfillEvent<'_>),
) -> Result<BackfillSummary, BackfillError> {
    let mut store = Blocking(Some(store));
    let mut shutdown = pin!(shutdown);
    let mut summary = BackfillSummary::default();
    let guilds = match config.guild {
        Some(guild) => vec![guild],
        None => store.run(Store::known_guilds).await?,
    };
    if guilds.is_empty() {
        return Err(BackfillError::NoGuilds);
    }
    let ignored: HashSet<ChannelId> = config.ignored_channels.iter().copied().collect();
    for guild in guilds {
        let refreshed = tokio::select! {
            biased;
            () = &mut shutdown => {
                summary.interrupted = true;
                return Ok(summary);
            }
            listed = list_channels(rest, guild) => listed,
        };
        let (source, refresh_error) = match refreshed {
            Ok(ops) => {
                store.run(move |s| s.apply(&ops)).await?;
                (ChannelSource::Rest, None)
            }
            Err(error) => {
                tracing::warn!(guild_id = %guild, %error, "could not list channels over REST; using the ones the database knows");
                (ChannelSource::Store, Some(error))
            }
        };
        let targets: Vec<BackfillTarget> = store
            .run(move |s| s.backfill_targets(guild))
            .await?
            .into_iter()
            .filter(|t| {
                config
                    .channel
                    .is_none_or(|c| t.channel_id == c || t.parent_id == Some(c))
            })
            .collect();
        observer(&BackfillEvent::ChannelsListed {
            guild_id: guild,
            channels: targets.len(),
            source,
            refresh_error: refresh_error.as_ref(),
        });
        for target in &targets {
            if [
                Some(target.channel_id),
                target.parent_id,
                target.category_id,
            ]
            .into_iter()
            .flatten()
            .any(|id| ignored.contains(&id))
            {
                summary.channels_ignored += 1;
                continue;
            }
            let outcome = backfill_channel(
                rest,
                &mut store,
                config,
                target,
                &mut shutdown,
                &mut summary,
                observer,
            )
            .await?;
            match outcome {
                Outcome::Done => summary.channels_done += 1,
                Outcome::Skipped => summary.channels_skipped += 1,
                Outcome::Interrupted => {
                    summary.interrupted = true;
                    return Ok(summary);
                }
            }
        }
    }
    Ok(summary)
}

/// The guild, its channels and its active threads from REST, as store
/// writes.
async fn list_channels(rest: &Rest, guild: GuildId) -> Result<Vec<Op>, RestError> {
    let name = rest.guild_name(guild).await?;
    let channels = rest.guild_channels(guild).await?;
    let threads = rest.active_threads(guild).await?;
    Ok(std::iter::once(Op::UpsertGuild { id: guild, name })
        .chain(
            channels
                .iter()
                .filter(|c| !matches!(c.kind, ChannelKind::Private | ChannelKind::Thread))
                .map(|c| Op::UpsertChannel(channel_row(guild, c))),
        )
        .chain(threads.iter().map(|t| Op::UpsertThread(thread_row(t))))
        .collect())
}

/// Pages through one channel's window from its recorded cursor.
async fn backfill_channel(
    rest: &Rest,
    store: &mut Blocking,
    config: &BackfillConfig,
    target: &BackfillTarget,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    summary: &mut BackfillSummary,
    observer: &mut dyn FnMut(&BackfillEvent<'_>),
) -> Result<Outcome, BackfillError> {
    let window = config.window;
    let (guild, channel) = (target.guild_id, target.channel_id);
    let recorded = store
        .run(move |s| s.backfill_progress(channel, window))
        .await?;
    // A closed window, once complete, stays complete; an open one is caught
    // up from its cursor on every run.
    if recorded.is_some_and(|p| p.done) && window.until.is_some() {
        observer(&BackfillEvent::ChannelDone {
            target,
            seen: 0,
            inserted: 0,
            earlier: true,
        });
        return Ok(Outcome::Done);
    }
    let mut progress = recorded.unwrap_or(ChannelProgress {
        cursor: window.since,
        done: false,
        messages_seen: 0,
        messages_inserted: 0,
    });
    // A thread's messages are stored under its parent channel.
    let (channel_id, thread_id) = match target.parent_id {
        Some(parent) if target.kind == ChannelKind::Thread => (parent, Some(channel)),
        _ => (channel, None),
    };
    let (mut seen, mut inserted) = (0, 0);
    loop {
        let page = Page {
            before: None,
            after: Some(progress.cursor),
            limit: config.page_size,
        };
        let fetched = tokio::select! {
            biased;
            () = shutdown.as_mut() => return Ok(Outcome::Interrupted),
            fetched = fetch_page(rest, channel, page) => fetched,
        };
        let messages = match fetched {
            Ok(messages) => messages,
            Err(error) if matches!(error.status(), Some(403 | 404)) => {
                tracing::debug!(guild_id = %guild, channel_id = %channel, %error, "skipping a channel the bot cannot read");
                observer(&BackfillEvent::ChannelSkipped {
                    target,
                    error: &error,
                });
                return Ok(Outcome::Skipped);
            }
            Err(source) => {
                return Err(BackfillError::Rest {
                    channel_id: channel,
                    source,
                });
            }
        };
        let mut reached_until = messages.len() < usize::from(config.page_size);
        let mut ops = Vec::with_capacity(messages.len());
        let mut page_seen = 0;
        for message in &messages {
            if !window.contains(message.id) {
                reached_until |= message.id > progress.cursor;
                continue;
            }
            page_seen += 1;
            progress.cursor = progress.cursor.max(message.id);
            if keeps_message(message, config.include_bots) {
                ops.push(Op::InsertMessage(MessageRow {
                    id: message.id,
                    guild_id: guild,
                    channel_id,
                    thread_id,
                    author_id: message.author_id,
                    created_at_ms: message.created_at_ms,
                    keyed_hash: message.keyed_hash,
                }));
            }
        }
        progress.done = reached_until;
        progress.messages_seen += page_seen;
        let saved = progress;
        let (counts, saved) = store
            .run(move |s| {
                let counts = if ops.is_empty() {
                    RowCounts::default()
                } else {
                    s.apply(&ops)?
                };
                let saved = ChannelProgress {
                    messages_inserted: saved.messages_inserted + counts.messages,
                    ..saved
                };
                s.save_backfill_progress(guild, channel, window, &saved)?;
                Ok((counts, saved))
            })
            .await?;
        progress = saved;
        seen += page_seen;
        inserted += counts.messages;
        summary.messages_seen += page_seen;
        summary.messages_inserted += counts.messages;
        observer(&BackfillEvent::Page {
            target,
            seen,
            inserted,
        });
        if progress.done {
            tracing::debug!(guild_id = %guild, channel_id = %channel, seen, inserted, "channel backfilled");
            observer(&BackfillEvent::ChannelDone {
                target,
                seen,
                inserted,
                earlier: false,
            });
            return Ok(Outcome::Done);
        }
    }
}

/// Whether a failure may go away by itself: no response, or a 5xx.
fn is_transient(error: &RestError) -> bool {
    match error.kind() {
        RestErrorKind::Transport => true,
        RestErrorKind::Status => error.status().is_some_and(|s| s >= 500),
        _ => false,
    }
}

/// One page, retried with backoff while Discord is unreachable or failing
/// (5xx); rate limits are waited out by the client itself.
async fn fetch_page(
    rest: &Rest,
    channel: ChannelId,
    page: Page,
) -> Result<Vec<MessageMeta>, RestError> {
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match rest.channel_messages(channel, page).await {
            Err(error) if attempt < ATTEMPTS && is_transient(&error) => {
                tracing::warn!(channel_id = %channel, %error, attempt, retry_in_ms = backoff.as_millis() as u64, "history page failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_days_and_as_rfc3339() {
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("2015-01-01").unwrap(), DISCORD_EPOCH_MS);
        assert_eq!(parse_date("2024-02-29").unwrap(), 1_709_164_800_000);
        assert_eq!(
            parse_date("2024-02-29T12:30:15Z").unwrap(),
            1_709_164_800_000 + 45_015_000
        );
        assert_eq!(
            parse_date("2024-02-29t14:30:15.25+02:00").unwrap(),
            1_709_164_800_000 + 45_015_250
        );
        assert_eq!(
            parse_date("2024-02-29 07:30:15-05:00").unwrap(),
            1_709_164_800_000 + 45_015_000
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "24-01-01",
            "2024-01-01T25:00:00Z",
            "2024-01-01T12:00:00",
            "2024-01-01T12:00:00+0200",
            "yesterday",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn windows_become_snowflake_bounds() {
        let since = parse_date("2016-04-30T11:18:25.796Z").unwrap();
        let window = window_between(since, Some(since + 1)).unwrap();
        // Discord's documented example id was minted at exactly that moment.
        let example = MessageId::new(175_928_847_299_117_063);
        assert!(window.contains(example));
        assert_eq!(window.until, Some(MessageId::new(175_928_847_303_180_288)));
        assert!(
            !window_between(since, None)
                .unwrap()
                .contains(MessageId::new(1))
        );
        assert!(window_between(since, Some(since)).is_err());
        // Before the Discord epoch, every message is in.
        assert_eq!(window_between(0, None).unwrap().since, MessageId::new(1));
    }
}
