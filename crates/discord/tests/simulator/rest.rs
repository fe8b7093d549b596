//! The REST wrapper against the simulated REST API: domain calls, interaction
//! answers, rate limits and errors.

use std::time::{Duration, Instant};

use guildscope_discord::{
    CommandScope, CommandSpec, InteractionReply, OptionKind, OptionSpec, Page, Rest, RestError,
    RestErrorKind, Visibility,
};
use guildscope_model::{
    ApplicationId, CommandValue, InteractionKind, RoleId, Secret, Snowflake, UserId,
};
use guildscope_simulator::{Fault, InteractionRequest};
use serde_json::json;

use crate::harness::{Bot, bot_config, eventually, text_channel};

#[tokio::test]
async fn a_429_storm_is_waited_out_and_the_call_succeeds() {
    let bot = Bot::default().await;
    let (_, channel) = text_channel(&bot.sim);
    bot.sim
        .inject_fault(Fault::RateLimit {
            route: "POST /channels".to_owned(),
            count: 3,
            retry_after: 0.25,
            global: false,
        })
        .expect("fault injected");
    let started = Instant::now();
    let message = bot.rest.create_message(channel, "hello".to_owned()).await;
    let elapsed = started.elapsed();
    assert!(message.is_ok(), "{message:?}");
    assert!(
        elapsed >= Duration::from_millis(700),
        "waited only {elapsed:?} for three 250 ms limits"
    );
    let statuses: Vec<u16> = bot
        .sim
        .rest_log()
        .into_iter()
        .filter(|call| {
            call.method == "POST" && call.path == format!("/api/v10/channels/{channel}/messages")
        })
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    assert_eq!(&statuses[..3], &[429, 429, 429]);
    assert!((200..300).contains(&statuses[3]), "{statuses:?}");
    bot.shutdown().await;
}

