//! Measures how fast the simulator sends MESSAGE_CREATE.
//!
//! ```text
//! cargo run --release -p guildscope-simulator --example firehose -- [raw|twilight] [N] [plain|zlib|zstd]
//! ```
//!
//! `raw` counts frames with a bare WebSocket client (the simulator's own ceiling);
//! `twilight` reads them through a twilight 0.18 shard that deserializes every event (what a
//! bot in the same process sees). Both share the process and its cores with the simulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use guildscope_simulator::{SimConfig, Simulator};
use serde_json::json;
use tokio_websockets::{ClientBuilder, Message};
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
    queue::InMemoryQueue,
};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("raw", String::as_str).to_owned();
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let compress = args.get(3).map_or("plain", String::as_str).to_owned();
    let sim = Simulator::start(SimConfig {
        guilds: 4,
        members: 1_000,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let guilds = sim.community().guilds.len() as u64;
    let (elapsed, bytes) = match mode.as_str() {
        "twilight" => twilight(&sim, n).await,
        _ => raw(&sim, n, guilds, &compress).await,
    };
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "mode={mode} compress={compress} messages={n} seconds={:.3} messages_per_second={rate:.0} mib_per_second={:.1}",
        elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
    );
    sim.shutdown().await;
}

/// Counts frames on a bare connection; returns the time from the firehose request to the
/// last frame, and the bytes received.
async fn raw(sim: &Simulator, n: u64, guilds: u64, compress: &str) -> (Duration, u64) {
    let query = match compress {
        "zlib" => "&compress=zlib-stream",
        "zstd" => "&compress=zstd-stream",
        _ => "",
    };
    let url = format!("{}/?v=10&encoding=json{query}", sim.info().gateway_url);
    let (mut ws, _) = ClientBuilder::new()
        .uri(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let _hello = ws.next().await;
    let identify =
        json!({"op": 2, "d": {"token": sim.info().token, "intents": 513, "properties": {}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    for _ in 0..=guilds {
        ws.next().await.unwrap().unwrap();
    }
    let started = Instant::now();
    sim.firehose(n);
    let mut bytes = 0u64;
    for _ in 0..n {
        let frame = ws.next().await.unwrap().unwrap();
        bytes += frame.as_payload().len() as u64;
    }
    (started.elapsed(), bytes)
}

/// Reads MESSAGE_CREATE through a twilight shard.
async fn twilight(sim: &Simulator, n: u64) -> (Duration, u64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ConfigBuilder::new(
        sim.info().token.clone(),
        Intents::GUILDS | Intents::GUILD_MESSAGES,
    )
    .proxy_url(sim.info().gateway_url.clone())
    .queue(InMemoryQueue::new(0, 0, Duration::ZERO, 0))
    .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let guilds = sim.community().guilds.len();
    let mut seen = 0;
    while seen < guilds {
        if let Some(Ok(Event::GuildCreate(_))) =
            shard.next_event(EventTypeFlags::GUILD_CREATE).await
        {
            seen += 1;
        }
    }
    let started = Instant::now();
    sim.firehose(n);
    let mut count = 0u64;
    let mut content = 0u64;
    while count < n {
        if let Some(Ok(Event::MessageCreate(m))) =
            shard.next_event(EventTypeFlags::MESSAGE_CREATE).await
        {
            count += 1;
            content += m.content.len() as u64;
        }
    }
    (started.elapsed(), content)
}
