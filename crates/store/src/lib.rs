//! Privacy-friendly community statistics storage.
//!
//! Only this crate speaks SQL. It stores ids, authors, timestamps and flags
//! about guilds, channels, threads, members and messages; no table has a column
//! that could hold message content.
//!
//! # Layout
//!
//! - [`row`]: the rows the store accepts ([`Op`]) and the counts it reports.
//! - [`sqlite`]: the embedded SQLite back end (one file, WAL, one transaction per batch).
//! - [`migrate`]: the schema and its versioned migrations.
//! - [`error`]: [`StoreError`].

pub mod error;
pub mod migrate;
pub mod row;
pub mod sqlite;

pub use error::{StoreError, StoreErrorKind};
pub use migrate::SCHEMA_VERSION;
pub use row::{ChannelRow, MemberRow, MessageRow, Op, RowCounts, ThreadRow};
pub use sqlite::SqliteStore;
