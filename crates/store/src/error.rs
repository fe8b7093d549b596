//! The store's error type.

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
#[error("{step} ({database}): {source}")]
pub struct StoreError {
    /// What went wrong.
    pub kind: StoreErrorKind,
    /// The database: a file path, or a PostgreSQL URL without its password.
    pub database: String,
    /// What the store was doing, lowercase, e.g. "while writing a batch".
    pub step: String,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    pub(crate) fn new(
        kind: StoreErrorKind,
        database: &str,
        step: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            database: database.to_owned(),
            step: step.into(),
            source: source.into(),
        }
    }
}
