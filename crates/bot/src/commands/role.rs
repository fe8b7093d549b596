//! `/role add|remove|list`: members give themselves game roles, so a squad
//! can ping everyone who plays. What may be taken is decided by the
//! [`RoleDirectory`](crate::roles::RoleDirectory); every change is logged
//! with who, what and where.

use guildscope_model::{CommandOption, CommandValue, GuildId, Snowflake};

use super::{Answer, CommandContext, CommandError, Invocation};
use crate::roles::escaped;

/// Autocomplete for the `role` option: matching roles the caller may take.
pub(super) fn autocomplete(ctx: &CommandContext, invocation: &Invocation) -> Vec<(String, String)> {
    let Some(guild) = invocation.guild else {
        return Vec::new();
    };
    let partial = focused(&invocation.options).unwrap_or("");
    let mut choices = ctx.roles.autocomplete(guild, partial);
    // Removing offers only what the member has.
    if invocation
        .subcommand()
        .is_some_and(|(sub, _)| sub == "remove")
    {
        choices.retain(|(_, id)| {
            invocation
                .roles
                .iter()
                .any(|held| held.get().to_string() == *id)
        });
    }
    choices
}

/// The text being typed in the focused option.
fn focused(options: &[CommandOption]) -> Option<&str> {
    options.iter().find_map(|option| match &option.value {
        CommandValue::Focused(text) => Some(text.as_str()),
        CommandValue::SubCommand(options) => focused(options),
        _ => None,
    })
}

/// `/role add|remove|list`.
pub(super) async fn role(
    ctx: &CommandContext,
    invocation: &Invocation,
) -> Result<Answer, CommandError> {
    let Some(guild) = invocation.guild else {
        return Ok(Answer::refused("Roles exist in servers only."));
    };
    let (sub, options) = invocation.subcommand().unwrap_or(("list", &[]));
    let input = options.iter().find_map(|o| match &o.value {
        CommandValue::String(text) if o.name == "role" => Some(text.as_str()),
        _ => None,
    });
    match (sub, input) {
        ("list", _) => Ok(list(ctx, invocation, guild)),
        ("add" | "remove", Some(input)) => {
            change(ctx, invocation, guild, sub == "add", input).await
        }
        ("add" | "remove", None) => Ok(Answer::refused(format!(
            "Name the role: `{} {sub} <role>`.",
            invocation.display_name(ctx)
        ))),
        (other, _) => Ok(Answer::refused(format!(
            "`{other}` is not something `{}` does; use `add`, `remove` or `list`.",
            invocation.display_name(ctx)
        ))),
    }
}

/// Gives or takes one role, after the directory's checks.
async fn change(
    ctx: &CommandContext,
    invocation: &Invocation,
    guild: GuildId,
    add: bool,
    input: &str,
) -> Result<Answer, CommandError> {
    let Some(role) = ctx.roles.resolve(guild, input) else {
        return Ok(Answer::refused(format!(
            "There is no role called **{}** here. `{} list` shows the roles you can take.",
            clean(input),
            invocation.display_name(ctx)
        )));
    };
    let role = match ctx.roles.check(guild, role.id) {
        Ok(role) => role,
        Err(refusal) => return Ok(Answer::refused(refusal.to_string())),
    };
    let has = invocation.roles.contains(&role.id);
    if add == has {
        let text = if add {
            format!("You already have **{}**.", escaped(&role.name))
        } else {
            format!("You don't have **{}**.", escaped(&role.name))
        };
        return Ok(Answer::private(text));
    }
    let user = invocation.user;
    if add {
        ctx.rest.add_member_role(guild, user, role.id).await?;
    } else {
        ctx.rest.remove_member_role(guild, user, role.id).await?;
    }
    tracing::info!(
        action = if add { "add" } else { "remove" },
        guild_id = guild.get(),
        channel_id = invocation.channel.map_or(0, |c| c.get()),
        user_id = user.get(),
        role_id = role.id.get(),
        role = %role.name,
        "member role changed"
    );
    Ok(Answer::private(if add {
        format!("You now have **{}**.", escaped(&role.name))
    } else {
        format!("You no longer have **{}**.", escaped(&role.name))
    }))
}

/// The roles the caller may take, marking the ones they have.
fn list(ctx: &CommandContext, invocation: &Invocation, guild: GuildId) -> Answer {
    let roles: Vec<_> = ctx
        .roles
        .assignable(guild)
        .into_iter()
        .filter(|a| a.refusal.is_none())
        .collect();
    if roles.is_empty() {
        return Answer::private("This server has no roles members can give themselves.");
    }
    let names: Vec<String> = roles
        .iter()
        .map(|a| {
            if invocation.roles.contains(&a.role.id) {
                format!("**{}** ✓", escaped(&a.role.name))
            } else {
                escaped(&a.role.name).to_string()
            }
        })
        .collect();
    Answer::private(format!(
        "Roles you can take (✓ you have it): {}\nUse `{} add <role>` or `{} remove <role>`.",
        names.join(", "),
        invocation.display_name(ctx),
        invocation.display_name(ctx)
    ))
}

/// User input quoted back: no markdown or mentions, and not too long.
fn clean(input: &str) -> String {
    let text: String = input
        .chars()
        .filter(|c| !matches!(c, '*' | '_' | '`' | '~' | '|' | '<' | '>' | '@'))
        .take(50)
        .collect();
    text.trim().to_owned()
}
