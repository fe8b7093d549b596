//! The gateway over real sockets, driven by a raw client that follows the public docs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Compress, Frame, Gateway, eventually, start};
use guildscope_simulator::{Fault, SimConfig, shard_of};
use serde_json::{Value, json};
use twilight_model::gateway::payload::incoming::{GuildCreate, MemberChunk, MessageCreate, Ready};

fn quiet(guilds: u32, members: u32) -> SimConfig {
    SimConfig {
        guilds,
        members,
        heartbeat_interval: Duration::from_secs(30),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn identify_gets_ready_then_one_guild_create_per_guild() {
    let sim = start(quiet(3, 60)).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    let hello = gw.hello().await;
    assert_eq!(hello["d"]["heartbeat_interval"], 30_000);
    gw.identify(&format!("Bot {}", sim.info().token), [0, 1])
        .await;
    let ready = gw.dispatch("READY").await;
    assert_eq!(ready["s"], 1);
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["resume_gateway_url"], sim.info().gateway_url.as_str());
    assert_eq!(
        d["application"]["id"],
        sim.community().application_id.to_string()
    );
    assert!(d["application"]["flags"].is_u64());
    assert_eq!(d["shard"], json!([0, 1]));
    assert_eq!(d["user"]["bot"], true);
    assert_eq!(d["private_channels"], json!([]));
    let guilds = d["guilds"].as_array().unwrap();
    assert_eq!(guilds.len(), 3);
    assert!(guilds.iter().all(|g| g["unavailable"] == true));
    let typed: Ready = serde_json::from_value(d.clone()).expect("READY deserializes into twilight");
    assert_eq!(typed.session_id, d["session_id"].as_str().unwrap());

    for (i, expected) in sim.community().guilds.iter().enumerate() {
        let create = gw.dispatch("GUILD_CREATE").await;
        assert_eq!(create["s"], i as u64 + 2);
        let g = &create["d"];
        assert_eq!(g["id"], expected.id.to_string());
        assert_eq!(g["member_count"], 60);
        assert_eq!(g["large"], true, "60 members > large_threshold 50");
        assert_eq!(g["members"].as_array().unwrap().len(), 50);
        assert!(
            g["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == 15),
            "a forum"
        );
        assert!(
            g["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == 4),
            "categories"
        );
        assert!(!g["threads"].as_array().unwrap().is_empty());
        assert!(
            g["roles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["managed"] == true)
        );
        assert_eq!(g["stage_instances"], json!([]));
        let typed: GuildCreate =
            serde_json::from_value(g.clone()).expect("GUILD_CREATE deserializes");
        assert!(matches!(typed, GuildCreate::Available(_)));
    }
    assert_eq!(sim.ground_truth().events_sent["GUILD_CREATE"], 3);
}

#[tokio::test]
async fn heartbeat_is_acknowledged() {
    let sim = start(quiet(1, 20)).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.hello().await;
    gw.send(json!({"op": 1, "d": null})).await;
    assert_eq!(gw.payload().await["op"], 11);
    gw.login_after_hello(&sim.info().token).await;
    gw.send(json!({"op": 1, "d": gw.seq})).await;
    assert_eq!(gw.payload().await["op"], 11);
}

#[tokio::test]
async fn wrong_token_closes_4004() {
    let sim = start(quiet(1, 20)).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.hello().await;
    gw.identify("not-the-token", [0, 1]).await;
    assert_eq!(gw.closed().await, Some(4004));
}

#[tokio::test]
async fn a_client_close_frame_is_answered_with_a_close_frame() {
    // Regression: the simulator used to drop TCP instead, and twilight then
    // reconnected and identified a new session during a clean shutdown.
    let sim = start(quiet(1, 20)).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [0, 1]).await;
    gw.send_close(1000).await;
    assert_eq!(gw.closed().await, Some(1000));
}

#[tokio::test]
async fn protocol_violations_close_with_discord_codes() {
    let sim = start(quiet(1, 20)).await;
    let url = sim.info().gateway_url.clone();
    let token = sim.info().token.clone();

    let mut gw = Gateway::connect(&url, Compress::None).await;
    gw.hello().await;
    gw.send_text("{not json").await;
    assert_eq!(gw.closed().await, Some(4002), "undecodable payload");

    let mut gw = Gateway::connect(&url, Compress::None).await;
    gw.hello().await;
    gw.send(json!({"op": 8, "d": {"guild_id": "1", "query": "", "limit": 0}}))
        .await;
    assert_eq!(gw.closed().await, Some(4003), "payload before IDENTIFY");

    let mut gw = Gateway::connect(&url, Compress::None).await;
    gw.login(&token, [0, 1]).await;
    gw.send(json!({"op": 42, "d": null})).await;
    assert_eq!(gw.closed().await, Some(4001), "unknown opcode");

    let mut gw = Gateway::connect(&url, Compress::None).await;
    gw.login(&token, [0, 1]).await;
    gw.identify(&token, [0, 1]).await;
    assert_eq!(gw.closed().await, Some(4005), "double IDENTIFY");

    let mut gw = Gateway::connect_url(&format!("{url}/?v=10&encoding=etf"), Compress::None).await;
    assert_eq!(gw.closed().await, Some(4002), "erlpack is not supported");
}

#[tokio::test]
async fn resume_replays_every_missed_dispatch_once_in_order() {
    let sim = start(quiet(2, 50)).await;
    let token = sim.info().token.clone();
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    let (ready, _) = gw.login(&token, [0, 1]).await;
    let session_id = ready["session_id"].as_str().unwrap().to_owned();
    sim.firehose(2_000);
    for _ in 0..100 {
        gw.dispatch("MESSAGE_CREATE").await;
    }
    let last = gw.seq.unwrap();
    // Drop TCP without a close frame; the firehose keeps going into the replay buffer.
    drop(gw);
    eventually(|| {
        (sim.ground_truth().events_sent.get("MESSAGE_CREATE") == Some(&2_000)).then_some(())
    })
    .await;
    eventually(|| (!sim.status().sessions[0].connected).then_some(())).await;

    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.hello().await;
    gw.send(json!({"op": 6, "d": {"token": token, "session_id": session_id, "seq": last}}))
        .await;
    let mut expected = last + 1;
    loop {
        let v = gw.payload().await;
        assert_eq!(v["op"], 0, "only dispatches: {v}");
        assert_eq!(v["s"], expected, "every seq exactly once, in order");
        expected += 1;
        if v["t"] == "RESUMED" {
            break;
        }
        assert_eq!(v["t"], "MESSAGE_CREATE");
    }
    // 1 READY + 2 GUILD_CREATE + 2,000 messages, then RESUMED.
    assert_eq!(expected - 1, 3 + 2_000 + 1);
    assert_eq!(sim.ground_truth().resumes, 1);
}

#[tokio::test]
async fn stale_or_unknown_resume_gets_invalid_session_false() {
    let sim = start(SimConfig {
        replay_buffer: 16,
        ..quiet(1, 20)
    })
    .await;
    let token = sim.info().token.clone();

    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.hello().await;
    gw.send(json!({"op": 6, "d": {"token": token, "session_id": "nope", "seq": 1}}))
        .await;
    let answer = gw.payload().await;
    assert_eq!(answer["op"], 9);
    assert_eq!(answer["d"], false);

    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    let (ready, _) = gw.login(&token, [0, 1]).await;
    let session_id = ready["session_id"].as_str().unwrap().to_owned();
    sim.firehose(100);
    for _ in 0..100 {
        gw.dispatch("MESSAGE_CREATE").await;
    }
    gw.close(4000).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.hello().await;
    gw.send(json!({"op": 6, "d": {"token": token, "session_id": session_id, "seq": 1}}))
        .await;
    let answer = gw.payload().await;
    assert_eq!(
        (answer["op"].clone(), answer["d"].clone()),
        (json!(9), json!(false)),
        "seq 1 fell out of a 16-dispatch buffer"
    );
}

#[tokio::test]
async fn request_guild_members_answers_in_chunks_of_1000() {
    let sim = start(quiet(1, 2_500)).await;
    let token = sim.info().token.clone();
    let guild = sim.community().guilds[0].id;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&token, [0, 1]).await;
    gw.send(json!({"op": 8, "d": {"guild_id": guild.to_string(), "query": "", "limit": 0, "nonce": "n1"}}))
        .await;
    let mut total = 0;
    for index in 0..3 {
        let chunk = gw.dispatch("GUILD_MEMBERS_CHUNK").await["d"].clone();
        assert_eq!(chunk["chunk_index"], index);
        assert_eq!(chunk["chunk_count"], 3);
        assert_eq!(chunk["nonce"], "n1");
        assert_eq!(chunk["not_found"], json!([]));
        let members = chunk["members"].as_array().unwrap().len();
        assert!(members <= 1000);
        total += members;
        let typed: MemberChunk = serde_json::from_value(chunk).expect("chunk deserializes");
        assert_eq!(typed.guild_id.get(), guild);
    }
    assert_eq!(total, 2_500);

    let known = sim.community().guilds[0].members[7].user_id;
    gw.send(json!({"op": 8, "d": {"guild_id": guild.to_string(), "user_ids": [known.to_string(), "42"], "limit": 0, "nonce": "n2"}}))
        .await;
    let chunk = gw.dispatch("GUILD_MEMBERS_CHUNK").await["d"].clone();
    assert_eq!(chunk["chunk_count"], 1);
    assert_eq!(chunk["members"][0]["user"]["id"], known.to_string());
    assert_eq!(chunk["not_found"], json!(["42"]));
}

async fn compressed_stream_decodes(compress: Compress) {
    let sim = start(quiet(2, 50)).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, compress).await;
    gw.login(&sim.info().token, [0, 1]).await;
    sim.firehose(1_000);
    for _ in 0..1_000 {
        let v = gw.dispatch("MESSAGE_CREATE").await;
        let message: MessageCreate =
            serde_json::from_value(v["d"].clone()).expect("MESSAGE_CREATE deserializes");
        assert!(message.guild_id.is_some());
        assert!(message.member.is_some());
    }
    assert_eq!(gw.seq, Some(3 + 1_000));
    gw.send(json!({"op": 1, "d": gw.seq})).await;
    assert_eq!(gw.payload().await["op"], 11, "ACKs are compressed too");
}

#[tokio::test]
async fn zlib_stream_decodes_over_many_messages() {
    compressed_stream_decodes(Compress::Zlib).await;
}

#[tokio::test]
async fn zstd_stream_decodes_over_many_messages() {
    compressed_stream_decodes(Compress::Zstd).await;
}

#[tokio::test]
async fn more_than_120_sends_a_minute_closes_4008() {
    let sim = start(quiet(1, 20)).await;
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [0, 1]).await;
    // IDENTIFY was send 1 of 120.
    for _ in 0..119 {
        gw.send(json!({"op": 3, "d": {"since": null, "activities": [], "status": "online", "afk": false}}))
            .await;
    }
    gw.send(json!({"op": 1, "d": gw.seq})).await;
    assert_eq!(
        gw.payload().await["op"],
        11,
        "still connected after 120 sends (heartbeats are exempt)"
    );
    gw.send(
        json!({"op": 3, "d": {"since": null, "activities": [], "status": "idle", "afk": false}}),
    )
    .await;
    assert_eq!(gw.closed().await, Some(4008));
}