#[tokio::test]
async fn identity_roles_history_and_commands() {
    let bot = Bot::default().await;
    let community = bot.sim.community().clone();
    assert_eq!(
        bot.rest.current_user().await.expect("users/@me"),
        UserId::new(community.bot_user_id)
    );
    assert_eq!(
        bot.rest.application_id().await.expect("applications/@me"),
        ApplicationId::new(community.application_id)
    );
    assert_eq!(bot.rest.gateway_shards().await.expect("gateway/bot"), 1);
    assert!(bot.rest.ping_rest().await.expect("ping") > Duration::ZERO);

    let (guild, channel) = text_channel(&bot.sim);
    let roles = bot.rest.guild_roles(guild).await.expect("roles");
    assert_eq!(roles.len(), community.guilds[0].roles.len());

    let latest = bot
        .rest
        .channel_messages(
            channel,
            Page {
                before: None,
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    assert!(!latest.is_empty() && latest.len() <= 10);
    assert!(latest.iter().all(|m| m.channel_id == channel));
    let oldest_seen = latest.iter().map(|m| m.id).min().expect("a message");
    let older = bot
        .rest
        .channel_messages(
            channel,
            Page {
                before: Some(oldest_seen),
                after: None,
                limit: 5,
            },
        )
        .await
        .expect("older history");
    assert!(older.iter().all(|m| m.id < oldest_seen));
    let both = bot
        .rest
        .channel_messages(
            channel,
            Page {
                before: Some(oldest_seen),
                after: Some(oldest_seen),
                limit: 5,
            },
        )
        .await;
    assert!(matches!(both, Err(RestError::Invalid { .. })));

    let member = community.guilds[0]
        .members
        .iter()
        .find(|m| !m.bot)
        .expect("a human member");
    // A self-assignable role: below the bot's own, so Discord allows it.
    let assignable = &community.guilds[0].self_assignable_roles[0];
    let role = community.guilds[0]
        .roles
        .iter()
        .find(|r| &r.name == assignable)
        .map(|r| RoleId::new(r.id))
        .expect("the self-assignable role exists");
    let user = UserId::new(member.user_id);
    bot.rest
        .add_member_role(guild, user, role)
        .await
        .expect("role added");
    bot.rest
        .remove_member_role(guild, user, role)
        .await
        .expect("role removed");

    let commands = vec![
        CommandSpec::new("ping", "Gateway and REST latency"),
        CommandSpec::new("role", "Self-assignable roles")
            .option(OptionSpec::subcommand(
                "add",
                "Give yourself a role",
                vec![
                    OptionSpec::new(OptionKind::String, "role", "The role")
                        .required()
                        .autocomplete(),
                ],
            ))
            .option(OptionSpec::subcommand("list", "List the roles", Vec::new())),
    ];
    bot.rest
        .set_commands(CommandScope::Global, commands.clone())
        .await
        .expect("global commands");
    bot.rest
        .set_commands(CommandScope::Guild(guild), commands)
        .await
        .expect("guild commands");
    bot.shutdown().await;
}

#[tokio::test]
async fn slash_command_and_autocomplete_are_received_and_answered() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    let (guild, channel) = text_channel(&bot.sim);
    let user = bot.sim.community().guilds[0]
        .members
        .iter()
        .find(|m| !m.bot)
        .expect("a human member")
        .user_id;
    let command = bot
        .sim
        .inject_interaction(InteractionRequest {
            guild_id: guild.get(),
            user_id: user,
            channel_id: channel.get(),
            name: "role".to_owned(),
            options: json!([{"name": "add", "type": 1, "options": [{"name": "role", "type": 3, "value": "Chess"}]}]),
            kind: guildscope_simulator::InteractionKind::Command,
        })
        .expect("interaction injected");
    let complete = bot
        .sim
        .inject_interaction(InteractionRequest {
            guild_id: guild.get(),
            user_id: user,
            channel_id: channel.get(),
            name: "role".to_owned(),
            options: json!([{"name": "add", "type": 1, "options": [{"name": "role", "type": 3, "value": "Ch", "focused": true}]}]),
            kind: guildscope_simulator::InteractionKind::Autocomplete,
        })
        .expect("interaction injected");
    eventually("both interactions", || bot.seen().interactions.len() == 2).await;
    let (slash, autocomplete) = {
        let seen = bot.seen();
        (seen.interactions[0].clone(), seen.interactions[1].clone())
    };
    assert_eq!(
        (slash.kind, slash.name.as_str()),
        (InteractionKind::Command, "role")
    );
    assert_eq!(slash.user_id, UserId::new(user));
    assert_eq!(slash.guild_id, Some(guild));
    assert_eq!(slash.token.expose(), command.token);
    let CommandValue::SubCommand(options) = &slash.options[0].value else {
        panic!("expected a subcommand: {:?}", slash.options);
    };
    assert_eq!(options[0].value, CommandValue::String("Chess".to_owned()));
    assert_eq!(autocomplete.kind, InteractionKind::Autocomplete);
    let CommandValue::SubCommand(options) = &autocomplete.options[0].value else {
        panic!("expected a subcommand: {:?}", autocomplete.options);
    };
    assert_eq!(options[0].value, CommandValue::Focused("Ch".to_owned()));

    bot.rest
        .defer(&slash, Visibility::Ephemeral)
        .await
        .expect("deferred");
    bot.rest
        .edit_original(&slash, "Added Chess".to_owned())
        .await
        .expect("edited");
    bot.rest
        .followup(&slash, InteractionReply::ephemeral("One more thing"))
        .await
        .expect("followup");
    bot.rest
        .autocomplete(
            &autocomplete,
            vec![("Chess".to_owned(), "chess".to_owned())],
        )
        .await
        .expect("choices sent");

    let record = bot.sim.interaction_responses(command.id).expect("recorded");
    assert_eq!(record.callback.as_ref().map(|c| c.kind), Some(5));
    assert_eq!(record.edits.len(), 1);
    assert_eq!(record.followups.len(), 1);
    let record = bot
        .sim
        .interaction_responses(complete.id)
        .expect("recorded");
    assert_eq!(record.callback.as_ref().map(|c| c.kind), Some(8));

    // A second answer to the same interaction is refused by Discord; the
    // error names the route template and never the token.
    let again = bot
        .rest
        .reply(&slash, InteractionReply::public("again"))
        .await;
    let error = again.expect_err("an interaction is answered once");
    assert_eq!(error.kind(), RestErrorKind::Status);
    let text = format!("{error} {error:?}");
    assert!(!text.contains(&command.token), "{text}");
    assert!(
        text.contains("interactions/{interaction_id}/{interaction_token}/callback"),
        "{text}"
    );
    bot.shutdown().await;
}

#[tokio::test]
async fn a_rejected_token_is_an_unauthorized_error_without_the_token() {
    let bot = Bot::default().await;
    let mut config = bot_config(&bot.sim);
    config.token = Secret::new("MTIz.wrong.secret-token-value");
    let rest = Rest::new(&config);
    let error = rest.current_user().await.expect_err("401");
    assert_eq!(error.kind(), RestErrorKind::Unauthorized);
    assert_eq!(error.route(), "GET users/@me");
    assert!(!format!("{error} {error:?} {rest:?}").contains("secret-token-value"));
    bot.shutdown().await;
}

#[tokio::test]
async fn a_server_error_reports_status_and_route() {
    let bot = Bot::default().await;
    let (guild, _) = text_channel(&bot.sim);
    bot.sim
        .inject_fault(Fault::ServerError {
            route: "GET /guilds".to_owned(),
            count: 1,
            status: 503,
        })
        .expect("fault injected");
    let error = bot.rest.guild_roles(guild).await.expect_err("503");
    assert_eq!(error.status(), Some(503));
    assert_eq!(error.route(), "GET guilds/{guild_id}/roles");
    bot.shutdown().await;
}
