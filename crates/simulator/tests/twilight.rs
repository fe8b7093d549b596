//! twilight 0.18 against the simulator: the shard identifies, resumes after RECONNECT and
//! reads zstd-compressed dispatches; twilight-http honours the rate-limit headers and
//! retries 429s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, start};
use guildscope_simulator::{Fault, SimConfig};
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
    queue::InMemoryQueue,
};

fn install_crypto() {
    // twilight's rustls features need a process-wide provider even for plain ws:// and http://.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The next dispatch (gateway-level events are skipped).
async fn next(shard: &mut Shard<InMemoryQueue>) -> Event {
    loop {
        let item = tokio::time::timeout(WAIT, shard.next_event(EventTypeFlags::all()))
            .await
            .expect("event in time")
            .expect("shard stream open");
        match item {
            Ok(
                Event::GatewayHello(_)
                | Event::GatewayHeartbeatAck
                | Event::GatewayHeartbeat
                | Event::GatewayClose(_)
                | Event::GatewayReconnect
                | Event::GatewayInvalidateSession(_),
            ) => {}
            Ok(event) => return event,
            Err(error) => eprintln!("shard error (continuing): {error}"),
        }
    }
}

#[tokio::test]
async fn twilight_shard_identifies_resumes_and_reads_messages() {
    install_crypto();
    let sim = start(SimConfig {
        guilds: 3,
        members: 100,
        heartbeat_interval: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await;
    let intents = Intents::GUILDS
        | Intents::GUILD_MEMBERS
        | Intents::GUILD_MESSAGES
        | Intents::MESSAGE_CONTENT;
    let config = ConfigBuilder::new(sim.info().token.clone(), intents)
        .proxy_url(sim.info().gateway_url.clone())
        .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
        .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    assert!(matches!(next(&mut shard).await, Event::Ready(_)));
    for _ in 0..3 {
        assert!(matches!(next(&mut shard).await, Event::GuildCreate(_)));
    }
    sim.inject_fault(Fault::Reconnect { shard: 0 }).unwrap();
    loop {
        if matches!(next(&mut shard).await, Event::Resumed) {
            break;
        }
    }
    sim.firehose(500);
    let mut messages = 0;
    while messages < 500 {
        if let Event::MessageCreate(m) = next(&mut shard).await {
            assert!(m.guild_id.is_some());
            messages += 1;
        }
    }
    sim.inject_fault(Fault::InvalidSession {
        shard: 0,
        resumable: false,
    })
    .unwrap();
    loop {
        if matches!(next(&mut shard).await, Event::Ready(_)) {
            break;
        }
    }
    assert_eq!(sim.ground_truth().identifies, 2);
    assert_eq!(sim.ground_truth().resumes, 1);
}

#[tokio::test]
async fn twilight_http_waits_on_buckets_and_retries_429() {
    install_crypto();
    let sim = start(SimConfig {
        guilds: 1,
        members: 20,
        rest_bucket_limit: 2,
        rest_bucket_window: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await;
    let address = sim.info().rest_url.trim_start_matches("http://").to_owned();
    let client = twilight_http::Client::builder()
        .proxy(address, true)
        .token(sim.info().token.clone())
        .build();
    let guild = twilight_model::id::Id::new(sim.community().guilds[0].id);
    let started = Instant::now();
    for _ in 0..5 {
        let roles = client
            .roles(guild)
            .await
            .expect("request succeeds")
            .model()
            .await
            .unwrap();
        assert!(roles.len() >= 9);
    }
    let log = sim.rest_log();
    assert_eq!(log.iter().filter(|c| c.status == 200).count(), 5);
    let limited = log.iter().filter(|c| c.status == 429).count();
    assert!(
        limited <= 1,
        "twilight waited on the headers instead of hammering: {limited} 429s"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "two bucket resets were waited out"
    );

    sim.inject_fault(Fault::RateLimit {
        route: "GET /api/v10/users/@me".into(),
        count: 2,
        retry_after: 0.1,
        global: false,
    })
    .unwrap();
    let me = client
        .current_user()
        .await
        .expect("retried after 429")
        .model()
        .await
        .unwrap();
    assert_eq!(me.id.get(), sim.community().bot_user_id);
    let statuses: Vec<u16> = sim
        .rest_log()
        .iter()
        .filter(|c| c.path == "/api/v10/users/@me")
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200]);
}
