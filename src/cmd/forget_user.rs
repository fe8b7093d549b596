//! `guildscope forget-user`: erase one user on request, and say exactly what
//! changed.

use std::process::ExitCode;

use anyhow::Context;
use guildscope_store::{MessageErasure, Store};

use crate::{
    cli::{ForgetMessages, ForgetUserArgs},
    config::{Config, Overrides},
};

/// Forgets the user in one transaction and prints what changed. Runs on a
/// blocking thread: the store's clients block.
pub fn run(args: ForgetUserArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        database: args.config.database,
        ..Overrides::default()
    };
    let config = Config::load(args.config.config.as_deref(), &overrides)?;
    let messages = match args.messages {
        Some(ForgetMessages::Delete) => MessageErasure::Delete,
        Some(ForgetMessages::Anonymise) => MessageErasure::Anonymise,
        None => config.forget_messages,
    };
    let mut store = Store::open(&config.storage).context("while opening the database")?;
    let erasure = store
        .forget_user(args.user, messages)
        .with_context(|| format!("while forgetting user {}", args.user))?;
    println!("{erasure}");
    Ok(ExitCode::SUCCESS)
}
