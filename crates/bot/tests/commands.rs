//! Commands end to end: interactions and `!`-prefix messages injected into
//! the simulator reach the bot over the real gateway, and its answers, role
//! changes and numbers are read back from the simulator.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{sqlite, until};

use std::{sync::Arc, time::Duration};

use guildscope_bot::{
    Bot, BotConfig, BotStats, CollectorConfig, Flag, Flags, WriterConfig,
    flags::rollout_bucket,
    roles::{RoleConfig, RoleRef},
};
use guildscope_discord::{DiscordConfig, Gateway, GatewayHandle, PrefixCommands, Rest};
use guildscope_model::{GuildId, Secret, Snowflake, UserId};
use guildscope_simulator::{
    ChannelKind, Fault, GuildInfo, InteractionKind, InteractionRecord, InteractionRequest,
    MessageRequest, SimConfig, Simulator,
};
use serde_json::{Value, json};

/// A bot answering commands for a one-guild simulated community.
struct Harness {
    sim: Simulator,
    gateway: GatewayHandle,
    stats: Arc<BotStats>,
    runtime: tokio::task::JoinHandle<Result<(), guildscope_store::StoreError>>,
    rest: Rest,
    guild: GuildInfo,
    /// A text channel to run commands in.
    channel: u64,
    /// Members who are neither bots nor staff.
    members: Vec<u64>,
    _db: common::Db,
}

/// The game roles the simulator generates, minus the last one, which the
/// configuration leaves out so "not in the set" can be tested.
fn allowed_roles(guild: &GuildInfo) -> (Vec<String>, String) {
    let mut names = guild.self_assignable_roles.clone();
    names.sort();
    let left_out = names.pop().unwrap();
    (names, left_out)
}