#[tokio::test]
async fn guilds_are_routed_to_shards_by_id() {
    let sim = start(quiet(8, 20)).await;
    let token = sim.info().token.clone();
    let mut seen = Vec::new();
    for shard in 0..2u32 {
        let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
        let (ready, creates) = gw.login(&token, [shard, 2]).await;
        assert_eq!(ready["shard"], json!([shard, 2]));
        assert!(!creates.is_empty(), "guild ids spread over shards");
        for g in creates {
            let id: u64 = g["id"].as_str().unwrap().parse().unwrap();
            assert_eq!((id >> 22) % 2, u64::from(shard));
            assert_eq!(shard_of(id, 2), shard);
            seen.push(id);
        }
    }
    seen.sort_unstable();
    let mut all: Vec<u64> = sim.community().guilds.iter().map(|g| g.id).collect();
    all.sort_unstable();
    assert_eq!(seen, all);
}

#[tokio::test]
async fn faults_reach_the_shard() {
    let sim = start(quiet(1, 20)).await;
    let token = sim.info().token.clone();
    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&token, [0, 1]).await;

    sim.inject_fault(Fault::Reconnect { shard: 0 }).unwrap();
    assert_eq!(gw.payload().await["op"], 7);
    sim.inject_fault(Fault::InvalidSession {
        shard: 0,
        resumable: true,
    })
    .unwrap();
    let v = gw.payload().await;
    assert_eq!((v["op"].clone(), v["d"].clone()), (json!(9), json!(true)));
    sim.inject_fault(Fault::RawFrame {
        shard: 0,
        text: "{\"op\":0,\"s\":99,\"t\":\"NOT_A_REAL_EVENT\",\"d\":{}}".into(),
    })
    .unwrap();
    assert_eq!(gw.payload().await["t"], "NOT_A_REAL_EVENT");
    sim.inject_fault(Fault::StopHeartbeatAcks { shard: 0 })
        .unwrap();
    sim.inject_fault(Fault::RawFrame {
        shard: 0,
        text: "{\"marker\":1}".into(),
    })
    .unwrap();
    gw.send(json!({"op": 1, "d": null})).await;
    assert_eq!(gw.payload().await["marker"], 1);
    sim.inject_fault(Fault::RawFrame {
        shard: 0,
        text: "{\"marker\":2}".into(),
    })
    .unwrap();
    assert_eq!(gw.payload().await["marker"], 2, "no ACK in between");
    sim.inject_fault(Fault::DropConnection {
        shard: 0,
        close_code: Some(4000),
    })
    .unwrap();
    assert_eq!(gw.closed().await, Some(4000));
    eventually(|| (!sim.status().sessions.first()?.connected).then_some(())).await;
    assert!(matches!(
        sim.inject_fault(Fault::Reconnect { shard: 0 }),
        Err(guildscope_simulator::SimError::NoConnection { shard: 0 })
    ));
    let _ = Value::Null;
    let _ = Frame::Closed(None);
}

