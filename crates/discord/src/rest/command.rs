//! Slash command definitions, in guildscope's own small vocabulary.
//!
//! The bot crate describes its commands with these types; this module turns
//! them into twilight's `Command` for `PUT applications/{id}/commands`, and
//! back from what `GET applications/{id}/commands` answers.

use twilight_model::{
    application::command::{
        Command, CommandOption, CommandOptionChoice, CommandOptionChoiceValue, CommandOptionType,
        CommandType,
    },
    id::Id,
};

use guildscope_model::GuildId;

use super::Undecodable;

/// Decodes the answer of `GET applications/{id}/commands` (global or guild):
/// the commands in guildscope's terms. A command guildscope could not have
/// registered makes the whole answer undecodable, so that a caller comparing
/// it with its own commands never takes it for theirs.
pub(super) fn decode_commands(bytes: &[u8]) -> Result<Vec<CommandSpec>, Undecodable> {
    let commands: Vec<Command> = serde_json::from_slice(bytes).map_err(|_| Undecodable)?;
    commands
        .iter()
        .map(CommandSpec::from_twilight)
        .collect::<Option<_>>()
        .ok_or(Undecodable)
}

/// Where commands are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandScope {
    /// Everywhere the bot is (`PUT applications/{id}/commands`).
    Global,
    /// One guild only, visible at once (`PUT applications/{id}/guilds/{id}/commands`).
    Guild(GuildId),
}

/// A slash command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// The command name, lowercase.
    pub name: String,
    /// The help text shown in Discord's command picker.
    pub description: String,
    /// Options, or subcommands (and groups).
    pub options: Vec<OptionSpec>,
}

/// One option, subcommand or subcommand group.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSpec {
    /// The option name, lowercase.
    pub name: String,
    /// The help text.
    pub description: String,
    /// The value type (or subcommand).
    pub kind: OptionKind,
    /// Whether the user must fill it in.
    pub required: bool,
    /// Whether Discord asks the bot for choices as the user types.
    pub autocomplete: bool,
    /// Fixed choices.
    pub choices: Vec<Choice>,
    /// The options of a subcommand, or the subcommands of a group.
    pub options: Vec<OptionSpec>,
}

/// The type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A subcommand with its own options.
    SubCommand,
    /// A group of subcommands.
    SubCommandGroup,
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// Yes or no.
    Boolean,
    /// A user.
    User,
    /// A channel.
    Channel,
    /// A role.
    Role,
    /// A user or a role.
    Mentionable,
}

/// A fixed choice for an option.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// What the user sees.
    pub name: String,
    /// What the bot receives.
    pub value: ChoiceValue,
}

/// The value of a [`Choice`].
#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceValue {
    /// Text.
    String(String),
    /// A whole number.
    Integer(i64),
    /// A number.
    Number(f64),
}

impl CommandSpec {
    /// A command without options.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            options: Vec::new(),
        }
    }

    /// Adds an option or subcommand.
    #[must_use]
    pub fn option(mut self, option: OptionSpec) -> Self {
        self.options.push(option);
        self
    }

    /// This command as Discord stores and returns it, to compare with what
    /// [`Rest::commands`](crate::Rest::commands) reads back: what the wire
    /// format cannot carry (a required subcommand) is dropped.
    pub fn as_registered(&self) -> Self {
        Self::from_twilight(&self.to_twilight()).unwrap_or_else(|| self.clone())
    }

    /// A registered command in guildscope's terms, ignoring what Discord
    /// adds (ids, versions, localizations, defaults); `None` for what
    /// guildscope never registers (context-menu commands, option types it
    /// does not use).
    pub(crate) fn from_twilight(command: &Command) -> Option<Self> {
        if command.kind != CommandType::ChatInput {
            return None;
        }
        Some(Self {
            name: command.name.clone(),
            description: command.description.clone(),
            options: command
                .options
                .iter()
                .map(OptionSpec::from_twilight)
                .collect::<Option<_>>()?,
        })
    }

    /// twilight's command.
    #[allow(deprecated)] // `dm_permission` must still be set, to `None`.
    pub(crate) fn to_twilight(&self) -> Command {
        Command {
            application_id: None,
            contexts: None,
            default_member_permissions: None,
            description: self.description.clone(),
            description_localizations: None,
            dm_permission: None,
            guild_id: None,
            id: None,
            integration_types: None,
            kind: CommandType::ChatInput,
            name: self.name.clone(),
            name_localizations: None,
            nsfw: None,
            options: self.options.iter().map(OptionSpec::to_twilight).collect(),
            // Ignored by Discord when registering; twilight requires one.
            version: Id::new(1),
        }
    }
}

