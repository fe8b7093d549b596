//! Frame decoding, checked against payloads shaped like Discord's.

use guildscope_model::{
    ChannelKind, CommandOption, CommandValue, Event, GuildId, InteractionKind, MessageId, RoleId,
    UserId,
};

use super::{DecodeError, Decoded, DispatchName, decode, names::DISPATCH_NAMES};

/// Decodes a dispatch and returns its name and event.
fn dispatch(text: &str) -> (&'static str, u64, Event) {
    match decode(text, None) {
        Ok(Decoded::Dispatch {
            sequence,
            name: DispatchName::Known(slot),
            event,
        }) => (DISPATCH_NAMES[slot], sequence, event),
        other => panic!("expected a documented dispatch, got {other:?}"),
    }
}

const MESSAGE_CREATE: &str = r#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"type":0,"tts":false,"timestamp":"2024-03-01T12:00:00.500000+00:00","pinned":false,"mentions":[],"id":"1213111111111111111","flags":0,"embeds":[],"edited_timestamp":null,"content":"the secret plan \u00e9","components":[],"channel_id":"900000000000000001","author":{"username":"ada","id":"80000000000000001","global_name":null,"discriminator":"0","bot":false,"avatar":null},"attachments":[],"guild_id":"81384788765712384","member":{"roles":[],"joined_at":"2020-01-01T00:00:00+00:00"}}}"#;

#[test]
fn message_create_keeps_metadata_and_never_content() {
    let (name, sequence, event) = dispatch(MESSAGE_CREATE);
    assert_eq!((name, sequence), ("MESSAGE_CREATE", 42));
    let Event::MessageCreate(meta) = &event else {
        panic!("expected MessageCreate, got {event:?}");
    };
    assert_eq!(meta.id, MessageId::new(1_213_111_111_111_111_111));
    assert_eq!(meta.guild_id, Some(GuildId::new(81_384_788_765_712_384)));
    assert_eq!(meta.author_id, UserId::new(80_000_000_000_000_001));
    assert!(!meta.author_is_bot && !meta.is_system && !meta.is_webhook);
    assert_eq!(meta.created_at_ms, 1_709_294_400_500);
    assert!(!format!("{event:?}").contains("secret"));
}

#[test]
fn a_content_key_yields_the_hmac_of_the_unescaped_content_and_nothing_else() {
    let key = crate::ContentKey::new(&guildscope_model::Secret::new("operator key"));
    let Ok(Decoded::Dispatch {
        event: Event::MessageCreate(meta),
        ..
    }) = decode(MESSAGE_CREATE, Some(&key))
    else {
        panic!("expected a MESSAGE_CREATE");
    };
    assert_eq!(meta.keyed_hash, Some(key.hash("the secret plan \u{e9}")));
    assert!(!format!("{meta:?}").contains("secret"));
    // Without a key there is no hash at all.
    let (_, _, plain) = dispatch(MESSAGE_CREATE);
    let Event::MessageCreate(plain) = plain else {
        unreachable!()
    };
    assert_eq!(plain.keyed_hash, None);
}

