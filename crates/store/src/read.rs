//! The statistics read API: the questions a stats page, a dashboard or a
//! `/stats` command asks, answered with plain typed values.
//!
//! Every query is scoped to one guild and, where it counts messages, to a
//! half-open [`TimeWindow`]. Rules shared by both back ends:
//!
//! - Deleted messages still count as activity: a message that was posted and
//!   later deleted was still posted then. (Counts therefore never go down,
//!   which also keeps them stable when a bulk delete arrives.)
//! - A thread message counts for its parent channel (that is how it is
//!   stored).
//! - Buckets (10-minute blocks, days) are aligned to the Unix epoch in UTC,
//!   and every bucket that overlaps the window is returned, empty ones with a
//!   zero count, so a chart needs no gap filling. Only messages inside the
//!   window are counted, also in the partial first and last buckets.
//! - `members` keeps one row per member: a member who left and came back
//!   shows as a join on the day they came back and no leave.
//!
//! The module ends with [`Store::seed_synthetic`], which fills an empty
//! database with a realistic data set for `guildscope bench read`.

use guildscope_model::{ChannelId, GuildId, Snowflake, UserId};
use postgres::types::ToSql;
use rusqlite::params_from_iter;

use crate::{
    Op, Store, StoreError, StoreErrorKind, row::ChannelRow, row::MemberRow, row::ThreadRow,
};

/// Ten minutes, the width of an activity block.
pub const BLOCK_MS: i64 = 10 * 60 * 1000;
/// One day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A half-open time range `[from_ms, to_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// The first millisecond inside the window.
    pub from_ms: i64,
    /// The first millisecond after the window.
    pub to_ms: i64,
}

impl TimeWindow {
    /// `[from_ms, to_ms)`.
    pub fn new(from_ms: i64, to_ms: i64) -> Self {
        Self { from_ms, to_ms }
    }

    /// The `days` days that end at `now_ms` (exclusive).
    pub fn last_days(now_ms: i64, days: u32) -> Self {
        Self::new(now_ms - i64::from(days) * DAY_MS, now_ms)
    }

    /// The starts of the `step`-wide epoch-aligned buckets overlapping the window.
    fn buckets(self, step: i64) -> impl Iterator<Item = i64> {
        let first = self.from_ms.div_euclid(step) * step;
        // An empty window has no buckets, not the one its start falls in.
        let to = if self.to_ms > self.from_ms {
            self.to_ms
        } else {
            first
        };
        (0..)
            .map(move |i| first + i * step)
            .take_while(move |start| *start < to)
    }
}

/// Messages in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelCount {
    /// The channel (for thread messages, the thread's parent).
    pub channel_id: ChannelId,
    /// Messages posted in the window, deleted ones included.
    pub messages: u64,
}

/// Messages by one author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorCount {
    /// The author.
    pub author_id: UserId,
    /// Messages posted in the window, deleted ones included.
    pub messages: u64,
}

/// Messages in one 10-minute block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityBlock {
    /// When the block starts (Unix ms, a multiple of [`BLOCK_MS`]).
    pub start_ms: i64,
    /// Messages posted in the block (and the window).
    pub messages: u64,
}

/// Joins and leaves on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipDay {
    /// Midnight UTC starting the day (Unix ms).
    pub day_ms: i64,
    /// Members whose (latest) join falls on this day.
    pub joins: u64,
    /// Members whose (latest) leave falls on this day.
    pub leaves: u64,
}

/// A help forum and its threads in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForumThreads {
    /// The forum channel.
    pub forum_id: ChannelId,
    /// Threads in it that are neither archived nor deleted.
    pub open_threads: u64,
}

/// Which messages an activity query looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityScope {
    /// Every channel of the guild.
    Guild,
    /// One channel (thread messages included).
    Channel(ChannelId),
}

