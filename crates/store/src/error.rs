//! The store's error type.

use std::path::PathBuf;

/// What went wrong in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database could not be opened.
    Open,
    /// A migration failed, or the schema is newer than this binary.
    Schema,
    /// A write or read failed.
    Query,
}

/// An error from the store, with the database and the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step} ({path}): {source}")]
pub struct StoreError {
    /// What went wrong.
    pub kind: StoreErrorKind,
    /// The database file.
    pub path: PathBuf,
    /// What the store was doing, lowercase, e.g. "while writing a batch".
    pub step: String,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    pub(crate) fn new(
        kind: StoreErrorKind,
        path: &std::path::Path,
        step: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self { kind, path: path.to_owned(), step: step.into(), source: source.into() }
    }
}
