//! What a history backfill needs from the database: the channels and threads
//! to page through, and per-channel progress so an interrupted backfill of
//! the same window continues where it stopped instead of starting over.
//!
//! Messages themselves go in through [`Store::apply`] as idempotent
//! [`Op::InsertMessage`](crate::Op::InsertMessage)s like every other write;
//! this module adds only the reads a backfill plans with and its bookkeeping.

use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId, Snowflake};

use crate::{PostgresStore as Postgres, SqliteStore as Sqlite, Store, StoreError, StoreErrorKind};

/// A window of history, as snowflake bounds: messages with
/// `since < id < until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackfillWindow {
    /// Exclusive lower bound: only newer messages are in the window.
    pub since: MessageId,
    /// Exclusive upper bound; `None` is an open window ("up to now"), which
    /// each run catches up from where the previous one stopped.
    pub until: Option<MessageId>,
}

impl BackfillWindow {
    /// Whether `id` falls inside the window.
    pub fn contains(&self, id: MessageId) -> bool {
        id > self.since && self.until.is_none_or(|until| id < until)
    }

    /// `until` as stored: 0 marks an open window.
    fn until_raw(&self) -> i64 {
        self.until.map_or(0, sql_id)
    }
}

/// A channel or thread whose history can be backfilled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillTarget {
    /// The guild.
    pub guild_id: GuildId,
    /// The channel or thread to page through.
    pub channel_id: ChannelId,
    /// Its name, for progress output.
    pub name: String,
    /// Text, announcement or forum for channels; [`ChannelKind::Thread`] for
    /// threads.
    pub kind: ChannelKind,
    /// For a thread, the channel it belongs to (its messages are stored
    /// under that channel, with the thread id alongside).
    pub parent_id: Option<ChannelId>,
    /// The category of the channel (for a thread, of its parent).
    pub category_id: Option<ChannelId>,
}

/// How far the backfill of one channel over one window got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelProgress {
    /// The newest message fetched so far; the next page starts after it.
    pub cursor: MessageId,
    /// Whether the whole window was fetched (for an open window: up to the
    /// newest message at the time).
    pub done: bool,
    /// Messages in the window fetched so far, over every run.
    pub messages_seen: u64,
    /// Messages that were new to the database, over every run.
    pub messages_inserted: u64,
}