async fn start(flags: Flags) -> Harness {
    let sim = Simulator::start(SimConfig {
        seed: 5,
        guilds: 1,
        members: 60,
        shards: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let guild = sim.community().guilds[0].clone();
    let info = sim.info();
    let mut discord = DiscordConfig::local(
        Secret::new(info.token.clone()),
        info.rest_url.clone(),
        info.gateway_url.clone(),
    );
    discord.prefix_commands = Some(PrefixCommands {
        prefix: "!".into(),
        commands: guildscope_bot::commands::catalog::names(),
    });
    let rest = Rest::new(&discord);
    let Gateway { handle, events } = Gateway::start(&discord, &rest).await.unwrap();
    let db = sqlite();
    // The staff roles, the bot's own role and @everyone are in the set too,
    // as a careless operator might put them: they must still be refused.
    let (mut allow, _) = allowed_roles(&guild);
    allow.extend(
        guild
            .roles
            .iter()
            .filter(|r| r.staff || r.managed || r.id == guild.id)
            .map(|r| r.name.clone()),
    );
    let config = BotConfig {
        collector: CollectorConfig::default(),
        writer: Some(WriterConfig {
            batch_interval: Duration::from_millis(10),
            ..WriterConfig::new(db.location.clone())
        }),
        flags,
        roles: RoleConfig {
            allow: allow.into_iter().map(RoleRef::Name).collect(),
            marker: None,
        },
        prefix: Some("!".into()),
        ..BotConfig::default()
    };
    let bot = Bot::new(config, rest.clone(), Arc::new(handle.clone()));
    let stats = bot.stats();
    let runtime = tokio::spawn(bot.run(events));
    let channel = guild
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Text)
        .unwrap()
        .id;
    let members = guild
        .members
        .iter()
        .filter(|m| !m.bot && !m.staff)
        .map(|m| m.user_id)
        .collect();
    let harness = Harness {
        sim,
        gateway: handle,
        stats,
        runtime,
        rest,
        guild,
        channel,
        members,
        _db: db,
    };
    // Commands need the guild's roles, which arrive with GUILD_CREATE.
    let gateway = harness.gateway.clone();
    until("the guild to arrive", || {
        gateway.stats().events("GUILD_CREATE") >= 1
    })
    .await;
    harness
}

impl Harness {
    fn role_id(&self, name: &str) -> u64 {
        self.guild
            .roles
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no role {name}"))
            .id
    }

    fn role_named(&self, pick: impl Fn(&guildscope_simulator::RoleInfo) -> bool) -> String {
        self.guild
            .roles
            .iter()
            .find(|r| pick(r))
            .unwrap()
            .name
            .clone()
    }

    /// Runs a command as `user` and waits for its answer.
    async fn run(&self, user: u64, name: &str, options: Value) -> InteractionRecord {
        self.interact(user, name, options, InteractionKind::Command)
            .await
    }

    async fn interact(
        &self,
        user: u64,
        name: &str,
        options: Value,
        kind: InteractionKind,
    ) -> InteractionRecord {
        let injected = self
            .sim
            .inject_interaction(InteractionRequest {
                guild_id: self.guild.id,
                user_id: user,
                channel_id: self.channel,
                name: name.into(),
                options,
                kind,
            })
            .unwrap();
        let mut record = None;
        until("the command to be answered", || {
            record = self
                .sim
                .interaction_responses(injected.id)
                .filter(|r| r.callback.is_some());
            record.is_some()
        })
        .await;
        record.unwrap()
    }

    /// Has `user` type `content` in the test channel; returns its id.
    fn type_message(&self, user: u64, content: &str) -> u64 {
        self.sim
            .inject_message(MessageRequest {
                guild_id: self.guild.id,
                channel_id: self.channel,
                user_id: user,
                content: content.into(),
            })
            .unwrap()
            .id
    }

    /// Types `content` as `user` and waits for the bot's reply to it.
    async fn say(&self, user: u64, content: &str) -> guildscope_simulator::BotMessage {
        let message = self.type_message(user, content);
        let mut reply = None;
        until("the bot to reply", || {
            reply = self
                .sim
                .bot_messages(self.channel)
                .into_iter()
                .find(|m| m.reply_to == Some(message));
            reply.is_some()
        })
        .await;
        reply.unwrap()
    }

    fn member_roles(&self, user: u64) -> Vec<u64> {
        self.sim.member_roles(self.guild.id, user).unwrap()
    }

    async fn finish(self) {
        self.gateway.shutdown().await;
        self.runtime.await.unwrap().unwrap();
        self.sim.shutdown().await;
    }
}

/// The text of an interaction's answer: the callback, or the last edit of a
/// deferred one.
fn answer(record: &InteractionRecord) -> String {
    if let Some(edit) = record.edits.last() {
        return edit.body["content"].as_str().unwrap_or("").to_owned();
    }
    let callback = record.callback.as_ref().unwrap();
    callback.body["data"]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn ephemeral(record: &InteractionRecord) -> bool {
    let flags = &record.callback.as_ref().unwrap().body["data"]["flags"];
    flags.as_u64().is_some_and(|f| f & 64 != 0)
}

fn role_option(sub: &str, role: &str) -> Value {
    json!([{ "name": sub, "type": 1, "options": [{ "name": "role", "type": 3, "value": role }] }])
}

fn sub(name: &str) -> Value {
    json!([{ "name": name, "type": 1 }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_add_list_remove_change_the_members_roles() {
    let h = start(Flags::default()).await;
    let user = h.members[0];
    let (allowed, _) = allowed_roles(&h.guild);
    let role = allowed[0].clone();
    let role_id = h.role_id(&role);
    assert!(!h.member_roles(user).contains(&role_id));

    let added = h.run(user, "role", role_option("add", &role)).await;
    assert_eq!(answer(&added), format!("You now have **{role}**."));
    assert!(ephemeral(&added));
    assert!(h.member_roles(user).contains(&role_id));

    // The member update reaches the bot before the next command reads the
    // member's roles from the interaction, which the simulator fills in.
    let listed = h.run(user, "role", sub("list")).await;
    let text = answer(&listed);
    assert!(text.contains(&format!("**{role}** ✓")), "{text}");
    for other in &allowed[1..] {
        assert!(text.contains(other.as_str()), "{other} missing: {text}");
    }

    let again = h.run(user, "role", role_option("add", &role)).await;
    assert_eq!(answer(&again), format!("You already have **{role}**."));

    // Case does not matter, and the autocomplete value (the id) works too.
    let removed = h
        .run(user, "role", role_option("remove", &role_id.to_string()))
        .await;
    assert_eq!(answer(&removed), format!("You no longer have **{role}**."));
    assert!(!h.member_roles(user).contains(&role_id));
    let upper = h
        .run(user, "role", role_option("add", &role.to_uppercase()))
        .await;
    assert_eq!(answer(&upper), format!("You now have **{role}**."));
    assert!(h.member_roles(user).contains(&role_id));

    // Exactly one role REST call per change.
    let changes = h
        .sim
        .rest_log()
        .into_iter()
        .filter(|c| c.path.contains("/roles/"))
        .count();
    assert_eq!(changes, 3);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_explained_and_changes_nothing() {
    let h = start(Flags::default()).await;
    let user = h.members[1];
    let (_, left_out) = allowed_roles(&h.guild);
    let admins = h.role_named(|r| r.permissions & 0x8 != 0);
    let moderators = h.role_named(|r| r.staff && r.permissions & 0x8 == 0);
    let managed = h.role_named(|r| r.managed);
    let before = h.member_roles(user);
    let cases = [
        (
            left_out.as_str(),
            "isn't one of the roles members can give themselves.",
        ),
        (
            admins.as_str(),
            "can't be self-assigned: it grants moderator or admin permissions",
        ),
        (
            moderators.as_str(),
            "can't be self-assigned: it grants moderator or admin permissions",
        ),
        (
            managed.as_str(),
            "can't be self-assigned: an integration manages it.",
        ),
        ("@everyone", "Every member has the everyone role already."),
        (
            "No Such Role",
            "There is no role called **No Such Role** here.",
        ),
    ];
    for (role, expected) in cases {
        let refused = h.run(user, "role", role_option("add", role)).await;
        let text = answer(&refused);
        assert!(
            text.contains(expected),
            "{role}: expected {expected:?} in {text:?}"
        );
        assert!(ephemeral(&refused), "{role}");
    }
    assert_eq!(h.member_roles(user), before);
    assert!(
        !h.sim.rest_log().iter().any(|c| c.path.contains("/roles/")),
        "a refused role reached Discord"
    );
    // Counted once the answer's request has returned, after the simulator
    // recorded it.
    let stats = &h.stats;
    until("every refusal to be counted", || {
        stats.snapshot().commands_user_error >= cases.len() as u64
    })
    .await;
    assert_eq!(stats.snapshot().commands_user_error, cases.len() as u64);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocomplete_lists_prefix_matches_then_substrings() {
    let h = start(Flags::default()).await;
    let (allowed, left_out) = allowed_roles(&h.guild);
    let user = h.members[2];
    for partial in ["", "a", "e", "O", &allowed[0][1..3]] {
        let options = json!([{ "name": "add", "type": 1, "options": [
            { "name": "role", "type": 3, "value": partial, "focused": true }
        ] }]);
        let record = h
            .interact(user, "role", options, InteractionKind::Autocomplete)
            .await;
        let callback = record.callback.unwrap();
        assert_eq!(callback.kind, 8);
        let got: Vec<(String, String)> = callback.body["data"]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let lower = partial.to_lowercase();
        let mut prefix: Vec<&String> = allowed
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&lower))
            .collect();
        let mut inner: Vec<&String> = allowed
            .iter()
            .filter(|n| {
                let n = n.to_lowercase();
                !n.starts_with(&lower) && n.contains(&lower)
            })
            .collect();
        prefix.sort_by_key(|n| n.to_lowercase());
        inner.sort_by_key(|n| n.to_lowercase());
        let expected: Vec<(String, String)> = prefix
            .into_iter()
            .chain(inner)
            .map(|n| (n.clone(), h.role_id(n).to_string()))
            .collect();
        assert_eq!(got, expected, "partial {partial:?}");
        assert!(!got.iter().any(|(n, _)| *n == left_out));
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_equal_the_simulators_ground_truth() {
    let h = start(Flags::default()).await;
    let (alice, bob) = (h.members[3], h.members[4]);
    let other = h
        .guild
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Text)
        .nth(1)
        .unwrap()
        .id;
    // Quiet community: only these messages are posted.
    for (user, channel, n) in [(alice, h.channel, 7), (bob, h.channel, 3), (bob, other, 5)] {
        for i in 0..n {
            h.sim
                .inject_message(MessageRequest {
                    guild_id: h.guild.id,
                    channel_id: channel,
                    user_id: user,
                    content: format!("hello {i}"),
                })
                .unwrap();
        }
    }
    let truth = h.sim.ground_truth();
    let guild_truth = &truth.guilds[&h.guild.id.to_string()];
    assert_eq!(guild_truth.messages_created, 15);
    let stats = Arc::clone(&h.stats);
    until("the messages to be stored", || {
        stats.snapshot().rows.messages >= 15
    })
    .await;

    let server = answer(&h.run(alice, "stats", sub("server")).await);
    assert!(
        server.starts_with(&format!(
            "**{}** members · **15** messages in the last 24 hours · **15** in the last 7 days",
            guild_truth.members_in_guild
        )),
        "{server}"
    );
    assert!(
        server.contains(&format!(
            "Busiest channels this week: <#{}> (10), <#{other}> (5)",
            h.channel
        )),
        "{server}"
    );

    let here = answer(&h.run(alice, "stats", sub("channel")).await);
    assert_eq!(
        here,
        format!(
            "<#{}>: **10** messages in the last 24 hours · **10** in the last 7 days\n\
             1st busiest of 2 active channels this week (66% of messages)",
            h.channel
        )
    );
    let named = json!([{ "name": "channel", "type": 1, "options": [
        { "name": "channel", "type": 7, "value": other.to_string() }
    ] }]);
    let there = answer(&h.run(alice, "stats", named).await);
    assert!(
        there.starts_with(&format!("<#{other}>: **5** messages")),
        "{there}"
    );

    let me = h.run(bob, "stats", sub("me")).await;
    assert!(ephemeral(&me));
    assert_eq!(
        answer(&me),
        "You posted **8** messages in the last 24 hours · **8** in the last 7 days\n\
         You are the 1st most active member this week."
    );

    let forums: Vec<u64> = h
        .guild
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Forum)
        .map(|c| c.id)
        .collect();
    let open = h
        .rest
        .active_threads(GuildId::new(h.guild.id))
        .await
        .unwrap()
        .iter()
        .filter(|t| t.parent_id.is_some_and(|p| forums.contains(&p.get())) && !t.archived)
        .count();
    let help = answer(&h.run(alice, "stats", sub("help")).await);
    assert!(
        help.starts_with(&format!("**{open}** help threads in use")),
        "{help}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_gate_commands_by_user_role_and_rollout() {
    let percentage = 40;
    let flags = Flags::new([(
        "stats_beta".to_owned(),
        Flag {
            percentage,
            commands: vec!["stats".into()],
            ..Flag::default()
        },
    )]);
    let h = start(flags).await;
    let mut allowed = 0;
    for &user in h.members.iter().take(20) {
        let expect_on = rollout_bucket("stats_beta", UserId::new(user)) < u64::from(percentage);
        let record = h.run(user, "stats", sub("server")).await;
        let text = answer(&record);
        if expect_on {
            allowed += 1;
            assert!(text.contains("members"), "{user}: {text}");
        } else {
            assert_eq!(
                text, "`/stats` is not available to you yet (feature `stats_beta`).",
                "{user}"
            );
            assert!(ephemeral(&record));
        }
        let help = answer(&h.run(user, "help", json!([])).await);
        assert_eq!(help.contains("/stats"), expect_on, "{user}: {help}");
        assert!(help.contains("`/ping`"), "{help}");
    }
    assert!(
        (1..20).contains(&allowed),
        "a 40% rollout let {allowed} of 20 in"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_commands_at_once_are_each_answered_once() {
    let h = start(Flags::default()).await;
    let ids: Vec<u64> = (0..100)
        .map(|i| {
            let name = if i % 2 == 0 { "ping" } else { "help" };
            h.sim
                .inject_interaction(InteractionRequest {
                    guild_id: h.guild.id,
                    user_id: h.members[i % h.members.len()],
                    channel_id: h.channel,
                    name: name.into(),
                    options: json!([]),
                    kind: InteractionKind::Command,
                })
                .unwrap()
                .id
        })
        .collect();
    let sim = &h.sim;
    until("every command to be answered", || {
        ids.iter().all(|id| {
            sim.interaction_responses(*id)
                .is_some_and(|r| r.callback.is_some())
        })
    })
    .await;
    for id in &ids {
        let record = sim.interaction_responses(*id).unwrap();
        assert_eq!(record.late_callbacks, 0);
        let callback = record.callback.unwrap();
        assert_eq!(callback.kind, 4, "{}", record.name);
    }
    let truth = sim.ground_truth();
    assert_eq!(truth.interactions_answered, 100);
    assert_eq!(truth.interactions_late, 0);
    // The simulator records a callback before it answers the request; the
    // bot counts a command once the answer is back.
    let stats = &h.stats;
    until("every command to be counted", || {
        stats.snapshot().commands_answered() >= 100
    })
    .await;
    assert_eq!(stats.snapshot().commands_ok, 100);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_commands_answer_with_a_reply() {
    let h = start(Flags::default()).await;
    let user = h.members[5];
    let (allowed, _) = allowed_roles(&h.guild);
    let role = &allowed[1];

    let added = h.say(user, &format!("!role add {role}")).await;
    assert_eq!(added.content, format!("You now have **{role}**."));
    assert!(h.member_roles(user).contains(&h.role_id(role)));
    assert!(!added.mentions_replied_user);

    let ping = h.say(user, "!PING").await;
    assert!(
        ping.content.starts_with("Pong! Gateway heartbeat"),
        "{}",
        ping.content
    );

    let usage = h.say(user, "!role add").await;
    assert_eq!(
        usage.content,
        "`!role`: `role` is missing; use `role add <role>`."
    );

    let help = h.say(user, "!help").await;
    assert!(help.content.contains("`!stats me`"), "{}", help.content);

    // Not commands: no reply.
    for text in ["!nope", "ping", "hello !ping"] {
        h.say_nothing(user, text).await;
    }
    h.finish().await;
}

impl Harness {
    /// Types `content` and checks the bot does not answer it: a `!ping` sent
    /// after it is answered first.
    async fn say_nothing(&self, user: u64, content: &str) {
        let before = self.sim.bot_messages(self.channel).len();
        let message = self.type_message(user, content);
        self.say(user, "!ping").await;
        let after = self.sim.bot_messages(self.channel);
        assert_eq!(after.len(), before + 1, "{content:?} was answered");
        assert!(!after.iter().any(|m| m.reply_to == Some(message)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_answers_privately_with_an_error_id() {
    let h = start(Flags::default()).await;
    let user = h.members[6];
    let (allowed, _) = allowed_roles(&h.guild);
    h.sim
        .inject_fault(Fault::ServerError {
            route: format!("PUT /api/v10/guilds/{}/members", h.guild.id),
            count: 100,
            status: 500,
        })
        .unwrap();
    let failed = h.run(user, "role", role_option("add", &allowed[0])).await;
    let text = answer(&failed);
    assert!(ephemeral(&failed));
    let id = text
        .split("error id `")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("`."))
        .unwrap_or_else(|| panic!("no error id in {text:?}"));
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert!(
        text.starts_with("Something went wrong on our side while running `/role`."),
        "{text}"
    );
    let stats = &h.stats;
    until("the failure to be counted", || {
        stats.snapshot().commands_failed >= 1
    })
    .await;
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.commands_failed, 1);
    assert_eq!(snapshot.errors.get("command"), Some(&1));
    // The bot is still answering.
    let ping = h.run(user, "ping", json!([])).await;
    assert!(answer(&ping).starts_with("Pong!"));
    h.finish().await;
}