/// One query in both dialects. Every read API query takes integer
/// parameters and returns `(key, count)` pairs or one count, so one runner
/// per back end serves them all.
struct Query {
    /// What the query reads, for errors ("while reading {what}").
    what: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

// Times in PostgreSQL are TIMESTAMPTZ; parameters arrive as Unix ms and are
// converted exactly as the writes convert them, so both sides agree to the
// millisecond.

// On PostgreSQL, message counts per channel and per author come from the
// daily rollups of migration 0004 for the whole UTC days inside the window
// and from `messages` for the partial first and last day. The statements
// take the whole days `[$d1, $d2)` (Unix ms, midnights) as their last two
// parameters; when the window holds no whole day, both are `to_ms` and all
// of it is read from `messages`. SQLite statements declare fewer
// parameters and take only the leading ones (see `Store::pairs`).

/// The rows of `messages` in the parts of a window outside its whole days,
/// with `$from`/`$to` the window and `$d1`/`$d2` its whole days; `{key}` is
/// the grouping column and `{filter}` an extra condition.
macro_rules! partial_days {
    ($key:literal, $filter:literal, $d1:literal, $d2:literal) => {
        concat!(
            "SELECT ",
            $key,
            ", COUNT(*) AS n FROM messages
               WHERE ",
            $filter,
            " guild_id = $1 AND created_at >= to_timestamp($2::int8 / 1000.0)
                 AND created_at < to_timestamp(",
            $d1,
            "::int8 / 1000.0)
               GROUP BY 1
             UNION ALL
             SELECT ",
            $key,
            ", COUNT(*) FROM messages
               WHERE ",
            $filter,
            " guild_id = $1 AND created_at >= to_timestamp(",
            $d2,
            "::int8 / 1000.0)
                 AND created_at < to_timestamp($3::int8 / 1000.0)
               GROUP BY 1"
        )
    };
}

/// The UTC date of a Unix-ms parameter, for comparing with rollup days.
macro_rules! day_of {
    ($param:literal) => {
        concat!(
            "(to_timestamp(",
            $param,
            "::int8 / 1000.0) AT TIME ZONE 'UTC')::date"
        )
    };
}

// Left alone, SQLite's planner walks `messages_by_channel` to get rows
// already grouped by channel, reading every message of every channel; the
// covering guild index reads only the window (see BENCHMARKS.md).
const CHANNEL_MESSAGES: Query = Query {
    what: "messages per channel",
    sqlite: "SELECT channel_id, COUNT(*) FROM messages INDEXED BY messages_by_guild
             WHERE guild_id = ?1 AND created_at >= ?2 AND created_at < ?3
             GROUP BY channel_id ORDER BY channel_id",
    postgres: concat!(
        "SELECT channel_id, SUM(n)::int8 FROM (
           SELECT channel_id, messages AS n FROM channel_days
             WHERE guild_id = $1 AND day >= ",
        day_of!("$4"),
        " AND day < ",
        day_of!("$5"),
        "
           UNION ALL ",
        partial_days!("channel_id", "", "$4", "$5"),
        ") s GROUP BY channel_id HAVING SUM(n) > 0 ORDER BY channel_id"
    ),
};

const TOP_CHANNELS: Query = Query {
    what: "top channels",
    sqlite: "SELECT channel_id, COUNT(*) AS n FROM messages INDEXED BY messages_by_guild
             WHERE guild_id = ?1 AND created_at >= ?2 AND created_at < ?3
             GROUP BY channel_id ORDER BY n DESC, channel_id LIMIT ?4",
    postgres: concat!(
        "SELECT channel_id, SUM(n)::int8 AS total FROM (
           SELECT channel_id, messages AS n FROM channel_days
             WHERE guild_id = $1 AND day >= ",
        day_of!("$5"),
        " AND day < ",
        day_of!("$6"),
        "
           UNION ALL ",
        partial_days!("channel_id", "", "$5", "$6"),
        ") s GROUP BY channel_id HAVING SUM(n) > 0 ORDER BY total DESC, channel_id LIMIT $4"
    ),
};

const GUILD_BLOCKS: Query = Query {
    what: "guild activity",
    sqlite: "SELECT created_at / 600000 * 600000 AS b, COUNT(*) FROM messages
             WHERE guild_id = ?1 AND created_at >= ?2 AND created_at < ?3
             GROUP BY b ORDER BY b",
    postgres: "SELECT (extract(epoch FROM b) * 1000)::int8, n FROM (
                 SELECT date_bin('10 minutes', created_at, TIMESTAMPTZ 'epoch') AS b, COUNT(*) AS n
                 FROM messages
                 WHERE guild_id = $1 AND created_at >= to_timestamp($2::int8 / 1000.0)
                   AND created_at < to_timestamp($3::int8 / 1000.0)
                 GROUP BY 1) s ORDER BY 1",
};

const CHANNEL_BLOCKS: Query = Query {
    what: "channel activity",
    sqlite: "SELECT created_at / 600000 * 600000 AS b, COUNT(*) FROM messages
             WHERE channel_id = ?4 AND created_at >= ?2 AND created_at < ?3 AND guild_id = ?1
             GROUP BY b ORDER BY b",
    postgres: "SELECT (extract(epoch FROM b) * 1000)::int8, n FROM (
                 SELECT date_bin('10 minutes', created_at, TIMESTAMPTZ 'epoch') AS b, COUNT(*) AS n
                 FROM messages
                 WHERE channel_id = $4 AND created_at >= to_timestamp($2::int8 / 1000.0)
                   AND created_at < to_timestamp($3::int8 / 1000.0) AND guild_id = $1
                 GROUP BY 1) s ORDER BY 1",
};