/// Backfill planning and bookkeeping, on both back ends.
impl Store {
    /// The guilds the bot is in, as far as the database knows.
    pub fn known_guilds(&mut self) -> Result<Vec<GuildId>, StoreError> {
        const SQL: &str = "SELECT id FROM guilds WHERE left_at IS NULL ORDER BY id";
        let step = "while listing guilds";
        let ids: Vec<i64> = match self {
            Store::Sqlite(Sqlite { conn, name, .. }) => conn
                .prepare(SQL)
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| row.get(0))?
                        .collect::<Result<Vec<i64>, _>>()
                })
                .map_err(|e| query_err(name, step, e))?,
            Store::Postgres(Postgres { client, name, .. }) => client
                .query(SQL, &[])
                .map_err(|e| query_err(name, step, e))?
                .iter()
                .map(|row| row.get(0))
                .collect(),
        };
        Ok(ids.into_iter().map(|id| GuildId::new(id as u64)).collect())
    }

    /// The guild's channels whose history can be read (text, announcement
    /// and forum channels not flagged deleted), then its threads not flagged
    /// deleted, each group in id order.
    pub fn backfill_targets(&mut self, guild: GuildId) -> Result<Vec<BackfillTarget>, StoreError> {
        // The dialects differ in placeholders and booleans only.
        const SQLITE: &str = "
            SELECT id, name, kind, NULL, category_id, 0 AS is_thread
              FROM channels
             WHERE guild_id = ?1 AND is_deleted = 0
               AND kind IN ('text', 'announcement', 'forum')
            UNION ALL
            SELECT t.id, t.name, 'thread', t.parent_id, c.category_id, 1
              FROM threads t LEFT JOIN channels c ON c.id = t.parent_id
             WHERE t.guild_id = ?1 AND t.is_deleted = 0
            ORDER BY is_thread, id";
        const POSTGRES: &str = "
            SELECT id, name, kind, NULL::BIGINT, category_id, 0 AS is_thread
              FROM channels
             WHERE guild_id = $1 AND NOT is_deleted
               AND kind IN ('text', 'announcement', 'forum')
            UNION ALL
            SELECT t.id, t.name, 'thread', t.parent_id, c.category_id, 1
              FROM threads t LEFT JOIN channels c ON c.id = t.parent_id
             WHERE t.guild_id = $1 AND NOT t.is_deleted
            ORDER BY is_thread, id";
        let step = "while listing channels to backfill";
        type Raw = (i64, String, String, Option<i64>, Option<i64>);
        let rows: Vec<Raw> = match self {
            Store::Sqlite(Sqlite { conn, name, .. }) => conn
                .prepare(SQLITE)
                .and_then(|mut stmt| {
                    stmt.query_map([sql_id(guild)], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })?
                    .collect::<Result<Vec<Raw>, _>>()
                })
                .map_err(|e| query_err(name, step, e))?,
            Store::Postgres(Postgres { client, name, .. }) => client
                .query(POSTGRES, &[&sql_id(guild)])
                .map_err(|e| query_err(name, step, e))?
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
                .collect(),
        };
        Ok(rows
            .into_iter()
            .map(|(id, name, kind, parent, category)| BackfillTarget {
                guild_id: guild,
                channel_id: ChannelId::new(id as u64),
                name,
                kind: kind_from_name(&kind),
                parent_id: parent.map(|p| ChannelId::new(p as u64)),
                category_id: category.map(|c| ChannelId::new(c as u64)),
            })
            .collect())
    }

    /// The recorded progress of `channel` over `window`, if any run started it.
    pub fn backfill_progress(
        &mut self,
        channel: ChannelId,
        window: BackfillWindow,
    ) -> Result<Option<ChannelProgress>, StoreError> {
        let step = "while reading backfill progress";
        let key = (sql_id(channel), sql_id(window.since), window.until_raw());
        type Raw = (i64, bool, i64, i64);
        let row: Option<Raw> = match self {
            Store::Sqlite(Sqlite { conn, name, .. }) => {
                use rusqlite::OptionalExtension;
                conn.query_row(
                    "SELECT cursor_id, done, messages_seen, messages_inserted
                       FROM backfill_progress
                      WHERE channel_id = ?1 AND since_id = ?2 AND until_id = ?3",
                    [key.0, key.1, key.2],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
                .map_err(|e| query_err(name, step, e))?
            }
            Store::Postgres(Postgres { client, name, .. }) => client
                .query_opt(
                    "SELECT cursor_id, done, messages_seen, messages_inserted
                       FROM backfill_progress
                      WHERE channel_id = $1 AND since_id = $2 AND until_id = $3",
                    &[&key.0, &key.1, &key.2],
                )
                .map_err(|e| query_err(name, step, e))?
                .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))),
        };
        Ok(row.map(|(cursor, done, seen, inserted)| ChannelProgress {
            cursor: MessageId::new(cursor as u64),
            done,
            messages_seen: seen as u64,
            messages_inserted: inserted as u64,
        }))
    }

    /// Records how far `channel` got over `window`. Idempotent and never
    /// backwards: the cursor and the totals only grow, and a finished window
    /// stays finished.
    pub fn save_backfill_progress(
        &mut self,
        guild: GuildId,
        channel: ChannelId,
        window: BackfillWindow,
        progress: &ChannelProgress,
    ) -> Result<(), StoreError> {
        let step = "while recording backfill progress";
        let (channel, since, until, guild) = (
            sql_id(channel),
            sql_id(window.since),
            window.until_raw(),
            sql_id(guild),
        );
        let cursor = sql_id(progress.cursor);
        let (seen, inserted) = (
            progress.messages_seen as i64,
            progress.messages_inserted as i64,
        );
        match self {
            Store::Sqlite(Sqlite { conn, name, .. }) => conn
                .execute(
                    "INSERT INTO backfill_progress (channel_id, since_id, until_id, guild_id,
                        cursor_id, done, messages_seen, messages_inserted, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                        CAST(unixepoch('subsec') * 1000 AS INTEGER))
                     ON CONFLICT (channel_id, since_id, until_id) DO UPDATE SET
                        cursor_id = MAX(cursor_id, excluded.cursor_id),
                        done = MAX(done, excluded.done),
                        messages_seen = MAX(messages_seen, excluded.messages_seen),
                        messages_inserted = MAX(messages_inserted, excluded.messages_inserted),
                        updated_at = excluded.updated_at",
                    rusqlite::params![
                        channel,
                        since,
                        until,
                        guild,
                        cursor,
                        progress.done,
                        seen,
                        inserted
                    ],
                )
                .map(drop)
                .map_err(|e| query_err(name, step, e)),
            Store::Postgres(Postgres { client, name, .. }) => client
                .execute(
                    "INSERT INTO backfill_progress (channel_id, since_id, until_id, guild_id,
                        cursor_id, done, messages_seen, messages_inserted, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                     ON CONFLICT (channel_id, since_id, until_id) DO UPDATE SET
                        cursor_id = GREATEST(backfill_progress.cursor_id, excluded.cursor_id),
                        done = backfill_progress.done OR excluded.done,
                        messages_seen = GREATEST(backfill_progress.messages_seen,
                                                 excluded.messages_seen),
                        messages_inserted = GREATEST(backfill_progress.messages_inserted,
                                                     excluded.messages_inserted),
                        updated_at = excluded.updated_at",
                    &[
                        &channel,
                        &since,
                        &until,
                        &guild,
                        &cursor,
                        &progress.done,
                        &seen,
                        &inserted,
                    ],
                )
                .map(drop)
                .map_err(|e| query_err(name, step, e)),
        }
    }
}

pub(crate) fn query_err(
    database: &str,
    step: &str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::new(StoreErrorKind::Query, database, step, source)
}

/// Ids go into SQL as signed 64-bit integers; snowflakes fit until 2084.
pub(crate) fn sql_id(id: impl Snowflake) -> i64 {
    id.get() as i64
}

/// The inverse of the stored kind names.
fn kind_from_name(name: &str) -> ChannelKind {
    match name {
        "text" => ChannelKind::Text,
        "announcement" => ChannelKind::Announcement,
        "voice" => ChannelKind::Voice,
        "category" => ChannelKind::Category,
        "forum" => ChannelKind::Forum,
        "thread" => ChannelKind::Thread,
        "private" => ChannelKind::Private,
        _ => ChannelKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_excludes_both_bounds() {
        let window = BackfillWindow {
            since: MessageId::new(10),
            until: Some(MessageId::new(20)),
        };
        assert!(!window.contains(MessageId::new(10)));
        assert!(window.contains(MessageId::new(11)));
        assert!(window.contains(MessageId::new(19)));
        assert!(!window.contains(MessageId::new(20)));
        let open = BackfillWindow {
            until: None,
            ..window
        };
        assert!(open.contains(MessageId::new(u64::MAX >> 1)));
    }
}
