//! What a trace shows: REST calls with their rate-limit waits, and one root
//! span per gateway event carrying its wait on the event bus.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use guildscope_discord::{InteractionReply, Rest, RestErrorKind, RestObserver};
use guildscope_model::Snowflake;
use guildscope_simulator::{Fault, InteractionKind, InteractionRequest, SimConfig};
use serde_json::json;

use guildscope_trace::{Kind, Record, Recorder, Status};

use crate::{
    capture::{install, millis, text},
    harness::{Bot, bot_config, eventually, sim_config, text_channel},
};

/// The route template of `Rest::create_message`.
const CREATE_MESSAGE: &str = "POST channels/{channel_id}/messages";

/// Every request an observer was told about.
#[derive(Debug, Default)]
struct Requests(Mutex<Vec<(&'static str, Option<u16>, Duration)>>);

impl RestObserver for Requests {
    fn request(&self, route: &'static str, status: Option<u16>, ratelimit_wait: Duration) {
        self.0.lock().unwrap().push((route, status, ratelimit_wait));
    }
}

impl Requests {
    /// What the observer saw for `route`.
    fn on(&self, route: &str) -> Vec<(Option<u16>, Duration)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(seen, ..)| *seen == route)
            .map(|(_, status, wait)| (*status, *wait))
            .collect()
    }
}

/// The REST call spans of one route, in call order.
fn calls(captured: &Recorder, route: &str) -> Vec<Record> {
    captured
        .spans()
        .into_iter()
        .filter(|span| text(span, "http.route").as_deref() == Some(route))
        .collect()
}

/// A span's recorded rate-limit wait in milliseconds.
fn wait_ms(span: &Record) -> f64 {
    millis(span, "discord.ratelimit.wait_ms")
}

#[tokio::test]
async fn a_429_storm_shows_as_wait_spans_and_the_observer_sees_the_same_wait() {
    let (captured, _guard) = install();
    let bot = Bot::default().await;
    let requests = Arc::new(Requests::default());
    let rest = bot.rest.clone().with_observer(requests.clone());
    let (_, channel) = text_channel(&bot.sim);
    bot.sim
        .inject_fault(Fault::RateLimit {
            route: "POST /channels".to_owned(),
            count: 2,
            retry_after: 0.2,
            global: false,
        })
        .expect("fault injected");
    rest.create_message(channel, "hello".to_owned())
        .await
        .expect("sent once the 429s are waited out");

    let calls = calls(&captured, CREATE_MESSAGE);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.parent, None);
    assert_eq!(text(call, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(
        text(call, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        text(call, "http.request.resend_count").as_deref(),
        Some("2")
    );
    assert_eq!(call.kind, Kind::Client);
    assert_eq!(call.name, CREATE_MESSAGE);
    assert_eq!(call.status, Status::Ok);
    let resent: Vec<&str> = call.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(
        resent,
        ["rate limited by discord; sending again after the wait"; 2]
    );
    let bucket = text(call, "discord.ratelimit.bucket").expect("the simulator names the bucket");
    let bucket = bucket.as_str();
    assert!(!bucket.is_empty());
    let waited = wait_ms(call);
    assert!(
        (390.0..5_000.0).contains(&waited),
        "two 200 ms retry_after waits, got {waited} ms"
    );

    let waits: Vec<Record> = captured
        .children(call)
        .into_iter()
        .filter(|span| span.name == "discord.ratelimit.wait")
        .collect();
    assert_eq!(waits.len(), 2, "one wait per 429: {waits:#?}");
    for wait in &waits {
        assert!(wait.start <= wait.end);
        assert_eq!(
            text(wait, "discord.ratelimit.bucket").as_deref(),
            Some(bucket)
        );
        assert_eq!(
            text(wait, "discord.ratelimit.scope").as_deref(),
            Some("bucket")
        );
        assert!(wait_ms(wait) >= 190.0, "{wait:?}");
    }

    let seen = requests.on(CREATE_MESSAGE);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (status, observed_wait) = seen[0];
    assert_eq!(status, Some(200));
    assert!(
        (observed_wait.as_secs_f64() * 1_000.0 - waited).abs() < 1e-6,
        "observer {observed_wait:?}, span {waited} ms"
    );
    let statuses: Vec<u16> = bot
        .sim
        .rest_log()
        .into_iter()
        .filter(|call| call.method == "POST" && call.path.ends_with("/messages"))
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200]);
    bot.shutdown().await;
}

