//! Slash command definitions, in guildscope's own small vocabulary.
//!
//! The bot crate describes its commands with these types; this module turns
//! them into twilight's `Command` for `PUT applications/{id}/commands`.

use twilight_model::{
    application::command::{
        Command, CommandOption, CommandOptionChoice, CommandOptionChoiceValue, CommandOptionType,
        CommandType,
    },
    id::Id,
};

use guildscope_model::GuildId;

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