const TOP_AUTHORS: Query = Query {
    what: "top authors",
    sqlite: "SELECT author_id, COUNT(*) AS n FROM messages
             WHERE guild_id = ?1 AND created_at >= ?2 AND created_at < ?3
             GROUP BY author_id ORDER BY n DESC, author_id LIMIT ?4",
    // Every author's count from the rollups: exact but reads every author
    // day of the window, so `top_authors` tries a few candidates first.
    postgres: concat!(
        "SELECT author_id, SUM(n)::int8 AS total FROM (
           SELECT author_id, messages AS n FROM author_days
             WHERE guild_id = $1 AND day >= ",
        day_of!("$5"),
        " AND day < ",
        day_of!("$6"),
        "
           UNION ALL ",
        partial_days!("author_id", "", "$5", "$6"),
        ") s GROUP BY author_id HAVING SUM(n) > 0 ORDER BY total DESC, author_id LIMIT $4"
    ),
};

/// The authors with the largest all-time totals in a guild (PostgreSQL):
/// no other author of the guild has more messages in any window than the
/// last one returned.
const POSTGRES_AUTHOR_CANDIDATES: &str = "SELECT author_id, messages FROM author_totals
     WHERE guild_id = $1 ORDER BY messages DESC, author_id LIMIT $2";

/// The exact counts in the window of the authors in the array `$4`
/// (PostgreSQL), whole days `[$5, $6)` from the rollups.
const POSTGRES_CANDIDATE_COUNTS: &str = concat!(
    "SELECT author_id, SUM(n)::int8 FROM (
       SELECT author_id, messages AS n FROM author_days
         WHERE guild_id = $1 AND author_id = ANY($4::int8[])
           AND day >= ",
    day_of!("$5"),
    " AND day < ",
    day_of!("$6"),
    "
       UNION ALL ",
    partial_days!("author_id", "author_id = ANY($4::int8[]) AND", "$5", "$6"),
    ") s GROUP BY author_id HAVING SUM(n) > 0"
);

const AUTHOR_MESSAGES: Query = Query {
    what: "an author's messages",
    sqlite: "SELECT COUNT(*) FROM messages
             WHERE author_id = ?4 AND created_at >= ?2 AND created_at < ?3 AND guild_id = ?1",
    postgres: concat!(
        "SELECT COALESCE(SUM(n), 0)::int8 FROM (
           SELECT author_id, messages AS n FROM author_days
             WHERE guild_id = $1 AND author_id = $4
               AND day >= ",
        day_of!("$5"),
        " AND day < ",
        day_of!("$6"),
        "
           UNION ALL ",
        partial_days!("author_id", "author_id = $4 AND", "$5", "$6"),
        ") s"
    ),
};

/// Rebuilds the PostgreSQL rollups from `messages`, as migration 0004's
/// backfill does; for bulk loads that bypass the write path.
const POSTGRES_REBUILD_ROLLUPS: &str = "
    TRUNCATE channel_days, author_days, author_totals;
    INSERT INTO channel_days (guild_id, day, channel_id, messages)
        SELECT guild_id, (created_at AT TIME ZONE 'UTC')::date, channel_id, COUNT(*)
        FROM messages GROUP BY 1, 2, 3;
    INSERT INTO author_days (guild_id, author_id, day, messages)
        SELECT guild_id, author_id, (created_at AT TIME ZONE 'UTC')::date, COUNT(*)
        FROM messages GROUP BY 1, 2, 3;
    INSERT INTO author_totals (guild_id, author_id, messages)
        SELECT guild_id, author_id, SUM(messages) FROM author_days GROUP BY 1, 2;";

const JOINS_PER_DAY: Query = Query {
    what: "joins per day",
    sqlite: "SELECT joined_at / 86400000 * 86400000 AS d, COUNT(*) FROM members
             WHERE guild_id = ?1 AND joined_at >= ?2 AND joined_at < ?3
             GROUP BY d ORDER BY d",
    postgres: "SELECT (extract(epoch FROM d) * 1000)::int8, n FROM (
                 SELECT date_bin('1 day', joined_at, TIMESTAMPTZ 'epoch') AS d, COUNT(*) AS n
                 FROM members
                 WHERE guild_id = $1 AND joined_at >= to_timestamp($2::int8 / 1000.0)
                   AND joined_at < to_timestamp($3::int8 / 1000.0)
                 GROUP BY 1) s ORDER BY 1",
};

const LEAVES_PER_DAY: Query = Query {
    what: "leaves per day",
    sqlite: "SELECT left_at / 86400000 * 86400000 AS d, COUNT(*) FROM members
             WHERE guild_id = ?1 AND left_at >= ?2 AND left_at < ?3
             GROUP BY d ORDER BY d",
    postgres: "SELECT (extract(epoch FROM d) * 1000)::int8, n FROM (
                 SELECT date_bin('1 day', left_at, TIMESTAMPTZ 'epoch') AS d, COUNT(*) AS n
                 FROM members
                 WHERE guild_id = $1 AND left_at >= to_timestamp($2::int8 / 1000.0)
                   AND left_at < to_timestamp($3::int8 / 1000.0)
                 GROUP BY 1) s ORDER BY 1",
};