#[tokio::test]
async fn a_bucket_the_headers_say_is_empty_is_waited_out_without_a_429() {
    let (captured, _guard) = install();
    let bot = Bot::start(
        SimConfig {
            rest_bucket_limit: 2,
            rest_bucket_window: Duration::from_millis(300),
            ..sim_config()
        },
        |_| {},
    )
    .await;
    let requests = Arc::new(Requests::default());
    let rest = bot.rest.clone().with_observer(requests.clone());
    let (_, channel) = text_channel(&bot.sim);
    for n in 0..3 {
        rest.create_message(channel, format!("message {n}"))
            .await
            .expect("sent");
    }
    let statuses: Vec<u16> = bot
        .sim
        .rest_log()
        .into_iter()
        .filter(|call| call.method == "POST" && call.path.ends_with("/messages"))
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses, [200, 200, 200], "the limiter waited, not Discord");

    let calls = calls(&captured, CREATE_MESSAGE);
    assert_eq!(calls.len(), 3);
    let waits: Vec<f64> = calls.iter().map(wait_ms).collect();
    assert_eq!(&waits[..2], &[0.0, 0.0], "two requests fit the bucket");
    assert!(waits[2] > 0.0, "the third waits for the reset: {waits:?}");
    let third = &calls[2];
    assert!(third.attribute("http.request.resend_count").is_none());
    let wait = captured
        .children(third)
        .into_iter()
        .find(|span| span.name == "discord.ratelimit.wait")
        .expect("the wait has its span");
    assert_eq!(
        text(&wait, "discord.ratelimit.bucket"),
        text(third, "discord.ratelimit.bucket")
    );
    let observed: Vec<(Option<u16>, bool)> = requests
        .on(CREATE_MESSAGE)
        .iter()
        .map(|(status, wait)| (*status, wait.is_zero()))
        .collect();
    assert_eq!(
        observed,
        [(Some(200), true), (Some(200), true), (Some(200), false)]
    );
    bot.shutdown().await;
}

#[tokio::test]
async fn failed_calls_are_error_spans_and_reach_the_observer_with_their_status() {
    let (captured, _guard) = install();
    let bot = Bot::default().await;
    let requests = Arc::new(Requests::default());
    let rest = bot.rest.clone().with_observer(requests.clone());
    let (guild, _) = text_channel(&bot.sim);
    bot.sim
        .inject_fault(Fault::ServerError {
            route: "GET /guilds".to_owned(),
            count: 1,
            status: 503,
        })
        .expect("fault injected");
    rest.guild_roles(guild).await.expect_err("503");
    let roles = "GET guilds/{guild_id}/roles";
    let call = &calls(&captured, roles)[0];
    assert_eq!(
        text(call, "http.response.status_code").as_deref(),
        Some("503")
    );
    assert_eq!(call.status, Status::Error("status".into()));
    assert_eq!(requests.on(roles)[0].0, Some(503));

    // Nothing listens on a port just freed: no response at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut config = bot_config(&bot.sim);
    config.api_base = Some(format!("http://127.0.0.1:{port}"));
    let unreachable = Rest::new(&config).with_observer(requests.clone());
    let error = unreachable.current_user().await.expect_err("refused");
    assert_eq!(error.kind(), RestErrorKind::Transport);
    let me = "GET users/@me";
    let call = calls(&captured, me).pop().expect("a span");
    assert_eq!(call.status, Status::Error("transport".into()));
    assert_eq!(call.attribute("http.response.status_code"), None);
    assert_eq!(requests.on(me), [(None, Duration::ZERO)]);
    bot.shutdown().await;
}

