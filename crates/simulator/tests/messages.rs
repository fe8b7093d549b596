//! Messages typed by members on request (`POST /control/messages`) and the record of what
//! the bot posted (`GET /control/channels/{id}/bot-messages`), with replies checked the way
//! Discord checks them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Compress, Gateway, INTENTS, http, start};
use guildscope_simulator::{
    BotMessage, ChannelKind, GuildInfo, InjectedMessage, MemberInfo, MessageRequest, SimConfig,
    SimError,
};
use serde_json::{Value, json};
use twilight_model::channel::{Message, message::MessageType};

fn config() -> SimConfig {
    SimConfig {
        guilds: 2,
        members: 40,
        heartbeat_interval: Duration::from_secs(30),
        ..SimConfig::default()
    }
}

/// A text channel of the guild.
fn text_channel(guild: &GuildInfo, name: &str) -> u64 {
    guild
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Text && c.name == name)
        .expect("the channel exists")
        .id
}

/// An ordinary member holding at least one role.
fn member_with_roles(guild: &GuildInfo) -> &MemberInfo {
    guild
        .members
        .iter()
        .find(|m| !m.bot && !m.roles.is_empty())
        .expect("a member with roles")
}

/// Posts as the bot in a channel; returns the reply.
async fn bot_post(
    sim: &guildscope_simulator::Simulator,
    channel: u64,
    body: Value,
) -> common::Reply {
    let url = format!(
        "{}/api/v10/channels/{channel}/messages",
        sim.info().rest_url
    );
    http("POST", &url, Some(&sim.info().token), Some(body)).await
}

