//! Shards against the simulated gateway: sessions, faults, sharding, bad input.

use std::time::Duration;

use guildscope_discord::{GatewayError, GatewayIntents};
use guildscope_model::{GuildId, Secret};
use guildscope_simulator::{Fault, SimConfig, shard_of};

use crate::harness::{Bot, eventually, sim_config, within};

#[tokio::test]
async fn identify_then_ready_then_guild_create_for_every_guild() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    {
        let seen = bot.seen();
        let expected: Vec<GuildId> = bot
            .sim
            .community()
            .guilds
            .iter()
            .map(|g| GuildId::new(g.id))
            .collect();
        assert_eq!(seen.guild_shards.len(), expected.len());
        for guild in expected {
            assert_eq!(
                seen.guild_shards.get(&guild),
                Some(&0),
                "guild {guild} on shard 0"
            );
        }
        assert_eq!(seen.count("READY"), 1);
    }
    let stats = bot.gateway.stats();
    assert_eq!(stats.identifies(), 1);
    assert!(stats.shard_connected(0));
    assert_eq!((stats.parse_errors(), stats.reconnects()), (0, 0));
    bot.wait_in_sync_with_ground_truth().await;
    bot.shutdown().await;
}

#[tokio::test]
async fn heartbeats_flow_and_latency_is_recorded() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    eventually("a heartbeat round trip", || {
        bot.gateway.latency(0).is_some()
    })
    .await;
    let latency = bot.gateway.latency(0).unwrap_or_default();
    assert!(
        latency > Duration::ZERO && latency < Duration::from_secs(1),
        "latency {latency:?}"
    );
    assert_eq!(bot.gateway.latency(1), None, "there is no shard 1");
    bot.shutdown().await;
}

/// Drops the connection mid-traffic and checks that the session resumes and
/// every dispatch the simulator sent reached the handler exactly once.
async fn resume_after_drop(close_code: Option<u16>) {
    let bot = Bot::start(
        SimConfig {
            rate: 300.0,
            ..sim_config()
        },
        |_| {},
    )
    .await;
    bot.wait_ready().await;
    eventually("some live traffic", || {
        bot.seen().count("MESSAGE_CREATE") > 20
    })
    .await;
    bot.sim
        .inject_fault(Fault::DropConnection {
            shard: 0,
            close_code,
        })
        .expect("fault injected");
    eventually("RESUMED", || bot.gateway.stats().resumes() == 1).await;
    // Let traffic flow over the resumed session, then stop it and compare.
    let after = bot.seen().count("MESSAGE_CREATE") + 20;
    eventually("traffic after the resume", || {
        bot.seen().count("MESSAGE_CREATE") > after
    })
    .await;
    bot.sim.set_rate(0.0);
    bot.wait_in_sync_with_ground_truth().await;
    let stats = bot.gateway.stats();
    assert_eq!(stats.identifies(), 1, "resumed, not re-identified");
    assert_eq!(stats.reconnects(), 1);
    assert_eq!(bot.seen().count("READY"), 1);
    assert_eq!(bot.seen().count("RESUMED"), 1);
    bot.shutdown().await;
}

#[tokio::test]
async fn close_4000_resumes_with_replay_and_loses_nothing() {
    resume_after_drop(Some(4000)).await;
}

#[tokio::test]
async fn dropped_tcp_without_close_frame_resumes_with_replay_and_loses_nothing() {
    resume_after_drop(None).await;
}

#[tokio::test]
async fn invalid_session_not_resumable_reidentifies() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    bot.sim
        .inject_fault(Fault::InvalidSession {
            shard: 0,
            resumable: false,
        })
        .expect("fault injected");
    eventually("a second READY", || bot.seen().count("READY") == 2).await;
    assert_eq!(bot.gateway.stats().identifies(), 2);
    assert_eq!(bot.gateway.stats().resumes(), 0);
    bot.wait_in_sync_with_ground_truth().await;
    bot.shutdown().await;
}

#[tokio::test]
async fn reconnect_request_resumes() {
    let bot = Bot::start(
        SimConfig {
            rate: 100.0,
            ..sim_config()
        },
        |_| {},
    )
    .await;
    bot.wait_ready().await;
    bot.sim
        .inject_fault(Fault::Reconnect { shard: 0 })
        .expect("fault injected");
    eventually("RESUMED", || bot.seen().count("RESUMED") == 1).await;
    bot.sim.set_rate(0.0);
    bot.wait_in_sync_with_ground_truth().await;
    assert_eq!(bot.gateway.stats().identifies(), 1);
    assert_eq!(bot.gateway.stats().resumes(), 1);
    bot.shutdown().await;
}

#[tokio::test]
async fn stopped_heartbeat_acks_are_detected_as_a_zombie_and_resumed() {
    // No traffic: twilight counts any frame as a sign of life, so only a
    // quiet connection without ACKs is a zombie.
    let bot = Bot::start(
        SimConfig {
            heartbeat_interval: Duration::from_millis(100),
            ..sim_config()
        },
        |_| {},
    )
    .await;
    bot.wait_ready().await;
    eventually("a first heartbeat ACK", || bot.gateway.latency(0).is_some()).await;
    bot.sim
        .inject_fault(Fault::StopHeartbeatAcks { shard: 0 })
        .expect("fault injected");
    eventually("RESUMED after the zombie connection", || {
        bot.gateway.stats().resumes() == 1
    })
    .await;
    assert_eq!(bot.gateway.stats().identifies(), 1);
    assert_eq!(bot.gateway.stats().reconnects(), 1);
    bot.wait_in_sync_with_ground_truth().await;
    bot.shutdown().await;
}