const FORUM_THREADS: Query = Query {
    what: "forum threads in use",
    sqlite: "SELECT c.id, COUNT(t.id) FROM channels c
             LEFT JOIN threads t ON t.parent_id = c.id AND t.archived = 0 AND t.is_deleted = 0
             WHERE c.guild_id = ?1 AND c.kind = 'forum' AND c.is_deleted = 0
             GROUP BY c.id ORDER BY c.id",
    postgres: "SELECT c.id, COUNT(t.id) FROM channels c
               LEFT JOIN threads t ON t.parent_id = c.id AND NOT t.archived AND NOT t.is_deleted
               WHERE c.guild_id = $1 AND c.kind = 'forum' AND NOT c.is_deleted
               GROUP BY c.id ORDER BY c.id",
};

const MEMBER_COUNT: Query = Query {
    what: "members",
    sqlite: "SELECT COUNT(*) FROM members WHERE guild_id = ?1 AND in_guild = 1",
    postgres: "SELECT COUNT(*) FROM members WHERE guild_id = $1 AND in_guild",
};

const CHANNEL_COUNT: Query = Query {
    what: "channels",
    sqlite: "SELECT COUNT(*) FROM channels WHERE guild_id = ?1 AND is_deleted = 0",
    postgres: "SELECT COUNT(*) FROM channels WHERE guild_id = $1 AND NOT is_deleted",
};

const STORED_MESSAGES: Query = Query {
    what: "stored messages",
    sqlite: "SELECT COUNT(*) FROM messages",
    postgres: "SELECT COUNT(*) FROM messages",
};

fn raw(id: impl Snowflake) -> i64 {
    id.get() as i64
}

/// Counts come back as `i64`; a negative count cannot happen.
fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// The first `n` of `params`: SQLite statements declare only the leading
/// parameters (the whole-day bounds are for PostgreSQL's rollups).
fn leading(params: &[i64], n: usize) -> &[i64] {
    &params[..n.min(params.len())]
}

/// The whole UTC days inside `window`, as `[first midnight, last midnight)`
/// in Unix ms; `(to_ms, to_ms)` when it holds none, so that the rollups give
/// nothing and `messages` gives the whole window.
fn whole_days(window: TimeWindow) -> (i64, i64) {
    let first = window
        .from_ms
        .div_euclid(DAY_MS)
        .saturating_add(i64::from(window.from_ms.rem_euclid(DAY_MS) != 0))
        .saturating_mul(DAY_MS);
    let last = window.to_ms.div_euclid(DAY_MS).saturating_mul(DAY_MS);
    if first < last {
        (first, last)
    } else {
        (window.to_ms, window.to_ms)
    }
}

/// Every bucket overlapping `window`, with the counts found and zeros
/// elsewhere. `found` is sorted by bucket start.
fn fill(window: TimeWindow, step: i64, found: &[(i64, i64)]) -> Vec<(i64, u64)> {
    let mut found = found.iter().peekable();
    window
        .buckets(step)
        .map(|start| {
            let mut n = 0;
            while let Some((at, c)) = found.next_if(|(at, _)| *at <= start) {
                if *at == start {
                    n += count(*c);
                }
            }
            (start, n)
        })
        .collect()
}

