-- The first schema. Ids are BIGINT; times are TIMESTAMPTZ so Grafana and
-- Metabase can filter on them directly. No column can hold message content.
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
    deleted_at  TIMESTAMPTZ,
    -- HMAC-SHA256 of the content under a key from the config, for
    -- duplicate and spam detection; NULL unless enabled. Never a plain hash.
    keyed_hash  BYTEA
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

