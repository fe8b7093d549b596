//! Prefix commands (`!role add Chess`) typed by members in the simulator: what
//! reaches the event bus, what never does, and replies that ping nobody.

use guildscope_discord::{DiscordConfig, Page, PrefixCommands};
use guildscope_model::{ChannelId, GuildId, MessageId, MessageMeta, RoleId, Snowflake, UserId};
use guildscope_simulator::{MessageRequest, Simulator};
use serde_json::json;

use crate::harness::{Bot, eventually, sim_config, text_channel};

/// MESSAGE_CONTENT in IDENTIFY's intent bits.
const MESSAGE_CONTENT: u64 = 1 << 15;

fn with_prefix_commands(config: &mut DiscordConfig) {
    config.prefix_commands = Some(PrefixCommands {
        prefix: "!".to_owned(),
        commands: ["role", "stats", "ping", "help"]
            .map(str::to_owned)
            .to_vec(),
    });
}

/// A member of the guild who is not a bot and holds roles.
fn member(sim: &Simulator, guild: GuildId) -> (UserId, Vec<RoleId>) {
    let guild = sim
        .community()
        .guilds
        .iter()
        .find(|g| g.id == guild.get())
        .expect("the guild");
    let member = guild
        .members
        .iter()
        .find(|m| !m.bot && !m.roles.is_empty())
        .expect("a member with roles");
    (
        UserId::new(member.user_id),
        member.roles.iter().map(|&r| RoleId::new(r)).collect(),
    )
}

/// Has `user` type `content` in `channel`; returns the message id.
fn typed(
    bot: &Bot,
    (guild, channel): (GuildId, ChannelId),
    user: UserId,
    content: &str,
) -> MessageId {
    let injected = bot
        .sim
        .inject_message(MessageRequest {
            guild_id: guild.get(),
            channel_id: channel.get(),
            user_id: user.get(),
            content: content.to_owned(),
        })
        .expect("message injected");
    assert!(injected.dispatched);
    MessageId::new(injected.id)
}

/// Waits for the MESSAGE_CREATE of each message and returns their metadata, in order.
async fn received(bot: &Bot, ids: &[MessageId]) -> Vec<MessageMeta> {
    eventually("every MESSAGE_CREATE", || {
        let seen = bot.seen();
        ids.iter()
            .all(|id| seen.messages.iter().any(|m| m.id == *id))
    })
    .await;
    let seen = bot.seen();
    ids.iter()
        .map(|id| {
            seen.messages
                .iter()
                .find(|m| m.id == *id)
                .cloned()
                .expect("seen")
        })
        .collect()
}

#[tokio::test]
async fn prefix_messages_become_commands_with_name_args_and_roles() {
    let bot = Bot::start(sim_config(), with_prefix_commands).await;
    bot.wait_ready().await;
    let at = text_channel(&bot.sim);
    let (user, roles) = member(&bot.sim, at.0);
    let role = typed(&bot, at, user, "!role add Chess Club");
    let ping = typed(&bot, at, user, "!PING");
    let unknown = typed(&bot, at, user, "!dance now");
    let chat = typed(&bot, at, user, "is anyone up for chess?");
    let spaced = typed(&bot, at, user, "! role add Chess");
    let own = bot
        .rest
        .create_message(at.1, "!ping".to_owned())
        .await
        .expect("the bot posts");
    let got = received(&bot, &[role, ping, unknown, chat, spaced, own]).await;

    let command = got[0].command.as_deref().expect("!role is a command");
    assert_eq!(command.name, "role");
    assert_eq!(command.args, "add Chess Club");
    assert_eq!(command.member_roles, roles);
    assert_eq!((got[0].author_id, got[0].guild_id), (user, Some(at.0)));
    let command = got[1].command.as_deref().expect("!PING is a command");
    assert_eq!((command.name.as_str(), command.args.as_str()), ("ping", ""));
    for (meta, what) in got[2..]
        .iter()
        .zip(["unknown", "chat", "spaced", "the bot's own"])
    {
        assert_eq!(meta.command, None, "{what} message");
    }
    assert!(got[5].author_is_bot);

    // The gateway asked Discord for content, which prefix commands need.
    let sessions = bot.sim.status().sessions;
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|s| s.intents & MESSAGE_CONTENT != 0));

    // History read over REST never carries a command.
    let history = bot
        .rest
        .channel_messages(
            at.1,
            Page {
                before: None,
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    assert!(history.iter().any(|m| m.id == role));
    assert!(history.iter().all(|m| m.command.is_none()));
    bot.shutdown().await;
}

#[tokio::test]
async fn without_prefix_commands_no_message_is_a_command() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    let at = text_channel(&bot.sim);
    let (user, _) = member(&bot.sim, at.0);
    let role = typed(&bot, at, user, "!role add Chess");
    let got = received(&bot, &[role]).await;
    assert_eq!(got[0].command, None);
    let sessions = bot.sim.status().sessions;
    assert!(sessions.iter().all(|s| s.intents & MESSAGE_CONTENT == 0));
    bot.shutdown().await;
}

