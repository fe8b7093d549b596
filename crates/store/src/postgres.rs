//! The PostgreSQL back end: one transaction per batch, each run of same-kind
//! ops written with a single `UNNEST` statement (one round trip for thousands
//! of rows), and idempotent conflict handling so a replayed batch changes
//! nothing.

use guildscope_model::{MessageId, Snowflake};
use postgres::{Client, NoTls, Transaction};

use crate::{
    RowCounts, SCHEMA_VERSION, StoreError, StoreErrorKind, migrate::POSTGRES_MIGRATIONS, row::Op,
    sqlite::kind_name,
};

/// A statistics database in PostgreSQL.
pub struct PostgresStore {
    pub(crate) client: Client,
    /// The full URL, to reconnect after the server went away.
    url: guildscope_model::Secret,
    /// The URL without its password, for errors.
    pub(crate) name: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.name)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn sql_id(id: impl Snowflake) -> i64 {
    id.get() as i64
}

impl PostgresStore {
    /// Connects to `url` and applies any pending migrations.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let name = redact_url(url);
        let client = Client::connect(url, NoTls)
            .map_err(|e| StoreError::new(StoreErrorKind::Open, &name, "while connecting", e))?;
        let mut store = Self {
            client,
            url: guildscope_model::Secret::new(url),
            name,
        };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, kind: StoreErrorKind, step: &str, source: postgres::Error) -> StoreError {
        StoreError::new(kind, &self.name, step, source)
    }

    /// The schema version found in the database (0 when empty).
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        let read = |client: &mut Client| -> Result<i64, postgres::Error> {
            let exists: bool = client
                .query_one("SELECT to_regclass('guildscope_schema') IS NOT NULL", &[])?
                .get(0);
            if !exists {
                return Ok(0);
            }
            Ok(client
                .query_opt("SELECT version FROM guildscope_schema LIMIT 1", &[])?
                .map_or(0, |row| row.get(0)))
        };
        read(&mut self.client).map_err(|e| {
            self.err(
                StoreErrorKind::Schema,
                "while reading the schema version",
                e,
            )
        })
    }

    /// Applies pending migrations; refuses a schema newer than this binary.
    pub fn migrate(&mut self) -> Result<i64, StoreError> {
        let name = self.name.clone();
        let schema_err = |step: &str, e: postgres::Error| {
            StoreError::new(StoreErrorKind::Schema, &name, step, e)
        };
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| schema_err("while migrating", e))?;
        // One migrator at a time, across processes.
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7135624831);
             CREATE TABLE IF NOT EXISTS guildscope_schema (version BIGINT NOT NULL);",
        )
        .map_err(|e| schema_err("while migrating", e))?;
        let found: i64 = tx
            .query_opt("SELECT version FROM guildscope_schema LIMIT 1", &[])
            .map_err(|e| schema_err("while reading the schema version", e))?
            .map_or(0, |row| row.get(0));
        if found > SCHEMA_VERSION {
            return Err(StoreError::new(
                StoreErrorKind::Schema,
                &name,
                "while checking the schema version",
                format!(
                    "the database has schema version {found}, newer than this guildscope \
                     understands ({SCHEMA_VERSION}); upgrade guildscope"
                ),
            ));
        }
        for (index, sql) in POSTGRES_MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = index as i64 + 1;
            tx.batch_execute(sql)
                .map_err(|e| schema_err(&format!("while applying migration {version}"), e))?;
        }
        tx.execute("DELETE FROM guildscope_schema", &[])
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO guildscope_schema (version) VALUES ($1)",
                    &[&found.max(SCHEMA_VERSION)],
                )
            })
            .map_err(|e| schema_err("while recording the version", e))?;
        tx.commit().map_err(|e| schema_err("while migrating", e))?;
        Ok(SCHEMA_VERSION)
    }

    /// Overwrites the recorded schema version; for tests of version checks.
    #[doc(hidden)]
    pub fn set_schema_version_for_tests(&mut self, version: i64) -> Result<(), StoreError> {
        self.client
            .execute("UPDATE guildscope_schema SET version = $1", &[&version])
            .map(drop)
            .map_err(|e| {
                self.err(
                    StoreErrorKind::Schema,
                    "while setting the schema version",
                    e,
                )
            })
    }

    /// Applies a batch of ops in one transaction and reports the rows written.
    pub fn apply(&mut self, ops: &[Op]) -> Result<RowCounts, StoreError> {
        // After a server restart the old connection is dead for good; the
        // writer retries the batch, and this brings a fresh connection.
        if self.client.is_closed() {
            self.client = Client::connect(self.url.expose(), NoTls)
                .map_err(|e| self.err(StoreErrorKind::Open, "while reconnecting", e))?;
        }
        let name = self.name.clone();
        let query_err = |e: postgres::Error| {
            StoreError::new(StoreErrorKind::Query, &name, "while writing a batch", e)
        };
        let mut tx = self.client.transaction().map_err(query_err)?;
        let mut counts = RowCounts::default();
        let mut start = 0;
        while start < ops.len() {
            let kind = std::mem::discriminant(&ops[start]);
            let end = ops[start..]
                .iter()
                .position(|op| std::mem::discriminant(op) != kind)
                .map_or(ops.len(), |n| start + n);
            apply_run(&mut tx, &ops[start..end], &mut counts).map_err(query_err)?;
            start = end;
        }
        tx.commit().map_err(query_err)?;
        Ok(counts)
    }

    /// Runs a query returning one integer, for tests and summaries.
    pub fn count(&mut self, sql: &str) -> Result<i64, StoreError> {
        self.client
            .query_one(sql, &[])
            .map(|row| row.get::<_, i64>(0))
            .map_err(|e| self.err(StoreErrorKind::Query, "while counting", e))
    }

    /// Messages stored per channel, deleted ones included.
    pub fn messages_per_channel(&mut self) -> Result<Vec<(u64, u64)>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT channel_id, COUNT(*) FROM messages GROUP BY channel_id",
                &[],
            )
            .map_err(|e| self.err(StoreErrorKind::Query, "while reading messages", e))?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Whether the message is stored, and whether it is flagged deleted.
    pub fn message_state(&mut self, id: MessageId) -> Result<Option<bool>, StoreError> {
        self.client
            .query_opt(
                "SELECT is_deleted FROM messages WHERE id = $1",
                &[&sql_id(id)],
            )
            .map(|row| row.map(|row| row.get(0)))
            .map_err(|e| self.err(StoreErrorKind::Query, "while reading a message", e))
    }
}

