//! The embedded SQLite back end: one file, WAL journal, one transaction per
//! batch, prepared statements cached across batches.

use std::path::{Path, PathBuf};

use guildscope_model::{ChannelKind, Snowflake};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    RowCounts, SCHEMA_VERSION, StoreError, StoreErrorKind,
    migrate::SQLITE_MIGRATIONS,
    row::{MemberRow, Op},
};

/// A statistics database in one SQLite file.
pub struct SqliteStore {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// `path` as shown in errors.
    pub(crate) name: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Ids go into SQLite as signed 64-bit integers; snowflakes fit until 2084.
fn sql_id(id: impl Snowflake) -> i64 {
    id.get() as i64
}

/// `ChannelKind` as stored, shared by both back ends.
pub(crate) fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Text => "text",
        ChannelKind::Announcement => "announcement",
        ChannelKind::Voice => "voice",
        ChannelKind::Category => "category",
        ChannelKind::Forum => "forum",
        ChannelKind::Thread => "thread",
        ChannelKind::Private => "private",
        ChannelKind::Other => "other",
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies any
    /// pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let conn = Connection::open(path)
            .map_err(|e| StoreError::new(StoreErrorKind::Open, &name, "while opening", e))?;
        // WAL lets readers (the dashboard, `sqlite3`) look while the bot writes;
        // NORMAL sync is durable across process crashes, which is what matters
        // for a statistics collector that can backfill after a power loss.
        //
        // A batch can be large (a startup sync gathers hundreds of thousands
        // of member writes while the writer catches up): a 64 MiB page cache
        // keeps its pages from spilling into the WAL mid-transaction, and the
        // sync's temporary id table lives in memory.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
        )
        .map_err(|e| StoreError::new(StoreErrorKind::Open, &name, "while setting pragmas", e))?;
        // Every write statement stays prepared (the default cache of 16 is
        // smaller than the number of distinct writes).
        conn.set_prepared_statement_cache_capacity(32);
        let mut store = Self {
            conn,
            path: path.to_owned(),
            name,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version found in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| {
                self.err(
                    StoreErrorKind::Schema,
                    "while reading the schema version",
                    e,
                )
            })
    }

    /// Applies pending migrations; refuses a schema newer than this binary.
    pub fn migrate(&mut self) -> Result<i64, StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(self.err(
                StoreErrorKind::Schema,
                "while checking the schema version",
                format!(
                    "the database has schema version {found}, newer than this guildscope \
                     understands ({SCHEMA_VERSION}); upgrade guildscope"
                ),
            ));
        }
        let path = self.name.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::new(StoreErrorKind::Schema, &path, "while migrating", e))?;
        for (index, sql) in SQLITE_MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = index as i64 + 1;
            tx.execute_batch(sql).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Schema,
                    &path,
                    format!("while applying migration {version}"),
                    e,
                )
            })?;
            tx.pragma_update(None, "user_version", version)
                .map_err(|e| {
                    StoreError::new(
                        StoreErrorKind::Schema,
                        &path,
                        "while recording the version",
                        e,
                    )
                })?;
        }
        tx.commit()
            .map_err(|e| StoreError::new(StoreErrorKind::Schema, &path, "while migrating", e))?;
        Ok(SCHEMA_VERSION)
    }

    fn err(
        &self,
        kind: StoreErrorKind,
        step: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::new(kind, &self.name, step, source)
    }

    /// Applies a batch of ops in one transaction and reports the rows written.
    pub fn apply(&mut self, ops: &[Op]) -> Result<RowCounts, StoreError> {
        let path = self.name.clone();
        let query_err = |e: rusqlite::Error| {
            StoreError::new(StoreErrorKind::Query, &path, "while writing a batch", e)
        };
        let tx = self.conn.transaction().map_err(query_err)?;
        let mut counts = RowCounts::default();
        for op in ops {
            apply_op(&tx, op, &mut counts).map_err(query_err)?;
        }
        tx.commit().map_err(query_err)?;
        Ok(counts)
    }

    /// Runs a query returning one integer, for tests and summaries.
    pub fn count(&self, sql: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(sql, [], |row| row.get(0))
            .map_err(|e| self.err(StoreErrorKind::Query, "while counting", e))
    }

    /// Messages stored per channel (for thread messages, the parent channel),
    /// excluding none: deleted messages are counted too.
    pub fn messages_per_channel(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT channel_id, COUNT(*) FROM messages GROUP BY channel_id")
            .map_err(|e| self.err(StoreErrorKind::Query, "while reading messages", e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(StoreErrorKind::Query, "while reading messages", e))?;
        Ok(rows)
    }

    /// Overwrites the recorded schema version; for tests of version checks.
    #[doc(hidden)]
    pub fn set_schema_version_for_tests(&self, version: i64) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "user_version", version)
            .map_err(|e| {
                self.err(
                    StoreErrorKind::Schema,
                    "while setting the schema version",
                    e,
                )
            })
    }

    /// Whether the message is stored, and whether it is flagged deleted.
    pub fn message_state(
        &self,
        id: guildscope_model::MessageId,
    ) -> Result<Option<bool>, StoreError> {
        self.conn
            .query_row(
                "SELECT is_deleted FROM messages WHERE id = ?1",
                [sql_id(id)],
                |row| row.get::<_, bool>(0),
            )
            .optional()
            .map_err(|e| self.err(StoreErrorKind::Query, "while reading a message", e))
    }
}

