//! The SQLite back end against real files in a temporary directory.

use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId, UserId};
use guildscope_store::{
    ChannelRow, MemberRow, MessageRow, Op, SCHEMA_VERSION, SqliteStore, StoreErrorKind,
};

fn message(id: u64, channel: u64) -> Op {
    Op::InsertMessage(MessageRow {
        id: MessageId::new(id),
        guild_id: GuildId::new(1),
        channel_id: ChannelId::new(channel),
        thread_id: None,
        author_id: UserId::new(7),
        created_at_ms: 1_700_000_000_000 + id as i64,
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
fn a_new_file_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("stats.db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Opening again is a no-op.
    drop(store);
    let store = SqliteStore::open(dir.path().join("stats.db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn a_schema_newer_than_the_binary_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.db");
    drop(open_with_future_version(&path));
    let err = SqliteStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Schema);
    let message = format!("{err}");
    assert!(message.contains("newer than this guildscope understands"), "{message}");
}

/// Leaves a database that claims a schema version from the future.
fn open_with_future_version(path: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(path).unwrap();
    store.set_schema_version_for_tests(SCHEMA_VERSION + 1).unwrap();
    store
}

#[test]
fn replaying_a_batch_never_duplicates_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("stats.db")).unwrap();
    let batch = vec![
        Op::UpsertGuild { id: GuildId::new(1), name: "rust".into() },
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
        Op::DeleteMessage { id: MessageId::new(101), at_ms: 2_000 },
    ];
    let first = store.apply(&batch).unwrap();
    assert_eq!(first.messages, 3);
    let second = store.apply(&batch).unwrap();
    // The inserts are no-ops the second time; only the delete touches a row.
    assert_eq!(second.messages, 1);
    assert_eq!(store.count("SELECT COUNT(*) FROM messages").unwrap(), 2);
    assert_eq!(store.count("SELECT COUNT(*) FROM members").unwrap(), 1);
    assert_eq!(store.message_state(MessageId::new(101)).unwrap(), Some(true));
    assert_eq!(store.count("SELECT deleted_at FROM messages WHERE id = 101").unwrap(), 2_000);
}

#[test]
fn a_replayed_join_does_not_undo_a_later_leave() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("stats.db")).unwrap();
    store
        .apply(&[
            member(7, 1_000),
            Op::MemberLeft { guild_id: GuildId::new(1), user_id: UserId::new(7), at_ms: 5_000 },
        ])
        .unwrap();
    store.apply(&[member(7, 1_000)]).unwrap();
    assert_eq!(store.count("SELECT in_guild FROM members").unwrap(), 0);
    // A genuine rejoin after the leave brings the member back.
    store.apply(&[member(7, 9_000)]).unwrap();
    assert_eq!(store.count("SELECT in_guild FROM members").unwrap(), 1);
}

#[test]
fn no_column_can_hold_message_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("stats.db")).unwrap();
    let suspicious = store
        .count(
            "SELECT COUNT(*) FROM sqlite_master m, pragma_table_info(m.name) c
             WHERE m.type = 'table' AND (c.name LIKE '%content%' OR c.name LIKE '%text%' OR c.name LIKE '%body%')",
        )
        .unwrap();
    assert_eq!(suspicious, 0);
}

#[test]
fn text_views_present_ids_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("stats.db")).unwrap();
    store.apply(&[message(1_152_921_504_606_846_976, 5)]).unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM messages_text WHERE id = '1152921504606846976' AND typeof(id) = 'text'").unwrap(),
        1
    );
}