/// Keeps the last op for each key, in first-seen order: one statement may
/// not update the same row twice.
fn last_per_key<'a, K: Eq + std::hash::Hash, T>(
    items: impl Iterator<Item = (K, &'a T)>,
) -> Vec<&'a T> {
    let mut index = std::collections::HashMap::new();
    let mut out: Vec<&T> = Vec::new();
    for (key, item) in items {
        match index.get(&key) {
            Some(&i) => out[i] = item,
            None => {
                index.insert(key, out.len());
                out.push(item);
            }
        }
    }
    out
}

fn apply_run(
    tx: &mut Transaction<'_>,
    run: &[Op],
    counts: &mut RowCounts,
) -> Result<(), postgres::Error> {
    let n = run.len() as u64;
    match &run[0] {
        Op::UpsertGuild { .. } => {
            let rows = last_per_key(run.iter().filter_map(|op| match op {
                Op::UpsertGuild { id, .. } => Some((*id, op)),
                _ => None,
            }));
            let (mut ids, mut names) = (Vec::new(), Vec::new());
            for op in rows {
                if let Op::UpsertGuild { id, name } = op {
                    ids.push(sql_id(*id));
                    names.push(name.as_str());
                }
            }
            tx.execute(
                "INSERT INTO guilds (id, name) SELECT * FROM UNNEST($1::int8[], $2::text[])
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, left_at = NULL",
                &[&ids, &names],
            )?;
            counts.guilds += n;
        }
        Op::GuildLeft { .. } => {
            for op in run {
                if let Op::GuildLeft { id, at_ms } = op {
                    tx.execute(
                        "UPDATE guilds SET left_at = to_timestamp($2::int8 / 1000.0) WHERE id = $1",
                        &[&sql_id(*id), at_ms],
                    )?;
                }
            }
            counts.guilds += n;
        }
        Op::SyncChannels { .. } => {
            for op in run {
                if let Op::SyncChannels { guild_id, present } = op {
                    let ids: Vec<i64> = present.iter().map(|id| sql_id(*id)).collect();
                    counts.channels += tx.execute(
                        "UPDATE channels c SET is_deleted = true
                         WHERE c.guild_id = $1 AND NOT c.is_deleted
                           AND NOT EXISTS (SELECT 1 FROM UNNEST($2::int8[]) AS p(id) WHERE p.id = c.id)",
                        &[&sql_id(*guild_id), &ids],
                    )?;
                }
            }
        }
        Op::SyncMembers { .. } => {
            for op in run {
                if let Op::SyncMembers {
                    guild_id,
                    present,
                    at_ms,
                } = op
                {
                    let ids: Vec<i64> = present.iter().map(|id| sql_id(*id)).collect();
                    counts.members += tx.execute(
                        "UPDATE members m SET in_guild = false, left_at = to_timestamp($3::int8 / 1000.0)
                         WHERE m.guild_id = $1 AND m.in_guild
                           AND NOT EXISTS (SELECT 1 FROM UNNEST($2::int8[]) AS p(id) WHERE p.id = m.user_id)",
                        &[&sql_id(*guild_id), &ids, at_ms],
                    )?;
                }
            }
        }
        Op::UpsertChannel(_) => {
            let rows = last_per_key(run.iter().filter_map(|op| match op {
                Op::UpsertChannel(c) => Some((c.id, c)),
                _ => None,
            }));
            let ids: Vec<i64> = rows.iter().map(|c| sql_id(c.id)).collect();
            let guilds: Vec<i64> = rows.iter().map(|c| sql_id(c.guild_id)).collect();
            let names: Vec<&str> = rows.iter().map(|c| c.name.as_str()).collect();
            let kinds: Vec<&str> = rows.iter().map(|c| kind_name(c.kind)).collect();
            let categories: Vec<Option<i64>> =
                rows.iter().map(|c| c.category_id.map(sql_id)).collect();
            tx.execute(
                "INSERT INTO channels (id, guild_id, name, kind, category_id)
                 SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[])
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                    category_id = excluded.category_id",
                &[&ids, &guilds, &names, &kinds, &categories],
            )?;
            counts.channels += n;
        }
        Op::DeleteChannel { .. } => {
            let ids: Vec<i64> = run
                .iter()
                .filter_map(|op| {
                    if let Op::DeleteChannel { id } = op {
                        Some(sql_id(*id))
                    } else {
                        None
                    }
                })
                .collect();
            tx.execute(
                "UPDATE channels SET is_deleted = true WHERE id = ANY($1)",
                &[&ids],
            )?;
            counts.channels += n;
        }
        Op::UpsertThread(_) => {
            let rows = last_per_key(run.iter().filter_map(|op| match op {
                Op::UpsertThread(t) => Some((t.id, t)),
                _ => None,
            }));
            let ids: Vec<i64> = rows.iter().map(|t| sql_id(t.id)).collect();
            let guilds: Vec<i64> = rows.iter().map(|t| sql_id(t.guild_id)).collect();
            let parents: Vec<Option<i64>> = rows.iter().map(|t| t.parent_id.map(sql_id)).collect();
            let names: Vec<&str> = rows.iter().map(|t| t.name.as_str()).collect();
            let archived: Vec<bool> = rows.iter().map(|t| t.archived).collect();
            let locked: Vec<bool> = rows.iter().map(|t| t.locked).collect();
            let created: Vec<Option<i64>> = rows.iter().map(|t| t.created_at_ms).collect();
            tx.execute(
                "INSERT INTO threads (id, guild_id, parent_id, name, archived, locked, created_at)
                 SELECT u.id, u.g, u.p, u.n, u.a, u.l, to_timestamp(u.c / 1000.0)
                 FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::bool[], $6::bool[], $7::int8[])
                    AS u(id, g, p, n, a, l, c)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, archived = excluded.archived,
                    locked = excluded.locked, parent_id = COALESCE(excluded.parent_id, threads.parent_id),
                    created_at = COALESCE(threads.created_at, excluded.created_at)",
                &[&ids, &guilds, &parents, &names, &archived, &locked, &created],
            )?;
            counts.threads += n;
        }
        Op::DeleteThread { .. } => {
            let ids: Vec<i64> = run
                .iter()
                .filter_map(|op| {
                    if let Op::DeleteThread { id } = op {
                        Some(sql_id(*id))
                    } else {
                        None
                    }
                })
                .collect();
            tx.execute(
                "UPDATE threads SET is_deleted = true WHERE id = ANY($1)",
                &[&ids],
            )?;
            counts.threads += n;
        }
        Op::UpsertMember(_) => {
            let members = last_per_key(run.iter().filter_map(|op| match op {
                Op::UpsertMember(m) => Some(((m.guild_id, m.user_id), m)),
                _ => None,
            }));
            let users = last_per_key(members.iter().map(|m| (m.user_id, *m)));
            let user_ids: Vec<i64> = users.iter().map(|m| sql_id(m.user_id)).collect();
            let names: Vec<&str> = users.iter().map(|m| m.name.as_str()).collect();
            let bots: Vec<bool> = users.iter().map(|m| m.is_bot).collect();
            tx.execute(
                "INSERT INTO users (id, name, is_bot) SELECT * FROM UNNEST($1::int8[], $2::text[], $3::bool[])
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, is_bot = excluded.is_bot
                 -- Unchanged rows are left alone, so a repeated sync writes nothing.
                 WHERE (users.name, users.is_bot) IS DISTINCT FROM (excluded.name, excluded.is_bot)",
                &[&user_ids, &names, &bots],
            )?;
            let guilds: Vec<i64> = members.iter().map(|m| sql_id(m.guild_id)).collect();
            let users: Vec<i64> = members.iter().map(|m| sql_id(m.user_id)).collect();
            let joined: Vec<Option<i64>> = members.iter().map(|m| m.joined_at_ms).collect();
            let staff: Vec<bool> = members.iter().map(|m| m.is_staff).collect();
            let pending: Vec<bool> = members.iter().map(|m| m.pending).collect();
            tx.execute(
                "INSERT INTO members (guild_id, user_id, joined_at, in_guild, is_staff, pending)
                 SELECT u.g, u.u, to_timestamp(u.j / 1000.0), true, u.s, u.p
                 FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::bool[], $5::bool[]) AS u(g, u, j, s, p)
                 ON CONFLICT (guild_id, user_id) DO UPDATE SET
                    joined_at = COALESCE(excluded.joined_at, members.joined_at),
                    is_staff = excluded.is_staff,
                    pending = excluded.pending,
                    -- A join older than a recorded leave is a replay: keep the leave.
                    in_guild = CASE WHEN members.left_at IS NOT NULL AND excluded.joined_at IS NOT NULL
                                     AND excluded.joined_at < members.left_at
                                    THEN members.in_guild ELSE true END,
                    left_at = CASE WHEN members.left_at IS NOT NULL AND excluded.joined_at IS NOT NULL
                                    AND excluded.joined_at < members.left_at
                                   THEN members.left_at ELSE NULL END
                 -- A member who is in the guild and unchanged is left alone, so a
                 -- repeated sync writes nothing.
                 WHERE NOT (members.left_at IS NULL AND members.in_guild
                            AND members.is_staff = excluded.is_staff
                            AND members.pending = excluded.pending
                            AND members.joined_at IS NOT DISTINCT FROM
                                COALESCE(excluded.joined_at, members.joined_at))",
                &[&guilds, &users, &joined, &staff, &pending],
            )?;
            counts.members += n;
        }
        Op::MemberLeft { .. } => {
            let (mut guilds, mut users, mut at) = (Vec::new(), Vec::new(), Vec::new());
            for op in run {
                if let Op::MemberLeft {
                    guild_id,
                    user_id,
                    at_ms,
                } = op
                {
                    guilds.push(sql_id(*guild_id));
                    users.push(sql_id(*user_id));
                    at.push(*at_ms);
                }
            }
            tx.execute(
                "UPDATE members m SET in_guild = false, left_at = to_timestamp(u.at / 1000.0)
                 FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) AS u(g, usr, at)
                 WHERE m.guild_id = u.g AND m.user_id = u.usr
                   AND (m.joined_at IS NULL OR m.joined_at <= to_timestamp(u.at / 1000.0))",
                &[&guilds, &users, &at],
            )?;
            counts.members += n;
        }
        Op::InsertMessage(_) => {
            let (mut ids, mut guilds, mut channels, mut threads, mut authors, mut created) = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            let mut hashes: Vec<Option<&[u8]>> = Vec::new();
            for op in run {
                if let Op::InsertMessage(m) = op {
                    ids.push(sql_id(m.id));
                    guilds.push(sql_id(m.guild_id));
                    channels.push(sql_id(m.channel_id));
                    threads.push(m.thread_id.map(sql_id));
                    authors.push(sql_id(m.author_id));
                    created.push(m.created_at_ms);
                    hashes.push(m.keyed_hash.as_ref().map(|h| &h[..]));
                }
            }
            // The daily rollups (migration 0004) grow by exactly the rows
            // inserted: RETURNING yields no row for a replayed message, so a
            // replay never counts twice.
            let inserted: i64 = tx
                .query_one(
                    "WITH ins AS (
                        INSERT INTO messages (id, guild_id, channel_id, thread_id, author_id, created_at, keyed_hash)
                        SELECT u.id, u.g, u.c, u.t, u.a, to_timestamp(u.at / 1000.0), u.h
                        FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::bytea[])
                           AS u(id, g, c, t, a, at, h)
                        ON CONFLICT (id) DO NOTHING
                        RETURNING guild_id, channel_id, author_id,
                                  (created_at AT TIME ZONE 'UTC')::date AS day
                     ), channel_rollup AS (
                        INSERT INTO channel_days (guild_id, day, channel_id, messages)
                        SELECT guild_id, day, channel_id, COUNT(*) FROM ins GROUP BY 1, 2, 3
                        ON CONFLICT (guild_id, day, channel_id)
                        DO UPDATE SET messages = channel_days.messages + excluded.messages
                     ), author_rollup AS (
                        INSERT INTO author_days (guild_id, author_id, day, messages)
                        SELECT guild_id, author_id, day, COUNT(*) FROM ins GROUP BY 1, 2, 3
                        ON CONFLICT (guild_id, author_id, day)
                        DO UPDATE SET messages = author_days.messages + excluded.messages
                     ), author_total AS (
                        INSERT INTO author_totals (guild_id, author_id, messages)
                        SELECT guild_id, author_id, COUNT(*) FROM ins GROUP BY 1, 2
                        ON CONFLICT (guild_id, author_id)
                        DO UPDATE SET messages = author_totals.messages + excluded.messages
                     )
                     SELECT COUNT(*) FROM ins",
                    &[&ids, &guilds, &channels, &threads, &authors, &created, &hashes],
                )?
                .get(0);
            counts.messages += inserted as u64;
        }
        Op::EditMessage { .. } | Op::DeleteMessage { .. } => {
            let deleting = matches!(run[0], Op::DeleteMessage { .. });
            let (mut ids, mut at) = (Vec::new(), Vec::new());
            for op in run {
                if let Op::EditMessage { id, at_ms } | Op::DeleteMessage { id, at_ms } = op {
                    ids.push(sql_id(*id));
                    at.push(*at_ms);
                }
            }
            let sql = if deleting {
                "UPDATE messages m SET is_deleted = true,
                    deleted_at = COALESCE(m.deleted_at, to_timestamp(u.at / 1000.0))
                 FROM UNNEST($1::int8[], $2::int8[]) AS u(id, at) WHERE m.id = u.id"
            } else {
                "UPDATE messages m SET edited_at = GREATEST(m.edited_at, to_timestamp(u.at / 1000.0))
                 FROM UNNEST($1::int8[], $2::int8[]) AS u(id, at) WHERE m.id = u.id"
            };
            tx.execute(sql, &[&ids, &at])?;
            counts.messages += n;
        }
    }
    Ok(())
}
