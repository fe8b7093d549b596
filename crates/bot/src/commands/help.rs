//! `/help`: the commands the caller may use here, with their help text (the
//! doc comments in [`catalog`](super::catalog)). Commands a feature flag
//! keeps from the caller are left out.

use guildscope_discord::OptionKind;

use super::{Answer, CommandContext, Invocation, catalog};
use crate::flags::Flags;

/// `/help`; only the caller sees it.
pub(super) fn help(ctx: &CommandContext, invocation: &Invocation, flags: &Flags) -> Answer {
    let mut text = String::from("**Commands you can use here**");
    for spec in catalog::specs() {
        if flags.hides(&spec.name, invocation.subject()) {
            continue;
        }
        let subcommands: Vec<_> = spec
            .options
            .iter()
            .filter(|o| o.kind == OptionKind::SubCommand)
            .collect();
        if subcommands.is_empty() {
            let usage = catalog::usage(&spec.name, None, &spec.options);
            text.push_str(&format!("\n`/{usage}`: {}", spec.description));
        } else {
            text.push_str(&format!("\n**/{}**: {}", spec.name, spec.description));
            for sub in subcommands {
                let usage = catalog::usage(&spec.name, Some(sub), &sub.options);
                text.push_str(&format!("\n  `/{usage}`: {}", sub.description));
            }
        }
    }
    if let Some(prefix) = &ctx.prefix {
        text.push_str(&format!(
            "\nEach also works as a message starting with `{prefix}`, such as `{prefix}stats me`."
        ));
    }
    Answer::private(text)
}
