//! The schemas and their migrations.
//!
//! Migrations are numbered SQL files under `migrations/<dialect>/`, applied
//! in order inside one transaction. A database whose version is newer than
//! [`SCHEMA_VERSION`] was written by a newer guildscope and is refused rather
//! than guessed at.

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = SQLITE_MIGRATIONS.len() as i64;

/// SQLite migrations; migration `n` (1-based) moves the schema from `n - 1`
/// to `n`. The applied version lives in SQLite's `user_version`.
pub(crate) const SQLITE_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_backfill.sql"),
    include_str!("../migrations/sqlite/0003_read_api.sql"),
    include_str!("../migrations/sqlite/0004_rollups.sql"),
];

/// PostgreSQL migrations, one per SQLite migration with the same number.
/// The applied version lives in `guildscope_schema`.
pub(crate) const POSTGRES_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_backfill.sql"),
    include_str!("../migrations/postgres/0003_read_api.sql"),
    include_str!("../migrations/postgres/0004_rollups.sql"),
];

// Both dialects must move in step.
const _: () = assert!(SQLITE_MIGRATIONS.len() == POSTGRES_MIGRATIONS.len());