impl Store {
    /// Runs `query` and returns its `(key, count)` rows.
    fn pairs(&mut self, query: &Query, params: &[i64]) -> Result<Vec<(i64, i64)>, StoreError> {
        let step = format!("while reading {}", query.what);
        match self {
            Self::Sqlite(s) => {
                let read = || -> rusqlite::Result<Vec<(i64, i64)>> {
                    let mut stmt = s.conn.prepare_cached(query.sqlite)?;
                    let params = leading(params, stmt.parameter_count());
                    let rows = stmt.query_map(params_from_iter(params), |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?;
                    rows.collect()
                };
                read().map_err(|e| StoreError::new(StoreErrorKind::Query, &s.name, step, e))
            }
            Self::Postgres(s) => {
                let args: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                s.client
                    .query(query.postgres, &args)
                    .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
                    .map_err(|e| StoreError::new(StoreErrorKind::Query, &s.name, step, e))
            }
        }
    }

    /// Runs `query` and returns its single count.
    fn scalar(&mut self, query: &Query, params: &[i64]) -> Result<u64, StoreError> {
        let step = format!("while reading {}", query.what);
        let n: i64 = match self {
            Self::Sqlite(s) => s
                .conn
                .prepare_cached(query.sqlite)
                .and_then(|mut stmt| {
                    let params = leading(params, stmt.parameter_count());
                    stmt.query_row(params_from_iter(params), |row| row.get(0))
                })
                .map_err(|e| StoreError::new(StoreErrorKind::Query, &s.name, step, e))?,
            Self::Postgres(s) => {
                let args: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                s.client
                    .query_one(query.postgres, &args)
                    .map(|row| row.get(0))
                    .map_err(|e| StoreError::new(StoreErrorKind::Query, &s.name, step, e))?
            }
        };
        Ok(count(n))
    }

    /// Messages per channel in `window`, for every channel that had any,
    /// ordered by channel id.
    pub fn channel_messages(
        &mut self,
        guild_id: GuildId,
        window: TimeWindow,
    ) -> Result<Vec<ChannelCount>, StoreError> {
        let (d1, d2) = whole_days(window);
        let rows = self.pairs(
            &CHANNEL_MESSAGES,
            &[raw(guild_id), window.from_ms, window.to_ms, d1, d2],
        )?;
        Ok(rows.into_iter().map(channel_count).collect())
    }

    /// The `limit` busiest channels in `window`, busiest first (ties by
    /// channel id).
    pub fn top_channels(
        &mut self,
        guild_id: GuildId,
        window: TimeWindow,
        limit: u32,
    ) -> Result<Vec<ChannelCount>, StoreError> {
        let (d1, d2) = whole_days(window);
        let rows = self.pairs(
            &TOP_CHANNELS,
            &[
                raw(guild_id),
                window.from_ms,
                window.to_ms,
                i64::from(limit),
                d1,
                d2,
            ],
        )?;
        Ok(rows.into_iter().map(channel_count).collect())
    }

    /// Messages per 10-minute block over `window`, every block included.
    pub fn activity_blocks(
        &mut self,
        guild_id: GuildId,
        scope: ActivityScope,
        window: TimeWindow,
    ) -> Result<Vec<ActivityBlock>, StoreError> {
        let rows = match scope {
            ActivityScope::Guild => self.pairs(
                &GUILD_BLOCKS,
                &[raw(guild_id), window.from_ms, window.to_ms],
            )?,
            ActivityScope::Channel(channel) => self.pairs(
                &CHANNEL_BLOCKS,
                &[raw(guild_id), window.from_ms, window.to_ms, raw(channel)],
            )?,
        };
        Ok(fill(window, BLOCK_MS, &rows)
            .into_iter()
            .map(|(start_ms, messages)| ActivityBlock { start_ms, messages })
            .collect())
    }

    /// The `limit` most active authors in `window` (typically
    /// [`TimeWindow::last_days`]), most active first (ties by user id).
    pub fn top_authors(
        &mut self,
        guild_id: GuildId,
        window: TimeWindow,
        limit: u32,
    ) -> Result<Vec<AuthorCount>, StoreError> {
        let (d1, d2) = whole_days(window);
        let params = [
            raw(guild_id),
            window.from_ms,
            window.to_ms,
            i64::from(limit),
            d1,
            d2,
        ];
        let rows = match self {
            // Reading every author day of a long window is too slow for
            // a large guild; a few candidates usually settle it.
            Self::Postgres(s) if d2 - d1 >= CANDIDATES_FROM_DAYS * DAY_MS => {
                match top_authors_from_candidates(s, &params, limit)? {
                    Some(rows) => rows,
                    None => self.pairs(&TOP_AUTHORS, &params)?,
                }
            }
            _ => self.pairs(&TOP_AUTHORS, &params)?,
        };
        Ok(rows
            .into_iter()
            .map(|(author, n)| AuthorCount {
                author_id: UserId::new(author as u64),
                messages: count(n),
            })
            .collect())
    }

    /// How many messages one author posted in the guild in `window`
    /// (`/stats me`).
    pub fn author_messages(
        &mut self,
        guild_id: GuildId,
        author_id: UserId,
        window: TimeWindow,
    ) -> Result<u64, StoreError> {
        let (d1, d2) = whole_days(window);
        self.scalar(
            &AUTHOR_MESSAGES,
            &[
                raw(guild_id),
                window.from_ms,
                window.to_ms,
                raw(author_id),
                d1,
                d2,
            ],
        )
    }

    /// Joins and leaves per UTC day over `window`, every day included.
    pub fn membership_per_day(
        &mut self,
        guild_id: GuildId,
        window: TimeWindow,
    ) -> Result<Vec<MembershipDay>, StoreError> {
        let params = [raw(guild_id), window.from_ms, window.to_ms];
        let joins = fill(window, DAY_MS, &self.pairs(&JOINS_PER_DAY, &params)?);
        let leaves = fill(window, DAY_MS, &self.pairs(&LEAVES_PER_DAY, &params)?);
        Ok(joins
            .into_iter()
            .zip(leaves)
            .map(|((day_ms, joins), (_, leaves))| MembershipDay {
                day_ms,
                joins,
                leaves,
            })
            .collect())
    }

    /// Help forums (forum channels that are not deleted) and their threads in
    /// use (neither archived nor deleted), ordered by forum id; a forum with
    /// none is listed with zero.
    pub fn forum_threads_in_use(
        &mut self,
        guild_id: GuildId,
    ) -> Result<Vec<ForumThreads>, StoreError> {
        let rows = self.pairs(&FORUM_THREADS, &[raw(guild_id)])?;
        Ok(rows
            .into_iter()
            .map(|(forum, n)| ForumThreads {
                forum_id: ChannelId::new(forum as u64),
                open_threads: count(n),
            })
            .collect())
    }

    /// Members currently in the guild (bots and pending members included).
    pub fn member_count(&mut self, guild_id: GuildId) -> Result<u64, StoreError> {
        self.scalar(&MEMBER_COUNT, &[raw(guild_id)])
    }

    /// Channels (categories, forums and the rest; not threads) the guild has
    /// now.
    pub fn channel_count(&mut self, guild_id: GuildId) -> Result<u64, StoreError> {
        self.scalar(&CHANNEL_COUNT, &[raw(guild_id)])
    }

    /// Messages stored in all, deleted ones included.
    pub fn stored_messages(&mut self) -> Result<u64, StoreError> {
        self.scalar(&STORED_MESSAGES, &[])
    }
}

/// Windows with at least this many whole days try candidates for top
/// authors; shorter ones read every author's count directly (cheap enough).
const CANDIDATES_FROM_DAYS: i64 = 2;
/// The most candidates tried before reading every author's count.
const MAX_CANDIDATES: i64 = 4096;

/// Top authors on PostgreSQL without reading every author day of the
/// window: takes the authors with the largest all-time totals as
/// candidates and counts their messages in the window exactly. An author
/// outside the candidates has at most the smallest candidate total in any
/// window, so once the `limit`-th best count beats that bound (strictly, as
/// ties go to the smaller id) the answer is exact. Otherwise it tries four
/// times as many candidates, and gives up (`None`) past [`MAX_CANDIDATES`].
/// `params` are those of [`TOP_AUTHORS`].
fn top_authors_from_candidates(
    s: &mut crate::PostgresStore,
    params: &[i64; 6],
    limit: u32,
) -> Result<Option<Vec<(i64, i64)>>, StoreError> {
    let [guild, from, to, _, d1, d2] = *params;
    let limit = limit as usize;
    if limit == 0 {
        return Ok(Some(Vec::new()));
    }
    let name = s.name.clone();
    let err = |e| StoreError::new(StoreErrorKind::Query, &name, "while reading top authors", e);
    let mut wanted = (limit as i64 * 8).max(64);
    while wanted <= MAX_CANDIDATES {
        let candidates: Vec<(i64, i64)> = s
            .client
            .query(POSTGRES_AUTHOR_CANDIDATES, &[&guild, &wanted])
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let ids: Vec<i64> = candidates.iter().map(|(id, _)| *id).collect();
        let mut counted: Vec<(i64, i64)> = s
            .client
            .query(
                POSTGRES_CANDIDATE_COUNTS,
                &[&guild, &from, &to, &ids, &d1, &d2],
            )
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counted.truncate(limit);
        let every_author = (candidates.len() as i64) < wanted;
        let bound = candidates.last().map_or(0, |(_, total)| *total);
        let settled = counted.len() == limit && counted[limit - 1].1 > bound;
        if every_author || settled {
            return Ok(Some(counted));
        }
        wanted *= 4;
    }
    Ok(None)
}

fn channel_count((channel, n): (i64, i64)) -> ChannelCount {
    ChannelCount {
        channel_id: ChannelId::new(channel as u64),
        messages: count(n),
    }
}

/// The shape of the synthetic community [`Store::seed_synthetic`] writes.
///
/// Three guilds share 300 channels (every 25th a help forum with threads)
/// and 60,000 authors. Channels and authors are drawn with a strong skew
/// (a few channels and authors carry most of the traffic), and the first
/// guild gets most channels, as in a real deployment where one community
/// dominates. Messages are spread evenly over `days` days ending at `end_ms`,
/// in id order; 2% are flagged deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Message rows to write.
    pub messages: u64,
    /// The end of the time span (exclusive, Unix ms).
    pub end_ms: i64,
    /// The length of the span in days.
    pub days: u32,
}

