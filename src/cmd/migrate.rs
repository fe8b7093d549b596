//! `guildscope migrate`: create or upgrade the statistics database.

use std::process::ExitCode;

use guildscope_store::Store;

use crate::{
    cli::MigrateArgs,
    config::{Config, Overrides},
};

/// Applies pending migrations and reports the schema version.
pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        database: args.config.database,
        ..Overrides::default()
    };
    let config = Config::load(args.config.config.as_deref(), &overrides)?;
    let mut store = Store::open(&config.storage)?;
    println!(
        "{}: schema version {}",
        config.storage,
        store.schema_version()?
    );
    Ok(ExitCode::SUCCESS)
}
