//! The commands guildscope offers, declared once: registered as slash
//! commands, parsed from `!`-prefix messages, and listed by `/help`.
//!
//! Each command, subcommand and option takes its description from the doc
//! comment written above it (the [`doc!`] macro), so the help text lives
//! next to the declaration and nowhere else.

use guildscope_discord::{CommandSpec, OptionKind, OptionSpec};
use guildscope_model::{CommandOption, CommandValue};

/// The text of the doc comments given to it, as one line: a command's or
/// option's description.
macro_rules! doc {
    ($(#[doc = $line:literal])+) => {
        $crate::commands::catalog::join_doc(&[$($line),+])
    };
}

/// Doc comment lines joined into one description.
pub(crate) fn join_doc(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every command guildscope registers, in the order `/help` lists them.
pub fn specs() -> Vec<CommandSpec> {
    vec![
        CommandSpec::new(
            "role",
            doc!(
                /// Subscribe to game roles, so a squad can ping everyone who plays.
            ),
        )
        .option(OptionSpec::subcommand(
            "add",
            doc!(
                /// Give yourself a role.
            ),
            vec![role_option()],
        ))
        .option(OptionSpec::subcommand(
            "remove",
            doc!(
                /// Take a role off yourself.
            ),
            vec![role_option()],
        ))
        .option(OptionSpec::subcommand(
            "list",
            doc!(
                /// The roles you can give yourself, and which you have.
            ),
            Vec::new(),
        )),
        CommandSpec::new(
            "stats",
            doc!(
                /// Community statistics.
            ),
        )
        .option(OptionSpec::subcommand(
            "server",
            doc!(
                /// Members, messages in the last 24 hours and 7 days, and the busiest channels.
            ),
            Vec::new(),
        ))
        .option(OptionSpec::subcommand(
            "channel",
            doc!(
                /// Messages in a channel over 24 hours and 7 days, and how it ranks this week.
            ),
            vec![OptionSpec::new(
                OptionKind::Channel,
                "channel",
                doc!(
                    /// The channel (this one if left out).
                ),
            )],
        ))
        .option(OptionSpec::subcommand(
            "me",
            doc!(
                /// Your own messages over 24 hours and 7 days (only you see the answer).
            ),
            Vec::new(),
        ))
        .option(OptionSpec::subcommand(
            "help",
            doc!(
                /// Help-forum threads in use right now.
            ),
            Vec::new(),
        )),
        CommandSpec::new(
            "ping",
            doc!(
                /// Gateway heartbeat latency and a measured REST round trip.
            ),
        ),
        CommandSpec::new(
            "help",
            doc!(
                /// The commands you can use here.
            ),
        ),
    ]
}

fn role_option() -> OptionSpec {
    OptionSpec::new(
        OptionKind::String,
        "role",
        doc!(
            /// The role (start typing to pick one).
        ),
    )
    .required()
    .autocomplete()
}

/// The names of every command, for the gateway's prefix parser.
pub fn names() -> Vec<String> {
    specs().into_iter().map(|spec| spec.name).collect()
}

/// How to call a command or subcommand: `role add <role>`,
/// `stats channel [channel]`.
pub fn usage(command: &str, sub: Option<&OptionSpec>, options: &[OptionSpec]) -> String {
    let mut usage = command.to_owned();
    if let Some(sub) = sub {
        usage.push(' ');
        usage.push_str(&sub.name);
    }
    for option in options {
        let (open, close) = if option.required {
            ('<', '>')
        } else {
            ('[', ']')
        };
        usage.push_str(&format!(" {open}{}{close}", option.name));
    }
    usage
}

/// Why a prefix command's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The command is not one guildscope has.
    UnknownCommand,
    /// A subcommand is missing or unknown; lists the usages.
    Subcommand {
        /// Every subcommand's usage.
        usages: Vec<String>,
    },
    /// An option is missing or malformed.
    Option {
        /// The option.
        name: String,
        /// What was wrong with it.
        problem: &'static str,
        /// The usage of the (sub)command.
        usage: String,
    },
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownCommand => f.write_str("that is not a command this bot knows"),
            Self::Subcommand { usages } => {
                f.write_str("use one of: ")?;
                let list: Vec<String> = usages.iter().map(|u| format!("`{u}`")).collect();
                f.write_str(&list.join(", "))
            }
            Self::Option {
                name,
                problem,
                usage,
            } => write!(f, "`{name}` {problem}; use `{usage}`"),
        }
    }
}

/// Reads a prefix command's arguments (`add Chess Club`) into the options a
/// slash command would have carried: a subcommand word first when the
/// command has subcommands, then one word per option, the last text option
/// taking the rest of the line. Mentions (`<#id>`, `<@id>`, `<@&id>`) and
/// bare ids fill channel, user and role options.
pub fn parse_prefix(command: &str, args: &str) -> Result<Vec<CommandOption>, ParseError> {
    let specs = specs();
    let spec = specs
        .iter()
        .find(|spec| spec.name == command)
        .ok_or(ParseError::UnknownCommand)?;
    let args = args.trim();
    let subcommands: Vec<&OptionSpec> = spec
        .options
        .iter()
        .filter(|o| o.kind == OptionKind::SubCommand)
        .collect();
    if subcommands.is_empty() {
        return parse_options(&spec.name, None, &spec.options, args);
    }
    let (word, rest) = split_word(args);
    let Some(sub) = subcommands
        .iter()
        .find(|sub| sub.name.eq_ignore_ascii_case(word))
    else {
        return Err(ParseError::Subcommand {
            usages: subcommands
                .iter()
                .map(|sub| usage(&spec.name, Some(sub), &sub.options))
                .collect(),
        });
    };
    let options = parse_options(&spec.name, Some(sub), &sub.options, rest)?;
    Ok(vec![CommandOption {
        name: sub.name.clone(),
        value: CommandValue::SubCommand(options),
    }])
}

