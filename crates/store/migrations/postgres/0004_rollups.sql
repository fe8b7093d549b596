-- Daily rollups for the read API (crates/store/src/read.rs): messages per
-- guild, channel and UTC day, and per guild, author and UTC day, plus each
-- author's all-time total per guild (an upper bound on any window, which
-- lets top authors look at a few candidates instead of every author).
--
-- They are kept exact in the same statement as the writes
-- (crates/store/src/postgres.rs, InsertMessage) and by forget_user
-- (crates/store/src/erase.rs). Deleted messages still count, so deletes do
-- not touch them. The day is the UTC date of created_at.
CREATE TABLE channel_days (
    guild_id    BIGINT NOT NULL,
    day         DATE NOT NULL,
    channel_id  BIGINT NOT NULL,
    messages    BIGINT NOT NULL,
    PRIMARY KEY (guild_id, day, channel_id)
);
CREATE TABLE author_days (
    guild_id    BIGINT NOT NULL,
    author_id   BIGINT NOT NULL,
    day         DATE NOT NULL,
    messages    BIGINT NOT NULL,
    PRIMARY KEY (guild_id, author_id, day)
);
CREATE TABLE author_totals (
    guild_id    BIGINT NOT NULL,
    author_id   BIGINT NOT NULL,
    messages    BIGINT NOT NULL,
    PRIMARY KEY (guild_id, author_id)
);
CREATE INDEX author_totals_by_count ON author_totals (guild_id, messages DESC, author_id);

-- Backfill from the messages already stored, so an upgraded database is
-- consistent. (read.rs has the same statements as REBUILD_ROLLUPS, used
-- after bulk loads that bypass the write path.)
INSERT INTO channel_days (guild_id, day, channel_id, messages)
    SELECT guild_id, (created_at AT TIME ZONE 'UTC')::date, channel_id, COUNT(*)
    FROM messages GROUP BY 1, 2, 3;
INSERT INTO author_days (guild_id, author_id, day, messages)
    SELECT guild_id, author_id, (created_at AT TIME ZONE 'UTC')::date, COUNT(*)
    FROM messages GROUP BY 1, 2, 3;
INSERT INTO author_totals (guild_id, author_id, messages)
    SELECT guild_id, author_id, SUM(messages) FROM author_days GROUP BY 1, 2;
ANALYZE channel_days;
ANALYZE author_days;
ANALYZE author_totals;
