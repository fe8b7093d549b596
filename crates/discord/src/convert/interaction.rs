//! INTERACTION_CREATE, from twilight's interaction model to guildscope's.
//!
//! Interactions are rare next to messages and their option trees are
//! intricate (nested subcommands, focused autocomplete values, typed ids), so
//! they go through twilight-model's own deserializer rather than a lean
//! mirror; this module flattens the result into `guildscope_model` types.

use guildscope_model::{
    ApplicationId, ChannelId, CommandOption, CommandValue, GuildId, Interaction, InteractionId,
    InteractionKind, RoleId, Secret, UserId,
};
use twilight_model::application::interaction::{
    Interaction as WireInteraction, InteractionData, InteractionType,
    application_command::{CommandDataOption, CommandOptionValue},
};

/// Why an interaction could not be turned into a domain interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsupported {
    /// A component, modal or ping interaction: guildscope has no use for it.
    Kind,
    /// A command interaction without an invoking user or command data.
    Incomplete,
}

/// Converts a command or autocomplete interaction.
pub(crate) fn convert(wire: WireInteraction) -> Result<Interaction, Unsupported> {
    let kind = match wire.kind {
        InteractionType::ApplicationCommand => InteractionKind::Command,
        InteractionType::ApplicationCommandAutocomplete => InteractionKind::Autocomplete,
        _ => return Err(Unsupported::Kind),
    };
    let user_id = wire.author_id().ok_or(Unsupported::Incomplete)?;
    let Some(InteractionData::ApplicationCommand(data)) = wire.data else {
        return Err(Unsupported::Incomplete);
    };
    // `channel_id` is deprecated in favour of `channel`, but older payloads
    // (and other Discord implementations) may send only the former.
    #[allow(deprecated)]
    let legacy_channel_id = wire.channel_id;
    let member_roles = wire
        .member
        .map(|member| {
            member
                .roles
                .into_iter()
                .map(|r| RoleId::new(r.get()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Interaction {
        id: InteractionId::new(wire.id.get()),
        application_id: ApplicationId::new(wire.application_id.get()),
        token: Secret::new(wire.token),
        kind,
        guild_id: wire.guild_id.map(|g| GuildId::new(g.get())),
        channel_id: wire
            .channel
            .as_ref()
            .map(|c| c.id)
            .or(legacy_channel_id)
            .map(|c| ChannelId::new(c.get())),
        user_id: UserId::new(user_id.get()),
        member_roles,
        name: data.name,
        options: options(data.options),
    })
}

/// Converts an option list, recursing into subcommands and groups.
fn options(options: Vec<CommandDataOption>) -> Vec<CommandOption> {
    options
        .into_iter()
        .map(|option| CommandOption {
            name: option.name,
            value: value(option.value),
        })
        .collect()
}

/// Converts one option value; every id kind becomes `CommandValue::Id`.
fn value(value: CommandOptionValue) -> CommandValue {
    match value {
        CommandOptionValue::String(text) => CommandValue::String(text),
        CommandOptionValue::Integer(number) => CommandValue::Integer(number),
        CommandOptionValue::Number(number) => CommandValue::Number(number),
        CommandOptionValue::Boolean(flag) => CommandValue::Boolean(flag),
        CommandOptionValue::User(id) => CommandValue::Id(id.get()),
        CommandOptionValue::Channel(id) => CommandValue::Id(id.get()),
        CommandOptionValue::Role(id) => CommandValue::Id(id.get()),
        CommandOptionValue::Mentionable(id) => CommandValue::Id(id.get()),
        CommandOptionValue::Attachment(id) => CommandValue::Id(id.get()),
        CommandOptionValue::SubCommand(nested) | CommandOptionValue::SubCommandGroup(nested) => {
            CommandValue::SubCommand(options(nested))
        }
        CommandOptionValue::Focused(partial, _) => CommandValue::Focused(partial),
    }
}