#[tokio::test]
async fn every_event_has_a_parentless_root_span_with_its_ids_and_its_wait_on_the_bus() {
    let (captured, _guard) = install();
    let bot = Bot::default().await;
    bot.wait_ready().await;
    bot.sim.firehose(20);
    eventually("20 messages", || bot.seen().count("MESSAGE_CREATE") == 20).await;
    let (guild, channel) = text_channel(&bot.sim);
    let user = bot.sim.community().guilds[0]
        .members
        .iter()
        .find(|m| !m.bot)
        .expect("a human member")
        .user_id;
    let injected = bot
        .sim
        .inject_interaction(InteractionRequest {
            guild_id: guild.get(),
            user_id: user,
            channel_id: channel.get(),
            name: "ping".to_owned(),
            options: json!([]),
            kind: InteractionKind::Command,
        })
        .expect("interaction injected");
    eventually("the interaction", || bot.seen().interactions.len() == 1).await;
    let interaction = bot.seen().interactions[0].clone();
    bot.rest
        .reply(&interaction, InteractionReply::ephemeral("pong"))
        .await
        .expect("answered");
    // Every event so far has been taken off the bus, and its span has ended.
    let roots: Vec<Record> = captured
        .spans()
        .into_iter()
        .filter(|span| span.attribute("discord.event").is_some())
        .collect();

    assert!(!roots.is_empty());
    let mut sequences = Vec::new();
    for root in &roots {
        assert_eq!(root.parent, None, "a root span: {root:?}");
        assert_eq!(text(root, "discord.shard_id").as_deref(), Some("0"));
        sequences.push(
            text(root, "discord.sequence")
                .and_then(|s| s.parse::<u64>().ok())
                .expect("a sequence number"),
        );
        for attribute in root.attributes.iter() {
            assert!(
                [
                    "discord.event",
                    "discord.shard_id",
                    "discord.sequence",
                    "discord.guild_id",
                    "discord.channel_id",
                    "discord.user_id",
                    "discord.message_id",
                    "discord.interaction_id",
                    "bus.queue_ms",
                    "command.name",
                    "command.outcome",
                ]
                .contains(&attribute.key.as_ref()),
                "ids, names and counters only: {attribute:?}"
            );
        }
        assert!(
            captured
                .children(root)
                .iter()
                .all(|child| child.name != "bus.queue"),
            "the wait on the bus is an attribute, not a span: {root:?}"
        );
        let waited = millis(root, "bus.queue_ms");
        assert!((0.0..60_000.0).contains(&waited), "{waited} ms");
    }
    sequences.sort_unstable();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "one root per dispatch: {sequences:?}"
    );

    let messages = bot.seen().messages.clone();
    let mut message_roots: Vec<&Record> = roots
        .iter()
        .filter(|root| text(root, "discord.event").as_deref() == Some("MESSAGE_CREATE"))
        .collect();
    message_roots
        .sort_by_key(|root| text(root, "discord.sequence").map(|s| s.parse::<u64>().unwrap()));
    assert_eq!(message_roots.len(), messages.len());
    for (root, message) in message_roots.iter().zip(&messages) {
        let guild = message.guild_id.map(|id| id.to_string());
        assert_eq!(text(root, "discord.guild_id"), guild);
        assert_eq!(
            text(root, "discord.channel_id"),
            Some(message.channel_id.to_string())
        );
        assert_eq!(
            text(root, "discord.user_id"),
            Some(message.author_id.to_string())
        );
        assert_eq!(
            text(root, "discord.message_id"),
            Some(message.id.to_string())
        );
        assert_eq!(root.attribute("command.name"), None);
        assert_eq!(root.name, "discord.event");
    }

    let command = roots
        .iter()
        .find(|root| text(root, "discord.event").as_deref() == Some("INTERACTION_CREATE"))
        .expect("the interaction's root span");
    assert_eq!(text(command, "command.name").as_deref(), Some("ping"));
    assert_eq!(command.name, "/ping");
    assert_eq!(
        text(command, "discord.interaction_id"),
        Some(injected.id.to_string())
    );
    assert_eq!(text(command, "discord.user_id"), Some(user.to_string()));
    assert_eq!(text(command, "discord.guild_id"), Some(guild.to_string()));
    assert_eq!(
        text(command, "discord.channel_id"),
        Some(channel.to_string())
    );
    assert_eq!(
        text(command, "command.outcome").as_deref(),
        Some("ok"),
        "the consumer sets what it learns on the root"
    );
    assert!(
        captured
            .spans()
            .iter()
            .any(|call| text(call, "http.route").as_deref()
                == Some("POST interactions/{interaction_id}/{interaction_token}/callback"))
    );
    for span in captured.spans() {
        for attribute in span.attributes.iter() {
            let value = format!("{:?}", attribute.value);
            assert!(
                !value.contains(&injected.token),
                "{} carries the interaction token",
                span.name
            );
        }
    }
    bot.shutdown().await;
}
