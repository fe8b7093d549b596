//! REST v10 over real sockets: auth, Discord's errors, rate limits, state changes that
//! reach the gateway, history paging, commands and interaction responses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Compress, Gateway, eventually, http, start};
use guildscope_simulator::{Fault, InteractionKind, InteractionRequest, SimConfig};
use serde_json::json;
use twilight_model::{
    channel::Message,
    gateway::{
        connection_info::BotConnectionInfo,
        payload::incoming::{InteractionCreate, MemberUpdate},
    },
    guild::Member,
};

fn config() -> SimConfig {
    SimConfig {
        guilds: 2,
        members: 40,
        history_per_channel: 120,
        heartbeat_interval: Duration::from_secs(30),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn auth_and_unknown_routes_answer_like_discord() {
    let sim = start(config()).await;
    let base = format!("{}/api/v10", sim.info().rest_url);
    let reply = http("GET", &format!("{base}/users/@me"), None, None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body,
        json!({"message": "401: Unauthorized", "code": 0})
    );
    let reply = http("GET", &format!("{base}/users/@me"), Some("wrong"), None).await;
    assert_eq!(reply.status, 401);
    let reply = http(
        "GET",
        &format!("{base}/users/@me"),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["id"], sim.community().bot_user_id.to_string());
    let reply = http(
        "GET",
        &format!("{base}/nope/nothing"),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, json!({"message": "404: Not Found", "code": 0}));
    let reply = http(
        "GET",
        &format!("{base}/guilds/123"),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (404, json!(10004))
    );
    let reply = http(
        "GET",
        &format!("{base}/channels/123"),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (404, json!(10003))
    );
    let guild = sim.community().guilds[0].id;
    let reply = http(
        "GET",
        &format!("{base}/guilds/{guild}/members/5"),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (404, json!(10007))
    );
}

#[tokio::test]
async fn gateway_bot_and_rate_limit_headers() {
    let sim = start(config()).await;
    let url = format!("{}/api/v10/gateway/bot", sim.info().rest_url);
    let reply = http("GET", &url, Some(&sim.info().token), None).await;
    assert_eq!(reply.status, 200);
    let info: BotConnectionInfo = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(info.url, sim.info().gateway_url);
    assert_eq!(info.shards, 1);
    assert_eq!(info.session_start_limit.total, 1000);
    for header in [
        "x-ratelimit-scope",
        "x-ratelimit-bucket",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
    ] {
        assert!(reply.header(header).is_some(), "{header} present");
    }
    assert_eq!(reply.header("x-ratelimit-limit"), Some("50"));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("49"));
    let reply = http(
        "GET",
        &format!("{}/api/v10/gateway", sim.info().rest_url),
        None,
        None,
    )
    .await;
    assert_eq!(
        reply.status, 401,
        "GET /gateway needs the token too in this simulator"
    );
}

#[tokio::test]
async fn bucket_exhaustion_and_429_storm() {
    let sim = start(SimConfig {
        rest_bucket_limit: 3,
        rest_bucket_window: Duration::from_secs(30),
        ..config()
    })
    .await;
    let token = sim.info().token.clone();
    let guild = sim.community().guilds[0].id;
    let url = format!("{}/api/v10/guilds/{guild}/roles", sim.info().rest_url);
    for remaining in ["2", "1", "0"] {
        let reply = http("GET", &url, Some(&token), None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-remaining"), Some(remaining));
    }
    let reply = http("GET", &url, Some(&token), None).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(reply.body["global"], false);
    assert!(reply.body["retry_after"].as_f64().unwrap() > 0.0);
    assert!(reply.header("retry-after").is_some());
    let other = sim.community().guilds[1].id;
    let other_url = format!("{}/api/v10/guilds/{other}/roles", sim.info().rest_url);
    assert_eq!(
        http("GET", &other_url, Some(&token), None).await.status,
        200,
        "buckets are per guild"
    );

    sim.inject_fault(Fault::RateLimit {
        route: "GET /api/v10/guilds".into(),
        count: 2,
        retry_after: 0.25,
        global: true,
    })
    .unwrap();
    for _ in 0..2 {
        let reply = http("GET", &other_url, Some(&token), None).await;
        assert_eq!(reply.status, 429);
        assert_eq!(
            reply.body,
            json!({"message": "You are being rate limited.", "retry_after": 0.25, "global": true, "code": 0})
        );
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(reply.header("x-ratelimit-global"), Some("true"));
    }
    assert_eq!(
        http("GET", &other_url, Some(&token), None).await.status,
        200,
        "storm over"
    );
    sim.inject_fault(Fault::ServerError {
        route: "GET /guilds".into(),
        count: 1,
        status: 503,
    })
    .unwrap();
    assert_eq!(
        http("GET", &other_url, Some(&token), None).await.status,
        503
    );
    assert_eq!(sim.ground_truth().rest_rate_limited, 3);
}

#[tokio::test]
async fn role_add_changes_state_and_emits_member_update() {
    let sim = start(config()).await;
    let token = sim.info().token.clone();
    let guild = &sim.community().guilds[0];
    let game = guild.roles.iter().find(|r| r.self_assignable).unwrap();
    let staff = guild.roles.iter().find(|r| r.staff).unwrap();
    let member = guild
        .members
        .iter()
        .find(|m| !m.bot && !m.staff && !m.roles.contains(&game.id))
        .unwrap();
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&token, [0, 1]).await;
    let base = format!(
        "{}/api/v10/guilds/{}/members/{}",
        sim.info().rest_url,
        guild.id,
        member.user_id
    );
    let reply = http(
        "PUT",
        &format!("{base}/roles/{}", game.id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(reply.status, 204);
    let update = gw.dispatch("GUILD_MEMBER_UPDATE").await;
    let update: MemberUpdate = serde_json::from_value(update["d"].clone()).unwrap();
    assert!(update.roles.iter().any(|r| r.get() == game.id));
    let reply = http("GET", &base, Some(&token), None).await;
    let fetched: Member = serde_json::from_value(reply.body).unwrap();
    assert!(fetched.roles.iter().any(|r| r.get() == game.id));

    let reply = http(
        "DELETE",
        &format!("{base}/roles/{}", game.id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(reply.status, 204);
    let update = gw.dispatch("GUILD_MEMBER_UPDATE").await;
    assert!(
        !update["d"]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!(game.id.to_string()))
    );

    let reply = http(
        "PUT",
        &format!("{base}/roles/{}", staff.id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (403, json!(50013)),
        "staff roles sit above the bot"
    );
    let reply = http("PUT", &format!("{base}/roles/1"), Some(&token), None).await;
    assert_eq!(reply.body["code"], 10011);
}

#[tokio::test]
async fn history_pages_with_before_after_and_limit() {
    let sim = start(config()).await;
    let token = sim.info().token.clone();
    let channel = sim.community().guilds[0]
        .channels
        .iter()
        .find(|c| c.name == "general")
        .unwrap()
        .id;
    let url = format!(
        "{}/api/v10/channels/{channel}/messages",
        sim.info().rest_url
    );
    let page = |q: String| {
        let url = format!("{url}?{q}");
        let token = token.clone();
        async move {
            let reply = http("GET", &url, Some(&token), None).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let messages: Vec<Message> = serde_json::from_value(reply.body).unwrap();
            messages.iter().map(|m| m.id.get()).collect::<Vec<u64>>()
        }
    };
    let first = page("limit=50".into()).await;
    assert_eq!(first.len(), 50);
    assert!(first.windows(2).all(|w| w[0] > w[1]), "newest first");
    let second = page(format!("before={}&limit=100", first[49])).await;
    assert_eq!(second.len(), 70, "120 kept, 50 already read");
    assert!(second[0] < first[49]);
    assert!(page(format!("before={}", second[69])).await.is_empty());
    let after = page(format!("after={}&limit=10", second[69])).await;
    assert_eq!(after.len(), 10);
    assert_eq!(
        *after.last().unwrap(),
        second[68],
        "after returns the oldest following, newest first"
    );
    let default = page(String::new()).await;
    assert_eq!(default.len(), 50);
    let reply = http("GET", &format!("{url}?limit=101"), Some(&token), None).await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (400, json!(50035))
    );
    let staff = sim.community().guilds[0]
        .channels
        .iter()
        .find(|c| c.name == "mod-chat")
        .unwrap()
        .id;
    let reply = http(
        "GET",
        &format!("{}/api/v10/channels/{staff}/messages", sim.info().rest_url),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (403, json!(50001))
    );
}

#[tokio::test]
async fn bot_messages_are_announced_on_the_gateway() {
    let sim = start(config()).await;
    let token = sim.info().token.clone();
    let guild = &sim.community().guilds[1];
    let channel = guild
        .channels
        .iter()
        .find(|c| c.name == "off-topic")
        .unwrap()
        .id;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&token, [0, 1]).await;
    let url = format!(
        "{}/api/v10/channels/{channel}/messages",
        sim.info().rest_url
    );
    let reply = http(
        "POST",
        &url,
        Some(&token),
        Some(json!({"content": "hello from the bot"})),
    )
    .await;
    assert_eq!(reply.status, 200);
    let sent: Message = serde_json::from_value(reply.body).unwrap();
    let created = gw.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["d"]["id"], sent.id.to_string());
    assert_eq!(created["d"]["guild_id"], guild.id.to_string());
    assert_eq!(
        created["d"]["author"]["id"],
        sim.community().bot_user_id.to_string()
    );
    assert_eq!(
        sim.ground_truth().guilds[&guild.id.to_string()].messages_created,
        1
    );
    let reply = http("POST", &url, Some(&token), Some(json!({"content": ""}))).await;
    assert_eq!(reply.body["code"], 50006);
}

#[tokio::test]
async fn commands_and_interaction_responses() {
    let sim = start(config()).await;
    let token = sim.info().token.clone();
    let app = sim.community().application_id;
    let base = format!("{}/api/v10", sim.info().rest_url);
    let commands = json!([
        {"name": "ping", "description": "Latency", "type": 1},
        {"name": "role", "description": "Roles", "options": [
            {"type": 1, "name": "add", "description": "Add", "options": [
                {"type": 3, "name": "role", "description": "Role", "required": true, "autocomplete": true}
            ]}
        ]}
    ]);
    let reply = http(
        "PUT",
        &format!("{base}/applications/{app}/commands"),
        Some(&token),
        Some(commands),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body[0]["id"].is_string());
    let listed = http(
        "GET",
        &format!("{base}/applications/{app}/commands"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);

    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&token, [0, 1]).await;
    let guild = &sim.community().guilds[0];
    let user = guild.members.iter().find(|m| !m.bot).unwrap().user_id;
    let channel = guild
        .channels
        .iter()
        .find(|c| c.name == "general")
        .unwrap()
        .id;
    let injected = sim
        .inject_interaction(InteractionRequest {
            guild_id: guild.id,
            user_id: user,
            channel_id: channel,
            name: "role".into(),
            options: json!([{"name": "add", "type": 1, "options": [{"name": "role", "type": 3, "value": "Ch", "focused": true}]}]),
            kind: InteractionKind::Autocomplete,
        })
        .unwrap();
    let event = gw.dispatch("INTERACTION_CREATE").await;
    let typed: InteractionCreate =
        serde_json::from_value(event["d"].clone()).expect("interaction deserializes");
    assert_eq!(typed.id.get(), injected.id);
    assert_eq!(event["d"]["type"], 4);
    assert_eq!(event["d"]["token"], injected.token);
    assert_eq!(event["d"]["data"]["id"], reply.body[1]["id"]);
    assert!(event["d"]["member"]["user"]["id"].is_string());
    assert!(event["d"]["app_permissions"].is_string());

    let callback = format!(
        "{base}/interactions/{}/{}/callback",
        injected.id, injected.token
    );
    let answer = json!({"type": 8, "data": {"choices": [{"name": "Chess", "value": "Chess"}]}});
    assert_eq!(
        http("POST", &callback, None, Some(answer.clone()))
            .await
            .status,
        204
    );
    let again = http("POST", &callback, None, Some(answer)).await;
    assert_eq!(again.body["code"], 40060);
    let wrong = format!("{base}/interactions/{}/nope/callback", injected.id);
    assert_eq!(
        http("POST", &wrong, None, Some(json!({"type": 1})))
            .await
            .body["code"],
        10062
    );
    let record = sim.interaction_responses(injected.id).unwrap();
    assert_eq!(record.callback.unwrap().kind, 8);

    // A command answered with a deferred response, then edited.
    let injected = sim
        .inject_interaction(InteractionRequest {
            guild_id: guild.id,
            user_id: user,
            channel_id: channel,
            name: "ping".into(),
            options: json!([]),
            kind: InteractionKind::Command,
        })
        .unwrap();
    gw.dispatch("INTERACTION_CREATE").await;
    let callback = format!(
        "{base}/interactions/{}/{}/callback",
        injected.id, injected.token
    );
    assert_eq!(
        http("POST", &callback, None, Some(json!({"type": 5})))
            .await
            .status,
        204
    );
    let loading = gw.dispatch("MESSAGE_CREATE").await;
    assert_eq!(loading["d"]["flags"], 128);
    let edit = format!(
        "{base}/webhooks/{app}/{}/messages/@original",
        injected.token
    );
    let reply = http(
        "PATCH",
        &edit,
        None,
        Some(json!({"content": "pong: 12 ms"})),
    )
    .await;
    assert_eq!(reply.status, 200);
    let edited: Message = serde_json::from_value(reply.body).unwrap();
    assert_eq!(edited.content, "pong: 12 ms");
    let update = gw.dispatch("MESSAGE_UPDATE").await;
    assert_eq!(update["d"]["id"], loading["d"]["id"]);
    let followup = format!("{base}/webhooks/{app}/{}", injected.token);
    let reply = http(
        "POST",
        &followup,
        None,
        Some(json!({"content": "more", "flags": 64})),
    )
    .await;
    assert_eq!(reply.status, 200);
    let fetched = http("GET", &edit, None, None).await;
    assert_eq!(fetched.body["content"], "pong: 12 ms");
    let record = sim.interaction_responses(injected.id).unwrap();
    assert_eq!(record.edits.len(), 1);
    assert_eq!(record.followups.len(), 1);
    let callback = record.callback.unwrap();
    assert!(callback.ms_after_dispatch < 3_000.0);
    // Written to the client after it was dispatched, and before it was answered.
    let after_written = callback.ms_after_written.unwrap();
    assert!(after_written <= callback.ms_after_dispatch, "{callback:?}");
    let truth = sim.ground_truth();
    assert_eq!(
        (truth.interactions_sent, truth.interactions_answered),
        (2, 2)
    );
}

#[tokio::test]
async fn late_callbacks_are_refused_and_counted() {
    let sim = start(SimConfig {
        interaction_deadline: Duration::ZERO,
        ..config()
    })
    .await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [0, 1]).await;
    let guild = &sim.community().guilds[0];
    let injected = sim
        .inject_interaction(InteractionRequest {
            guild_id: guild.id,
            user_id: guild.members[3].user_id,
            channel_id: guild.channels[1].id,
            name: "ping".into(),
            options: json!(null),
            kind: InteractionKind::Command,
        })
        .unwrap();
    gw.dispatch("INTERACTION_CREATE").await;
    let url = format!(
        "{}/api/v10/interactions/{}/{}/callback",
        sim.info().rest_url,
        injected.id,
        injected.token
    );
    let reply = http(
        "POST",
        &url,
        None,
        Some(json!({"type": 4, "data": {"content": "pong"}})),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (404, json!(10062))
    );
    eventually(|| (sim.ground_truth().interactions_late == 1).then_some(())).await;
    assert_eq!(
        sim.interaction_responses(injected.id)
            .unwrap()
            .late_callbacks,
        1
    );
}
