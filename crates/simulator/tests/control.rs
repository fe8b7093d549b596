//! The control API over HTTP, as a bot in another language would use it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Compress, Gateway, http, start};
use guildscope_simulator::{GroundTruth, RestCall, SimConfig, SimInfo};
use serde_json::json;

#[tokio::test]
async fn control_endpoints_answer() {
    let sim = start(SimConfig {
        guilds: 2,
        members: 30,
        heartbeat_interval: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    let control = sim.info().control_url.clone();
    let info: SimInfo = serde_json::from_value(
        http("GET", &format!("{control}/info"), None, None)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(&info, sim.info());
    let line = serde_json::to_value(sim.info()).unwrap();
    assert_eq!(
        line.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["control_url", "gateway_url", "rest_url", "token"]
    );

    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [0, 1]).await;

    let status = http("GET", &format!("{control}/status"), None, None).await;
    assert_eq!(status.body["shards_connected"], json!([0]));

    let traffic = http(
        "POST",
        &format!("{control}/traffic"),
        None,
        Some(json!({"firehose": 25})),
    )
    .await;
    assert_eq!(traffic.status, 200);
    for _ in 0..25 {
        gw.dispatch("MESSAGE_CREATE").await;
    }
    let truth: GroundTruth = serde_json::from_value(
        http("GET", &format!("{control}/ground-truth"), None, None)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(truth.events_sent["MESSAGE_CREATE"], 25);
    assert_eq!(truth.events_sent["READY"], 1);
    let created: u64 = truth.guilds.values().map(|g| g.messages_created).sum();
    assert_eq!(created, 25);
    assert_eq!(truth.guilds.len(), 2);

    let guild = &sim.community().guilds[0];
    let request = json!({
        "guild_id": guild.id.to_string(),
        "user_id": guild.members[2].user_id.to_string(),
        "channel_id": guild.channels[1].id.to_string(),
        "name": "stats",
        "options": [],
    });
    let injected = http(
        "POST",
        &format!("{control}/interactions"),
        None,
        Some(request),
    )
    .await;
    assert_eq!(injected.status, 200);
    let id = injected.body["id"].as_str().unwrap().to_owned();
    let token = injected.body["token"].as_str().unwrap().to_owned();
    let event = gw.dispatch("INTERACTION_CREATE").await;
    assert_eq!(event["d"]["id"], id);
    let callback = format!(
        "{}/api/v10/interactions/{id}/{token}/callback",
        sim.info().rest_url
    );
    assert_eq!(
        http(
            "POST",
            &callback,
            None,
            Some(json!({"type": 4, "data": {"content": "ok"}}))
        )
        .await
        .status,
        204
    );
    let record = http("GET", &format!("{control}/interactions/{id}"), None, None).await;
    assert_eq!(record.body["callback"]["type"], 4);
    assert_eq!(record.body["callback"]["body"]["data"]["content"], "ok");

    let bad = http(
        "POST",
        &format!("{control}/interactions"),
        None,
        Some(json!({"guild_id": "1"})),
    )
    .await;
    assert_eq!(bad.status, 400);

    let fault = http(
        "POST",
        &format!("{control}/faults"),
        None,
        Some(json!({"kind": "server_error", "route": "GET /api/v10/users/@me", "count": 1, "status": 502})),
    )
    .await;
    assert_eq!(fault.status, 204);
    let me = format!("{}/api/v10/users/@me", sim.info().rest_url);
    assert_eq!(
        http("GET", &me, Some(&sim.info().token), None).await.status,
        502
    );
    let fault = http(
        "POST",
        &format!("{control}/faults"),
        None,
        Some(json!({"kind": "drop_connection", "shard": 0, "close_code": null})),
    )
    .await;
    assert_eq!(fault.status, 204);
    gw.closed().await;
    let fault = http(
        "POST",
        &format!("{control}/faults"),
        None,
        Some(json!({"kind": "reconnect", "shard": 0})),
    )
    .await;
    assert_eq!(fault.status, 409, "no connection on shard 0 any more");
    assert_eq!(
        http(
            "POST",
            &format!("{control}/faults"),
            None,
            Some(json!({"kind": "clear"}))
        )
        .await
        .status,
        204
    );

    let log: Vec<RestCall> = serde_json::from_value(
        http("GET", &format!("{control}/rest-log"), None, None)
            .await
            .body,
    )
    .unwrap();
    let me_call = log.iter().find(|c| c.path == "/api/v10/users/@me").unwrap();
    assert_eq!(
        (
            me_call.method.as_str(),
            me_call.route.as_str(),
            me_call.status
        ),
        ("GET", "/api/v10/users/@me", 502)
    );
    assert!(
        log.iter()
            .any(|c| c.route
                == "/api/v10/interactions/{interaction_id}/{interaction_token}/callback")
    );
    assert_eq!(sim.rest_log().len(), log.len());

    let community = http("GET", &format!("{control}/community"), None, None).await;
    assert_eq!(
        community.body["guilds"][0]["self_assignable_roles"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    sim.shutdown().await;
}

/// On a runtime of its own, the simulator serves the gateway and REST from
/// its own threads (the test's runtime has one thread, which only the test
/// uses), runs a driver spawned there, and stops its runtime on shutdown.
#[tokio::test(flavor = "current_thread")]
async fn an_isolated_simulator_runs_on_its_own_threads() {
    let sim = guildscope_simulator::Simulator::start_isolated(
        SimConfig {
            guilds: 1,
            members: 20,
            heartbeat_interval: Duration::from_secs(30),
            ..SimConfig::default()
        },
        1,
    )
    .await
    .unwrap();
    let thread = sim
        .runtime()
        .spawn(async { std::thread::current().name().map(str::to_owned) })
        .await
        .unwrap();
    assert_eq!(thread.as_deref(), Some("simulator"));

    let mut gw = Gateway::connect(&sim.info().gateway_url, Compress::None).await;
    gw.login(&sim.info().token, [0, 1]).await;
    sim.firehose(10);
    for _ in 0..10 {
        gw.dispatch("MESSAGE_CREATE").await;
    }
    let user = http(
        "GET",
        &format!("{}/api/v10/users/@me", sim.info().rest_url),
        Some(&sim.info().token),
        None,
    )
    .await;
    assert_eq!(user.status, 200);
    assert_eq!(user.body["bot"], json!(true));

    let rest_url = sim.info().rest_url.clone();
    sim.shutdown().await;
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(rest_url.trim_start_matches("http://")),
    )
    .await
    .expect("connecting to a stopped simulator does not hang");
    assert!(refused.is_err(), "the listener is closed after shutdown");
}