impl SyntheticSpec {
    /// The guilds, largest first.
    pub const GUILDS: [GuildId; 3] = [GuildId::new(1001), GuildId::new(1002), GuildId::new(1003)];
    /// Channels across all guilds.
    pub const CHANNELS: i64 = 300;
    /// Distinct authors.
    pub const AUTHORS: i64 = 60_000;
    /// Threads across all forums.
    pub const THREADS: i64 = 3_000;

    /// The channel at `index` (0 is the busiest).
    pub fn channel(index: i64) -> ChannelId {
        ChannelId::new((10_000 + index) as u64)
    }

    /// The author at `index` (0 is the most active).
    pub fn author(index: i64) -> UserId {
        UserId::new((1_000_000 + index) as u64)
    }

    /// The guild a channel index belongs to.
    fn guild_index(channel: i64) -> usize {
        match channel {
            0..180 => 0,
            180..270 => 1,
            _ => 2,
        }
    }
}

/// A small deterministic generator (SplitMix64), so a seeded SQLite file is
/// the same on every run without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Store {
    /// Fills the database with the community described by `spec`, unless it
    /// already holds at least `spec.messages` messages. Returns the messages
    /// written (0 when it was already seeded). For benchmarks: channels,
    /// threads and members go through [`Store::apply`]; messages are bulk
    /// loaded (PostgreSQL: `generate_series` in chunks; SQLite: one
    /// transaction and one prepared statement).
    pub fn seed_synthetic(&mut self, spec: SyntheticSpec) -> Result<u64, StoreError> {
        let present = self.stored_messages()?;
        if present >= spec.messages {
            return Ok(0);
        }
        let start_ms = spec.end_ms - i64::from(spec.days) * DAY_MS;
        self.apply(&community_ops(spec, start_ms))?;
        match self {
            Self::Sqlite(s) => seed_sqlite_messages(s, spec, start_ms, present)?,
            Self::Postgres(s) => seed_postgres_messages(s, spec, start_ms, present)?,
        }
        Ok(spec.messages - present)
    }
}