impl OptionSpec {
    /// An optional option of `kind`, without choices.
    pub fn new(kind: OptionKind, name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            kind,
            required: false,
            autocomplete: false,
            choices: Vec::new(),
            options: Vec::new(),
        }
    }

    /// A subcommand with its options.
    pub fn subcommand(
        name: impl Into<String>,
        description: impl Into<String>,
        options: Vec<OptionSpec>,
    ) -> Self {
        Self {
            options,
            ..Self::new(OptionKind::SubCommand, name, description)
        }
    }

    /// Marks the option as required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Asks Discord to request choices from the bot as the user types.
    #[must_use]
    pub fn autocomplete(mut self) -> Self {
        self.autocomplete = true;
        self
    }

    /// Adds a fixed choice.
    #[must_use]
    pub fn choice(mut self, name: impl Into<String>, value: ChoiceValue) -> Self {
        self.choices.push(Choice {
            name: name.into(),
            value,
        });
        self
    }

    /// An option in guildscope's terms; `None` for a type guildscope does
    /// not use.
    fn from_twilight(option: &CommandOption) -> Option<Self> {
        let kind = match option.kind {
            CommandOptionType::SubCommand => OptionKind::SubCommand,
            CommandOptionType::SubCommandGroup => OptionKind::SubCommandGroup,
            CommandOptionType::String => OptionKind::String,
            CommandOptionType::Integer => OptionKind::Integer,
            CommandOptionType::Number => OptionKind::Number,
            CommandOptionType::Boolean => OptionKind::Boolean,
            CommandOptionType::User => OptionKind::User,
            CommandOptionType::Channel => OptionKind::Channel,
            CommandOptionType::Role => OptionKind::Role,
            CommandOptionType::Mentionable => OptionKind::Mentionable,
            _ => return None,
        };
        let choices = option
            .choices
            .iter()
            .flatten()
            .map(|choice| Choice {
                name: choice.name.clone(),
                value: match &choice.value {
                    CommandOptionChoiceValue::String(text) => ChoiceValue::String(text.clone()),
                    CommandOptionChoiceValue::Integer(number) => ChoiceValue::Integer(*number),
                    CommandOptionChoiceValue::Number(number) => ChoiceValue::Number(*number),
                },
            })
            .collect();
        Some(Self {
            name: option.name.clone(),
            description: option.description.clone(),
            kind,
            required: option.required.unwrap_or(false),
            autocomplete: option.autocomplete.unwrap_or(false),
            choices,
            options: option
                .options
                .iter()
                .flatten()
                .map(Self::from_twilight)
                .collect::<Option<_>>()?,
        })
    }

    /// twilight's option.
    fn to_twilight(&self) -> CommandOption {
        let is_subcommand = matches!(
            self.kind,
            OptionKind::SubCommand | OptionKind::SubCommandGroup
        );
        CommandOption {
            autocomplete: self.autocomplete.then_some(true),
            channel_types: None,
            choices: (!self.choices.is_empty()).then(|| {
                self.choices
                    .iter()
                    .map(|choice| CommandOptionChoice {
                        name: choice.name.clone(),
                        name_localizations: None,
                        value: match &choice.value {
                            ChoiceValue::String(text) => {
                                CommandOptionChoiceValue::String(text.clone())
                            }
                            ChoiceValue::Integer(number) => {
                                CommandOptionChoiceValue::Integer(*number)
                            }
                            ChoiceValue::Number(number) => {
                                CommandOptionChoiceValue::Number(*number)
                            }
                        },
                    })
                    .collect()
            }),
            description: self.description.clone(),
            description_localizations: None,
            kind: match self.kind {
                OptionKind::SubCommand => CommandOptionType::SubCommand,
                OptionKind::SubCommandGroup => CommandOptionType::SubCommandGroup,
                OptionKind::String => CommandOptionType::String,
                OptionKind::Integer => CommandOptionType::Integer,
                OptionKind::Number => CommandOptionType::Number,
                OptionKind::Boolean => CommandOptionType::Boolean,
                OptionKind::User => CommandOptionType::User,
                OptionKind::Channel => CommandOptionType::Channel,
                OptionKind::Role => CommandOptionType::Role,
                OptionKind::Mentionable => CommandOptionType::Mentionable,
            },
            max_length: None,
            max_value: None,
            min_length: None,
            min_value: None,
            name: self.name.clone(),
            name_localizations: None,
            options: is_subcommand.then(|| self.options.iter().map(Self::to_twilight).collect()),
            file_types: None,
            // Discord rejects `required` on subcommands.
            required: (!is_subcommand && self.required).then_some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_command() -> CommandSpec {
        CommandSpec::new("role", "Subscribe to game roles.")
            .option(OptionSpec::subcommand(
                "add",
                "Give yourself a role.",
                vec![
                    OptionSpec::new(OptionKind::String, "role", "The role.")
                        .required()
                        .autocomplete(),
                ],
            ))
            .option(OptionSpec::subcommand("list", "Your roles.", Vec::new()))
    }

    #[test]
    fn a_command_comes_back_as_it_was_registered() {
        let spec = role_command().option(
            OptionSpec::subcommand(
                "top",
                "Top posters.",
                vec![
                    OptionSpec::new(OptionKind::Integer, "days", "Days.")
                        .choice("week", ChoiceValue::Integer(7))
                        .choice("month", ChoiceValue::Integer(30)),
                ],
            )
            // Discord has no required subcommands: this is dropped.
            .required(),
        );
        let back = CommandSpec::from_twilight(&spec.to_twilight()).unwrap();
        assert_eq!(back, spec.as_registered());
        assert_ne!(back, spec);
        assert!(!back.options[2].required);
        assert_eq!(back.options[..2], spec.options[..2]);
    }

    #[test]
    fn what_discord_adds_is_ignored() {
        // As Discord answers GET applications/{id}/commands: ids, versions,
        // permissions and defaults added, `required: false` spelled out.
        let answer = r#"[{
            "id": "1266000000000000001",
            "application_id": "1266000000000000000",
            "version": "1266000000000000002",
            "default_member_permissions": null,
            "type": 1,
            "name": "role",
            "name_localizations": null,
            "description": "Subscribe to game roles.",
            "description_localizations": null,
            "dm_permission": true,
            "contexts": null,
            "integration_types": [0],
            "nsfw": false,
            "options": [
                {"type": 1, "name": "add", "description": "Give yourself a role.", "options": [
                    {"type": 3, "name": "role", "description": "The role.", "required": true, "autocomplete": true}
                ]},
                {"type": 1, "name": "list", "description": "Your roles."}
            ]
        }]"#;
        let decoded = decode_commands(answer.as_bytes()).ok().unwrap();
        assert_eq!(decoded, vec![role_command().as_registered()]);
    }

    #[test]
    fn a_command_guildscope_never_registers_is_not_taken_for_one() {
        let user_command = r#"[{"id": "1", "application_id": "2", "version": "3",
            "type": 2, "name": "Profile", "description": ""}]"#;
        assert!(decode_commands(user_command.as_bytes()).is_err());
        let attachment = r#"[{"id": "1", "application_id": "2", "version": "3",
            "type": 1, "name": "upload", "description": "Upload.",
            "options": [{"type": 11, "name": "file", "description": "A file."}]}]"#;
        assert!(decode_commands(attachment.as_bytes()).is_err());
        assert_eq!(decode_commands(b"[]").ok(), Some(Vec::new()));
    }
}
