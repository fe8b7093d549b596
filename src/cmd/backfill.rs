//! `guildscope backfill`: fill in the statistics for a window of the past
//! from each channel's history, with progress and a summary.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use anyhow::Context;
use guildscope_bot::{
    BackfillConfig, BackfillEvent, backfill,
    backfill::{ChannelSource, window_between},
};
use guildscope_discord::Rest;
use guildscope_model::ChannelKind;
use guildscope_store::{BackfillTarget, Store};

use crate::{
    cli::BackfillArgs,
    cmd::shutdown_signal,
    config::{Config, Overrides},
    logging,
};

/// Backfills until done or Ctrl-C; an interrupted run exits with 130 and a
/// rerun of the same window continues where it stopped.
pub async fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        api_base: args.api_base,
        database: args.config.database,
        ..Overrides::default()
    };
    let config = Config::load(args.config.config.as_deref(), &overrides)?;
    logging::init(&config.log_level, config.log_format);
    let discord = super::run::discord_config(&config)?;
    let window = window_between(args.since, args.until).context("while reading --since/--until")?;

    let location = config.storage.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&location))
        .await
        .context("while waiting for the database to open")?
        .context("while opening the database")?;
    let rest = Rest::new(&discord);
    let backfill_config = BackfillConfig {
        guild: args.guild,
        channel: args.channel,
        include_bots: config.include_bots,
        ignored_channels: config.ignored_channels.clone(),
        ..BackfillConfig::new(window)
    };
    let mut progress = Progress::new(std::io::stdout().is_terminal());
    let summary = backfill(
        &rest,
        store,
        &backfill_config,
        shutdown_signal(),
        &mut |event| progress.show(event),
    )
    .await;
    progress.clear();
    let summary = summary.context("the backfill stopped")?;
    println!(
        "backfill {}: channels done: {}, skipped: {}, ignored: {}; messages seen: {}, inserted: {}",
        if summary.interrupted {
            "interrupted (rerun the same command to continue)"
        } else {
            "complete"
        },
        summary.channels_done,
        summary.channels_skipped,
        summary.channels_ignored,
        summary.messages_seen,
        summary.messages_inserted,
    );
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Progress output: on a terminal one line rewritten as pages arrive, with
/// notes (skipped channels) kept above it; otherwise a line per channel.
struct Progress {
    terminal: bool,
    /// Whether the rewritable line currently shows something.
    dirty: bool,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            dirty: false,
        }
    }

    /// A line that stays.
    fn line(&mut self, text: &str) {
        self.clear();
        println!("{text}");
    }

    /// Erases the rewritable line, if shown.
    fn clear(&mut self) {
        if self.dirty {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
            self.dirty = false;
        }
    }

    fn show(&mut self, event: &BackfillEvent<'_>) {
        match event {
            BackfillEvent::ChannelsListed {
                guild_id,
                channels,
                source,
                refresh_error,
            } => {
                let from = match (source, refresh_error) {
                    (ChannelSource::Rest, _) => "listed over REST".to_owned(),
                    (ChannelSource::Store, Some(error)) => {
                        format!("from the database; REST refused: {error}")
                    }
                    (ChannelSource::Store, None) => "from the database".to_owned(),
                };
                self.line(&format!(
                    "guild {guild_id}: {channels} channels and threads ({from})"
                ));
            }
            BackfillEvent::Page {
                target,
                seen,
                inserted,
            } => {
                if self.terminal {
                    print!(
                        "\r\x1b[2K{}: {seen} seen, {inserted} new ...",
                        describe(target)
                    );
                    let _ = std::io::stdout().flush();
                    self.dirty = true;
                }
            }
            BackfillEvent::ChannelDone {
                target,
                seen,
                inserted,
                earlier,
            } => {
                if *earlier {
                    if !self.terminal {
                        self.line(&format!("{}: already complete", describe(target)));
                    }
                } else {
                    self.line(&format!(
                        "{}: {seen} seen, {inserted} new",
                        describe(target)
                    ));
                }
            }
            BackfillEvent::ChannelSkipped { target, error } => {
                self.line(&format!("{}: skipped ({error})", describe(target)));
            }
        }
    }
}

/// `#general (1234)` or `thread "help" in 5678 (1234)`.
fn describe(target: &BackfillTarget) -> String {
    match (target.kind, target.parent_id) {
        (ChannelKind::Thread, Some(parent)) => {
            format!(
                "thread {:?} in {parent} ({})",
                target.name, target.channel_id
            )
        }
        _ => format!("#{} ({})", target.name, target.channel_id),
    }
}