/// Channels, forum threads and members of the synthetic community.
fn community_ops(spec: SyntheticSpec, start_ms: i64) -> Vec<Op> {
    use guildscope_model::ChannelKind;
    let mut ops = Vec::new();
    for (i, guild) in SyntheticSpec::GUILDS.iter().enumerate() {
        ops.push(Op::UpsertGuild {
            id: *guild,
            name: format!("synthetic-{i}"),
        });
    }
    for c in 0..SyntheticSpec::CHANNELS {
        ops.push(Op::UpsertChannel(ChannelRow {
            id: SyntheticSpec::channel(c),
            guild_id: SyntheticSpec::GUILDS[SyntheticSpec::guild_index(c)],
            name: format!("channel-{c}"),
            kind: if c % 25 == 0 {
                ChannelKind::Forum
            } else {
                ChannelKind::Text
            },
            category_id: None,
        }));
    }
    for t in 0..SyntheticSpec::THREADS {
        let forum = (t % (SyntheticSpec::CHANNELS / 25)) * 25;
        ops.push(Op::UpsertThread(ThreadRow {
            id: ChannelId::new((100_000 + t) as u64),
            guild_id: SyntheticSpec::GUILDS[SyntheticSpec::guild_index(forum)],
            parent_id: Some(SyntheticSpec::channel(forum)),
            name: format!("help-{t}"),
            archived: t % 5 != 0,
            locked: false,
            created_at_ms: Some(start_ms + t * (spec.end_ms - start_ms) / SyntheticSpec::THREADS),
        }));
    }
    let span_days = i64::from(spec.days).max(1) * 2;
    // Leaves after all joins: the PostgreSQL back end writes each run of
    // same-kind ops in one statement.
    let mut leaves = Vec::new();
    for a in 0..SyntheticSpec::AUTHORS {
        let guild_id = SyntheticSpec::GUILDS[(a % 3) as usize];
        // Joins spread over twice the message span, so some fall inside it.
        let joined = spec.end_ms - (a * 7_919 % span_days) * DAY_MS - (a * 104_729 % DAY_MS);
        ops.push(Op::UpsertMember(MemberRow {
            guild_id,
            user_id: SyntheticSpec::author(a),
            name: format!("user-{a}"),
            is_bot: false,
            is_staff: a < 20,
            pending: false,
            joined_at_ms: Some(joined),
        }));
        let left = joined + (a % 20 + 1) * DAY_MS;
        if a % 10 == 3 && left < spec.end_ms {
            leaves.push(Op::MemberLeft {
                guild_id,
                user_id: SyntheticSpec::author(a),
                at_ms: left,
            });
        }
    }
    ops.extend(leaves);
    ops
}

