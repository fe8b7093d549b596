//! `guildscope migrate`: create or upgrade the statistics database.

use std::process::ExitCode;

use guildscope_store::SqliteStore;

use crate::{
    cli::MigrateArgs,
    config::{Config, Overrides, Storage},
};

/// Applies pending migrations and reports the schema version.
pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides { database: args.config.database, ..Overrides::default() };
    let config = Config::load(args.config.config.as_deref(), &overrides)?;
    let Storage::Sqlite(path) = &config.storage;
    let store = SqliteStore::open(path)?;
    println!("{}: schema version {}", path.display(), store.schema_version()?);
    Ok(ExitCode::SUCCESS)
}