#[tokio::test]
async fn a_typed_message_reaches_the_guilds_shard_with_the_member_and_is_counted() {
    let sim = start(SimConfig {
        shards: 2,
        ..config()
    })
    .await;
    let control = sim.info().control_url.clone();
    let guild = &sim.community().guilds[0];
    let shard = guild.shard(2);
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [shard, 2]).await;
    let status = sim.status();
    assert_eq!(status.sessions[0].intents, INTENTS);

    let member = member_with_roles(guild);
    let channel = text_channel(guild, "general");
    let injected = http(
        "POST",
        &format!("{control}/messages"),
        None,
        Some(json!({
            "guild_id": guild.id.to_string(),
            "channel_id": channel.to_string(),
            "user_id": member.user_id.to_string(),
            "content": "!role add Chess",
        })),
    )
    .await;
    assert_eq!(injected.status, 200, "{:?}", injected.body);
    assert_eq!(injected.body["dispatched"], true);
    let id = injected.body["id"].as_str().unwrap().to_owned();

    let created = gw.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(created["id"], id);
    assert_eq!(created["content"], "!role add Chess");
    assert_eq!(created["guild_id"], guild.id.to_string());
    assert_eq!(created["channel_id"], channel.to_string());
    assert_eq!(created["author"]["id"], member.user_id.to_string());
    assert_eq!(created["type"], 0);
    let roles: Vec<String> = member.roles.iter().map(u64::to_string).collect();
    assert_eq!(created["member"]["roles"], json!(roles));
    // twilight reads it as the message Discord would send.
    let message: Message = serde_json::from_value(created).unwrap();
    assert_eq!(message.member.unwrap().roles.len(), member.roles.len());

    // The Rust handle does the same, and both count like any other message.
    let second = sim
        .inject_message(MessageRequest {
            guild_id: guild.id,
            channel_id: channel,
            user_id: member.user_id,
            content: "!stats me".to_owned(),
        })
        .unwrap();
    assert!(second.dispatched);
    let created = gw.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["d"]["id"], second.id.to_string());
    let truth = sim.ground_truth();
    let counted = &truth.guilds[&guild.id.to_string()];
    assert_eq!(counted.messages_created, 2);
    assert_eq!(counted.messages_per_channel[&channel.to_string()], 2);
    assert_eq!(truth.events_sent["MESSAGE_CREATE"], 2);

    // History (backfill) serves it like Discord: content, no guild id, no member.
    let history = http(
        "GET",
        &format!(
            "{}/api/v10/channels/{channel}/messages?limit=2",
            sim.info().rest_url
        ),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(history.body[0]["id"], second.id.to_string());
    assert_eq!(history.body[1]["content"], "!role add Chess");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_message_nobody_receives_is_kept_but_not_counted() {
    let sim = start(config()).await;
    let guild = &sim.community().guilds[0];
    let injected = sim
        .inject_message(MessageRequest {
            guild_id: guild.id,
            channel_id: text_channel(guild, "general"),
            user_id: member_with_roles(guild).user_id,
            content: "!ping".to_owned(),
        })
        .unwrap();
    assert!(!injected.dispatched, "no session covers the guild");
    assert_eq!(
        sim.ground_truth().guilds[&guild.id.to_string()].messages_created,
        0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_message_requests_are_refused_with_a_clear_error() {
    let sim = start(config()).await;
    let control = sim.info().control_url.clone();
    let guild = &sim.community().guilds[0];
    let other = &sim.community().guilds[1];
    let channel = text_channel(guild, "general");
    let voice = guild
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Voice)
        .unwrap()
        .id;
    let user = member_with_roles(guild).user_id;
    let stranger = other
        .members
        .iter()
        .find(|m| guild.members.iter().all(|g| g.user_id != m.user_id))
        .unwrap()
        .user_id;
    let long = "x".repeat(2001);
    let cases = [
        (
            json!({"guild_id": "1", "channel_id": channel.to_string(), "user_id": user.to_string(), "content": "hi"}),
            404,
            "unknown guild 1",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": "2", "user_id": user.to_string(), "content": "hi"}),
            404,
            "unknown channel 2",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": channel.to_string(), "user_id": stranger.to_string(), "content": "hi"}),
            404,
            "is not a member",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": voice.to_string(), "user_id": user.to_string(), "content": "hi"}),
            400,
            "not a text channel",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": channel.to_string(), "user_id": user.to_string(), "content": ""}),
            400,
            "1 to 2000 characters",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": channel.to_string(), "user_id": user.to_string(), "content": long}),
            400,
            "not 2001",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": channel.to_string(), "user_id": user.to_string()}),
            400,
            "content",
        ),
        (
            json!({"guild_id": guild.id.to_string(), "channel_id": channel.to_string(), "user_id": user.to_string(), "content": "hi", "name": "x"}),
            400,
            "unknown field",
        ),
    ];
    for (body, status, says) in cases {
        let reply = http(
            "POST",
            &format!("{control}/messages"),
            None,
            Some(body.clone()),
        )
        .await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        let error = reply.body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "{body}: {error:?} should say {says:?}"
        );
    }
    assert!(matches!(
        sim.inject_message(MessageRequest {
            guild_id: guild.id,
            channel_id: voice,
            user_id: user,
            content: "hi".to_owned(),
        }),
        Err(SimError::InvalidMessage { .. })
    ));
    assert_eq!(
        sim.ground_truth().guilds[&guild.id.to_string()].messages_created,
        0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bot_replies_are_recorded_with_what_they_reply_to() {
    let sim = start(config()).await;
    let control = sim.info().control_url.clone();
    let guild = &sim.community().guilds[0];
    let channel = text_channel(guild, "general");
    let member = member_with_roles(guild);
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [0, 1]).await;
    let none: Vec<BotMessage> = serde_json::from_value(
        http(
            "GET",
            &format!("{control}/channels/{channel}/bot-messages"),
            None,
            None,
        )
        .await
        .body,
    )
    .unwrap();
    assert!(none.is_empty());

    let trigger: InjectedMessage = serde_json::from_value(
        http(
            "POST",
            &format!("{control}/messages"),
            None,
            Some(json!({
                "guild_id": guild.id.to_string(),
                "channel_id": channel.to_string(),
                "user_id": member.user_id.to_string(),
                "content": "!ping",
            })),
        )
        .await
        .body,
    )
    .unwrap();
    gw.dispatch("MESSAGE_CREATE").await;

    let plain = bot_post(&sim, channel, json!({"content": "good morning"})).await;
    assert_eq!(plain.status, 200);
    let reply = bot_post(
        &sim,
        channel,
        json!({
            "content": "Pong! 41 ms",
            "message_reference": {"message_id": trigger.id.to_string(), "channel_id": channel.to_string()},
            "allowed_mentions": {"parse": []},
        }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let sent: Message = serde_json::from_value(reply.body).unwrap();
    assert_eq!(sent.kind, MessageType::Reply);
    let reference = sent.reference.unwrap();
    assert_eq!(reference.message_id.unwrap().get(), trigger.id);
    assert_eq!(reference.channel_id.unwrap().get(), channel);
    assert_eq!(sent.referenced_message.unwrap().content, "!ping");

    // The gateway announces both; the reply as a reply.
    gw.dispatch("MESSAGE_CREATE").await;
    let announced = gw.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(announced["id"], sent.id.to_string());
    assert_eq!(announced["type"], 19);
    assert_eq!(
        announced["message_reference"]["message_id"],
        trigger.id.to_string()
    );
    assert_eq!(
        announced["referenced_message"]["id"],
        trigger.id.to_string()
    );

    // A reply that leaves out allowed_mentions pings the author, as on Discord.
    let pinging = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "message_reference": {"message_id": trigger.id}}),
    )
    .await;
    assert_eq!(pinging.status, 200);

    let posted: Vec<BotMessage> = serde_json::from_value(
        http(
            "GET",
            &format!("{control}/channels/{channel}/bot-messages"),
            None,
            None,
        )
        .await
        .body,
    )
    .unwrap();
    // The Rust handle sees the same record (timings through JSON to the microsecond).
    let direct = sim.bot_messages(channel);
    assert_eq!(posted.len(), direct.len());
    for (json, direct) in posted.iter().zip(&direct) {
        let close = match (json.ms_after_trigger, direct.ms_after_trigger) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-3,
            (a, b) => a == b,
        };
        assert!(close, "{json:?} vs {direct:?}");
        let untimed = |m: &BotMessage| BotMessage {
            ms_after_trigger: None,
            ..m.clone()
        };
        assert_eq!(untimed(json), untimed(direct));
    }
    let summary: Vec<(&str, Option<u64>, bool)> = posted
        .iter()
        .map(|m| (m.content.as_str(), m.reply_to, m.mentions_replied_user))
        .collect();
    assert_eq!(
        summary,
        [
            ("good morning", None, false),
            ("Pong! 41 ms", Some(trigger.id), false),
            ("pong", Some(trigger.id), true),
        ]
    );
    assert_eq!(posted[1].id, sent.id.get());
    assert_eq!(posted[1].allowed_mentions, Some(json!({"parse": []})));
    assert_eq!(posted[0].ms_after_trigger, None);
    let after = posted[1]
        .ms_after_trigger
        .expect("the trigger was injected");
    assert!((0.0..10_000.0).contains(&after), "{after}");
    // Each reply counts as a message of the channel.
    assert_eq!(
        sim.ground_truth().guilds[&guild.id.to_string()].messages_per_channel[&channel.to_string()],
        4
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn replies_to_unknown_messages_and_bad_mentions_are_refused_like_discord() {
    let sim = start(config()).await;
    let control = sim.info().control_url.clone();
    let guild = &sim.community().guilds[0];
    let channel = text_channel(guild, "general");
    let elsewhere = text_channel(guild, "off-topic");
    let trigger = sim
        .inject_message(MessageRequest {
            guild_id: guild.id,
            channel_id: elsewhere,
            user_id: member_with_roles(guild).user_id,
            content: "!help".to_owned(),
        })
        .unwrap();

    let form_error = |reply: &common::Reply, path: &[&str], code: &str| {
        assert_eq!(reply.status, 400, "{:?}", reply.body);
        assert_eq!(reply.body["code"], 50035);
        assert_eq!(reply.body["message"], "Invalid Form Body");
        let mut errors = &reply.body["errors"];
        for segment in path {
            errors = &errors[*segment];
        }
        assert_eq!(errors["_errors"][0]["code"], code, "{:?}", reply.body);
    };
    let unknown = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "message_reference": {"message_id": "1234567890123"}}),
    )
    .await;
    form_error(
        &unknown,
        &["message_reference"],
        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
    );
    assert_eq!(
        unknown.body["errors"]["message_reference"]["_errors"][0]["message"],
        "Unknown message"
    );
    // A message of another channel is not one a reply here can reference.
    let other_channel = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "message_reference": {"message_id": trigger.id.to_string()}}),
    )
    .await;
    form_error(
        &other_channel,
        &["message_reference"],
        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
    );
    let not_a_snowflake = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "message_reference": {"message_id": "abc"}}),
    )
    .await;
    form_error(
        &not_a_snowflake,
        &["message_reference", "message_id"],
        "NUMBER_TYPE_COERCE",
    );
    let bad_parse = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "allowed_mentions": {"parse": ["nobody"]}}),
    )
    .await;
    form_error(
        &bad_parse,
        &["allowed_mentions", "parse"],
        "BASE_TYPE_CHOICES",
    );
    let exclusive = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "allowed_mentions": {"parse": ["users"], "users": ["123"]}}),
    )
    .await;
    form_error(
        &exclusive,
        &["allowed_mentions"],
        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
    );
    assert!(
        sim.bot_messages(channel).is_empty(),
        "nothing refused was posted"
    );

    // fail_if_not_exists: false sends a plain message instead.
    let plain = bot_post(
        &sim,
        channel,
        json!({"content": "pong", "message_reference": {"message_id": "1234567890123", "fail_if_not_exists": false}}),
    )
    .await;
    assert_eq!(plain.status, 200, "{:?}", plain.body);
    assert_eq!(plain.body["type"], 0);
    let posted = sim.bot_messages(channel);
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].reply_to, None);

    let unknown_channel = http(
        "GET",
        &format!("{control}/channels/42/bot-messages"),
        None,
        None,
    )
    .await;
    assert_eq!(unknown_channel.status, 404);
    assert_eq!(unknown_channel.body["error"], "unknown channel 42");
    let bad_id = http(
        "GET",
        &format!("{control}/channels/abc/bot-messages"),
        None,
        None,
    )
    .await;
    assert_eq!(bad_id.status, 400);
    sim.shutdown().await;
}
