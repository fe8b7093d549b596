//! The schema and its migrations.
//!
//! Migrations are numbered and applied in order inside one transaction; the
//! applied version lives in SQLite's `user_version`. A database whose version
//! is newer than [`SCHEMA_VERSION`] was written by a newer guildscope and is
//! refused rather than guessed at.

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Migration `n` (1-based) moves the schema from version `n - 1` to `n`.
pub(crate) const SQLITE_MIGRATIONS: &[&str] = &[
    // 1: the first schema. Ids are 64-bit integers; timestamps are Unix
    // milliseconds. No table has a column that could hold message content.
    r#"
    CREATE TABLE guilds (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL,
        left_at     INTEGER
    );
    CREATE TABLE channels (
        id          INTEGER PRIMARY KEY,
        guild_id    INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        category_id INTEGER,
        is_deleted  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE threads (
        id          INTEGER PRIMARY KEY,
        guild_id    INTEGER NOT NULL,
        parent_id   INTEGER,
        name        TEXT    NOT NULL,
        archived    INTEGER NOT NULL,
        locked      INTEGER NOT NULL,
        created_at  INTEGER,
        is_deleted  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE users (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL,
        is_bot      INTEGER NOT NULL
    );
    CREATE TABLE members (
        guild_id    INTEGER NOT NULL,
        user_id     INTEGER NOT NULL,
        joined_at   INTEGER,
        in_guild    INTEGER NOT NULL,
        is_staff    INTEGER NOT NULL,
        pending     INTEGER NOT NULL,
        left_at     INTEGER,
        PRIMARY KEY (guild_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        guild_id    INTEGER NOT NULL,
        channel_id  INTEGER NOT NULL,
        thread_id   INTEGER,
        author_id   INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        edited_at   INTEGER,
        is_deleted  INTEGER NOT NULL DEFAULT 0,
        deleted_at  INTEGER
    );
    CREATE INDEX messages_by_channel ON messages (channel_id, created_at);
    CREATE INDEX messages_by_guild ON messages (guild_id, created_at);
    CREATE INDEX messages_by_author ON messages (author_id, created_at);

    -- Views for BI tools that cannot hold 64-bit integers: ids as text,
    -- timestamps as ISO-8601 UTC.
    CREATE VIEW messages_text AS
        SELECT CAST(id AS TEXT) AS id, CAST(guild_id AS TEXT) AS guild_id,
               CAST(channel_id AS TEXT) AS channel_id, CAST(thread_id AS TEXT) AS thread_id,
               CAST(author_id AS TEXT) AS author_id,
               strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch') AS created_at,
               strftime('%Y-%m-%dT%H:%M:%fZ', edited_at / 1000.0, 'unixepoch') AS edited_at,
               is_deleted,
               strftime('%Y-%m-%dT%H:%M:%fZ', deleted_at / 1000.0, 'unixepoch') AS deleted_at
        FROM messages;
    CREATE VIEW members_text AS
        SELECT CAST(guild_id AS TEXT) AS guild_id, CAST(user_id AS TEXT) AS user_id,
               strftime('%Y-%m-%dT%H:%M:%fZ', joined_at / 1000.0, 'unixepoch') AS joined_at,
               in_guild, is_staff, pending,
               strftime('%Y-%m-%dT%H:%M:%fZ', left_at / 1000.0, 'unixepoch') AS left_at
        FROM members;
    CREATE VIEW channels_text AS
        SELECT CAST(id AS TEXT) AS id, CAST(guild_id AS TEXT) AS guild_id, name, kind,
               CAST(category_id AS TEXT) AS category_id, is_deleted
        FROM channels;
    CREATE VIEW threads_text AS
        SELECT CAST(id AS TEXT) AS id, CAST(guild_id AS TEXT) AS guild_id,
               CAST(parent_id AS TEXT) AS parent_id, name, archived, locked,
               strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch') AS created_at,
               is_deleted
        FROM threads;
    "#,
];

/// PostgreSQL migrations; migration `n` moves the schema from `n - 1` to `n`.
/// The applied version lives in `guildscope_schema`.
pub(crate) const POSTGRES_MIGRATIONS: &[&str] = &[
    // 1: the first schema. Ids are BIGINT; times are TIMESTAMPTZ so Grafana
    // and Metabase can filter on them directly. No column can hold message
    // content.
    r#"
    CREATE TABLE guilds (
        id          BIGINT PRIMARY KEY,
        name        TEXT NOT NULL,
        left_at     TIMESTAMPTZ
    );
    CREATE TABLE channels (
        id          BIGINT PRIMARY KEY,
        guild_id    BIGINT NOT NULL,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        category_id BIGINT,
        is_deleted  BOOLEAN NOT NULL DEFAULT false
    );
    CREATE TABLE threads (
        id          BIGINT PRIMARY KEY,
        guild_id    BIGINT NOT NULL,
        parent_id   BIGINT,
        name        TEXT NOT NULL,
        archived    BOOLEAN NOT NULL,
        locked      BOOLEAN NOT NULL,
        created_at  TIMESTAMPTZ,
        is_deleted  BOOLEAN NOT NULL DEFAULT false
    );
    CREATE TABLE users (
        id          BIGINT PRIMARY KEY,
        name        TEXT NOT NULL,
        is_bot      BOOLEAN NOT NULL
    );
    CREATE TABLE members (
        guild_id    BIGINT NOT NULL,
        user_id     BIGINT NOT NULL,
        joined_at   TIMESTAMPTZ,
        in_guild    BOOLEAN NOT NULL,
        is_staff    BOOLEAN NOT NULL,
        pending     BOOLEAN NOT NULL,
        left_at     TIMESTAMPTZ,
        PRIMARY KEY (guild_id, user_id)
    );
    CREATE TABLE messages (
        id          BIGINT PRIMARY KEY,
        guild_id    BIGINT NOT NULL,
        channel_id  BIGINT NOT NULL,
        thread_id   BIGINT,
        author_id   BIGINT NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL,
        edited_at   TIMESTAMPTZ,
        is_deleted  BOOLEAN NOT NULL DEFAULT false,
        deleted_at  TIMESTAMPTZ
    );
    CREATE INDEX messages_by_channel ON messages (channel_id, created_at);
    CREATE INDEX messages_by_guild ON messages (guild_id, created_at);
    CREATE INDEX messages_by_author ON messages (author_id, created_at);

    -- Views for BI tools that cannot hold 64-bit integers.
    CREATE VIEW messages_text AS
        SELECT id::text AS id, guild_id::text AS guild_id, channel_id::text AS channel_id,
               thread_id::text AS thread_id, author_id::text AS author_id,
               created_at, edited_at, is_deleted, deleted_at
        FROM messages;
    CREATE VIEW members_text AS
        SELECT guild_id::text AS guild_id, user_id::text AS user_id, joined_at, in_guild,
               is_staff, pending, left_at
        FROM members;
    CREATE VIEW channels_text AS
        SELECT id::text AS id, guild_id::text AS guild_id, name, kind,
               category_id::text AS category_id, is_deleted
        FROM channels;
    CREATE VIEW threads_text AS
        SELECT id::text AS id, guild_id::text AS guild_id, parent_id::text AS parent_id, name,
               archived, locked, created_at, is_deleted
        FROM threads;
    "#,
];