#[tokio::test]
async fn wrong_token_fails_fast_with_a_clear_error_and_no_reconnect_loop() {
    let bot = Bot::start(sim_config(), |config| {
        config.token = Secret::new("MTIz.wrong.token");
        config.shards = Some(1);
    })
    .await;
    let error = within("the fatal close", bot.gateway.wait())
        .await
        .expect_err("a rejected token is fatal");
    assert!(
        matches!(
            error,
            GatewayError::FatalClose {
                shard: 0,
                code: 4004,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "shard 0 was closed by the gateway with code 4004: authentication failed: the token was rejected"
    );
    // The shard task has ended, so it cannot reconnect.
    eventually("the shard task to end", || {
        bot.gateway.running_shards() == 0
    })
    .await;
    let stats = bot.gateway.stats();
    assert_eq!(
        (
            stats.shard_connections(0),
            stats.reconnects(),
            stats.fatal_closes()
        ),
        (1, 0, 1)
    );
    assert_eq!(bot.sim.ground_truth().identifies, 0);
    bot.shutdown().await;
}

#[tokio::test]
async fn two_shards_each_guild_arrives_on_its_own_shard() {
    // The shard count comes from GET gateway/bot.
    let bot = Bot::start(
        SimConfig {
            guilds: 8,
            shards: 2,
            ..sim_config()
        },
        |config| config.shards = None,
    )
    .await;
    assert_eq!(bot.gateway.shard_count(), 2);
    eventually("both READYs and every GUILD_CREATE", || {
        let seen = bot.seen();
        seen.count("READY") == 2 && seen.guild_shards.len() == 8
    })
    .await;
    let community = bot.sim.community();
    let shards: Vec<u32> = community.guilds.iter().map(|g| shard_of(g.id, 2)).collect();
    assert!(
        shards.contains(&0) && shards.contains(&1),
        "the seed spreads guilds over both shards"
    );
    for guild in &community.guilds {
        let id = GuildId::new(guild.id);
        assert_eq!(
            bot.seen().guild_shards.get(&id),
            Some(&shard_of(guild.id, 2)),
            "guild {id}"
        );
        assert_eq!(bot.gateway.shard_for(id), shard_of(guild.id, 2));
    }
    assert!(bot.gateway.stats().shard_connected(0) && bot.gateway.stats().shard_connected(1));
    bot.shutdown().await;
}

#[tokio::test]
async fn garbage_truncated_unknown_opcode_and_unknown_dispatch_are_counted_and_survived() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    // Raw dispatches carry the session's current sequence so twilight's
    // session bookkeeping (which reads `s` from any dispatch) stays right.
    let seq = bot.sim.status().sessions.first().map_or(0, |s| s.seq);
    let frames = [
        "this is not json".to_owned(),
        format!(r#"{{"op":0,"s":{seq},"t":"MESSAGE_CREATE","d":{{"id":"12345","channel_id":"1"#),
        r#"{"op":99,"d":null}"#.to_owned(),
        format!(r#"{{"op":0,"s":{seq},"t":"FUTURE_EVENT","d":{{"x":1}}}}"#),
    ];
    for text in frames {
        bot.sim
            .inject_fault(Fault::RawFrame { shard: 0, text })
            .expect("fault injected");
    }
    let stats = bot.gateway.stats();
    eventually("every bad frame counted", || {
        stats.parse_errors() == 2 && stats.unknown_opcodes() == 1 && stats.unknown_dispatches() == 1
    })
    .await;
    assert_eq!(stats.events("FUTURE_EVENT"), 1);
    assert!(bot.seen().other_names.contains(&"FUTURE_EVENT"));
    // The shard keeps working on the same session.
    let before = bot.seen().count("MESSAGE_CREATE");
    bot.sim.firehose(50);
    eventually("50 more messages", || {
        bot.seen().count("MESSAGE_CREATE") == before + 50
    })
    .await;
    assert_eq!((stats.identifies(), stats.reconnects()), (1, 0));
    bot.shutdown().await;
}

#[tokio::test]
async fn member_request_is_answered_with_chunks_covering_the_guild() {
    let bot = Bot::default().await;
    bot.wait_ready().await;
    let guild = &bot.sim.community().guilds[0];
    let id = GuildId::new(guild.id);
    bot.gateway
        .request_members(id, "members-test")
        .expect("request queued");
    let expected = usize::try_from(guild.member_count).unwrap_or(usize::MAX);
    eventually("every member in chunks", || {
        bot.seen().chunk_members.get(&id) == Some(&expected)
    })
    .await;
    let nonces = bot.seen().chunk_nonces.clone();
    assert!(
        nonces.iter().all(|n| n.as_deref() == Some("members-test")),
        "every chunk echoes the request's nonce: {nonces:?}"
    );
    bot.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_shards_and_ends_the_bus() {
    let bot = Bot::start(
        SimConfig {
            rate: 200.0,
            ..sim_config()
        },
        |config| {
            config.intents = GatewayIntents {
                members: false,
                ..GatewayIntents::default()
            };
        },
    )
    .await;
    bot.wait_ready().await;
    let gateway = bot.gateway.clone();
    // `shutdown` inside checks that the handler's bus ends.
    let truth = bot.shutdown().await;
    // Regression: the simulator drops TCP instead of echoing the close
    // frame, and twilight then reconnected and identified a second session.
    assert_eq!(truth.identifies, 1, "no new session after shutdown");
    within("wait after shutdown", gateway.wait())
        .await
        .expect("a shut down gateway is not a failure");
    assert_eq!(gateway.running_shards(), 0);
    assert!(!gateway.stats().shard_connected(0));
}
