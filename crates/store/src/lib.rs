//! Privacy-friendly community statistics storage.
//!
//! Only this crate speaks SQL. It stores ids, authors, timestamps and flags
//! about guilds, channels, threads, members and messages; no table has a column
//! that could hold message content.
//!
//! # Layout
//!
//! - [`row`]: the writes the store accepts ([`Op`]) and the counts it reports.
//! - [`backend`]: [`Store`], one type over both back ends, and [`Location`].
//! - [`sqlite`]: the embedded SQLite back end (one file, WAL, one transaction per batch).
//! - [`postgres`]: the PostgreSQL back end (one `UNNEST` statement per run of writes).
//! - [`read`]: the statistics read API (counts per channel, author, block, day).
//! - [`migrate`]: the schemas and their versioned migrations.
//! - [`error`]: the error type, [`StoreError`].
//! - [`backfill`]: the channel list and per-channel progress of history backfills.
//! - [`erase`]: [`Store::forget_user`], erasing a user in one transaction.

pub mod backend;
pub mod backfill;
pub mod erase;
pub mod error;
pub mod migrate;
pub mod postgres;
pub mod read;
pub mod row;
pub mod sqlite;

pub use backend::{Location, Store};
pub use backfill::{BackfillTarget, BackfillWindow, ChannelProgress};
pub use erase::{ANONYMOUS_AUTHOR, Erasure, MessageErasure};
pub use error::{StoreError, StoreErrorKind};
pub use migrate::SCHEMA_VERSION;
pub use postgres::PostgresStore;
pub use read::{
    ActivityBlock, ActivityScope, AuthorCount, ChannelCount, ExistingDatabase, ForumThreads,
    MembershipDay, SyntheticSpec, TimeWindow, create_postgres_database,
};
pub use row::{ChannelRow, MemberRow, MessageRow, Op, RowCounts, ThreadRow};
pub use sqlite::SqliteStore;