fn parse_options(
    command: &str,
    sub: Option<&OptionSpec>,
    specs: &[OptionSpec],
    mut rest: &str,
) -> Result<Vec<CommandOption>, ParseError> {
    let mut options = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let last = i + 1 == specs.len();
        let word = if last && spec.kind == OptionKind::String {
            std::mem::take(&mut rest).trim()
        } else {
            let (word, tail) = split_word(rest);
            rest = tail;
            word
        };
        let fail = |problem| ParseError::Option {
            name: spec.name.clone(),
            problem,
            usage: usage(command, sub, specs),
        };
        if word.is_empty() {
            if spec.required {
                return Err(fail("is missing"));
            }
            continue;
        }
        let value = match spec.kind {
            OptionKind::String => CommandValue::String(word.to_owned()),
            OptionKind::Integer => {
                CommandValue::Integer(word.parse().map_err(|_| fail("must be a whole number"))?)
            }
            OptionKind::Number => {
                CommandValue::Number(word.parse().map_err(|_| fail("must be a number"))?)
            }
            OptionKind::Boolean => {
                CommandValue::Boolean(match word.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" => true,
                    "false" | "no" | "off" => false,
                    _ => return Err(fail("must be yes or no")),
                })
            }
            OptionKind::Channel => CommandValue::Id(
                mention_id(word, &["<#"]).ok_or_else(|| fail("must be a channel"))?,
            ),
            OptionKind::User => CommandValue::Id(
                mention_id(word, &["<@!", "<@"]).ok_or_else(|| fail("must be a member"))?,
            ),
            OptionKind::Role => {
                CommandValue::Id(mention_id(word, &["<@&"]).ok_or_else(|| fail("must be a role"))?)
            }
            OptionKind::Mentionable => CommandValue::Id(
                mention_id(word, &["<@&", "<@!", "<@"]).ok_or_else(|| fail("must be a mention"))?,
            ),
            OptionKind::SubCommand | OptionKind::SubCommandGroup => continue,
        };
        options.push(CommandOption {
            name: spec.name.clone(),
            value,
        });
    }
    Ok(options)
}

/// The first whitespace-separated word and the rest.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    }
}

/// The id in a mention (`<#123>` with prefix `<#`) or a bare id.
fn mention_id(word: &str, prefixes: &[&str]) -> Option<u64> {
    let inner = prefixes
        .iter()
        .find_map(|p| word.strip_prefix(p).and_then(|w| w.strip_suffix('>')))
        .unwrap_or(word);
    inner.parse().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fit_discord_and_come_from_doc_comments() {
        fn check(option: &OptionSpec) {
            assert!(
                (1..=100).contains(&option.description.len()),
                "{}: {:?}",
                option.name,
                option.description
            );
            option.options.iter().for_each(check);
        }
        for spec in specs() {
            assert!((1..=100).contains(&spec.description.len()), "{}", spec.name);
            spec.options.iter().for_each(check);
        }
        let ping = specs().into_iter().find(|s| s.name == "ping").unwrap();
        assert_eq!(
            ping.description,
            "Gateway heartbeat latency and a measured REST round trip."
        );
    }

    fn sub(name: &str, options: Vec<CommandOption>) -> Vec<CommandOption> {
        vec![CommandOption {
            name: name.to_owned(),
            value: CommandValue::SubCommand(options),
        }]
    }

    #[test]
    fn prefix_arguments_become_options() {
        assert_eq!(
            parse_prefix("role", "add  Chess Club ").unwrap(),
            sub(
                "add",
                vec![CommandOption {
                    name: "role".into(),
                    value: CommandValue::String("Chess Club".into())
                }]
            )
        );
        assert_eq!(
            parse_prefix("stats", "CHANNEL <#42>").unwrap(),
            sub(
                "channel",
                vec![CommandOption {
                    name: "channel".into(),
                    value: CommandValue::Id(42)
                }]
            )
        );
        assert_eq!(
            parse_prefix("stats", "channel").unwrap(),
            sub("channel", vec![])
        );
        assert_eq!(parse_prefix("ping", "").unwrap(), vec![]);
        assert_eq!(parse_prefix("role", "list").unwrap(), sub("list", vec![]));
    }

    #[test]
    fn bad_prefix_arguments_say_how_to_call() {
        assert_eq!(
            parse_prefix("role", "add").unwrap_err().to_string(),
            "`role` is missing; use `role add <role>`"
        );
        assert_eq!(
            parse_prefix("stats", "channel general")
                .unwrap_err()
                .to_string(),
            "`channel` must be a channel; use `stats channel [channel]`"
        );
        let error = parse_prefix("role", "steal Admins")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "use one of: `role add <role>`, `role remove <role>`, `role list`"
        );
        assert_eq!(parse_prefix("nope", ""), Err(ParseError::UnknownCommand));
    }
}