fn seed_sqlite_messages(
    s: &mut crate::SqliteStore,
    spec: SyntheticSpec,
    start_ms: i64,
    present: u64,
) -> Result<(), StoreError> {
    let name = s.name.clone();
    let err = |e| StoreError::new(StoreErrorKind::Query, &name, "while seeding messages", e);
    let span = spec.end_ms - start_ms;
    let n = spec.messages as i64;
    let tx = s.conn.transaction().map_err(err)?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO messages (id, guild_id, channel_id, author_id, created_at, is_deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
            )
            .map_err(err)?;
        let mut rng = SplitMix(42 ^ present);
        for i in present as i64..n {
            let r = rng.unit();
            let channel = ((SyntheticSpec::CHANNELS as f64) * r * r) as i64;
            let r = rng.unit();
            let author = ((SyntheticSpec::AUTHORS as f64) * r * r * r) as i64;
            let deleted = rng.unit() < 0.02;
            let guild = SyntheticSpec::GUILDS[SyntheticSpec::guild_index(channel)];
            insert
                .execute(rusqlite::params![
                    i + 1,
                    raw(guild),
                    raw(SyntheticSpec::channel(channel)),
                    raw(SyntheticSpec::author(author)),
                    start_ms + (i as i128 * span as i128 / n as i128) as i64,
                    deleted,
                ])
                .map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    s.conn.execute_batch("ANALYZE").map_err(err)
}

fn seed_postgres_messages(
    s: &mut crate::PostgresStore,
    spec: SyntheticSpec,
    start_ms: i64,
    present: u64,
) -> Result<(), StoreError> {
    let name = s.name.clone();
    let err = |e| StoreError::new(StoreErrorKind::Query, &name, "while seeding messages", e);
    let span = spec.end_ms - start_ms;
    let n = spec.messages as i64;
    s.client
        .batch_execute("SET synchronous_commit = off; SELECT setseed(0.42)")
        .map_err(err)?;
    // Chunks of a million keep each statement's memory small and show progress.
    let chunk = 1_000_000;
    let mut from = present as i64 + 1;
    while from <= n {
        let to = (from + chunk - 1).min(n);
        s.client
            .execute(
                "INSERT INTO messages (id, guild_id, channel_id, author_id, created_at, is_deleted)
                 SELECT i, CASE WHEN c < 180 THEN $5::int8 WHEN c < 270 THEN $6::int8 ELSE $7::int8 END,
                        10000 + c, 1000000 + a,
                        to_timestamp(($3::int8 + (i - 1) * $4::int8 / $8::int8) / 1000.0),
                        random() < 0.02
                 FROM (SELECT i, floor(300 * random() ^ 2)::int8 AS c,
                              floor(60000 * random() ^ 3)::int8 AS a
                       FROM generate_series($1::int8, $2::int8) AS i) s
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &from,
                    &to,
                    &start_ms,
                    &span,
                    &raw(SyntheticSpec::GUILDS[0]),
                    &raw(SyntheticSpec::GUILDS[1]),
                    &raw(SyntheticSpec::GUILDS[2]),
                    &n,
                ],
            )
            .map_err(err)?;
        tracing::info!(rows = to, of = n, "seeded messages");
        from = to + 1;
    }
    // Index-only scans need the visibility map; a fresh bulk load has none yet.
    // VACUUM refuses to run in the implicit transaction of a multi-statement
    // batch, so one statement at a time.
    s.client
        .batch_execute(POSTGRES_REBUILD_ROLLUPS)
        .map_err(err)?;
    for sql in [
        "VACUUM ANALYZE messages",
        "VACUUM ANALYZE channel_days",
        "VACUUM ANALYZE author_days",
        "VACUUM ANALYZE author_totals",
        "VACUUM ANALYZE members",
        "SET synchronous_commit = on",
    ] {
        s.client.batch_execute(sql).map_err(err)?;
    }
    Ok(())
}

/// What [`create_postgres_database`] does when the database exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingDatabase {
    /// Drop it and start empty.
    Recreate,
    /// Keep it and its contents.
    Keep,
}

/// Creates the PostgreSQL database `name` through the server at `admin_url`
/// (any database the user may connect to) and returns the URL of the new
/// database. For benchmarks, which want a database of their own.
pub fn create_postgres_database(
    admin_url: &str,
    name: &str,
    existing: ExistingDatabase,
) -> Result<String, StoreError> {
    let shown = crate::postgres::redact_url(admin_url);
    let err = |step: &str, e: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::new(StoreErrorKind::Open, &shown, step, e)
    };
    // The name is spliced into DDL, so it must be a plain identifier.
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(err(
            "while checking the database name",
            format!("{name:?} is not a plain lowercase identifier").into(),
        ));
    }
    let mut client = postgres::Client::connect(admin_url, postgres::NoTls)
        .map_err(|e| err("while connecting", e.into()))?;
    if existing == ExistingDatabase::Recreate {
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .map_err(|e| err("while dropping the old database", e.into()))?;
    }
    let present = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .map(|row| row.get::<_, bool>(0))
        .map_err(|e| err("while looking for the database", e.into()))?;
    if !present {
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| err("while creating the database", e.into()))?;
    }
    let base = admin_url
        .split_once('?')
        .map_or(admin_url, |(base, _)| base);
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Ok(format!("{server}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_window_and_align_to_the_epoch() {
        let window = TimeWindow::new(BLOCK_MS + 5, 3 * BLOCK_MS);
        let starts: Vec<i64> = window.buckets(BLOCK_MS).collect();
        assert_eq!(starts, vec![BLOCK_MS, 2 * BLOCK_MS]);
        assert_eq!(TimeWindow::new(10, 10).buckets(BLOCK_MS).count(), 0);
    }

    #[test]
    fn missing_buckets_are_zero() {
        let window = TimeWindow::new(0, 3 * DAY_MS);
        assert_eq!(
            fill(window, DAY_MS, &[(DAY_MS, 4)]),
            vec![(0, 0), (DAY_MS, 4), (2 * DAY_MS, 0)]
        );
    }
}
