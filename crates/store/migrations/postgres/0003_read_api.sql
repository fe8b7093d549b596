-- Indexes for the read API (crates/store/src/read.rs).
--
-- Guild-wide window queries (messages per channel, top channels, activity
-- blocks, top authors) read only (guild_id, created_at, channel_id,
-- author_id): a covering index lets them run as index-only scans. It
-- replaces the narrower index of the same name.
DROP INDEX messages_by_guild;
CREATE INDEX messages_by_guild ON messages (guild_id, created_at) INCLUDE (channel_id, author_id);
-- One author's count (`/stats me`) filters on the guild too.
DROP INDEX messages_by_author;
CREATE INDEX messages_by_author ON messages (author_id, created_at) INCLUDE (guild_id);
-- Joins and leaves per day.
CREATE INDEX members_by_joined ON members (guild_id, joined_at) WHERE joined_at IS NOT NULL;
CREATE INDEX members_by_left ON members (guild_id, left_at) WHERE left_at IS NOT NULL;
-- Help-forum threads in use.
CREATE INDEX threads_open_by_parent ON threads (parent_id) WHERE NOT archived AND NOT is_deleted;
