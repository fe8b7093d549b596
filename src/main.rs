//! The `guildscope` command: a thin layer that parses arguments, loads the
//! configuration and wires the crates together. Logic lives in `crates/*`.

mod cli;
mod cmd;
mod config;
mod logging;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the whole chain of causes, outermost first.
            eprintln!("guildscope: {error:#}");
            ExitCode::FAILURE
        }
    }
}
