-- PostgreSQL gains daily rollups in this version (see
-- migrations/postgres/0004_rollups.sql). SQLite keeps reading `messages`
-- directly through its covering indexes, so its schema does not change; the
-- version moves in step with PostgreSQL's.
SELECT 1;
