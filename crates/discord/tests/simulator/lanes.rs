//! The event bus's command lane: a command that arrives behind a backlog of
//! ordinary events is taken off the bus first.

use std::time::Duration;

use guildscope_discord::{Gateway, PrefixCommands, Rest};
use guildscope_model::{Event, Snowflake};
use guildscope_simulator::{InteractionKind, InteractionRequest, MessageRequest, Simulator};
use serde_json::json;

use crate::harness::{bot_config, eventually, init_tracing, sim_config, text_channel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_overtake_a_backlog_of_messages() {
    init_tracing();
    let sim = Simulator::start(sim_config())
        .await
        .expect("simulator starts");
    let mut config = bot_config(&sim);
    config.bus_capacity = 4_096;
    config.prefix_commands = Some(PrefixCommands {
        prefix: "!".into(),
        commands: vec!["ping".into()],
    });
    let rest = Rest::new(&config);
    let Gateway { handle, mut events } = Gateway::start(&config, &rest)
        .await
        .expect("gateway starts");
    let stats = std::sync::Arc::clone(handle.stats());
    let guilds = sim.community().guilds.len() as u64;
    eventually("every guild to arrive", || {
        stats.events("GUILD_CREATE") >= guilds
    })
    .await;

    // Nobody reads the bus: a backlog of messages builds up on it...
    sim.firehose(1_000);
    eventually("the backlog to be on the bus", || {
        stats.events("MESSAGE_CREATE") >= 1_000
    })
    .await;
    // ...and then a slash command and a prefix command arrive behind it.
    let (guild, channel) = text_channel(&sim);
    let community = sim.community().clone();
    let member = community
        .guilds
        .iter()
        .find(|g| g.id == guild.get())
        .and_then(|g| g.members.iter().find(|m| !m.bot))
        .expect("a member")
        .user_id;
    sim.inject_interaction(InteractionRequest {
        guild_id: guild.get(),
        user_id: member,
        channel_id: channel.get(),
        name: "ping".into(),
        options: json!([]),
        kind: InteractionKind::Command,
    })
    .expect("interaction injected");
    sim.inject_message(MessageRequest {
        guild_id: guild.get(),
        channel_id: channel.get(),
        user_id: member,
        content: "!ping".into(),
    })
    .expect("message injected");
    eventually("both commands to be on the bus", || {
        stats.events("INTERACTION_CREATE") >= 1 && stats.events("MESSAGE_CREATE") >= 1_001
    })
    .await;

    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("the bus is open");
    assert!(
        matches!(first.event, Event::Interaction(_)),
        "first off the bus: {}",
        first.name
    );
    let second = events.recv().await.expect("the bus is open");
    assert!(
        matches!(&second.event, Event::MessageCreate(m) if m.command.is_some()),
        "second off the bus: {}",
        second.name
    );
    // The backlog follows, in order, and nothing was lost.
    let mut messages = 0;
    while messages < 1_000 {
        let envelope = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("the backlog")
            .expect("the bus is open");
        if matches!(envelope.event, Event::MessageCreate(_)) {
            messages += 1;
        }
    }
    handle.shutdown().await;
    sim.shutdown().await;
}