#[tokio::test]
async fn content_of_other_messages_is_nowhere_in_the_events() {
    let bot = Bot::start(sim_config(), |config| {
        with_prefix_commands(config);
        // A keyed hash reads the content too; it must not keep it either.
        config.content_key = Some(guildscope_discord::ContentKey::new(
            &guildscope_model::Secret::new("operator key"),
        ));
    })
    .await;
    bot.wait_ready().await;
    let at = text_channel(&bot.sim);
    let (user, _) = member(&bot.sim, at.0);
    let canary = "canary-5b1e0d meet at the old mill";
    let ids = [
        typed(&bot, at, user, canary),
        typed(&bot, at, user, &format!("!dance {canary}")),
        typed(&bot, at, user, &format!("!roles {canary}")),
        typed(&bot, at, user, "!help"),
    ];
    let got = received(&bot, &ids).await;
    assert!(got[3].command.is_some(), "a command still is one");
    let everything = format!("{:?}", bot.seen().messages);
    assert!(!everything.contains("canary"), "{everything}");
    assert!(!everything.contains("dance"), "{everything}");
    bot.shutdown().await;
}

#[tokio::test]
async fn reply_to_message_replies_without_pinging_anyone() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    let at = text_channel(&bot.sim);
    let (user, _) = member(&bot.sim, at.0);
    let trigger = typed(&bot, at, user, "!ping");
    let reply = bot
        .rest
        .reply_to_message(at.1, trigger, "Pong! 12 ms".to_owned())
        .await
        .expect("the reply is posted");
    let posted = bot.sim.bot_messages(at.1.get());
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].id, reply.get());
    assert_eq!(posted[0].content, "Pong! 12 ms");
    assert_eq!(posted[0].reply_to, Some(trigger.get()));
    assert_eq!(posted[0].allowed_mentions, Some(json!({"parse": []})));
    assert!(!posted[0].mentions_replied_user);
    assert!(posted[0].ms_after_trigger.is_some());
    let calls: Vec<_> = bot
        .sim
        .rest_log()
        .into_iter()
        .filter(|c| c.method == "POST" && c.route == "/api/v10/channels/{channel_id}/messages")
        .collect();
    assert_eq!(calls.len(), 1);

    // A message that is gone gets Discord's form error, not a plain message.
    let gone = bot
        .rest
        .reply_to_message(at.1, MessageId::new(1_234_567_890_123), "pong".to_owned())
        .await
        .expect_err("the referenced message does not exist");
    assert_eq!(gone.status(), Some(400));
    assert_eq!(gone.discord_code(), Some(50035));
    assert_eq!(bot.sim.bot_messages(at.1.get()).len(), 1);
    bot.shutdown().await;
}
