//! Finding a prefix command (`!role add Chess`) at the start of a message.
//!
//! This is the only place message content is looked at beyond the optional
//! keyed hash. It borrows the content and allocates nothing unless the
//! message is a command, which keeps MESSAGE_CREATE, the hot event, as cheap
//! as before for ordinary chat.

use crate::PrefixCommands;

/// A command line found in a message, borrowed from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommandLine<'c> {
    /// The command name as configured (not as typed).
    pub(crate) name: &'c str,
    /// The rest of the message after the name, trimmed; may be empty.
    pub(crate) args: &'c str,
}

/// The command `content` starts with, if it is one of `commands`: the prefix
/// exactly as configured, immediately followed by a command name (compared
/// without regard to case), then whitespace or the end.
pub(crate) fn find<'c>(content: &'c str, commands: &'c PrefixCommands) -> Option<CommandLine<'c>> {
    if commands.prefix.is_empty() {
        return None;
    }
    let rest = content.strip_prefix(commands.prefix.as_str())?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (typed, args) = rest.split_at(end);
    if typed.is_empty() {
        return None;
    }
    let name = commands
        .commands
        .iter()
        .find(|name| same_name(name, typed))?;
    Some(CommandLine {
        name,
        args: args.trim(),
    })
}

/// Whether two command names are equal without regard to case, without
/// allocating.
fn same_name(configured: &str, typed: &str) -> bool {
    if configured.is_ascii() && typed.is_ascii() {
        return configured.eq_ignore_ascii_case(typed);
    }
    configured
        .chars()
        .flat_map(char::to_lowercase)
        .eq(typed.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::{CommandLine, find};
    use crate::PrefixCommands;

    fn commands(prefix: &str) -> PrefixCommands {
        PrefixCommands {
            prefix: prefix.to_owned(),
            commands: ["role", "stats", "ping", "help", "Grüße"]
                .map(str::to_owned)
                .to_vec(),
        }
    }

    fn line<'c>(name: &'c str, args: &'c str) -> Option<CommandLine<'c>> {
        Some(CommandLine { name, args })
    }

    #[test]
    fn a_known_name_after_the_prefix_is_a_command() {
        let bang = commands("!");
        assert_eq!(
            find("!role add Chess Club", &bang),
            line("role", "add Chess Club")
        );
        assert_eq!(find("!ping", &bang), line("ping", ""));
        assert_eq!(find("!stats   me  ", &bang), line("stats", "me"));
        assert_eq!(find("!help\nrole", &bang), line("help", "role"));
        assert_eq!(find("!ROLE list", &bang), line("role", "list"));
        assert_eq!(find("!grüsse", &bang), None);
        assert_eq!(find("!GRÜSSE", &bang), None);
        assert_eq!(find("!GRÜßE hi", &bang), line("Grüße", "hi"));
    }

    #[test]
    fn anything_else_is_not_a_command() {
        let bang = commands("!");
        for content in [
            "",
            "!",
            "! role add Chess",
            "role add Chess",
            " !role add Chess",
            "!roles",
            "!rolex add",
            "!unknown thing",
            "hello !role add Chess",
            "?role add Chess",
        ] {
            assert_eq!(find(content, &bang), None, "{content:?}");
        }
    }

    #[test]
    fn the_prefix_is_matched_exactly_and_may_be_long() {
        let long = commands("gs!");
        assert_eq!(find("gs!ping", &long), line("ping", ""));
        assert_eq!(find("GS!ping", &long), None);
        assert_eq!(find("!ping", &long), None);
    }

    #[test]
    fn an_empty_prefix_matches_nothing() {
        let empty = commands("");
        assert_eq!(find("ping", &empty), None);
        assert_eq!(find("role add Chess", &empty), None);
    }
}
