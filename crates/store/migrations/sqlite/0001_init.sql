-- The first schema. Ids are 64-bit integers; timestamps are Unix milliseconds.
-- No table has a column that could hold message content.
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
    deleted_at  INTEGER,
    -- HMAC-SHA256 of the content under a key from the config, for
    -- duplicate and spam detection; NULL unless enabled. Never a plain hash.
    keyed_hash  BLOB
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