/// Loads the ids of a set-wise sync into a temporary table, replacing the
/// previous set.
fn fill_sync_ids(
    tx: &rusqlite::Transaction<'_>,
    ids: impl Iterator<Item = i64>,
) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS sync_ids (id INTEGER PRIMARY KEY); DELETE FROM temp.sync_ids;",
    )?;
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO temp.sync_ids (id) VALUES (?1)")?;
    for id in ids {
        insert.execute([id])?;
    }
    Ok(())
}

fn upsert_member(tx: &rusqlite::Transaction<'_>, m: &MemberRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO users (id, name, is_bot) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, is_bot = excluded.is_bot
         -- Unchanged rows are left alone, so a repeated sync writes nothing.
         WHERE users.name IS NOT excluded.name OR users.is_bot IS NOT excluded.is_bot",
    )?
    .execute(params![sql_id(m.user_id), m.name, m.is_bot])?;
    tx.prepare_cached(
        "INSERT INTO members (guild_id, user_id, joined_at, in_guild, is_staff, pending, left_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, NULL)
         ON CONFLICT (guild_id, user_id) DO UPDATE SET
            joined_at = COALESCE(excluded.joined_at, members.joined_at),
            is_staff = excluded.is_staff,
            pending = excluded.pending,
            -- A join older than a recorded leave is a replay: keep the leave.
            in_guild = CASE WHEN members.left_at IS NOT NULL
                             AND excluded.joined_at IS NOT NULL
                             AND excluded.joined_at < members.left_at
                            THEN members.in_guild ELSE 1 END,
            left_at = CASE WHEN members.left_at IS NOT NULL
                            AND excluded.joined_at IS NOT NULL
                            AND excluded.joined_at < members.left_at
                           THEN members.left_at ELSE NULL END
         -- A member who is in the guild and unchanged is left alone, so a
         -- repeated sync writes nothing.
         WHERE NOT (members.left_at IS NULL AND members.in_guild = 1
                    AND members.is_staff = excluded.is_staff
                    AND members.pending = excluded.pending
                    AND members.joined_at IS COALESCE(excluded.joined_at, members.joined_at))",
    )?
    .execute(params![
        sql_id(m.guild_id),
        sql_id(m.user_id),
        m.joined_at_ms,
        m.is_staff,
        m.pending
    ])?;
    Ok(())
}

