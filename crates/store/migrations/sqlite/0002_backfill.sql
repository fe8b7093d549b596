-- Backfill progress: one row per channel (or thread) and window, so that an
-- interrupted backfill of the same window continues where it stopped.
-- The window is a pair of snowflake bounds: messages with
-- since_id < id < until_id; until_id 0 is an open window ("up to now") that
-- each run catches up from its cursor.
CREATE TABLE backfill_progress (
    channel_id        INTEGER NOT NULL,
    since_id          INTEGER NOT NULL,
    until_id          INTEGER NOT NULL,
    guild_id          INTEGER NOT NULL,
    -- The newest message fetched so far; the next page starts after it.
    cursor_id         INTEGER NOT NULL,
    -- 1 once the whole window was fetched.
    done              INTEGER NOT NULL DEFAULT 0,
    messages_seen     INTEGER NOT NULL DEFAULT 0,
    messages_inserted INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (channel_id, since_id, until_id)
) WITHOUT ROWID;