#[test]
fn system_and_webhook_messages_are_flagged() {
    let join = MESSAGE_CREATE.replace(r#""type":0"#, r#""type":7"#);
    let (_, _, Event::MessageCreate(meta)) = dispatch(&join) else {
        panic!("expected MessageCreate");
    };
    assert!(meta.is_system);
    let hook = MESSAGE_CREATE.replace(r#""flags":0"#, r#""flags":0,"webhook_id":"123""#);
    let (_, _, Event::MessageCreate(meta)) = dispatch(&hook) else {
        panic!("expected MessageCreate");
    };
    assert!(meta.is_webhook && !meta.is_system);
}

/// The prefix commands the decoding tests look for.
fn bang() -> crate::PrefixCommands {
    crate::PrefixCommands {
        prefix: "!".to_owned(),
        commands: ["role", "stats", "ping", "help"]
            .map(str::to_owned)
            .to_vec(),
    }
}

/// A MESSAGE_CREATE from a member with two roles, with `content`.
fn typed(content: &str) -> String {
    MESSAGE_CREATE
        .replace("the secret plan \\u00e9", content)
        .replace(
            r#""member":{"roles":[]"#,
            r#""member":{"roles":["300000000000000001","300000000000000002"]"#,
        )
}

/// The MessageMeta of a frame decoded with prefix commands (and a key, if given).
fn decoded_with_commands(
    text: &str,
    key: Option<&crate::ContentKey>,
) -> guildscope_model::MessageMeta {
    let commands = bang();
    let reading = super::Reading {
        content_key: key,
        prefix_commands: Some(&commands),
    };
    match decode(text, reading) {
        Ok(Decoded::Dispatch {
            event: Event::MessageCreate(meta),
            ..
        }) => meta,
        other => panic!("expected a MESSAGE_CREATE, got {other:?}"),
    }
}

#[test]
fn a_prefix_command_carries_its_name_args_and_the_members_roles() {
    let meta = decoded_with_commands(&typed("!Role  add Chess Club "), None);
    let command = meta.command.expect("a command");
    assert_eq!(command.name, "role");
    assert_eq!(command.args, "add Chess Club");
    assert_eq!(
        command.member_roles,
        vec![
            RoleId::new(300_000_000_000_000_001),
            RoleId::new(300_000_000_000_000_002)
        ]
    );
    // The rest of the metadata is what it always is.
    assert_eq!(meta.id, MessageId::new(1_213_111_111_111_111_111));
    assert_eq!(meta.author_id, UserId::new(80_000_000_000_000_001));

    let ping = decoded_with_commands(&typed("!ping"), None);
    let ping = ping.command.expect("a command");
    assert_eq!((ping.name.as_str(), ping.args.as_str()), ("ping", ""));
}

#[test]
fn a_command_in_a_dm_has_no_roles() {
    let dm = typed("!stats me").replace(
        r#","guild_id":"81384788765712384","member":{"roles":["300000000000000001","300000000000000002"],"joined_at":"2020-01-01T00:00:00+00:00"}"#,
        "",
    );
    assert!(!dm.contains("member"), "the DM frame has no member object");
    let meta = decoded_with_commands(&dm, None);
    assert_eq!(meta.guild_id, None);
    let command = meta.command.expect("a command");
    assert_eq!(
        (command.name.as_str(), command.args.as_str()),
        ("stats", "me")
    );
    assert!(command.member_roles.is_empty());
}

#[test]
fn only_people_writing_a_known_command_give_a_command() {
    for (what, text) in [
        ("no prefix", typed("role add Chess")),
        ("unknown command", typed("!roles add Chess")),
        ("prefix alone", typed("!")),
        ("command not at the start", typed("see !role add Chess")),
        (
            "a bot",
            typed("!ping").replace(r#""bot":false"#, r#""bot":true"#),
        ),
        (
            "a webhook",
            typed("!ping").replace(r#""flags":0"#, r#""flags":0,"webhook_id":"123""#),
        ),
        (
            "a system message",
            typed("!ping").replace(r#""type":0"#, r#""type":7"#),
        ),
        (
            "no content",
            MESSAGE_CREATE.replace(r#""content":"the secret plan \u00e9","#, ""),
        ),
    ] {
        assert_eq!(decoded_with_commands(&text, None).command, None, "{what}");
    }
    // A reply (type 19) is written by a person.
    let reply = typed("!ping").replace(r#""type":0"#, r#""type":19"#);
    assert!(decoded_with_commands(&reply, None).command.is_some());
}

#[test]
fn without_prefix_commands_no_message_is_a_command() {
    let (_, _, Event::MessageCreate(meta)) = dispatch(&typed("!role add Chess")) else {
        panic!("expected MessageCreate");
    };
    assert_eq!(meta.command, None);
}

#[test]
fn content_that_is_not_a_command_survives_nowhere() {
    let canary = "canary-7f3a9c plans for tuesday";
    let key = crate::ContentKey::new(&guildscope_model::Secret::new("operator key"));
    let meta = decoded_with_commands(&typed(canary), Some(&key));
    assert_eq!(meta.command, None);
    assert_eq!(meta.keyed_hash, Some(key.hash(canary)));
    assert!(!format!("{meta:?}").contains("canary"));
    // A command keeps its arguments and nothing else of the content.
    let meta = decoded_with_commands(&typed("!role add Chess"), Some(&key));
    let debug = format!("{meta:?}");
    assert!(debug.contains("add Chess") && !debug.contains("!role"));
}

#[test]
fn message_without_timestamp_falls_back_to_the_snowflake_time() {
    let text = MESSAGE_CREATE.replace(r#""timestamp":"2024-03-01T12:00:00.500000+00:00","#, "");
    let (_, _, Event::MessageCreate(meta)) = dispatch(&text) else {
        panic!("expected MessageCreate");
    };
    assert_eq!(
        meta.created_at_ms,
        (1_213_111_111_111_111_111_i64 >> 22) + 1_420_070_400_000
    );
}

#[test]
fn message_update_delete_and_bulk() {
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":1,"t":"MESSAGE_UPDATE","d":{"id":"5","channel_id":"6","guild_id":"7","content":"x","edited_timestamp":"2024-03-01T12:00:00+00:00"}}"#,
    );
    assert!(matches!(
        event,
        Event::MessageUpdate { message_id, edited_at_ms: Some(1_709_294_400_000), .. } if message_id == MessageId::new(5)
    ));
    let (_, _, event) =
        dispatch(r#"{"op":0,"s":2,"t":"MESSAGE_DELETE","d":{"id":"5","channel_id":"6"}}"#);
    assert!(matches!(event, Event::MessageDelete { guild_id: None, .. }));
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":3,"t":"MESSAGE_DELETE_BULK","d":{"ids":["5","8"],"channel_id":"6","guild_id":"7"}}"#,
    );
    let Event::MessageDeleteBulk { message_ids, .. } = event else {
        panic!("expected MessageDeleteBulk");
    };
    assert_eq!(message_ids, vec![MessageId::new(5), MessageId::new(8)]);
}

#[test]
fn ready_counts_guilds() {
    let (name, _, event) = dispatch(
        r#"{"op":0,"s":1,"t":"READY","d":{"v":10,"user":{"id":"11","username":"bot","discriminator":"0"},"application":{"id":"12","flags":0},"session_id":"abc","resume_gateway_url":"ws://x","guilds":[{"id":"1","unavailable":true},{"id":"2","unavailable":true}]}}"#,
    );
    assert_eq!(name, "READY");
    assert!(matches!(event, Event::Ready { guilds: 2, user_id, .. } if user_id == UserId::new(11)));
}

#[test]
fn guild_create_fills_in_guild_ids_of_channels_and_threads() {
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":2,"t":"GUILD_CREATE","d":{"id":"100","name":"rust","member_count":3,"large":false,
        "roles":[{"id":"100","name":"@everyone","permissions":"1071698660929","managed":false,"position":0,"color":0,"hoist":false,"mentionable":false,"flags":0}],
        "channels":[{"id":"101","type":4,"name":"general","position":0},{"id":"102","type":0,"name":"chat","parent_id":"101","position":1},{"id":"103","type":15,"name":"help"}],
        "threads":[{"id":"104","type":11,"name":"q","parent_id":"103","thread_metadata":{"archived":false,"locked":true,"auto_archive_duration":1440,"create_timestamp":"2024-01-01T00:00:00+00:00"}}],
        "members":[{"user":{"id":"200","username":"ada","bot":false},"roles":["100"],"joined_at":"2024-01-01T00:00:00+00:00","deaf":false,"mute":false,"flags":0},{"roles":[],"joined_at":null}]}}"#,
    );
    let Event::GuildCreate(guild) = event else {
        panic!("expected GuildCreate");
    };
    assert_eq!(
        (guild.id, guild.name.as_str(), guild.member_count),
        (GuildId::new(100), "rust", 3)
    );
    assert_eq!(guild.roles[0].permissions, 1_071_698_660_929);
    assert_eq!(guild.channels.len(), 3);
    assert!(
        guild
            .channels
            .iter()
            .all(|c| c.guild_id == Some(GuildId::new(100)))
    );
    assert_eq!(guild.channels[0].kind, ChannelKind::Category);
    assert_eq!(guild.channels[2].kind, ChannelKind::Forum);
    let thread = &guild.threads[0];
    assert_eq!(thread.guild_id, GuildId::new(100));
    assert!(thread.locked && !thread.archived);
    assert_eq!(thread.created_at_ms, Some(1_704_067_200_000));
    // The member without a user is skipped rather than failing the guild.
    assert_eq!(guild.members.len(), 1);
    assert_eq!(guild.members[0].roles, vec![RoleId::new(100)]);
}

#[test]
fn unavailable_guild_create_is_an_outage() {
    let (_, _, event) =
        dispatch(r#"{"op":0,"s":2,"t":"GUILD_CREATE","d":{"id":"100","unavailable":true}}"#);
    assert!(matches!(
        event,
        Event::GuildDelete {
            unavailable: true,
            ..
        }
    ));
}

#[test]
fn member_events() {
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":2,"t":"GUILD_MEMBER_ADD","d":{"guild_id":"9","user":{"id":"200","username":"ada"},"roles":[],"joined_at":"2024-01-01T00:00:00+00:00","pending":true,"deaf":false,"mute":false}}"#,
    );
    assert!(
        matches!(event, Event::MemberAdd { member, .. } if member.pending && member.name == "ada")
    );
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":3,"t":"GUILD_MEMBER_REMOVE","d":{"guild_id":"9","user":{"id":"200","username":"ada"}}}"#,
    );
    assert!(matches!(event, Event::MemberRemove { user_id, .. } if user_id == UserId::new(200)));
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":4,"t":"GUILD_MEMBERS_CHUNK","d":{"guild_id":"9","members":[{"user":{"id":"200","username":"ada"},"roles":["1"]}],"chunk_index":0,"chunk_count":2,"not_found":[]}}"#,
    );
    assert!(
        matches!(event, Event::MembersChunk { chunk_count: 2, ref members, .. } if members.len() == 1)
    );
}

#[test]
fn channel_thread_and_role_events() {
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":2,"t":"CHANNEL_UPDATE","d":{"id":"5","guild_id":"9","type":5,"name":"news"}}"#,
    );
    assert!(matches!(event, Event::ChannelUpdate(c) if c.kind == ChannelKind::Announcement));
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":3,"t":"THREAD_CREATE","d":{"id":"6","guild_id":"9","parent_id":"5","type":11,"name":"t","thread_metadata":{"archived":false,"auto_archive_duration":60}}}"#,
    );
    assert!(matches!(event, Event::ThreadCreate(t) if t.auto_archive_minutes == 60));
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":4,"t":"THREAD_DELETE","d":{"id":"6","guild_id":"9","parent_id":"5","type":11}}"#,
    );
    assert!(matches!(event, Event::ThreadDelete { .. }));
    let (_, _, event) = dispatch(
        r#"{"op":0,"s":5,"t":"GUILD_ROLE_UPDATE","d":{"guild_id":"9","role":{"id":"3","name":"mod","permissions":"8","managed":false,"position":2}}}"#,
    );
    assert!(matches!(event, Event::RoleUpdate { role, .. } if role.permissions == 8));
    let (_, _, event) =
        dispatch(r#"{"op":0,"s":6,"t":"GUILD_ROLE_DELETE","d":{"guild_id":"9","role_id":"3"}}"#);
    assert!(matches!(event, Event::RoleDelete { role_id, .. } if role_id == RoleId::new(3)));
}