fn apply_op(
    tx: &rusqlite::Transaction<'_>,
    op: &Op,
    counts: &mut RowCounts,
) -> rusqlite::Result<()> {
    match op {
        Op::UpsertGuild { id, name } => {
            tx.prepare_cached(
                "INSERT INTO guilds (id, name) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, left_at = NULL",
            )?
            .execute(params![sql_id(*id), name])?;
            counts.guilds += 1;
        }
        Op::GuildLeft { id, at_ms } => {
            tx.prepare_cached("UPDATE guilds SET left_at = ?2 WHERE id = ?1")?
                .execute(params![sql_id(*id), at_ms])?;
            counts.guilds += 1;
        }
        Op::SyncChannels { guild_id, present } => {
            fill_sync_ids(tx, present.iter().map(|id| sql_id(*id)))?;
            counts.channels += tx
                .prepare_cached(
                    "UPDATE channels SET is_deleted = 1
                     WHERE guild_id = ?1 AND is_deleted = 0 AND id NOT IN (SELECT id FROM temp.sync_ids)",
                )?
                .execute([sql_id(*guild_id)])? as u64;
        }
        Op::SyncMembers {
            guild_id,
            present,
            at_ms,
        } => {
            fill_sync_ids(tx, present.iter().map(|id| sql_id(*id)))?;
            counts.members += tx
                .prepare_cached(
                    "UPDATE members SET in_guild = 0, left_at = ?2
                     WHERE guild_id = ?1 AND in_guild = 1 AND user_id NOT IN (SELECT id FROM temp.sync_ids)",
                )?
                .execute(params![sql_id(*guild_id), at_ms])? as u64;
        }
        Op::UpsertChannel(c) => {
            tx.prepare_cached(
                "INSERT INTO channels (id, guild_id, name, kind, category_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                    category_id = excluded.category_id",
            )?
            .execute(params![
                sql_id(c.id),
                sql_id(c.guild_id),
                c.name,
                kind_name(c.kind),
                c.category_id.map(sql_id)
            ])?;
            counts.channels += 1;
        }
        Op::DeleteChannel { id } => {
            tx.prepare_cached("UPDATE channels SET is_deleted = 1 WHERE id = ?1")?
                .execute([sql_id(*id)])?;
            counts.channels += 1;
        }
        Op::UpsertThread(t) => {
            tx.prepare_cached(
                "INSERT INTO threads (id, guild_id, parent_id, name, archived, locked, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, archived = excluded.archived,
                    locked = excluded.locked, parent_id = COALESCE(excluded.parent_id, threads.parent_id),
                    created_at = COALESCE(threads.created_at, excluded.created_at)",
            )?
            .execute(params![
                sql_id(t.id),
                sql_id(t.guild_id),
                t.parent_id.map(sql_id),
                t.name,
                t.archived,
                t.locked,
                t.created_at_ms
            ])?;
            counts.threads += 1;
        }
        Op::DeleteThread { id } => {
            tx.prepare_cached("UPDATE threads SET is_deleted = 1 WHERE id = ?1")?
                .execute([sql_id(*id)])?;
            counts.threads += 1;
        }
        Op::UpsertMember(m) => {
            upsert_member(tx, m)?;
            counts.members += 1;
        }
        Op::MemberLeft {
            guild_id,
            user_id,
            at_ms,
        } => {
            tx.prepare_cached(
                "UPDATE members SET in_guild = 0, left_at = ?3
                 WHERE guild_id = ?1 AND user_id = ?2 AND (joined_at IS NULL OR joined_at <= ?3)",
            )?
            .execute(params![sql_id(*guild_id), sql_id(*user_id), at_ms])?;
            counts.members += 1;
        }
        Op::InsertMessage(m) => {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO messages (id, guild_id, channel_id, thread_id, author_id, created_at, keyed_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    sql_id(m.id),
                    sql_id(m.guild_id),
                    sql_id(m.channel_id),
                    m.thread_id.map(sql_id),
                    sql_id(m.author_id),
                    m.created_at_ms,
                    m.keyed_hash.as_ref().map(|h| &h[..])
                ])?;
            counts.messages += inserted as u64;
        }
        Op::EditMessage { id, at_ms } => {
            tx.prepare_cached(
                "UPDATE messages SET edited_at = MAX(COALESCE(edited_at, 0), ?2) WHERE id = ?1",
            )?
            .execute(params![sql_id(*id), at_ms])?;
            counts.messages += 1;
        }
        Op::DeleteMessage { id, at_ms } => {
            tx.prepare_cached(
                "UPDATE messages SET is_deleted = 1, deleted_at = COALESCE(deleted_at, ?2) WHERE id = ?1",
            )?
            .execute(params![sql_id(*id), at_ms])?;
            counts.messages += 1;
        }
    }
    Ok(())
}
