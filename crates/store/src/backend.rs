//! [`Store`]: one type over both back ends, chosen by the configured
//! location, so the writer and the read paths never branch on the database.

use std::path::PathBuf;

use guildscope_model::{MessageId, Secret};

use crate::{Op, PostgresStore, RowCounts, SqliteStore, StoreError, postgres::redact_url};

/// Where statistics live.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (it may carry a password, hence the `Secret`).
    Postgres(Secret),
}

impl Location {
    /// `postgres://...` or `postgresql://...` is PostgreSQL; anything else is
    /// an SQLite path (an optional `sqlite://` prefix is dropped).
    pub fn parse(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(Secret::new(url))
        } else {
            Self::Sqlite(PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url)))
        }
    }

    /// The database system, as OpenTelemetry's `db.system.name` names it.
    pub fn system_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for Location {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_url(url.expose())),
        }
    }
}

/// A statistics database.
#[derive(Debug)]
pub enum Store {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

impl Store {
    /// Opens (creating or migrating as needed) the database at `location`.
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        Ok(match location {
            Location::Sqlite(path) => Self::Sqlite(SqliteStore::open(path)?),
            Location::Postgres(url) => Self::Postgres(PostgresStore::open(url.expose())?),
        })
    }

    /// The schema version found in the database.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(s) => s.schema_version(),
            Self::Postgres(s) => s.schema_version(),
        }
    }

    /// Applies a batch of ops in one transaction and reports the rows written.
    pub fn apply(&mut self, ops: &[Op]) -> Result<RowCounts, StoreError> {
        match self {
            Self::Sqlite(s) => s.apply(ops),
            Self::Postgres(s) => s.apply(ops),
        }
    }

    /// Runs a query returning one integer (portable SQL only).
    pub fn count(&mut self, sql: &str) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(s) => s.count(sql),
            Self::Postgres(s) => s.count(sql),
        }
    }

    /// Messages stored per channel, deleted ones included.
    pub fn messages_per_channel(&mut self) -> Result<Vec<(u64, u64)>, StoreError> {
        match self {
            Self::Sqlite(s) => s.messages_per_channel(),
            Self::Postgres(s) => s.messages_per_channel(),
        }
    }

    /// Whether the message is stored, and whether it is flagged deleted.
    pub fn message_state(&mut self, id: MessageId) -> Result<Option<bool>, StoreError> {
        match self {
            Self::Sqlite(s) => s.message_state(id),
            Self::Postgres(s) => s.message_state(id),
        }
    }

    /// Overwrites the recorded schema version; for tests of version checks.
    #[doc(hidden)]
    pub fn set_schema_version_for_tests(&mut self, version: i64) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => s.set_schema_version_for_tests(version),
            Self::Postgres(s) => s.set_schema_version_for_tests(version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_told_apart_and_passwords_never_shown() {
        assert_eq!(
            Location::parse("stats.db"),
            Location::Sqlite("stats.db".into())
        );
        assert_eq!(
            Location::parse("sqlite://stats.db"),
            Location::Sqlite("stats.db".into())
        );
        let pg = Location::parse("postgres://bot:hunter2@db:5432/stats");
        assert!(matches!(pg, Location::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://bot:***@db:5432/stats");
        assert_eq!(format!("{pg:?}"), "postgres://bot:***@db:5432/stats");
    }
}