const INTERACTION: &str = r#"{"op":0,"s":9,"t":"INTERACTION_CREATE","d":{"version":1,"type":TYPE,"token":"tok-secret","id":"700","application_id":"12","guild_id":"9","channel":{"id":"5","type":0},"channel_id":"5","locale":"en-US","entitlements":[],"authorizing_integration_owners":{},"app_permissions":"0","attachment_size_limit":0,
"member":{"user":{"id":"200","username":"ada","discriminator":"0","avatar":null},"roles":["1","2"],"joined_at":"2024-01-01T00:00:00+00:00","deaf":false,"mute":false,"flags":0,"permissions":"0"},
"data":{"id":"800","name":"role","type":1,"options":[{"name":"add","type":1,"options":[OPTION]}]}}}"#;

#[test]
fn interaction_with_subcommand_and_role_option() {
    let text = INTERACTION
        .replace("TYPE", "2")
        .replace("OPTION", r#"{"name":"role","type":8,"value":"1"}"#);
    let (_, _, Event::Interaction(interaction)) = dispatch(&text) else {
        panic!("expected Interaction");
    };
    assert_eq!(interaction.kind, InteractionKind::Command);
    assert_eq!(interaction.user_id, UserId::new(200));
    assert_eq!(
        interaction.member_roles,
        vec![RoleId::new(1), RoleId::new(2)]
    );
    assert_eq!(interaction.token.expose(), "tok-secret");
    assert!(!format!("{interaction:?}").contains("tok-secret"));
    assert_eq!(
        interaction.options,
        vec![CommandOption {
            name: "add".into(),
            value: CommandValue::SubCommand(vec![CommandOption {
                name: "role".into(),
                value: CommandValue::Id(1),
            }]),
        }]
    );
}

#[test]
fn autocomplete_interaction_carries_the_focused_partial_text() {
    let text = INTERACTION.replace("TYPE", "4").replace(
        "OPTION",
        r#"{"name":"role","type":8,"value":"mod","focused":true}"#,
    );
    let (_, _, Event::Interaction(interaction)) = dispatch(&text) else {
        panic!("expected Interaction");
    };
    assert_eq!(interaction.kind, InteractionKind::Autocomplete);
    let CommandValue::SubCommand(inner) = &interaction.options[0].value else {
        panic!("expected a subcommand");
    };
    assert_eq!(inner[0].value, CommandValue::Focused("mod".into()));
}

#[test]
fn undocumented_dispatch_is_other_with_its_name() {
    let decoded = decode(r#"{"op":0,"s":3,"t":"BRAND_NEW_EVENT","d":{"x":1}}"#, None);
    assert!(matches!(
        decoded,
        Ok(Decoded::Dispatch {
            name: DispatchName::Unknown("BRAND_NEW_EVENT"),
            event: Event::Other,
            sequence: 3
        })
    ));
    let (name, _, event) = dispatch(r#"{"op":0,"s":4,"t":"TYPING_START","d":{"channel_id":"1"}}"#);
    assert_eq!(name, "TYPING_START");
    assert!(matches!(event, Event::Other));
}

#[test]
fn bad_frames_are_errors_not_panics() {
    assert!(matches!(
        decode("not json at all", None),
        Err(DecodeError::Malformed(_))
    ));
    // Truncated in the middle of the payload.
    let truncated = &MESSAGE_CREATE[..MESSAGE_CREATE.len() / 2];
    assert!(matches!(
        decode(truncated, None),
        Err(DecodeError::Payload { .. })
    ));
    // Truncated control frame.
    assert!(matches!(
        decode(r#"{"op":11,"d":nu"#, None),
        Err(DecodeError::Malformed(Some(_)))
    ));
    // A dispatch with the wrong shape for its name.
    let wrong = decode(
        r#"{"op":0,"s":1,"t":"MESSAGE_CREATE","d":{"id":"x"}}"#,
        None,
    );
    assert!(matches!(wrong, Err(DecodeError::Payload { .. })));
    // A dispatch without a sequence.
    assert!(matches!(
        decode(r#"{"op":0,"t":"MESSAGE_CREATE","d":{}}"#, None),
        Err(DecodeError::MissingHeader)
    ));
}

#[test]
fn control_frames_and_unknown_opcodes() {
    assert!(matches!(
        decode(r#"{"op":11,"d":null}"#, None),
        Ok(Decoded::HeartbeatAck)
    ));
    assert!(matches!(
        decode(r#"{"op":10,"d":{"heartbeat_interval":100}}"#, None),
        Ok(Decoded::Hello)
    ));
    assert!(matches!(
        decode(r#"{"op":9,"d":false}"#, None),
        Ok(Decoded::Control(9))
    ));
    assert!(matches!(
        decode(r#"{"op":42,"d":null}"#, None),
        Ok(Decoded::UnknownOpcode(42))
    ));
}
