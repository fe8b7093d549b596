-- Backfill progress: one row per channel (or thread) and window, so that an
-- interrupted backfill of the same window continues where it stopped.
-- The window is a pair of snowflake bounds: messages with
-- since_id < id < until_id; until_id 0 is an open window ("up to now") that
-- each run catches up from its cursor.
CREATE TABLE backfill_progress (
    channel_id        BIGINT NOT NULL,
    since_id          BIGINT NOT NULL,
    until_id          BIGINT NOT NULL,
    guild_id          BIGINT NOT NULL,
    -- The newest message fetched so far; the next page starts after it.
    cursor_id         BIGINT NOT NULL,
    -- True once the whole window was fetched.
    done              BOOLEAN NOT NULL DEFAULT false,
    messages_seen     BIGINT NOT NULL DEFAULT 0,
    messages_inserted BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, since_id, until_id)
);
