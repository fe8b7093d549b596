//! One conformance suite, run against both back ends: SQLite files in a
//! temporary directory, and the machine's PostgreSQL with a fresh database
//! per test.
//!
//! PostgreSQL is found at `GUILDSCOPE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached,
//! the PostgreSQL half fails under CI (`CI` set) and says it skipped
//! otherwise.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::each_backend;
use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId, UserId};
use guildscope_store::{
    ChannelRow, MemberRow, MessageRow, Op, SCHEMA_VERSION, Store, StoreErrorKind,
};

fn message(id: u64, channel: u64) -> Op {
    Op::InsertMessage(MessageRow {
        id: MessageId::new(id),
        guild_id: GuildId::new(1),
        channel_id: ChannelId::new(channel),
        thread_id: None,
        author_id: UserId::new(7),
        created_at_ms: 1_700_000_000_000 + (id % 1_000_000) as i64,
        keyed_hash: None,
    })
}

fn member(user: u64, joined_at_ms: i64) -> Op {
    Op::UpsertMember(MemberRow {
        guild_id: GuildId::new(1),
        user_id: UserId::new(user),
        name: format!("user{user}"),
        is_bot: false,
        is_staff: false,
        pending: false,
        joined_at_ms: Some(joined_at_ms),
    })
}

#[test]
fn a_new_database_is_migrated_to_the_current_schema() {
    each_backend(|db| {
        let mut store = db.open();
        assert_eq!(
            store.schema_version().unwrap(),
            SCHEMA_VERSION,
            "{}",
            db.name
        );
        drop(store);
        // Opening again is a no-op.
        assert_eq!(
            db.open().schema_version().unwrap(),
            SCHEMA_VERSION,
            "{}",
            db.name
        );
    });
}

#[test]
fn a_schema_newer_than_the_binary_is_refused_with_a_clear_message() {
    each_backend(|db| {
        db.open()
            .set_schema_version_for_tests(SCHEMA_VERSION + 1)
            .unwrap();
        let err = Store::open(&db.location).unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Schema, "{}", db.name);
        let message = err.to_string();
        assert!(
            message.contains("newer than this guildscope understands"),
            "{}: {message}",
            db.name
        );
    });
}

#[test]
fn replaying_a_batch_never_duplicates_rows() {
    each_backend(|db| {
        let mut store = db.open();
        let batch = vec![
            Op::UpsertGuild {
                id: GuildId::new(1),
                name: "rust".into(),
            },
            Op::UpsertChannel(ChannelRow {
                id: ChannelId::new(5),
                guild_id: GuildId::new(1),
                name: "general".into(),
                kind: ChannelKind::Text,
                category_id: None,
            }),
            member(7, 1_000),
            message(100, 5),
            message(101, 5),
            Op::DeleteMessage {
                id: MessageId::new(101),
                at_ms: 2_000,
            },
        ];
        let first = store.apply(&batch).unwrap();
        let second = store.apply(&batch).unwrap();
        assert_eq!(first.messages, 3, "{}", db.name);
        // The inserts are no-ops the second time; only the delete touches a row.
        assert_eq!(second.messages, 1, "{}", db.name);
        assert_eq!(
            store.count("SELECT COUNT(*) FROM messages").unwrap(),
            2,
            "{}",
            db.name
        );
        assert_eq!(
            store.count("SELECT COUNT(*) FROM members").unwrap(),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            store.message_state(MessageId::new(101)).unwrap(),
            Some(true),
            "{}",
            db.name
        );
        assert_eq!(
            store.message_state(MessageId::new(100)).unwrap(),
            Some(false),
            "{}",
            db.name
        );
        assert_eq!(
            store.message_state(MessageId::new(999)).unwrap(),
            None,
            "{}",
            db.name
        );
        assert_eq!(
            store.messages_per_channel().unwrap(),
            vec![(5, 2)],
            "{}",
            db.name
        );
    });
}

#[test]
fn the_same_row_twice_in_one_batch_keeps_the_last_version() {
    each_backend(|db| {
        let mut store = db.open();
        let rename = |name: &str| Op::UpsertGuild {
            id: GuildId::new(1),
            name: name.into(),
        };
        store
            .apply(&[
                rename("old"),
                rename("new"),
                member(7, 1_000),
                member(7, 1_000),
            ])
            .unwrap();
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM guilds WHERE name = 'new'")
                .unwrap(),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            store.count("SELECT COUNT(*) FROM users").unwrap(),
            1,
            "{}",
            db.name
        );
    });
}