#[tokio::test]
async fn traffic_only_flows_to_covered_shards_and_is_deterministic() {
    async fn first_events(seed: u64) -> (String, Vec<(String, Value)>) {
        let sim = start(SimConfig {
            seed,
            start_time_ms: Some(1_750_000_000_000),
            ..quiet(3, 80)
        })
        .await;
        let community = serde_json::to_string(sim.community()).unwrap();
        let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
        gw.login(&sim.info().token, [0, 1]).await;
        sim.set_rate(3_000.0);
        let mut events = Vec::new();
        while events.len() < 400 {
            let v = gw.payload().await;
            if v["op"] == 0 {
                events.push((v["t"].as_str().unwrap().to_owned(), v["d"].clone()));
            }
        }
        (community, events)
    }
    let (community_a, events_a) = first_events(7).await;
    let (community_b, events_b) = first_events(7).await;
    assert_eq!(community_a, community_b, "same seed, same community");
    assert_eq!(events_a, events_b, "same seed, same first 400 events");
    let kinds: std::collections::BTreeSet<_> = events_a.iter().map(|(t, _)| t.as_str()).collect();
    assert!(kinds.contains("MESSAGE_CREATE"));
    assert!(kinds.len() >= 4, "a mix of events: {kinds:?}");
    let (community_c, _) = first_events(8).await;
    assert_ne!(community_a, community_c);
}

impl Gateway {
    /// IDENTIFY after HELLO was already read, up to the last GUILD_CREATE.
    async fn login_after_hello(&mut self, token: &str) {
        self.identify(token, [0, 1]).await;
        let ready = self.dispatch("READY").await;
        for _ in 0..ready["d"]["guilds"].as_array().map_or(0, Vec::len) {
            self.dispatch("GUILD_CREATE").await;
        }
    }
}