#[test]
fn a_replayed_join_does_not_undo_a_later_leave() {
    each_backend(|db| {
        let mut store = db.open();
        let left = Op::MemberLeft {
            guild_id: GuildId::new(1),
            user_id: UserId::new(7),
            at_ms: 5_000,
        };
        store.apply(&[member(7, 1_000), left]).unwrap();
        store.apply(&[member(7, 1_000)]).unwrap();
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM members WHERE in_guild")
                .unwrap(),
            0,
            "{}",
            db.name
        );
        // A genuine rejoin after the leave brings the member back.
        store.apply(&[member(7, 9_000)]).unwrap();
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM members WHERE in_guild")
                .unwrap(),
            1,
            "{}",
            db.name
        );
    });
}

#[test]
fn an_edit_never_moves_the_edit_time_backwards() {
    each_backend(|db| {
        let mut store = db.open();
        store
            .apply(&[
                message(100, 5),
                Op::EditMessage {
                    id: MessageId::new(100),
                    at_ms: 1_700_000_900_000,
                },
                Op::EditMessage {
                    id: MessageId::new(100),
                    at_ms: 1_700_000_500_000,
                },
            ])
            .unwrap();
        let sql = match db.name {
            "sqlite" => "SELECT edited_at FROM messages WHERE id = 100",
            _ => "SELECT (EXTRACT(EPOCH FROM edited_at) * 1000)::int8 FROM messages WHERE id = 100",
        };
        assert_eq!(store.count(sql).unwrap(), 1_700_000_900_000, "{}", db.name);
    });
}

#[test]
fn no_column_can_hold_message_content() {
    each_backend(|db| {
        let mut store = db.open();
        let sql = match db.name {
            "sqlite" => {
                "SELECT COUNT(*) FROM sqlite_master m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' AND (c.name LIKE '%content%' OR c.name LIKE '%text%' OR c.name LIKE '%body%')"
            }
            _ => {
                "SELECT COUNT(*) FROM information_schema.columns c
                 JOIN information_schema.tables t USING (table_schema, table_name)
                 WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
                   AND (c.column_name LIKE '%content%' OR c.column_name LIKE '%text%' OR c.column_name LIKE '%body%')"
            }
        };
        assert_eq!(store.count(sql).unwrap(), 0, "{}", db.name);
    });
}

#[test]
fn text_views_present_ids_as_strings() {
    each_backend(|db| {
        let mut store = db.open();
        store
            .apply(&[message(1_152_921_504_606_846_976, 5)])
            .unwrap();
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM messages_text WHERE id = '1152921504606846976'")
                .unwrap(),
            1,
            "{}",
            db.name
        );
    });
}

fn channel(id: u64) -> Op {
    Op::UpsertChannel(ChannelRow {
        id: ChannelId::new(id),
        guild_id: GuildId::new(1),
        name: format!("channel-{id}"),
        kind: ChannelKind::Text,
        category_id: None,
    })
}

#[test]
fn a_channel_sync_flags_exactly_the_missing_channels_deleted() {
    each_backend(|db| {
        let mut store = db.open();
        store.apply(&[channel(1), channel(2), channel(3)]).unwrap();
        let present = vec![ChannelId::new(1), ChannelId::new(3), ChannelId::new(4)];
        let counts = store
            .apply(&[Op::SyncChannels {
                guild_id: GuildId::new(1),
                present: present.clone(),
            }])
            .unwrap();
        assert_eq!(counts.channels, 1, "{}", db.name);
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM channels WHERE is_deleted")
                .unwrap(),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM channels WHERE is_deleted AND id = 2")
                .unwrap(),
            1,
            "{}",
            db.name
        );
        // Idempotent: the same sync again changes nothing.
        let again = store
            .apply(&[Op::SyncChannels {
                guild_id: GuildId::new(1),
                present,
            }])
            .unwrap();
        assert_eq!(again.channels, 0, "{}", db.name);
    });
}

#[test]
fn a_member_sync_marks_everyone_not_present_as_left() {
    each_backend(|db| {
        let mut store = db.open();
        let mut batch: Vec<Op> = (1..=1_000).map(|user| member(user, 1_000)).collect();
        // Another guild's member is never touched by this guild's sync.
        batch.push(Op::UpsertMember(MemberRow {
            guild_id: GuildId::new(2),
            user_id: UserId::new(5_000),
            name: "elsewhere".into(),
            is_bot: false,
            is_staff: false,
            pending: false,
            joined_at_ms: Some(1_000),
        }));
        store.apply(&batch).unwrap();
        let present: Vec<UserId> = (1..=1_000)
            .filter(|u| u % 10 != 0)
            .map(UserId::new)
            .collect();
        let counts = store
            .apply(&[Op::SyncMembers {
                guild_id: GuildId::new(1),
                present,
                at_ms: 9_000,
            }])
            .unwrap();
        assert_eq!(counts.members, 100, "{}", db.name);
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM members WHERE in_guild")
                .unwrap(),
            901,
            "{}",
            db.name
        );
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM members WHERE NOT in_guild AND left_at IS NOT NULL")
                .unwrap(),
            100,
            "{}",
            db.name
        );
    });
}
